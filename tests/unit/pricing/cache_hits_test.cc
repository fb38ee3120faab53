// Two kinds of cache hit (implicit and explicit), each at its own rate and
// each taken out of the uncached input, and the rule that a model pricing
// batch and cache hits says how they meet (`cache_hits:` under `batch:`).
// Numbers from Alibaba's sheet (../shared/price-sheets.md section 2):
// qwen-plus mainland band 1 input 0.8 CNY per 1M tokens, implicit hit 20 %
// of input (0.16), explicit hit 10 % (0.08), explicit cache creation 125 %
// (1.0); batch half price and never combined with the cache.
#include <gtest/gtest.h>

#include "pricing/invoice.h"
#include "pricing/plan_yaml.h"
#include "pricing/price_table.h"
#include "pricing/rater.h"
#include "pricing/rollup_records.h"
#include "test_plans.h"

namespace tally {
namespace {

using testing::EventSpec;
using testing::MakeEvent;

const char* const kQwenPlan = R"(
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
            rates: {input: "0.8", cached_input: "0.16", cached_input_explicit: "0.08", cache_write: "1",
                    output: "2"}
          - up_to: 256000
            rates: {input: "2.4", cached_input: "0.48", cached_input_explicit: "0.24", cache_write: "3",
                    output: "20"}
          - up_to: 1000000
            rates: {input: "4.8", cached_input: "0.96", cached_input_explicit: "0.48", cache_write: "6",
                    output: "48"}
        batch: {multiplier: "0.5", cache_hits: not_combined}
      # Only the implicit hit priced: explicit hits bill at cached_input.
      qwen-implicit-only:
        rates: {input: "0.8", cached_input: "0.16", output: "2"}
      # qwen-long: no cache price at all; every hit bills as input.
      qwen-long:
        rates: {input: "0.5", output: "2"}
      # The same rates banded by the uncached input (32,000 a band).
      qwen-uncached:
        band_by: uncached_input
        bands:
          - up_to: 32000
            rates: {input: "0.8", cached_input: "0.16", cached_input_explicit: "0.08", output: "2"}
          - rates: {input: "2.4", cached_input: "0.48", cached_input_explicit: "0.24", output: "20"}
      # Graduated over 40,000-token bands: the hits are the prompt's prefix.
      qwen-graduated:
        band_pricing: graduated
        bands:
          - up_to: 40000
            rates: {input: "0.8", cached_input: "0.16", cached_input_explicit: "0.08", output: "2"}
          - rates: {input: "2.4", cached_input: "0.48", cached_input_explicit: "0.24", output: "20"}
      # Constructed: the same rates under the two other ways batch meets the cache.
      qwen-discounted:
        rates: {input: "0.8", cached_input: "0.16", cached_input_explicit: "0.08", output: "2"}
        batch: {multiplier: "0.5", cache_hits: discounted}
      qwen-full-cache-rate:
        rates: {input: "0.8", cached_input: "0.16", cached_input_explicit: "0.08", output: "2"}
        batch: {multiplier: "0.5", cache_hits: full_cache_rate}
)";

// The issue's call: a 100,000-token prompt with 20,000 implicit and 30,000
// explicit hits, and 1,000 output tokens.
EventSpec IssueCall(const char* model, bool batch = false) {
    return {.model = model,
            .time = "2025-11-03T12:00:00Z",
            .input = 100000,
            .output = 1000,
            .cached = 20000,
            .batch = batch,
            .cached_explicit = 30000};
}

class CacheHitsTest : public ::testing::Test {
   protected:
    CacheHitsTest() : catalog_(testing::MustCatalog({kQwenPlan})) {}

