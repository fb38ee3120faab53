// Rate tables at every level (issue 9, rules 1 to 3): batch and thinking
// rates inside an output condition, a window's own rates per band, and cache
// prices written as a share of the input rate. Every plan below is copied
// from a published sheet (../shared/price-sheets.md); every amount is
// computed by hand in the comment beside it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pricing/invoice.h"
#include "pricing/plan_yaml.h"
#include "pricing/price_table.h"
#include "pricing/rater.h"
#include "test_plans.h"

namespace tally {
namespace {

using testing::EventSpec;
using testing::MakeEvent;

using testing::Dump;

std::vector<std::string> Errors(const std::string& text) { return testing::PlanDiagnostics(text, Severity::kError); }
std::vector<std::string> Warnings(const std::string& text) {
    return testing::PlanDiagnostics(text, Severity::kWarning);
}

// The exact usage (before rounding, tax, tiers) one customer is charged for
// `specs` under `plan`.
std::string Usage(const Catalog& catalog, const char* plan, const std::vector<EventSpec>& specs) {
    Rater rater(catalog, {}, plan, {});
    for (const EventSpec& spec : specs) {
        RateOutcome outcome = rater.Add(MakeEvent(spec));
        EXPECT_EQ(outcome.status, RateStatus::kRated) << outcome.reason;
    }
    const std::vector<Invoice> invoices = PriceRollups(catalog, {}, plan, {}, rater.Rollups());
    if (invoices.size() != 1) return "invoices: " + std::to_string(invoices.size());
    if (!invoices[0].error.empty()) return invoices[0].error;
    return invoices[0].usage_exact.ToString();
}

// "price/per" of `unit` in the cell a call of `spec` lands in (one part).
std::string RateIn(const Catalog& catalog, const char* plan, const EventSpec& spec, UnitId unit) {
    Rater rater(catalog, {}, plan, {});
    std::vector<RatedPart> parts;
    RateOutcome outcome = rater.Classify(MakeEvent(spec), &parts);
    EXPECT_EQ(outcome.status, RateStatus::kRated) << outcome.reason;
    if (parts.size() != 1) return "parts: " + std::to_string(parts.size());
    const CellKey& cell = parts[0].key.cell;
    const ModelPricing& m = catalog.FindPlan(plan)->versions[cell.version].models[cell.model];
    auto rate = CellRate(m, cell, unit);
    return rate ? rate->price().ToString() + "/" + std::to_string(rate->per()) : "none";
}

// ---- Rule 1: every rate table at every level --------------------------------

// Volcano's doubao-seed-1.6 sheet, written as the sheet is: the batch prices
// are a table of their own per band, with a batch row for short outputs
// (in [0,32] and out [0,0.2]: batch output 1.00) next to the online one (2.00).
const char* const kDoubaoBatchTables = R"(
plan: doubao-batch
versions:
  - version: "2025-06"
    effective_from: 2025-06-11T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      doubao-seed-1.6:
        bands:
          - up_to: 32000
            rates: {input: "0.80", cached_input: "0.16", output: "8.00"}
            batch_rates: {input: "0.40", cached_input: "0.16", output: "4.00"}
            output_conditions:
              - up_to: 200
                rates: {output: "2.00"}
                batch_rates: {output: "1.00"}
          - up_to: 128000
            rates: {input: "1.20", cached_input: "0.16", output: "16.00"}
            batch_rates: {input: "0.60", cached_input: "0.16", output: "8.00"}
          - up_to: 256000
            rates: {input: "2.40", cached_input: "0.16", output: "24.00"}
            batch_rates: {input: "1.20", cached_input: "0.16", output: "12.00"}
        batch: {cache_hits: full_cache_rate}
)";

TEST(RateTables, BatchRatesInsideAnOutputConditionWinOverTheBandsBatchRates) {
    EXPECT_TRUE(Errors(kDoubaoBatchTables).empty()) << Dump(Errors(kDoubaoBatchTables));
    Catalog catalog = testing::MustCatalog({kDoubaoBatchTables});
    const EventSpec batch_short = {.model = "doubao-seed-1.6", .input = 20000, .output = 150, .batch = true};
    EXPECT_EQ(RateIn(catalog, "doubao-batch", batch_short, kUnitOutput), "1/1000000");
    EXPECT_EQ(RateIn(catalog, "doubao-batch", batch_short, kUnitInput), "0.4/1000000");
    // 20,000 x 0.40 / 1M = 0.008; 150 x 1.00 / 1M = 0.00015 (the band's batch
    // output 4.00 would make it 0.0006: 0.0086 in all).
    EXPECT_EQ(Usage(catalog, "doubao-batch", {batch_short}), "0.00815");
    // Online, the same call: 20,000 x 0.80 = 0.016; 150 x 2.00 = 0.0003.
    EXPECT_EQ(Usage(catalog, "doubao-batch", {{.model = "doubao-seed-1.6", .input = 20000, .output = 150}}), "0.0163");
    // Batch with a longer output: 0.008 + 300 x 4.00 / 1M = 0.0012.
    EXPECT_EQ(
        Usage(catalog, "doubao-batch", {{.model = "doubao-seed-1.6", .input = 20000, .output = 300, .batch = true}}),
        "0.0092");
    // Batch cache hits at the batch table's 0.16: 15,000 x 0.40 = 0.006;
    // 5,000 x 0.16 = 0.0008; 150 x 1.00 = 0.00015.
    EXPECT_EQ(Usage(catalog, "doubao-batch",
                    {{.model = "doubao-seed-1.6", .input = 20000, .output = 150, .cached = 5000, .batch = true}}),
              "0.00695");
}

// The order, most specific first: condition batch, band batch, window,
// condition thinking, band thinking, condition rates, band rates. Qwen-plus
// (Alibaba, CNY per 1M) prices thinking output at 8 against 2; written here
// as a sheet-shaped test of the order, with Volcano's short-output row.
TEST(RateTables, TheMostSpecificTableThatStatesTheUnitWins) {
    const std::string plan = R"(
plan: order
versions:
  - version: v1
    effective_from: 2025-07-28T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      m:
        rates: {input: "0.8", cached_input: "0.16", output: "8.00"}
        thinking_rates: {output: "8"}
        batch_rates: {input: "0.40", output: "4.00"}
        batch: {cache_hits: discounted}
        output_conditions:
          - up_to: 200
            rates: {output: "2.00"}
            thinking_rates: {output: "2"}
            batch_rates: {output: "1.00"}
        windows:
          - {name: night, time_zone: UTC, start: "16:30", end: "00:30", multiplier: "0.5"}
)";
    EXPECT_TRUE(Errors(plan).empty()) << Dump(Errors(plan));
    Catalog catalog = testing::MustCatalog({plan});
    auto rate = [&](const EventSpec& spec, UnitId unit) { return RateIn(catalog, "order", spec, unit); };
    // Thinking, short output: the condition's thinking rate beats the band's thinking rate.
    EXPECT_EQ(rate({.input = 100, .output = 150, .thinking = true}, kUnitOutput), "2/1000000");
    // Thinking, long output: the band's thinking rate beats the condition-less band rate.
    EXPECT_EQ(rate({.input = 100, .output = 300, .thinking = true}, kUnitOutput), "8/1000000");
    // Batch and thinking, short output: the condition's batch table first.
    EXPECT_EQ(rate({.input = 100, .output = 150, .batch = true, .thinking = true}, kUnitOutput), "1/1000000");
    // Batch at night: a batch table's rate still takes the window's
    // multiplier (only a window's own table is exempt from it): 0.5 x 1.00.
    EXPECT_EQ(rate({.time = "2025-11-03T17:00:00Z", .input = 100, .output = 150, .batch = true}, kUnitOutput),
              "0.5/1000000");
    // Batch cache hits: no batch table states them, so the band's 0.16
    // applies, and with no batch multiplier nothing discounts it.
    EXPECT_EQ(rate({.input = 100, .output = 150, .cached = 50, .batch = true}, kUnitCachedInput), "0.16/1000000");
}

