// One conversion between rollups and the ledger's rows (pricing/rollup_records.h):
// rate -> records -> (stored in any batching) -> rollups -> invoices must
// equal pricing the rater's rollups directly, without PostgreSQL.
#include "pricing/rollup_records.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <tuple>

#include "pricing/invoice.h"
#include "test_plans.h"

namespace tally {
namespace {

using testing::EventSpec;
using testing::MakeEvent;

const char* const kCommitPlan = R"(
plan: commit
versions:
  - version: c1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    rates_per: 1000
    minimum_commitment: "100"
    models:
      m:
        bands:
          - up_to: 1000
            rates: {input: "1", output: "2", images: "0.5"}
          - up_to: 100000
            rates: {input: "3", output: "4", images: "0.5"}
      n: {rates: {input: "1", output: "1"}}
)";

// Everything an invoice says, as text: equal invoices give equal text.
std::string Text(const std::vector<Invoice>& invoices) {
    std::string s;
    for (const Invoice& inv : invoices) {
        s += inv.customer + "|" + inv.plan + "|" + inv.period + "|calls " + std::to_string(inv.calls) + "|" +
             inv.subtotal.ToString() + "|" + inv.tax.ToString() + "|" + inv.total.ToString() + "|" + inv.error + "\n";
        for (const InvoiceLine& l : inv.lines) {
            s += "  " + std::string(LineKindName(l.kind)) + " " + l.plan_version + " " + l.model + " " + l.unit + " " +
                 l.band + " " + l.output_condition + " " + l.window + " " + (l.batch ? "b" : "") +
                 (l.thinking ? "t" : "") + " " + l.tier + " " + l.description + " " + std::to_string(l.quantity) +
                 " " + l.amount.ToString() + " " + l.amount_rounded.ToString() + "\n";
        }
    }
    return s;
}

// What the ledger does with records: appended in batches, summed per key
// (saturating), read back.
std::vector<RollupRecord> StoreAndRead(const std::vector<std::vector<RollupRecord>>& batches) {
    using Key = std::tuple<std::string, int32_t, int32_t, std::string, std::string, std::string, std::string, int16_t,
                           int16_t, int16_t, int16_t, std::string>;
    std::map<Key, RollupRecord> table;
    for (const auto& batch : batches) {
        for (const RollupRecord& r : batch) {
            Key k{r.customer,     r.period, r.hour,      r.plan,        r.version, r.model,
                  r.served_model, r.band,   r.condition, r.time_window, r.flags,   r.unit};
            auto [it, fresh] = table.try_emplace(k, r);
            if (!fresh) {
                it->second.quantity = SaturatingAdd(it->second.quantity, r.quantity);
                it->second.calls = SaturatingAdd(it->second.calls, r.calls);
            }
        }
    }
    std::vector<RollupRecord> out;
    for (auto& [k, r] : table) out.push_back(r);
    return out;
}

class RollupRecordsTest : public ::testing::Test {
   protected:
    RollupRecordsTest()
        : catalog_(testing::MustCatalog(
              {kCommitPlan, testing::kDoubaoPlan, testing::kDeepseekPlan, testing::kFeaturePlan})) {}

    // Each event rated by its own Rater (one "batch" each), stored, read back.
    std::vector<Invoice> ViaLedger(const char* plan, const std::vector<Event>& events) {
        std::vector<std::vector<RollupRecord>> batches;
        for (const Event& e : events) {
            Rater rater(catalog_, {}, plan, {});
            EXPECT_EQ(rater.Add(e).status, RateStatus::kRated);
            batches.push_back(ToRecords(catalog_, rater.Rollups()));
        }
        RecordsRead read = FromRecords(catalog_, StoreAndRead(batches));
        EXPECT_EQ(read.unresolved, 0);
        return PriceRollups(catalog_, {}, plan, {}, read.rollups);
    }

