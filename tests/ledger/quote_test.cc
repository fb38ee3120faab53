// `tally quote` against a real PostgreSQL. Events are stored the way
// `tally consume` stores them (BatchAssembler under the published catalog,
// BatchWriter with the archive on); the quote's candidate side must equal
// `tally rate` of the same event lines under the candidate plan to the last
// byte of the invoice JSON, its current side must equal `tally usage`, an
// event the candidate cannot price is reported (exit 3), and a customer
// whose archive lacks billed calls is refused (exit 1).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "app/commands.h"
#include "app/report.h"
#include "ingest/batch_assembler.h"
#include "ledger/archive_reader.h"
#include "ledger/batch_writer.h"
#include "ledger/migrations.h"
#include "ledger/store.h"
#include "tests/ledger/ledger_db.h"

namespace tally {
namespace {

// Asia/Shanghai: the period 2025-11 is [2025-10-31T16:00Z, 2025-11-30T16:00Z).
const char* const kPublished = R"(
plan: hunyuan
name: "腾讯混元"
versions:
  - version: "2025-01"
    effective_from: 2025-01-01T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    tax_percent: "6"
    models:
      hunyuan-pro: {rates: {input: "30", output: "100"}}
      hunyuan-lite: {rates: {input: "0.8", output: "2"}}
)";

// The seed's price cut: -70 % on hunyuan-pro, in place of the published plan.
const char* const kCandidate = R"(
plan: hunyuan
name: "腾讯混元"
versions:
  - version: "2025-11-cut"
    effective_from: 2025-01-01T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    tax_percent: "6"
    models:
      hunyuan-pro: {rates: {input: "9", output: "30"}}
      hunyuan-lite: {rates: {input: "0.8", output: "2"}}
)";

// A candidate that no longer sells hunyuan-lite.
const char* const kCandidateNoLite = R"(
plan: hunyuan
versions:
  - version: "pro-only"
    effective_from: 2025-01-01T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    tax_percent: "6"
    models:
      hunyuan-pro: {rates: {input: "9", output: "30"}}
)";

const char* const kSubscriptions = R"(
subscriptions:
  - customer: acme
    name: "Acme 科技"
    plan: hunyuan
    discounts:
      - {name: contract, percent: "10"}
  - customer: beta
    name: "Beta Labs"
    plan: hunyuan
)";

std::string EventLine(const std::string& customer, int n, const std::string& time, const std::string& model,
                      int64_t input, int64_t output) {
    return R"({"specversion": "1.0", "id": ")" + customer + "-" + std::to_string(n) +
           R"(", "source": "gw", "type": "llm.call", "time": ")" + time + R"(", "subject": ")" + customer +
           R"(", "data": {"model": ")" + model + R"(", "input_tokens": )" + std::to_string(input) +
           R"(, "output_tokens": )" + std::to_string(output) + "}}";
}

// Calls of 2025-11 in Shanghai time, the first in UTC October, and two in
// the margins that belong to October and December.
struct Lines {
    std::vector<std::string> period;  // what `tally rate` is given
    std::vector<std::string> margins;
};

Lines MakeLines(const std::string& customer, int count) {
    Lines l;
    l.period.push_back(EventLine(customer, 0, "2025-10-31T17:00:00Z", "hunyuan-pro", 1234, 567));  // Nov 1 01:00 local
    for (int i = 1; i < count; ++i) {
        char time[32];
        std::snprintf(time, sizeof time, "2025-11-%02dT%02d:%02d:07.5Z", 1 + i % 29, i % 24, i % 60);
        l.period.push_back(
            EventLine(customer, i, time, i % 3 == 0 ? "hunyuan-lite" : "hunyuan-pro", 1000 + i * 37, 100 + i * 11));
    }
    l.margins.push_back(EventLine(customer, count, "2025-10-31T15:59:59.999Z", "hunyuan-pro", 99999, 9999));  // October
    l.margins.push_back(
        EventLine(customer, count + 1, "2025-11-30T16:00:00Z", "hunyuan-pro", 88888, 8888));  // December
    return l;
}