TEST(RateTables, ConditionBatchAndThinkingTablesAreCheckedForEveryCell) {
    // A unit only a condition's batch table prices leaves the other cells without it.
    const std::string text = R"(
plan: p
versions:
  - version: v1
    effective_from: 2025-06-11T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      m:
        rates: {input: "0.80", cached_input: "0.16", output: "8.00"}
        output_conditions:
          - up_to: 200
            batch_rates: {output: "1.00", images: "0.002"}
        batch: {multiplier: "0.5", cache_hits: discounted}
)";
    auto errors = Errors(text);
    ASSERT_EQ(errors.size(), 1u) << Dump(errors);
    EXPECT_EQ(errors[0],
              "9:7: model 'm' prices images for batch calls with outputs up to 200 tokens but not for other calls "
              "(write images: 0 in its rates if it is free)");
}

// ---- Rule 2: a window's rates per band ---------------------------------------

// DeepSeek's sheet (USD per 1M), its standard and discount rows: deepseek-chat
// (0.27 / 0.07 / 1.10, night 0.135 / 0.035 / 0.550) and the 2026
// deepseek-flash (hit 0.006, miss 0.30, output 1.20; off-peak 0.003 / 0.15 /
// 0.60), sold as one model whose prompts above 32,000 tokens price as flash.
// Both discount rows are exactly half, so the multiplier form bills the same.
const char* const kNightPerBand = R"(
plan: night
versions:
  - version: v1
    effective_from: 2025-02-26T16:30:00Z
    currency: USD
    time_zone: UTC
    models:
      by-table:
        bands:
          - up_to: 32000
            rates: {input: "0.27", cached_input: "0.07", output: "1.10"}
            window_rates:
              off-peak: {input: "0.135", cached_input: "0.035", output: "0.550"}
          - rates: {input: "0.30", cached_input: "0.006", output: "1.20"}
            window_rates:
              off-peak: {input: "0.15", cached_input: "0.003", output: "0.60"}
        windows:
          - {name: off-peak, start: "16:30", end: "00:30"}
      by-multiplier:
        bands:
          - up_to: 32000
            rates: {input: "0.27", cached_input: "0.07", output: "1.10"}
          - rates: {input: "0.30", cached_input: "0.006", output: "1.20"}
        windows:
          - {name: off-peak, start: "16:30", end: "00:30", multiplier: "0.5"}
)";

