#include "pricing/invoice.h"

#include <gtest/gtest.h>

#include "pricing/plan_yaml.h"
#include "pricing/rollup_records.h"
#include "test_plans.h"

namespace tally {
namespace {

using testing::EventSpec;
using testing::MakeEvent;

const char* const kTierPlan = R"(
plan: tiers
versions:
  - version: t1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: UTC
    rates_per: 1
    tax_percent: "6"
    models:
      a: {rates: {input: "1", output: "2"}}
      b: {rates: {input: "10", output: "20"}}
      c: {rates: {input: "1", output: "1"}}
    tiers:
      - name: a-graduated
        models: [a]
        units: [input]
        aggregate: per_model_and_unit
        mode: graduated
        tiers:
          - {up_to: 100, multiplier: "1"}
          - {up_to: 200, multiplier: "0.5"}
          - {rate: {price: "0.1", per: 1}}
      - name: b-volume
        models: [b]
        aggregate: per_model
        mode: volume
        tiers:
          - {up_to: 100, multiplier: "1"}
          - {multiplier: "0.8"}
    free_quotas:
      - {name: trial, models: [c], tokens: 50}
)";

const char* const kSubscriptions = R"(
subscriptions:
  - customer: delta
    plan: tiers
    coupons:
      - {code: MID, percent: "10", expires: 2025-11-15T00:00:00Z}
  - customer: acme
    name: "Acme 科技"
    plan: tiers
    discounts: [{name: contract, percent: "10", models: [b]}]
    coupons:
      - {code: HALF, percent: "50", cap: "100", expires: 2025-12-01T00:00:00Z}
      - {code: FIVE, amount: "5"}
      - {code: OLD, amount: "1000", expires: 2025-10-01T00:00:00Z}
    minimum_commitment: "2000"
    grants:
      - {name: prepaid, amount: "2500", expires: 2026-01-01T00:00:00Z}
  - customer: gamma
    plan: tiers
    from: 2025-11-01T00:00:00Z
  - customer: gamma
    plan: deepseek
    from: 2025-11-15T00:00:00+08:00
  - customer: beta
    plan: tiers
    grants:
      - {name: late, amount: "100", expires: 2026-01-01T00:00:00Z}
      - {name: early, amount: "200", expires: 2025-12-01T00:00:00Z}
)";

class InvoiceTest : public ::testing::Test {
   protected:
    InvoiceTest() : catalog_(testing::MustCatalog({kTierPlan, testing::kDeepseekPlan})) {
        subscriptions_ = testing::MustSubscriptions(kSubscriptions, &catalog_);
    }

    std::vector<Invoice> Price(const char* plan, const std::vector<EventSpec>& specs) {
        Rater rater(catalog_, subscriptions_, plan, {});
        for (const auto& s : specs) {
            RateOutcome o = rater.Add(MakeEvent(s));
            EXPECT_EQ(o.status, RateStatus::kRated) << o.reason;
        }
        return PriceRollups(catalog_, subscriptions_, plan, {}, rater.Rollups());
    }

    static const InvoiceLine* Find(const Invoice& inv, const std::string& model, const std::string& unit,
                                   const std::string& tier = "", LineKind kind = LineKind::kUsage) {
        for (const auto& l : inv.lines) {
            if (l.kind == kind && l.model == model && l.unit == unit && l.tier == tier) return &l;
        }
        return nullptr;
    }

    Catalog catalog_;
    std::vector<Subscription> subscriptions_;
};

TEST_F(InvoiceTest, GraduatedTiersFillInTimeOrder) {
    auto invoices = Price("tiers", {{.model = "a", .time = "2025-11-03T01:00:00Z", .input = 150, .output = 1},
                                    {.model = "a", .time = "2025-11-03T02:00:00Z", .input = 100}});
    ASSERT_EQ(invoices.size(), 1u);
    const Invoice& inv = invoices[0];
    const InvoiceLine* t1 = Find(inv, "a", "input", "a-graduated #1");
    const InvoiceLine* t2 = Find(inv, "a", "input", "a-graduated #2");
    const InvoiceLine* t3 = Find(inv, "a", "input", "a-graduated #3");
    ASSERT_TRUE(t1 && t2 && t3);
    EXPECT_EQ(t1->quantity, 100);
    EXPECT_EQ(t1->amount.ToString(), "100");
    EXPECT_EQ(t2->quantity, 100);
    EXPECT_EQ(t2->amount.ToString(), "50");
    EXPECT_EQ(t3->quantity, 50);
    EXPECT_EQ(t3->amount.ToString(), "5");
    const InvoiceLine* out = Find(inv, "a", "output");  // output is not in the tier rule
    ASSERT_TRUE(out);
    EXPECT_EQ(out->amount.ToString(), "2");
    EXPECT_EQ(inv.subtotal.ToString(2), "157.00");
    EXPECT_EQ(inv.tax.ToString(2), "9.42");
    EXPECT_EQ(inv.total.ToString(2), "166.42");
}

TEST_F(InvoiceTest, VolumeTierPerModelAcrossUnitsAtTheBoundary) {
    // 60 + 40 = 100 units: still the first tier (inclusive bound).
    auto at = Price("tiers", {{.model = "b", .input = 60, .output = 40}});
    ASSERT_EQ(at.size(), 1u);
    EXPECT_EQ(Find(at[0], "b", "input", "b-volume #1")->amount.ToString(), "600");
    // 60 + 41 = 101: every unit at the second tier's multiplier.
    auto above = Price("tiers", {{.model = "b", .input = 60, .output = 41}});
    EXPECT_EQ(Find(above[0], "b", "input", "b-volume #2")->amount.ToString(), "480");
    EXPECT_EQ(Find(above[0], "b", "output", "b-volume #2")->amount.ToString(), "656");
}

TEST_F(InvoiceTest, FreeQuotaIsConsumedInTimeOrderThenUnitOrder) {
    auto invoices = Price("tiers", {{.model = "c", .time = "2025-11-03T01:00:00Z", .input = 30, .output = 40},
                                    {.model = "c", .time = "2025-11-03T02:00:00Z", .input = 30}});
    const Invoice& inv = invoices[0];
    const InvoiceLine* free_in = Find(inv, "c", "input", "", LineKind::kFreeQuota);
    const InvoiceLine* free_out = Find(inv, "c", "output", "", LineKind::kFreeQuota);
    ASSERT_TRUE(free_in && free_out);
    EXPECT_EQ(free_in->quantity, 30);
    EXPECT_EQ(free_out->quantity, 20);
    EXPECT_TRUE(free_in->amount.is_zero());
    EXPECT_EQ(Find(inv, "c", "input")->quantity, 30);  // the second hour is paid
    EXPECT_EQ(Find(inv, "c", "output")->quantity, 20);
    EXPECT_EQ(inv.subtotal.ToString(2), "50.00");
}