class QuoteTest : public ledger::LedgerDb {
   protected:
    void SetUp() override {
        LedgerDb::SetUp();
        ledger::Migrate(url_);
        store_ = std::make_unique<ledger::Store>(url_);
        Diagnostics d;
        ASSERT_TRUE(store_->PublishPlan(kPublished, "hunyuan.yaml", &d).has_value());
        ASSERT_TRUE(store_->ImportSubscriptions(kSubscriptions, "subs.yaml", "2025-01-01T00:00:00Z", &d).has_value());
        dir_ = std::filesystem::temp_directory_path() / ("tally-quote-" + name_);
        std::filesystem::create_directories(dir_);
        candidate_ = Write("candidate.yaml", kCandidate);
        subscriptions_ = Write("subs.yaml", kSubscriptions);
    }
    void TearDown() override {
        std::filesystem::remove_all(dir_);
        LedgerDb::TearDown();
    }

    std::string Write(const std::string& name, const std::string& text) {
        const std::string path = (dir_ / name).string();
        std::ofstream(path) << text;
        return path;
    }

    // Stores lines as `tally consume` does: one batch on `partition`.
    void StoreAsConsumed(const std::vector<std::string>& lines, int32_t partition, bool archive) {
        const ingest::CatalogSnapshot snapshot = store_->Load();
        ingest::BatchAssembler assembler(snapshot, snapshot.catalog.plans.front().name, {});
        std::vector<ingest::Message> messages;
        for (size_t i = 0; i < lines.size(); ++i) messages.push_back({partition, static_cast<int64_t>(i), lines[i]});
        ingest::AssembledBatch ab = assembler.Assemble(messages);
        ASSERT_TRUE(ab.batch.dead_letters.empty()) << ab.batch.dead_letters.front().detail;
        ab.batch.offsets = {{partition, -1, static_cast<int64_t>(lines.size())}};
        ab.batch.archive = archive;
        ledger::BatchWriter writer(url_, "g", "usage");
        const ingest::StoreResult r = writer.Store(ab.batch, [&](const std::vector<ingest::KeyOutcome>& outcomes) {
            return ingest::NewCallRecords(snapshot.catalog, ab, outcomes);
        });
        ASSERT_EQ(r.accepted, static_cast<int64_t>(lines.size()));
    }

    // `tally rate` of these lines under these plans, the JSON's invoices array.
    std::string RateInvoices(const std::vector<std::string>& lines, const std::string& plan, const std::string& who) {
        std::string text;
        for (const auto& l : lines) text += l + "\n";
        RateOptions o;
        o.plans = {plan};
        o.events = {Write("events-" + who + ".jsonl", text)};
        o.subscriptions = subscriptions_;
        o.customer = who;
        o.format = "json";
        std::ostringstream out, err;
        EXPECT_EQ(RunRate(o, out, err), kExitOk) << err.str();
        return InvoicesArray(out.str());
    }

    static std::string InvoicesArray(const std::string& json) {
        const size_t end = json.find("],\"rejected\":");
        EXPECT_NE(end, std::string::npos) << json;
        return json.substr(0, end + 1);
    }

    static std::string Json(const std::vector<Invoice>& invoices) {
        std::ostringstream out;
        WriteInvoicesJson(out, invoices, {});
        return InvoicesArray(out.str());
    }

    QuoteOptions Options(const std::string& customer) {
        QuoteOptions o;
        o.database_url = url_;
        o.customer = customer;
        o.period = "2025-11";
        o.plan = candidate_;
        o.format = "json";
        o.terminal = false;
        return o;
    }

    std::unique_ptr<ledger::Store> store_;
    std::filesystem::path dir_;
    std::string candidate_, subscriptions_;
};

