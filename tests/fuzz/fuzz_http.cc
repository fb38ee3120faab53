// Fuzzes what `tally serve` does with bytes from the network: the Beast
// request parser with the server's limits (header 8 KiB, body 1 MiB), then
// target parsing, routing, authentication, roles, the customer scope and
// parameter validation (api::Service with an in-memory backend), and the
// bytes as the body of every POST route (finance and sales handlers, JSON
// and plan YAML bodies, against in-memory backends). Never
// crashes, and checks what must hold: a parsed target is decoded, bounded,
// valid UTF-8 with no control bytes and no repeated parameter; every answer
// has a known status and a JSON body; customer A's key never gets a 200
// that names customer B, nor usage of anyone but A.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string_view>

#include "api/finance.h"
#include "api/request.h"
#include "api/sales.h"
#include "api/server.h"
#include "api/service.h"
#include "base/assert.h"

namespace {

namespace http = boost::beast::http;
using tally::api::Backend;

// Finance and sales backends that answer from memory and never throw: the
// handlers' parsing and answers are what is fuzzed.
class FuzzFinance final : public tally::api::FinanceBackend {
   public:
    tally::ledger::PeriodRun Run(const tally::ledger::RunOptions& o) override {
        TALLY_ASSERT(o.period_id > 0);
        return {};
    }
    std::optional<tally::billing::InvoiceDocument> Invoice(const std::string& id) override {
        if (id != "1") return std::nullopt;
        tally::billing::InvoiceDocument d;
        d.invoice_id = 1;
        d.number = "INV-2026-000001";
        d.customer = "cust_a";
        d.status = "finalized";
        d.currency = "CNY";
        d.subtotal = d.total = d.amount_due = "1.00";
        d.tax = "0.00";
        return d;
    }
    std::vector<tally::billing::InvoiceDocument> Invoices(const tally::ledger::ListFilter&) override { return {}; }
    std::vector<tally::ledger::FinalizeResult> FinalizeIds(const std::vector<int64_t>&,
                                                           const tally::ledger::AuditActor& by) override {
        TALLY_ASSERT(!by.actor.empty());
        return {};
    }
    std::vector<tally::ledger::FinalizeResult> FinalizePeriod(int32_t, const std::string&, std::vector<std::string>*,
                                                              const tally::ledger::AuditActor& by) override {
        TALLY_ASSERT(!by.actor.empty());
        return {};
    }
    tally::billing::CreditNoteDocument Void(const std::string&, const std::string& reason,
                                            const tally::ledger::AuditActor&) override {
        TALLY_ASSERT(!reason.empty());
        return {};
    }
    tally::billing::CreditNoteDocument Credit(const std::string&, const std::string&, const std::string&,
                                              const tally::ledger::AuditActor&) override {
        return {};
    }
    std::vector<tally::billing::CreditNoteDocument> CreditNotes(const std::string&) override { return {}; }
    std::optional<tally::billing::CreditNoteDocument> CreditNote(const std::string&) override { return std::nullopt; }
    std::string CreditNotePdf(const tally::billing::CreditNoteDocument&,
                              const tally::billing::InvoiceDocument&) override {
        return "%PDF";
    }
    tally::ledger::PeriodMargin Margin(int32_t) override { return {}; }
    std::vector<tally::ledger::DeadLetterCount> DeadLetterCounts() override { return {}; }
    std::vector<tally::ledger::DeadLetterEntry> DeadLetters(const tally::ledger::DeadLetterPage& page) override {
        TALLY_ASSERT(page.limit >= 1 && page.limit <= tally::ledger::kDeadLetterPageMax);
        return {};
    }
    std::optional<std::string> DeadLetterRaw(int64_t) override { return std::nullopt; }
    void Audit(const std::string&, std::string_view, const std::string&, const std::string&,
               const std::string& detail_json) override {
        TALLY_ASSERT(!detail_json.empty() && detail_json.front() == '{' && detail_json.back() == '}');
    }
};

class FuzzSales final : public tally::api::SalesBackend {
   public:
    tally::api::PublishOutcome Publish(std::string_view, std::string_view) override { return {}; }
    void Audit(const std::string&, std::string_view, const std::string&, const std::string&,
               const std::string& detail_json) override {
        TALLY_ASSERT(!detail_json.empty() && detail_json.front() == '{' && detail_json.back() == '}');
    }
    tally::ingest::CatalogSnapshot Catalog() override { return {}; }
    tally::quoting::QuoteStatus Quote(tally::quoting::QuoteInput, tally::quoting::QuoteResult*) override {
        return {tally::quoting::QuoteFailure::kUnknownCustomer, "no such customer", {}};
    }
};

class FuzzBackend final : public Backend {
   public:
    std::optional<tally::ledger::Principal> Authenticate(std::string_view secret) override {
        if (secret == "tly_a") return tally::ledger::Principal{"ka", tally::ledger::Role::kCustomer, "cust_a"};
        if (secret == "tly_f") return tally::ledger::Principal{"kf", tally::ledger::Role::kFinance, ""};
        if (secret == "tly_s") return tally::ledger::Principal{"ks", tally::ledger::Role::kSales, ""};
        return std::nullopt;
    }
    std::string NotReady() override { return ""; }
    tally::api::UsageReport Usage(const tally::api::UsageQuery& q) override {
        last_usage_customer = q.customer;
        TALLY_ASSERT(!q.customer.empty());
        if (!q.period) {
            TALLY_ASSERT(q.to > q.from);
            TALLY_ASSERT(q.to - q.from <= tally::api::kRangeMax);
        }
        return {};
    }
    std::vector<tally::billing::InvoiceDocument> Invoices(const tally::api::InvoiceQuery& q) override {
        std::vector<tally::billing::InvoiceDocument> out;
        for (const auto& d : docs) {
            if ((q.customer.empty() || d.customer == q.customer) && (q.status.empty() || d.status == q.status)) {
                out.push_back(d);
            }
        }
        return out;
    }
    std::optional<tally::billing::InvoiceDocument> Invoice(const std::string& id) override {
        for (const auto& d : docs) {
            if (std::to_string(d.invoice_id) == id || d.number == id) return d;
        }
        return std::nullopt;
    }
    std::string Pdf(const tally::billing::InvoiceDocument& d) override { return "%PDF " + d.customer; }
    std::string Csv(const tally::billing::InvoiceDocument& d) override { return d.customer + "\r\n"; }
    tally::api::FinanceBackend* Finance() override { return &finance; }
    tally::api::SalesBackend* Sales() override { return &sales; }