TEST(RateTables, AWindowGivesItsOwnRatesPerBand) {
    EXPECT_TRUE(Errors(kNightPerBand).empty()) << Dump(Errors(kNightPerBand));
    Catalog catalog = testing::MustCatalog({kNightPerBand});
    for (const char* model : {"by-table", "by-multiplier"}) {
        SCOPED_TRACE(model);
        // Band 2 at night (17:00 UTC): 30,000 uncached x 0.15 = 0.0045;
        // 10,000 hits x 0.003 = 0.00003; 2,000 output x 0.60 = 0.0012.
        // (Band 1's night table, 0.135 / 0.035 / 0.550, would give 0.0055.)
        EXPECT_EQ(
            Usage(catalog, "night",
                  {{.model = model, .time = "2025-11-03T17:00:00Z", .input = 40000, .output = 2000, .cached = 10000}}),
            "0.00573");
        // Band 2 by day: 30,000 x 0.30 = 0.009; 10,000 x 0.006 = 0.00006; 2,000 x 1.20 = 0.0024.
        EXPECT_EQ(
            Usage(catalog, "night",
                  {{.model = model, .time = "2025-11-03T12:00:00Z", .input = 40000, .output = 2000, .cached = 10000}}),
            "0.01146");
        // Band 1 at night: 5,000 x 0.135 = 0.000675; 1,000 x 0.550 = 0.00055.
        EXPECT_EQ(
            Usage(catalog, "night", {{.model = model, .time = "2025-11-03T17:00:00Z", .input = 5000, .output = 1000}}),
            "0.001225");
    }
}

TEST(RateTables, AWindowWithOneTableOnABandedModelIsRefused) {
    const std::string text = R"(
plan: night
versions:
  - version: v1
    effective_from: 2025-02-26T16:30:00Z
    currency: USD
    time_zone: UTC
    models:
      m:
        bands:
          - up_to: 32000
            rates: {input: "0.27", cached_input: "0.07", output: "1.10"}
          - rates: {input: "0.30", cached_input: "0.006", output: "1.20"}
        windows:
          - name: off-peak
            start: "16:30"
            end: "00:30"
            rates: {input: "0.135", cached_input: "0.035", output: "0.550"}
)";
    auto errors = Errors(text);
    ASSERT_EQ(errors.size(), 1u) << Dump(errors);
    EXPECT_EQ(errors[0],
              "18:20: window 'off-peak' gives one rates table, but model 'm' has 2 bands and a window's table would "
              "override all of them; give each band its rates for the window (window_rates: {off-peak: {...}} in "
              "every band) or give the window a multiplier");
}

