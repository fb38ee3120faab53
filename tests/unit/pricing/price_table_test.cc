// The resolved price table (pricing/price_table.h): cells of the example
// plans checked by hand against their published sheets, and a property:
// for random events, what the rater and PriceRollups charge is quantity x
// the table's rate of the cell each part of the call falls in.
#include "pricing/price_table.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "pricing/invoice.h"
#include "pricing/plan_yaml.h"
#include "test_plans.h"

namespace tally {
namespace {

std::string ReadSource(const std::string& path) {
    std::ifstream in(std::string(TALLY_SOURCE_DIR) + "/" + path, std::ios::binary);
    EXPECT_TRUE(in) << path;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Catalog ExampleCatalog() {
    Catalog catalog;
    for (const char* file : {"deploy/plans/doubao-seed-1.6.yaml", "deploy/plans/deepseek.yaml",
                             "deploy/plans/qwen-plus.yaml", "deploy/plans/gemini-2.5-pro.yaml"}) {
        Diagnostics d;
        auto plan = ParsePlan(ReadSource(file), file, &catalog.units, &d);
        EXPECT_TRUE(plan.has_value()) << file << ": " << (d.empty() ? "" : d.front().ToString());
        if (plan) catalog.plans.push_back(std::move(*plan));
    }
    return catalog;
}

// The cell of `model` with the given labels; fails the test when absent.
const PriceCell* Cell(const std::vector<PriceCell>& table, const std::string& model, const std::string& band,
                      const std::string& condition, const std::string& window, bool batch, bool thinking) {
    for (const PriceCell& c : table) {
        if (c.model == model && c.band == band && c.output_condition == condition && c.window == window &&
            c.batch == batch && c.thinking == thinking) {
            return &c;
        }
    }
    ADD_FAILURE() << "no cell " << model << " " << band << " '" << condition << "' '" << window << "' batch=" << batch
                  << " thinking=" << thinking;
    return nullptr;
}

// "0.8/1000000", or "none" / "absent".
std::string RateOf(const PriceCell* cell, const std::string& unit) {
    if (cell == nullptr) return "no cell";
    for (const PriceCellRate& r : cell->rates) {
        if (r.unit_name == unit) return r.rate ? r.rate->price().ToString() + "/" + std::to_string(r.rate->per()) : "none";
    }
    return "absent";
}

std::vector<std::string> Units(const PriceCell* cell) {
    std::vector<std::string> out;
    if (cell != nullptr) {
        for (const PriceCellRate& r : cell->rates) out.push_back(r.unit_name);
    }
    return out;
}

TEST(PriceTable, DoubaoSeed16AsOnTheVolcanoSheet) {
    const Catalog catalog = ExampleCatalog();
    const Plan* plan = catalog.FindPlan("doubao-seed-1.6");
    ASSERT_NE(plan, nullptr);
    const std::vector<PriceCell> table = ResolvePriceTable(plan->versions.front(), catalog.units);
    // 4 models x 3 bands x online/batch, and the first model's output condition in band 0.
    EXPECT_EQ(table.size(), 4u * 3u * 2u + 2u);
    const std::string m = "doubao-seed-1.6";
    // Sheet, 0-32K: input 0.8, cache hit 0.16, output 8; output <= 200 tokens: 2.
    const PriceCell* plain = Cell(table, m, "0-32000", "", "", false, false);
    EXPECT_EQ(RateOf(plain, "input"), "0.8/1000000");
    EXPECT_EQ(RateOf(plain, "cached_input"), "0.16/1000000");
    EXPECT_EQ(RateOf(plain, "output"), "8/1000000");
    EXPECT_EQ(RateOf(plain, "cache_storage_token_hours"), "0.017/1000000");
    // Cache writes are not on the sheet: billed as input (the fallback).
    EXPECT_EQ(RateOf(plain, "cache_write"), "0.8/1000000");
    EXPECT_EQ(RateOf(plain, "reasoning"), "absent");  // counted in output
    EXPECT_EQ(Units(plain), (std::vector<std::string>{"input", "cached_input", "cache_write", "cache_write_1h",
                                                      "output", "cache_storage_token_hours"}));
    const PriceCell* short_output = Cell(table, m, "0-32000", "output<=200", "", false, false);
    EXPECT_EQ(RateOf(short_output, "output"), "2/1000000");
    EXPECT_EQ(RateOf(short_output, "input"), "0.8/1000000");
    // 32K-128K: 1.2 / 0.16 / 16; 128K-256K: 2.4 / 0.16 / 24.
    EXPECT_EQ(RateOf(Cell(table, m, "32001-128000", "", "", false, false), "input"), "1.2/1000000");
    EXPECT_EQ(RateOf(Cell(table, m, "32001-128000", "", "", false, false), "output"), "16/1000000");
    EXPECT_EQ(RateOf(Cell(table, m, "128001-256000", "", "", false, false), "output"), "24/1000000");
    // Batch: half price, cache hits keep 0.16 (cache_hits: full_cache_rate).
    const PriceCell* batch = Cell(table, m, "128001-256000", "", "", true, false);
    EXPECT_EQ(RateOf(batch, "input"), "1.2/1000000");
    EXPECT_EQ(RateOf(batch, "output"), "12/1000000");
    EXPECT_EQ(RateOf(batch, "cached_input"), "0.16/1000000");
    EXPECT_EQ(RateOf(Cell(table, m, "0-32000", "output<=200", "", true, false), "output"), "1/1000000");
    // Flash, 0-32K: 0.15 / 0.03 / 1.5.
    const PriceCell* flash = Cell(table, "doubao-seed-1.6-flash", "0-32000", "", "", false, false);
    EXPECT_EQ(RateOf(flash, "input"), "0.15/1000000");
    EXPECT_EQ(RateOf(flash, "cached_input"), "0.03/1000000");
    EXPECT_EQ(RateOf(flash, "output"), "1.5/1000000");
}

TEST(PriceTable, DeepseekOffPeakWindowFromItsOwnTable) {
    const Catalog catalog = ExampleCatalog();
    const Plan* plan = catalog.FindPlan("deepseek");
    ASSERT_NE(plan, nullptr);
    ASSERT_EQ(plan->versions.size(), 3u);  // the third, the 2025-09-29 cut, extends the second
    const std::vector<PriceCell> v1 = ResolvePriceTable(plan->versions[0], catalog.units);
    EXPECT_EQ(v1.size(), 4u);  // 2 models, in and out of the window
    // Sheet: reasoner 0.55 / 0.14 / 2.19; off-peak 0.135 / 0.035 / 0.55 (not a multiple).
    const PriceCell* reasoner = Cell(v1, "deepseek-reasoner", "all", "", "", false, false);
    EXPECT_EQ(RateOf(reasoner, "input"), "0.55/1000000");
    EXPECT_EQ(RateOf(reasoner, "cached_input"), "0.14/1000000");
    EXPECT_EQ(RateOf(reasoner, "output"), "2.19/1000000");
    const PriceCell* night = Cell(v1, "deepseek-reasoner", "all", "", "off-peak", false, false);
    EXPECT_EQ(RateOf(night, "input"), "0.135/1000000");
    EXPECT_EQ(RateOf(night, "cached_input"), "0.035/1000000");
    EXPECT_EQ(RateOf(night, "output"), "0.55/1000000");
    const std::vector<PriceCell> v2 = ResolvePriceTable(plan->versions[1], catalog.units);
    EXPECT_EQ(v2.size(), 2u);
    EXPECT_EQ(RateOf(Cell(v2, "deepseek-chat", "all", "", "", false, false), "output"), "1.68/1000000");
    // The cut, written as changes: the resolved table has the sheet's 0.028 / 0.28 / 0.42.
    const std::vector<PriceCell> v3 = ResolvePriceTable(plan->versions[2], catalog.units);
    EXPECT_EQ(v3.size(), 2u);
    const PriceCell* cut = Cell(v3, "deepseek-reasoner", "all", "", "", false, false);
    EXPECT_EQ(RateOf(cut, "input"), "0.28/1000000");
    EXPECT_EQ(RateOf(cut, "cached_input"), "0.028/1000000");
    EXPECT_EQ(RateOf(cut, "output"), "0.42/1000000");
}

// The example qwen-plus writes cache hits as 20 % of each band's input: the
// table shows them resolved, as on Alibaba's sheet (0.8 / 2.4 / 4.8 input,
// so 0.16 / 0.48 / 0.96), and cache writes fall back to the band's input.
TEST(PriceTable, QwenPlusCacheHitsResolvedFromTheirShareOfInput) {
    const Catalog catalog = ExampleCatalog();
    const Plan* plan = catalog.FindPlan("qwen-plus");
    ASSERT_NE(plan, nullptr);
    const std::vector<PriceCell> table = ResolvePriceTable(plan->versions.front(), catalog.units);
    const std::vector<std::pair<std::string, std::string>> bands = {
        {"0-128000", "0.16"}, {"128001-256000", "0.48"}, {"256001-1000000", "0.96"}};
    for (const auto& [band, hit] : bands) {
        for (bool thinking : {false, true}) {
            EXPECT_EQ(RateOf(Cell(table, "qwen-plus", band, "", "", false, thinking), "cached_input"), hit + "/1000000")
                << band;
        }
        // Batch does not combine with the cache: no cache-hit rate in a batch cell.
        EXPECT_EQ(RateOf(Cell(table, "qwen-plus", band, "", "", true, false), "cached_input"), "absent");
    }
    // Explicit cache: hits 10 % (0.24), creation 125 % (3) of band 2's 2.4.
    EXPECT_EQ(RateOf(Cell(table, "qwen-plus", "128001-256000", "", "", false, false), "cached_input_explicit"),
              "0.24/1000000");
    EXPECT_EQ(RateOf(Cell(table, "qwen-plus", "128001-256000", "", "", false, false), "cache_write"), "3/1000000");
    // qwen-flash: 20 % of 0.15 / 0.6 / 1.2.
    EXPECT_EQ(RateOf(Cell(table, "qwen-flash", "0-128000", "", "", false, false), "cached_input"), "0.03/1000000");
    EXPECT_EQ(RateOf(Cell(table, "qwen-flash", "128001-256000", "", "", false, false), "cached_input"), "0.12/1000000");
    EXPECT_EQ(RateOf(Cell(table, "qwen-flash", "256001-1000000", "", "", false, false), "cached_input"),
              "0.24/1000000");
}

// Every example plan validates without a warning.
TEST(PriceTable, ExamplePlansHaveNoWarnings) {
    for (const char* file : {"deploy/plans/doubao-seed-1.6.yaml", "deploy/plans/deepseek.yaml",
                             "deploy/plans/qwen-plus.yaml", "deploy/plans/gemini-2.5-pro.yaml"}) {
        UnitTable units;
        Diagnostics d;
        EXPECT_TRUE(ParsePlan(ReadSource(file), file, &units, &d).has_value()) << file;
        for (const Diagnostic& x : d) ADD_FAILURE() << x.ToString();
    }
}

// Rate tables at every level (docs/plan-format.md, "Which table a cell's
// rate comes from"): condition batch and thinking tables, a window's table
// per band, a window multiplier on a banded model, shares of input and
// same_as: input; for the property test below.
const char* const kTablesPlan = R"(
plan: tables
versions:
  - version: v1
    effective_from: 2025-06-11T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      doubao:
        above_top_band: bill_at_top_band
        bands:
          - up_to: 32000
            rates: {input: "0.80", cached_input: {of_input: "0.2"}, cache_write: {of_input: "1.25"}, output: "8.00"}
            thinking_rates: {output: "16.00"}
            batch_rates: {input: "0.40", output: "4.00"}
            window_rates: {night: {input: "0.60"}}
            output_conditions:
              - up_to: 200
                rates: {output: "2.00"}
                thinking_rates: {output: "4.00"}
                batch_rates: {output: "1.00", cached_input: {of_input: "0.4"}}
          - up_to: 128000
            rates: {input: "1.20", cached_input: "0.16", output: "16.00"}
            batch_rates: {input: "0.60", output: "8.00"}
            window_rates: {night: {input: "0.9", cached_input: {same_as: input}}}
          - rates: {input: "2.40", cached_input: {of_input: "0.2"}, output: "24.00"}
            window_rates: {night: {output: "12"}}
        windows:
          - {name: night, start: "00:00", end: "08:00"}
        batch: {multiplier: "0.5", cache_hits: full_cache_rate}
      night-half:
        bands:
          - up_to: 32000
            rates: {input: "0.27", cached_input: {of_input: "0.25"}, output: "1.10"}
          - rates: {input: "0.30", cached_input: "0.006", output: "1.20"}
        windows:
          - {name: off-peak, time_zone: UTC, start: "16:30", end: "00:30", multiplier: "0.5"}
        batch: {multiplier: "0.5", cache_hits: discounted}
)";

TEST(PriceTable, EveryTableLevelResolvedInItsCell) {
    const Catalog catalog = testing::MustCatalog({kTablesPlan});
    const std::vector<PriceCell> table = ResolvePriceTable(catalog.plans.front().versions.front(), catalog.units);
    // Band 1 by day: hits 0.2 x 0.80; writes 1.25 x 0.80.
    const PriceCell* day = Cell(table, "doubao", "0-32000", "", "", false, false);
    EXPECT_EQ(RateOf(day, "cached_input"), "0.16/1000000");
    EXPECT_EQ(RateOf(day, "cache_write"), "1/1000000");
    // At night the band's window table gives input 0.60: the shares follow it.
    const PriceCell* night = Cell(table, "doubao", "0-32000", "", "night", false, false);
    EXPECT_EQ(RateOf(night, "input"), "0.6/1000000");
    EXPECT_EQ(RateOf(night, "cached_input"), "0.12/1000000");
    EXPECT_EQ(RateOf(night, "cache_write"), "0.75/1000000");
    // Batch, short output: the condition's batch output 1.00 and its hits at
    // 0.4 of the batch table's input 0.40 (no second discount).
    const PriceCell* batch_short = Cell(table, "doubao", "0-32000", "output<=200", "", true, false);
    EXPECT_EQ(RateOf(batch_short, "output"), "1/1000000");
    EXPECT_EQ(RateOf(batch_short, "cached_input"), "0.16/1000000");
    // Batch, longer output: the band's hits share of the online input, kept (full_cache_rate).
    EXPECT_EQ(RateOf(Cell(table, "doubao", "0-32000", "", "", true, false), "cached_input"), "0.16/1000000");
    // Thinking: the condition's thinking rate under it, the band's otherwise.
    EXPECT_EQ(RateOf(Cell(table, "doubao", "0-32000", "output<=200", "", false, true), "output"), "4/1000000");
    EXPECT_EQ(RateOf(Cell(table, "doubao", "0-32000", "", "", false, true), "output"), "16/1000000");
    // Band 2 at night: same_as input.
    EXPECT_EQ(RateOf(Cell(table, "doubao", "32001-128000", "", "night", false, false), "cached_input"), "0.9/1000000");
    // Band 3 at night: the window's output, the band's input.
    const PriceCell* top_night = Cell(table, "doubao", "128001+", "", "night", false, false);
    EXPECT_EQ(RateOf(top_night, "output"), "12/1000000");
    EXPECT_EQ(RateOf(top_night, "input"), "2.4/1000000");
    // A multiplier window on a banded model halves each band's own rates.
    EXPECT_EQ(RateOf(Cell(table, "night-half", "32001+", "", "off-peak", false, false), "input"), "0.15/1000000");
    EXPECT_EQ(RateOf(Cell(table, "night-half", "0-32000", "", "off-peak", false, false), "cached_input"),
              "0.03375/1000000");
    // Discounted batch hits at night: 0.25 x 0.27 x 0.5 x 0.5.
    EXPECT_EQ(RateOf(Cell(table, "night-half", "0-32000", "", "off-peak", true, false), "cached_input"),
              "0.016875/1000000");
}

TEST(PriceTable, MultipliersThinkingReasoningAndBatchWithoutCache) {
    const Catalog catalog = testing::MustCatalog({testing::kFeaturePlan});
    const std::vector<PriceCell> table = ResolvePriceTable(catalog.plans.front().versions.front(), catalog.units);
    // think: window multiplier 0.5, thinking output 8, reasoning 3, batch 0.5 not combined with the cache.
    const PriceCell* think = Cell(table, "think", "all", "", "", false, false);
    EXPECT_EQ(RateOf(think, "reasoning"), "3/1000");
    EXPECT_EQ(RateOf(think, "cached_input"), "1/1000");  // falls back to input
    EXPECT_EQ(RateOf(Cell(table, "think", "all", "", "", false, true), "output"), "8/1000");
    EXPECT_EQ(RateOf(Cell(table, "think", "all", "", "weekday-night", false, true), "output"), "4/1000");
    const PriceCell* night_batch = Cell(table, "think", "all", "", "weekday-night", true, false);
    EXPECT_EQ(RateOf(night_batch, "input"), "0.25/1000");
    EXPECT_EQ(Units(night_batch), (std::vector<std::string>{"input", "output", "reasoning"}));
    // stack: batch halves cache hits too; own-batch: its own batch input rate, and no multiplier for output.
    EXPECT_EQ(RateOf(Cell(table, "stack", "all", "", "", true, false), "cache_write_1h"), "10/1000");
    EXPECT_EQ(RateOf(Cell(table, "stack", "all", "", "", true, false), "cached_input"), "0.5/1000");
    EXPECT_EQ(RateOf(Cell(table, "own-batch", "0-100", "", "", true, false), "input"), "0.3/1000");
    EXPECT_EQ(RateOf(Cell(table, "own-batch", "0-100", "", "", true, false), "output"), "2/1000");
    EXPECT_EQ(RateOf(Cell(table, "grad", "1001-2000", "", "", false, false), "input"), "3/1000");
}

// Random events under each example plan, one customer per event: the
// invoice's exact usage equals the sum over the call's parts and units of
// quantity x the table's rate of the part's cell, and every unit billed is
// in that cell's list.
TEST(PriceTable, RaterChargesQuantityTimesTheTableRate) {
    Catalog catalog = ExampleCatalog();
    // One catalog, one unit table: the feature and tables plans parsed again into it.
    for (const char* text : {testing::kFeaturePlan, kTablesPlan}) {
        Diagnostics d;
        auto plan = ParsePlan(text, "feature", &catalog.units, &d);
        ASSERT_TRUE(plan.has_value());
        catalog.plans.push_back(std::move(*plan));
    }
    std::mt19937_64 rng(20251130);
    auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
    const std::optional<UnitId> storage = catalog.units.Find("cache_storage_token_hours");
    int checked = 0;
    for (const Plan& plan : catalog.plans) {
        ASSERT_TRUE(plan.versions.front().tiers.empty() && plan.versions.front().free_quotas.empty()) << plan.name;
        std::vector<std::vector<PriceCell>> tables;
        for (const PlanVersion& v : plan.versions) tables.push_back(ResolvePriceTable(v, catalog.units));
        Rater rater(catalog, {}, plan.name, {});
        std::map<std::string, Amount> expected;  // by customer
        for (int i = 0; i < 400; ++i) {
            Event e;
            e.id = "p" + std::to_string(i);
            e.source = "prop";
            e.subject = plan.name + "-" + std::to_string(1000 + i);
            const Instant from = plan.versions.front().effective_from;
            e.time = from + std::chrono::milliseconds(uniform(0, int64_t{200} * 24 * 3600 * 1000));
            const PlanVersion* v = plan.VersionAt(e.time);
            ASSERT_NE(v, nullptr);
            e.model = v->models[static_cast<size_t>(uniform(0, static_cast<int64_t>(v->models.size()) - 1))].name;
            e.input_tokens = uniform(0, 300000);
            e.cached_input_tokens = uniform(0, e.input_tokens / 2);
            e.cache_write_tokens = uniform(0, (e.input_tokens - e.cached_input_tokens) / 3);
            e.cache_write_1h_tokens = uniform(0, (e.input_tokens - e.cached_input_tokens - e.cache_write_tokens) / 3);
            e.output_tokens = uniform(0, 3) == 0 ? uniform(0, 300) : uniform(0, 50000);
            e.reasoning_tokens = uniform(0, e.output_tokens);
            e.batch = uniform(0, 1) == 1;
            e.thinking = uniform(0, 1) == 1;
            if (storage && uniform(0, 1) == 1) e.extras.push_back({"cache_storage_token_hours", uniform(1, 900000)});
            std::vector<RatedPart> parts;
            if (rater.Classify(e, &parts).status != RateStatus::kRated) continue;  // e.g. above the top band
            const PlanVersion& version = plan.versions[parts.front().key.cell.version];
            Amount sum = Amount::Zero(version.currency);
            for (const RatedPart& part : parts) {
                const PriceCell* cell = FindPriceCell(tables[part.key.cell.version], part.key.cell);
                ASSERT_NE(cell, nullptr) << e.model;
                EXPECT_EQ(cell->model, e.model);
                for (UnitId u = 0; u < kMaxUnits; ++u) {
                    const int64_t q = part.quantities[u];
                    if (q == 0) continue;
                    // An extra unit the model does not price is an unpriced line: shown, never charged.
                    const ModelPricing& m = version.models[part.key.cell.model];
                    if (u >= kNumStdUnits && (m.priced_units & (1u << u)) == 0) continue;
                    const PriceCellRate* rate = nullptr;
                    for (const PriceCellRate& r : cell->rates) {
                        if (r.unit == u) rate = &r;
                    }
                    ASSERT_NE(rate, nullptr) << "unit " << catalog.units.Name(u) << " billed but not in the cell";
                    ASSERT_TRUE(rate->rate.has_value());
                    sum += rate->rate->AmountFor(q, version.currency, RoundingMode::kHalfEven);
                }
            }
            ASSERT_EQ(rater.Add(e).status, RateStatus::kRated);
            expected.emplace(e.subject, sum);
            ++checked;
        }
        const std::vector<Invoice> invoices = PriceRollups(catalog, {}, plan.name, {}, rater.Rollups());
        ASSERT_EQ(invoices.size(), expected.size()) << plan.name;
        for (const Invoice& inv : invoices) {
            ASSERT_TRUE(inv.error.empty()) << inv.error;
            EXPECT_EQ(inv.usage_exact.ToString(), expected.at(inv.customer).ToString()) << inv.customer;
        }
    }
    EXPECT_GT(checked, 1000);
}

}  // namespace
}  // namespace tally
