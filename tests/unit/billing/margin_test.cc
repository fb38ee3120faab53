#include "billing/margin.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "pricing/invoice.h"
#include "pricing/plan_yaml.h"
#include "pricing/rater.h"
#include "test_plans.h"

namespace tally::billing {
namespace {

using testing::EventSpec;
using testing::MakeEvent;

// Prices per 1000 tokens, in Asia/Shanghai (UTC+8, no DST): a day there
// starts at 16:00 UTC the day before.
const char* const kPlan = R"(
plan: m
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    rates_per: 1000
    tax_percent: "6"
    models:
      a: {rates: {input: "2", output: "4"}}
      b: {rates: {input: "1", output: "1"}}
      z: {rates: {input: "0", output: "0"}}
      u: {rates: {input: "1", output: "1"}}
      usd: {rates: {input: "1", output: "1"}}
    free_quotas:
      - {name: trial, models: [b], tokens: 1000}
)";

const char* const kSubscriptions = R"(
subscriptions:
  - {customer: committed, plan: m, minimum_commitment: "10"}
  - {customer: thirds, plan: m, minimum_commitment: "1"}
  - {customer: uneven, plan: m, minimum_commitment: "1"}
  - {customer: zero, plan: m, minimum_commitment: "2"}
  - customer: discounted
    plan: m
    discounts: [{name: contract, percent: "50"}]
)";

// Cost per 1000 tokens. Model u has no cost; usd costs in another currency.
const char* const kCosts = R"(
cost_card: serving
versions:
  - version: c1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    rates_per: 1000
    models:
      a: {rates: {input: "1", output: "3"}}
      b: {rates: {input: "0.5", output: "0.5"}}
      z: {rates: {input: "0.1", output: "0.1"}}
      usd: {currency: USD, rates: {input: "0.1", output: "0.1"}}
      pro: {rates: {input: "6", output: "10"}}   # serves routed calls; the plan does not price it
)";

class MarginTest : public ::testing::Test {
   protected:
    MarginTest() : catalog_(testing::MustCatalog({kPlan})) {
        subscriptions_ = testing::MustSubscriptions(kSubscriptions, &catalog_);
        Diagnostics d;
        auto card = ParseCostCard(kCosts, "costs.yaml", &d);
        EXPECT_TRUE(card.has_value());
        if (card) {
            EXPECT_TRUE(costs_.Add(std::move(*card), &d));
        }
        for (const auto& x : d) ADD_FAILURE() << x.ToString();
    }

    std::vector<MarginRow> Rows(const std::vector<EventSpec>& specs) {
        Rater rater(catalog_, subscriptions_, "m", {});
        for (const auto& s : specs) {
            RateOutcome o = rater.Add(MakeEvent(s));
            EXPECT_EQ(o.status, RateStatus::kRated) << o.reason;
        }
        rollups_ = rater.Rollups();
        invoices_ = PriceRollups(catalog_, subscriptions_, "m", {}, rollups_);
        return ComputeMarginRows(catalog_, {}, rollups_, invoices_, costs_);
    }

    static std::string Cost(const MarginFigures& f) { return f.cost ? f.cost->ToString() : "unknown"; }
    static std::string Margin(const MarginFigures& f) { return f.margin ? f.margin->ToString() : "unknown"; }

    // Revenue of the rows of one customer adds up to its invoice's subtotal exactly.
    void ExpectRowsSumToSubtotal(const std::vector<MarginRow>& rows) {
        for (const Invoice& inv : invoices_) {
            Amount sum = Amount::Zero(inv.currency);
            for (const MarginRow& r : rows) {
                if (r.customer == inv.customer && r.plan == inv.plan) sum += r.figures.revenue;
            }
            EXPECT_EQ(sum, inv.subtotal) << inv.customer << ": " << sum.ToString() << " vs " << inv.subtotal.ToString();
        }
    }

    Catalog catalog_;
    std::vector<Subscription> subscriptions_;
    CostCatalog costs_;
    std::vector<Rollup> rollups_;
    std::vector<Invoice> invoices_;
};