TEST_F(InvoiceTest, ContractTermsApplyInTheDeclaredOrder) {
    Rater rater(catalog_, subscriptions_, "tiers", {});
    rater.Add(MakeEvent({.customer = "acme", .model = "b", .time = "2025-11-03T01:00:00Z", .input = 60, .output = 50}));
    rater.Add(MakeEvent({.customer = "acme", .model = "a", .time = "2025-12-03T01:00:00Z", .input = 10}));
    auto invoices = PriceRollups(catalog_, subscriptions_, "tiers", {}, rater.Rollups());
    ASSERT_EQ(invoices.size(), 2u);
    const Invoice& nov = invoices[0];
    EXPECT_EQ(nov.period, "2025-11");
    EXPECT_EQ(nov.customer_name, "Acme 科技");
    // usage 480 + 800; contract 10% on b; HALF 50% of 1152 capped at 100; FIVE; OLD expired.
    std::vector<std::pair<LineKind, std::string>> expected = {
        {LineKind::kUsage, "480.00"},   {LineKind::kUsage, "800.00"}, {LineKind::kDiscount, "-128.00"},
        {LineKind::kCoupon, "-100.00"}, {LineKind::kCoupon, "-5.00"}, {LineKind::kCommitment, "953.00"}};
    ASSERT_EQ(nov.lines.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(nov.lines[i].kind, expected[i].first) << i;
        EXPECT_EQ(nov.lines[i].amount_rounded.ToString(2), expected[i].second) << i;
    }
    EXPECT_EQ(nov.subtotal.ToString(2), "2000.00");
    EXPECT_EQ(nov.tax.ToString(2), "120.00");
    EXPECT_EQ(nov.total.ToString(2), "2120.00");
    ASSERT_EQ(nov.grants.size(), 1u);
    EXPECT_EQ(nov.grants[0].amount.ToString(2), "2120.00");
    EXPECT_EQ(nov.amount_due.ToString(2), "0.00");
    // December: HALF has expired, FIVE is used up, the grant has 380 left.
    const Invoice& dec = invoices[1];
    EXPECT_EQ(dec.period, "2025-12");
    ASSERT_EQ(dec.lines.size(), 2u);
    EXPECT_EQ(dec.lines[1].kind, LineKind::kCommitment);
    EXPECT_EQ(dec.lines[1].amount_rounded.ToString(2), "1990.00");
    EXPECT_EQ(dec.total.ToString(2), "2120.00");
    ASSERT_EQ(dec.grants.size(), 1u);
    EXPECT_EQ(dec.grants[0].amount.ToString(2), "380.00");
    EXPECT_EQ(dec.amount_due.ToString(2), "1740.00");
}

TEST_F(InvoiceTest, GrantsPayEarliestExpiryFirstAndNotAfterExpiry) {
    Rater rater(catalog_, subscriptions_, "tiers", {});
    rater.Add(MakeEvent({.customer = "beta", .model = "c", .time = "2025-11-03T01:00:00Z", .input = 150}));
    rater.Add(MakeEvent({.customer = "beta", .model = "c", .time = "2025-12-03T01:00:00Z", .input = 150}));
    auto invoices = PriceRollups(catalog_, subscriptions_, "tiers", {}, rater.Rollups());
    ASSERT_EQ(invoices.size(), 2u);
    // November: 50 free, 100 paid + 6 % tax = 106, all paid by "early".
    ASSERT_EQ(invoices[0].grants.size(), 1u);
    EXPECT_EQ(invoices[0].grants[0].name, "early");
    EXPECT_EQ(invoices[0].grants[0].amount.ToString(2), "106.00");
    EXPECT_EQ(invoices[0].amount_due.ToString(2), "0.00");
    // December: "early" still has 94 but has expired; "late" pays its 100.
    ASSERT_EQ(invoices[1].grants.size(), 1u);
    EXPECT_EQ(invoices[1].grants[0].name, "late");
    EXPECT_EQ(invoices[1].grants[0].amount.ToString(2), "100.00");
    EXPECT_EQ(invoices[1].total.ToString(2), "106.00");
    EXPECT_EQ(invoices[1].amount_due.ToString(2), "6.00");
}

TEST_F(InvoiceTest, PeriodCrossingAVersionChangeBillsEachPartAtItsOwnVersion) {
    auto invoices = Price("deepseek", {{.model = "deepseek-chat", .time = "2025-09-05T15:59:59Z", .input = 1000000},
                                       {.model = "deepseek-chat", .time = "2025-09-05T16:00:00Z", .input = 1000000}});
    ASSERT_EQ(invoices.size(), 1u);
    const Invoice& inv = invoices[0];
    ASSERT_EQ(inv.plan_versions.size(), 2u);
    EXPECT_EQ(inv.plan_versions[0], "v1");
    EXPECT_EQ(inv.plan_versions[1], "v2");
    ASSERT_EQ(inv.lines.size(), 2u);
    EXPECT_EQ(inv.lines[0].plan_version, "v1");
    EXPECT_EQ(inv.lines[0].amount.ToString(), "0.27");
    EXPECT_EQ(inv.lines[1].plan_version, "v2");
    EXPECT_EQ(inv.lines[1].amount.ToString(), "0.56");
    EXPECT_EQ(inv.total.ToString(2), "0.83");
}

TEST_F(InvoiceTest, ACallIsRatedUnderTheSubscriptionInForceAtItsTime) {
    Rater rater(catalog_, subscriptions_, "tiers", {});
    auto add = [&](const char* model, const char* time, int64_t input) {
        return rater.Add(MakeEvent({.customer = "gamma", .model = model, .time = time, .input = input}));
    };
    EXPECT_EQ(add("a", "2025-11-03T00:00:00Z", 10).status, RateStatus::kRated);
    // The last minute on tiers, the first on deepseek (from is inclusive).
    EXPECT_EQ(add("a", "2025-11-14T15:59:59Z", 5).status, RateStatus::kRated);
    EXPECT_EQ(add("deepseek-chat", "2025-11-14T16:00:00Z", 1'000'000).status, RateStatus::kRated);
    // On deepseek, model a has no price; before the first subscription nothing has.
    RateOutcome late_a = add("a", "2025-11-20T00:00:00Z", 1);
    EXPECT_EQ(late_a.status, RateStatus::kRejected);
    RateOutcome early = add("a", "2025-10-31T23:59:59Z", 1);
    EXPECT_EQ(early.status, RateStatus::kRejected);
    EXPECT_NE(early.reason.find("no subscription in force at 2025-10-31T23:59:59Z"), std::string::npos) << early.reason;

    // One invoice per plan the customer was on in the month, each in its
    // currency, in plan name order (whatever order the catalog loaded them in).
    auto invoices = PriceRollups(catalog_, subscriptions_, "tiers", {}, rater.Rollups());
    ASSERT_EQ(invoices.size(), 2u);
    EXPECT_EQ(invoices[0].plan, "deepseek");
    EXPECT_EQ(invoices[0].subtotal.ToString(2), "0.56");  // 1M input at 0.56 (version v2)
    EXPECT_EQ(invoices[1].plan, "tiers");
    EXPECT_EQ(invoices[1].subtotal.ToString(2), "15.00");  // 15 input at 1
}