TEST(RateTables, WindowRatesOfABandAreChecked) {
    const std::string head = R"(
plan: night
versions:
  - version: v1
    effective_from: 2025-02-26T16:30:00Z
    currency: USD
    time_zone: UTC
    models:
      m:
        bands:
          - up_to: 32000
            rates: {input: "0.27", cached_input: "0.07", output: "1.10"}
            window_rates:
              )";
    const std::string tail = R"(
          - rates: {input: "0.30", cached_input: "0.006", output: "1.20"}
        windows:
          - {name: off-peak, start: "16:30", end: "00:30"}
)";
    // Band 2 gives no rates for the window.
    auto missing = Errors(head + R"(off-peak: {input: "0.135", cached_input: "0.035", output: "0.550"})" + tail);
    ASSERT_EQ(missing.size(), 1u) << Dump(missing);
    EXPECT_EQ(missing[0],
              "17:13: window 'off-peak' of model 'm' has no multiplier and band 32001+ gives no rates for it; write "
              "window_rates: {off-peak: {...}} in every band, or give the window a multiplier");
    // A window the model does not have.
    auto unknown = Errors(head + R"(night: {input: "0.135"})" + tail);
    ASSERT_GE(unknown.size(), 1u);
    EXPECT_EQ(unknown[0], "14:15: window_rates names 'night', which is not a window of model 'm'");
    // A window with a multiplier takes no tables.
    std::string with_multiplier = head + R"(off-peak: {input: "0.135"})" + tail;
    with_multiplier.replace(with_multiplier.find(R"(end: "00:30"})"), 13, R"(end: "00:30", multiplier: "0.5"})");
    auto both = Errors(with_multiplier);
    ASSERT_EQ(both.size(), 1u) << Dump(both);
    EXPECT_EQ(both[0],
              "14:15: window 'off-peak' of model 'm' has its own multiplier or rates; window_rates in a band are for "
              "a window that has neither");
}

// A window's table inside an output condition. No published sheet prints
// one yet; the case is Volcano's doubao-seed-1.6 band 1 (input 0.80, output
// 8.00, outputs up to 200 tokens 2.00) with an off-peak window at half
// (0.40 / 4.00) whose short-output row is 1.00, written where it belongs.
const char* const kShortOutputAtNight = R"(
plan: short-night
versions:
  - version: v1
    effective_from: 2025-06-11T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      doubao-seed-1.6:
        bands:
          - up_to: 32000
            rates: {input: "0.80", output: "8.00"}
            window_rates:
              night: {input: "0.40", output: "4.00"}
            output_conditions:
              - up_to: 200
                rates: {output: "2.00"}
                window_rates:
                  night: {output: "1.00"}
          - up_to: 128000
            rates: {input: "1.20", output: "16.00"}
            window_rates:
              night: {input: "0.60", output: "8.00"}
        windows:
          - {name: night, start: "00:00", end: "08:00"}
      single-band:
        rates: {input: "0.80", output: "8.00"}
        output_conditions:
          - up_to: 200
            rates: {output: "2.00"}
            window_rates:
              half: {output: "0.90"}
        windows:
          - {name: half, start: "00:00", end: "08:00", multiplier: "0.5"}
)";

