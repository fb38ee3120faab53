#include "pricing/plan_yaml.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "pricing/invoice.h"
#include "pricing/rater.h"
#include "pricing/subscription.h"
#include "test_plans.h"

namespace tally {
namespace {

using testing::Dump;

// The errors (or, with `warnings`, the warnings) of `text` as "line:col: message" lines.
std::vector<std::string> Problems(const std::string& text, bool warnings = false) {
    return testing::PlanDiagnostics(text, warnings ? Severity::kWarning : Severity::kError);
}

bool Has(const std::vector<std::string>& problems, const std::string& needle) {
    for (const auto& p : problems) {
        if (p.find(needle) != std::string::npos) return true;
    }
    return false;
}


const char* const kHead = R"(plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    models:
)";

// `{price: P, per: N}` keeps its own N (it once priced at the version's
// rates_per: yaml-cpp's assignment to a shared node overwrote the map).
TEST(PlanYaml, RateWithItsOwnPerKeepsIt) {
    UnitTable units;
    Diagnostics d;
    auto plan = ParsePlan(
        std::string(kHead) + "      m: {rates: {input: {price: \"1\", per: 1}, output: {price: \"3\", per: 1000}}}\n",
        "p.yaml", &units, &d);
    ASSERT_TRUE(plan.has_value()) << (d.empty() ? "" : d[0].message);
    const Band& band = plan->versions[0].models[0].bands[0];
    ASSERT_TRUE(band.rates[kUnitInput].has_value());
    EXPECT_EQ(band.rates[kUnitInput]->per(), 1);
    EXPECT_EQ(band.rates[kUnitInput]->price().ToString(), "1");
    EXPECT_EQ(band.rates[kUnitOutput]->per(), 1000);
    EXPECT_EQ(band.rates[kUnitOutput]->price().ToString(), "3");
}

TEST(PlanYaml, ExamplePlansOfTheTestsAreValid) {
    for (const char* text : {testing::kDoubaoPlan, testing::kDeepseekPlan, testing::kFeaturePlan}) {
        EXPECT_TRUE(Problems(text).empty()) << Dump(Problems(text));
    }
}

TEST(PlanYaml, GapBetweenBandsNamesBothBoundsWithLineAndColumn) {
    auto p = Problems(std::string(kHead) + R"(      m:
        bands:
          - up_to: 32000
            rates: {input: "0.8", output: "8"}
          - above: 32768
            up_to: 128000
            rates: {input: "1.2", output: "16"}
)");
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0].substr(0, 6), "12:20:");
    EXPECT_TRUE(Has(p, "gap between bands 32000 and 32768")) << Dump(p);
}

TEST(PlanYaml, OverlappingAndUnorderedBands) {
    auto overlap = Problems(std::string(kHead) + R"(      m:
        bands:
          - up_to: 32000
            rates: {input: "0.8", output: "8"}
          - from: 30000
            rates: {input: "1.2", output: "16"}
)");
    EXPECT_TRUE(Has(overlap, "bands overlap")) << Dump(overlap);
    auto unordered = Problems(std::string(kHead) + R"(      m:
        bands:
          - up_to: 32000
            rates: {input: "0.8", output: "8"}
          - up_to: 16000
            rates: {input: "1.2", output: "16"}
)");
    EXPECT_TRUE(Has(unordered, "list bands from the smallest up")) << Dump(unordered);
    auto open_middle = Problems(std::string(kHead) + R"(      m:
        bands:
          - rates: {input: "0.8", output: "8"}
          - up_to: 16000
            rates: {input: "1.2", output: "16"}
)");
    EXPECT_TRUE(Has(open_middle, "only the last band may be open-ended")) << Dump(open_middle);
}

// Found by fuzz_plan: a malformed band followed by a good one crashed the
// bounds check, which looked for a previous band that was never parsed.
TEST(PlanYaml, MalformedBandBeforeAGoodOneIsReportedNotACrash) {
    auto p = Problems(std::string(kHead) + R"(      m:
        bands:
          - up17
          - up_to: 256000
            rates: {input: "0.6", output: "6"}
)");
    EXPECT_TRUE(Has(p, "a band must be a mapping")) << Dump(p);
}