// One line of 1000 input at 0.125 per 1000 (exact 0.125) and one of 1000
// output at 0.135 (exact 0.135); exact sum 0.26.
std::string RoundingPlan(const char* mode, const char* place) {
    return std::string(R"(
plan: r
versions:
  - version: "1"
    effective_from: 2025-01-01T00:00:00Z
    currency: USD
    time_zone: UTC
    rounding: )") +
           mode + "\n    round_at: " + place + R"(
    rates_per: 1000
    models:
      m: {rates: {input: "0.125", output: "0.135"}}
)";
}

std::vector<Invoice> PriceOneCall(const std::string& plan_text) {
    Catalog catalog = testing::MustCatalog({plan_text});
    Rater rater(catalog, {}, "r", {});
    rater.Add(MakeEvent({.input = 1000, .output = 1000}));
    return PriceRollups(catalog, {}, "r", {}, rater.Rollups());
}

TEST(InvoiceRounding, EachLineRoundsOnceWithThePlanMode) {
    for (auto [mode, in, out, total] :
         {std::tuple{"half_even", "0.12", "0.14", "0.26"}, std::tuple{"half_up", "0.13", "0.14", "0.27"},
          std::tuple{"down", "0.12", "0.13", "0.25"}}) {
        auto invoices = PriceOneCall(RoundingPlan(mode, "line"));
        ASSERT_EQ(invoices.size(), 1u);
        EXPECT_EQ(invoices[0].rounding_place, RoundingPlace::kLine);
        ASSERT_EQ(invoices[0].lines.size(), 2u) << mode;  // no rounding line
        EXPECT_EQ(invoices[0].lines[0].amount_rounded.ToString(2), in) << mode;
        EXPECT_EQ(invoices[0].lines[1].amount_rounded.ToString(2), out) << mode;
        EXPECT_EQ(invoices[0].total.ToString(2), total) << mode;
        EXPECT_EQ(invoices[0].usage_exact.ToString(), "0.26") << mode;
        EXPECT_EQ(invoices[0].exact_subtotal.ToString(), "0.26") << mode;
    }
}

TEST(InvoiceRounding, RoundingOnceOnTheInvoiceAddsARoundingLine) {
    // Lines still show their own rounding; the rounding line is
    // round(0.26) - (in + out), so the subtotal is the exact sum rounded once.
    for (auto [mode, in, out, rounding] : {std::tuple{"half_even", "0.12", "0.14", ""},     // 0.26 - 0.26: no line
                                           std::tuple{"half_up", "0.13", "0.14", "-0.01"},  // 0.26 - 0.27
                                           std::tuple{"down", "0.12", "0.13", "0.01"}}) {   // 0.26 - 0.25
        auto invoices = PriceOneCall(RoundingPlan(mode, "invoice"));
        ASSERT_EQ(invoices.size(), 1u);
        const Invoice& inv = invoices[0];
        EXPECT_EQ(inv.rounding_place, RoundingPlace::kInvoice);
        ASSERT_EQ(inv.lines.size(), std::string(rounding).empty() ? 2u : 3u) << mode;
        EXPECT_EQ(inv.lines[0].amount_rounded.ToString(2), in) << mode;
        EXPECT_EQ(inv.lines[1].amount_rounded.ToString(2), out) << mode;
        if (inv.lines.size() == 3) {
            EXPECT_EQ(inv.lines[2].kind, LineKind::kRounding);
            EXPECT_EQ(inv.lines[2].description, "rounding to the invoice's exact sum");
            EXPECT_EQ(inv.lines[2].amount.ToString(2), rounding) << mode;
            EXPECT_EQ(inv.lines[2].amount_rounded.ToString(2), rounding) << mode;
        }
        EXPECT_EQ(inv.exact_subtotal.ToString(), "0.26") << mode;
        EXPECT_EQ(inv.subtotal.ToString(2), "0.26") << mode;
        EXPECT_EQ(inv.total.ToString(2), "0.26") << mode;
    }
}

TEST(InvoiceRounding, InvoiceIsTheDefaultPlace) {
    std::string text = RoundingPlan("half_up", "line");
    text.erase(text.find("    round_at: line\n"), std::string("    round_at: line\n").size());
    auto invoices = PriceOneCall(text);
    ASSERT_EQ(invoices.size(), 1u);
    EXPECT_EQ(invoices[0].rounding_place, RoundingPlace::kInvoice);
    EXPECT_EQ(invoices[0].total.ToString(2), "0.26");  // not 0.27
}

// Hours since the epoch of an instant (the unit of InvoiceLine::first_hour).
int32_t HourOf(const char* rfc3339) {
    return static_cast<int32_t>(
        std::chrono::duration_cast<std::chrono::hours>(testing::At(rfc3339).time_since_epoch()).count());
}

TEST_F(InvoiceTest, FreeQuotaExhaustedMidMonthAndTheHoursEachLineCameFrom) {
    // Model c (input 1, output 1 per token), quota "trial" 50 tokens per month.
    auto invoices = Price("tiers", {{.model = "c", .time = "2025-11-02T08:10:00Z", .input = 20},
                                    {.model = "c", .time = "2025-11-16T09:00:00Z", .input = 40},
                                    {.model = "c", .time = "2025-11-28T23:59:00Z", .input = 7}});
    ASSERT_EQ(invoices.size(), 1u);
    const Invoice& inv = invoices[0];
    // Nov 2: 20 free (30 left); Nov 16: 30 free, 10 paid (quota exhausted); Nov 28: 7 paid.
    const InvoiceLine* free_in = Find(inv, "c", "input", "", LineKind::kFreeQuota);
    const InvoiceLine* paid_in = Find(inv, "c", "input");
    ASSERT_TRUE(free_in && paid_in);
    EXPECT_EQ(free_in->quantity, 50);  // 20 + 30
    EXPECT_EQ(free_in->description, "trial");
    EXPECT_EQ(free_in->first_hour, HourOf("2025-11-02T08:00:00Z"));
    EXPECT_EQ(free_in->last_hour, HourOf("2025-11-16T09:00:00Z"));
    EXPECT_EQ(paid_in->quantity, 17);  // 10 + 7
    EXPECT_EQ(paid_in->amount.ToString(), "17");
    EXPECT_EQ(paid_in->first_hour, HourOf("2025-11-16T09:00:00Z"));
    EXPECT_EQ(paid_in->last_hour, HourOf("2025-11-28T23:00:00Z"));
    EXPECT_EQ(inv.subtotal.ToString(2), "17.00");
    EXPECT_EQ(inv.tax.ToString(2), "1.02");  // 6 % of 17
    EXPECT_EQ(inv.total.ToString(2), "18.02");
}

