#include "pricing/rater.h"

#include <gtest/gtest.h>

#include "pricing/invoice.h"
#include "test_plans.h"

namespace tally {
namespace {

using testing::EventSpec;
using testing::MakeEvent;

class RaterTest : public ::testing::Test {
   protected:
    RaterTest()
        : catalog_(testing::MustCatalog({testing::kDoubaoPlan, testing::kDeepseekPlan, testing::kFeaturePlan})) {}

    // Classifies one event under `plan` and returns its single part.
    RatedPart One(const char* plan, const EventSpec& spec) {
        std::vector<RatedPart> parts = Parts(plan, spec);
        EXPECT_EQ(parts.size(), 1u);
        return parts.empty() ? RatedPart{} : parts.front();
    }
    std::vector<RatedPart> Parts(const char* plan, const EventSpec& spec) {
        Rater rater(catalog_, {}, plan, {});
        std::vector<RatedPart> parts;
        RateOutcome outcome = rater.Classify(MakeEvent(spec), &parts);
        EXPECT_EQ(outcome.status, RateStatus::kRated) << outcome.reason;
        return parts;
    }
    RateOutcome Outcome(const char* plan, const EventSpec& spec) {
        Rater rater(catalog_, {}, plan, {});
        std::vector<RatedPart> parts;
        return rater.Classify(MakeEvent(spec), &parts);
    }
    std::string Rate(const char* plan, const RatedPart& part, UnitId unit) {
        const Plan& p = *catalog_.FindPlan(plan);
        const ModelPricing& m = p.versions[part.key.cell.version].models[part.key.cell.model];
        auto rate = CellRate(m, part.key.cell, unit);
        return rate ? rate->price().ToString() + "/" + std::to_string(rate->per()) : "none";
    }