TEST(PlanYaml, ContiguousBandsWithExplicitLowerBoundsAreFine) {
    auto p = Problems(std::string(kHead) + R"(      m:
        bands:
          - from: 0
            up_to: 32768
            rates: {input: "0.8", output: "8"}
          - above: 32768
            up_to: 131072
            rates: {input: "1.2", output: "16"}
)");
    EXPECT_TRUE(p.empty()) << Dump(p);
}

TEST(PlanYaml, RatesMustBeNonNegativeKnownUnitsWithFewDecimals) {
    auto p = Problems(std::string(kHead) + R"(      m:
        rates: {input: "-0.8", output: "8", ouput: "1", images: "0.0000000001", cached_input: abc}
)");
    EXPECT_TRUE(Has(p, "9:24: the input rate is negative")) << Dump(p);
    EXPECT_TRUE(Has(p, "unknown unit 'ouput'")) << Dump(p);
    EXPECT_TRUE(Has(p, "more than 9 decimal places")) << Dump(p);
    EXPECT_TRUE(Has(p, "'abc' is not a plain decimal number")) << Dump(p);
}

TEST(PlanYaml, CustomUnitsMustBeDeclared) {
    std::string text = std::string(kHead) + "      m: {rates: {input: \"1\", output: \"1\", gpu_seconds: \"2\"}}\n";
    EXPECT_TRUE(Has(Problems(text), "unknown unit 'gpu_seconds'"));
    std::string declared = text;
    declared.replace(declared.find("    models:"), 11, "    custom_units: [gpu_seconds]\n    models:");
    EXPECT_TRUE(Problems(declared).empty()) << Dump(Problems(declared));
}

TEST(PlanYaml, WindowsMustHaveTimesAndOneWayOfPricing) {
    auto p = Problems(std::string(kHead) + R"(      m:
        rates: {input: "1", output: "2"}
        windows:
          - {name: night, start: "22:00", end: "25:00", multiplier: "0.5"}
          - {name: day, start: "8am", end: "18:00"}
          - {name: same, start: "10:00", end: "10:00", multiplier: "0.5", rates: {input: "1"}}
          - {name: days, start: "10:00", end: "11:00", multiplier: "0.5", weekdays: [mon, funday]}
)");
    EXPECT_TRUE(Has(p, "window end '25:00' is not a time of day")) << Dump(p);
    EXPECT_TRUE(Has(p, "window start '8am' is not a time of day")) << Dump(p);
    EXPECT_TRUE(Has(p, "window 'day' needs either a multiplier or its own rates, not neither")) << Dump(p);
    EXPECT_TRUE(Has(p, "window 'same' needs either a multiplier or its own rates, not both")) << Dump(p);
    EXPECT_TRUE(Has(p, "starts and ends at the same time")) << Dump(p);
    EXPECT_TRUE(Has(p, "weekday 'funday' is not one of")) << Dump(p);
}

TEST(PlanYaml, VersionsMustIncreaseAndKeepOneCurrency) {
    auto p = Problems(R"(plan: p
versions:
  - version: v2
    effective_from: 2025-09-01T00:00:00Z
    effective_until: 2025-10-01T00:00:00Z
    currency: USD
    time_zone: UTC
    models: {m: {rates: {input: "1", output: "2"}}}
  - version: v1
    effective_from: 2025-08-01T00:00:00Z
    currency: CNY
    time_zone: Mars/Base
    models: {m: {rates: {input: "1", output: "2"}}}
)");
    EXPECT_TRUE(Has(p, "9:5: version v1 takes effect at 2025-08-01T00:00:00Z, not after version v2")) << Dump(p);
    EXPECT_TRUE(Has(p, "changes the currency from USD to CNY")) << Dump(p);
    EXPECT_TRUE(Has(p, "time zone 'Mars/Base' is not an IANA zone name")) << Dump(p);
    EXPECT_TRUE(Has(p, "is still in force")) << Dump(p);
}

