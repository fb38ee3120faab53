// What `tally serve`'s finance routes read and run, against a real
// PostgreSQL: dead letters (counts by reason, pages newest first with a
// cursor, raw bytes as stored) and an invoice run with a time bound (a run
// held past it is stopped and leaves nothing).
#include <gtest/gtest.h>

#include <chrono>
#include <pqxx/pqxx>

#include "base/reject_reason.h"
#include "ledger/dead_letter_reader.h"
#include "ledger/migrations.h"
#include "ledger/period_run.h"
#include "ledger/store.h"
#include "tests/ledger/ledger_db.h"

namespace tally::ledger {
namespace {

const char* const kPlan = R"(plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: UTC
    models:
      m:
        rates: {input: "2.00", output: "4.00"}
)";

class FinanceReadsTest : public LedgerDb {
   protected:
    void SetUp() override {
        LedgerDb::SetUp();
        if (HasFatalFailure()) return;
        Migrate(url_);
    }
    // Inserts a dead letter; returns its id.
    int64_t DeadLetter(int64_t offset, const std::string& code, const std::string& raw) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        const int64_t id =
            tx.exec_params1("INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, reason_code, reason, "
                            "raw, received_at) VALUES ('usage', 2, $1, $2, 'why ' || $2, $3, "
                            "timestamptz '2025-11-03 10:00:00.123+00') RETURNING dead_letter_id",
                            offset, code, pqxx::binarystring(raw))[0]
                .as<int64_t>();
        tx.commit();
        return id;
    }
};

TEST_F(FinanceReadsTest, DeadLettersByReasonNewestFirstWithTheirRawBytes) {
    DeadLetterReader reader(url_);
    EXPECT_TRUE(reader.List({}).empty());
    for (const DeadLetterCount& c : reader.CountByReason()) EXPECT_EQ(c.count, 0) << c.reason_code;
    const std::string binary("{\"x\0\xff\n", 6);
    std::vector<int64_t> ids;
    ids.push_back(DeadLetter(10, "invalid", binary));
    ids.push_back(DeadLetter(11, "unknown_customer", "{}"));
    ids.push_back(DeadLetter(12, "invalid", "not json"));
    ids.push_back(DeadLetter(13, "unknown_model", "{\"data\":{}}"));

    const std::vector<DeadLetterCount> counts = reader.CountByReason();
    ASSERT_EQ(counts.size(), kRejectReasons.size());  // every code, in base/reject_reason.h's order
    EXPECT_EQ(counts[0].reason_code, "invalid");
    EXPECT_EQ(counts[0].count, 2);
    EXPECT_EQ(counts[1].reason_code, "unknown_customer");
    EXPECT_EQ(counts[1].count, 1);
    int64_t total = 0;
    for (const DeadLetterCount& c : counts) total += c.count;
    EXPECT_EQ(total, 4);

    DeadLetterPage page;
    std::vector<DeadLetterEntry> all = reader.List(page);
    ASSERT_EQ(all.size(), 4u);
    EXPECT_EQ(all[0].id, ids[3]);  // newest first
    EXPECT_EQ(all[3].id, ids[0]);
    EXPECT_EQ(all[3].topic, "usage");
    EXPECT_EQ(all[3].partition, 2);
    EXPECT_EQ(all[3].offset, 10);
    EXPECT_EQ(all[3].reason_code, "invalid");
    EXPECT_EQ(all[3].reason, "why invalid");
    EXPECT_EQ(all[3].received_at, "2025-11-03T10:00:00.123Z");
    EXPECT_EQ(all[3].size, 6);

    page.reason_code = "invalid";
    std::vector<DeadLetterEntry> invalid = reader.List(page);
    ASSERT_EQ(invalid.size(), 2u);
    EXPECT_EQ(invalid[0].id, ids[2]);
    EXPECT_EQ(invalid[1].id, ids[0]);

    page = {};
    page.limit = 2;
    std::vector<DeadLetterEntry> first = reader.List(page);
    ASSERT_EQ(first.size(), 2u);
    page.before = first.back().id;
    std::vector<DeadLetterEntry> second = reader.List(page);
    ASSERT_EQ(second.size(), 2u);
    EXPECT_EQ(second[0].id, ids[1]);
    EXPECT_EQ(second[1].id, ids[0]);
    page.before = ids[0];
    EXPECT_TRUE(reader.List(page).empty());

    EXPECT_EQ(reader.Raw(ids[0]), binary);
    EXPECT_EQ(reader.Raw(ids[2]), "not json");
    EXPECT_FALSE(reader.Raw(ids[3] + 100).has_value());
}

TEST_F(FinanceReadsTest, ARunPastItsBoundIsStoppedAndLeavesNothing) {
    {
        Store store(url_);
        Diagnostics d;
        ASSERT_TRUE(store.PublishPlan(kPlan, "p.yaml", &d).has_value()) << (d.empty() ? "" : d[0].ToString());
        store.AddCustomer("a", "A");
        store.Subscribe("a", "p", "2025-01-01T00:00:00Z", "");
        InvoiceStore invoices(url_);
        Issuer is;
        is.issuer = "acme";
        is.name = "Acme";
        invoices.SetIssuer(is);
    }
    RunOptions o;
    o.period_id = MonthId(2025, 11);
    // Unbounded, as the CLI runs it: a run, no margin report without cost cards.
    const PeriodRun done = RunPeriod(url_, o);
    EXPECT_GT(done.result.run_id, 0);
    EXPECT_FALSE(done.margin_report_id.has_value());

    // A transaction holding invoice_runs: the run waits on it past its bound.
    pqxx::connection holder(url_);
    pqxx::work hold(holder);
    hold.exec0("LOCK TABLE invoice_runs IN ACCESS EXCLUSIVE MODE");
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(RunPeriod(url_, o, std::chrono::milliseconds(1500)), RunTimedOut);
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, std::chrono::milliseconds(1400));
    EXPECT_LT(took, std::chrono::seconds(20));
    hold.abort();

    pqxx::connection c(url_);
    pqxx::work tx(c);
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM invoice_runs")[0].as<int64_t>(), 1);  // the first run only
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'tally-run-%'")[0].as<int64_t>(),
              0);
}

}  // namespace
}  // namespace tally::ledger
