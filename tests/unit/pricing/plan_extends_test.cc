// Versions written as changes (`extends`, docs/plan-format.md) and the
// validation messages of issue 9: every amount below is worked out by hand
// in its comment, from the real price cuts.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pricing/invoice.h"
#include "pricing/plan_extends.h"
#include "pricing/plan_yaml.h"
#include "pricing/rater.h"
#include "test_plans.h"

namespace tally {
namespace {

using testing::MakeEvent;

struct Parsed {
    std::optional<Plan> plan;
    std::vector<std::string> problems;  // "line:col: message" (warnings too, but the missing cache price)
    UnitTable units;
};

Parsed Parse(const std::string& text, const Catalog* published = nullptr) {
    Parsed p;
    if (published != nullptr) p.units = published->units;
    Diagnostics d;
    p.plan = ParsePlan(text, "p.yaml", &p.units, &d, published);
    for (const auto& x : d) {
        // The missing-cache-price warning has its own tests (rate_tables_test);
        // most plans here price no cache hits.
        if (!x.is_error() && x.message.find("has no cached_input price") != std::string::npos) continue;
        p.problems.push_back(std::to_string(x.line) + ":" + std::to_string(x.column) + ": " +
                             (x.severity == Severity::kWarning ? "warning: " : "") + x.message);
    }
    return p;
}

std::string Dump(const std::vector<std::string>& problems) {
    std::string s;
    for (const auto& p : problems) s += p + "\n";
    return s;
}

// The one problem of `text`, which must not parse.
std::string OnlyProblem(const std::string& text) {
    Parsed p = Parse(text);
    EXPECT_FALSE(p.plan.has_value());
    EXPECT_EQ(p.problems.size(), 1u) << Dump(p.problems);
    return p.problems.empty() ? "" : p.problems[0];
}

// The exact usage amount of one call under `plan_text` (plan name "p").
std::string UsageOf(const std::string& plan_text, const testing::EventSpec& spec) {
    Catalog catalog = testing::MustCatalog({plan_text});
    Rater rater(catalog, {}, "p", {});
    rater.Add(MakeEvent(spec));
    std::vector<Invoice> invoices = PriceRollups(catalog, {}, "p", {}, rater.Rollups());
    EXPECT_EQ(invoices.size(), 1u);
    return invoices.empty() ? "" : invoices[0].usage_exact.ToString();
}

std::string RateOf(const PlanVersion& v, const std::string& model, UnitId unit) {
    const ModelPricing* m = v.FindModel(model);
    if (m == nullptr) return "no model";
    const auto& r = m->bands[0].rates[unit];
    return r ? r->price().ToString() + "/" + std::to_string(r->per()) : "none";
}

// Alibaba, 2024-05-21: Qwen-Long input 0.02 -> 0.0005 CNY per 1,000 tokens,
// output 0.02 -> 0.002. The new version states qwen-long only.
const char* const kQwenLong = R"(plan: p
versions:
  - version: "2024-05"
    effective_from: 2024-05-01T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    rates_per: 1000
    tax_percent: "6"
    models:
      qwen-long: {rates: {input: "0.02", output: "0.02"}}
      qwen-max: {rates: {input: "0.04", output: "0.12"}}
  - version: "2024-05-cut"
    extends: "2024-05"
    effective_from: 2024-05-21T00:00:00+08:00
    models:
      qwen-long: {rates: {input: "0.0005", output: "0.002"}}
)";

TEST(PlanExtends, QwenLongCutInheritsEverythingElse) {
    Parsed p = Parse(kQwenLong);
    ASSERT_TRUE(p.plan.has_value()) << Dump(p.problems);
    EXPECT_TRUE(p.problems.empty()) << Dump(p.problems);
    ASSERT_EQ(p.plan->versions.size(), 2u);
    const PlanVersion& cut = p.plan->versions[1];
    EXPECT_EQ(cut.extends, "2024-05");
    EXPECT_EQ(cut.currency.code(), "CNY");
    EXPECT_EQ(cut.zone_name, "Asia/Shanghai");
    EXPECT_EQ(cut.tax_percent.value().ToString(), "6");
    EXPECT_EQ(cut.rates_per, 1000);
    EXPECT_EQ(RateOf(cut, "qwen-long", kUnitInput), "0.0005/1000");
    EXPECT_EQ(RateOf(cut, "qwen-long", kUnitOutput), "0.002/1000");
    EXPECT_EQ(RateOf(cut, "qwen-max", kUnitOutput), "0.12/1000");  // inherited
    EXPECT_EQ(cut.models.size(), 2u);
    // 100,000 input + 2,000 output on qwen-long:
    //   before: 100 x 0.02 + 2 x 0.02 = 2 + 0.04 = 2.04 CNY
    //   after:  100 x 0.0005 + 2 x 0.002 = 0.05 + 0.004 = 0.054 CNY
    EXPECT_EQ(
        UsageOf(kQwenLong, {.model = "qwen-long", .time = "2024-05-20T12:00:00Z", .input = 100000, .output = 2000}),
        "2.04");
    EXPECT_EQ(
        UsageOf(kQwenLong, {.model = "qwen-long", .time = "2024-05-21T12:00:00Z", .input = 100000, .output = 2000}),
        "0.054");
    // qwen-max keeps its price: 10 x 0.04 + 1 x 0.12 = 0.52 CNY.
    EXPECT_EQ(UsageOf(kQwenLong, {.model = "qwen-max", .time = "2024-05-21T12:00:00Z", .input = 10000, .output = 1000}),
              "0.52");
}

// Tencent, 2024-05-22: hunyuan-pro input 0.1 -> 0.03 CNY per 1,000 tokens
// (-70 %), output unchanged at 0.1; hunyuan-standard unchanged.
const char* const kHunyuan = R"(plan: p
versions:
  - version: v1
    effective_from: 2024-05-01T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    rates_per: 1000
    models:
      hunyuan-pro: {rates: {input: "0.1", output: "0.1"}}
      hunyuan-standard: {rates: {input: "0.0045", output: "0.005"}}
  - version: v2
    extends: v1
    effective_from: 2024-05-22T00:00:00+08:00
    changes:
      - {multiplier: "0.3", models: [hunyuan-pro], units: [input]}
)";