    FuzzFinance finance;
    FuzzSales sales;
    std::vector<tally::billing::InvoiceDocument> docs;
    std::string last_usage_customer;
};

tally::billing::InvoiceDocument Doc(int64_t id, const char* number, const char* customer, const char* status) {
    tally::billing::InvoiceDocument d;
    d.invoice_id = id;
    d.number = number;
    d.customer = customer;
    d.status = status;
    return d;
}

void CheckTarget(std::string_view raw) {
    tally::api::Target t;
    try {
        t = tally::api::ParseTarget(raw);
    } catch (const tally::api::HttpError& e) {
        TALLY_ASSERT(e.status == 400 || e.status == 414);
        TALLY_ASSERT(std::string_view(e.what()).size() > 0);
        return;
    }
    TALLY_ASSERT(raw.size() <= tally::api::kTargetMax);
    std::set<std::string> names;
    auto check = [](const std::string& s) {
        TALLY_ASSERT(s.size() <= tally::api::kValueMax);
        TALLY_ASSERT(tally::api::ValidUtf8(s));
        for (const char c : s) TALLY_ASSERT(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
    };
    for (const std::string& s : t.segments) {
        check(s);
        TALLY_ASSERT(!s.empty() && s.find('/') == std::string::npos && s != "." && s != "..");
    }
    for (const auto& [n, v] : t.query) {
        check(n);
        check(v);
        TALLY_ASSERT(names.insert(n).second);
    }
    TALLY_ASSERT(t.query.size() <= tally::api::kParametersMax);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static tally::api::Service service(tally::api::ServiceOptions{1000000, 1000000});
    static FuzzBackend backend = [] {
        FuzzBackend b;
        b.docs = {Doc(1, "INV-2026-000001", "cust_a", "finalized"), Doc(2, "INV-2026-000002", "cust_b", "finalized"),
                  Doc(3, "", "cust_a", "draft")};
        return b;
    }();
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    // The bytes as a whole request, through Beast with the server's limits.
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(tally::api::kHeaderMax));
    parser.body_limit(tally::api::kBodyMax);
    parser.eager(true);
    boost::beast::error_code ec;
    size_t used = 0;
    while (used < bytes.size() && !ec && !parser.is_done()) {
        const size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
        if (n == 0) break;
        used += n;
    }
    if (!ec && !parser.is_done()) parser.put_eof(ec);
    struct Attempt {
        std::string method, target, authorization, body;
    };
    std::vector<Attempt> requests;
    if (!ec && parser.is_done()) {
        const auto& req = parser.get();
        TALLY_ASSERT(req.body().size() <= tally::api::kBodyMax);
        const auto auth = req.find(http::field::authorization);
        const std::string method(req.method_string());
        requests.push_back({method == "POST" || method == "HEAD" ? method : "GET", std::string(req.target()),
                            auth == req.end() ? "" : std::string(auth->value()), req.body()});
    }
    // The bytes as a target alone, with each key.
    for (const char* key : {"", "Bearer tly_a", "Bearer tly_f", "Bearer tly_s"}) {
        requests.push_back({"GET", std::string(bytes), key, ""});
    }
    // The bytes as the body of each POST route, with the key that may use it.
    for (const char* target : {"/v1/invoice-runs", "/v1/invoices:finalize", "/v1/invoices/1/finalize",
                               "/v1/invoices/1/void", "/v1/invoices/1/credit-notes"}) {
        requests.push_back({"POST", target, "Bearer tly_f", std::string(bytes)});
    }
    for (const char* target : {"/v1/plans:validate", "/v1/plans", "/v1/quotes"}) {
        requests.push_back({"POST", target, "Bearer tly_s", std::string(bytes)});
    }
    for (const auto& [method, target, authorization, body] : requests) {
        CheckTarget(target);
        backend.last_usage_customer.clear();
        tally::api::Request r;
        r.method = method;
        r.target = target;
        r.authorization = authorization;
        r.body = body;
        std::string internal;
        const tally::api::Response res = service.Handle(r, backend, "1", &internal);
        TALLY_ASSERT(internal.empty());  // nothing the backend does here throws
        static const std::set<int> kStatuses = {200, 400, 401, 403, 404, 405, 409, 414, 429};
        TALLY_ASSERT(kStatuses.count(res.status) == 1);
        TALLY_ASSERT(!res.body.empty());
        if (res.content_type == "application/json") TALLY_ASSERT(res.body.front() == '{' && res.body.back() == '}');
        if (authorization == "Bearer tly_a") {
            TALLY_ASSERT(res.status != 200 || res.body.find("cust_b") == std::string::npos);
            TALLY_ASSERT(backend.last_usage_customer.empty() || backend.last_usage_customer == "cust_a");
        }
        if (authorization.empty() && target.rfind("/v1/", 0) == 0) TALLY_ASSERT(res.status != 200);
    }
    return 0;
}