TEST_F(InvoiceTest, ACouponThatExpiresMidPeriodAppliesToThatPeriodOnly) {
    // MID (10 %) expires 2025-11-15: November started before, December did not.
    Rater rater(catalog_, subscriptions_, "tiers", {});
    rater.Add(MakeEvent({.customer = "delta", .model = "a", .time = "2025-11-20T00:00:00Z", .input = 50}));
    rater.Add(MakeEvent({.customer = "delta", .model = "a", .time = "2025-12-02T00:00:00Z", .input = 50}));
    auto invoices = PriceRollups(catalog_, subscriptions_, "tiers", {}, rater.Rollups());
    ASSERT_EQ(invoices.size(), 2u);
    const Invoice& nov = invoices[0];
    ASSERT_EQ(nov.lines.size(), 2u);
    EXPECT_EQ(nov.lines[0].amount.ToString(), "50");  // 50 input at 1 (tier 1, x1)
    EXPECT_EQ(nov.lines[1].kind, LineKind::kCoupon);
    EXPECT_EQ(nov.lines[1].description, "coupon MID (10%)");
    EXPECT_EQ(nov.lines[1].amount_rounded.ToString(2), "-5.00");  // 10 % of 50
    EXPECT_EQ(nov.subtotal.ToString(2), "45.00");
    EXPECT_EQ(nov.total.ToString(2), "47.70");  // 45 + 6 % (2.70)
    const Invoice& dec = invoices[1];
    ASSERT_EQ(dec.lines.size(), 1u);  // no coupon
    EXPECT_EQ(dec.subtotal.ToString(2), "50.00");
    EXPECT_EQ(dec.total.ToString(2), "53.00");  // 50 + 3
}

TEST_F(InvoiceTest, AdjustmentsComeAfterTheCommitmentAndRecomputeTaxButNotGrants) {
    Rater rater(catalog_, subscriptions_, "tiers", {});
    rater.Add(MakeEvent({.customer = "acme", .model = "b", .time = "2025-11-03T01:00:00Z", .input = 60, .output = 50}));
    auto invoices = PriceRollups(catalog_, subscriptions_, "tiers", {}, rater.Rollups());
    ASSERT_EQ(invoices.size(), 1u);
    Invoice inv = invoices[0];  // as in ContractTermsApplyInTheDeclaredOrder: subtotal 2000, total 2120, all granted
    ASSERT_EQ(inv.lines.back().kind, LineKind::kCommitment);
    const size_t before = inv.lines.size();
    auto adjustment = [&](const char* amount, const char* description) {
        InvoiceLine l;
        l.kind = LineKind::kAdjustment;
        l.description = description;
        l.amount = Amount(inv.currency, testing::Dec(amount));
        l.amount_rounded = l.amount;
        return l;
    };
    AddAdjustments(&inv, {adjustment("12.34", "late usage of 2025-10"), adjustment("-2.00", "credit for 2025-09")});
    ASSERT_EQ(inv.lines.size(), before + 2);
    EXPECT_EQ(inv.lines[before].kind, LineKind::kAdjustment);
    EXPECT_EQ(inv.lines[before].description, "late usage of 2025-10");
    EXPECT_EQ(inv.lines[before + 1].amount_rounded.ToString(2), "-2.00");
    EXPECT_EQ(inv.subtotal.ToString(2), "2010.34");  // 2000 + 12.34 - 2.00
    EXPECT_EQ(inv.tax.ToString(2), "120.62");        // 6 % of 2010.34 = 120.6204
    EXPECT_EQ(inv.total.ToString(2), "2130.96");     // 2010.34 + 120.62
    ASSERT_EQ(inv.grants.size(), 1u);
    EXPECT_EQ(inv.grants[0].amount.ToString(2), "2120.00");     // not applied again
    EXPECT_EQ(inv.amount_due.ToString(2), "10.96");             // 2130.96 - 2120.00
    EXPECT_EQ(inv.exact_subtotal, invoices[0].exact_subtotal);  // adjustments are not part of it

    // A negative adjustment larger than the invoice: a credit, tax negative too.
    Invoice credit = invoices[0];
    AddAdjustments(&credit, {adjustment("-2500.00", "re-rated 2025-10")});
    EXPECT_EQ(credit.subtotal.ToString(2), "-500.00");  // 2000 - 2500
    EXPECT_EQ(credit.tax.ToString(2), "-30.00");        // 6 % of -500
    EXPECT_EQ(credit.total.ToString(2), "-530.00");
    EXPECT_EQ(credit.amount_due.ToString(2), "-2650.00");  // -530 - 2120 already granted
}

TEST_F(InvoiceTest, AnEmptyInvoiceTakesTheTermsOfThePeriodAndCarriesAdjustments) {
    const Plan& plan = *catalog_.FindPlan("tiers");
    const Subscription* acme = &subscriptions_[1];
    ASSERT_EQ(acme->customer, "acme");
    Invoice inv = EmptyInvoice(catalog_, plan, acme, "acme", MonthId(2025, 10));
    EXPECT_EQ(inv.customer, "acme");
    EXPECT_EQ(inv.customer_name, "Acme 科技");
    EXPECT_EQ(inv.plan, "tiers");
    EXPECT_EQ(inv.period, "2025-10");
    EXPECT_EQ(inv.period_start, testing::At("2025-10-01T00:00:00Z"));  // UTC plan
    EXPECT_EQ(inv.period_end, testing::At("2025-11-01T00:00:00Z"));
    EXPECT_EQ(inv.time_zone, "UTC");
    EXPECT_EQ(inv.currency.code(), "CNY");
    EXPECT_EQ(inv.tax_percent.ToString(), "6");
    EXPECT_EQ(inv.rounding_place, RoundingPlace::kInvoice);
    EXPECT_EQ(inv.finalize_grace, std::chrono::hours(24));
    EXPECT_TRUE(inv.lines.empty());
    EXPECT_TRUE(inv.subtotal.is_zero());
    EXPECT_TRUE(inv.total.is_zero());
    EXPECT_TRUE(inv.amount_due.is_zero());
    EXPECT_EQ(inv.subtotal.currency(), inv.currency);
    InvoiceLine late;
    late.kind = LineKind::kAdjustment;
    late.description = "late usage of 2025-09";
    late.amount = late.amount_rounded = Amount(inv.currency, testing::Dec("5"));
    AddAdjustments(&inv, {late});
    EXPECT_EQ(inv.subtotal.ToString(2), "5.00");
    EXPECT_EQ(inv.tax.ToString(2), "0.30");  // 6 % of 5
    EXPECT_EQ(inv.amount_due.ToString(2), "5.30");

    // Without a subscription: no name, the plan's grace.
    Invoice bare = EmptyInvoice(catalog_, plan, nullptr, "nobody", MonthId(2025, 12));
    EXPECT_EQ(bare.customer_name, "");
    EXPECT_EQ(bare.period, "2025-12");
    EXPECT_EQ(bare.period_end, testing::At("2026-01-01T00:00:00Z"));
}