TEST(PlanExtends, HunyuanProMinusSeventyPercentOnInput) {
    Parsed p = Parse(kHunyuan);
    ASSERT_TRUE(p.plan.has_value()) << Dump(p.problems);
    const PlanVersion& v2 = p.plan->versions[1];
    EXPECT_EQ(RateOf(v2, "hunyuan-pro", kUnitInput), "0.03/1000");  // 0.1 x 0.3
    EXPECT_EQ(RateOf(v2, "hunyuan-pro", kUnitOutput), "0.1/1000");
    EXPECT_EQ(RateOf(v2, "hunyuan-standard", kUnitInput), "0.0045/1000");
    // 10,000 input + 1,000 output: before 10 x 0.1 + 1 x 0.1 = 1.1 CNY;
    // after 10 x 0.03 + 1 x 0.1 = 0.3 + 0.1 = 0.4 CNY.
    EXPECT_EQ(
        UsageOf(kHunyuan, {.model = "hunyuan-pro", .time = "2024-05-21T12:00:00Z", .input = 10000, .output = 1000}),
        "1.1");
    EXPECT_EQ(
        UsageOf(kHunyuan, {.model = "hunyuan-pro", .time = "2024-05-22T12:00:00Z", .input = 10000, .output = 1000}),
        "0.4");
}