    std::vector<RatedPart> Parts(const EventSpec& spec) {
        Rater rater(catalog_, {}, "qwen", {});
        std::vector<RatedPart> parts;
        RateOutcome outcome = rater.Classify(MakeEvent(spec), &parts);
        EXPECT_EQ(outcome.status, RateStatus::kRated) << outcome.reason;
        return parts;
    }
    Invoice PriceOne(const std::vector<EventSpec>& specs) {
        Rater rater(catalog_, {}, "qwen", {});
        for (const auto& s : specs) {
            RateOutcome o = rater.Add(MakeEvent(s));
            EXPECT_EQ(o.status, RateStatus::kRated) << o.reason;
        }
        std::vector<Invoice> invoices = PriceRollups(catalog_, {}, "qwen", {}, rater.Rollups());
        EXPECT_EQ(invoices.size(), 1u);
        return invoices.empty() ? Invoice{} : invoices.front();
    }
    // The amount of the usage line of `unit` (with `band`, when given), or "none".
    static std::string Line(const Invoice& inv, const std::string& unit, const std::string& band = "") {
        for (const auto& l : inv.lines) {
            if (l.kind == LineKind::kUsage && l.unit == unit && (band.empty() || l.band == band)) {
                return std::to_string(l.quantity) + " " + l.amount.ToString();
            }
        }
        return "none";
    }

    // The exact sum of the usage lines (the subtotal is rounded to the fen).
    static std::string UsageSum(const Invoice& inv) {
        Amount sum = Amount::Zero(inv.subtotal.currency());
        for (const auto& l : inv.lines) {
            if (l.kind == LineKind::kUsage) sum += l.amount;
        }
        return sum.ToString();
    }

