// Cost cards and margin reports in a real PostgreSQL (sql/0004): versions
// immutable in the Store and in the database itself, reports written in
// one transaction and read back equal.
#include "ledger/cost_store.h"

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "ledger/migrations.h"
#include "tests/ledger/ledger_db.h"

namespace tally::ledger {
namespace {

const char* const kCard = R"(cost_card: gpu
name: "GPU 成本"
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    models:
      m:
        bands:
          - up_to: 32000
            rates: {input: "0.3", output: "3"}
          - rates: {input: "0.6", output: "6"}
)";

// v1 as above, with a new version v2.
const char* const kCardWithV2 = R"(cost_card: gpu
name: "GPU 成本"
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    models:
      m:
        bands:
          - up_to: 32000
            rates: {input: "0.3", output: "3"}
          - rates: {input: "0.6", output: "6"}
  - version: v2
    effective_from: 2025-11-15T00:00:00Z
    currency: CNY
    models:
      m: {rates: {input: "0.2", output: "2"}}
)";

class CostStoreTest : public LedgerDb {
   protected:
    void SetUp() override {
        LedgerDb::SetUp();
        if (HasFatalFailure()) return;
        Migrate(url_);
        store_ = std::make_unique<CostStore>(url_);
    }
    void TearDown() override {
        store_.reset();
        LedgerDb::TearDown();
    }
    std::string Text(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        return tx.exec1(sql)[0].as<std::string>();
    }
    std::unique_ptr<CostStore> store_;
};

TEST_F(CostStoreTest, PublishesOnceAndRefusesAChangedVersion) {
    Diagnostics d;
    auto first = store_->PublishCostCard(kCard, "gpu.yaml", &d);
    ASSERT_TRUE(first.has_value()) << (d.empty() ? "" : d[0].ToString());
    EXPECT_EQ(first->card, "gpu");
    EXPECT_EQ(first->published, std::vector<std::string>{"v1"});
    EXPECT_TRUE(first->unchanged.empty());
    const std::string sha = Text("SELECT body_sha256 FROM cost_card_versions WHERE card = 'gpu' AND version = 'v1'");
    EXPECT_EQ(sha.size(), 64u);

    // The same body again: nothing stored.
    auto again = store_->PublishCostCard(kCard, "gpu.yaml", &d);
    ASSERT_TRUE(again.has_value());
    EXPECT_TRUE(again->published.empty());
    EXPECT_EQ(again->unchanged, std::vector<std::string>{"v1"});
    EXPECT_EQ(Text("SELECT count(*) FROM cost_card_versions"), "1");

    // A new version beside it: only v2 stored.
    auto v2 = store_->PublishCostCard(kCardWithV2, "gpu.yaml", &d);
    ASSERT_TRUE(v2.has_value()) << (d.empty() ? "" : d[0].ToString());
    EXPECT_EQ(v2->published, std::vector<std::string>{"v2"});
    EXPECT_EQ(v2->unchanged, std::vector<std::string>{"v1"});

    // v1 with another cost: refused, nothing changed.
    std::string changed = kCard;
    changed.replace(changed.find("\"0.3\""), 5, "\"0.4\"");
    try {
        store_->PublishCostCard(changed, "gpu.yaml", &d);
        ADD_FAILURE() << "a changed version was published";
    } catch (const LedgerError& e) {
        EXPECT_NE(std::string(e.what()).find("already published with different costs"), std::string::npos) << e.what();
    }
    EXPECT_EQ(Text("SELECT body_sha256 FROM cost_card_versions WHERE card = 'gpu' AND version = 'v1'"), sha);

    // Loaded back: both versions, with their costs.
    CostCatalog costs = store_->LoadCostCards();
    ASSERT_EQ(costs.cards().size(), 1u);
    EXPECT_EQ(costs.cards()[0].display_name, "GPU 成本");
    ASSERT_EQ(costs.cards()[0].versions.size(), 2u);
    auto at = [](const char* t) { return *ParseRfc3339(t); };
    // 1,000,000 input tokens in the band from 32001: 0.6 under v1, 0.2 under v2.
    EXPECT_EQ(costs.Cost("m", "input", 32001, at("2025-11-03T00:00:00Z"), 1'000'000).amount->ToString(), "0.6");
    EXPECT_EQ(costs.Cost("m", "input", 32001, at("2025-11-20T00:00:00Z"), 1'000'000).amount->ToString(), "0.2");
}

