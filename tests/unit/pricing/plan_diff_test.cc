// Plan version diffs (pricing/plan_diff.h) on real sheets' price changes:
// DeepSeek's 2025-09-05 V3.1 cut-over (deploy/plans/deepseek.yaml) and
// Alibaba's qwen3-max 2026 repricing (price-sheets.md, qwen3-max), every
// percentage worked out by hand.
#include "pricing/plan_diff.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "pricing/plan_yaml.h"
#include "test_plans.h"

namespace tally {
namespace {

using testing::Dec;

Rate R(const char* price, int64_t per = Rate::kPerDefault) {
    return Rate(Dec(price), per);
}

// The change of one cell's unit, or "unchanged" when the diff does not list it.
std::string ChangeOf(const PlanVersionDiff& diff, const std::string& model, const std::string& band,
                     const std::string& window, bool batch, bool thinking, const std::string& unit) {
    for (const RateChange& c : diff.rates) {
        if (c.model == model && c.band == band && c.window == window && c.batch == batch && c.thinking == thinking &&
            c.unit == unit) {
            return c.change;
        }
    }
    return "unchanged";
}

TEST(PlanDiff, RateChangePercentIsExactAndRoundsHalfEven) {
    // qwen-long's cut 0.02 -> 0.0005 CNY per 1K: (0.0005 - 0.02) / 0.02 = -0.975.
    EXPECT_EQ(RateChangeText(R("0.02", 1000), R("0.0005", 1000)), "-97.50%");
    // 0.27 -> 0.56: 0.29 / 0.27 = 1.074074..., 107.4074 % -> 107.41.
    EXPECT_EQ(RateChangeText(R("0.27"), R("0.56")), "+107.41%");
    // 2 -> 2.0001: +0.005 % exactly, half-even -> 0.00 (half-up would say 0.01).
    EXPECT_EQ(RateChangeText(R("2"), R("2.0001")), "+0.00%");
    // 2 -> 2.0003: +0.015 % exactly, half-even -> 0.02.
    EXPECT_EQ(RateChangeText(R("2"), R("2.0003")), "+0.02%");
    // 2 -> 1.9999: -0.005 % exactly -> -0.00, still a cut.
    EXPECT_EQ(RateChangeText(R("2"), R("1.9999")), "-0.00%");
    // The same price per token written per 1K and per 1M: no change.
    EXPECT_TRUE(SameRate(R("0.0005", 1000), R("0.5")));
    EXPECT_EQ(RateChangeText(R("0.0005", 1000), R("0.5")), "0.00%");
    // Per 1K vs per 1M: 0.0008/1K = 0.8/1M -> 0.4/1M is -50 %.
    EXPECT_EQ(RateChangeText(R("0.0008", 1000), R("0.4")), "-50.00%");
    EXPECT_EQ(RateChangeText(std::nullopt, R("0.4")), "new");
    EXPECT_EQ(RateChangeText(R("0.4"), std::nullopt), "removed");
    EXPECT_EQ(RateChangeText(R("0"), R("0.4")), "from 0");
    EXPECT_FALSE(RateChangePercent(R("0"), R("0.4")).has_value());
    EXPECT_EQ(RateChangePercent(R("6"), R("2.5"))->ToString(2), "-58.33");
}

std::string ReadSource(const std::string& path) {
    std::ifstream in(std::string(TALLY_SOURCE_DIR) + "/" + path, std::ios::binary);
    EXPECT_TRUE(in) << path;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(PlanDiff, DeepseekV31CutOver) {
    const std::string text = ReadSource("deploy/plans/deepseek.yaml");
    Catalog catalog = testing::MustCatalog({text});
    const Plan& plan = catalog.plans.front();
    ASSERT_EQ(plan.versions.size(), 3u);  // the third, the 2025-09-29 cut, is not compared here
    const PlanVersionDiff diff = DiffPlanVersions(plan.versions[0], catalog.units, plan.versions[1], catalog.units);
    EXPECT_TRUE(diff.models_added.empty());
    EXPECT_TRUE(diff.models_removed.empty());
    // deepseek-chat: input 0.27 -> 0.56 (+107.41 %), cache hit 0.07 unchanged,
    // output 1.10 -> 1.68: 0.58 / 1.10 = 52.7272... -> +52.73 %.
    EXPECT_EQ(ChangeOf(diff, "deepseek-chat", "all", "", false, false, "input"), "+107.41%");
    EXPECT_EQ(ChangeOf(diff, "deepseek-chat", "all", "", false, false, "cached_input"), "unchanged");
    EXPECT_EQ(ChangeOf(diff, "deepseek-chat", "all", "", false, false, "output"), "+52.73%");
    // Cache writes price as input (CellRate's fallback), so they move with it.
    EXPECT_EQ(ChangeOf(diff, "deepseek-chat", "all", "", false, false, "cache_write"), "+107.41%");
    // deepseek-reasoner: 0.55 -> 0.56 = +1.8181...% -> +1.82; 0.14 -> 0.07 = -50 %;
    // 2.19 -> 1.68 = -0.51 / 2.19 = -23.2876... -> -23.29.
    EXPECT_EQ(ChangeOf(diff, "deepseek-reasoner", "all", "", false, false, "input"), "+1.82%");
    EXPECT_EQ(ChangeOf(diff, "deepseek-reasoner", "all", "", false, false, "cached_input"), "-50.00%");
    EXPECT_EQ(ChangeOf(diff, "deepseek-reasoner", "all", "", false, false, "output"), "-23.29%");
    // The night discount is gone: its cells are removed, and so is the window.
    EXPECT_EQ(ChangeOf(diff, "deepseek-chat", "all", "off-peak", false, false, "input"), "removed");
    EXPECT_EQ(ChangeOf(diff, "deepseek-reasoner", "all", "off-peak", false, false, "output"), "removed");
    bool window_removed = false;
    for (const TermChange& t : diff.terms) {
        if (t.term == "model deepseek-chat: window off-peak") {
            window_removed = t.new_value.empty() && t.old_value.rfind("16:30-00:30 UTC", 0) == 0;
        }
        EXPECT_NE(t.term, "currency");
    }
    EXPECT_TRUE(window_removed);
    // Reversed, the same cells: the cut is a rise the other way round.
    const PlanVersionDiff back = DiffPlanVersions(plan.versions[1], catalog.units, plan.versions[0], catalog.units);
    EXPECT_EQ(ChangeOf(back, "deepseek-reasoner", "all", "", false, false, "cached_input"), "+100.00%");
    EXPECT_EQ(ChangeOf(back, "deepseek-chat", "all", "off-peak", false, false, "input"), "new");
    EXPECT_EQ(back.rates.size(), diff.rates.size());
}

// qwen3-max, China mainland, CNY per 1M (price-sheets.md): 2025-09-23's
// 6/24, 10/40, 15/60 by band, and 2026's 2.5/10, 4/16, 7/28; the new
// version also moves to round_at: line, and adds a model while dropping one.
constexpr const char* kQwen3MaxRepricing = R"(
plan: qwen3-max
versions:
  - version: "2025-09"
    effective_from: 2025-09-23T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      qwen3-max:
        bands:
          - {up_to: 32000, rates: {input: "6", output: "24"}}
          - {up_to: 128000, rates: {input: "10", output: "40"}}
          - {up_to: 256000, rates: {input: "15", output: "60"}}
      qwen-long:
        rates: {input: "0.5", output: "2"}
  - version: "2026-01"
    effective_from: 2026-01-23T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    round_at: line
    models:
      qwen3-max:
        bands:
          - {up_to: 32000, rates: {input: "2.5", output: "10"}}
          - {up_to: 128000, rates: {input: "4", output: "16"}}
          - {up_to: 256000, rates: {input: "7", output: "28"}}
      qwen-plus:
        rates: {input: "0.8", output: "2"}
)";

TEST(PlanDiff, Qwen3MaxRepricingByBandModelsAndTerms) {
    Catalog catalog = testing::MustCatalog({kQwen3MaxRepricing});
    const Plan& plan = catalog.plans.front();
    const PlanVersionDiff diff = DiffPlanVersions(plan.versions[0], catalog.units, plan.versions[1], catalog.units);
    // (2.5 - 6) / 6 = -0.58333 -> -58.33; (10 - 24) / 24 the same.
    EXPECT_EQ(ChangeOf(diff, "qwen3-max", "0-32000", "", false, false, "input"), "-58.33%");
    EXPECT_EQ(ChangeOf(diff, "qwen3-max", "0-32000", "", false, false, "output"), "-58.33%");
    // (4 - 10) / 10 = -60 %; (16 - 40) / 40 = -60 %.
    EXPECT_EQ(ChangeOf(diff, "qwen3-max", "32001-128000", "", false, false, "input"), "-60.00%");
    EXPECT_EQ(ChangeOf(diff, "qwen3-max", "32001-128000", "", false, false, "output"), "-60.00%");
    // (7 - 15) / 15 = -0.53333 -> -53.33; (28 - 60) / 60 the same.
    EXPECT_EQ(ChangeOf(diff, "qwen3-max", "128001-256000", "", false, false, "input"), "-53.33%");
    EXPECT_EQ(ChangeOf(diff, "qwen3-max", "128001-256000", "", false, false, "output"), "-53.33%");
    ASSERT_EQ(diff.models_added, std::vector<std::string>{"qwen-plus"});
    ASSERT_EQ(diff.models_removed, std::vector<std::string>{"qwen-long"});
    // Cells of added or removed models are not listed one by one.
    for (const RateChange& c : diff.rates) {
        EXPECT_EQ(c.model, "qwen3-max");
        ASSERT_TRUE(c.old_rate.has_value());
        ASSERT_TRUE(c.new_rate.has_value());
    }
    ASSERT_EQ(diff.terms.size(), 1u);
    EXPECT_EQ(diff.terms[0].term, "round_at");
    EXPECT_EQ(diff.terms[0].old_value, "invoice");
    EXPECT_EQ(diff.terms[0].new_value, "line");
    // A version against itself: nothing.
    EXPECT_TRUE(DiffPlanVersions(plan.versions[1], catalog.units, plan.versions[1], catalog.units).empty());
}

// A window copied without a zone of its own is read in the version's zone:
// a new time_zone moves it (DeepSeek's 00:30-08:30 Beijing discount is
// 16:30-00:30 UTC), and the diff says so next to the zone's change.
TEST(PlanDiff, AChangedTimeZoneShowsEveryWindowItMoves) {
    const std::string text = R"(plan: x
versions:
  - version: a
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: UTC
    models:
      m:
        rates: {input: "1", cached_input: "0.2", output: "2"}
        windows:
          - {name: night, start: "00:30", end: "08:30", multiplier: "0.5"}
          - {name: pinned, time_zone: UTC, start: "16:30", end: "00:30", multiplier: "0.5"}
  - version: b
    extends: a
    effective_from: 2025-02-01T00:00:00Z
    time_zone: Asia/Shanghai
)";
    Catalog catalog = testing::MustCatalog({text});
    const Plan& plan = catalog.plans.front();
    const PlanVersionDiff diff = DiffPlanVersions(plan.versions[0], catalog.units, plan.versions[1], catalog.units);
    ASSERT_EQ(diff.terms.size(), 2u);
    EXPECT_EQ(diff.terms[0].term, "time_zone");
    EXPECT_EQ(diff.terms[1].term, "model m: window night");  // 'pinned' has its own zone: it stays
    EXPECT_EQ(diff.terms[1].old_value, "00:30-08:30 (plan zone UTC), multiplier 0.5");
    EXPECT_EQ(diff.terms[1].new_value, "00:30-08:30 (plan zone Asia/Shanghai), multiplier 0.5");
}

}  // namespace
}  // namespace tally