// DeepSeek's two 2025 lists (../shared/price-sheets.md section 6), 22 lines.
const char* const kDeepseek = R"(plan: p
versions:
  - version: "2025-02-off-peak"
    effective_from: 2025-02-26T16:30:00Z
    currency: USD
    time_zone: UTC
    models:
      deepseek-chat:
        rates: {input: "0.27", cached_input: "0.07", output: "1.10"}
        windows:
          - {name: off-peak, time_zone: UTC, start: "16:30", end: "00:30", rates: {input: "0.135", output: "0.550"}}
      deepseek-reasoner:
        rates: {input: "0.55", cached_input: "0.14", output: "2.19"}
  - version: "2025-09-v3.1"
    effective_from: 2025-09-05T16:00:00Z
    currency: USD
    time_zone: UTC
    models:
      deepseek-chat:
        rates: {input: "0.56", cached_input: "0.07", output: "1.68"}
      deepseek-reasoner:
        rates: {input: "0.56", cached_input: "0.07", output: "1.68"}
)";

TEST(PlanExtends, MultiplierWithoutModelsCutsEveryInheritedModelAndEveryTable) {
    // DeepSeek's 2025-02 off-peak table as a base: a multiplier of 0.5
    // halves the window's own rates too (0.135 -> 0.0675), not only the
    // standard ones (0.27 -> 0.135).
    Parsed p = Parse(std::string(kDeepseek) + R"(  - version: half
    extends: "2025-09-v3.1"
    effective_from: 2025-10-01T00:00:00Z
    changes:
      - {multiplier: "0.5"}
)");
    ASSERT_TRUE(p.plan.has_value()) << Dump(p.problems);
    const PlanVersion& half = p.plan->versions.back();
    EXPECT_EQ(RateOf(half, "deepseek-chat", kUnitInput), "0.28/1000000");       // 0.56 x 0.5
    EXPECT_EQ(RateOf(half, "deepseek-reasoner", kUnitOutput), "0.84/1000000");  // 1.68 x 0.5

    ModelPricing m;
    m.bands.emplace_back();
    m.bands[0].rates[kUnitInput] = Rate(testing::Dec("0.27"), 1'000'000);
    m.windows.emplace_back();
    m.windows[0].rates[kUnitInput] = Rate(testing::Dec("0.135"), 1'000'000);
    // An output condition's own table in the window is a rate table too.
    m.bands[0].output_conditions.emplace_back();
    m.bands[0].output_conditions[0].window_rates.push_back({0, RateTable{}});
    m.bands[0].output_conditions[0].window_rates[0].rates[kUnitOutput] = Rate(testing::Dec("0.55"), 1'000'000);
    EXPECT_FALSE(ScaleRates(&m, 0, Multiplier(testing::Dec("0.5")), 9).has_value());
    EXPECT_EQ(m.bands[0].rates[kUnitInput]->price().ToString(), "0.135");
    EXPECT_EQ(m.windows[0].rates[kUnitInput]->price().ToString(), "0.0675");
    EXPECT_EQ(m.bands[0].output_conditions[0].window_rates[0].rates[kUnitOutput]->price().ToString(), "0.275");
}

// deploy/plans/deepseek.yaml's 2025-09-29 cut (V3.2-Exp, "API prices drop
// 50 %+"): 0.07 / 0.56 / 1.68 -> 0.028 / 0.28 / 0.42 USD per 1M tokens.
TEST(PlanExtends, DeepseekCutInTheExamplePlan) {
    std::string text;
    {
        FILE* f = std::fopen(TALLY_SOURCE_DIR "/deploy/plans/deepseek.yaml", "rb");
        ASSERT_NE(f, nullptr);
        char buf[4096];
        size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
        std::fclose(f);
    }
    Parsed p = Parse(text);
    ASSERT_TRUE(p.plan.has_value()) << Dump(p.problems);
    ASSERT_EQ(p.plan->versions.size(), 3u);
    const PlanVersion& cut = p.plan->versions[2];
    EXPECT_EQ(cut.extends, "2025-09-v3.1");
    EXPECT_EQ(cut.currency.code(), "USD");
    for (const char* model : {"deepseek-chat", "deepseek-reasoner"}) {
        EXPECT_EQ(RateOf(cut, model, kUnitCachedInput), "0.028/1000000") << model;  // 0.07 x 0.4
        EXPECT_EQ(RateOf(cut, model, kUnitInput), "0.28/1000000") << model;         // 0.56 x 0.5
        EXPECT_EQ(RateOf(cut, model, kUnitOutput), "0.42/1000000") << model;        // 1.68 x 0.25
    }
    // 1,000,000 input of which 200,000 cache hits, + 100,000 output, chat:
    //   v3.1: 0.8 x 0.56 + 0.2 x 0.07 + 0.1 x 1.68 = 0.448 + 0.014 + 0.168 = 0.63 USD
    //   cut:  0.8 x 0.28 + 0.2 x 0.028 + 0.1 x 0.42 = 0.224 + 0.0056 + 0.042 = 0.2716 USD
    const std::string plan = "plan: p\n" + text.substr(text.find("\nname:") + 1);
    testing::EventSpec call{.model = "deepseek-chat", .input = 1'000'000, .output = 100'000, .cached = 200'000};
    call.time = "2025-09-20T12:00:00Z";
    EXPECT_EQ(UsageOf(plan, call), "0.63");
    call.time = "2025-09-30T12:00:00Z";
    EXPECT_EQ(UsageOf(plan, call), "0.2716");
}