TEST_F(CostStoreTest, RefusesAnInvalidCardAndAModelOfAnotherCard) {
    Diagnostics d;
    EXPECT_FALSE(store_->PublishCostCard("cost_card: gpu\nversions: []\n", "bad.yaml", &d).has_value());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].ToString(), "bad.yaml:2:11: error: versions must be a list with at least one version");
    d.clear();
    // Versions reached through a merge key at the top: refused, never an abort.
    std::string top = "{<<: " + std::string("{cost_card: gpu, versions: [{version: v1, effective_from: "
                                            "2025-01-01T00:00:00Z, currency: CNY, models: {m: {rates: {input: \"1\", "
                                            "output: \"2\"}}}}]}") + "}\n";
    EXPECT_FALSE(store_->PublishCostCard(top, "merged.yaml", &d).has_value());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].ToString(),
              "merged.yaml: error: write versions: as a list at the top of the file to publish it, not through a "
              "merge key (<<)");
    EXPECT_EQ(Text("SELECT count(*) FROM cost_card_versions"), "0");
    d.clear();
    ASSERT_TRUE(store_->PublishCostCard(kCard, "gpu.yaml", &d).has_value());
    std::string other = kCard;
    other.replace(other.find("cost_card: gpu"), 14, "cost_card: tpu");
    EXPECT_FALSE(store_->PublishCostCard(other, "tpu.yaml", &d).has_value());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_NE(d[0].message.find("model 'm' is costed by cost card 'tpu' and by cost card 'gpu'"), std::string::npos)
        << d[0].ToString();
    EXPECT_EQ(Text("SELECT count(*) FROM cost_card_versions"), "1");
}

TEST_F(CostStoreTest, TheDatabaseRefusesUpdateAndDeleteOfCostCardVersions) {
    Diagnostics d;
    ASSERT_TRUE(store_->PublishCostCard(kCard, "gpu.yaml", &d).has_value());
    for (const char* change : {"UPDATE cost_card_versions SET body = 'x'", "DELETE FROM cost_card_versions"}) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        try {
            tx.exec0(change);
            ADD_FAILURE() << change << " was allowed";
        } catch (const pqxx::sql_error& e) {
            EXPECT_NE(std::string(e.what()).find("immutable"), std::string::npos) << e.what();
        }
    }
    EXPECT_EQ(Text("SELECT count(*) FROM cost_card_versions"), "1");
}

billing::MarginRow Row(const char* customer, const char* model, const char* day, const char* revenue,
                       std::optional<const char*> cost, const char* error = "") {
    const Currency cny = *Currency::FromCode("CNY");
    billing::MarginRow r;
    r.customer = customer;
    r.plan = "p";
    r.model = model;
    r.day = day;
    r.figures.currency = cny;
    r.figures.revenue = Amount(cny, *Decimal::Parse(revenue));
    if (cost) r.figures.cost = Amount(cny, *Decimal::Parse(*cost));
    if (!cost) r.figures.cost_unknown = "no cost card costs model " + std::string(model);
    r.figures.error = error;
    r.figures.calls = 3;
    billing::FinishFigures(&r.figures);
    return r;
}

void ExpectEqualRows(const std::vector<billing::MarginRow>& a, const std::vector<billing::MarginRow>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(a[i].customer, b[i].customer);
        EXPECT_EQ(a[i].plan, b[i].plan);
        EXPECT_EQ(a[i].model, b[i].model);
        EXPECT_EQ(a[i].served_model, b[i].served_model);
        EXPECT_EQ(a[i].day, b[i].day);
        const billing::MarginFigures& x = a[i].figures;
        const billing::MarginFigures& y = b[i].figures;
        EXPECT_EQ(x.currency, y.currency);
        EXPECT_EQ(x.revenue, y.revenue);
        EXPECT_EQ(x.cost, y.cost);
        EXPECT_EQ(x.margin, y.margin);
        EXPECT_EQ(x.margin_percent, y.margin_percent);
        EXPECT_EQ(x.negative, y.negative);
        EXPECT_EQ(x.calls, y.calls);
        EXPECT_EQ(x.error, y.error);
        EXPECT_EQ(x.cost_unknown, y.cost_unknown);
    }
}

