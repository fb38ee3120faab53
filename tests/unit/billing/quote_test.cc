#include "billing/quote.h"

#include <gtest/gtest.h>

#include "pricing/rater.h"
#include "unit/pricing/test_plans.h"

namespace tally::billing {
namespace {

using testing::Dec;

const Currency kCny = *Currency::FromCode("CNY");
const Currency kUsd = *Currency::FromCode("USD");

Amount Cny(const char* text) {
    return Amount(kCny, Dec(text));
}

InvoiceLine Usage(const char* model, const char* unit, const char* band, int64_t quantity, const char* amount) {
    InvoiceLine l;
    l.kind = LineKind::kUsage;
    l.plan_version = "v1";
    l.model = model;
    l.unit = unit;
    l.band = band;
    l.quantity = quantity;
    l.amount = Cny(amount);
    l.amount_rounded = Cny(amount);
    return l;
}

// An invoice whose totals add up its lines, with 6 % tax.
Invoice MakeInvoice(const char* plan, std::vector<InvoiceLine> lines, const char* tax) {
    Invoice inv;
    inv.customer = "acme";
    inv.customer_name = "Acme 科技";
    inv.plan = plan;
    inv.period = "2025-11";
    inv.currency = kCny;
    inv.lines = std::move(lines);
    inv.subtotal = Cny("0");
    for (const auto& l : inv.lines) inv.subtotal += l.amount_rounded;
    inv.tax = Cny(tax);
    inv.total = inv.subtotal + inv.tax;
    inv.amount_due = inv.total;
    inv.calls = 10;
    return inv;
}

std::string Pct(const std::optional<Percent>& p) {
    return p ? p->value().ToString(2) : "none";
}

TEST(PercentChange, ExactDecimalsRoundedHalfEvenToTwoPlaces) {
    EXPECT_EQ(Pct(PercentChange(Cny("100"), Cny("30"))), "-70.00");
    EXPECT_EQ(Pct(PercentChange(Cny("3"), Cny("4"))), "33.33");
    EXPECT_EQ(Pct(PercentChange(Cny("3"), Cny("5"))), "66.67");
    EXPECT_EQ(Pct(PercentChange(Cny("3"), Cny("1"))), "-66.67");
    EXPECT_EQ(Pct(PercentChange(Cny("10"), Cny("10"))), "0.00");
    // Exactly half a hundredth: to the even neighbour, both ways.
    EXPECT_EQ(Pct(PercentChange(Cny("8"), Cny("8.0004"))), "0.00");   // 0.005 %
    EXPECT_EQ(Pct(PercentChange(Cny("8"), Cny("8.0012"))), "0.02");   // 0.015 %
    EXPECT_EQ(Pct(PercentChange(Cny("8"), Cny("7.9988"))), "-0.02");  // -0.015 %
    // A fen on a hundred million: a quotient far below a hundredth.
    EXPECT_EQ(Pct(PercentChange(Cny("100000000"), Cny("100000000.01"))), "0.00");
    // Relative to a negative amount (a credit): the sign follows the arithmetic.
    EXPECT_EQ(Pct(PercentChange(Cny("-10"), Cny("-5"))), "-50.00");
    EXPECT_EQ(Pct(PercentChange(Cny("0.01"), Cny("1000000"))), "9999999900.00");
}

TEST(PercentChange, NoneFromZero) {
    EXPECT_FALSE(PercentChange(Cny("0"), Cny("5")).has_value());
    EXPECT_FALSE(PercentChange(Cny("0"), Cny("0")).has_value());
}

TEST(CompareInvoices, MatchesLinesByWhatTheyBillNotByVersion) {
    Invoice current = MakeInvoice("hunyuan",
                                  {Usage("hunyuan-pro", "input", "0-32000", 1000000, "30.00"),
                                   Usage("hunyuan-pro", "output", "0-32000", 200000, "20.00"),
                                   Usage("hunyuan-lite", "input", "all", 500, "0.40")},
                                  "3.02");
    InvoiceLine cut_in = Usage("hunyuan-pro", "input", "0-32000", 1000000, "9.00");
    cut_in.plan_version = "v2-cut";
    InvoiceLine cut_out = Usage("hunyuan-pro", "output", "0-32000", 200000, "6.00");
    cut_out.plan_version = "v2-cut";
    // The candidate prices a unit the current plan did not bill, and drops hunyuan-lite.
    InvoiceLine cached = Usage("hunyuan-pro", "cached_input", "0-32000", 300, "0.01");
    Invoice candidate = MakeInvoice("hunyuan", {cut_in, cut_out, cached}, "0.90");

    const CustomerQuote q = CompareInvoices("acme", "2025-11", {current}, {candidate});
    ASSERT_TRUE(q.errors.empty()) << q.errors.front();
    EXPECT_EQ(q.customer_name, "Acme 科技");
    EXPECT_EQ(q.currency, kCny);
    ASSERT_EQ(q.lines.size(), 4u);
    // Key order: model, then unit.
    const QuoteLine& lite = q.lines[0];
    EXPECT_EQ(lite.key.model, "hunyuan-lite");
    EXPECT_TRUE(lite.in_current);
    EXPECT_FALSE(lite.in_candidate);
    EXPECT_EQ(lite.quantity_current, 500);
    EXPECT_EQ(lite.quantity_candidate, 0);
    EXPECT_EQ(lite.amount.difference, Cny("-0.40"));
    EXPECT_EQ(Pct(lite.amount.change), "-100.00");

    const QuoteLine& pro_cached = q.lines[1];
    EXPECT_EQ(pro_cached.key.unit, "cached_input");
    EXPECT_FALSE(pro_cached.in_current);
    EXPECT_TRUE(pro_cached.in_candidate);
    EXPECT_EQ(pro_cached.amount.current, Cny("0"));
    EXPECT_EQ(pro_cached.amount.difference, Cny("0.01"));
    EXPECT_FALSE(pro_cached.amount.change.has_value());

    const QuoteLine& pro_in = q.lines[2];
    EXPECT_EQ(pro_in.key.unit, "input");
    EXPECT_TRUE(pro_in.in_current && pro_in.in_candidate);
    EXPECT_EQ(pro_in.quantity_current, 1000000);
    EXPECT_EQ(pro_in.quantity_candidate, 1000000);
    EXPECT_EQ(pro_in.amount.current, Cny("30.00"));
    EXPECT_EQ(pro_in.amount.candidate, Cny("9.00"));
    EXPECT_EQ(pro_in.amount.difference, Cny("-21.00"));
    EXPECT_EQ(Pct(pro_in.amount.change), "-70.00");

    EXPECT_EQ(q.subtotal.current, Cny("50.40"));
    EXPECT_EQ(q.subtotal.candidate, Cny("15.01"));
    EXPECT_EQ(q.subtotal.difference, Cny("-35.39"));
    EXPECT_EQ(Pct(q.subtotal.change), "-70.22");  // -35.39 / 50.40 = -70.218...
    EXPECT_EQ(q.tax.difference, Cny("-2.12"));
    EXPECT_EQ(q.total.current, Cny("53.42"));
    EXPECT_EQ(q.total.candidate, Cny("15.91"));
    EXPECT_EQ(q.total.difference, Cny("-37.51"));
    EXPECT_EQ(Pct(q.total.change), "-70.22");  // -37.51 / 53.42 = -70.217...
}

TEST(CompareInvoices, CellsTiersAndDiscountsAreSeparateLines) {
    InvoiceLine tier1 = Usage("m", "input", "all", 100, "1");
    tier1.tier = "volume #1";
    InvoiceLine tier2 = Usage("m", "input", "all", 50, "0.25");
    tier2.tier = "volume #2";
    InvoiceLine batch = Usage("m", "input", "all", 10, "0.05");
    batch.batch = true;
    InvoiceLine discount;
    discount.kind = LineKind::kDiscount;
    discount.description = "contract (10%)";
    discount.amount = discount.amount_rounded = Cny("-0.13");
    Invoice current = MakeInvoice("p", {tier1, tier2, batch, discount}, "0");
    InvoiceLine discount2 = discount;
    discount2.amount = discount2.amount_rounded = Cny("-0.10");
    Invoice candidate = MakeInvoice("p", {tier1, batch, discount2}, "0");
    const CustomerQuote q = CompareInvoices("acme", "2025-11", {current}, {candidate});
    ASSERT_TRUE(q.errors.empty());
    ASSERT_EQ(q.lines.size(), 4u);
    int matched = 0;
    for (const QuoteLine& l : q.lines) {
        if (l.in_current && l.in_candidate) ++matched;
        if (l.key.kind == LineKind::kDiscount) {
            EXPECT_EQ(l.amount.difference, Cny("0.03"));
        }
        if (l.key.tier == "volume #2") {
            EXPECT_FALSE(l.in_candidate);
        }
    }
    EXPECT_EQ(matched, 3);  // tier 1, batch, discount
    EXPECT_EQ(q.subtotal.difference, Cny("-0.22"));
}

TEST(CompareInvoices, InvoicesOfTwoPlansInThePeriodAddUp) {
    Invoice a = MakeInvoice("old", {Usage("m", "input", "all", 100, "1.00")}, "0");
    Invoice b = MakeInvoice("new", {Usage("m", "input", "all", 300, "2.00")}, "0");
    Invoice cand = MakeInvoice("cand", {Usage("m", "input", "all", 400, "2.50")}, "0");
    const CustomerQuote q = CompareInvoices("acme", "2025-11", {a, b}, {cand});
    ASSERT_TRUE(q.errors.empty());
    ASSERT_EQ(q.lines.size(), 1u);
    EXPECT_EQ(q.lines[0].quantity_current, 400);
    EXPECT_EQ(q.lines[0].amount.current, Cny("3.00"));
    EXPECT_EQ(q.plans_current, (std::vector<std::string>{"new", "old"}));
    EXPECT_EQ(q.calls_current, 20);
    EXPECT_EQ(q.calls_candidate, 10);
    EXPECT_EQ(q.total.difference, Cny("-0.50"));
}

TEST(CompareInvoices, RefusesWhatCannotBeCompared) {
    Invoice ok = MakeInvoice("p", {Usage("m", "input", "all", 1, "1")}, "0");
    Invoice failed;
    failed.customer = "acme";
    failed.period = "2025-11";
    failed.plan = "cand";
    failed.error = "model m has no rate for unit output in band all";
    CustomerQuote q = CompareInvoices("acme", "2025-11", {ok}, {failed});
    ASSERT_EQ(q.errors.size(), 1u);
    EXPECT_NE(q.errors[0].find("candidate invoice of plan cand not priced: model m has no rate"), std::string::npos);
    EXPECT_TRUE(q.lines.empty());

    Invoice dollars = ok;
    dollars.currency = kUsd;
    q = CompareInvoices("acme", "2025-11", {ok}, {dollars});
    ASSERT_EQ(q.errors.size(), 1u);
    EXPECT_NE(q.errors[0].find("in CNY, the candidate's in USD"), std::string::npos);

    q = CompareInvoices("acme", "2025-11", {}, {});
    ASSERT_EQ(q.errors.size(), 1u);
    EXPECT_NE(q.errors[0].find("no usage in 2025-11"), std::string::npos);
    EXPECT_TRUE(q.no_usage);

    // A customer new to the book (no current invoice) compares with zero.
    q = CompareInvoices("acme", "2025-11", {}, {ok});
    ASSERT_TRUE(q.errors.empty());
    EXPECT_EQ(q.total.current, Cny("0"));
    EXPECT_EQ(q.total.difference, Cny("1"));
    EXPECT_FALSE(q.total.change.has_value());
}

TEST(SumBook, TotalsPerCurrencyOfTheCustomersCompared) {
    Invoice a = MakeInvoice("p", {Usage("m", "input", "all", 1, "100.00")}, "6.00");
    Invoice a2 = MakeInvoice("p", {Usage("m", "input", "all", 1, "30.00")}, "1.80");
    Invoice b = a;
    b.customer = "beta";
    Invoice b2 = MakeInvoice("p", {Usage("m", "input", "all", 1, "50.00")}, "3.00");
    b2.customer = "beta";
    Invoice c = a;
    c.customer = "gamma";
    Invoice c_failed;
    c_failed.customer = "gamma";
    c_failed.period = "2025-11";
    c_failed.error = "overflow";
    const BookQuote book =
        SumBook({CompareInvoices("acme", "2025-11", {a}, {a2}), CompareInvoices("beta", "2025-11", {b}, {b2}),
                 CompareInvoices("gamma", "2025-11", {c}, {c_failed}), CompareInvoices("delta", "2025-11", {}, {})});
    EXPECT_EQ(book.customers.size(), 4u);
    EXPECT_EQ(book.customers_not_compared, 1);  // gamma; delta had no usage at all
    ASSERT_EQ(book.totals.size(), 1u);
    const BookTotal& t = book.totals[0];
    EXPECT_EQ(t.currency, kCny);
    EXPECT_EQ(t.customers, 2);
    EXPECT_EQ(t.subtotal.current, Cny("200.00"));
    EXPECT_EQ(t.subtotal.candidate, Cny("80.00"));
    EXPECT_EQ(t.total.current, Cny("212.00"));
    EXPECT_EQ(t.total.candidate, Cny("84.80"));
    EXPECT_EQ(t.total.difference, Cny("-127.20"));
    EXPECT_EQ(Pct(t.total.change), "-60.00");
}

TEST(ArchiveGap, OnlyEqualCountsMakeAQuote) {
    EXPECT_FALSE(ArchiveGap("acme", "2025-11", 100000, 100000).has_value());
    auto fewer = ArchiveGap("acme", "2025-11", 100000, 99000);
    ASSERT_TRUE(fewer.has_value());
    EXPECT_NE(fewer->find("the ledger bills 100000 calls but the archive holds 99000"), std::string::npos);
    EXPECT_NE(fewer->find("archive is incomplete"), std::string::npos);
    auto more = ArchiveGap("acme", "2025-11", 5, 6);
    ASSERT_TRUE(more.has_value());
    EXPECT_NE(more->find("no quote is made"), std::string::npos);
}

const char* const kGrantPlan = R"(
plan: base
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: UTC
    rates_per: 1
    models:
      m: {rates: {input: "1", output: "1"}}
)";

const char* const kGrantSubscriptions = R"(
subscriptions:
  - customer: acme
    plan: base
    coupons:
      - {code: WELCOME, amount: "30"}
    grants:
      - {name: prepaid, amount: "100"}
  - customer: beta
    plan: base
    grants:
      - {name: prepaid, amount: "100"}
)";