TEST(RateTables, AnOutputConditionGivesItsOwnRatesInAWindow) {
    EXPECT_TRUE(Errors(kShortOutputAtNight).empty()) << Dump(Errors(kShortOutputAtNight));
    Catalog catalog = testing::MustCatalog({kShortOutputAtNight});
    const char* night = "2025-11-03T02:00:00+08:00";
    const char* day = "2025-11-03T12:00:00+08:00";
    // 20,000 in + 150 out at night: 20,000 x 0.40 / 1M = 0.008; 150 x 1.00 /
    // 1M = 0.00015. (The band's night output 4.00 would make it 0.0086.)
    EXPECT_EQ(Usage(catalog, "short-night", {{.model = "doubao-seed-1.6", .time = night, .input = 20000, .output = 150}}),
              "0.00815");
    // By day: 20,000 x 0.80 = 0.016; 150 x 2.00 = 0.0003.
    EXPECT_EQ(Usage(catalog, "short-night", {{.model = "doubao-seed-1.6", .time = day, .input = 20000, .output = 150}}),
              "0.0163");
    // A longer output at night: the band's night table, 0.008 + 300 x 4.00 / 1M.
    EXPECT_EQ(Usage(catalog, "short-night", {{.model = "doubao-seed-1.6", .time = night, .input = 20000, .output = 300}}),
              "0.0092");
    // Band 2 at night has no condition: 40,000 x 0.60 = 0.024; 150 x 8.00 = 0.0012.
    EXPECT_EQ(Usage(catalog, "short-night", {{.model = "doubao-seed-1.6", .time = night, .input = 40000, .output = 150}}),
              "0.0252");
    // In a multiplier window the condition's own table is not multiplied
    // again: output 0.90; input takes the window's 0.5 x 0.80 = 0.40.
    const EventSpec single = {.model = "single-band", .time = night, .input = 20000, .output = 150};
    EXPECT_EQ(RateIn(catalog, "short-night", single, kUnitOutput), "0.9/1000000");
    EXPECT_EQ(RateIn(catalog, "short-night", single, kUnitInput), "0.4/1000000");
    // 0.008 + 150 x 0.90 / 1M = 0.000135.
    EXPECT_EQ(Usage(catalog, "short-night", {single}), "0.008135");
}

TEST(RateTables, AConditionsWindowRatesAreChecked) {
    std::string text = kShortOutputAtNight;
    // A window the model does not have.
    std::string unknown = text;
    unknown.replace(unknown.find("half: {output"), 4, "dusk");
    auto errors = Errors(unknown);
    ASSERT_EQ(errors.size(), 1u) << Dump(errors);
    EXPECT_EQ(errors[0], "32:15: window_rates names 'dusk', which is not a window of model 'single-band'");
    // Not a map.
    const std::string short_night = "night: {output: \"1.00\"}";
    std::string list = text;
    list.replace(list.find(short_night), short_night.size(), "[1.00]");
    errors = Errors(list);
    ASSERT_EQ(errors.size(), 1u) << Dump(errors);
    EXPECT_EQ(errors[0],
              "19:19: window_rates must map window names to rate tables, e.g. {night: {output: \"1.00\"}}");
    // A unit only the condition's window table prices leaves other cells without it.
    std::string images = text;
    images.replace(images.find(short_night), short_night.size(), "night: {output: \"1.00\", images: \"0.002\"}");
    errors = Errors(images);
    ASSERT_EQ(errors.size(), 2u) << Dump(errors);
    EXPECT_EQ(errors[0],
              "11:13: model 'doubao-seed-1.6' prices images for outputs up to 200 tokens in window 'night' but not "
              "for other calls in band 0-32000 (write images: 0 there if it is free)");
    EXPECT_EQ(errors[1],
              "20:13: model 'doubao-seed-1.6' prices images for outputs up to 200 tokens in window 'night' in band "
              "0-32000 but not in band 32001-128000 (write images: 0 there if it is free)");
}

// ---- Rule 3: cache prices as a share of input --------------------------------

// Alibaba's qwen-plus (China mainland, CNY per 1M): input 0.8 / 2.4 / 4.8,
// output 2 / 20 / 48 (thinking 8 / 24 / 64); implicit cache hits 20 % of
// input, explicit cache creation 125 % of input (the context-cache page).
const char* const kQwenShares = R"(
plan: qwen
versions:
  - version: "2025-07"
    effective_from: 2025-07-28T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      qwen-plus:
        bands:
          - up_to: 128000
            rates: {input: "0.8", cached_input: {of_input: "0.2"}, cache_write: {of_input: "1.25"}, output: "2"}
            thinking_rates: {output: "8"}
          - up_to: 256000
            rates: {input: "2.4", cached_input: {of_input: "0.2"}, cache_write: {of_input: "1.25"}, output: "20"}
            thinking_rates: {output: "24"}
          - up_to: 1000000
            rates: {input: "4.8", cached_input: {of_input: "0.2"}, cache_write: {of_input: "1.25"}, output: "48"}
            thinking_rates: {output: "64"}
        batch: {multiplier: "0.5", cache_hits: not_combined}
)";

