// The finance routes of `tally serve` (api/finance.h) through Service, with
// a FinanceBackend held in memory: roles, body and parameter validation,
// status codes, the JSON answers and the audit rows. The ledger's backend is
// tested end to end by tests/e2e/serve_finance_e2e.sh.
#include "api/finance.h"

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <simdjson.h>

#include <map>

#include "documents/invoice_export.h"
#include "ledger/migrations.h"
#include "pricing/currency.h"
#include "pricing/decimal.h"

namespace tally::api {
namespace {

using ledger::Role;

billing::InvoiceDocument Doc(int64_t id, const std::string& number, const std::string& status) {
    billing::InvoiceDocument d;
    d.invoice_id = id;
    d.number = number;
    d.customer = "cust_" + std::to_string(id);
    d.status = status;
    d.period = "2025-11";
    d.currency = "CNY";
    d.subtotal = d.total = d.amount_due = "12.34";
    d.tax = "0.00";
    return d;
}

billing::CreditNoteDocument Note(const std::string& number, const std::string& invoice, const std::string& kind,
                                 const std::string& total) {
    billing::CreditNoteDocument cn;
    cn.credit_note_id = 7;
    cn.number = number;
    cn.invoice_number = invoice;
    cn.customer = "cust_1";
    cn.currency = "CNY";
    cn.kind = kind;
    cn.reason = "wrong rate";
    cn.subtotal = cn.total = total;
    cn.tax = "0.00";
    return cn;
}

Amount Cny(const char* text) {
    return Amount(*Currency::FromCode("CNY"), *Decimal::Parse(text));
}

struct AuditRow {
    std::string actor, role, action, target, detail;
};

class FakeFinance : public FinanceBackend {
   public:
    FakeFinance() {
        docs = {Doc(1, "INV-2026-000001", "finalized"), Doc(2, "", "draft"), Doc(3, "INV-2026-000003", "void")};
    }
    ledger::PeriodRun Run(const ledger::RunOptions& o) override {
        calls.push_back("run " + std::to_string(o.period_id) + " " + o.customer);
        if (!refuse.empty()) throw ledger::LedgerError(refuse);
        if (timed_out) throw ledger::RunTimedOut("the invoice run took longer than 600 s and was stopped");
        if (concurrent) throw pqxx::serialization_failure("ERROR:  could not serialize access due to concurrent delete");
        ledger::PeriodRun run;
        run.result.run_id = 9;
        run.result.customers = 3;
        run.result.drafts = 2;
        run.result.not_priced = 1;
        run.result.adjustments = 1;
        run.result.left_finalized = 4;
        run.result.cutoff = "2025-12-01T00:00:00.000Z";
        run.result.problems = {"period 2025-10 not re-priced"};
        run.margin_report_id = 5;
        return run;
    }
    std::optional<billing::InvoiceDocument> Invoice(const std::string& id) override {
        if (!fail.empty()) throw std::runtime_error(fail);
        for (const auto& d : docs) {
            if (std::to_string(d.invoice_id) == id || (!d.number.empty() && d.number == id)) return d;
        }
        return std::nullopt;
    }
    std::vector<billing::InvoiceDocument> Invoices(const ledger::ListFilter& f) override {
        calls.push_back("list " + std::to_string(f.period_id.value_or(0)) + " " + f.customer + " " + f.status);
        return docs;
    }
    // The writes record the audit rows the ledger writes with them (its
    // detail is the ledger's: tests/ledger/invoice_store_test.cc).
    std::vector<ledger::FinalizeResult> FinalizeIds(const std::vector<int64_t>& ids,
                                                    const ledger::AuditActor& by) override {
        calls.push_back("finalize ids " + std::to_string(ids.at(0)));
        if (!refuse.empty()) throw ledger::LedgerError(refuse);
        audit.push_back({by.actor, by.role, "invoice.finalize", "INV-2026-000004", ""});
        return {{ids.at(0), "INV-2026-000004", "cust_2", "2025-11", "12.34", "CNY", "ab12"}};
    }
    std::vector<ledger::FinalizeResult> FinalizePeriod(int32_t period, const std::string& customer,
                                                       std::vector<std::string>* not_priced,
                                                       const ledger::AuditActor& by) override {
        calls.push_back("finalize period " + std::to_string(period) + " " + customer);
        if (!refuse.empty()) throw ledger::LedgerError(refuse);
        not_priced->push_back("draft 8 of cust_8 (p) could not be priced: no rate");
        for (const char* n : {"INV-2026-000004", "INV-2026-000005"}) {
            audit.push_back({by.actor, by.role, "invoice.finalize", n, ""});
        }
        return {{2, "INV-2026-000004", "cust_2", "2025-11", "12.34", "CNY", "ab12"},
                {5, "INV-2026-000005", "cust_5", "2025-11", "1.00", "CNY", "cd34"}};
    }
    billing::CreditNoteDocument Void(const std::string& id, const std::string& reason,
                                     const ledger::AuditActor& by) override {
        calls.push_back("void " + id + " " + reason);
        if (!fail.empty()) throw std::runtime_error(fail);
        if (!refuse.empty()) throw ledger::LedgerError(refuse);
        audit.push_back({by.actor, by.role, "invoice.void", "INV-2026-000001", ""});
        return Note("CN-2026-000001", "INV-2026-000001", "void", "12.34");
    }
    billing::CreditNoteDocument Credit(const std::string& id, const std::string& subtotal, const std::string& reason,
                                       const ledger::AuditActor& by) override {
        calls.push_back("credit " + id + " " + subtotal + " " + reason);
        if (!refuse.empty()) throw ledger::LedgerError(refuse);
        audit.push_back({by.actor, by.role, "credit_note.create", "CN-2026-000002", ""});
        return Note("CN-2026-000002", "INV-2026-000001", "partial", subtotal);
    }
    std::vector<billing::CreditNoteDocument> CreditNotes(const std::string& id) override {
        calls.push_back("credit notes " + id);
        return {Note("CN-2026-000002", "INV-2026-000001", "partial", "2.00")};
    }
    std::optional<billing::CreditNoteDocument> CreditNote(const std::string& number) override {
        if (number == "CN-2026-000002") return Note(number, "INV-2026-000001", "partial", "2.00");
        return std::nullopt;
    }
    std::string CreditNotePdf(const billing::CreditNoteDocument& note,
                              const billing::InvoiceDocument& credited) override {
        return "%PDF-1.5 " + note.number + " credits " + credited.number;
    }
    ledger::PeriodMargin Margin(int32_t period) override {
        calls.push_back("margin " + std::to_string(period));
        ledger::PeriodMargin m;
        billing::MarginRow a;
        a.customer = "cust_a";
        a.plan = "p";
        a.model = "m1";
        a.day = "2025-11-03";
        a.figures.currency = *Currency::FromCode("CNY");
        a.figures.revenue = Cny("10.000000000000000001");
        a.figures.cost = Cny("4");
        a.figures.calls = 3;
        billing::FinishFigures(&a.figures);
        billing::MarginRow b = a;
        b.customer = "cust_b";
        b.figures.revenue = Cny("1");
        b.figures.cost = Cny("3.5");
        b.figures.calls = 1;
        billing::FinishFigures(&b.figures);
        m.rows = {a, b};
        return m;
    }
    std::vector<ledger::DeadLetterCount> DeadLetterCounts() override {
        return {{"invalid", 2}, {"unknown_customer", 1}, {"conflict", 0}};
    }
    std::vector<ledger::DeadLetterEntry> DeadLetters(const ledger::DeadLetterPage& page) override {
        last_page = page;
        std::vector<ledger::DeadLetterEntry> out;
        for (int64_t id = 3; id >= 1 && static_cast<int>(out.size()) < page.limit; --id) {
            if (page.before && id >= *page.before) continue;
            out.push_back({id, "usage", 1, 40 + id, "invalid", "not JSON: \"x", "2025-11-03T00:00:00.000Z", 5});
        }
        return out;
    }
    std::optional<std::string> DeadLetterRaw(int64_t id) override {
        if (id == 3) return std::string("{\"a\0\xff", 5);
        return std::nullopt;
    }
    void Audit(const std::string& actor, std::string_view role, const std::string& action, const std::string& target,
               const std::string& detail_json) override {
        audit.push_back({actor, std::string(role), action, target, detail_json});
    }