    Catalog catalog_;
};

TEST_F(RaterTest, DoubaoBandBoundariesAreInclusiveUpperBounds) {
    const char* m = "doubao-seed-1.6";
    EXPECT_EQ(One("doubao", {.model = m, .input = 0, .output = 1000}).key.cell.band, 0);
    EXPECT_EQ(One("doubao", {.model = m, .input = 32000, .output = 1000}).key.cell.band, 0);
    EXPECT_EQ(One("doubao", {.model = m, .input = 32001, .output = 1000}).key.cell.band, 1);
    EXPECT_EQ(One("doubao", {.model = m, .input = 128000, .output = 1000}).key.cell.band, 1);
    EXPECT_EQ(One("doubao", {.model = m, .input = 128001, .output = 1000}).key.cell.band, 2);
    EXPECT_EQ(One("doubao", {.model = m, .input = 256000, .output = 1000}).key.cell.band, 2);
    RateOutcome above = Outcome("doubao", {.model = m, .input = 256001, .output = 10});
    EXPECT_EQ(above.status, RateStatus::kRejected);
    EXPECT_NE(above.reason.find("above the top band"), std::string::npos) << above.reason;
}

TEST_F(RaterTest, BandIsChosenByTheWholePromptIncludingCacheHits) {
    RatedPart p = One("doubao", {.model = "doubao-seed-1.6", .input = 40000, .output = 500, .cached = 30000});
    EXPECT_EQ(p.key.cell.band, 1);
    EXPECT_EQ(p.quantities[kUnitInput], 10000);
    EXPECT_EQ(p.quantities[kUnitCachedInput], 30000);
    EXPECT_EQ(p.quantities[kUnitOutput], 500);
}

TEST_F(RaterTest, UncachedBandByIgnoresCacheHits) {
    RatedPart p = One("feature", {.model = "uncached", .input = 3000, .output = 1, .cached = 2000});
    EXPECT_EQ(p.key.cell.band, 0);  // 1000 uncached
    p = One("feature", {.model = "uncached", .input = 3000, .output = 1, .cached = 1999});
    EXPECT_EQ(p.key.cell.band, 1);  // 1001 uncached
}

TEST_F(RaterTest, DoubaoOutputConditionAtTwoHundredCountsReasoning) {
    const char* m = "doubao-seed-1.6";
    RatedPart at = One("doubao", {.model = m, .input = 1000, .output = 200});
    EXPECT_EQ(at.key.cell.condition, 0);
    EXPECT_EQ(Rate("doubao", at, kUnitOutput), "2/1000000");
    RatedPart above = One("doubao", {.model = m, .input = 1000, .output = 201});
    EXPECT_EQ(above.key.cell.condition, kNone);
    EXPECT_EQ(Rate("doubao", above, kUnitOutput), "8/1000000");
    // 150 visible + 100 reasoning = 250 output tokens: above the condition.
    EXPECT_EQ(One("doubao", {.model = m, .input = 1000, .output = 250, .reasoning = 100}).key.cell.condition, kNone);
    // The condition belongs to the first band only.
    EXPECT_EQ(One("doubao", {.model = m, .input = 32001, .output = 10}).key.cell.condition, kNone);
}

TEST_F(RaterTest, DeepseekOffPeakWindowBoundaryMinutes) {
    const char* m = "deepseek-chat";
    EXPECT_EQ(One("deepseek", {.model = m, .time = "2025-09-01T16:29:59.999Z", .input = 1}).key.cell.window, kNone);
    RatedPart in = One("deepseek", {.model = m, .time = "2025-09-01T16:30:00Z", .input = 1});
    EXPECT_EQ(in.key.cell.window, 0);
    EXPECT_EQ(Rate("deepseek", in, kUnitInput), "0.135/1000000");
    EXPECT_EQ(Rate("deepseek", in, kUnitCachedInput), "0.035/1000000");
    EXPECT_EQ(One("deepseek", {.model = m, .time = "2025-09-02T00:29:59Z", .input = 1}).key.cell.window, 0);
    EXPECT_EQ(One("deepseek", {.model = m, .time = "2025-09-02T00:30:00Z", .input = 1}).key.cell.window, kNone);
}

TEST_F(RaterTest, DeepseekCutOverPicksTheVersionInForceAtTheEventTime) {
    const char* m = "deepseek-chat";
    RatedPart before = One("deepseek", {.model = m, .time = "2025-09-05T15:59:59.999Z", .input = 1});
    RatedPart after = One("deepseek", {.model = m, .time = "2025-09-05T16:00:00Z", .input = 1});
    EXPECT_EQ(before.key.cell.version, 0);
    EXPECT_EQ(after.key.cell.version, 1);
    EXPECT_EQ(Rate("deepseek", before, kUnitInput), "0.27/1000000");
    EXPECT_EQ(Rate("deepseek", after, kUnitInput), "0.56/1000000");
    RateOutcome early = Outcome("deepseek", {.model = m, .time = "2025-02-26T16:29:59Z", .input = 1});
    EXPECT_EQ(early.status, RateStatus::kRejected);
    EXPECT_NE(early.reason.find("no version in force"), std::string::npos);
}

TEST(RaterZones, WindowInItsOwnZoneAndPeriodInThePlanZone) {
    // DeepSeek's night discount as Beijing time: 00:30-08:30 Asia/Shanghai,
    // in a plan billed in UTC months.
    Catalog catalog = testing::MustCatalog({R"(
plan: z
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: USD
    time_zone: UTC
    models:
      m:
        rates: {input: "0.27", output: "1.10"}
        windows:
          - {name: night, time_zone: Asia/Shanghai, start: "00:30", end: "08:30", multiplier: "0.5"}
)"});
    Rater rater(catalog, {}, "z", {});
    std::vector<RatedPart> parts;
    auto window_at = [&](const char* t) {
        EXPECT_EQ(rater.Classify(MakeEvent({.time = t, .input = 1}), &parts).status, RateStatus::kRated);
        return parts.at(0).key.cell.window;
    };
    EXPECT_EQ(window_at("2025-09-30T16:29:59Z"), kNone);  // 00:29:59 in Beijing
    EXPECT_EQ(window_at("2025-09-30T16:30:00Z"), 0);      // 00:30 in Beijing
    EXPECT_EQ(parts.at(0).key.period, MonthId(2025, 9));  // still September in UTC
    EXPECT_EQ(window_at("2025-10-01T00:29:59Z"), 0);      // 08:29:59 in Beijing
    EXPECT_EQ(window_at("2025-10-01T00:30:00Z"), kNone);  // 08:30 in Beijing
    EXPECT_EQ(parts.at(0).key.period, MonthId(2025, 10));
}

TEST_F(RaterTest, BatchWithFullCacheRateKeepsTheCacheHitPrice) {
    RatedPart p =
        One("doubao", {.model = "doubao-seed-1.6", .input = 10000, .output = 300, .cached = 4000, .batch = true});
    EXPECT_EQ(p.key.cell.flags & kFlagBatch, kFlagBatch);
    EXPECT_EQ(Rate("doubao", p, kUnitInput), "0.4/1000000");
    EXPECT_EQ(Rate("doubao", p, kUnitCachedInput), "0.16/1000000");
    EXPECT_EQ(Rate("doubao", p, kUnitOutput), "4/1000000");
}

TEST_F(RaterTest, BatchThatDoesNotCombineWithCacheBillsHitsAsInput) {
    RatedPart p = One("feature", {.model = "think", .input = 100, .output = 10, .cached = 40, .batch = true});
    EXPECT_EQ(p.quantities[kUnitInput], 100);
    EXPECT_EQ(p.quantities[kUnitCachedInput], 0);
    EXPECT_EQ(Rate("feature", p, kUnitInput), "0.5/1000");
}

TEST_F(RaterTest, BatchDiscountStacksOnCacheHitsAndWrites) {
    RatedPart p = One("feature", {.model = "stack", .input = 100, .output = 10, .cached = 40, .batch = true});
    EXPECT_EQ(Rate("feature", p, kUnitCachedInput), "0.5/1000");
    EXPECT_EQ(Rate("feature", p, kUnitCacheWrite), "6.25/1000");
    EXPECT_EQ(Rate("feature", p, kUnitCacheWrite1h), "10/1000");
}

TEST_F(RaterTest, CacheWritesSplitByLifetimeAndAreAllPartOfThePrompt) {
    RatedPart p =
        One("feature",
            {.model = "stack", .input = 1000, .output = 10, .cached = 300, .cache_write = 200, .cache_write_1h = 100});
    EXPECT_EQ(p.quantities[kUnitInput], 400);
    EXPECT_EQ(p.quantities[kUnitCachedInput], 300);
    EXPECT_EQ(p.quantities[kUnitCacheWrite], 200);
    EXPECT_EQ(p.quantities[kUnitCacheWrite1h], 100);
    EXPECT_EQ(Rate("feature", p, kUnitCacheWrite), "12.5/1000");
    EXPECT_EQ(Rate("feature", p, kUnitCacheWrite1h), "20/1000");
    // A plan without cache-write prices bills them as input.
    RatedPart d = One("doubao", {.model = "doubao-seed-1.6", .input = 1000, .output = 300, .cache_write = 100});
    EXPECT_EQ(d.quantities[kUnitCacheWrite], 100);
    EXPECT_EQ(Rate("doubao", d, kUnitCacheWrite), "0.8/1000000");
    EXPECT_EQ(Rate("doubao", d, kUnitCacheWrite1h), "0.8/1000000");
}

TEST_F(RaterTest, OwnBatchRatesReplaceAndUnpricedUnitsKeepOnlineRates) {
    RatedPart p = One("feature", {.model = "own-batch", .input = 10, .output = 10, .batch = true});
    EXPECT_EQ(Rate("feature", p, kUnitInput), "0.3/1000");
    EXPECT_EQ(Rate("feature", p, kUnitOutput), "2/1000");
}

TEST_F(RaterTest, ThinkingReasoningAndWeekdayWindowMultiplier) {
    // Monday 2025-11-03 23:00 UTC: inside the weekday night window.
    RatedPart p = One("feature", {.model = "think",
                                  .time = "2025-11-03T23:00:00Z",
                                  .input = 100,
                                  .output = 50,
                                  .reasoning = 20,
                                  .thinking = true});
    EXPECT_EQ(p.key.cell.flags & kFlagThinking, kFlagThinking);
    EXPECT_EQ(p.key.cell.window, 0);
    EXPECT_EQ(p.quantities[kUnitOutput], 30);
    EXPECT_EQ(p.quantities[kUnitReasoning], 20);
    EXPECT_EQ(Rate("feature", p, kUnitOutput), "4/1000");       // thinking 8 x 0.5
    EXPECT_EQ(Rate("feature", p, kUnitReasoning), "1.5/1000");  // own reasoning 3 x 0.5
    // Saturday 2025-11-08 23:00 UTC: the window is weekdays only.
    EXPECT_EQ(One("feature", {.model = "think", .time = "2025-11-08T23:00:00Z", .input = 1}).key.cell.window, kNone);
    // Friday night's window runs into Saturday 05:59.
    EXPECT_EQ(One("feature", {.model = "think", .time = "2025-11-08T05:59:00Z", .input = 1}).key.cell.window, 0);
}

TEST_F(RaterTest, GraduatedBandsSliceThePromptCacheHitsFirst) {
    std::vector<RatedPart> parts = Parts("feature", {.model = "grad", .input = 2500, .output = 7, .cached = 1200});
    ASSERT_EQ(parts.size(), 2u);  // 2500 > 2000 bills the rest at the top band
    EXPECT_EQ(parts[0].key.cell.band, 0);
    EXPECT_EQ(parts[0].quantities[kUnitCachedInput], 1000);
    EXPECT_EQ(parts[0].quantities[kUnitInput], 0);
    EXPECT_EQ(parts[1].key.cell.band, 1);
    EXPECT_EQ(parts[1].quantities[kUnitCachedInput], 200);
    EXPECT_EQ(parts[1].quantities[kUnitInput], 1300);
    EXPECT_EQ(parts[1].quantities[kUnitOutput], 7);  // output prices at the band reached
    EXPECT_EQ(parts[0].quantities[kUnitOutput], 0);
}

TEST_F(RaterTest, GraduatedCallInsideTheFirstBandIsOnePart) {
    std::vector<RatedPart> parts = Parts("feature", {.model = "grad", .input = 1000, .output = 7});
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].quantities[kUnitInput], 1000);
}

TEST_F(RaterTest, RejectsWhatCannotBePriced) {
    EXPECT_NE(Outcome("doubao", {.model = "gpt-9", .input = 1}).reason.find("no price"), std::string::npos);
    EXPECT_EQ(Outcome("doubao", {.model = "doubao-seed-1.6", .input = 10, .cached = 11}).status, RateStatus::kRejected);
    EXPECT_EQ(Outcome("doubao", {.model = "doubao-seed-1.6", .output = 10, .reasoning = 11}).status,
              RateStatus::kRejected);
    EXPECT_EQ(Outcome("doubao", {.model = "doubao-seed-1.6", .input = -1}).status, RateStatus::kRejected);
}

TEST_F(RaterTest, ExplicitPeriodExcludesEventsOutsideIt) {
    PeriodRule period{testing::At("2025-11-01T00:00:00Z"), testing::At("2025-11-02T00:00:00Z")};
    Rater rater(catalog_, {}, "doubao", period);
    EXPECT_EQ(rater.Add(MakeEvent({.model = "doubao-seed-1.6", .time = "2025-10-31T23:59:59Z", .input = 1})).status,
              RateStatus::kOutsidePeriod);
    EXPECT_EQ(rater.Add(MakeEvent({.model = "doubao-seed-1.6", .time = "2025-11-01T00:00:00Z", .input = 1})).status,
              RateStatus::kRated);
    EXPECT_EQ(rater.Add(MakeEvent({.model = "doubao-seed-1.6", .time = "2025-11-02T00:00:00Z", .input = 1})).status,
              RateStatus::kOutsidePeriod);
}

TEST_F(RaterTest, MonthlyPeriodFollowsThePlanTimeZone) {
    Rater rater(catalog_, {}, "doubao", {});
    // 2025-10-31T16:00Z is 2025-11-01 00:00 in Asia/Shanghai.
    ASSERT_EQ(rater.Add(MakeEvent({.model = "doubao-seed-1.6", .time = "2025-10-31T15:59:59Z", .input = 1})).status,
              RateStatus::kRated);
    ASSERT_EQ(rater.Add(MakeEvent({.model = "doubao-seed-1.6", .time = "2025-10-31T16:00:00Z", .input = 1})).status,
              RateStatus::kRated);
    std::vector<Rollup> rows = rater.Rollups();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].period, MonthId(2025, 10));
    EXPECT_EQ(rows[1].period, MonthId(2025, 11));
}

