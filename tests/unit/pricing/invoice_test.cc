#include "pricing/invoice.h"

#include <gtest/gtest.h>

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
    for (auto [mode, in, out, rounding] : {std::tuple{"half_even", "0.12", "0.14", ""},  // 0.26 - 0.26: no line
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

}  // namespace
}  // namespace tally