TEST(PlanYaml, VersionCanEndWithoutSuccessor) {
    UnitTable units;
    Diagnostics d;
    auto plan = ParsePlan(R"(plan: p
versions:
  - version: v1
    effective_from: 2025-09-01T00:00:00Z
    effective_until: 2025-10-01T00:00:00Z
    currency: USD
    time_zone: UTC
    models: {m: {rates: {input: "1", output: "2"}}}
)",
                          "p.yaml", &units, &d);
    ASSERT_TRUE(plan.has_value());
    EXPECT_NE(plan->VersionAt(testing::At("2025-09-30T23:59:59Z")), nullptr);
    EXPECT_EQ(plan->VersionAt(testing::At("2025-10-01T00:00:00Z")), nullptr);
    EXPECT_EQ(plan->VersionAt(testing::At("2025-08-31T23:59:59Z")), nullptr);
}

TEST(PlanYaml, RoutedCallsIsBillRequestedOrBillServed) {
    UnitTable units;
    Diagnostics d;
    auto plan =
        ParsePlan(std::string(kHead) + "      a: {rates: {input: \"1\", output: \"2\"}, routed_calls: bill_served}\n" +
                      "      b: {rates: {input: \"1\", output: \"2\"}}\n",
                  "p.yaml", &units, &d);
    ASSERT_TRUE(plan.has_value()) << (d.empty() ? "" : d.front().message);
    const PlanVersion& v = plan->versions.at(0);
    EXPECT_EQ(v.models.at(static_cast<size_t>(v.model_index.at("a"))).routed_calls, RoutedCalls::kBillServed);
    EXPECT_EQ(v.models.at(static_cast<size_t>(v.model_index.at("b"))).routed_calls, RoutedCalls::kBillRequested);
    auto p = Problems(std::string(kHead) + "      a: {rates: {input: \"1\", output: \"2\"}, routed_calls: cheapest}\n");
    EXPECT_TRUE(Has(p, "8:59: ")) << Dump(p);
    EXPECT_TRUE(Has(p, "routed_calls")) << Dump(p);
    EXPECT_TRUE(Has(p, "bill_served")) << Dump(p);
}

// A small file can name millions of price cells through YAML aliases (one
// model's table shared by many models): a plan has at most 100,000 cells,
// refused at the model that crosses the bound, before its cells are checked.
TEST(PlanYaml, APlanHasAtMostAHundredThousandPriceCells) {
    std::string table = "{rates: {input: \"1\", output: \"2\"}, output_conditions: [";
    for (int c = 1; c <= 10; ++c)
        table += (c > 1 ? ", " : "") + std::string("{up_to: ") + std::to_string(c * 100) + ", rates: {output: \"1\"}}";
    table += "], windows: [";
    for (int w = 0; w < 100; ++w) {
        const auto hhmm = [](int minutes) {
            char text[8];
            std::snprintf(text, sizeof text, "%02d:%02d", minutes / 60, minutes % 60);
            return std::string(text);
        };
        table += (w > 0 ? ", " : "") + std::string("{name: w") + std::to_string(w) + ", start: \"" + hhmm(w * 10) +
                 "\", end: \"" + hhmm(w * 10 + 10) + "\", multiplier: \"0.5\"}";
    }
    table += "]}";
    // 1 band x (10 conditions + none) x (100 windows + none) = 1,111 cells a model.
    std::string text = std::string(kHead) + "      m0: &t " + table + "\n";
    for (int m = 1; m < 100; ++m) text += "      m" + std::to_string(m) + ": *t\n";
    const auto p = Problems(text);
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0],
              "98:7: the plan has more than 100000 price cells (model x band x output condition x window x "
              "batch x thinking, over all its versions) by model 'm90'; split it into several plans");
    // 90 of them fit.
    std::string fits = std::string(kHead) + "      m0: &t " + table + "\n";
    for (int m = 1; m < 90; ++m) fits += "      m" + std::to_string(m) + ": *t\n";
    EXPECT_TRUE(Problems(fits).empty());
}

// A file stops at 100 problems: aliases of one broken table must not make
// millions of diagnostics (each model's 30 same-named windows would say so
// 435 times).
TEST(PlanYaml, ParsingStopsAtAHundredProblems) {
    std::string windows;
    for (int w = 0; w < 30; ++w) windows += std::string(w > 0 ? ", " : "") + "*w";
    std::string text = std::string(kHead) + "      m0: &t {bands: x, windows: [&w {name: a, start: \"00:00\", end: " +
                       "\"01:00\", multiplier: \"0.5\"}, " + windows + "]}\n";
    for (int m = 1; m < 2000; ++m) text += "      m" + std::to_string(m) + ": *t\n";
    const auto p = Problems(text);
    ASSERT_EQ(p.size(), 101u);
    EXPECT_EQ(p.back(), "0:0: stopped after 100 problems; fix these and validate again");
}