    std::vector<Invoice> Direct(const char* plan, const std::vector<Event>& events) {
        Rater rater(catalog_, {}, plan, {});
        for (const Event& e : events) EXPECT_EQ(rater.Add(e).status, RateStatus::kRated);
        return PriceRollups(catalog_, {}, plan, {}, rater.Rollups());
    }

    Catalog catalog_;
};

TEST_F(RollupRecordsTest, RateRowsUsageEqualsRateOnEveryExamplePlan) {
    // TALLY_SEED=N replays a failure.
    const char* replay = std::getenv("TALLY_SEED");
    const uint64_t seed = replay != nullptr ? std::strtoull(replay, nullptr, 10) : std::random_device{}();
    SCOPED_TRACE("seed=" + std::to_string(seed) + " (replay with TALLY_SEED=" + std::to_string(seed) + ")");
    std::mt19937_64 rng(seed);
    const std::vector<std::pair<const char*, std::vector<const char*>>> plans = {
        {"commit", {"m", "n"}},
        {"doubao", {"doubao-seed-1.6"}},
        {"deepseek", {"deepseek-chat"}},
        {"feature", {"grad", "uncached", "think", "stack"}}};
    for (const auto& [plan, models] : plans) {
        std::vector<Event> events;
        for (int i = 0; i < 300; ++i) {
            EventSpec s;
            s.customer = i % 3 == 0 ? "c1" : (i % 3 == 1 ? "c2" : "c3");
            s.model = models[rng() % models.size()];
            s.input = static_cast<int64_t>(rng() % 3000);
            s.cached = s.input / 3;
            s.cached_explicit = rng() % 2 == 0 ? s.input / 4 : 0;  // explicit hits: their own unit, by name
            s.output = static_cast<int64_t>(rng() % 400);
            s.reasoning = s.output / 4;
            s.batch = rng() % 4 == 0;
            s.thinking = rng() % 3 == 0;
            static const char* kTimes[] = {"2025-11-03T12:00:00Z", "2025-11-03T22:30:00Z", "2025-11-30T17:00:00Z",
                                           "2025-12-01T03:00:00Z", "2025-09-05T15:59:59Z", "2025-09-05T16:00:00Z"};
            s.time = kTimes[rng() % 6];
            events.push_back(MakeEvent(s));
        }
        // Only events the plan can rate (bands above the top reject, versions start later).
        std::vector<Event> rated;
        Rater probe(catalog_, {}, plan, {});
        std::vector<RatedPart> parts;
        for (const Event& e : events) {
            if (probe.Classify(e, &parts).status == RateStatus::kRated) rated.push_back(e);
        }
        ASSERT_GT(rated.size(), 50u) << plan;
        EXPECT_EQ(Text(ViaLedger(plan, rated)), Text(Direct(plan, rated))) << plan;
    }
}

TEST_F(RollupRecordsTest, AZeroTokenCallMakesItsInvoiceAndTheCommitmentBills) {
    const std::vector<Event> events = {MakeEvent({.customer = "z", .model = "n", .input = 0, .output = 0})};
    const auto direct = Direct("commit", events);
    const auto ledger = ViaLedger("commit", events);
    ASSERT_EQ(direct.size(), 1u);
    EXPECT_EQ(direct[0].calls, 1);
    EXPECT_EQ(direct[0].subtotal.ToString(2), "100.00");  // the minimum commitment
    EXPECT_EQ(Text(ledger), Text(direct));
}

TEST_F(RollupRecordsTest, RecordsKeepTheServedModelOfRoutedCalls) {
    // One cell and hour, served by three models (one not routed): three
    // rollups both ways, each naming its served model.
    const std::vector<Event> events = {MakeEvent({.customer = "r", .model = "n", .input = 10, .served_model = "x"}),
                                       MakeEvent({.customer = "r", .model = "n", .input = 20}),
                                       MakeEvent({.customer = "r", .model = "n", .input = 40, .served_model = "y"}),
                                       MakeEvent({.customer = "r", .model = "n", .input = 80, .served_model = "x"})};
    Rater rater(catalog_, {}, "commit", {});
    for (const Event& e : events) EXPECT_EQ(rater.Add(e).status, RateStatus::kRated);
    const std::vector<Rollup> direct = rater.Rollups();
    const std::vector<RollupRecord> records = ToRecords(catalog_, direct);
    ASSERT_EQ(records.size(), 6u);  // a calls record and an input record per served model
    EXPECT_EQ(records[0].served_model, "");
    EXPECT_EQ(records[2].served_model, "x");
    EXPECT_EQ(records[4].served_model, "y");
    std::vector<std::vector<RollupRecord>> batches;
    for (const Event& e : events) {
        Rater one(catalog_, {}, "commit", {});
        EXPECT_EQ(one.Add(e).status, RateStatus::kRated);
        batches.push_back(ToRecords(catalog_, one.Rollups()));
    }
    const RecordsRead read = FromRecords(catalog_, StoreAndRead(batches));
    EXPECT_EQ(read.unresolved, 0);
    ASSERT_EQ(read.rollups.size(), 3u);
    ASSERT_EQ(direct.size(), 3u);
    const std::vector<std::string> served = {"", "x", "y"};
    const std::vector<int64_t> input = {20, 90, 40};
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(direct[i].served_model, served[i]);
        EXPECT_EQ(read.rollups[i].served_model, served[i]);
        EXPECT_EQ(read.rollups[i].quantities[kUnitInput], input[i]);
        EXPECT_EQ(read.rollups[i].calls, direct[i].calls);
        EXPECT_TRUE(read.rollups[i].cell == direct[i].cell);
    }
    // Invoice lines stay per billed model: the routed calls bill with the others.
    EXPECT_EQ(Text(PriceRollups(catalog_, {}, "commit", {}, read.rollups)),
              Text(PriceRollups(catalog_, {}, "commit", {}, direct)));
}