// A call fully inside the free quota: revenue 0, cost 0.4, margin -0.4.
TEST_F(MarginTest, AFreeQuotaMakesANegativeRow) {
    // b: 600 input + 200 output = 800 tokens <= the 1000 free: subtotal 0.
    // cost = 600 x 0.5 / 1000 + 200 x 0.5 / 1000 = 0.3 + 0.1 = 0.4.
    auto rows = Rows({{.customer = "free", .model = "b", .time = "2025-11-03T04:00:00Z", .input = 600, .output = 200}});
    ASSERT_EQ(rows.size(), 1u);
    const MarginFigures& f = rows[0].figures;
    EXPECT_EQ(rows[0].customer, "free");
    EXPECT_EQ(rows[0].plan, "m");
    EXPECT_EQ(rows[0].model, "b");
    EXPECT_EQ(rows[0].day, "2025-11-03");
    EXPECT_EQ(f.revenue.ToString(), "0");
    EXPECT_EQ(Cost(f), "0.4");
    EXPECT_EQ(Margin(f), "-0.4");
    EXPECT_TRUE(f.negative);
    EXPECT_EQ(f.MarginPercentText(), "n/a");  // revenue 0
    EXPECT_EQ(f.calls, 1);
    EXPECT_TRUE(f.error.empty());
    auto by_customer = GroupMarginRows(rows, MarginGroup::kCustomer);
    ASSERT_EQ(by_customer.size(), 1u);
    EXPECT_TRUE(by_customer[0].figures.negative);
}

// Revenue follows list value; days are Shanghai days, so 16:00 UTC on
// 2025-11-03 is already 2025-11-04.
TEST_F(MarginTest, AllocatesBySharesOfListValueOnShanghaiDays) {
    auto rows = Rows({
        // a, 23:00 Shanghai on 11-03: list 1000 x 2/1000 + 500 x 4/1000 = 2 + 2 = 4.
        {.customer = "c", .model = "a", .time = "2025-11-03T15:00:00Z", .input = 1000, .output = 500},
        // a, 00:00 Shanghai on 11-04 (UTC still 11-03): list 500 x 2/1000 = 1.
        {.customer = "c", .model = "a", .time = "2025-11-03T16:00:00Z", .input = 500},
        // b, 10:00 Shanghai on 11-04: 3000 input, 1000 free; list 3000 x 1/1000 = 3, billed 2000 x 1/1000 = 2.
        {.customer = "c", .model = "b", .time = "2025-11-04T02:00:00Z", .input = 3000},
    });
    // subtotal = 4 + 1 + 2 = 7.00 (tax comes after and is not revenue); list total = 4 + 1 + 3 = 8.
    ASSERT_EQ(invoices_.size(), 1u);
    EXPECT_EQ(invoices_[0].subtotal.ToString(2), "7.00");
    EXPECT_EQ(invoices_[0].total.ToString(2), "7.42");
    ASSERT_EQ(rows.size(), 3u);
    // (a, 11-03): 7 x 4/8 = 3.5; cost 1000 x 1/1000 + 500 x 3/1000 = 2.5; margin 1; 1/3.5 = 28.571..% -> 28.57.
    EXPECT_EQ(rows[0].model, "a");
    EXPECT_EQ(rows[0].day, "2025-11-03");
    EXPECT_EQ(rows[0].figures.revenue.ToString(), "3.5");
    EXPECT_EQ(Cost(rows[0].figures), "2.5");
    EXPECT_EQ(Margin(rows[0].figures), "1");
    EXPECT_EQ(rows[0].figures.MarginPercentText(), "28.57");
    EXPECT_FALSE(rows[0].figures.negative);
    // (a, 11-04): 7 x 1/8 = 0.875; cost 500 x 1/1000 = 0.5; margin 0.375; 0.375/0.875 = 42.857..% -> 42.86.
    EXPECT_EQ(rows[1].model, "a");
    EXPECT_EQ(rows[1].day, "2025-11-04");
    EXPECT_EQ(rows[1].figures.revenue.ToString(), "0.875");
    EXPECT_EQ(Cost(rows[1].figures), "0.5");
    EXPECT_EQ(Margin(rows[1].figures), "0.375");
    EXPECT_EQ(rows[1].figures.MarginPercentText(), "42.86");
    // (b, 11-04): 7 x 3/8 = 2.625; cost 3000 x 0.5/1000 = 1.5; margin 1.125; 1.125/2.625 = 42.857..% -> 42.86.
    EXPECT_EQ(rows[2].model, "b");
    EXPECT_EQ(rows[2].day, "2025-11-04");
    EXPECT_EQ(rows[2].figures.revenue.ToString(), "2.625");
    EXPECT_EQ(Cost(rows[2].figures), "1.5");
    EXPECT_EQ(Margin(rows[2].figures), "1.125");
    ExpectRowsSumToSubtotal(rows);

    // By day: 11-03 = 3.5 / 2.5; 11-04 = 0.875 + 2.625 = 3.5 / 0.5 + 1.5 = 2; margin 1.5, 1.5/3.5 = 42.86 %.
    auto by_day = GroupMarginRows(rows, MarginGroup::kDay);
    ASSERT_EQ(by_day.size(), 2u);
    EXPECT_EQ(by_day[0].key, "2025-11-03");
    EXPECT_EQ(by_day[0].figures.revenue.ToString(), "3.5");
    EXPECT_EQ(by_day[1].key, "2025-11-04");
    EXPECT_EQ(by_day[1].figures.revenue.ToString(), "3.5");
    EXPECT_EQ(Cost(by_day[1].figures), "2");
    EXPECT_EQ(Margin(by_day[1].figures), "1.5");
    EXPECT_EQ(by_day[1].figures.MarginPercentText(), "42.86");
    EXPECT_EQ(by_day[1].figures.calls, 2);
    // By model: a = 4.375 / 3 (margin 1.375, 31.43 %), b = 2.625 / 1.5.
    auto by_model = GroupMarginRows(rows, MarginGroup::kModel);
    ASSERT_EQ(by_model.size(), 2u);
    EXPECT_EQ(by_model[0].key, "a");
    EXPECT_EQ(by_model[0].figures.revenue.ToString(), "4.375");
    EXPECT_EQ(Cost(by_model[0].figures), "3");
    EXPECT_EQ(by_model[0].figures.MarginPercentText(), "31.43");
    // By customer and by plan: everything, revenue 7, cost 2.5 + 0.5 + 1.5 = 4.5, margin 2.5, 2.5/7 = 35.714..%.
    for (MarginGroup g : {MarginGroup::kCustomer, MarginGroup::kPlan}) {
        auto all = GroupMarginRows(rows, g);
        ASSERT_EQ(all.size(), 1u);
        EXPECT_EQ(all[0].key, g == MarginGroup::kCustomer ? "c" : "m");
        EXPECT_EQ(all[0].figures.revenue.ToString(), "7");
        EXPECT_EQ(Cost(all[0].figures), "4.5");
        EXPECT_EQ(Margin(all[0].figures), "2.5");
        EXPECT_EQ(all[0].figures.MarginPercentText(), "35.71");
    }
}