TEST(PlanExtends, RemoveAndFreeAndAddAModel) {
    Parsed p = Parse(std::string(kDeepseek) + R"(  - version: v3
    extends: "2025-09-v3.1"
    effective_from: 2025-10-01T00:00:00Z
    models:
      qwen-long-trial: {rates: {input: "0.5", output: "2"}}
  - version: v4
    extends: v3
    effective_from: 2025-11-01T00:00:00Z
    changes:
      - {remove: [deepseek-reasoner]}
      - {free: [qwen-long-trial]}
)");
    ASSERT_TRUE(p.plan.has_value()) << Dump(p.problems);
    const PlanVersion& v3 = p.plan->versions[2];
    const PlanVersion& v4 = p.plan->versions[3];
    EXPECT_EQ(v3.models.size(), 3u);
    EXPECT_EQ(v4.models.size(), 2u);
    EXPECT_EQ(v4.FindModel("deepseek-reasoner"), nullptr);
    EXPECT_EQ(v4.model_index.at("qwen-long-trial"), 1u);
    EXPECT_EQ(RateOf(v4, "qwen-long-trial", kUnitInput), "0/1000000");
    EXPECT_EQ(RateOf(v4, "qwen-long-trial", kUnitOutput), "0/1000000");
    EXPECT_EQ(RateOf(v4, "deepseek-chat", kUnitOutput), "1.68/1000000");
}

// kDeepseek and more versions after it (from line 23).
std::string WithChange(const std::string& versions_tail) {
    return std::string(kDeepseek) + versions_tail;
}

TEST(PlanExtends, UnknownLaterSelfAndCyclicBasesAreRefusedAtExtends) {
    const std::string head = "plan: p\nversions:\n";
    const std::string full =
        "    effective_from: 2025-01-01T00:00:00Z\n    currency: USD\n    time_zone: UTC\n"
        "    models: {m: {rates: {input: \"1\", output: \"2\"}}}\n";
    EXPECT_EQ(OnlyProblem(head + "  - version: a\n" + full +
                          "  - version: b\n    extends: z\n    effective_from: 2025-02-01T00:00:00Z\n"),
              "9:14: version b extends 'z', which is not a version listed before it (known: a)");
    EXPECT_EQ(OnlyProblem(head + "  - version: a\n" + full +
                          "  - version: b\n    extends: c\n    effective_from: 2025-02-01T00:00:00Z\n"
                          "  - version: c\n    extends: a\n    effective_from: 2025-03-01T00:00:00Z\n"),
              "9:14: version b extends 'c', which is listed after it; a version extends one listed (and taking "
              "effect) before it");
    EXPECT_EQ(OnlyProblem(head + "  - version: a\n" + full +
                          "  - version: b\n    extends: b\n    effective_from: 2025-02-01T00:00:00Z\n"),
              "9:14: version b extends itself; name the earlier version it changes");
    Parsed cycle = Parse(head + "  - version: a\n" + full +
                         "  - version: b\n    extends: c\n    effective_from: 2025-02-01T00:00:00Z\n"
                         "  - version: c\n    extends: b\n    effective_from: 2025-03-01T00:00:00Z\n");
    ASSERT_FALSE(cycle.plan.has_value());
    ASSERT_GE(cycle.problems.size(), 1u);
    EXPECT_EQ(cycle.problems[0],
              "9:14: versions extend each other in a cycle (b -> c -> b); a version extends one listed before it")
        << Dump(cycle.problems);
}