TEST(RateTables, CacheHitsAsAShareOfEachBandsInput) {
    EXPECT_TRUE(Errors(kQwenShares).empty()) << Dump(Errors(kQwenShares));
    EXPECT_TRUE(Warnings(kQwenShares).empty()) << Dump(Warnings(kQwenShares));
    Catalog catalog = testing::MustCatalog({kQwenShares});
    // The price table shows every share resolved: 0.2 x 0.8 / 2.4 / 4.8 =
    // 0.16 / 0.48 / 0.96; 1.25 x the same = 1 / 3 / 6.
    const std::vector<PriceCell> table = ResolvePriceTable(catalog.plans[0].versions[0], catalog.units);
    std::vector<std::string> seen;
    for (const PriceCell& cell : table) {
        if (cell.batch || cell.thinking) continue;
        std::string row = cell.band;
        for (const PriceCellRate& r : cell.rates) {
            if (r.unit == kUnitCachedInput || r.unit == kUnitCacheWrite) {
                row += " " + r.unit_name + "=" + (r.rate ? r.rate->price().ToString() : "none");
            }
        }
        seen.push_back(row);
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"0-128000 cached_input=0.16 cache_write=1",
                                              "128001-256000 cached_input=0.48 cache_write=3",
                                              "256001-1000000 cached_input=0.96 cache_write=6"}));
    // Band 2: a 200,000-token prompt with 50,000 hits and 10,000 written:
    // 140,000 x 2.4 = 0.336; 50,000 x 0.48 = 0.024; 10,000 x 3 = 0.03;
    // 1,000 output x 20 = 0.02; 0.41 in all.
    EXPECT_EQ(Usage(catalog, "qwen",
                    {{.model = "qwen-plus", .input = 200000, .output = 1000, .cached = 50000, .cache_write = 10000}}),
              "0.41");
    // In thinking mode the output is 1,000 x 24 = 0.024: 0.414.
    EXPECT_EQ(Usage(catalog, "qwen",
                    {{.model = "qwen-plus",
                      .input = 200000,
                      .output = 1000,
                      .cached = 50000,
                      .thinking = true,
                      .cache_write = 10000}}),
              "0.414");
    // Band 1, batch: hits do not combine with batch and bill as input:
    // 100,000 x 0.8 x 0.5 = 0.04; 1,000 x 2 x 0.5 = 0.001.
    EXPECT_EQ(Usage(catalog, "qwen",
                    {{.model = "qwen-plus", .input = 100000, .output = 1000, .cached = 60000, .batch = true}}),
              "0.041");
}

// Volcano's doubao-seed-1.6 band [0,32]: the cache hit 0.16 is 20 % of the
// input 0.80, and a batch cache hit keeps it (full_cache_rate): the share is
// of the online input, not of the batch input 0.40. Discounted batch hits
// (Anthropic's way) take the batch multiplier: 0.08.
TEST(RateTables, AShareFollowsTheCellsInputAndTheBatchCacheRule) {
    const std::string text = R"(
plan: doubao
versions:
  - version: "2025-06"
    effective_from: 2025-06-11T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      full:
        rates: {input: "0.80", cached_input: {of_input: "0.2"}, output: "8.00"}
        output_conditions:
          - up_to: 200
            rates: {output: "2.00"}
        batch: {multiplier: "0.5", cache_hits: full_cache_rate}
      discounted:
        rates: {input: "0.80", cached_input: {of_input: "0.2"}, output: "8.00"}
        batch: {multiplier: "0.5", cache_hits: discounted}
      own-batch-table:
        rates: {input: "0.80", cached_input: {of_input: "0.2"}, output: "8.00"}
        batch_rates: {input: "0.40", output: "4.00"}
        batch: {cache_hits: discounted}
)";
    EXPECT_TRUE(Errors(text).empty()) << Dump(Errors(text));
    Catalog catalog = testing::MustCatalog({text});
    const EventSpec online = {.model = "full", .input = 20000, .output = 150, .cached = 5000};
    EXPECT_EQ(RateIn(catalog, "doubao", online, kUnitCachedInput), "0.16/1000000");
    EventSpec batch = online;
    batch.batch = true;
    EXPECT_EQ(RateIn(catalog, "doubao", batch, kUnitCachedInput), "0.16/1000000");
    batch.model = "discounted";
    EXPECT_EQ(RateIn(catalog, "doubao", batch, kUnitCachedInput), "0.08/1000000");
    // A share of a batch table's input is not discounted twice: 0.2 x 0.40.
    batch.model = "own-batch-table";
    EXPECT_EQ(RateIn(catalog, "doubao", batch, kUnitCachedInput), "0.08/1000000");
    // 15,000 x 0.40 = 0.006; 5,000 x 0.08 = 0.0004; 150 x 4.00 = 0.0006.
    EXPECT_EQ(Usage(catalog, "doubao", {batch}), "0.007");
}