// Flow collections nested deeper than 64 levels are refused before yaml-cpp
// parses them (its memory grows steeply with depth); brackets in quotes and
// comments do not count.
TEST(PlanYaml, NestingDeeperThanSixtyFourLevelsIsRefusedUnparsed) {
    const auto p = Problems("plan: p\nversions: " + std::string(65, '[') + "\n");
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0], "2:75: nested more than 64 levels deep in [ ] or { }");
    EXPECT_EQ(Problems(std::string(1 << 20, '[')).size(), 1u);
    const auto quoted = Problems("plan: \"" + std::string(100, '[') + "\" # " + std::string(100, '{') +
                                 "\nversions: '" + std::string(100, '[') + "''['\n");
    EXPECT_FALSE(Has(quoted, "nested more than")) << Dump(quoted);
    EXPECT_TRUE(Has(quoted, "versions")) << Dump(quoted);
}

TEST(PlanYaml, UnknownKeysMissingKeysAndBadYamlAreReported) {
    auto p = Problems(R"(plan: p
versions:
  - version: v1
    effective_from: yesterday
    currency: XYZ
    time_zone: UTC
    colour: red
    models: {m: {rates: {input: "1"}}}
)");
    EXPECT_TRUE(Has(p, "effective_from 'yesterday' is not an RFC 3339 instant")) << Dump(p);
    EXPECT_TRUE(Has(p, "currency 'XYZ' is not an ISO 4217 code")) << Dump(p);
    EXPECT_TRUE(Has(p, "7:5: unknown key 'colour' in a version")) << Dump(p);
    EXPECT_TRUE(Has(p, "have no output price")) << Dump(p);
    auto broken = Problems("plan: [unclosed\n");
    ASSERT_EQ(broken.size(), 1u);
    EXPECT_TRUE(Has(broken, "not valid YAML")) << Dump(broken);
    EXPECT_TRUE(Has(Problems("plan: p\n"), "the plan needs 'versions'"));
    EXPECT_TRUE(Has(Problems("- 1\n- 2\n"), "a plan file must be a mapping"));
}

TEST(PlanYaml, TiersNeedOpenLastTierAndRatesOnlyPerUnit) {
    auto p = Problems(std::string(kHead) + R"(      m: {rates: {input: "1", output: "2"}}
    tiers:
      - name: t
        aggregate: per_model
        mode: graduated
        tiers:
          - {up_to: 100, rate: "1"}
          - {up_to: 50, multiplier: "0.5"}
)");
    EXPECT_TRUE(Has(p, "a tier rate needs aggregate: per_model_and_unit")) << Dump(p);
    EXPECT_TRUE(Has(p, "tier bounds must increase")) << Dump(p);
    EXPECT_TRUE(Has(p, "the last tier must be open-ended")) << Dump(p);
}

// Every cell a call can land in must price every unit the model prices
// (with CellRate's fallbacks), or billing fails after the event is consumed.
TEST(PlanYaml, UnitPricedInOneBandOnlyIsRefusedAtTheBandThatLacksIt) {
    auto p = Problems(std::string(kHead) + R"(      m:
        bands:
          - up_to: 32000
            rates: {input: "0.8", output: "8", images: "0.002"}
          - up_to: 128000
            rates: {input: "1.2", output: "16"}
          - rates: {input: "2.4", output: "24"}
)");
    ASSERT_EQ(p.size(), 2u) << Dump(p);
    EXPECT_EQ(p[0],
              "12:13: model 'm' prices images in band 0-32000 but not in band 32001-128000 "
              "(write images: 0 there if it is free)");
    EXPECT_EQ(p[1],
              "14:13: model 'm' prices images in band 0-32000 but not in band 128001+ "
              "(write images: 0 there if it is free)");
}

