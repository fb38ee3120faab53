#include "pricing/decimal.h"

#include <gtest/gtest.h>

namespace tally {
namespace {

Decimal D(const char* text) {
    auto d = Decimal::Parse(text);
    EXPECT_TRUE(d.has_value()) << text;
    return d.value_or(Decimal());
}

TEST(Decimal, ParseAndPrintRoundTrip) {
    EXPECT_EQ(D("0.80").ToString(), "0.8");
    EXPECT_EQ(D("0.80").ToString(2), "0.80");
    EXPECT_EQ(D("-3").ToString(), "-3");
    EXPECT_EQ(D("+12.5").ToString(), "12.5");
    EXPECT_EQ(D("0.000000000000000001").ToString(), "0.000000000000000001");
    EXPECT_EQ(D("170141183460469231731.687303715884105727").raw(), static_cast<int128>(~static_cast<uint128>(0) >> 1));
    EXPECT_EQ(D(".5").ToString(), "0.5");
}

TEST(Decimal, RejectsWhatIsNotAPlainDecimal) {
    for (const char* bad : {"", "-", ".", "1.", "1e-3", "0x10", "1,5", "1.2.3", " 1", "1 ", "0.0000000000000000001",
                            "170141183460469231732"}) {
        EXPECT_FALSE(Decimal::Parse(bad).has_value()) << bad;
        EXPECT_FALSE(Decimal::ParseError(bad).empty()) << bad;
    }
    EXPECT_NE(Decimal::ParseError("1.2.3").find("two decimal points"), std::string::npos);
    EXPECT_NE(Decimal::ParseError("0.0000000000000000001").find("18 decimal places"), std::string::npos);
}

TEST(Decimal, PriceOfQuantityAtRatePerMillionIsExact) {
    // 30500 tokens at 0.80 CNY per 1M = 0.0244 exactly.
    EXPECT_EQ(D("0.80").PriceOf(30500, 1'000'000).ToString(), "0.0244");
    // A rate with 9 decimal places per 1M stays exact at 15 places.
    EXPECT_EQ(D("0.123456789").PriceOf(1, 1'000'000).ToString(), "0.000000123456789");
    // A month of a very large customer: 10^13 tokens at 24 per 1M.
    EXPECT_EQ(D("24").PriceOf(10'000'000'000'000, 1'000'000).ToString(), "240000000");
    EXPECT_EQ(D("0.017").PriceOf(1'000'000, 1'000'000).ToString(), "0.017");
}

TEST(Decimal, OverflowThrowsInsteadOfWrapping) {
    Decimal big = D("170141183460469231731");
    EXPECT_THROW(big + big, OverflowError);
    EXPECT_THROW(-big - big, OverflowError);
    EXPECT_THROW(big.MulInt(2), OverflowError);
    EXPECT_THROW(D("1000000000").PriceOf(INT64_MAX, 1), OverflowError);
    EXPECT_THROW(CheckedAdd(INT64_MAX, 1), OverflowError);
    EXPECT_EQ(CheckedAdd(INT64_MAX - 1, 1), INT64_MAX);
}

TEST(Decimal, MulIsExactWhenItFitsAndHalfEvenBelowTheScale) {
    EXPECT_EQ(D("0.135").Mul(D("0.5")).ToString(), "0.0675");
    EXPECT_EQ(D("2.4").Mul(D("0.5")).ToString(), "1.2");
    EXPECT_EQ(D("12345678901234.5").Mul(D("1000")).ToString(), "12345678901234500");
    // 0.000000000000000001 * 0.5 = 5e-19 -> ties to even (0); 3e-18*0.5 = 1.5e-18 -> 2e-18.
    EXPECT_EQ(D("0.000000000000000001").Mul(D("0.5")).ToString(), "0");
    EXPECT_EQ(D("0.000000000000000003").Mul(D("0.5")).ToString(), "0.000000000000000002");
}

TEST(Decimal, MulAtDoubleWidthDoesNotOverflowFalsely) {
    // The raws (1.2e22 and 1.1e18) multiply to 1.4e40, beyond 128 bits, but
    // the product is about 13,870. Exact product, worked out independently
    // (Python's decimal module at 200 digits):
    // 13869.212758725172979424527968299765279684.
    Decimal a = D("12345.123456789012345678");
    Decimal b = D("1.123456789012345678");
    EXPECT_EQ(a.Mul(b).ToString(), "13869.212758725172979425");
    EXPECT_EQ(b.Mul(a).ToString(), "13869.212758725172979425");
    EXPECT_EQ(a.Mul(b, RoundingMode::kHalfEven).ToString(), "13869.212758725172979425");
    EXPECT_EQ(a.Mul(b, RoundingMode::kHalfUp).ToString(), "13869.212758725172979425");
    EXPECT_EQ(a.Mul(b, RoundingMode::kDown).ToString(), "13869.212758725172979424");
    EXPECT_EQ(a.Mul(b, RoundingMode::kUp).ToString(), "13869.212758725172979425");
    EXPECT_EQ((-a).Mul(b).ToString(), "-13869.212758725172979425");
    EXPECT_EQ((-a).Mul(b, RoundingMode::kDown).ToString(), "-13869.212758725172979424");
}

TEST(Decimal, MulRoundsAnExactTieOnceAtDoubleWidth) {
    // 12345678901234567890.5 * 3.000000000000000001 =
    // 37037036703703703683.8456789012345678905: a tie at the 19th place, and
    // the mantissas alone (1.2e20 * 3e18) do not fit in 128 bits.
    Decimal a = D("12345678901234567890.5");
    Decimal b = D("3.000000000000000001");
    EXPECT_EQ(a.Mul(b).ToString(), "37037036703703703683.84567890123456789");
    EXPECT_EQ(a.Mul(b, RoundingMode::kHalfUp).ToString(), "37037036703703703683.845678901234567891");
    EXPECT_EQ((-a).Mul(b).ToString(), "-37037036703703703683.84567890123456789");
    EXPECT_EQ((-a).Mul(b, RoundingMode::kHalfUp).ToString(), "-37037036703703703683.845678901234567891");
}

TEST(Decimal, MulOverflowsOnlyOutsideTheRange) {
    Decimal max = Decimal::FromRaw(static_cast<int128>(~static_cast<uint128>(0) >> 1));
    Decimal min = Decimal::FromRaw(-max.raw() - 1);
    Decimal one = Decimal::FromInt(1);
    EXPECT_EQ(max.Mul(one), max);
    EXPECT_EQ(min.Mul(one), min);
    EXPECT_EQ(max.Mul(-one), Decimal::FromRaw(-max.raw()));
    EXPECT_THROW(min.Mul(-one), OverflowError);  // 2^127 units is one past the maximum
    EXPECT_THROW(max.Mul(D("1.000000000000000001")), OverflowError);
    EXPECT_EQ(min.Mul(D("0.5")).raw(), min.raw() / 2);
}

TEST(Decimal, PriceOfDoesNotOverflowFalselyWhenTheRateIsLarge) {
    // raw * 3 (3e38) exceeds 128 bits; the price, about 4.3e19, does not.
    Decimal rate = D("100000000000000000000.000000000000000001");
    EXPECT_EQ(rate.PriceOf(3, 7).ToString(), "42857142857142857142.857142857142857143");
    EXPECT_EQ(rate.PriceOf(3, 7, RoundingMode::kDown).ToString(), "42857142857142857142.857142857142857143");
    EXPECT_EQ(rate.PriceOf(3, 7, RoundingMode::kUp).ToString(), "42857142857142857142.857142857142857144");
    EXPECT_EQ((-rate).PriceOf(3, 7, RoundingMode::kUp).ToString(), "-42857142857142857142.857142857142857144");
}

TEST(Decimal, RoundOverflowThrowsInsteadOfWrapping) {
    Decimal max = Decimal::FromRaw(static_cast<int128>(~static_cast<uint128>(0) >> 1));
    EXPECT_THROW(max.Round(0, RoundingMode::kUp), OverflowError);
    EXPECT_THROW(max.Round(2, RoundingMode::kHalfEven), OverflowError);  // ...731.69 is past the maximum
    EXPECT_EQ(max.Round(0, RoundingMode::kDown).ToString(), "170141183460469231731");
}

struct RoundCase {
    const char* value;
    RoundingMode mode;
    const char* expected;
};

TEST(Decimal, RoundsToMinorUnitsWithEachMode) {
    const RoundCase cases[] = {
        {"0.125", RoundingMode::kHalfEven, "0.12"},  {"0.135", RoundingMode::kHalfEven, "0.14"},
        {"0.1251", RoundingMode::kHalfEven, "0.13"}, {"-0.125", RoundingMode::kHalfEven, "-0.12"},
        {"0.405", RoundingMode::kHalfEven, "0.4"},   {"0.125", RoundingMode::kHalfUp, "0.13"},
        {"-0.125", RoundingMode::kHalfUp, "-0.13"},  {"0.1249", RoundingMode::kHalfUp, "0.12"},
        {"0.129", RoundingMode::kDown, "0.12"},      {"-0.129", RoundingMode::kDown, "-0.12"},
        {"0.121", RoundingMode::kUp, "0.13"},        {"-0.121", RoundingMode::kUp, "-0.13"},
        {"0.12", RoundingMode::kUp, "0.12"},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(D(c.value).Round(2, c.mode).ToString(), c.expected) << c.value << " " << RoundingModeName(c.mode);
    }
    EXPECT_EQ(D("2.5").Round(0, RoundingMode::kHalfEven).ToString(), "2");
    EXPECT_EQ(D("3.5").Round(0, RoundingMode::kHalfEven).ToString(), "4");
}

}  // namespace
}  // namespace tally