TEST_F(RaterTest, RollupsSumPerHourAndCell) {
    Rater rater(catalog_, {}, "doubao", {});
    for (int i = 0; i < 3; ++i) {
        rater.Add(MakeEvent({.model = "doubao-seed-1.6", .time = "2025-11-03T12:10:00Z", .input = 100, .output = 300}));
    }
    rater.Add(MakeEvent({.model = "doubao-seed-1.6", .time = "2025-11-03T13:10:00Z", .input = 100, .output = 300}));
    std::vector<Rollup> rows = rater.Rollups();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].quantities[kUnitInput], 300);
    EXPECT_EQ(rows[0].quantities[kUnitOutput], 900);
    EXPECT_EQ(rows[0].calls, 3);
    EXPECT_EQ(rows[1].calls, 1);
    EXPECT_LT(rows[0].hour, rows[1].hour);
}

// Model Router: `big` bills routed calls at its own price (the default),
// `small` at the served model's price.
const char* const kRoutedPlan = R"(
plan: routed
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: UTC
    models:
      big:
        rates: {input: "4.00", output: "16.00"}
      small:
        rates: {input: "0.30", output: "3.00"}
        routed_calls: bill_served
)";

class RoutedRaterTest : public ::testing::Test {
   protected:
    RoutedRaterTest() : catalog_(testing::MustCatalog({kRoutedPlan})) {}
    const std::string& ModelName(const CellKey& cell) const {
        return catalog_.plans.at(cell.plan).versions.at(cell.version).models.at(cell.model).name;
    }
    Catalog catalog_;
};