    std::vector<billing::InvoiceDocument> docs;
    std::vector<std::string> calls;
    std::vector<AuditRow> audit;
    std::string refuse, fail;  // a LedgerError, a database failure
    bool timed_out = false;
    bool concurrent = false;  // the run meets another writer (serialization failure)
    ledger::DeadLetterPage last_page;
};

class FakeBackend : public Backend {
   public:
    FakeBackend() {
        keys["tly_a"] = {"ka", Role::kCustomer, "cust_1"};
        keys["tly_f"] = {"kf", Role::kFinance, ""};
        keys["tly_s"] = {"ks", Role::kSales, ""};
        keys["tly_x"] = {"kx", Role::kAdmin, ""};
    }
    std::optional<ledger::Principal> Authenticate(std::string_view secret) override {
        auto it = keys.find(std::string(secret));
        if (it == keys.end()) return std::nullopt;
        return it->second;
    }
    std::string NotReady() override { return ""; }
    UsageReport Usage(const UsageQuery&) override { return {}; }
    std::vector<billing::InvoiceDocument> Invoices(const InvoiceQuery&) override { return {}; }
    std::optional<billing::InvoiceDocument> Invoice(const std::string&) override { return std::nullopt; }
    std::string Pdf(const billing::InvoiceDocument&) override { return ""; }
    std::string Csv(const billing::InvoiceDocument&) override { return ""; }
    FinanceBackend* Finance() override { return &finance; }