TEST(PlanExtends, ChangesNamingModelsTheBaseLacksAreRefusedAtTheName) {
    const std::string v3 = "  - version: v3\n    extends: \"2025-09-v3.1\"\n    effective_from: 2025-10-01T00:00:00Z\n";
    // v3 starts at line 23, its first change is on line 27.
    EXPECT_EQ(OnlyProblem(WithChange(v3 + "    changes:\n      - {multiplier: \"0.5\", models: [deepseek-v4]}\n")),
              "27:38: a multiplier names model 'deepseek-v4', which version 2025-09-v3.1 does not price; add a new "
              "model under models: instead");
    EXPECT_EQ(OnlyProblem(WithChange(v3 + "    changes:\n      - {free: [deepseek-v4]}\n")),
              "27:17: free names model 'deepseek-v4', which version 2025-09-v3.1 does not price; add a new model "
              "under models: instead");
    EXPECT_EQ(OnlyProblem(WithChange(v3 + "    changes:\n      - {remove: [deepseek-chat]}\n"
                                          "      - {free: [deepseek-chat]}\n")),
              "28:17: free names model 'deepseek-chat', which an earlier change of this version removes");
    EXPECT_EQ(OnlyProblem(WithChange(v3 + "    models:\n      deepseek-chat: {rates: {input: \"1\", output: \"2\"}}\n"
                                          "    changes:\n      - {free: [deepseek-chat]}\n")),
              "29:17: free names model 'deepseek-chat', which this version writes out under models: (that replaces "
              "it whole); change its prices there");
    EXPECT_EQ(
        OnlyProblem(WithChange(v3 + "    changes:\n      - {remove: [deepseek-chat], free: [deepseek-reasoner]}\n")),
        "27:9: a change is one of multiplier (with models and units), remove or free, not several");
    std::string no_extends = kDeepseek;
    no_extends.insert(no_extends.find("    models:\n      deepseek-chat:\n        rates: {input: \"0.56\""),
                      "    changes: [{free: [deepseek-chat]}]\n");
    EXPECT_EQ(OnlyProblem(no_extends),
              "18:14: changes are made to the version this one extends; add extends: <an earlier version>");
}

TEST(PlanExtends, AMultipliedRateIsNeverRounded) {
    // 0.27 x 0.333 = 0.08991 is exact; 0.000123456 x 0.37 = 0.00004567872
    // needs 11 decimal places.
    const std::string base = R"(plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: USD
    time_zone: UTC
    models:
      a: {rates: {input: "0.27", output: "1"}}
      b: {rates: {input: "0.000123456", output: "1"}}
  - version: v2
    extends: v1
    effective_from: 2025-02-01T00:00:00Z
    changes:
)";
    Parsed ok = Parse(base + "      - {multiplier: \"0.333\", models: [a]}\n");
    ASSERT_TRUE(ok.plan.has_value()) << Dump(ok.problems);
    EXPECT_EQ(RateOf(ok.plan->versions[1], "a", kUnitInput), "0.08991/1000000");
    EXPECT_EQ(OnlyProblem(base + "      - {multiplier: \"0.37\", models: [b], units: [input]}\n"),
              "14:22: multiplier 0.37 makes the input rate 0.000123456 of model 'b' 0.00004567872, more than 9 "
              "decimal places; a multiplied rate is never rounded: write the model's rates under models: instead");
}