// The commitment true-up is revenue too, spread like the rest.
TEST_F(MarginTest, AllocatesACommitmentTrueUp) {
    auto rows = Rows({
        // 11-03: a 1000 input, list 2.00.  11-04: a 3000 input, list 6.00.
        {.customer = "committed", .model = "a", .time = "2025-11-03T04:00:00Z", .input = 1000},
        {.customer = "committed", .model = "a", .time = "2025-11-04T04:00:00Z", .input = 3000},
    });
    // usage 8.00 < commitment 10.00: a true-up line of 2.00, subtotal 10.00.
    ASSERT_EQ(invoices_.size(), 1u);
    EXPECT_EQ(invoices_[0].subtotal.ToString(2), "10.00");
    ASSERT_EQ(rows.size(), 2u);
    // 10 x 2/8 = 2.5 (cost 1, margin 1.5, 60 %); 10 x 6/8 = 7.5 (cost 3, margin 4.5, 60 %).
    EXPECT_EQ(rows[0].figures.revenue.ToString(), "2.5");
    EXPECT_EQ(Cost(rows[0].figures), "1");
    EXPECT_EQ(rows[0].figures.MarginPercentText(), "60.00");
    EXPECT_EQ(rows[1].figures.revenue.ToString(), "7.5");
    EXPECT_EQ(Margin(rows[1].figures), "4.5");
    ExpectRowsSumToSubtotal(rows);
}