TEST_F(RoutedRaterTest, BillRequestedPricesTheModelAskedForAndKeepsTheServedOne) {
    Rater rater(catalog_, {}, "routed", {});
    std::vector<RatedPart> parts;
    RateOutcome o = rater.Classify(MakeEvent({.model = "big", .input = 10, .served_model = "small"}), &parts);
    ASSERT_EQ(o.status, RateStatus::kRated) << o.reason;
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(ModelName(parts[0].key.cell), "big");
    EXPECT_NE(parts[0].key.cell.served, 0);
    EXPECT_EQ(rater.ServedModel(parts[0].key.cell.served), "small");
    // Under bill_requested the served model need not be in the plan.
    o = rater.Classify(MakeEvent({.model = "big", .input = 10, .served_model = "third-party-x"}), &parts);
    ASSERT_EQ(o.status, RateStatus::kRated) << o.reason;
    EXPECT_EQ(ModelName(parts.at(0).key.cell), "big");
    EXPECT_EQ(rater.ServedModel(parts.at(0).key.cell.served), "third-party-x");
    // Not routed: served 0.
    o = rater.Classify(MakeEvent({.model = "big", .input = 10}), &parts);
    ASSERT_EQ(o.status, RateStatus::kRated) << o.reason;
    EXPECT_EQ(parts.at(0).key.cell.served, 0);
    EXPECT_EQ(rater.ServedModel(0), "");
}