    std::map<std::string, ledger::Principal> keys;
    FakeFinance finance;
};

class FinanceTest : public ::testing::Test {
   protected:
    Response Call(std::string_view method, std::string_view target, std::string_view body = "",
                  std::string_view key = "tly_f") {
        Request r;
        r.method = method;
        r.target = target;
        const std::string authorization = "Bearer " + std::string(key);
        r.authorization = authorization;
        r.body = body;
        internal_.clear();
        return service_.Handle(r, backend_, "r7", &internal_);
    }
    Response Post(std::string_view target, std::string_view body, std::string_view key = "tly_f") {
        return Call("POST", target, body, key);
    }
    Response Get(std::string_view target, std::string_view key = "tly_f") { return Call("GET", target, "", key); }
    static std::string Header(const Response& r, const std::string& name) {
        for (const auto& [n, v] : r.headers) {
            if (n == name) return v;
        }
        return "";
    }
    // The body parsed (it must be JSON); the test fails when it is not.
    simdjson::dom::element Json(const Response& r) {
        padded_ = simdjson::padded_string(r.body);
        simdjson::dom::element e;
        EXPECT_EQ(parser_.parse(padded_).get(e), simdjson::SUCCESS) << r.body;
        return e;
    }
    static std::string Str(simdjson::dom::element e, const char* pointer) {
        std::string_view v;
        EXPECT_EQ(e.at_pointer(pointer).get_string().get(v), simdjson::SUCCESS) << pointer;
        return std::string(v);
    }
    static int64_t Int(simdjson::dom::element e, const char* pointer) {
        int64_t v = -1;
        EXPECT_EQ(e.at_pointer(pointer).get_int64().get(v), simdjson::SUCCESS) << pointer;
        return v;
    }
    static bool Bool(simdjson::dom::element e, const char* pointer) {
        bool v = false;
        EXPECT_EQ(e.at_pointer(pointer).get_bool().get(v), simdjson::SUCCESS) << pointer;
        return v;
    }
    static bool IsNull(simdjson::dom::element e, const char* pointer) {
        simdjson::dom::element v;
        return e.at_pointer(pointer).get(v) == simdjson::SUCCESS && v.is_null();
    }
    FakeFinance& fin() { return backend_.finance; }

    Service service_{ServiceOptions{1000, 1000}};
    FakeBackend backend_;
    std::string internal_;
    simdjson::dom::parser parser_;
    simdjson::padded_string padded_;
};

// Every finance route's method and a target that matches it.
std::vector<std::pair<std::string, std::string>> FinanceRoutes() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Route& r : Routes()) {
        if (!IsFinanceRoute(r.id)) continue;
        std::string target(r.pattern);
        const size_t at = target.find("{id}");
        if (at != std::string::npos) target.replace(at, 4, "1");
        out.emplace_back(std::string(r.method), target);
    }
    return out;
}

