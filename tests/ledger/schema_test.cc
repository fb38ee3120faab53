// What sql/0002 makes the database itself refuse, and how it converts the
// rows of a ledger written under 0001: reason codes are exactly the enum's,
// calls rows, subscriptions append-only, ranges and foreign keys. And the
// Store's side of it: subscriptions inserted only, usage read as records.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "base/reject_reason.h"
#include "ledger/migrations.h"
#include "ledger/store.h"
#include "tests/ledger/ledger_db.h"

namespace tally::ledger {
namespace {

class LedgerSchema : public LedgerDb {
   protected:
    void Exec(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        tx.exec0(sql);
        tx.commit();
    }
    std::string Text(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        return tx.exec1(sql)[0].as<std::string>();
    }
    // The message of the error `sql` fails with, or "" when it succeeds.
    std::string Refusal(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        try {
            tx.exec0(sql);
        } catch (const pqxx::sql_error& e) {
            return e.what();
        }
        return "";
    }
    // A customer c1 and plan p version v1, for rows that name them.
    void Catalog() {
        Exec(
            "INSERT INTO customers (customer_id) VALUES ('c1');"
            "INSERT INTO plan_versions (plan, version, effective_from, currency, body, body_sha256) "
            "VALUES ('p', 'v1', '2025-01-01Z', 'CNY', 'plan: p', 'x');"
            "INSERT INTO plan_names (plan, name) VALUES ('p', 'P')");
    }
    // A rollups (or rollup_deltas) row of c1 on p v1 with these values.
    static std::string Row(const std::string& table, const std::string& cell, const std::string& unit,
                           const std::string& quantity, const std::string& calls) {
        return "INSERT INTO " + table +
               " (customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit, "
               "quantity, calls) VALUES ('c1', 1, 1, 'p', 'v1', 'm', " +
               cell + ", '" + unit + "', " + quantity + ", " + calls + ")";
    }
};

bool Has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST_F(LedgerSchema, ReasonCodesAreExactlyTheEnumsCodes) {
    Migrate(url_);
    int64_t offset = 0;
    for (RejectReason r : kRejectReasons) {
        const std::string code(RejectReasonCode(r));
        EXPECT_EQ(Refusal("INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, reason_code, reason, "
                          "raw) VALUES ('t', 0, " +
                          std::to_string(offset++) + ", '" + code + "', 'why', '')"),
                  "")
            << code;
    }
    for (const char* code : {"unpriced", "bogus", ""}) {
        EXPECT_TRUE(Has(Refusal(std::string("INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, "
                                            "reason_code, reason, raw) VALUES ('t', 1, 0, '") +
                                code + "', 'why', '')"),
                        "dead_letters_reason_code_known"))
            << code;
    }
}

// A ledger written by a tally of 0001, then migrated.
TEST_F(LedgerSchema, RowsWrittenUnder0001AreConverted) {
    ASSERT_GE(Migrations().size(), 2u);
    const Migration& first = Migrations()[0];
    {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        tx.exec0(  // as Migrate creates it
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())");
        tx.exec(std::string(first.sql));
        tx.exec_params0(
            "INSERT INTO schema_migrations (version, name, sha256) "
            "VALUES ($1, $2, encode(sha256(convert_to($3, 'UTF8')), 'hex'))",
            first.version, std::string(first.name), std::string(first.sql));
        tx.commit();
    }
    Catalog();
    // Hour 1: rollups say 3 calls had input, 1 had output; two batches'
    // deltas add 2 more with input. Hour 2: deltas only.
    Exec(Row("rollups", "0, -1, -1, 0", "input", "300", "3") + ";" +
         Row("rollups", "0, -1, -1, 0", "output", "10", "1") + ";" +
         Row("rollup_deltas", "0, -1, -1, 0", "input", "20", "1") + ";" +
         Row("rollup_deltas", "0, -1, -1, 0", "input", "20", "1") + ";" +
         "INSERT INTO rollup_deltas (customer_id, period, hour, plan, version, model, band, condition, time_window, "
         "flags, unit, quantity, calls) VALUES ('c1', 1, 2, 'p', 'v1', 'm', 0, -1, -1, 0, 'output', 7, 4)");
    Exec(
        "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, reason_code, reason, raw) VALUES "
        "('t', 0, 1, 'unpriced', 'model ''x'' has no price in plan p version v1', ''),"
        "('t', 0, 2, 'unpriced', 'plan p has no version in force at 2025-01-01T00:00:00Z', ''),"
        "('t', 0, 3, 'unpriced', 'the prompt has 300000 input tokens, above the top band of model m (256000)', ''),"
        "('t', 0, 4, 'unpriced', 'customer c1 has no subscription in force at 2025-01-01T00:00:00Z', ''),"
        "('t', 0, 5, 'unpriced', 'a token count is negative', ''),"
        "('t', 0, 6, 'conflict', '(source, id) = (gw, 1) was already billed', ''),"
        "('t', 0, 7, 'unknown_customer', 'unknown customer', '')");

    const MigrateResult r = Migrate(url_);
    EXPECT_EQ(r.applied.size(), Migrations().size() - 1);

    EXPECT_EQ(Text("SELECT count(*) FROM rollup_deltas"), "0");  // folded first
    EXPECT_EQ(Text("SELECT string_agg(hour || ':' || unit || ':' || quantity || ':' || calls, ' ' "
                   "ORDER BY hour, unit) FROM usage_rollups"),
              "1::0:5 1:input:340:0 1:output:10:0 2::0:4 2:output:7:0");
    EXPECT_EQ(Text("SELECT string_agg(reason_code, ' ' ORDER BY kafka_offset) FROM dead_letters"),
              "unknown_model no_plan_version above_top_band no_subscription invalid conflict unknown_customer");
}

TEST_F(LedgerSchema, SubscriptionsAreAppendOnly) {
    Migrate(url_);
    Catalog();
    Exec("INSERT INTO subscriptions (customer_id, valid_from, plan) VALUES ('c1', '2025-01-01Z', 'p')");
    for (const char* change :
         {"UPDATE subscriptions SET terms = 'x: 1'", "DELETE FROM subscriptions", "TRUNCATE subscriptions"}) {
        EXPECT_TRUE(Has(Refusal(change), "not allowed")) << change;
    }
    EXPECT_EQ(Text("SELECT count(*) FROM subscriptions WHERE terms = ''"), "1");
}

TEST_F(LedgerSchema, ChecksRefuseRowsTallyNeverWrites) {
    Migrate(url_);
    Catalog();
    const std::string ok = "0, -1, -1, 0";
    for (const std::string table : {"rollups", "rollup_deltas"}) {
        EXPECT_EQ(Refusal(Row(table, ok, "input", "5", "0")), "") << table;
        EXPECT_EQ(Refusal(Row(table, "3, 2, 1, 3", "", "0", "5")), "") << table;
        const std::vector<std::pair<std::string, std::string>> bad = {
            {Row(table, "-1, -1, -1, 0", "input", "5", "0"), table + "_band_check"},
            {Row(table, "0, -2, -1, 0", "input", "5", "0"), table + "_condition_check"},
            {Row(table, "0, -1, -2, 0", "input", "5", "0"), table + "_time_window_check"},
            {Row(table, "0, -1, -1, 4", "input", "5", "0"), table + "_flags_check"},
            {Row(table, "0, -1, -1, -1", "input", "5", "0"), table + "_flags_check"},
            {Row(table, ok, "", "5", "1"), table + "_calls_row_has_no_quantity"},
            {Row(table, ok, "input", "5", "1"), table + "_unit_row_has_no_calls"},
        };
        for (const auto& [sql, constraint] : bad) EXPECT_TRUE(Has(Refusal(sql), constraint)) << sql;
    }
    EXPECT_TRUE(Has(Refusal("INSERT INTO offset_gaps (consumer_group, topic, kafka_partition, from_offset, "
                            "to_offset, skipped_by) VALUES ('g', 't', 0, 10, 10, 'me')"),
                    "offset_gaps_range_check"));
    EXPECT_EQ(Refusal("INSERT INTO offset_gaps (consumer_group, topic, kafka_partition, from_offset, to_offset, "
                      "skipped_by) VALUES ('g', 't', 0, 10, 11, 'me')"),
              "");
    EXPECT_TRUE(Has(Refusal("INSERT INTO plan_versions (plan, version, effective_from, effective_until, currency, "
                            "body, body_sha256) VALUES ('p', 'v2', '2025-02-01Z', '2025-02-01Z', 'CNY', 'b', 'x')"),
                    "plan_versions_effective_range_check"));
}

TEST_F(LedgerSchema, ForeignKeysRefuseUnknownNamesButNotOnTheDeltas) {
    Migrate(url_);
    Catalog();
    EXPECT_TRUE(Has(Refusal("INSERT INTO subscriptions (customer_id, valid_from, plan) "
                            "VALUES ('c1', '2025-01-01Z', 'nope')"),
                    "subscriptions_plan_fkey"));
    EXPECT_TRUE(Has(Refusal("INSERT INTO subscriptions (customer_id, valid_from, plan) "
                            "VALUES ('c9', '2025-01-01Z', 'p')"),
                    "subscriptions_customer_id_fkey"));
    auto row = [](const std::string& table, const std::string& customer, const std::string& version) {
        return "INSERT INTO " + table +
               " (customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit, "
               "quantity, calls) VALUES ('" +
               customer + "', 1, 1, 'p', '" + version + "', 'm', 0, -1, -1, 0, '', 0, 1)";
    };
    EXPECT_TRUE(Has(Refusal(row("rollups", "c9", "v1")), "rollups_customer_fkey"));
    EXPECT_TRUE(Has(Refusal(row("rollups", "c1", "v9")), "rollups_plan_version_fkey"));
    EXPECT_EQ(Refusal(row("rollups", "c1", "v1")), "");
    EXPECT_EQ(Refusal(row("rollup_deltas", "c9", "v9")), "");  // the hot path has no foreign keys
}

const char* const kPlan = R"(
plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: USD
    time_zone: UTC
    models:
      m:
        rates: {input: "0.27", output: "1.10"}
)";

TEST_F(LedgerSchema, StoreSubscribesByInsertingOnly) {
    Migrate(url_);
    Store store(url_);
    Diagnostics d;
    ASSERT_TRUE(store.PublishPlan(kPlan, "p.yaml", &d).has_value());
    store.AddCustomer("c1", "C1");
    store.Subscribe("c1", "p", "2025-01-01T00:00:00Z", "");
    store.Subscribe("c1", "p", "2025-01-01T00:00:00Z", "");  // the same again: nothing changes
    try {
        store.Subscribe("c1", "p", "2025-01-01T00:00:00Z", "minimum_commitment: \"10\"");
        ADD_FAILURE() << "a stored subscription was replaced";
    } catch (const LedgerError& e) {
        EXPECT_TRUE(Has(e.what(), "subscribe again from a later instant")) << e.what();
    }
    EXPECT_EQ(Text("SELECT count(*) FROM subscriptions"), "1");
    const ingest::CatalogSnapshot snapshot = store.Load();
    EXPECT_EQ(snapshot.subscriptions.size(), 1u);
    EXPECT_EQ(snapshot.customers.count("c1"), 1u);
    EXPECT_EQ(snapshot.catalog.PlanIndex("p"), 0);
}

TEST_F(LedgerSchema, StoreLoadsUsageAsRecords) {
    Migrate(url_);
    Catalog();
    Exec(Row("rollups", "0, -1, -1, 0", "", "0", "2") + ";" + Row("rollup_deltas", "0, -1, -1, 0", "", "0", "1") + ";" +
         Row("rollup_deltas", "0, -1, -1, 0", "input", "9", "0"));
    Store store(url_);
    const std::vector<RollupRecord> records = store.LoadRollups("c1", -1);
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[0].unit, "");
    EXPECT_EQ(records[0].calls, 3);
    EXPECT_EQ(records[0].quantity, 0);
    EXPECT_EQ(records[1].unit, "input");
    EXPECT_EQ(records[1].quantity, 9);
    EXPECT_EQ(records[1].calls, 0);
    EXPECT_EQ(store.LoadRollups("c2", -1).size(), 0u);
}

}  // namespace
}  // namespace tally::ledger