TEST(PlanYaml, AFreeUnitIsWrittenAsZeroAndPricesAtZero) {
    std::string text = std::string(kHead) + R"(      m:
        bands:
          - up_to: 32000
            rates: {input: "0.8", output: "8", images: "0.002"}
          - rates: {input: "1.2", output: "16", images: 0}
)";
    auto p = Problems(text);
    EXPECT_TRUE(p.empty()) << Dump(p);
    Catalog catalog = testing::MustCatalog({text});
    Rater rater(catalog, {}, "p", {});
    Event e = testing::MakeEvent({.time = "2025-11-03T12:00:00Z", .input = 50000, .output = 10});
    e.extras.push_back({"images", 3});
    ASSERT_EQ(rater.Add(e).status, RateStatus::kRated);
    auto invoices = PriceRollups(catalog, {}, "p", {}, rater.Rollups());
    ASSERT_EQ(invoices.size(), 1u);
    bool images_line = false;
    for (const auto& line : invoices[0].lines) {
        if (line.unit != "images") continue;
        images_line = true;
        EXPECT_EQ(line.quantity, 3);
        EXPECT_TRUE(line.amount.is_zero());
    }
    EXPECT_TRUE(images_line);
}

TEST(PlanYaml, WindowTablesFallBackToTheBandButMustNotPriceUnitsAlone) {
    // Window rates override the band's: a unit the window leaves out takes
    // the band's rate.
    auto fine = Problems(std::string(kHead) + R"(      m:
        rates: {input: "1", output: "2", images: "0.01"}
        windows:
          - {name: night, start: "22:00", end: "06:00", rates: {input: "0.5", output: "1"}}
)");
    EXPECT_TRUE(fine.empty()) << Dump(fine);
    // A unit only the window prices has no rate by day.
    auto p = Problems(std::string(kHead) + R"(      m:
        rates: {input: "1", output: "2"}
        windows:
          - {name: night, start: "22:00", end: "06:00", rates: {input: "0.5", output: "1", images: "0.01"}}
)");
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0],
              "8:7: model 'm' prices images in window 'night' but not outside it "
              "(write images: 0 in its rates if it is free)");
    auto banded = Problems(std::string(kHead) + R"(      m:
        bands:
          - up_to: 1000
            rates: {input: "1", output: "2", web_searches: "10"}
            window_rates: {night: {web_searches: "5"}}
          - rates: {input: "2", output: "4"}
            window_rates: {night: {input: "1"}}
        windows:
          - {name: night, start: "22:00", end: "06:00"}
)");
    ASSERT_EQ(banded.size(), 1u) << Dump(banded);
    EXPECT_EQ(banded[0],
              "13:13: model 'm' prices web_searches in band 0-1000 but not in band 1001+ "
              "(write web_searches: 0 there if it is free)");
}

TEST(PlanYaml, OutputConditionsOverrideTheirBand) {
    // A condition that overrides only the output rate keeps the band's others.
    auto fine = Problems(std::string(kHead) + R"(      m:
        bands:
          - up_to: 32000
            rates: {input: "0.8", output: "8", images: "0.002"}
            output_conditions:
              - {up_to: 200, rates: {output: "2"}}
          - rates: {input: "1.2", output: "16", images: "0.002"}
)");
    EXPECT_TRUE(fine.empty()) << Dump(fine);
    auto p = Problems(std::string(kHead) + R"(      m:
        bands:
          - up_to: 32000
            rates: {input: "0.8", output: "8"}
            output_conditions:
              - {up_to: 200, rates: {output: "2", images: "0.002"}}
          - rates: {input: "1.2", output: "16", images: "0.002"}
)");
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0],
              "10:13: model 'm' prices images for outputs up to 200 tokens but not for longer outputs "
              "in band 0-32000 (write images: 0 there if it is free)");
}