TEST_F(FinanceTest, CustomerAndSalesKeysGet403OnEveryFinanceRouteAndNothingHappens) {
    const auto routes = FinanceRoutes();
    ASSERT_EQ(routes.size(), 13u);
    for (const auto& [method, target] : routes) {
        SCOPED_TRACE(method + " " + target);
        for (const char* key : {"tly_a", "tly_s"}) {
            const Response r = Call(method, target, R"({"period":"2025-11","reason":"x","subtotal":"1"})", key);
            EXPECT_EQ(r.status, 403);
            EXPECT_NE(r.body.find("\"forbidden\""), std::string::npos);
        }
        EXPECT_EQ(Call(method, target, "", "tly_nope").status, 401);
    }
    EXPECT_TRUE(fin().calls.empty());
    EXPECT_TRUE(fin().audit.empty());
}

TEST_F(FinanceTest, HandleFinanceRefusesOtherRolesItself) {
    const Target target = ParseTarget("/v1/margin?period=2025-11");
    const Matched m = MatchRoute("GET", target);
    Request request;
    Response response;
    for (Role role : {Role::kCustomer, Role::kSales}) {
        const ledger::Principal who{"k", role, role == Role::kCustomer ? "cust_1" : ""};
        try {
            HandleFinance(m, target, who, request, fin(), &response);
            ADD_FAILURE() << "no 403";
        } catch (const HttpError& e) {
            EXPECT_EQ(e.status, 403);
        }
    }
    HandleFinance(m, target, {"k", Role::kAdmin, ""}, request, fin(), &response);
    EXPECT_EQ(response.status, 200);
}

TEST_F(FinanceTest, InvoiceRunValidatesItsBodyAndAnswersTheRun) {
    EXPECT_EQ(Post("/v1/invoice-runs", "").status, 400);                                 // period is required
    EXPECT_EQ(Post("/v1/invoice-runs", "{").status, 400);                                // not JSON
    EXPECT_EQ(Post("/v1/invoice-runs", R"({"period":"2025-13"})").status, 400);          // no such month
    EXPECT_EQ(Post("/v1/invoice-runs", R"({"period":202511})").status, 400);             // not a string
    EXPECT_EQ(Post("/v1/invoice-runs", R"({"period":"2025-11","x":"1"})").status, 400);  // unknown field
    const Response bad = Post("/v1/invoice-runs", R"({"period":"11/2025"})");
    EXPECT_EQ(bad.body, ErrorBody("bad_request", "period must be a month like 2025-11, not '11/2025'"));
    EXPECT_TRUE(fin().calls.empty());

    const Response r = Post("/v1/invoice-runs", R"({"period":"2025-11","customer":"cust_9"})");
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(fin().calls.size(), 1u);
    EXPECT_EQ(fin().calls[0], "run " + std::to_string(MonthId(2025, 11)) + " cust_9");
    const auto j = Json(r);
    EXPECT_EQ(Int(j, "/run_id"), 9);
    EXPECT_EQ(Str(j, "/period"), "2025-11");
    EXPECT_EQ(Str(j, "/customer"), "cust_9");
    EXPECT_EQ(Int(j, "/customers"), 3);
    EXPECT_EQ(Int(j, "/drafts"), 2);
    EXPECT_EQ(Int(j, "/not_priced"), 1);
    EXPECT_EQ(Int(j, "/adjustments"), 1);
    EXPECT_EQ(Int(j, "/left_finalized"), 4);
    EXPECT_EQ(Str(j, "/cutoff"), "2025-12-01T00:00:00.000Z");
    EXPECT_EQ(Str(j, "/problems/0"), "period 2025-10 not re-priced");
    EXPECT_EQ(Int(j, "/unresolved_rollups"), 0);
    EXPECT_EQ(Int(j, "/margin_report_id"), 5);
    ASSERT_EQ(fin().audit.size(), 1u);
    const AuditRow& a = fin().audit[0];
    EXPECT_EQ(a.actor, "key:kf");
    EXPECT_EQ(a.role, "finance");
    EXPECT_EQ(a.action, "invoice.run");
    EXPECT_EQ(a.target, "2025-11");
    EXPECT_EQ(a.detail, R"({"run_id":9,"period":"2025-11","customer":"cust_9","drafts":2,"not_priced":1})");

    // Without a customer: every customer (null in the answer).
    const Response all = Post("/v1/invoice-runs", R"({"period":"2025-11"})", "tly_x");
    ASSERT_EQ(all.status, 200);
    EXPECT_TRUE(IsNull(Json(all), "/customer"));
    EXPECT_EQ(fin().audit.back().role, "admin");
    EXPECT_EQ(fin().audit.back().actor, "key:kx");
}