TEST_F(InvoiceTest, ACommitmentBillsAPeriodWithoutUsageWithTheHorizonAndGrantsCarryOn) {
    Rater rater(catalog_, subscriptions_, "tiers", {});
    rater.Add(MakeEvent({.customer = "acme", .model = "b", .time = "2025-11-03T01:00:00Z", .input = 60, .output = 50}));
    // Without a horizon only the month with usage bills (tally usage of one period, quotes).
    ASSERT_EQ(PriceRollups(catalog_, subscriptions_, "tiers", {}, rater.Rollups()).size(), 1u);

    CommitmentHorizon horizon;
    horizon.through = MonthId(2026, 1);
    auto invoices = PriceRollups(catalog_, subscriptions_, "tiers", {}, rater.Rollups(), &horizon);
    // acme has no `from`: it bills from its first month with usage; no one else commits.
    ASSERT_EQ(invoices.size(), 3u);
    EXPECT_EQ(invoices[0].period, "2025-11");
    EXPECT_EQ(invoices[0].grants[0].amount.ToString(2), "2120.00");  // as without a horizon
    const Invoice& dec = invoices[1];
    EXPECT_EQ(dec.customer, "acme");
    EXPECT_EQ(dec.customer_name, "Acme 科技");
    EXPECT_EQ(dec.period, "2025-12");
    EXPECT_EQ(dec.period_start, testing::At("2025-12-01T00:00:00Z"));
    EXPECT_EQ(dec.calls, 0);
    EXPECT_TRUE(dec.plan_versions.empty());
    ASSERT_EQ(dec.lines.size(), 1u);
    EXPECT_EQ(dec.lines[0].kind, LineKind::kCommitment);
    EXPECT_EQ(dec.lines[0].amount_rounded.ToString(2), "2000.00");
    EXPECT_EQ(dec.subtotal.ToString(2), "2000.00");
    EXPECT_EQ(dec.tax.ToString(2), "120.00");
    ASSERT_EQ(dec.grants.size(), 1u);
    EXPECT_EQ(dec.grants[0].amount.ToString(2), "380.00");  // what November left of 2500
    EXPECT_EQ(dec.amount_due.ToString(2), "1740.00");
    const Invoice& jan = invoices[2];
    EXPECT_EQ(jan.period, "2026-01");
    EXPECT_TRUE(jan.grants.empty());  // the grant expired at 2026-01-01
    EXPECT_EQ(jan.amount_due.ToString(2), "2120.00");

    // Without any usage, acme (no `from`) bills the horizon's month alone,
    // unless the horizon names other customers only.
    invoices = PriceRollups(catalog_, subscriptions_, "tiers", {}, {}, &horizon);
    ASSERT_EQ(invoices.size(), 1u);
    EXPECT_EQ(invoices[0].period, "2026-01");
    EXPECT_EQ(invoices[0].customer, "acme");
    horizon.customers = {"beta", "delta"};
    EXPECT_TRUE(PriceRollups(catalog_, subscriptions_, "tiers", {}, {}, &horizon).empty());
    // An invoice the ledger already has of an earlier month starts acme's months there.
    horizon.customers.clear();
    horizon.through = MonthId(2025, 12);
    horizon.first_billed["acme"] = MonthId(2025, 10);
    invoices = PriceRollups(catalog_, subscriptions_, "tiers", {}, rater.Rollups(), &horizon);
    ASSERT_EQ(invoices.size(), 3u);
    EXPECT_EQ(invoices[0].period, "2025-10");
    EXPECT_EQ(invoices[0].subtotal.ToString(2), "2000.00");
    EXPECT_EQ(invoices[1].period, "2025-11");
    EXPECT_EQ(invoices[2].period, "2025-12");
}

TEST(CommitmentHorizonTest, ASubscriptionBillsEveryPeriodItIsInForceInAndNoOther) {
    Catalog catalog = testing::MustCatalog({kTierPlan, testing::kDeepseekPlan});
    // omega: on tiers with a commitment from mid-October, then on deepseek
    // from 5 December; no calls at all.
    std::vector<Subscription> subs = testing::MustSubscriptions(R"(
subscriptions:
  - customer: omega
    plan: tiers
    from: 2025-10-10T00:00:00Z
    minimum_commitment: "50"
  - customer: omega
    plan: deepseek
    from: 2025-12-05T00:00:00Z
)", &catalog);
    CommitmentHorizon horizon;
    horizon.through = MonthId(2026, 2);
    auto invoices = PriceRollups(catalog, subs, "tiers", {}, {}, &horizon);
    std::vector<std::string> periods;
    for (const Invoice& inv : invoices) {
        periods.push_back(inv.period);
        EXPECT_EQ(inv.plan, "tiers");
        EXPECT_EQ(inv.subtotal.ToString(2), "50.00") << inv.period;  // a whole commitment, not prorated
        EXPECT_EQ(inv.total.ToString(2), "53.00") << inv.period;
    }
    EXPECT_EQ(periods, (std::vector<std::string>{"2025-10", "2025-11", "2025-12"}));
    // Before its `from`, nothing.
    horizon.through = MonthId(2025, 9);
    EXPECT_TRUE(PriceRollups(catalog, subs, "tiers", {}, {}, &horizon).empty());
}

// Many lines each below half a fen or just above it: one call of 10 models.
std::string SubFenPlan(const char* place) {
    std::string text =
        "plan: subfen\n"
        "versions:\n"
        "  - version: \"1\"\n"
        "    effective_from: 2025-01-01T00:00:00Z\n"
        "    currency: CNY\n"
        "    time_zone: Asia/Shanghai\n"
        "    round_at: " +
        std::string(place) +
        "\n"
        "    models:\n";
    for (int i = 0; i < 10; ++i) {
        text += "      m" + std::to_string(i) + ": {rates: {input: \"0.80\", output: \"8.00\"}}\n";
    }
    return text;
}