TEST(PlanExtends, AChangeCannotLeaveATierRuleWithItsOwnRatesBehind) {
    const std::string text = R"(plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: USD
    time_zone: UTC
    models:
      a: {rates: {input: "1", output: "2"}}
    tiers:
      - {name: volume, mode: graduated, tiers: [{up_to: 1000000, multiplier: "1"}, {rate: "0.5"}]}
  - version: v2
    extends: v1
    effective_from: 2025-02-01T00:00:00Z
    changes:
      - {multiplier: "0.5"}
)";
    EXPECT_EQ(OnlyProblem(text),
              "15:22: tier rule 'volume' gives model 'a' rates of its own, which this change does not touch; write "
              "tiers: anew in this version");
}

// Publishing a file whose only version extends one already published.
TEST(PlanExtends, AVersionExtendsAPublishedVersion) {
    Catalog published = testing::MustCatalog({kQwenLong});
    ASSERT_EQ(published.plans.size(), 1u);
    const std::string next = R"(plan: p
versions:
  - version: "2024-09"
    extends: "2024-05-cut"
    effective_from: 2024-09-01T00:00:00+08:00
    changes:
      - {multiplier: "0.5", models: [qwen-max]}
)";
    Parsed alone = Parse(next);
    ASSERT_EQ(alone.problems.size(), 1u) << Dump(alone.problems);
    EXPECT_EQ(alone.problems[0],
              "4:14: version 2024-09 extends '2024-05-cut', which is not a version listed before it (there is none)");
    Parsed p = Parse(next, &published);
    ASSERT_TRUE(p.plan.has_value()) << Dump(p.problems);
    const PlanVersion& v = p.plan->versions[0];
    EXPECT_EQ(v.extends, "2024-05-cut");
    EXPECT_EQ(v.rates_per, 1000);
    EXPECT_EQ(RateOf(v, "qwen-long", kUnitInput), "0.0005/1000");
    EXPECT_EQ(RateOf(v, "qwen-max", kUnitOutput), "0.06/1000");  // 0.12 x 0.5
    // A published base must take effect before the version (in the file,
    // the order of the versions says so).
    Parsed early = Parse(std::string(next).replace(next.find("2024-09-01"), 10, "2024-05-10"), &published);
    ASSERT_EQ(early.problems.size(), 1u) << Dump(early.problems);
    EXPECT_EQ(early.problems[0],
              "4:14: version 2024-09 extends 2024-05-cut, which takes effect at 2024-05-20T16:00:00Z, not before it; "
              "a version extends one that takes effect earlier");
    Parsed missing = Parse(std::string(next).replace(next.find("2024-05-cut"), 11, "2023-01"), &published);
    ASSERT_EQ(missing.problems.size(), 1u) << Dump(missing.problems);
    EXPECT_EQ(missing.problems[0],
              "4:14: version 2024-09 extends '2023-01', which is not a version listed before it nor a published "
              "version of plan p (known: 2024-05, 2024-05-cut)");
}

// ---- Messages and silent mistakes (issue 9) ----

const char* const kHead = R"(plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    models:
)";