TEST_F(FinanceTest, TheLedgersRefusalIs409AndATimeoutIs503WithoutAudit) {
    fin().refuse = "no issuer for the invoices of plan p";
    Response r = Post("/v1/invoice-runs", R"({"period":"2025-11"})");
    EXPECT_EQ(r.status, 409);
    EXPECT_EQ(r.body, ErrorBody("conflict", "no issuer for the invoices of plan p"));
    fin().refuse.clear();
    fin().timed_out = true;
    r = Post("/v1/invoice-runs", R"({"period":"2025-11"})");
    EXPECT_EQ(r.status, 503);
    EXPECT_NE(r.body.find("longer than 600 s"), std::string::npos);
    EXPECT_TRUE(fin().audit.empty());
}

TEST_F(FinanceTest, ARunOfAMonthNotBegunIsRefusedAndOneMeetingAnotherIsA503ToTryAgain) {
    const Response future = Post("/v1/invoice-runs", R"({"period":"2999-01"})");
    EXPECT_EQ(future.status, 409);
    EXPECT_EQ(future.body, ErrorBody("conflict", "period 2999-01 has not begun"));
    EXPECT_EQ(Post("/v1/invoice-runs", R"({"period":"2025-11","customer":""})").status, 400);
    EXPECT_EQ(Post("/v1/invoice-runs", R"({"period":"2025-11","customer":")" + std::string(300, 'c') + "\"}").status,
              400);
    EXPECT_TRUE(fin().calls.empty());
    fin().concurrent = true;
    const Response busy = Post("/v1/invoice-runs", R"({"period":"2025-11"})");
    EXPECT_EQ(busy.status, 503);
    EXPECT_NE(busy.body.find("\"busy\""), std::string::npos);
    EXPECT_TRUE(fin().audit.empty());
}

TEST_F(FinanceTest, ADatabaseFailureIs500NamingTheRequest) {
    fin().fail = "connection lost: postgresql://tally:secret@db/tally";
    const Response r = Post("/v1/invoices/1/void", R"({"reason":"x"})");
    EXPECT_EQ(r.status, 500);
    EXPECT_NE(r.body.find("r7"), std::string::npos);
    EXPECT_EQ(r.body.find("secret"), std::string::npos);
    EXPECT_EQ(internal_, fin().fail);
    EXPECT_TRUE(fin().audit.empty());
}