TEST(RateTables, SameAsInputBillsHitsAtTheInputRateAndSilencesTheWarning) {
    // Alibaba's qwen-flash (China mainland, CNY per 1M): 0.15 / 0.6 / 1.2 input.
    const std::string without = R"(
plan: qwen
versions:
  - version: "2025-07"
    effective_from: 2025-07-28T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      qwen-flash:
        bands:
          - up_to: 128000
            rates: {input: "0.15", output: "1.5"}
          - up_to: 256000
            rates: {input: "0.6", output: "6"}
          - up_to: 1000000
            rates: {input: "1.2", output: "12"}
)";
    auto warnings = Warnings(without);
    ASSERT_EQ(warnings.size(), 1u) << Dump(warnings);
    EXPECT_EQ(warnings[0],
              "9:7: model 'qwen-flash' has no cached_input price: cache hits bill at the input rate; write "
              "cached_input: {same_as: input} if that is meant");
    std::string same = without;
    for (size_t at = same.find("output: "); at != std::string::npos; at = same.find("output: ", at + 40)) {
        same.insert(at, "cached_input: {same_as: input}, ");
    }
    EXPECT_TRUE(Warnings(same).empty()) << Dump(Warnings(same));
    EXPECT_TRUE(Errors(same).empty()) << Dump(Errors(same));
    Catalog catalog = testing::MustCatalog({same});
    // Band 1, 20,000 prompt tokens of which 10,000 hits, all at 0.15: 0.003;
    // 1,000 output x 1.5 = 0.0015.
    EXPECT_EQ(Usage(catalog, "qwen", {{.model = "qwen-flash", .input = 20000, .output = 1000, .cached = 10000}}),
              "0.0045");
}

// Alibaba's explicit cache: hits 10 % of input, creation 125 %. A model
// that prices explicit hits but not creation would bill creating the cache
// at the input rate (0.8 instead of 1 in band 1): a warning at the model.
TEST(RateTables, AnExplicitCacheWithoutACreationPriceIsWarnedAbout) {
    const std::string without = R"(
plan: qwen
versions:
  - version: "2025-07"
    effective_from: 2025-07-28T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      qwen-plus:
        rates: {input: "0.8", cached_input: {of_input: "0.2"}, cached_input_explicit: {of_input: "0.1"}, output: "2"}
)";
    auto warnings = Warnings(without);
    ASSERT_EQ(warnings.size(), 1u) << Dump(warnings);
    EXPECT_EQ(warnings[0],
              "9:7: model 'qwen-plus' prices explicit cache hits but has no cache_write price: creating an explicit "
              "cache bills at the input rate; write cache_write: {same_as: input} if that is meant");
    // Creation at 125 %: 10,000 written x 1 / 1M = 0.01; 1,000 output x 2 = 0.002.
    std::string with = without;
    with.replace(with.find("output: \"2\""), 0, "cache_write: {of_input: \"1.25\"}, ");
    EXPECT_TRUE(Warnings(with).empty()) << Dump(Warnings(with));
    Catalog catalog = testing::MustCatalog({with});
    EXPECT_EQ(Usage(catalog, "qwen", {{.model = "qwen-plus", .input = 10000, .output = 1000, .cache_write = 10000}}),
              "0.012");
    // The implicit kind unpriced while the explicit one is: implicit hits would bill as input.
    std::string no_implicit = with;
    const std::string implicit = "cached_input: {of_input: \"0.2\"}, ";
    no_implicit.erase(no_implicit.find(implicit), implicit.size());
    EXPECT_TRUE(Errors(no_implicit).empty()) << Dump(Errors(no_implicit));
    warnings = Warnings(no_implicit);
    ASSERT_EQ(warnings.size(), 1u) << Dump(warnings);
    EXPECT_NE(warnings[0].find("has no cached_input price"), std::string::npos) << warnings[0];
}