std::vector<Invoice> PriceSubFen(const char* place, int64_t input, int64_t output) {
    Catalog catalog = testing::MustCatalog({SubFenPlan(place)});
    Rater rater(catalog, {}, "subfen", {});
    for (int i = 0; i < 10; ++i) {
        const std::string model = "m" + std::to_string(i);
        rater.Add(MakeEvent({.model = model.c_str(), .input = input, .output = output}));
    }
    return PriceRollups(catalog, {}, "subfen", {}, rater.Rollups());
}

TEST(InvoiceRounding, ManySubFenLinesPerLineLoseMoneyOnceOnTheInvoiceDoesNot) {
    // 10 models x (5000 input x 0.80/1M = 0.004, 500 output x 8.00/1M = 0.004): 20 lines of 0.004.
    // Exact sum 20 x 0.004 = 0.08; each line rounds half-even to 0.00.
    auto line = PriceSubFen("line", 5000, 500);
    ASSERT_EQ(line.size(), 1u);
    EXPECT_EQ(line[0].lines.size(), 20u);
    EXPECT_EQ(line[0].exact_subtotal.ToString(), "0.08");
    EXPECT_EQ(line[0].subtotal.ToString(2), "0.00");  // the whole 0.08 is lost
    auto invoice = PriceSubFen("invoice", 5000, 500);
    ASSERT_EQ(invoice.size(), 1u);
    ASSERT_EQ(invoice[0].lines.size(), 21u);
    for (size_t i = 0; i < 20; ++i) EXPECT_EQ(invoice[0].lines[i].amount_rounded.ToString(2), "0.00") << i;
    const InvoiceLine& rounding = invoice[0].lines[20];
    EXPECT_EQ(rounding.kind, LineKind::kRounding);
    EXPECT_EQ(rounding.amount_rounded.ToString(2), "0.08");  // round(0.08) - 20 x 0.00
    EXPECT_EQ(invoice[0].subtotal.ToString(2), "0.08");

    // 10 x (7500 x 0.80/1M = 0.006, 750 x 8.00/1M = 0.006): exact 20 x 0.006 = 0.12, each line 0.01.
    auto over = PriceSubFen("line", 7500, 750);
    EXPECT_EQ(over[0].exact_subtotal.ToString(), "0.12");
    EXPECT_EQ(over[0].subtotal.ToString(2), "0.20");  // 0.08 too much
    auto fixed = PriceSubFen("invoice", 7500, 750);
    ASSERT_EQ(fixed[0].lines.size(), 21u);
    EXPECT_EQ(fixed[0].lines[20].amount_rounded.ToString(2), "-0.08");  // 0.12 - 20 x 0.01
    EXPECT_EQ(fixed[0].subtotal.ToString(2), "0.12");
}

TEST(InvoiceRounding, TheRoundingLineComesBeforeTheCommitmentWhichComparesTheRoundedSubtotal) {
    // exact 0.08 (as above) -> rounding line 0.08; commitment 1.00: true-up 0.92.
    std::string text = SubFenPlan("invoice") + "";
    text.insert(text.find("    models:"), "    minimum_commitment: \"1.00\"\n");
    Catalog catalog = testing::MustCatalog({text});
    Rater rater(catalog, {}, "subfen", {});
    for (int i = 0; i < 10; ++i) {
        const std::string model = "m" + std::to_string(i);
        rater.Add(MakeEvent({.model = model.c_str(), .input = 5000, .output = 500}));
    }
    auto invoices = PriceRollups(catalog, {}, "subfen", {}, rater.Rollups());
    ASSERT_EQ(invoices.size(), 1u);
    const auto& lines = invoices[0].lines;
    ASSERT_EQ(lines.size(), 22u);
    EXPECT_EQ(lines[20].kind, LineKind::kRounding);
    EXPECT_EQ(lines[21].kind, LineKind::kCommitment);
    EXPECT_EQ(lines[21].amount_rounded.ToString(2), "0.92");  // 1.00 - 0.08
    EXPECT_EQ(invoices[0].subtotal.ToString(2), "1.00");
}

// A plan in Asia/Shanghai and customers with billing anchor days.
const char* const kShanghaiPlan = R"(
plan: sh
versions:
  - version: "1"
    effective_from: 2025-01-01T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    finalize_grace: 2d
    models:
      m: {rates: {input: "1.00", output: "2.00"}}
)";

const char* const kAnchorSubscriptions = R"(
subscriptions:
  - customer: anch
    plan: sh
    billing_anchor_day: 15
    finalize_grace: 36h
  - customer: shift
    plan: sh
  - customer: shift
    plan: sh
    from: 2025-11-20T00:00:00+08:00
    billing_anchor_day: 15
  - customer: cal
    plan: sh
  - customer: later
    plan: sh
    billing_anchor_day: 5
  - customer: later
    plan: sh
    from: 2025-10-10T00:00:00+08:00
    billing_anchor_day: 15
  - customer: earlier
    plan: sh
    billing_anchor_day: 15
  - customer: earlier
    plan: sh
    from: 2025-11-10T00:00:00+08:00
    billing_anchor_day: 5
)";

class AnchorTest : public ::testing::Test {
   protected:
    AnchorTest() : catalog_(testing::MustCatalog({kShanghaiPlan})) {
        subscriptions_ = testing::MustSubscriptions(kAnchorSubscriptions, &catalog_);
    }
    Catalog catalog_;
    std::vector<Subscription> subscriptions_;
};