TEST_F(FinanceTest, FinalizeAPeriodAuditsEachInvoice) {
    EXPECT_EQ(Post("/v1/invoices:finalize", "{}").status, 400);
    EXPECT_EQ(Post("/v1/invoices:finalize", R"({"period":"2025-11","customer":1})").status, 400);
    const Response r = Post("/v1/invoices:finalize", R"({"period":"2025-11","customer":"cust_2"})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(fin().calls.back(), "finalize period " + std::to_string(MonthId(2025, 11)) + " cust_2");
    const auto j = Json(r);
    EXPECT_EQ(Str(j, "/finalized/0/number"), "INV-2026-000004");
    EXPECT_EQ(Int(j, "/finalized/0/invoice_id"), 2);
    EXPECT_EQ(Str(j, "/finalized/1/total"), "1.00");
    EXPECT_EQ(Str(j, "/finalized/1/sha256"), "cd34");
    EXPECT_EQ(Str(j, "/not_priced/0"), "draft 8 of cust_8 (p) could not be priced: no rate");
    ASSERT_EQ(fin().audit.size(), 2u);
    EXPECT_EQ(fin().audit[0].action, "invoice.finalize");
    EXPECT_EQ(fin().audit[0].target, "INV-2026-000004");
    EXPECT_EQ(fin().audit[1].target, "INV-2026-000005");
    EXPECT_EQ(fin().audit[1].actor, "key:kf");
    EXPECT_EQ(fin().audit[1].role, "finance");
    fin().refuse = "draft 2 of cust_2 is for 2025-11, which has not ended";
    EXPECT_EQ(Post("/v1/invoices:finalize", R"({"period":"2025-11"})").status, 409);
    EXPECT_EQ(fin().audit.size(), 2u);
}

TEST_F(FinanceTest, FinalizeOneDraft) {
    EXPECT_EQ(Post("/v1/invoices/99/finalize", "").status, 404);
    EXPECT_EQ(Post("/v1/invoices/2/finalize", R"({"period":"2025-11"})").status, 400);  // takes no field
    const Response again = Post("/v1/invoices/INV-2026-000001/finalize", "");
    EXPECT_EQ(again.status, 409);
    EXPECT_EQ(again.body,
              ErrorBody("conflict", "invoice INV-2026-000001 is finalized already: only a draft is finalized"));
    EXPECT_TRUE(fin().calls.empty());
    const Response r = Post("/v1/invoices/2/finalize", "");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(fin().calls.back(), "finalize ids 2");
    EXPECT_EQ(Str(Json(r), "/finalized/0/number"), "INV-2026-000004");
    ASSERT_EQ(fin().audit.size(), 1u);
    EXPECT_EQ(fin().audit[0].action, "invoice.finalize");
    EXPECT_EQ(fin().audit[0].target, "INV-2026-000004");
}

TEST_F(FinanceTest, VoidNeedsAReasonAndAFinalizedInvoice) {
    EXPECT_EQ(Post("/v1/invoices/1/void", "{}").status, 400);
    EXPECT_EQ(Post("/v1/invoices/1/void", R"({"reason":"  "})").status, 400);
    EXPECT_EQ(Post("/v1/invoices/1/void", "{\"reason\":\"" + std::string(1001, 'x') + "\"}").status, 400);
    EXPECT_EQ(Post("/v1/invoices/99/void", R"({"reason":"x"})").status, 404);
    const Response draft = Post("/v1/invoices/2/void", R"({"reason":"x"})");
    EXPECT_EQ(draft.status, 409);
    EXPECT_EQ(draft.body,
              ErrorBody("conflict", "draft 2 is draft: only a finalized invoice can be voided or credited"));
    EXPECT_EQ(Post("/v1/invoices/INV-2026-000003/void", R"({"reason":"x"})").status, 409);  // void already
    EXPECT_TRUE(fin().calls.empty());
    const Response r = Post("/v1/invoices/INV-2026-000001/void", R"({"reason":"wrong rate"})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(fin().calls.back(), "void 1 wrong rate");
    const auto j = Json(r);
    EXPECT_EQ(Str(j, "/number"), "CN-2026-000001");
    EXPECT_EQ(Str(j, "/total"), "12.34");
    ASSERT_EQ(fin().audit.size(), 1u);
    EXPECT_EQ(fin().audit[0].action, "invoice.void");
    EXPECT_EQ(fin().audit[0].target, "INV-2026-000001");
    EXPECT_EQ(fin().audit[0].actor, "key:kf");  // the key, handed to the ledger's transaction
    EXPECT_EQ(fin().audit[0].role, "finance");
}

TEST_F(FinanceTest, ACreditNoteNeedsAPositiveAmountInTheCurrencysPlaces) {
    for (const char* subtotal : {"abc", "0", "-1.00", "1.234", "1e3", ""}) {
        SCOPED_TRACE(subtotal);
        const std::string body = std::string(R"({"subtotal":")") + subtotal + R"(","reason":"r"})";
        EXPECT_EQ(Post("/v1/invoices/1/credit-notes", body).status, 400);
    }
    EXPECT_EQ(Post("/v1/invoices/1/credit-notes", R"({"subtotal":"1.00"})").status, 400);  // reason required
    EXPECT_EQ(Post("/v1/invoices/99/credit-notes", R"({"subtotal":"1.00","reason":"r"})").status, 404);
    EXPECT_EQ(Post("/v1/invoices/2/credit-notes", R"({"subtotal":"1.00","reason":"r"})").status, 409);
    EXPECT_TRUE(fin().calls.empty());
    fin().refuse = "credit of 20.00 CNY is more than the 12.34 left uncredited on invoice INV-2026-000001";
    const Response over = Post("/v1/invoices/1/credit-notes", R"({"subtotal":"20.00","reason":"r"})");
    EXPECT_EQ(over.status, 409);
    EXPECT_EQ(over.body, ErrorBody("conflict", fin().refuse));
    EXPECT_TRUE(fin().audit.empty());
    fin().refuse.clear();
    const Response r = Post("/v1/invoices/1/credit-notes", R"({"subtotal":"2.5","reason":"goodwill"})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(fin().calls.back(), "credit 1 2.5 goodwill");
    EXPECT_EQ(Str(Json(r), "/number"), "CN-2026-000002");
    ASSERT_EQ(fin().audit.size(), 1u);
    EXPECT_EQ(fin().audit[0].action, "credit_note.create");
    EXPECT_EQ(fin().audit[0].target, "CN-2026-000002");
    EXPECT_EQ(fin().audit[0].actor, "key:kf");
}

TEST_F(FinanceTest, CreditNotesListJsonCsvAndPdf) {
    EXPECT_EQ(Get("/v1/invoices/99/credit-notes").status, 404);
    Response r = Get("/v1/invoices/INV-2026-000001/credit-notes");
    ASSERT_EQ(r.status, 200);
    auto j = Json(r);
    EXPECT_EQ(Str(j, "/invoice"), "INV-2026-000001");
    EXPECT_EQ(Str(j, "/credit_notes/0/number"), "CN-2026-000002");
    EXPECT_EQ(fin().calls.back(), "credit notes 1");
    r = Get("/v1/invoices/2/credit-notes");  // a draft: none, not asked
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"invoice":"","credit_notes":[]})");

    EXPECT_EQ(Get("/v1/credit-notes/CN-2026-000009").status, 404);
    EXPECT_EQ(Get("/v1/credit-notes/CN-2026-000009.pdf").status, 404);
    r = Get("/v1/credit-notes/CN-2026-000002");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(Str(Json(r), "/total"), "2.00");
    r = Get("/v1/credit-notes/CN-2026-000002.csv");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/csv; charset=utf-8");
    EXPECT_EQ(Header(r, "Content-Disposition"), "attachment; filename=\"CN-2026-000002.csv\"");
    EXPECT_NE(r.body.find("CN-2026-000002"), std::string::npos);
    r = Get("/v1/credit-notes/CN-2026-000002.pdf");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "application/pdf");
    EXPECT_EQ(r.body, "%PDF-1.5 CN-2026-000002 credits INV-2026-000001");
    EXPECT_EQ(Header(r, "Content-Disposition"), "attachment; filename=\"CN-2026-000002.pdf\"");
    EXPECT_TRUE(fin().audit.empty());  // reads are not audited
}

TEST_F(FinanceTest, ExportIsOneCsvAttachment) {
    EXPECT_EQ(Get("/v1/exports/invoices.csv?status=paid").status, 400);
    EXPECT_EQ(Get("/v1/exports/invoices.csv?period=2025").status, 400);
    EXPECT_EQ(Get("/v1/exports/invoices.csv?format=pdf").status, 400);
    const Response r = Get("/v1/exports/invoices.csv?period=2025-11&customer=cust_1&status=finalized");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(fin().calls.back(), "list " + std::to_string(MonthId(2025, 11)) + " cust_1 finalized");
    EXPECT_EQ(r.content_type, "text/csv; charset=utf-8");
    EXPECT_EQ(Header(r, "Content-Disposition"), "attachment; filename=\"invoices-2025-11-cust_1-finalized.csv\"");
    EXPECT_EQ(r.body, documents::CsvOf(fin().docs));
}

TEST_F(FinanceTest, MarginRowsAndTotalsAreExactStrings) {
    EXPECT_EQ(Get("/v1/margin").status, 400);
    EXPECT_EQ(Get("/v1/margin?period=2025-11&by=week").status, 400);
    EXPECT_EQ(Get("/v1/margin?period=nov").status, 400);
    EXPECT_TRUE(fin().calls.empty());
    const Response r = Get("/v1/margin?period=2025-11");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = Json(r);
    EXPECT_EQ(Str(j, "/by"), "customer");
    EXPECT_EQ(Str(j, "/rows/0/customer"), "cust_a");
    EXPECT_EQ(Str(j, "/rows/0/revenue"), "10.000000000000000001");
    EXPECT_EQ(Str(j, "/rows/0/cost"), "4");
    EXPECT_EQ(Str(j, "/rows/0/margin"), "6.000000000000000001");
    EXPECT_EQ(Str(j, "/rows/0/margin_percent"), "60.00");
    EXPECT_FALSE(Bool(j, "/rows/0/negative"));
    EXPECT_EQ(Int(j, "/rows/0/calls"), 3);
    EXPECT_EQ(Str(j, "/rows/0/currency"), "CNY");
    EXPECT_EQ(Str(j, "/rows/1/customer"), "cust_b");
    EXPECT_EQ(Str(j, "/rows/1/margin"), "-2.5");
    EXPECT_TRUE(Bool(j, "/rows/1/negative"));
    EXPECT_EQ(Str(j, "/totals/0/revenue"), "11.000000000000000001");
    EXPECT_EQ(Str(j, "/totals/0/cost"), "7.5");
    EXPECT_EQ(Str(j, "/totals/0/margin"), "3.500000000000000001");
    EXPECT_EQ(Int(j, "/totals/0/calls"), 4);
    EXPECT_FALSE(Bool(j, "/no_cost_cards"));
    const Response by_day = Get("/v1/margin?period=2025-11&by=day");
    ASSERT_EQ(by_day.status, 200);
    EXPECT_EQ(Str(Json(by_day), "/rows/0/day"), "2025-11-03");
    EXPECT_EQ(Str(Json(by_day), "/rows/0/revenue"), "11.000000000000000001");
}

TEST_F(FinanceTest, DeadLettersCountsPageAndCursor) {
    for (const char* q :
         {"?reason=nope", "?limit=0", "?limit=501", "?limit=x", "?before=x", "?before=-1", "?before=0", "?reason="}) {
        SCOPED_TRACE(q);
        EXPECT_EQ(Get(std::string("/v1/dead-letters") + q).status, 400);
    }
    Response r = Get("/v1/dead-letters?limit=2&reason=invalid");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(fin().last_page.limit, 2);
    EXPECT_EQ(fin().last_page.reason_code, "invalid");
    auto j = Json(r);
    EXPECT_EQ(Str(j, "/counts/0/reason"), "invalid");
    EXPECT_EQ(Int(j, "/counts/0/count"), 2);
    EXPECT_EQ(Int(j, "/total"), 3);
    EXPECT_EQ(Int(j, "/dead_letters/0/id"), 3);
    EXPECT_EQ(Str(j, "/dead_letters/0/topic"), "usage");
    EXPECT_EQ(Int(j, "/dead_letters/0/partition"), 1);
    EXPECT_EQ(Int(j, "/dead_letters/0/offset"), 43);
    EXPECT_EQ(Str(j, "/dead_letters/0/reason_code"), "invalid");
    EXPECT_EQ(Str(j, "/dead_letters/0/reason"), "not JSON: \"x");
    EXPECT_EQ(Str(j, "/dead_letters/0/received_at"), "2025-11-03T00:00:00.000Z");
    EXPECT_EQ(Int(j, "/dead_letters/0/size"), 5);
    EXPECT_EQ(Int(j, "/next_before"), 2);  // a full page: there may be more
    r = Get("/v1/dead-letters?before=2");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(fin().last_page.limit, 100);
    EXPECT_EQ(fin().last_page.before.value_or(0), 2);
    j = Json(r);
    EXPECT_EQ(Int(j, "/dead_letters/0/id"), 1);
    EXPECT_TRUE(IsNull(j, "/next_before"));
    EXPECT_TRUE(IsNull(j, "/reason"));
}

TEST_F(FinanceTest, ADeadLettersRawBytesAreTheBodyAsAnAttachment) {
    const Response r = Get("/v1/dead-letters/3.raw");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, std::string("{\"a\0\xff", 5));
    EXPECT_EQ(r.content_type, "application/octet-stream");
    EXPECT_EQ(Header(r, "Content-Disposition"), "attachment; filename=\"dead-letter-3.raw\"");
    EXPECT_EQ(Get("/v1/dead-letters/4.raw").status, 404);
    EXPECT_EQ(Get("/v1/dead-letters/abc.raw").status, 404);
    EXPECT_EQ(Get("/v1/dead-letters/0.raw").status, 404);
}

}  // namespace
}  // namespace tally::api