TEST(PlanMessages, AbbreviatedBoundSaysTokenCountsAreWhole) {
    EXPECT_EQ(OnlyProblem(std::string(kHead) + R"(      m:
        bands:
          - up_to: 32K
            rates: {input: "0.8", output: "8"}
          - rates: {input: "1.2", output: "16"}
)"),
              "10:20: up_to '32K' is not a whole number: counts and bounds are whole token counts, written out in "
              "full (write 32000 or 32768, whichever the sheet means)");
    // Only that: not the next band's order against a bound never read, nor
    // a window's missing band table named by the wrong band.
    EXPECT_EQ(OnlyProblem(std::string(kHead) + R"(      m:
        bands:
          - up_to: 32K
            rates: {input: "0.8", cached_input: "0.16", output: "8"}
          - up_to: 128000
            rates: {input: "1.2", cached_input: "0.16", output: "16"}
            window_rates: {night: {input: "0.6"}}
        windows:
          - {name: night, time_zone: Asia/Shanghai, start: "00:00", end: "08:00"}
)"),
              "10:20: up_to '32K' is not a whole number: counts and bounds are whole token counts, written out in "
              "full (write 32000 or 32768, whichever the sheet means)");
    // Volcano writes its short-output bound "0.2K"; others write separators or exponents.
    for (const char* written : {"0.2K", "1B", "\"32,000\"", "1e6", "32_000"}) {
        std::string text = std::string(kHead) + R"(      m:
        bands:
          - up_to: )" + written + R"(
            rates: {input: "0.8", output: "8"}
          - rates: {input: "1.2", output: "16"}
)";
        const std::string problem = OnlyProblem(text);
        EXPECT_EQ(problem.rfind("10:20: up_to '", 0), 0u) << written << ": " << problem;
        EXPECT_NE(problem.find("is not a whole number: counts and bounds are whole token counts written with digits "
                               "only (no K, M or B suffix, no thousands separators, no exponent): e.g. 200 for 0.2K"),
                  std::string::npos)
            << written << ": " << problem;
    }
}

TEST(PlanMessages, DuplicateKeysAreRefusedAtTheSecond) {
    EXPECT_EQ(OnlyProblem(std::string(kHead) + "      m: {rates: {input: \"0.8\", output: \"8\", input: \"0.9\"}}\n"),
              "8:46: key 'input' is given twice in one mapping (first at 8:19); YAML keeps only one of them: say it "
              "once");
    EXPECT_EQ(OnlyProblem(std::string(kHead) + "      m: {rates: {input: \"0.8\", output: \"8\"}}\n"
                                               "      m: {rates: {input: \"0.9\", output: \"8\"}}\n"),
              "9:7: key 'm' is given twice in one mapping (first at 8:7); YAML keeps only one of them: say it once");
}

TEST(PlanMessages, ASecondDocumentIsRefused) {
    EXPECT_EQ(OnlyProblem(std::string(kHead) + "      m: {rates: {input: \"0.8\", output: \"8\"}}\n---\nplan: q\n"),
              "9:1: a second YAML document starts here (after ---); a file holds one document: put the rest in a "
              "file of its own");
    EXPECT_EQ(OnlyProblem(std::string(kHead) + "      m: {rates: {input: \"0.8\", output: \"8\"}}\n---\n"),
              "9:1: a second YAML document starts here (after ---); a file holds one document: put the rest in a "
              "file of its own");
    // A leading --- is the first document's start, and fine.
    Parsed ok = Parse("---\n" + std::string(kHead) + "      m: {rates: {input: \"0.8\", output: \"8\"}}\n");
    EXPECT_TRUE(ok.plan.has_value()) << Dump(ok.problems);
}

TEST(PlanMessages, MergeKeysWork) {
    // Doubao's peak/off-peak tables written once and merged: the explicit
    // key wins over the merged one.
    Parsed p = Parse(std::string(kHead) + R"(      a:
        rates: &base {input: "0.8", cached_input: "0.16", output: "8"}
      b:
        rates:
          <<: *base
          output: "2"
      c:
        rates: {<<: [*base, {reasoning: "9"}]}
)");
    ASSERT_TRUE(p.plan.has_value()) << Dump(p.problems);
    const PlanVersion& v = p.plan->versions[0];
    EXPECT_EQ(RateOf(v, "b", kUnitInput), "0.8/1000000");
    EXPECT_EQ(RateOf(v, "b", kUnitCachedInput), "0.16/1000000");
    EXPECT_EQ(RateOf(v, "b", kUnitOutput), "2/1000000");
    EXPECT_EQ(RateOf(v, "c", kUnitReasoning), "9/1000000");
    EXPECT_EQ(RateOf(v, "a", kUnitOutput), "8/1000000");  // the anchor is untouched
    // A merged entry that is wrong is reported at the anchor's text, for
    // each model that reads it (as an alias is).
    Parsed bad = Parse(std::string(kHead) + R"(      a:
        rates: &base {input: "x", output: "8"}
      b:
        rates: {<<: *base}
)");
    EXPECT_FALSE(bad.plan.has_value());
    EXPECT_EQ(bad.problems,
              (std::vector<std::string>{
                  "9:30: the input rate: 'x' is not a plain decimal number (digits, one '.', optional sign)",
                  "9:16: the rates of model 'a' have no input price",
                  "9:30: the input rate: 'x' is not a plain decimal number (digits, one '.', optional sign)",
                  "11:16: the rates of model 'b' have no input price"}));
    EXPECT_EQ(OnlyProblem(std::string(kHead) + "      a: {rates: {<<: \"x\", output: \"8\"}}\n"),
              "8:19: a merge key '<<' takes a mapping (<<: *name) or a list of them (<<: [*a, *b])");
}