TEST_F(AnchorTest, ACallJustBeforeAndJustAfterTheAnchorInstant) {
    // The anchor instant of the November period: 2025-11-15T00:00+08:00 = 2025-11-14T16:00Z.
    Rater rater(catalog_, subscriptions_, "sh", {});
    std::vector<RatedPart> parts;
    const Event before = MakeEvent({.customer = "anch", .time = "2025-11-14T15:59:59.999Z", .input = 1'000'000});
    const Event after = MakeEvent({.customer = "anch", .time = "2025-11-14T16:00:00Z", .input = 2'000'000});
    ASSERT_EQ(rater.Classify(before, &parts).status, RateStatus::kRated);
    EXPECT_EQ(parts.at(0).key.period, MonthId(2025, 10));  // 23:59:59.999 on the 14th: October's period
    ASSERT_EQ(rater.Classify(after, &parts).status, RateStatus::kRated);
    EXPECT_EQ(parts.at(0).key.period, MonthId(2025, 11));  // 00:00 on the 15th: November's
    // The same instants for a calendar-month customer: both November.
    const Event cal = MakeEvent({.customer = "cal", .time = "2025-11-14T15:59:59.999Z", .input = 1});
    ASSERT_EQ(rater.Classify(cal, &parts).status, RateStatus::kRated);
    EXPECT_EQ(parts.at(0).key.period, MonthId(2025, 11));

    rater.Add(before);
    rater.Add(after);
    const std::vector<Rollup> rollups = rater.Rollups();
    auto invoices = PriceRollups(catalog_, subscriptions_, "sh", {}, rollups);
    ASSERT_EQ(invoices.size(), 2u);
    EXPECT_EQ(invoices[0].period, "2025-10");
    EXPECT_EQ(invoices[0].period_start, testing::At("2025-10-14T16:00:00Z"));  // Oct 15 00:00 +08:00
    EXPECT_EQ(invoices[0].period_end, testing::At("2025-11-14T16:00:00Z"));
    EXPECT_EQ(invoices[0].subtotal.ToString(2), "1.00");  // 1M input at 1.00
    EXPECT_EQ(invoices[1].period, "2025-11");
    EXPECT_EQ(invoices[1].period_start, testing::At("2025-11-14T16:00:00Z"));
    EXPECT_EQ(invoices[1].period_end, testing::At("2025-12-14T16:00:00Z"));
    EXPECT_EQ(invoices[1].subtotal.ToString(2), "2.00");  // 2M input at 1.00
    // Each call lies in the period the rater gave it.
    EXPECT_LT(before.time, invoices[0].period_end);
    EXPECT_GE(after.time, invoices[1].period_start);
    EXPECT_EQ(invoices[1].finalize_grace, std::chrono::hours(36));  // the subscription's, not the plan's 2d

    // The ledger's path (rollups stored as records and read back) gives the same periods.
    RecordsRead read = FromRecords(catalog_, ToRecords(catalog_, rollups));
    EXPECT_EQ(read.unresolved, 0);
    auto stored = PriceRollups(catalog_, subscriptions_, "sh", {}, read.rollups);
    ASSERT_EQ(stored.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(stored[i].period, invoices[i].period);
        EXPECT_EQ(stored[i].period_start, invoices[i].period_start);
        EXPECT_EQ(stored[i].period_end, invoices[i].period_end);
        EXPECT_EQ(stored[i].total, invoices[i].total);
    }

    // An invoice of adjustments only has the same bounds as the priced one.
    Invoice empty = EmptyInvoice(catalog_, *catalog_.FindPlan("sh"), &subscriptions_[0], "anch", MonthId(2025, 11));
    EXPECT_EQ(empty.period_start, invoices[1].period_start);
    EXPECT_EQ(empty.period_end, invoices[1].period_end);
    EXPECT_EQ(empty.finalize_grace, std::chrono::hours(36));
}

TEST_F(AnchorTest, ASubscriptionWhoseAnchorChangesLeavesNoGapAndNoOverlap) {
    // shift: calendar months until 2025-11-20T00:00+08:00, then anchor day 15.
    Rater rater(catalog_, subscriptions_, "sh", {});
    std::vector<RatedPart> parts;
    auto period_of = [&](const char* time, int64_t input) {
        Event e = MakeEvent({.customer = "shift", .time = time, .input = input});
        EXPECT_EQ(rater.Classify(e, &parts).status, RateStatus::kRated);
        rater.Add(e);
        return parts.at(0).key.period;
    };
    EXPECT_EQ(period_of("2025-10-31T15:59:59Z", 1'000'000), MonthId(2025, 10));  // Oct 31 23:59:59 local, calendar
    EXPECT_EQ(period_of("2025-11-10T00:00:00Z", 2'000'000), MonthId(2025, 11));  // calendar November
    EXPECT_EQ(period_of("2025-11-25T00:00:00Z", 3'000'000), MonthId(2025, 11));  // day 25 >= 15: Nov period
    EXPECT_EQ(period_of("2025-12-10T00:00:00Z", 4'000'000), MonthId(2025, 11));  // day 10 < 15: still Nov
    EXPECT_EQ(period_of("2025-12-14T16:00:00Z", 5'000'000), MonthId(2025, 12));  // Dec 15 00:00 local
    auto invoices = PriceRollups(catalog_, subscriptions_, "sh", {}, rater.Rollups());
    ASSERT_EQ(invoices.size(), 3u);
    // October, calendar: [Oct 1, Nov 1) local.
    EXPECT_EQ(invoices[0].period_start, testing::At("2025-09-30T16:00:00Z"));
    EXPECT_EQ(invoices[0].period_end, testing::At("2025-10-31T16:00:00Z"));
    // November: from the calendar start (old anchor) to Dec 15 (new anchor).
    EXPECT_EQ(invoices[1].period, "2025-11");
    EXPECT_EQ(invoices[1].period_start, testing::At("2025-10-31T16:00:00Z"));
    EXPECT_EQ(invoices[1].period_end, testing::At("2025-12-14T16:00:00Z"));
    EXPECT_EQ(invoices[1].subtotal.ToString(2), "9.00");  // (2M + 3M + 4M) at 1.00
    EXPECT_EQ(invoices[1].calls, 3);
    // December, anchored: [Dec 15, Jan 15) local.
    EXPECT_EQ(invoices[2].period_start, testing::At("2025-12-14T16:00:00Z"));
    EXPECT_EQ(invoices[2].period_end, testing::At("2026-01-14T16:00:00Z"));
    EXPECT_EQ(invoices[2].subtotal.ToString(2), "5.00");
    EXPECT_EQ(invoices[2].finalize_grace, std::chrono::hours(48));  // the plan's 2d
}