// 1.00 over three equal weights: 0.333333333333333333 each (truncated at
// 10^-18) leaves 10^-18, which goes on the first row (equal weights).
TEST_F(MarginTest, PutsTheResidueOnTheFirstOfEqualWeights) {
    auto rows = Rows({
        {.customer = "thirds", .model = "a", .time = "2025-11-03T04:00:00Z", .input = 1},
        {.customer = "thirds", .model = "a", .time = "2025-11-04T04:00:00Z", .input = 1},
        {.customer = "thirds", .model = "a", .time = "2025-11-05T04:00:00Z", .input = 1},
    });
    // usage 3 x 0.002 = 0.006 -> 0.01; commitment true-up 0.99; subtotal 1.00.
    EXPECT_EQ(invoices_.at(0).subtotal.ToString(2), "1.00");
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].figures.revenue.ToString(), "0.333333333333333334");
    EXPECT_EQ(rows[1].figures.revenue.ToString(), "0.333333333333333333");
    EXPECT_EQ(rows[2].figures.revenue.ToString(), "0.333333333333333333");
    ExpectRowsSumToSubtotal(rows);
}

// 1.00 over weights 1 and 2: 0.333333333333333333 and
// 0.666666666666666666; the residue 10^-18 goes on the larger weight.
TEST_F(MarginTest, PutsTheResidueOnTheLargestWeight) {
    auto rows = Rows({
        {.customer = "uneven", .model = "a", .time = "2025-11-03T04:00:00Z", .input = 1},
        {.customer = "uneven", .model = "a", .time = "2025-11-04T04:00:00Z", .input = 2},
    });
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].figures.revenue.ToString(), "0.333333333333333333");
    EXPECT_EQ(rows[1].figures.revenue.ToString(), "0.666666666666666667");
    ExpectRowsSumToSubtotal(rows);
}

// No list value anywhere (a free model under a commitment): by calls.
TEST_F(MarginTest, AllocatesByCallsWhenTheListValueIsZero) {
    auto rows = Rows({
        {.customer = "zero", .model = "z", .time = "2025-11-03T04:00:00Z", .input = 1000},
        {.customer = "zero", .model = "z", .time = "2025-11-04T04:00:00Z", .input = 1000},
        {.customer = "zero", .model = "z", .time = "2025-11-04T05:00:00Z", .input = 1000},
        {.customer = "zero", .model = "z", .time = "2025-11-04T06:00:00Z", .input = 1000},
    });
    // subtotal = the commitment 2.00; calls 1 and 3: 0.5 and 1.5.
    // cost 1000 x 0.1/1000 = 0.1 per call: 0.1 and 0.3.
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].figures.revenue.ToString(), "0.5");
    EXPECT_EQ(rows[1].figures.revenue.ToString(), "1.5");
    EXPECT_EQ(Cost(rows[1].figures), "0.3");
    EXPECT_EQ(Margin(rows[1].figures), "1.2");
    EXPECT_EQ(rows[1].figures.MarginPercentText(), "80.00");
    ExpectRowsSumToSubtotal(rows);
}

// A discount halves revenue: below cost, the row is negative.
TEST_F(MarginTest, ADeepDiscountMakesANegativeMarginWithAPercent) {
    // a: 1000 output, list 4.00, billed 2.00 after 50 %; cost 1000 x 3/1000 = 3.
    // margin -1; -1/2 = -50.00 %.
    auto rows = Rows({{.customer = "discounted", .model = "a", .time = "2025-11-03T04:00:00Z", .output = 1000}});
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].figures.revenue.ToString(), "2");
    EXPECT_EQ(Margin(rows[0].figures), "-1");
    EXPECT_EQ(rows[0].figures.MarginPercentText(), "-50.00");
    EXPECT_TRUE(rows[0].figures.negative);
}