// Model Router: rows of one model billed and day, one not routed and one
// served by another model (costed by it), are two rows of margin_rows.
TEST_F(CostStoreTest, KeepsTheServedModelOfMarginRows) {
    std::vector<billing::MarginRow> rows = {Row("a", "m", "2025-11-03", "2", "1"),
                                            Row("a", "m", "2025-11-03", "4", "11")};
    rows[1].served_model = "pro";
    ASSERT_TRUE(rows[1].figures.negative);
    const int64_t id = store_->WriteMarginReport("2025-11", "tally margin", std::nullopt, rows);
    EXPECT_EQ(Text("SELECT string_agg(served_model || ':' || margin::text, ',' ORDER BY served_model) FROM "
                   "margin_rows WHERE report_id = " +
                   std::to_string(id)),
              ":1,pro:-7");
    auto latest = store_->LatestMarginReport("2025-11");
    ASSERT_TRUE(latest.has_value());
    ExpectEqualRows(latest->rows, rows);
}

TEST_F(CostStoreTest, WritesAMarginReportAndReadsItBackEqual) {
    const std::vector<billing::MarginRow> rows = {
        // revenue 0.333333333333333334 (18 places), cost 0.1: margin 0.233333333333333334, 70.00 %.
        Row("a", "m", "2025-11-03", "0.333333333333333334", "0.1"),
        // Free quota: revenue 0, cost 0.4: negative, percent n/a.
        Row("a", "m", "2025-11-04", "0", "0.4"),
        // No known cost: NULL cost, margin and percent.
        Row("b", "u", "2025-11-04", "1.5", std::nullopt),
        // An error row.
        Row("c", "usd", "2025-11-05", "1", std::nullopt,
            "cost in USD, revenue in CNY: the two are never mixed (no FX)"),
    };
    ASSERT_TRUE(rows[1].figures.negative);
    EXPECT_FALSE(store_->LatestMarginReport("2025-11").has_value());
    const int64_t first = store_->WriteMarginReport("2025-11", "tally margin", std::nullopt, rows);
    const int64_t second = store_->WriteMarginReport("2025-11", "invoice run 17", 17, {rows[0]});
    EXPECT_GT(second, first);

    auto latest = store_->LatestMarginReport("2025-11");
    ASSERT_TRUE(latest.has_value());
    EXPECT_EQ(latest->report_id, second);
    EXPECT_EQ(latest->source, "invoice run 17");
    EXPECT_EQ(latest->invoice_run_id, std::optional<int64_t>(17));
    ExpectEqualRows(latest->rows, {rows[0]});

    // The first report as finance sees it with SQL, and read back whole.
    EXPECT_EQ(Text("SELECT count(*) FROM margin_rows WHERE report_id = " + std::to_string(first)), "4");
    EXPECT_EQ(Text("SELECT sum(revenue)::text FROM margin_rows WHERE report_id = " + std::to_string(first)),
              "2.833333333333333334");
    EXPECT_EQ(Text("SELECT string_agg(customer_id || ':' || day::text, ',' ORDER BY day) FROM margin_rows WHERE "
                   "negative AND report_id = " +
                   std::to_string(first)),
              "a:2025-11-04");
    EXPECT_EQ(Text("SELECT margin_pct::text FROM margin_rows WHERE report_id = " + std::to_string(first) +
                   " AND day = '2025-11-03'"),
              "70.00");
    EXPECT_EQ(Text("SELECT count(*) FROM margin_rows WHERE cost IS NULL AND margin IS NULL AND report_id = " +
                   std::to_string(first)),
              "2");
    {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        tx.exec0("DELETE FROM margin_rows WHERE report_id = " + std::to_string(second));
        tx.exec0("DELETE FROM margin_reports WHERE report_id = " + std::to_string(second));
        tx.commit();
    }
    auto back = store_->LatestMarginReport("2025-11");
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->report_id, first);
    EXPECT_EQ(back->period, "2025-11");
    EXPECT_EQ(back->source, "tally margin");
    EXPECT_FALSE(back->invoice_run_id.has_value());
    ExpectEqualRows(back->rows, rows);
}

TEST_F(CostStoreTest, TheDatabaseRefusesAMarginRowThatDoesNotAddUp) {
    const int64_t id = store_->WriteMarginReport("2025-11", "tally margin", std::nullopt, {});
    pqxx::connection c(url_);
    pqxx::work tx(c);
    try {
        tx.exec0(
            "INSERT INTO margin_rows (report_id, customer_id, plan, model, day, currency, revenue, cost, margin, "
            "margin_pct, negative, calls) VALUES (" +
            std::to_string(id) + ", 'a', 'p', 'm', '2025-11-03', 'CNY', 1, 2, 5, 0, false, 1)");
        ADD_FAILURE() << "a row whose margin is not revenue - cost was stored";
    } catch (const pqxx::check_violation& e) {
        EXPECT_NE(std::string(e.what()).find("margin_rows"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace tally::ledger