TEST_F(RoutedRaterTest, BillServedPricesTheServedModelsEntry) {
    Rater rater(catalog_, {}, "routed", {});
    std::vector<RatedPart> parts;
    RateOutcome o = rater.Classify(MakeEvent({.model = "small", .input = 1'000'000, .served_model = "big"}), &parts);
    ASSERT_EQ(o.status, RateStatus::kRated) << o.reason;
    EXPECT_EQ(ModelName(parts.at(0).key.cell), "big");
    EXPECT_EQ(rater.ServedModel(parts.at(0).key.cell.served), "big");
    // Priced: a million input tokens of big at 4.00 per million, not small's 0.30.
    rater.AddParts(parts, 1);
    const std::vector<Rollup> rollups = rater.Rollups();
    ASSERT_EQ(rollups.size(), 1u);
    EXPECT_EQ(rollups[0].served_model, "big");
    EXPECT_EQ(rollups[0].cell.served, 0);
    const std::vector<Invoice> invoices = PriceRollups(catalog_, {}, "routed", {}, rollups);
    ASSERT_EQ(invoices.size(), 1u);
    EXPECT_EQ(invoices[0].subtotal.value().ToString(2), "4.00");
}

TEST_F(RoutedRaterTest, BillServedRejectsAServedModelThePlanDoesNotPrice) {
    Rater rater(catalog_, {}, "routed", {});
    std::vector<RatedPart> parts;
    const RateOutcome o = rater.Classify(MakeEvent({.model = "small", .input = 10, .served_model = "gpt-9"}), &parts);
    EXPECT_EQ(o.status, RateStatus::kRejected);
    EXPECT_EQ(o.code, RejectReason::kServedModelUnpriced);
    EXPECT_EQ(RejectReasonCode(o.code), "served_model_unpriced");
    EXPECT_NE(o.reason.find("served_model 'gpt-9' has no price in plan routed version v1"), std::string::npos)
        << o.reason;
    EXPECT_NE(o.reason.find("bill_served"), std::string::npos) << o.reason;
}