// Unknown cost is said, never zero; another currency is an error, never mixed.
TEST_F(MarginTest, UnknownCostAndForeignCurrency) {
    auto rows = Rows({
        {.customer = "c", .model = "a", .time = "2025-11-03T04:00:00Z", .input = 1000},
        {.customer = "c", .model = "u", .time = "2025-11-03T04:00:00Z", .input = 1000},
        {.customer = "c", .model = "usd", .time = "2025-11-03T04:00:00Z", .input = 1000},
    });
    // list: a 2, u 1, usd 1; subtotal 4: revenue 2, 1, 1.
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].model, "a");
    EXPECT_TRUE(rows[0].figures.cost_known());
    EXPECT_EQ(rows[1].model, "u");
    EXPECT_EQ(rows[1].figures.revenue.ToString(), "1");
    EXPECT_FALSE(rows[1].figures.cost_known());
    EXPECT_FALSE(rows[1].figures.margin.has_value());
    EXPECT_EQ(rows[1].figures.MarginPercentText(), "n/a");
    EXPECT_FALSE(rows[1].figures.negative);
    EXPECT_EQ(rows[1].figures.cost_unknown, "no cost card costs model u");
    EXPECT_TRUE(rows[1].figures.error.empty());
    EXPECT_EQ(rows[2].model, "usd");
    EXPECT_EQ(rows[2].figures.revenue.ToString(), "1");
    EXPECT_EQ(rows[2].figures.currency.code(), "CNY");
    EXPECT_FALSE(rows[2].figures.cost_known());
    EXPECT_EQ(rows[2].figures.error, "cost in USD, revenue in CNY: the two are never mixed (no FX)");
    ExpectRowsSumToSubtotal(rows);
    // The customer's total: revenue known (4), cost not (one row unknown), error carried.
    auto by_customer = GroupMarginRows(rows, MarginGroup::kCustomer);
    ASSERT_EQ(by_customer.size(), 1u);
    EXPECT_EQ(by_customer[0].figures.revenue.ToString(), "4");
    EXPECT_FALSE(by_customer[0].figures.cost_known());
    EXPECT_EQ(by_customer[0].figures.error, rows[2].figures.error);
}

TEST_F(MarginTest, OnlyTheInvoicesGivenGetRows) {
    Rows({
        {.customer = "c", .model = "a", .time = "2025-10-03T04:00:00Z", .input = 1000},
        {.customer = "c", .model = "a", .time = "2025-11-03T04:00:00Z", .input = 1000},
    });
    ASSERT_EQ(invoices_.size(), 2u);
    std::vector<Invoice> november = {invoices_[1]};
    ASSERT_EQ(november[0].period, "2025-11");
    auto rows = ComputeMarginRows(catalog_, {}, rollups_, november, costs_);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].day, "2025-11-03");
}

// The Model Router: a call asking for `a` that `pro` served bills at a's
// price (routed_calls defaults to bill_requested) and costs pro's cost.
TEST_F(MarginTest, ARoutedCallIsCostedByItsServedModel) {
    // Revenue: the invoice's subtotal 6.00 split by list value:
    //   unrouted a: 1000 input x 2 / 1000 = 2.00
    //   routed a:   1000 input x 2 / 1000 + 500 output x 4 / 1000 = 4.00
    // Cost: unrouted at a's card, 1000 x 1 / 1000 = 1;
    //   routed at pro's, 1000 x 6 / 1000 + 500 x 10 / 1000 = 11 (a's card would say 2.5).
    auto rows = Rows({{.customer = "routed", .model = "a", .time = "2025-11-03T04:00:00Z", .input = 1000},
                      {.customer = "routed",
                       .model = "a",
                       .time = "2025-11-03T05:00:00Z",
                       .input = 1000,
                       .output = 500,
                       .served_model = "pro"}});
    ASSERT_EQ(invoices_.size(), 1u);
    EXPECT_EQ(invoices_[0].subtotal.ToString(2), "6.00");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].model, "a");
    EXPECT_EQ(rows[0].served_model, "");
    EXPECT_EQ(rows[0].day, "2025-11-03");
    EXPECT_EQ(rows[0].figures.revenue.value().ToString(2), "2.00");
    EXPECT_EQ(rows[0].figures.cost->value().ToString(2), "1.00");
    EXPECT_FALSE(rows[0].figures.negative);
    EXPECT_EQ(rows[1].model, "a");
    EXPECT_EQ(rows[1].served_model, "pro");
    EXPECT_EQ(rows[1].figures.calls, 1);
    EXPECT_EQ(rows[1].figures.revenue.value().ToString(2), "4.00");
    ASSERT_TRUE(rows[1].figures.cost.has_value());
    EXPECT_EQ(rows[1].figures.cost->value().ToString(2), "11.00");
    EXPECT_EQ(rows[1].figures.margin->value().ToString(2), "-7.00");
    EXPECT_EQ(rows[1].figures.MarginPercentText(), "-175.00");
    EXPECT_TRUE(rows[1].figures.negative);
    ExpectRowsSumToSubtotal(rows);

    // --by model groups by the model billed, --by served_model by the model that served.
    const auto by_model = GroupMarginRows(rows, MarginGroup::kModel);
    ASSERT_EQ(by_model.size(), 1u);
    EXPECT_EQ(by_model[0].key, "a");
    EXPECT_EQ(by_model[0].figures.cost->value().ToString(2), "12.00");
    EXPECT_EQ(by_model[0].figures.margin->value().ToString(2), "-6.00");
    const auto by_served = GroupMarginRows(rows, MarginGroup::kServedModel);
    ASSERT_EQ(by_served.size(), 2u);
    EXPECT_EQ(by_served[0].key, "a");
    EXPECT_EQ(by_served[0].figures.margin->value().ToString(2), "1.00");
    EXPECT_EQ(by_served[1].key, "pro");
    EXPECT_EQ(by_served[1].figures.revenue.value().ToString(2), "4.00");
    EXPECT_TRUE(by_served[1].figures.negative);
}