TEST_F(QuoteTest, CandidateEqualsRateUnderTheCandidateAndCurrentEqualsUsage) {
    const Lines acme = MakeLines("acme", 300);
    std::vector<std::string> all = acme.period;
    all.insert(all.end(), acme.margins.begin(), acme.margins.end());
    StoreAsConsumed(all, 0, true);

    QuoteResult result;
    std::ostringstream err;
    ASSERT_EQ(ComputeQuote(Options("acme"), &result, err), kExitOk) << err.str();
    EXPECT_EQ(result.candidate_plan, "hunyuan");
    EXPECT_TRUE(result.replaces_published);
    ASSERT_EQ(result.customers.size(), 1u);
    const QuoteCustomerResult& c = result.customers[0];
    EXPECT_TRUE(c.rejected.empty());
    EXPECT_FALSE(c.archive_incomplete);
    ASSERT_TRUE(c.quote.errors.empty()) << c.quote.errors.front();
    EXPECT_EQ(c.archived, 302);  // the period and both margins were read
    EXPECT_EQ(c.quote.calls_current, 300);
    EXPECT_EQ(c.quote.calls_candidate, 300);

    // Candidate: `tally rate` of the period's lines under the candidate plan, byte for byte.
    ASSERT_EQ(c.candidate.size(), 1u);
    EXPECT_EQ(Json(c.candidate), RateInvoices(acme.period, candidate_, "acme"));
    // Current: `tally usage` of the period, and `tally rate` under the published plan.
    UsageOptions u;
    u.database_url = url_;
    u.customer = "acme";
    u.period = "2025-11";
    u.format = "json";
    std::ostringstream usage_out, usage_err;
    ASSERT_EQ(RunUsage(u, usage_out, usage_err), kExitOk) << usage_err.str();
    EXPECT_EQ(Json(c.current), InvoicesArray(usage_out.str()));
    EXPECT_EQ(Json(c.current), RateInvoices(acme.period, Write("published.yaml", kPublished), "acme"));

    // The comparison adds up: -70 % on every hunyuan-pro line, lite unchanged.
    for (const billing::QuoteLine& l : c.quote.lines) {
        // The rounding line (round_at: invoice) depends on each side's
        // exact sum: it may be on one side only.
        if (l.key.kind == LineKind::kRounding) continue;
        ASSERT_TRUE(l.in_current && l.in_candidate) << l.key.model << " " << l.key.unit;
        EXPECT_EQ(l.quantity_current, l.quantity_candidate);
        if (l.key.model == "hunyuan-lite") {
            EXPECT_TRUE(l.amount.difference.is_zero());
        }
    }
    EXPECT_EQ(c.quote.total.current, c.current[0].total);
    EXPECT_EQ(c.quote.total.candidate, c.candidate[0].total);
    EXPECT_EQ(c.quote.total.difference, c.candidate[0].total - c.current[0].total);
    EXPECT_TRUE(c.quote.total.difference.is_negative());
}

TEST_F(QuoteTest, AllCustomersGiveOneRowEachAndABookTotal) {
    const Lines acme = MakeLines("acme", 40);
    const Lines beta = MakeLines("beta", 25);
    StoreAsConsumed(acme.period, 0, true);
    StoreAsConsumed(beta.period, 1, true);
    QuoteOptions o = Options("");
    o.all_customers = true;
    QuoteResult result;
    std::ostringstream err;
    ASSERT_EQ(ComputeQuote(o, &result, err), kExitOk) << err.str();
    ASSERT_EQ(result.customers.size(), 2u);
    EXPECT_EQ(result.customers[0].quote.customer, "acme");
    EXPECT_EQ(result.customers[1].quote.customer, "beta");
    EXPECT_EQ(Json(result.customers[1].candidate), RateInvoices(beta.period, candidate_, "beta"));
    ASSERT_EQ(result.book.totals.size(), 1u);
    const billing::BookTotal& t = result.book.totals[0];
    EXPECT_EQ(t.customers, 2);
    EXPECT_EQ(t.total.current, result.customers[0].quote.total.current + result.customers[1].quote.total.current);
    EXPECT_EQ(t.total.candidate, result.customers[0].quote.total.candidate + result.customers[1].quote.total.candidate);
    // Progress was written as periodic lines (not a terminal).
    EXPECT_NE(err.str().find("done: 2/2 customers"), std::string::npos) << err.str();

    std::ostringstream out, err2;
    o.format = "table";
    EXPECT_EQ(RunQuote(o, out, err2), kExitOk) << err2.str();
    EXPECT_NE(out.str().find("book total"), std::string::npos) << out.str();
}