TEST_F(RollupRecordsTest, CallsOfOneCellWithNoUnitInCommonCountTwice) {
    // Same customer, model, cell and hour; one call has only input, the other only output.
    const std::vector<Event> events = {MakeEvent({.customer = "k", .model = "n", .input = 10, .output = 0}),
                                       MakeEvent({.customer = "k", .model = "n", .input = 0, .output = 10})};
    const auto ledger = ViaLedger("commit", events);
    ASSERT_EQ(ledger.size(), 1u);
    EXPECT_EQ(ledger[0].calls, 2);
    EXPECT_EQ(Text(ledger), Text(Direct("commit", events)));
}

TEST_F(RollupRecordsTest, AGraduatedCallCountsOnceAcrossTheBandsItReaches) {
    const std::vector<Event> events = {MakeEvent({.customer = "g", .model = "grad", .input = 1500, .output = 10})};
    const auto direct = Direct("feature", events);
    ASSERT_EQ(direct.size(), 1u);
    EXPECT_EQ(direct[0].calls, 1);
    EXPECT_EQ(Text(ViaLedger("feature", events)), Text(direct));
}

TEST_F(RollupRecordsTest, OverflowedQuantitiesFailTheirInvoiceOnlyOnBothPaths) {
    // Two rollups of one cell at 2^63-1 - 1 each: the sum saturates.
    Rater rater(catalog_, {}, "commit", {});
    ASSERT_EQ(rater.Add(MakeEvent({.customer = "big", .model = "n", .input = 1, .output = 1})).status,
              RateStatus::kRated);
    ASSERT_EQ(rater.Add(MakeEvent({.customer = "small", .model = "n", .input = 1000, .output = 0})).status,
              RateStatus::kRated);
    std::vector<Rollup> rollups = rater.Rollups();
    ASSERT_EQ(rollups[0].customer, "big");
    std::vector<RollupRecord> a = ToRecords(catalog_, {rollups[0]});
    for (RollupRecord& r : a) {
        if (r.unit == "output") r.quantity = INT64_MAX - 1;
    }
    RecordsRead read = FromRecords(catalog_, StoreAndRead({a, a, ToRecords(catalog_, {rollups[1]})}));
    const auto invoices = PriceRollups(catalog_, {}, "commit", {}, read.rollups);
    ASSERT_EQ(invoices.size(), 2u);
    EXPECT_NE(invoices[0].error.find("overflowed"), std::string::npos) << invoices[0].error;
    EXPECT_TRUE(invoices[0].lines.empty());
    EXPECT_EQ(invoices[1].error, "");
    EXPECT_EQ(invoices[1].subtotal.ToString(2), "100.00");
}