TEST(MarginPercent, RoundsHalfEvenAtTwoPlaces) {
    const Currency cny = *Currency::FromCode("CNY");
    auto pct = [&](const char* margin, const char* revenue) {
        auto p = MarginPercent(Amount(cny, testing::Dec(margin)), Amount(cny, testing::Dec(revenue)));
        return p ? p->ToString(2) : std::string("n/a");
    };
    EXPECT_EQ(pct("1", "3"), "33.33");
    EXPECT_EQ(pct("2", "3"), "66.67");
    EXPECT_EQ(pct("0.00125", "1"), "0.12");  // 0.125 % -> half-even 0.12
    EXPECT_EQ(pct("0.00135", "1"), "0.14");  // 0.135 % -> 0.14
    EXPECT_EQ(pct("-1", "3"), "-33.33");
    EXPECT_EQ(pct("5", "0"), "n/a");
    EXPECT_EQ(pct("0", "7"), "0.00");
}

TEST(MarginGroup, ParsesItsNames) {
    for (auto g : {MarginGroup::kCustomer, MarginGroup::kModel, MarginGroup::kPlan, MarginGroup::kDay,
                   MarginGroup::kServedModel}) {
        EXPECT_EQ(ParseMarginGroup(MarginGroupName(g)), g);
    }
    EXPECT_FALSE(ParseMarginGroup("week").has_value());
}

}  // namespace
}  // namespace tally::billing

