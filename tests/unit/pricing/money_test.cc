#include "pricing/money.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace tally {
namespace {

// What the types allow and refuse, checked at compile time. The refusals
// are checked by a real compiler run too (tests/compile_fail/), since a
// concept answers "no" for any reason, typos included.
// clang-format 14 would write `a * b` in a requires-expression as `a* b`.
// clang-format off
template <typename A, typename B>
concept Addable = requires(A a, B b) { a + b; };
template <typename A, typename B>
concept Subtractable = requires(A a, B b) { a - b; };
template <typename A, typename B>
concept Multipliable = requires(A a, B b) { a * b; };
// clang-format on

static_assert(Addable<Amount, Amount> && Subtractable<Amount, Amount>);
static_assert(!Addable<Amount, Rate> && !Addable<Rate, Amount> && !Subtractable<Amount, Rate>);
static_assert(!Addable<Amount, Multiplier> && !Addable<Multiplier, Amount>);
static_assert(!Addable<Percent, Amount> && !Addable<Amount, Percent> && !Subtractable<Amount, Percent>);
static_assert(!Addable<Amount, Decimal> && !Addable<Decimal, Amount> && !Addable<Amount, int64_t>);
static_assert(!Addable<Rate, Rate> && !Addable<Percent, Percent> && !Addable<Multiplier, Multiplier>);
static_assert(Multipliable<Amount, Multiplier> && Multipliable<Amount, Percent> && Multipliable<Rate, Multiplier>);
static_assert(!Multipliable<Amount, Amount> && !Multipliable<Amount, Rate> && !Multipliable<Rate, Percent>);
static_assert(!Multipliable<Amount, Decimal> && !Multipliable<Rate, Decimal> && !Multipliable<Amount, int64_t>);

Decimal D(const char* text) {
    auto d = Decimal::Parse(text);
    EXPECT_TRUE(d.has_value()) << text;
    return d.value_or(Decimal());
}

Currency C(const char* code) {
    auto c = Currency::FromCode(code);
    EXPECT_TRUE(c.has_value()) << code;
    return c.value_or(Currency());
}

TEST(Amount, AddsAndSubtractsInOneCurrency) {
    const Amount a(C("CNY"), D("1.00"));
    const Amount b(C("CNY"), D("0.005"));
    EXPECT_EQ((a + b).ToString(), "1.005");
    EXPECT_EQ((a - b).ToString(), "0.995");
    EXPECT_EQ((a + a).ToString(2), "2.00");
    EXPECT_EQ((-a).ToString(2), "-1.00");
    EXPECT_EQ((a + b).currency(), C("CNY"));
    Amount sum = Amount::Zero(C("CNY"));
    sum += a;
    sum -= b;
    EXPECT_EQ(sum, Amount(C("CNY"), D("0.995")));
    EXPECT_LT(b, a);
    EXPECT_EQ(Amount::Min(a, b), b);
    EXPECT_EQ(Amount::Max(a, b), a);
    EXPECT_TRUE(Amount::Zero(C("USD")).is_zero());
    EXPECT_TRUE((-a).is_negative());
}

TEST(Amount, OfTwoCurrenciesAreNotEqual) {
    EXPECT_NE(Amount(C("CNY"), D("1")), Amount(C("USD"), D("1")));
    EXPECT_NE(Amount::Zero(C("CNY")), Amount());
    EXPECT_EQ(Amount(), Amount() + Amount());  // zero of no currency adds to itself only
}

TEST(AmountDeathTest, CurrenciesNeverAdd) {
    const Amount cny(C("CNY"), D("1.00"));
    const Amount usd(C("USD"), D("1.00"));
    EXPECT_DEATH((void)(cny + usd), "currency mismatch: add CNY and USD");
    EXPECT_DEATH((void)(cny - usd), "currency mismatch: subtract CNY and USD");
    EXPECT_DEATH((void)(cny < usd), "currency mismatch: compare CNY and USD");
    EXPECT_DEATH((void)(cny + Amount()), "currency mismatch: add CNY and no currency");
}

TEST(Amount, RoundsToTheMinorUnitWithTheGivenMode) {
    EXPECT_EQ(Amount(C("JPY"), D("1.005")).RoundToMinor(RoundingMode::kHalfEven).ToString(), "1");
    EXPECT_EQ(Amount(C("CNY"), D("0.125")).RoundToMinor(RoundingMode::kHalfEven).ToString(2), "0.12");
    EXPECT_EQ(Amount(C("CNY"), D("0.125")).RoundToMinor(RoundingMode::kHalfUp).ToString(2), "0.13");
    EXPECT_EQ(Amount(C("KWD"), D("0.0005")).RoundToMinor(RoundingMode::kUp).ToString(), "0.001");
    EXPECT_EQ(Amount(C("KWD"), D("0.0005")).RoundToMinor(RoundingMode::kUp).currency(), C("KWD"));
    EXPECT_FALSE(Currency::FromCode("XXX").has_value());
    EXPECT_EQ(C("KWD").minor_digits(), 3);
}

TEST(Amount, TimesPercentAndMultiplier) {
    const Amount subtotal(C("CNY"), D("157.00"));
    EXPECT_EQ((subtotal * Percent(D("6"))).ToString(), "9.42");
    EXPECT_EQ((Amount(C("CNY"), D("1.03")) * Percent(D("6"))).ToString(), "0.0618");
    EXPECT_EQ((subtotal * Percent()).ToString(), "0");
    EXPECT_EQ((subtotal * Multiplier(D("0.5"))).ToString(), "78.5");
    EXPECT_EQ((subtotal * Multiplier(D("0.5"))).currency(), C("CNY"));
    EXPECT_EQ(Percent(D("6")).Fraction().ToString(), "0.06");
    EXPECT_EQ(Percent(D("12.5")).ToString(), "12.5");
    EXPECT_LT(Percent(D("6")), Percent(D("100")));
}

TEST(Amount, OverflowThrowsAsDecimalDoes) {
    const Amount huge(C("CNY"), Decimal::FromRaw(Decimal::kOne * Decimal::kOne * 100));
    EXPECT_THROW((void)(huge + huge), OverflowError);
    EXPECT_THROW((void)(huge * Multiplier(D("1000000"))), OverflowError);
}

TEST(Rate, TimesQuantityIsAnAmountOfTheGivenCurrency) {
    const Rate rate(D("0.80"), 1'000'000);
    const Amount a = rate.AmountFor(30500, C("CNY"), RoundingMode::kHalfEven);
    EXPECT_EQ(a.ToString(), "0.0244");
    EXPECT_EQ(a.currency(), C("CNY"));
    EXPECT_EQ(Rate(D("0.123456789"), 1'000'000).AmountFor(1, C("USD"), RoundingMode::kHalfEven).ToString(),
              "0.000000123456789");
    EXPECT_EQ(Rate(D("1"), 3).AmountFor(1, C("USD"), RoundingMode::kDown).ToString(), "0.333333333333333333");
    EXPECT_EQ(Rate(D("1"), 3).AmountFor(1, C("USD"), RoundingMode::kUp).ToString(), "0.333333333333333334");
}

TEST(Rate, TimesMultiplierKeepsItsPer) {
    const Rate night = Rate(D("8"), 1000) * Multiplier(D("0.5"));
    EXPECT_EQ(night.price().ToString(), "4");
    EXPECT_EQ(night.per(), 1000);
    EXPECT_EQ(night, Rate(D("4"), 1000));
    EXPECT_NE(night, Rate(D("4"), 1'000'000));
}

}  // namespace
}  // namespace tally