TEST_F(RollupRecordsTest, ACellWithoutARateFailsItsInvoiceNotTheRun) {
    // A stored plan that predates validation: band 2 of m lost its images rate.
    catalog_.plans[static_cast<size_t>(catalog_.PlanIndex("commit"))].versions[0].models[0].bands[1].rates
        [*catalog_.units.Find("images")]
            .reset();
    Event with_images = MakeEvent({.customer = "bad", .model = "m", .input = 5000, .output = 1});
    with_images.extras.push_back({"images", 3});
    const auto invoices =
        Direct("commit", {with_images, MakeEvent({.customer = "good", .model = "m", .input = 10, .output = 1})});
    ASSERT_EQ(invoices.size(), 2u);
    EXPECT_NE(invoices[0].error.find("no rate for images"), std::string::npos) << invoices[0].error;
    EXPECT_EQ(invoices[1].customer, "good");
    EXPECT_EQ(invoices[1].error, "");
}

TEST_F(RollupRecordsTest, AUnitTheModelDoesNotPriceIsShownUnpriced) {
    Event e = MakeEvent({.customer = "u", .model = "n", .input = 10, .output = 1});
    e.extras.push_back({"images", 4});  // images: priced by model m of the plan, not by n
    const auto direct = Direct("commit", {e});
    ASSERT_EQ(direct.size(), 1u);
    const InvoiceLine* unpriced = nullptr;
    for (const InvoiceLine& l : direct[0].lines) {
        if (l.kind == LineKind::kUnpriced) unpriced = &l;
    }
    ASSERT_NE(unpriced, nullptr);
    EXPECT_EQ(unpriced->unit, "images");
    EXPECT_EQ(unpriced->quantity, 4);
    EXPECT_TRUE(unpriced->amount.is_zero());
    EXPECT_EQ(Text(ViaLedger("commit", {e})), Text(direct));
}

TEST(CatalogOrder, FreeQuotasTiersAndLinesDoNotDependOnTheOrderPlansWereLoaded) {
    // pz prices tool_calls and images with one free quota over both; pa
    // names the units the other way round. Loaded in either order, the unit
    // ids differ; the invoice must not.
    const char* const pz = R"(
plan: pz
versions:
  - version: z1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: UTC
    rates_per: 1
    models:
      m: {rates: {input: "0", output: "0", tool_calls: "10", images: "1"}}
    free_quotas:
      - {name: trial, units: [tool_calls, images], tokens: 5}
)";
    const char* const pa = R"(
plan: pa
versions:
  - version: a1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: UTC
    rates_per: 1
    models:
      m: {rates: {input: "1", output: "1", images: "1", tool_calls: "1"}}
)";
    auto price = [](const std::vector<std::string_view>& plans) {
        Catalog catalog = testing::MustCatalog(plans);
        Rater rater(catalog, {}, "pz", {});
        Event e = MakeEvent({.customer = "cz", .model = "m", .input = 1, .output = 1});
        e.extras.push_back({"images", 5});
        e.extras.push_back({"tool_calls", 5});
        EXPECT_EQ(rater.Add(e).status, RateStatus::kRated);
        return Text(PriceRollups(catalog, {}, "pz", {}, rater.Rollups()));
    };
    const std::string z_first = price({pz, pa});
    EXPECT_EQ(z_first, price({pa, pz}));
    // Units by name: images (5, free) before tool_calls (5 x 10).
    EXPECT_NE(z_first.find("cz|pz|2025-11|calls 1|50|0|50|"), std::string::npos) << z_first;
}

}  // namespace
}  // namespace tally