namespace tally::billing {
namespace {

std::string ReadSource(const std::string& path) {
    std::ifstream in(std::string(TALLY_SOURCE_DIR) + "/" + path);
    EXPECT_TRUE(in.good()) << path;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// deploy/costs/example.yaml costs every model of every example plan, from
// the plan version's start, in the plan's currency (so the quickstart's
// margin report has no unknown cost and no currency error).
TEST(ExampleCostCard, CostsEveryExamplePlanModelInItsCurrency) {
    Diagnostics d;
    auto card = ParseCostCard(ReadSource("deploy/costs/example.yaml"), "deploy/costs/example.yaml", &d);
    for (const auto& x : d) ADD_FAILURE() << x.ToString();
    ASSERT_TRUE(card.has_value());
    CostCatalog costs;
    ASSERT_TRUE(costs.Add(std::move(*card), &d));
    int models = 0;
    for (const char* file : {"deploy/plans/deepseek.yaml", "deploy/plans/doubao-seed-1.6.yaml",
                             "deploy/plans/gemini-2.5-pro.yaml", "deploy/plans/qwen-plus.yaml"}) {
        UnitTable units;
        auto plan = ParsePlan(ReadSource(file), file, &units, &d);
        ASSERT_TRUE(plan.has_value()) << file;
        for (const PlanVersion& v : plan->versions) {
            for (const ModelPricing& m : v.models) {
                for (size_t b = 0; b < m.bands.size(); ++b) {
                    for (const char* unit : {"input", "cached_input", "output", "reasoning"}) {
                        CostQuote q = costs.Cost(m.name, unit, PlanBandLowerBound(m, b), v.effective_from, 1000);
                        ASSERT_TRUE(q.amount.has_value()) << file << " " << m.name << ": " << q.reason;
                        EXPECT_EQ(q.amount->currency(), v.currency) << file << " " << m.name;
                    }
                }
                ++models;
            }
        }
    }
    EXPECT_EQ(models, 14);  // deepseek 2 x 3 versions (the 2025-09-29 cut extends v3.1), doubao 4, gemini 2, qwen 2
}

// The largest-remainder rule: truncated shares, then the units left one
// each to the largest remainders (the first among equals).
TEST(AllocateExactly, GivesTheUnitsLeftToTheLargestRemainders) {
    // 100 units over 1:1:1 -> 33.33 each; one unit left, to the first.
    EXPECT_EQ(AllocateExactly(100, {1, 1, 1}, 1), (std::vector<int128>{34, 33, 33}));
    // 10 over 3:3:4 at unit 1 -> 3, 3, 4 exactly.
    EXPECT_EQ(AllocateExactly(10, {3, 3, 4}, 1), (std::vector<int128>{3, 3, 4}));
    // 10 over 1:2:7 -> 1, 2, 7; 11 over 1:2:7 -> 1.1, 2.2, 7.7: remainders .1 .2 .7, the unit to the third.
    EXPECT_EQ(AllocateExactly(11, {1, 2, 7}, 1), (std::vector<int128>{1, 2, 8}));
    // 7 over 5:5:90 -> .35 .35 6.3: remainders .35 .35 .3, the unit to the first .35 (not the largest weight).
    EXPECT_EQ(AllocateExactly(7, {5, 5, 90}, 1), (std::vector<int128>{1, 0, 6}));
    // In units of 10^16 (a fen at Decimal's scale), and negative totals mirror positive ones.
    const int128 fen = 10'000'000'000'000'000;
    EXPECT_EQ(AllocateExactly(-100 * fen, {1, 1, 1}, fen), (std::vector<int128>{-34 * fen, -33 * fen, -33 * fen}));
    EXPECT_EQ(AllocateExactly(0, {1, 2}, fen), (std::vector<int128>{0, 0}));
    EXPECT_EQ(AllocateExactly(5 * fen, {0, 3}, fen), (std::vector<int128>{0, 5 * fen}));
}

TEST(AllocateExactly, SharesAlwaysAddUpToTheTotalInWholeUnits) {
    uint64_t seed = std::random_device{}();
    if (const char* s = std::getenv("TALLY_SEED")) seed = std::strtoull(s, nullptr, 10);
    std::cout << "AllocateExactly: seed " << seed << " (replay with TALLY_SEED=" << seed << ")\n";
    RecordProperty("seed", std::to_string(seed));
    std::mt19937_64 rng(seed);
    for (int k = 0; k < 2000; ++k) {
        const int128 unit = std::uniform_int_distribution<int>(0, 1)(rng) ? 1 : 10'000'000'000'000'000;
        const int128 total = static_cast<int128>(std::uniform_int_distribution<int64_t>(-1'000'000, 1'000'000)(rng)) * unit;
        std::vector<int128> weights(std::uniform_int_distribution<size_t>(1, 12)(rng));
        for (int128& w : weights) w = std::uniform_int_distribution<int64_t>(0, 3)(rng) == 0 ? 0 : std::uniform_int_distribution<int64_t>(1, INT64_MAX / 4)(rng);
        if (std::all_of(weights.begin(), weights.end(), [](int128 w) { return w == 0; })) weights[0] = 1;
        const std::vector<int128> shares = AllocateExactly(total, weights, unit);
        int128 sum = 0;
        int128 weight_sum = 0;
        for (const int128 w : weights) weight_sum += w;
        for (size_t i = 0; i < shares.size(); ++i) {
            sum += shares[i];
            ASSERT_TRUE(shares[i] % unit == 0) << "case " << k << "; replay with TALLY_SEED=" << seed;
            if (weights[i] == 0) {
                ASSERT_TRUE(shares[i] == 0) << "case " << k << "; replay with TALLY_SEED=" << seed;
            }
            // Within one unit of the exact share: |share * W - total * w| < unit * W.
            const int128 diff = shares[i] / unit * weight_sum - total / unit * weights[i];
            ASSERT_LT(diff < 0 ? -diff : diff, weight_sum) << "case " << k << "; replay with TALLY_SEED=" << seed;
        }
        ASSERT_TRUE(sum == total) << "case " << k << "; replay with TALLY_SEED=" << seed;
    }
}

}  // namespace
}  // namespace tally::billing
