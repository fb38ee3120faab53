#include "pricing/cost_card.h"

#include <gtest/gtest.h>

#include "pricing/plan_yaml.h"
#include "test_plans.h"

namespace tally {
namespace {

using testing::At;

// Parses `text`; returns the diagnostics as "line:col: message" lines.
std::vector<std::string> Problems(const std::string& text) {
    Diagnostics d;
    auto card = ParseCostCard(text, "c.yaml", &d);
    EXPECT_EQ(card.has_value(), d.empty());
    std::vector<std::string> out;
    for (const auto& x : d) out.push_back(std::to_string(x.line) + ":" + std::to_string(x.column) + ": " + x.message);
    return out;
}

std::string Dump(const std::vector<std::string>& problems) {
    std::string s;
    for (const auto& p : problems) s += p + "\n";
    return s;
}

CostCard MustCard(const std::string& text) {
    Diagnostics d;
    auto card = ParseCostCard(text, "c.yaml", &d);
    for (const auto& x : d) ADD_FAILURE() << x.ToString();
    return card ? *card : CostCard{};
}

const char* const kCard = R"(cost_card: gpu
name: "GPU 成本"
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00+08:00
    currency: CNY
    rates_per: 1000
    models:
      m:
        bands:
          - up_to: 32000
            rates: {input: "0.3", output: {price: "3", per: 1000000}, cache_write: "0.5"}
          - up_to: 128000
            rates: {input: "0.6", output: "6"}
          - rates: {input: "1.2", output: "12", images: {price: "0.02", per: 1}}
      routed:
        upstream: true
        currency: USD
        rates: {input: "1.25", output: "10"}
  - version: v2
    effective_from: 2025-11-15T00:00:00+08:00
    currency: CNY
    models:
      m:
        rates: {input: "0.2", output: "2"}
)";

TEST(CostCard, ParsesAGoodCard) {
    CostCard card = MustCard(kCard);
    EXPECT_EQ(card.name, "gpu");
    EXPECT_EQ(card.display_name, "GPU 成本");
    ASSERT_EQ(card.versions.size(), 2u);
    const CostCardVersion& v1 = card.versions[0];
    EXPECT_EQ(v1.id, "v1");
    EXPECT_EQ(v1.currency.code(), "CNY");
    ASSERT_EQ(v1.models.size(), 2u);
    const ModelCost* m = v1.FindModel("m");
    ASSERT_NE(m, nullptr);
    EXPECT_FALSE(m->upstream);
    EXPECT_EQ(m->currency.code(), "CNY");
    ASSERT_EQ(m->bands.size(), 3u);
    EXPECT_EQ(m->bands[0].up_to, 32000);
    EXPECT_EQ(m->bands[1].up_to, 128000);
    EXPECT_TRUE(m->bands[2].unbounded());
    // rates_per: 1000 for plain numbers; {price, per} keeps its own per.
    EXPECT_EQ(m->bands[0].rates.at("input"), Rate(testing::Dec("0.3"), 1000));
    EXPECT_EQ(m->bands[0].rates.at("output"), Rate(testing::Dec("3"), 1'000'000));
    EXPECT_EQ(m->bands[2].rates.at("images"), Rate(testing::Dec("0.02"), 1));
    const ModelCost* routed = v1.FindModel("routed");
    ASSERT_NE(routed, nullptr);
    EXPECT_TRUE(routed->upstream);
    EXPECT_EQ(routed->currency.code(), "USD");
    // v2 has the default per (1,000,000).
    EXPECT_EQ(card.versions[1].FindModel("m")->bands[0].rates.at("input"), Rate(testing::Dec("0.2"), 1'000'000));
    EXPECT_EQ(card.VersionAt(At("2024-12-31T15:59:59.999Z")), nullptr);
    EXPECT_EQ(card.VersionAt(At("2024-12-31T16:00:00Z")), &card.versions[0]);
    EXPECT_EQ(card.VersionAt(At("2025-11-14T15:59:59.999Z")), &card.versions[0]);
    EXPECT_EQ(card.VersionAt(At("2025-11-14T16:00:00Z")), &card.versions[1]);
}

// Every mistake with the line and column it is reported at.
TEST(CostCard, ReportsEveryProblemWithLineAndColumn) {
    const std::vector<std::string> problems = Problems(R"(cost_card: gpu
colour: blue
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    models:
      m:
        rates: {input: "-0.3", output: "1.0000000001", tokens: "1"}
        speed: fast
      n:
        rates: {input: "1"}
        bands:
          - rates: {input: "1"}
      p:
        upstream: maybe
        bands:
          - up_to: 100
            rates: {input: "1"}
          - up_to: 100
            rates: {input: "1"}
          - rates: {output: {price: "1", per: 3}}
      q:
        bands:
          - rates: {input: "1"}
          - rates: {input: "2"}
  - version: v1
    effective_from: 2024-12-31T00:00:00Z
    currency: XXX
    rates_per: 7
    models:
      m: {rates: {input: "1"}}
)");
    const std::vector<std::string> expected = {
        "2:1: unknown key 'colour' in the cost card; expected one of: cost_card, name, versions",
        "10:9: unknown key 'speed' in model 'm'; expected one of: upstream, currency, rates, bands",
        "9:24: the input cost is negative (-0.3); it must be 0 or more",
        "9:40: the output cost 1.0000000001 has more than 9 decimal places",
        "9:56: unknown unit 'tokens'; token units are input, cached_input, cached_input_explicit, cache_write, "
        "cache_write_1h, output, reasoning; other units are images, video_seconds, tool_calls, "
        "cache_storage_token_hours, web_searches, audio_seconds, or one listed in custom_units",
        "12:9: model 'n' needs either 'rates' (one cost for every call) or 'bands', not both",
        "16:19: upstream must be true or false, not 'maybe'",
        "20:20: band 2 of model 'p' ends at 100, not above the band before it (100); list bands from the smallest up",
        "22:47: per must be a power of ten such as 1, 1000 or 1000000",
        "25:13: band 1 of model 'q' has no up_to; only the last band may be open-ended",
        "29:15: currency 'XXX' is not an ISO 4217 code Tally knows (CNY, USD, ...)",
        "30:16: rates_per must be a power of ten such as 1000 or 1000000",
        "27:5: two versions are both called 'v1'",
        "27:5: version v1 takes effect at 2024-12-31T00:00:00Z, not after version v1 (2025-01-01T00:00:00Z); list "
        "versions in the order they take effect",
    };
    EXPECT_EQ(problems, expected) << Dump(problems);
}

TEST(CostCard, ReportsMissingKeysAndBadYaml) {
    EXPECT_EQ(Problems("cost_card: gpu\n"), std::vector<std::string>{"1:1: the cost card needs 'versions'"});
    EXPECT_EQ(Problems("cost_card: gpu\nversions:\n  - version: v1\n    currency: CNY\n    models: {m: {rates: {input: "
                       "\"1\"}}}\n"),
              std::vector<std::string>{"3:5: version v1 needs 'effective_from'"});
    const auto bad = Problems("cost_card: [unclosed\n");
    ASSERT_EQ(bad.size(), 1u);
    EXPECT_NE(bad[0].find("not valid YAML"), std::string::npos) << bad[0];
    EXPECT_EQ(Problems("cost_card: gpu\nversions: []\n"),
              std::vector<std::string>{"2:11: versions must be a list with at least one version"});
    // Read as plan files are: a key given twice and a second document are refused.
    EXPECT_EQ(Problems("cost_card: gpu\ncost_card: cpu\nversions: []\n"),
              std::vector<std::string>{"2:1: key 'cost_card' is given twice in one mapping (first at 1:1); YAML "
                                       "keeps only one of them: say it once"});
    EXPECT_EQ(Problems("cost_card: gpu\nversions: []\n---\ncost_card: cpu\n"),
              std::vector<std::string>{"3:1: a second YAML document starts here (after ---); a file holds one "
                                       "document: put the rest in a file of its own"});
}

// The plan band whose prompts start at `from` tokens takes the cost band
// that contains `from`.
TEST(CostCatalog, CostsByBandWithFallbacksExactly) {
    CostCatalog costs;
    Diagnostics d;
    ASSERT_TRUE(costs.Add(MustCard(kCard), &d));
    const Instant t = At("2025-11-03T12:00:00Z");
    // 1,234,567 input tokens in the first band at 0.3 per 1000:
    // 1234567 x 0.3 / 1000 = 370.3701.
    CostQuote q = costs.Cost("m", "input", 0, t, 1'234'567);
    ASSERT_TRUE(q.amount.has_value()) << q.reason;
    EXPECT_EQ(q.amount->ToString(), "370.3701");
    EXPECT_EQ(q.amount->currency().code(), "CNY");
    EXPECT_EQ(q.card, "gpu");
    EXPECT_EQ(q.version, "v1");
    EXPECT_FALSE(q.upstream);
    // A plan band from 32001 tokens: cost band 2 (up to 128000), 0.6 per 1000: 10 x 0.6 / 1000 = 0.006.
    EXPECT_EQ(costs.Cost("m", "input", 32001, t, 10).amount->ToString(), "0.006");
    // From 32000: still band 1 (inclusive up_to).
    EXPECT_EQ(costs.Cost("m", "input", 32000, t, 10).amount->ToString(), "0.003");
    // From 200000: the open band, 1.2 per 1000.
    EXPECT_EQ(costs.Cost("m", "input", 200000, t, 10).amount->ToString(), "0.012");
    // Fallbacks: cached_input -> input (0.3/1000), cache_write has its own
    // rate (0.5/1000), cache_write_1h -> cache_write, reasoning -> output (3 per 1M).
    EXPECT_EQ(costs.Cost("m", "cached_input", 0, t, 1000).amount->ToString(), "0.3");
    EXPECT_EQ(costs.Cost("m", "cache_write", 0, t, 1000).amount->ToString(), "0.5");
    EXPECT_EQ(costs.Cost("m", "cache_write_1h", 0, t, 1000).amount->ToString(), "0.5");
    EXPECT_EQ(costs.Cost("m", "reasoning", 0, t, 1000).amount->ToString(), "0.003");
    // In band 2 cache_write has no rate: it falls back to input (0.6/1000).
    EXPECT_EQ(costs.Cost("m", "cache_write", 50000, t, 1000).amount->ToString(), "0.6");
    // An extra unit: its own rate in the open band, none (no fallback) in band 1.
    EXPECT_EQ(costs.Cost("m", "images", 200000, t, 3).amount->ToString(), "0.06");
    CostQuote no_images = costs.Cost("m", "images", 0, t, 3);
    EXPECT_FALSE(no_images.amount.has_value());
    EXPECT_EQ(no_images.reason, "cost card gpu version v1 has no cost of images of model m");
    // Upstream, in its own currency (v1's rates_per: 10 per 1000).
    CostQuote routed = costs.Cost("routed", "output", 0, t, 1000);
    EXPECT_TRUE(routed.upstream);
    EXPECT_EQ(routed.amount->ToString(), "10");
    EXPECT_EQ(routed.amount->currency().code(), "USD");
    // Version 2 from 2025-11-15 00:00 Shanghai: 0.2 per 1M, one band.
    EXPECT_EQ(costs.Cost("m", "input", 200000, At("2025-11-14T16:00:00Z"), 1'000'000).amount->ToString(), "0.2");
    // Unknown: no card for the model; the model not in the version in force;
    // before the first version. Never a zero.
    EXPECT_EQ(costs.Cost("x", "input", 0, t, 1).reason, "no cost card costs model x");
    EXPECT_EQ(costs.Cost("routed", "input", 0, At("2025-11-20T00:00:00Z"), 1).reason,
              "cost card gpu has no cost of model routed at 2025-11-20T00:00:00Z");
    EXPECT_FALSE(costs.Cost("m", "input", 0, At("2024-06-01T00:00:00Z"), 1).amount.has_value());
    // Zero quantity costs zero, known.
    EXPECT_EQ(costs.Cost("m", "input", 0, t, 0).amount->ToString(), "0");
}

TEST(CostCatalog, RefusesAModelCostedByTwoCards) {
    CostCatalog costs;
    Diagnostics d;
    ASSERT_TRUE(costs.Add(MustCard(kCard), &d));
    CostCard other = MustCard(R"(cost_card: other
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    models:
      routed: {rates: {input: "1"}}
)");
    EXPECT_FALSE(costs.Add(other, &d));
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].message,
              "model 'routed' is costed by cost card 'other' and by cost card 'gpu'; a model's serving cost comes from "
              "one card");
    EXPECT_EQ(costs.cards().size(), 1u);
    d.clear();
    EXPECT_FALSE(costs.Add(MustCard(kCard), &d));
    EXPECT_EQ(d.at(0).message, "cost card 'gpu' is given twice");
}

TEST(CostCatalog, PlanBandLowerBounds) {
    Catalog catalog = testing::MustCatalog({testing::kDoubaoPlan});
    const ModelPricing* m = catalog.plans[0].versions[0].FindModel("doubao-seed-1.6");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(PlanBandLowerBound(*m, 0), 0);
    EXPECT_EQ(PlanBandLowerBound(*m, 1), 32001);
    EXPECT_EQ(PlanBandLowerBound(*m, 2), 128001);
}

}  // namespace
}  // namespace tally