TEST(PlanMessages, PlanNamesAndVersionIdsArePathSafe) {
    auto with_name = [](const std::string& plan, const std::string& version) {
        return "plan: " + plan + "\nversions:\n  - version: " + version +
               "\n    effective_from: 2025-01-01T00:00:00Z\n    currency: CNY\n    time_zone: UTC\n"
               "    models: {m: {rates: {input: \"1\", output: \"2\"}}}\n";
    };
    EXPECT_EQ(OnlyProblem(with_name("\"a/b\"", "v1")),
              "1:7: plan name 'a/b' holds '/' (offset 1), which a URL path or a file name reads as something else; "
              "use letters, digits, '-', '_' or '.'");
    EXPECT_EQ(OnlyProblem(with_name("p", "\"..\"")),
              "3:14: version id '..' is a path of its own; a name needs a "
              "letter or digit");
    EXPECT_EQ(OnlyProblem(with_name(".hidden", "v1")),
              "1:7: plan name '.hidden' starts with a dot, which hides it as a file name; start it with a letter or "
              "digit");
    EXPECT_EQ(OnlyProblem(with_name("p", "\"v\\u200B1\"")),
              "3:14: version id 'v\xE2\x80\x8B"
              "1' holds an invisible or space character (U+200B at offset 1); names "
              "that look the same must be the same");
    EXPECT_EQ(OnlyProblem(with_name("p", "\"v\\t1\"")).substr(0, 40), "3:14: version id 'v\\u00091' holds a cont");
    Parsed ok = Parse(with_name("qwen-plus", "\"2025-09.v3_1\""));
    EXPECT_TRUE(ok.plan.has_value()) << Dump(ok.problems);
}

TEST(PlanMessages, AWindowReadInANonUtcZoneIsWarnedAbout) {
    const std::string window = R"(      m:
        rates: {input: "1", output: "2"}
        windows:
          - {name: night, start: "00:30", end: "08:30", multiplier: "0.5"}
)";
    Parsed p = Parse(std::string(kHead) + window);
    ASSERT_TRUE(p.plan.has_value()) << Dump(p.problems);
    ASSERT_EQ(p.problems.size(), 1u) << Dump(p.problems);
    EXPECT_EQ(p.problems[0],
              "11:13: warning: window 'night' has no time_zone of its own, so its hours are read in the plan's "
              "Asia/Shanghai (UTC+08:00 at 2025-01-01T00:00:00Z); a window from a sheet stated in UTC would shift by "
              "8 hours: write time_zone: UTC on the window if the sheet is in UTC, or the plan's zone to keep this "
              "reading and silence this warning (the same holds for the version's other windows without a time_zone)");
    std::string utc = std::string(kHead) + window;
    utc.replace(utc.find("Asia/Shanghai"), 13, "UTC");
    EXPECT_TRUE(Parse(utc).problems.empty());
    std::string own = std::string(kHead) + window;
    own.replace(own.find("name: night"), 11, "name: night, time_zone: Asia/Shanghai");
    EXPECT_TRUE(Parse(own).problems.empty());
}

}  // namespace
}  // namespace tally