    Catalog catalog_;
};

TEST_F(CacheHitsTest, ExplicitHitsAreAStandardUnitThatFallsBackToCachedInputThenInput) {
    UnitTable units;
    ASSERT_TRUE(units.Find("cached_input_explicit").has_value());
    EXPECT_EQ(*units.Find("cached_input_explicit"), kUnitCachedInputExplicit);
    EXPECT_LT(kUnitCachedInputExplicit, kNumStdUnits);
    EXPECT_EQ(UnitFallback(kUnitCachedInputExplicit), std::optional<UnitId>(kUnitCachedInput));
    EXPECT_EQ(UnitFallback(kUnitCachedInput), std::optional<UnitId>(kUnitInput));
    // The other units' names and fallbacks are as before.
    EXPECT_EQ(units.Name(kUnitCacheWrite), "cache_write");
    EXPECT_EQ(units.Name(kUnitCacheWrite1h), "cache_write_1h");
    EXPECT_EQ(units.Name(kUnitOutput), "output");
    EXPECT_EQ(units.Name(kUnitReasoning), "reasoning");
    EXPECT_EQ(UnitFallback(kUnitCacheWrite1h), std::optional<UnitId>(kUnitCacheWrite));
    // Ten extra units still fit beside the standard ones.
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(units.Intern("x" + std::to_string(i)).has_value()) << i;
    EXPECT_FALSE(units.Intern("one-too-many").has_value());
}

TEST_F(CacheHitsTest, BothKindsOfHitAreTakenOutOfTheUncachedInput) {
    std::vector<RatedPart> parts = Parts(IssueCall("qwen-plus"));
    ASSERT_EQ(parts.size(), 1u);
    // 100,000 - 20,000 - 30,000 = 50,000 uncached (a custom unit on top billed 80,000).
    EXPECT_EQ(parts[0].quantities[kUnitInput], 50000);
    EXPECT_EQ(parts[0].quantities[kUnitCachedInput], 20000);
    EXPECT_EQ(parts[0].quantities[kUnitCachedInputExplicit], 30000);
    EXPECT_EQ(parts[0].key.cell.band, 0);  // banded by the whole prompt: 100,000 <= 128,000
}

TEST_F(CacheHitsTest, AlibabaSheetTheIssuesCallBillsEachKindAtItsRate) {
    Invoice inv = PriceOne({IssueCall("qwen-plus")});
    EXPECT_EQ(inv.error, "");
    // By hand, CNY per 1M tokens (band 0 < T <= 128K):
    //   input                 50,000 x 0.8  / 1M = 0.04
    //   cached_input          20,000 x 0.16 / 1M = 0.0032  (implicit hit, 20 % of 0.8)
    //   cached_input_explicit 30,000 x 0.08 / 1M = 0.0024  (explicit hit, 10 % of 0.8)
    //   output                 1,000 x 2    / 1M = 0.002
    //   sum of the lines                          0.0476
    EXPECT_EQ(Line(inv, "input"), "50000 0.04");
    EXPECT_EQ(Line(inv, "cached_input"), "20000 0.0032");
    EXPECT_EQ(Line(inv, "cached_input_explicit"), "30000 0.0024");
    EXPECT_EQ(Line(inv, "output"), "1000 0.002");
    EXPECT_EQ(UsageSum(inv), "0.0476");
    // The explicit line comes right after the implicit one.
    std::vector<std::string> units;
    for (const auto& l : inv.lines) {
        if (l.kind == LineKind::kUsage) units.push_back(l.unit);
    }
    EXPECT_EQ(units, (std::vector<std::string>{"input", "cached_input", "cached_input_explicit", "output"}));
}

TEST_F(CacheHitsTest, AlibabaSheetExplicitCacheCreationIsACacheWriteInTheSecondBand) {
    // 200,000-token prompt (128K < T <= 256K): 40,000 implicit hits, 60,000
    // explicit hits, 10,000 tokens written to a new explicit cache, 500 output.
    Invoice inv = PriceOne({{.model = "qwen-plus",
                             .input = 200000,
                             .output = 500,
                             .cached = 40000,
                             .cache_write = 10000,
                             .cached_explicit = 60000}});
    // By hand, band 2 (input 2.4, so 0.48 / 0.24 / 3 = 20 % / 10 % / 125 %):
    //   input                 90,000 x 2.4  / 1M = 0.216
    //   cached_input          40,000 x 0.48 / 1M = 0.0192
    //   cached_input_explicit 60,000 x 0.24 / 1M = 0.0144
    //   cache_write           10,000 x 3    / 1M = 0.03
    //   output                   500 x 20   / 1M = 0.01
    //   sum of the lines                          0.2896
    EXPECT_EQ(Line(inv, "input", "128001-256000"), "90000 0.216");
    EXPECT_EQ(Line(inv, "cached_input", "128001-256000"), "40000 0.0192");
    EXPECT_EQ(Line(inv, "cached_input_explicit", "128001-256000"), "60000 0.0144");
    EXPECT_EQ(Line(inv, "cache_write", "128001-256000"), "10000 0.03");
    EXPECT_EQ(Line(inv, "output", "128001-256000"), "500 0.01");
    EXPECT_EQ(UsageSum(inv), "0.2896");
}

TEST_F(CacheHitsTest, ExplicitHitsOfAModelThatDoesNotPriceThemFallBack) {
    // Implicit price only: 30,000 explicit hits at cached_input's 0.16 = 0.0048,
    // on their own line.
    Invoice implicit_only = PriceOne({IssueCall("qwen-implicit-only")});
    EXPECT_EQ(Line(implicit_only, "input"), "50000 0.04");
    EXPECT_EQ(Line(implicit_only, "cached_input"), "20000 0.0032");
    EXPECT_EQ(Line(implicit_only, "cached_input_explicit"), "30000 0.0048");
    // qwen-long, no cache price: every token of the prompt at 0.5 per 1M:
    // 50,000 + 20,000 + 30,000 = 100,000 x 0.5 / 1M = 0.05 over three lines.
    Invoice no_cache = PriceOne({IssueCall("qwen-long")});
    EXPECT_EQ(Line(no_cache, "input"), "50000 0.025");
    EXPECT_EQ(Line(no_cache, "cached_input"), "20000 0.01");
    EXPECT_EQ(Line(no_cache, "cached_input_explicit"), "30000 0.015");
    EXPECT_EQ(UsageSum(no_cache), "0.052");  // + output 1,000 x 2 / 1M = 0.002
}

TEST_F(CacheHitsTest, AlibabaBatchDoesNotCombineWithEitherKindOfHit) {
    // Batch is half price and gets no cache price: the whole 100,000-token
    // prompt bills as input at 0.8 x 0.5 = 0.4 per 1M = 0.04; output 1,000 x
    // 2 x 0.5 / 1M = 0.001.
    std::vector<RatedPart> parts = Parts(IssueCall("qwen-plus", /*batch=*/true));
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].quantities[kUnitInput], 100000);
    EXPECT_EQ(parts[0].quantities[kUnitCachedInput], 0);
    EXPECT_EQ(parts[0].quantities[kUnitCachedInputExplicit], 0);
    Invoice inv = PriceOne({IssueCall("qwen-plus", true)});
    EXPECT_EQ(Line(inv, "input"), "100000 0.04");
    EXPECT_EQ(Line(inv, "cached_input_explicit"), "none");
    EXPECT_EQ(UsageSum(inv), "0.041");
}