TEST_F(AnchorTest, AnAnchorMovedLaterNeverSendsCallsBackToAnEndedPeriod) {
    // later: anchor 5, then 15 from Oct 10 (+08:00). Under anchor 15 a call of
    // Oct 12 would be September's, which ended on Oct 5: it stays in October,
    // the period in progress when the new anchor began, which now runs to Nov 15.
    // earlier: anchor 15, then 5 from Nov 10: October's period ends at the change.
    Rater rater(catalog_, subscriptions_, "sh", {});
    std::vector<RatedPart> parts;
    auto period_of = [&](const char* customer, const char* time) {
        Event e = MakeEvent({.customer = customer, .time = time, .input = 1'000'000});
        EXPECT_EQ(rater.Classify(e, &parts).status, RateStatus::kRated);
        rater.Add(e);
        return parts.at(0).key.period;
    };
    EXPECT_EQ(period_of("later", "2025-10-03T12:00:00+08:00"), MonthId(2025, 9));   // day 3 < 5
    EXPECT_EQ(period_of("later", "2025-10-07T12:00:00+08:00"), MonthId(2025, 10));  // day 7 >= 5
    EXPECT_EQ(period_of("later", "2025-10-12T12:00:00+08:00"), MonthId(2025, 10));  // not September
    EXPECT_EQ(period_of("later", "2025-11-14T23:59:00+08:00"), MonthId(2025, 10));  // day 14 < 15
    EXPECT_EQ(period_of("later", "2025-11-15T00:00:00+08:00"), MonthId(2025, 11));
    EXPECT_EQ(period_of("earlier", "2025-11-08T12:00:00+08:00"), MonthId(2025, 10));  // day 8 < 15
    EXPECT_EQ(period_of("earlier", "2025-11-12T12:00:00+08:00"), MonthId(2025, 11));  // day 12 >= 5
    auto invoices = PriceRollups(catalog_, subscriptions_, "sh", {}, rater.Rollups());
    ASSERT_EQ(invoices.size(), 5u);  // earlier Oct, Nov; later Sep, Oct, Nov
    auto bounds = [](const Invoice& inv) {
        return FormatRfc3339(inv.period_start) + " " + FormatRfc3339(inv.period_end);
    };
    EXPECT_EQ(invoices[0].customer + " " + invoices[0].period, "earlier 2025-10");
    EXPECT_EQ(bounds(invoices[0]), "2025-10-14T16:00:00Z 2025-11-09T16:00:00Z");  // Oct 15 to the change
    EXPECT_EQ(bounds(invoices[1]), "2025-11-09T16:00:00Z 2025-12-04T16:00:00Z");  // the change to Dec 5
    EXPECT_EQ(invoices[2].customer + " " + invoices[2].period, "later 2025-09");
    EXPECT_EQ(bounds(invoices[2]), "2025-09-04T16:00:00Z 2025-10-04T16:00:00Z");  // Sep 5 to Oct 5
    EXPECT_EQ(bounds(invoices[3]), "2025-10-04T16:00:00Z 2025-11-14T16:00:00Z");  // Oct 5 to Nov 15
    EXPECT_EQ(invoices[3].calls, 3);
    EXPECT_EQ(invoices[3].subtotal.ToString(2), "3.00");
    EXPECT_EQ(bounds(invoices[4]), "2025-11-14T16:00:00Z 2025-12-14T16:00:00Z");  // Nov 15 to Dec 15
}

TEST(InvoiceTerms, FinalizeGraceRoundAtAndBillingAnchorDayAreParsedWithPositions) {
    auto plan_problems = [](const std::string& version_keys) {
        std::string text =
            "plan: p\nversions:\n  - version: a\n    effective_from: 2025-01-01T00:00:00Z\n"
            "    currency: CNY\n    time_zone: UTC\n" +
            version_keys + "    models: {m: {rates: {input: \"1\", cached_input: {same_as: input}, output: \"1\"}}}\n";
        Catalog catalog;
        Diagnostics d;
        auto plan = ParsePlan(text, "p.yaml", &catalog.units, &d);
        std::string all;
        for (const auto& x : d) all += x.ToString() + "\n";
        if (plan && d.empty()) {
            const PlanVersion& v = plan->versions[0];
            return "ok " + FormatDuration(v.finalize_grace) + " " + std::string(RoundingPlaceName(v.rounding_place));
        }
        return all;
    };
    EXPECT_EQ(plan_problems(""), "ok 24h invoice");  // the defaults
    EXPECT_EQ(plan_problems("    finalize_grace: 36h\n    round_at: line\n"), "ok 36h line");
    EXPECT_EQ(plan_problems("    finalize_grace: 2d\n"), "ok 2d invoice");
    EXPECT_EQ(plan_problems("    finalize_grace: 0h\n"), "ok 0h invoice");
    EXPECT_EQ(plan_problems("    finalize_grace: 90m\n"), "ok 90m invoice");
    EXPECT_EQ(plan_problems("    finalize_grace: 24\n"),
              "p.yaml:7:21: error: finalize_grace '24' is not a duration like 24h, 36h or 2d (a whole number of s, "
              "m, h or d)\n");
    EXPECT_EQ(plan_problems("    finalize_grace: -1h\n").substr(0, 50),
              "p.yaml:7:21: error: finalize_grace '-1h' is not a ");
    EXPECT_EQ(plan_problems("    finalize_grace: 1w\n").substr(0, 49),
              "p.yaml:7:21: error: finalize_grace '1w' is not a ");
    EXPECT_EQ(plan_problems("    finalize_grace: 32d\n"),
              "p.yaml:7:21: error: finalize_grace '32d' is longer than 31d; a draft would stay open past the end of "
              "the next period\n");
    EXPECT_EQ(plan_problems("    round_at: total\n"),
              "p.yaml:7:15: error: round_at 'total' is not one of: line, invoice\n");

    auto sub_problems = [](const std::string& keys, Subscription* out) {
        Catalog catalog = testing::MustCatalog({testing::kDoubaoPlan});
        Diagnostics d;
        auto subs =
            ParseSubscriptions("subscriptions:\n  - customer: c\n    plan: doubao\n" + keys, "s.yaml", &catalog, &d);
        std::string all;
        for (const auto& x : d) all += x.ToString() + "\n";
        if (subs && out != nullptr) *out = subs->at(0);
        return all;
    };
    Subscription s;
    EXPECT_EQ(sub_problems("", &s), "");
    EXPECT_FALSE(s.finalize_grace.has_value());
    EXPECT_FALSE(s.billing_anchor_day.has_value());
    EXPECT_EQ(sub_problems("    finalize_grace: 36h\n    billing_anchor_day: 28\n", &s), "");
    EXPECT_EQ(s.finalize_grace, std::chrono::hours(36));
    EXPECT_EQ(s.billing_anchor_day, 28);
    EXPECT_EQ(sub_problems("    billing_anchor_day: 1\n", &s), "");
    EXPECT_EQ(s.billing_anchor_day, 1);
    const std::string day_error =
        " is not a day of the month from 1 to 28 (29, 30 and 31 are not in every month; 1 is "
        "the calendar month)\n";
    EXPECT_EQ(sub_problems("    billing_anchor_day: 29\n", nullptr),
              "s.yaml:4:25: error: billing_anchor_day '29'" + day_error);
    EXPECT_EQ(sub_problems("    billing_anchor_day: 0\n", nullptr),
              "s.yaml:4:25: error: billing_anchor_day '0'" + day_error);
    EXPECT_EQ(sub_problems("    billing_anchor_day: 1.5\n", nullptr),
              "s.yaml:4:25: error: billing_anchor_day '1.5'" + day_error);
    EXPECT_EQ(sub_problems("    billing_anchor_day: fifteenth\n", nullptr),
              "s.yaml:4:25: error: billing_anchor_day 'fifteenth'" + day_error);
    EXPECT_EQ(sub_problems("    finalize_grace: soon\n", nullptr),
              "s.yaml:4:21: error: finalize_grace 'soon' is not a duration like 24h, 36h or 2d (a whole number of s, "
              "m, h or d)\n");
}

}  // namespace
}  // namespace tally