TEST(PlanYaml, BatchRatesFallBackToTheBandButMustNotPriceUnitsAlone) {
    auto fine = Problems(std::string(kHead) + R"(      m:
        rates: {input: "1", output: "2", tool_calls: "3"}
        batch_rates: {input: "0.5", output: "1"}
)");
    EXPECT_TRUE(fine.empty()) << Dump(fine);
    auto p = Problems(std::string(kHead) + R"(      m:
        rates: {input: "1", output: "2"}
        batch_rates: {input: "0.5", output: "1", tool_calls: "3"}
)");
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0],
              "8:7: model 'm' prices tool_calls for batch calls but not for online calls "
              "(write tool_calls: 0 in its rates if it is free)");
    // With a batch multiplier, a band without batch_rates is a batch cell too.
    auto banded = Problems(std::string(kHead) + R"(      m:
        bands:
          - up_to: 1000
            rates: {input: "1", output: "2"}
            batch_rates: {input: "0.5", output: "1", tool_calls: "3"}
          - rates: {input: "2", output: "4", tool_calls: "3"}
        batch: {multiplier: "0.5"}
)");
    ASSERT_EQ(banded.size(), 1u) << Dump(banded);
    EXPECT_EQ(banded[0],
              "10:13: model 'm' prices tool_calls for batch calls but not for online calls in band 0-1000 "
              "(write tool_calls: 0 there if it is free)");
}

TEST(PlanYaml, ThinkingRatesFallBackToTheBandButMustNotPriceUnitsAlone) {
    auto fine = Problems(std::string(kHead) + R"(      m:
        rates: {input: "1", output: "2", reasoning: "3", audio_seconds: "0.1"}
        thinking_rates: {output: "8"}
)");
    EXPECT_TRUE(fine.empty()) << Dump(fine);
    auto p = Problems(std::string(kHead) + R"(      m:
        bands:
          - up_to: 1000
            rates: {input: "1", output: "2"}
          - rates: {input: "2", output: "4"}
            thinking_rates: {output: "8", audio_seconds: "0.1"}
)");
    ASSERT_EQ(p.size(), 2u) << Dump(p);
    EXPECT_EQ(p[0],
              "10:13: model 'm' prices audio_seconds for thinking calls in band 1001+ but not in band 0-1000 "
              "(write audio_seconds: 0 there if it is free)");
    EXPECT_EQ(p[1],
              "12:13: model 'm' prices audio_seconds for thinking calls but not for calls without thinking "
              "in band 1001+ (write audio_seconds: 0 there if it is free)");
}

TEST(Subscriptions, ValidatesPlansPercentsAndCoupons) {
    Catalog catalog = testing::MustCatalog({testing::kDoubaoPlan});
    Diagnostics d;
    auto subs = ParseSubscriptions(R"(subscriptions:
  - customer: a
    plan: nope
  - customer: b
    plan: doubao
    discounts: [{name: x, percent: "120"}]
    coupons:
      - {code: C1, percent: "10", amount: "5"}
      - {code: C2, amount: "5", cap: "1"}
  - customer: b
    plan: doubao
)",
                                   "s.yaml", &catalog, &d);
    EXPECT_FALSE(subs.has_value());
    std::string all;
    for (const auto& x : d) all += x.ToString() + "\n";
    EXPECT_NE(all.find("s.yaml:3:11: error: no plan called 'nope'"), std::string::npos) << all;
    EXPECT_NE(all.find("percent must be between 0 and 100"), std::string::npos) << all;
    EXPECT_NE(all.find("needs either percent or amount, not both"), std::string::npos) << all;
    EXPECT_NE(all.find("a cap only makes sense on a percent coupon"), std::string::npos) << all;
    EXPECT_NE(all.find("customer 'b' has two subscriptions from the same instant (always)"), std::string::npos) << all;
}

TEST(Subscriptions, ACustomerMayChangePlanAtAnInstant) {
    Catalog catalog = testing::MustCatalog({testing::kDoubaoPlan, testing::kDeepseekPlan});
    Diagnostics d;
    auto subs = ParseSubscriptions(R"(subscriptions:
  - {customer: a, plan: doubao}
  - {customer: a, plan: deepseek, from: "2025-11-15T00:00:00+08:00"}
  - {customer: b, plan: doubao, from: "2025-11-01T00:00:00Z"}
  - {customer: b, plan: deepseek, from: "2025-11-01T08:00:00+08:00"}
  - {customer: c, plan: doubao, from: "the 1st"}
)",
                                   "s.yaml", &catalog, &d);
    EXPECT_FALSE(subs.has_value());
    std::string all;
    for (const auto& x : d) all += x.ToString() + "\n";
    EXPECT_NE(all.find("s.yaml:5:5: error: customer 'b' has two subscriptions from the same instant "
                       "(2025-11-01T00:00:00Z)"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("s.yaml:6:"), std::string::npos) << all;  // from: not an instant
    EXPECT_EQ(all.find("customer 'a'"), std::string::npos) << all;
}