TEST_F(CacheHitsTest, DiscountedAndFullCacheRateTreatExplicitHitsAsImplicitOnes) {
    // discounted: 30,000 x 0.08 x 0.5 / 1M = 0.0012; implicit 20,000 x 0.16 x 0.5 / 1M = 0.0016.
    Invoice discounted = PriceOne({IssueCall("qwen-discounted", true)});
    EXPECT_EQ(Line(discounted, "cached_input_explicit"), "30000 0.0012");
    EXPECT_EQ(Line(discounted, "cached_input"), "20000 0.0016");
    EXPECT_EQ(Line(discounted, "input"), "50000 0.02");  // 50,000 x 0.4 / 1M
    // full_cache_rate: hits keep 0.08 and 0.16: 0.0024 and 0.0032; input still halved.
    Invoice full = PriceOne({IssueCall("qwen-full-cache-rate", true)});
    EXPECT_EQ(Line(full, "cached_input_explicit"), "30000 0.0024");
    EXPECT_EQ(Line(full, "cached_input"), "20000 0.0032");
    EXPECT_EQ(Line(full, "input"), "50000 0.02");
}

TEST_F(CacheHitsTest, BandByUncachedInputLeavesOutBothKindsOfHit) {
    // 100,000 - 20,000 - 30,000 - 20,000 writes = 30,000 uncached: band 1
    // (<= 32,000). Counting only the implicit hits it would be 60,000: band 2.
    EventSpec s = IssueCall("qwen-uncached");
    s.cache_write = 20000;
    std::vector<RatedPart> parts = Parts(s);
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].key.cell.band, 0);
    EXPECT_EQ(parts[0].quantities[kUnitInput], 30000);
    s.cached_explicit = 27999;  // 32,001 uncached: band 2
    parts = Parts(s);
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].key.cell.band, 1);
}

TEST_F(CacheHitsTest, GraduatedBandsSliceImplicitThenExplicitHitsThenTheUncachedInput) {
    std::vector<RatedPart> parts = Parts(IssueCall("qwen-graduated"));
    ASSERT_EQ(parts.size(), 2u);
    // Band 1 (first 40,000 prompt tokens): 20,000 implicit + 20,000 explicit.
    EXPECT_EQ(parts[0].quantities[kUnitCachedInput], 20000);
    EXPECT_EQ(parts[0].quantities[kUnitCachedInputExplicit], 20000);
    EXPECT_EQ(parts[0].quantities[kUnitInput], 0);
    // Band 2: the other 10,000 explicit and the 50,000 uncached.
    EXPECT_EQ(parts[1].quantities[kUnitCachedInput], 0);
    EXPECT_EQ(parts[1].quantities[kUnitCachedInputExplicit], 10000);
    EXPECT_EQ(parts[1].quantities[kUnitInput], 50000);
}

TEST_F(CacheHitsTest, TheRaterRejectsHitsAndWritesAboveTheWholePrompt) {
    Rater rater(catalog_, {}, "qwen", {});
    std::vector<RatedPart> parts;
    // 60 + 50 > 100: each kind alone fits.
    RateOutcome o = rater.Classify(MakeEvent({.model = "qwen-plus", .input = 100, .cached = 60,
                                              .cached_explicit = 50}), &parts);
    EXPECT_EQ(o.status, RateStatus::kRejected);
    EXPECT_NE(o.reason.find("cached_input_explicit_tokens"), std::string::npos) << o.reason;
    EXPECT_NE(o.reason.find("exceed input_tokens (100)"), std::string::npos) << o.reason;
    o = rater.Classify(MakeEvent({.model = "qwen-plus", .input = 100, .cached = 60, .cached_explicit = -1}), &parts);
    EXPECT_EQ(o.status, RateStatus::kRejected);
    EXPECT_EQ(o.reason, "a token count is negative");
    o = rater.Classify(MakeEvent({.model = "qwen-plus", .input = 100, .cached = 60, .cached_explicit = 40}), &parts);
    EXPECT_EQ(o.status, RateStatus::kRated) << o.reason;
}