// A share or a multiplier too large for a rate is an error with its place,
// never an overflow when a call is priced (or `tally plan show` runs).
TEST(RateTables, ASharesOrMultipliersOverflowIsRefusedAtTheModel) {
    const std::string head = R"(
plan: ov
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: UTC
    models:
      m:
)";
    EXPECT_EQ(Errors(head + R"(        rates: {input: "999999999", cached_input: {of_input: "1000000000000"}, output: "1"})" +
                     "\n"),
              std::vector<std::string>{"9:7: model 'm': a share of input (of_input) times its cell's input rate is "
                                       "too large to be a rate; check the shares"});
    EXPECT_EQ(Errors(head + R"(        rates: {input: "999999999", cached_input: {same_as: input}, output: "1"})" +
                     "\n" + R"(        batch: {multiplier: "99999999999999999999", cache_hits: discounted})" + "\n"),
              std::vector<std::string>{"9:7: model 'm': the input rate of the model's calls, batch is too large to "
                                       "be a rate (a share of input or a window or batch multiplier makes it so); "
                                       "check those numbers"});
}

TEST(RateTables, ASharePricesOnlyPartsOfThePromptAndStaysWithinNineDecimalPlaces) {
    const std::string head = R"(
plan: p
versions:
  - version: v1
    effective_from: 2025-10-25T00:00:00Z
    currency: USD
    time_zone: UTC
    models:
      m:
)";
    EXPECT_EQ(Errors(head + R"(        rates: {input: "1.25", output: {of_input: "8"}})" + "\n"),
              (std::vector<std::string>{"10:40: the output rate cannot be a share of input; only the parts of the "
                                        "prompt (cached_input, cached_input_explicit, cache_write, cache_write_1h) may be priced with "
                                        "of_input or same_as",
                                        "10:16: the rates of model 'm' have no output price"}));
    EXPECT_EQ(
        Errors(head + R"(        rates: {input: "1.25", output: "10", cached_input: {same_as: output}})" + "\n"),
        (std::vector<std::string>{"10:70: same_as takes input (the rate of the cell's uncached input), not 'output'"}));
    EXPECT_EQ(
        Errors(head +
               R"(        rates: {input: "1.25", output: "10", cached_input: {of_input: "0.1", same_as: input}})" +
               "\n"),
        (std::vector<std::string>{"10:60: the cached_input rate takes of_input (a share of the input rate) or "
                                  "same_as: input, not both"}));
    // Gemini 2.5 Pro's input, 1.25 per 1M, written per token (0.00000125):
    // a 125 % cache write would be 0.0000015625, ten decimal places.
    auto errors = Errors(
        head +
        R"(        rates: {input: {price: "0.00000125", per: 1}, output: "10", cache_write: {of_input: "1.25"}})" +
        "\n");
    ASSERT_EQ(errors.size(), 1u) << Dump(errors);
    EXPECT_EQ(errors[0],
              "9:7: model 'm' prices cache_write at 1.25 of input, which is 0.0000015625 for the input rate "
              "0.00000125 of the model's calls: more than 9 decimal places; write the rate itself there");
    // 10 % of it is 0.000000125: nine places, fine.
    EXPECT_TRUE(
        Errors(
            head +
            R"(        rates: {input: {price: "0.00000125", per: 1}, output: "10", cached_input: {of_input: "0.1"}})" +
            "\n")
            .empty());
}

}  // namespace
}  // namespace tally