TEST_F(RoutedRaterTest, RollupsKeepTheServedModelByNameWhateverTheOrder) {
    // The served-model table's indices follow the order models are first
    // seen; rollups name the model, so the orders give equal rollups.
    auto rollups = [&](std::vector<const char*> served) {
        Rater rater(catalog_, {}, "routed", {});
        for (const char* s : served) {
            EXPECT_EQ(rater.Add(MakeEvent({.model = "big", .input = 5, .served_model = s})).status, RateStatus::kRated);
        }
        return rater.Rollups();
    };
    const std::vector<Rollup> a = rollups({"x", "y", "", "y"});
    const std::vector<Rollup> b = rollups({"y", "", "y", "x"});
    ASSERT_EQ(a.size(), 3u);
    ASSERT_EQ(b.size(), a.size());
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].served_model, b[i].served_model);
        EXPECT_TRUE(a[i].cell == b[i].cell);
        EXPECT_EQ(a[i].calls, b[i].calls);
        EXPECT_EQ(a[i].quantities, b[i].quantities);
    }
    EXPECT_EQ(a[0].served_model, "");
    EXPECT_EQ(a[1].served_model, "x");
    EXPECT_EQ(a[2].served_model, "y");
    EXPECT_EQ(a[2].calls, 2);
}

}  // namespace
}  // namespace tally