TEST_F(QuoteTest, EventsTheCandidateCannotPriceAreReportedWithExit3) {
    const Lines acme = MakeLines("acme", 30);  // every third call is hunyuan-lite
    std::vector<std::string> all = acme.period;
    all.push_back(EventLine("acme", 900, "2025-10-31T12:00:00Z", "hunyuan-lite", 5, 5));  // October: not this quote's
    StoreAsConsumed(all, 3, true);
    QuoteOptions o = Options("acme");
    o.plan = Write("no-lite.yaml", kCandidateNoLite);
    QuoteResult result;
    std::ostringstream err;
    ASSERT_EQ(ComputeQuote(o, &result, err), kExitOk) << err.str();
    const QuoteCustomerResult& c = result.customers[0];
    ASSERT_EQ(c.rejected.size(), 9u);  // calls 3, 6, ..., 27 of November; not October's
    for (const QuoteRejected& r : c.rejected) {
        EXPECT_EQ(r.code, "unknown_model");
        EXPECT_EQ(r.partition, 3);
        EXPECT_EQ(r.topic, "usage");
        EXPECT_EQ(r.offset % 3, 0);
        EXPECT_NE(r.reason.find("hunyuan-lite"), std::string::npos) << r.reason;
    }
    EXPECT_EQ(c.quote.calls_candidate, 21);
    EXPECT_EQ(c.quote.calls_current, 30);

    std::ostringstream out, err2;
    EXPECT_EQ(RunQuote(o, out, err2), kExitPartial);
    EXPECT_NE(out.str().find("\"code\":\"unknown_model\""), std::string::npos);
    EXPECT_NE(err2.str().find("9 call(s) of the period could not be priced under the candidate"), std::string::npos)
        << err2.str();
}

TEST_F(QuoteTest, AnIncompleteArchiveIsRefused) {
    const Lines acme = MakeLines("acme", 20);
    std::vector<std::string> first(acme.period.begin(), acme.period.begin() + 12);
    std::vector<std::string> rest(acme.period.begin() + 12, acme.period.end());
    StoreAsConsumed(first, 0, true);
    StoreAsConsumed(rest, 1, false);  // consumed with --no-archive
    QuoteResult result;
    std::ostringstream err;
    ASSERT_EQ(ComputeQuote(Options("acme"), &result, err), kExitOk) << err.str();
    ASSERT_EQ(result.customers.size(), 1u);
    EXPECT_TRUE(result.customers[0].archive_incomplete);
    ASSERT_FALSE(result.customers[0].quote.errors.empty());

    std::ostringstream out, err2;
    EXPECT_EQ(RunQuote(Options("acme"), out, err2), kExitFailure);
    EXPECT_NE(err2.str().find("the ledger bills 20 calls but the archive holds 12"), std::string::npos) << err2.str();
    EXPECT_NE(err2.str().find("archive is incomplete"), std::string::npos);

    // A candidate in another time zone counts the archive's calls of the
    // period by re-rating them under the published plan: refused the same.
    QuoteOptions utc = Options("acme");
    std::string text = kCandidate;
    text.replace(text.find("Asia/Shanghai"), 13, "UTC");
    utc.plan = Write("utc.yaml", text);
    std::ostringstream out3, err3;
    EXPECT_EQ(RunQuote(utc, out3, err3), kExitFailure);
    EXPECT_NE(err3.str().find("the ledger bills 20 calls but the archive holds 12"), std::string::npos) << err3.str();
}