TEST(MoveOntoCandidate, RepointsEverySubscriptionAndCarriesWhatBalancesAreLeft) {
    Catalog catalog = testing::MustCatalog({kGrantPlan});
    std::vector<Subscription> subs = testing::MustSubscriptions(kGrantSubscriptions, &catalog);
    Rater rater(catalog, subs, "base", {});
    for (const char* customer : {"acme", "beta"}) {
        ASSERT_EQ(rater
                      .Add(testing::MakeEvent(
                          {.customer = customer, .model = "m", .time = "2025-10-03T12:00:00Z", .input = 50}))
                      .status,
                  RateStatus::kRated);
    }
    const std::vector<Invoice> october = PriceRollups(catalog, subs, "base", {}, rater.Rollups());
    ASSERT_EQ(october.size(), 2u);
    // acme: 50 - coupon 30 = 20, paid by the grant (80 left); beta: 50 paid (50 left).
    ASSERT_EQ(october[0].customer, "acme");
    ASSERT_EQ(october[0].grants.size(), 1u);
    EXPECT_EQ(october[0].grants[0].amount, Cny("20"));

    const std::vector<Subscription> moved = MoveOntoCandidate(subs, {"acme"}, "cut", october);
    ASSERT_EQ(moved.size(), subs.size());
    for (const Subscription& s : moved) {
        if (s.customer == "acme") {
            EXPECT_EQ(s.plan, "cut");
            ASSERT_EQ(s.grants.size(), 1u);
            EXPECT_EQ(s.grants[0].amount, Cny("80"));
            ASSERT_EQ(s.coupons.size(), 1u);
            ASSERT_TRUE(s.coupons[0].amount.has_value());
            EXPECT_EQ(*s.coupons[0].amount, Cny("0"));
        } else {
            // Not quoted: untouched, balances included.
            EXPECT_EQ(s.plan, "base");
            EXPECT_EQ(s.grants[0].amount, Cny("100"));
        }
    }
}

}  // namespace
}  // namespace tally::billing