TEST_F(CacheHitsTest, ThePriceTableShowsExplicitHitsWhereTheModelPricesThem) {
    const std::vector<PriceCell> table = ResolvePriceTable(catalog_.plans[0].versions[0], catalog_.units);
    auto cell = [&](const std::string& model, const std::string& band, bool batch) -> const PriceCell* {
        for (const PriceCell& c : table) {
            if (c.model == model && c.band == band && c.batch == batch && c.window.empty() && !c.thinking) return &c;
        }
        ADD_FAILURE() << "no cell " << model << " " << band << " batch=" << batch;
        return nullptr;
    };
    auto rates = [](const PriceCell* c) {
        std::string s;
        for (const PriceCellRate& r : c->rates) {
            const std::string rate = r.rate ? r.rate->price().ToString() + "/" + std::to_string(r.rate->per()) : "none";
            s += r.unit_name + "=" + rate + " ";
        }
        return s;
    };
    const PriceCell* plus = cell("qwen-plus", "128001-256000", false);
    ASSERT_NE(plus, nullptr);
    EXPECT_EQ(rates(plus),
              "input=2.4/1000000 cached_input=0.48/1000000 cached_input_explicit=0.24/1000000 "
              "cache_write=3/1000000 cache_write_1h=3/1000000 output=20/1000000 ");
    // Batch does not combine with the cache: no cache rows, input at half price.
    const PriceCell* plus_batch = cell("qwen-plus", "0-128000", true);
    ASSERT_NE(plus_batch, nullptr);
    EXPECT_EQ(rates(plus_batch), "input=0.4/1000000 output=1/1000000 ");
    // Only the implicit kind priced: no row of its own (explicit hits bill at 0.16).
    const PriceCell* implicit_only = cell("qwen-implicit-only", "all", false);
    ASSERT_NE(implicit_only, nullptr);
    EXPECT_EQ(rates(implicit_only),
              "input=0.8/1000000 cached_input=0.16/1000000 cache_write=0.8/1000000 cache_write_1h=0.8/1000000 "
              "output=2/1000000 ");
    // discounted halves the explicit rate, full_cache_rate keeps it.
    const PriceCell* discounted = cell("qwen-discounted", "all", true);
    const PriceCell* full = cell("qwen-full-cache-rate", "all", true);
    ASSERT_NE(discounted, nullptr);
    ASSERT_NE(full, nullptr);
    EXPECT_NE(rates(discounted).find("cached_input_explicit=0.04/1000000"), std::string::npos) << rates(discounted);
    EXPECT_NE(rates(full).find("cached_input_explicit=0.08/1000000"), std::string::npos) << rates(full);
}