TEST_F(QuoteTest, ACandidateInAnotherTimeZoneMovesCallsBetweenPeriods) {
    // Shanghai's November starts 8 hours before UTC's: under a UTC
    // candidate, the first call (2025-10-31T17:00Z) is October's, and the
    // archive still holds every call the ledger bills for November.
    const Lines acme = MakeLines("acme", 50);
    std::vector<std::string> all = acme.period;
    all.insert(all.end(), acme.margins.begin(), acme.margins.end());
    StoreAsConsumed(all, 0, true);
    QuoteOptions utc = Options("acme");
    std::string text = kCandidate;
    text.replace(text.find("Asia/Shanghai"), 13, "UTC");
    utc.plan = Write("utc.yaml", text);
    QuoteResult result;
    std::ostringstream err;
    ASSERT_EQ(ComputeQuote(utc, &result, err), kExitOk) << err.str();
    const QuoteCustomerResult& c = result.customers[0];
    ASSERT_TRUE(c.quote.errors.empty()) << c.quote.errors.front();
    EXPECT_EQ(c.quote.calls_current, 50);
    // Not the first call (October in UTC), and the December margin call
    // (2025-11-30T16:00Z) is November in UTC.
    EXPECT_EQ(c.quote.calls_candidate, 50);
    std::vector<std::string> utc_november(acme.period.begin() + 1, acme.period.end());
    utc_november.push_back(acme.margins[1]);
    EXPECT_EQ(Json(c.candidate), RateInvoices(utc_november, utc.plan, "acme"));
}

// The same -70 % cut written as changes to the published version: the
// candidate resolves against the ledger's plan and bills what kCandidate,
// written in full, bills (30 x 0.3 = 9, 100 x 0.3 = 30), byte for byte.
TEST_F(QuoteTest, ACandidateWrittenAsChangesToThePublishedVersion) {
    const Lines acme = MakeLines("acme", 60);
    std::vector<std::string> all = acme.period;
    all.insert(all.end(), acme.margins.begin(), acme.margins.end());
    StoreAsConsumed(all, 0, true);
    QuoteOptions o = Options("acme");
    o.plan = Write("cut.yaml", R"(
plan: hunyuan
name: "腾讯混元"
versions:
  - version: "2025-11-cut"
    extends: "2025-01"
    effective_from: 2025-10-01T00:00:00+08:00
    changes:
      - {multiplier: "0.3", models: [hunyuan-pro]}
)");
    QuoteResult result;
    std::ostringstream err;
    ASSERT_EQ(ComputeQuote(o, &result, err), kExitOk) << err.str();
    ASSERT_EQ(result.customers.size(), 1u);
    const QuoteCustomerResult& c = result.customers[0];
    ASSERT_TRUE(c.quote.errors.empty()) << c.quote.errors.front();
    EXPECT_EQ(Json(c.candidate), RateInvoices(acme.period, candidate_, "acme"));
    EXPECT_TRUE(c.quote.total.difference.is_negative());
}

TEST_F(QuoteTest, AnInvalidCandidateIsRefusedWithLineAndColumn) {
    QuoteOptions o = Options("acme");
    o.plan = Write("bad.yaml", "plan: hunyuan\nversions:\n  - version: x\n    currency: XXX\n");
    std::ostringstream out, err;
    EXPECT_EQ(RunQuote(o, out, err), kExitFailure);
    EXPECT_NE(err.str().find("bad.yaml:"), std::string::npos) << err.str();
    EXPECT_NE(err.str().find("the candidate plan is not valid"), std::string::npos) << err.str();
}

TEST_F(QuoteTest, ArchiveReaderStreamsEveryMessageByteForByte) {
    const Lines acme = MakeLines("acme", 100);
    StoreAsConsumed(acme.period, 2, true);
    ledger::ArchiveReader reader(url_);
    const Instant from = *ParseRfc3339("2025-10-31T00:00:00Z");
    const Instant to = *ParseRfc3339("2025-12-01T00:00:00Z");
    EXPECT_EQ(reader.Customers(from, to), std::vector<std::string>{"acme"});
    EXPECT_TRUE(reader.Customers(*ParseRfc3339("2025-12-05T00:00:00Z"), *ParseRfc3339("2026-01-01T00:00:00Z")).empty());
    std::multiset<std::string> seen;
    const int64_t n = reader.ForEachEvent("acme", from, to, [&](const ledger::ArchivedEvent& e) {
        EXPECT_EQ(e.customer, "acme");
        EXPECT_EQ(e.partition, 2);
        seen.insert(std::string(e.payload));
    });
    EXPECT_EQ(n, 100);
    EXPECT_EQ(seen, std::multiset<std::string>(acme.period.begin(), acme.period.end()));
}

}  // namespace
}  // namespace tally