TEST(PlanYaml, PlanNamesAndVersionIdsAreIdentifiers) {
    auto p = Problems(R"(plan: "p\u0000q"
versions:
  - version: ""
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      m: {bands: [{up_to: 10, rates: {input: "1", output: "1"}}]}
)");
    EXPECT_TRUE(Has(p, R"(1:7: plan name 'p\u0000q' holds a control character (U+0000 at offset 1))")) << Dump(p);
    EXPECT_TRUE(Has(p, "3:14: version id is empty")) << Dump(p);
}

TEST(PlanYaml, ModelAndUnitNamesAreIdentifiers) {
    // A unit "" would make events with "":5 reach the ledger as a calls
    // record (unit ""); a model name with a NUL would be cut by libpq.
    auto p = Problems(R"(plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    custom_units: ["", "gpu\tseconds"]
    models:
      m: {rates: {input: "1", output: "1", "": "2"}}
      "m\u0001": {rates: {input: "1", output: "1"}}
      "": {rates: {input: "1", output: "1"}}
)");
    EXPECT_TRUE(Has(p, "7:20: custom unit is empty")) << Dump(p);
    EXPECT_TRUE(Has(p, R"(7:24: custom unit 'gpu\u0009seconds' holds a control character (U+0009 at offset 3))"))
        << Dump(p);
    EXPECT_TRUE(Has(p, "9:44: unknown unit ''")) << Dump(p);
    EXPECT_TRUE(Has(p, R"(10:7: model name 'm\u0001' holds a control character (U+0001 at offset 1))")) << Dump(p);
    EXPECT_TRUE(Has(p, "11:7: model name is empty")) << Dump(p);
}

// `count` items made by `item(i)`, one a line, each indented by `indent`.
template <typename Item>
std::string Lines(size_t count, const std::string& indent, Item item) {
    std::string out;
    for (size_t i = 0; i < count; ++i) out += indent + item(i) + "\n";
    return out;
}

TEST(PlanYaml, AModelHasAtMostKMaxBandsBands) {
    auto bands = [](size_t n) {
        return std::string(kHead) + "      m:\n        bands:\n" + Lines(n, "          ", [n](size_t i) {
                   return "- {" + (i + 1 < n ? "up_to: " + std::to_string((i + 1) * 1000) + ", " : std::string()) +
                          "rates: {input: \"1\", output: \"1\"}}";
               });
    };
    EXPECT_TRUE(Problems(bands(kMaxBands)).empty()) << Dump(Problems(bands(kMaxBands)));
    auto p = Problems(bands(kMaxBands + 1));
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0], "10:11: model 'm' has 17 bands, more than the 16 a model may have");
}

TEST(PlanYaml, OutputConditionsAndWindowsFitTheCellKey) {
    // CellKey keeps them as uint8 with kNone (0xff) for none: 255 at most.
    auto conditions = [](size_t n) {
        return std::string(kHead) + "      m:\n        rates: {input: \"1\", output: \"1\"}\n" +
               "        output_conditions:\n" + Lines(n, "          ", [](size_t i) {
                   return "- {up_to: " + std::to_string(i + 1) + ", rates: {output: \"2\"}}";
               });
    };
    EXPECT_TRUE(Problems(conditions(255)).empty()) << Dump(Problems(conditions(255)));
    auto p = Problems(conditions(256));
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0], "11:11: a band of model 'm' has 256 output conditions, more than the 255 a band may have");
    auto windows = [](size_t n) {
        return std::string(kHead) + "      m:\n        rates: {input: \"1\", output: \"1\"}\n" + "        windows:\n" +
               Lines(n, "          ", [](size_t i) {
                   return "- {name: w" + std::to_string(i) + ", start: \"01:00\", end: \"02:00\", multiplier: \"0.5\"}";
               });
    };
    EXPECT_TRUE(Problems(windows(255)).empty()) << Dump(Problems(windows(255)));
    p = Problems(windows(256));
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0], "11:11: model 'm' has 256 windows, more than the 255 a model may have");
}

}  // namespace
}  // namespace tally