// What `tally rate` prices (the rater's rollups) and what the ledger prices
// (the same rollups as stored records, read back) agree on explicit hits.
TEST_F(CacheHitsTest, TheLedgerAndTallyRateAgreeOnExplicitHits) {
    std::vector<EventSpec> specs = {IssueCall("qwen-plus"),
                                    IssueCall("qwen-plus", true),
                                    IssueCall("qwen-implicit-only"),
                                    IssueCall("qwen-long"),
                                    IssueCall("qwen-graduated"),
                                    IssueCall("qwen-discounted", true),
                                    {.customer = "c2", .model = "qwen-plus", .input = 200000, .output = 500,
                                     .cached = 40000, .cache_write = 10000, .cached_explicit = 60000}};
    Rater direct(catalog_, {}, "qwen", {});
    std::vector<std::vector<RollupRecord>> batches;
    for (const EventSpec& s : specs) {
        ASSERT_EQ(direct.Add(MakeEvent(s)).status, RateStatus::kRated);
        Rater one(catalog_, {}, "qwen", {});
        ASSERT_EQ(one.Add(MakeEvent(s)).status, RateStatus::kRated);
        batches.push_back(ToRecords(catalog_, one.Rollups()));
    }
    std::vector<RollupRecord> stored;
    bool has_explicit_row = false;
    for (const auto& b : batches) {
        for (const RollupRecord& r : b) {
            has_explicit_row = has_explicit_row || r.unit == "cached_input_explicit";  // stored by name
            stored.push_back(r);
        }
    }
    EXPECT_TRUE(has_explicit_row);
    RecordsRead read = FromRecords(catalog_, stored);
    EXPECT_EQ(read.unresolved, 0);
    auto text = [](const std::vector<Invoice>& invoices) {
        std::string s;
        for (const Invoice& inv : invoices) {
            s += inv.customer + " " + inv.subtotal.ToString() + " " + inv.error + "\n";
            for (const InvoiceLine& l : inv.lines) {
                s += "  " + l.model + " " + l.unit + " " + l.band + (l.batch ? " batch " : " ") +
                     std::to_string(l.quantity) + " " + l.amount.ToString() + "\n";
            }
        }
        return s;
    };
    const std::string via_rate = text(PriceRollups(catalog_, {}, "qwen", {}, direct.Rollups()));
    EXPECT_EQ(text(PriceRollups(catalog_, {}, "qwen", {}, read.rollups)), via_rate);
    EXPECT_NE(via_rate.find("qwen-plus cached_input_explicit 0-128000 30000 0.0024"), std::string::npos) << via_rate;
}

// --- Batch meets cache hits must be stated -------------------------------

// Parses `text`; returns the diagnostics as "line:col: message" lines.
// Errors only: warnings (a missing cache price, a window's zone) are tested on their own.
std::vector<std::string> Problems(const std::string& text) { return testing::PlanDiagnostics(text, Severity::kError); }
using testing::Dump;

const char* const kHead = R"(plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    models:
)";

TEST(BatchMeetsCache, BatchAndCacheHitsWithoutCacheHitsIsAnErrorAtTheBatchNode) {
    // Alibaba's qwen-plus as a salesperson first writes it: batch half price, no word on the cache.
    auto p = Problems(std::string(kHead) + R"(      qwen-plus:
        rates: {input: "0.8", cached_input: "0.16", output: "2"}
        batch: {multiplier: "0.5"}
)");
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0].substr(0, 6), "10:16:") << p[0];
    for (const char* needle : {"model 'qwen-plus' prices batch calls and cache hits but does not say how they meet",
                               "write cache_hits under batch", "discounted (", "full_cache_rate (",
                               "not_combined (", "its hits bill as input"}) {
        EXPECT_NE(p[0].find(needle), std::string::npos) << needle << "\n" << p[0];
    }
    // A block mapping: the error is at its first key.
    p = Problems(std::string(kHead) + R"(      qwen-plus:
        rates: {input: "0.8", cached_input: "0.16", output: "2"}
        batch:
          multiplier: "0.5"
)");
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0].substr(0, 6), "11:11:") << p[0];
}

TEST(BatchMeetsCache, ExplicitHitsAloneAndBandsAndWindowsCountAsPricingCacheHits) {
    auto explicit_only = Problems(std::string(kHead) + R"(      m:
        bands:
          - up_to: 128000
            rates: {input: "0.8", output: "2"}
          - rates: {input: "2.4", cached_input_explicit: "0.24", output: "20"}
        batch: {multiplier: "0.5"}
)");
    // cached_input_explicit falls back to cached_input then input: band 1 prices it, so no "lacking" error.
    ASSERT_EQ(explicit_only.size(), 1u) << Dump(explicit_only);
    EXPECT_NE(explicit_only[0].find("13:16: model 'm' prices batch calls and cache hits"), std::string::npos)
        << explicit_only[0];
    auto window = Problems(std::string(kHead) + R"(      m:
        rates: {input: "1", output: "2"}
        windows:
          - {name: night, start: "00:30", end: "08:30", rates: {input: "0.5", cached_input: "0.1", output: "1"}}
        batch: {multiplier: "0.5"}
)");
    ASSERT_EQ(window.size(), 1u) << Dump(window);
    EXPECT_NE(window[0].find("12:16: model 'm' prices batch calls and cache hits"), std::string::npos) << window[0];
}

TEST(BatchMeetsCache, BatchRatesWithoutABatchNodeAreToldToAddOne) {
    // Volcano's Doubao: batch given as its own table, cache hits priced.
    auto p = Problems(std::string(kHead) + R"(      doubao-seed-1.6:
        bands:
          - up_to: 32000
            rates: {input: "0.8", cached_input: "0.16", output: "8"}
            batch_rates: {input: "0.4", output: "4"}
          - rates: {input: "1.2", cached_input: "0.16", output: "16"}
            batch_rates: {input: "0.6", output: "8"}
)");
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_NE(p[0].find("12:26: model 'doubao-seed-1.6' prices batch calls and cache hits"), std::string::npos)
        << p[0];
    EXPECT_NE(p[0].find("write batch: {cache_hits: ...}, one of: discounted"), std::string::npos) << p[0];
    // Model-level shorthand: at its batch_rates.
    p = Problems(std::string(kHead) + R"(      m:
        rates: {input: "0.8", cached_input: "0.16", output: "8"}
        batch_rates: {input: "0.4", output: "4"}
)");
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_EQ(p[0].substr(0, 6), "10:22:") << p[0];
    // Saying it is enough.
    p = Problems(std::string(kHead) + R"(      m:
        rates: {input: "0.8", cached_input: "0.16", output: "8"}
        batch_rates: {input: "0.4", output: "4"}
        batch: {cache_hits: full_cache_rate}
)");
    EXPECT_TRUE(p.empty()) << Dump(p);
}

// Alibaba: batch never combines with cache hits; a batch table's cache-hit
// rate under not_combined would never be used: refused at cache_hits.
TEST(BatchMeetsCache, NotCombinedRefusesABatchTablesCacheHitRate) {
    auto p = Problems(std::string(kHead) + R"(      m:
        rates: {input: "0.8", cached_input: "0.16", output: "2"}
        batch_rates: {input: "0.4", cached_input: "0.1", output: "1"}
        batch: {cache_hits: not_combined}
)");
    ASSERT_EQ(p.size(), 1u) << Dump(p);
    EXPECT_NE(p[0].find("cache_hits: not_combined bills a batch call's cache hits as input"), std::string::npos)
        << p[0];
    EXPECT_EQ(p[0].substr(0, 6), "11:29:") << p[0];  // at not_combined
    p = Problems(std::string(kHead) + R"(      m:
        rates: {input: "0.8", cached_input: "0.16", output: "2"}
        batch_rates: {input: "0.4", cached_input: "0.1", output: "1"}
        batch: {cache_hits: full_cache_rate}
)");
    EXPECT_TRUE(p.empty()) << Dump(p);
}

TEST(BatchMeetsCache, NoCachePriceOrNoBatchOrAStatedChoiceNeedsNothing) {
    for (const char* choice : {"discounted", "full_cache_rate", "not_combined"}) {
        auto p = Problems(std::string(kHead) + R"(      m:
        rates: {input: "0.8", cached_input: "0.16", cached_input_explicit: "0.08", output: "2"}
        batch: {multiplier: "0.5", cache_hits: )" + choice + "}\n");
        EXPECT_TRUE(p.empty()) << choice << "\n" << Dump(p);
    }
    // qwen-long: batch half price, no cache price (a warning, not an error).
    auto no_cache = Problems(std::string(kHead) + R"(      qwen-long:
        rates: {input: "0.5", output: "2"}
        batch: {multiplier: "0.5"}
)");
    EXPECT_TRUE(no_cache.empty()) << Dump(no_cache);
    auto no_batch = Problems(std::string(kHead) + R"(      m:
        rates: {input: "0.8", cached_input: "0.16", output: "2"}
)");
    EXPECT_TRUE(no_batch.empty()) << Dump(no_batch);
    // A malformed batch is reported once, where it is read.
    auto bad = Problems(std::string(kHead) + R"(      m:
        rates: {input: "0.8", cached_input: "0.16", output: "2"}
        batch: half
)");
    ASSERT_EQ(bad.size(), 1u) << Dump(bad);
    EXPECT_EQ(bad[0].find("prices batch calls and cache hits"), std::string::npos) << bad[0];
}

}  // namespace
}  // namespace tally
