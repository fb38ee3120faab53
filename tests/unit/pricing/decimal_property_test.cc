// Decimal arithmetic against an independent reference: Boost.Multiprecision
// cpp_int (arbitrary precision, test code only). A seeded PRNG draws
// operands across magnitudes (zero, tiny, short decimals, whole numbers,
// huge, next to the int128 limits, negative) and pairs whose product sits
// right at the overflow boundary. For every case the reference computes the
// exact result, rounds it once, and decides whether it fits in 128 bits;
// Decimal must return the same raw value or throw OverflowError exactly when
// it does not fit.
//
// The seed is fixed so that CI is deterministic; a failure prints it.
// Explore or replay another: TALLY_SEED=12345 ./build/tests/tally_pricing_tests
//   --gtest_filter='DecimalProperty.*'
#include <gtest/gtest.h>

#include <array>
#include <boost/multiprecision/cpp_int.hpp>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <random>
#include <string>

#include "pricing/decimal.h"

namespace tally {
namespace {

using boost::multiprecision::cpp_int;

constexpr uint64_t kDefaultSeed = 20240601;
constexpr int kCasesPerProperty = 3000;
constexpr std::array<RoundingMode, 4> kModes = {RoundingMode::kHalfEven, RoundingMode::kHalfUp, RoundingMode::kDown,
                                                RoundingMode::kUp};

uint64_t SeedFromEnvironment() {
    const char* text = std::getenv("TALLY_SEED");
    if (text == nullptr || *text == '\0') return kDefaultSeed;
    return std::strtoull(text, nullptr, 10);
}

std::string SeedTrace(uint64_t seed) {
    return "seed=" + std::to_string(seed) + " (replay with TALLY_SEED=" + std::to_string(seed) + ")";
}

const cpp_int& BigOne() {
    static const cpp_int one = boost::multiprecision::pow(cpp_int(10), 18);
    return one;
}
const cpp_int& BigMin() {
    static const cpp_int min = -(cpp_int(1) << 127);
    return min;
}
const cpp_int& BigMax() {
    static const cpp_int max = (cpp_int(1) << 127) - 1;
    return max;
}

cpp_int ToBig(int128 value) {
    // Through the two's-complement bits, so INT128_MIN needs no special case.
    const auto bits = static_cast<uint128>(value);
    cpp_int big = static_cast<uint64_t>(bits >> 64);
    big <<= 64;
    big += static_cast<uint64_t>(bits);
    if (value < 0) big -= cpp_int(1) << 128;
    return big;
}

int128 FromBig(const cpp_int& big) {
    EXPECT_TRUE(big >= BigMin() && big <= BigMax()) << big;
    cpp_int bits = big < 0 ? big + (cpp_int(1) << 128) : big;
    const cpp_int mask64 = (cpp_int(1) << 64) - 1;
    const auto hi = static_cast<uint64_t>(bits >> 64);
    const auto lo = static_cast<uint64_t>(bits & mask64);
    return static_cast<int128>((static_cast<uint128>(hi) << 64) | lo);
}

// numerator / denominator (> 0) rounded with `mode`: the quotient truncated
// toward zero, then moved one unit away from zero when the mode says so,
// decided by comparing twice the remainder with the denominator.
cpp_int RoundedQuotient(const cpp_int& numerator, const cpp_int& denominator, RoundingMode mode) {
    cpp_int quotient = numerator / denominator;  // truncates toward zero
    cpp_int remainder = numerator - quotient * denominator;
    if (remainder == 0) return quotient;
    const cpp_int twice = 2 * abs(remainder);
    bool away = false;
    switch (mode) {
        case RoundingMode::kDown: away = false; break;
        case RoundingMode::kUp: away = true; break;
        case RoundingMode::kHalfUp: away = twice >= denominator; break;
        case RoundingMode::kHalfEven:
            away = twice > denominator || (twice == denominator && bit_test(quotient, 0));
            break;
    }
    if (!away) return quotient;
    return numerator < 0 ? cpp_int(quotient - 1) : cpp_int(quotient + 1);
}

// The reference result in raw units, or nullopt when it leaves int128.
std::optional<cpp_int> InRange(const cpp_int& raw) {
    if (raw < BigMin() || raw > BigMax()) return std::nullopt;
    return raw;
}

// Runs `operation` and compares it with `expected` (nullopt: must throw).
void ExpectMatches(const std::optional<cpp_int>& expected, const std::function<Decimal()>& operation,
                   const std::string& what) {
    if (!expected) {
        EXPECT_THROW(operation(), OverflowError) << what << " should overflow";
        return;
    }
    try {
        cpp_int got = ToBig(operation().raw());
        EXPECT_EQ(got, *expected) << what;
    } catch (const OverflowError& error) {
        ADD_FAILURE() << what << " threw OverflowError (" << error.what() << "), expected raw " << *expected;
    }
}

class Generator {
   public:
    explicit Generator(uint64_t seed) : rng_(seed) {}

    uint64_t Below(uint64_t bound) { return std::uniform_int_distribution<uint64_t>(0, bound - 1)(rng_); }
    bool Coin() { return Below(2) == 1; }

    // A raw Decimal value drawn from one of several magnitude families.
    int128 Raw() {
        int128 magnitude = 0;
        switch (Below(7)) {
            case 0: magnitude = static_cast<int128>(Below(1000)); break;  // zero and tiny (<= 10^-15)
            case 1: magnitude = Digits(1 + static_cast<int>(Below(38))); break;
            case 2: magnitude = ShortDecimal(); break;
            case 3: magnitude = static_cast<int128>(Below(uint64_t{1} << 63)) * Decimal::kOne; break;
            case 4: magnitude = static_cast<int128>(Full() >> 1); break;  // any size, mostly huge
            case 5: magnitude = ToNative(BigMax() - static_cast<int64_t>(Below(1000))); break;
            case 6: magnitude = ToNative(Pow10(static_cast<int>(Below(39)))); break;
        }
        if (Coin()) return -magnitude;
        if (Below(50) == 0) return -magnitude - 1;  // reaches INT128_MIN from the near-limit family
        return magnitude;
    }

    // A quantity of units: zero, small, any size up to INT64_MAX.
    int64_t Quantity() {
        switch (Below(4)) {
            case 0: return static_cast<int64_t>(Below(1000));
            case 1: return static_cast<int64_t>(Below(Pow10Small(1 + static_cast<int>(Below(18)))));
            case 2: return INT64_MAX - static_cast<int64_t>(Below(1000));
            default: return static_cast<int64_t>(Below(uint64_t{1} << 63));
        }
    }

    // The `per` of a rate: the usual 1, 1000, 10^6, or anything positive.
    int64_t Per() {
        switch (Below(4)) {
            case 0: return std::array<int64_t, 4>{1, 1000, 1'000'000, 1'000'000'000}[Below(4)];
            case 1: return 1 + static_cast<int64_t>(Below(Pow10Small(1 + static_cast<int>(Below(18)))));
            case 2: return INT64_MAX - static_cast<int64_t>(Below(1000));
            default: return 1 + static_cast<int64_t>(Below((uint64_t{1} << 63) - 1));
        }
    }

    // target + delta for a small delta, clamped to the int128 range.
    int128 Near(const cpp_int& target) {
        cpp_int value = target + static_cast<int64_t>(Below(7)) - 3;
        if (value > BigMax()) value = BigMax();
        if (value < BigMin()) value = BigMin();
        return FromBig(value);
    }

   private:
    uint128 Full() { return (static_cast<uint128>(rng_()) << 64) | rng_(); }
    static cpp_int Pow10(int exponent) {
        return boost::multiprecision::pow(cpp_int(10), static_cast<unsigned>(exponent));
    }
    static uint64_t Pow10Small(int exponent) { return static_cast<uint64_t>(Pow10(exponent)); }
    static int128 ToNative(const cpp_int& value) { return FromBig(value); }
    // A uniform value with at most `digits` decimal digits.
    int128 Digits(int digits) { return FromBig(cpp_int(Full()) % Pow10(digits)); }
    // A few significant digits at some decimal position: exact products and ties.
    int128 ShortDecimal() {
        cpp_int mantissa = 1 + Below(Pow10Small(1 + static_cast<int>(Below(6))));
        return FromBig(mantissa * Pow10(static_cast<int>(Below(33))));
    }

    std::mt19937_64 rng_;
};

std::string Describe(const char* operation, int128 a, const std::string& b, RoundingMode mode) {
    return std::string(operation) + "(" + Decimal::FromRaw(a).ToString() + ", " + b + ", " +
           std::string(RoundingModeName(mode)) + ")";
}

TEST(DecimalProperty, MulMatchesExactProductRoundedOnce) {
    const uint64_t seed = SeedFromEnvironment();
    SCOPED_TRACE(SeedTrace(seed));
    Generator gen(seed);
    for (int i = 0; i < kCasesPerProperty && !HasFailure(); ++i) {
        const int128 b = gen.Raw();
        int128 a = gen.Raw();
        if (b != 0 && gen.Coin()) {
            // Put the product right at the edge: |a * b| / 10^18 ~ 2^127.
            cpp_int edge = (cpp_int(1) << 127) * BigOne() / abs(ToBig(b));
            a = gen.Near(gen.Coin() ? edge : -edge);
        }
        const cpp_int exact = ToBig(a) * ToBig(b);
        for (RoundingMode mode : kModes) {
            const std::string what =
                "case " + std::to_string(i) + ": " + Describe("Mul", a, Decimal::FromRaw(b).ToString(), mode);
            ExpectMatches(
                InRange(RoundedQuotient(exact, BigOne(), mode)),
                [&] { return Decimal::FromRaw(a).Mul(Decimal::FromRaw(b), mode); }, what);
        }
        ExpectMatches(
            InRange(RoundedQuotient(exact, BigOne(), RoundingMode::kHalfEven)),
            [&] { return Decimal::FromRaw(a).Mul(Decimal::FromRaw(b)); },
            "case " + std::to_string(i) + ": Mul without a mode is half-even");
    }
}

TEST(DecimalProperty, PriceOfMatchesExactPriceRoundedOnce) {
    const uint64_t seed = SeedFromEnvironment();
    SCOPED_TRACE(SeedTrace(seed));
    Generator gen(seed);
    for (int i = 0; i < kCasesPerProperty && !HasFailure(); ++i) {
        const int64_t quantity = gen.Quantity();
        const int64_t per = gen.Per();
        int128 rate = gen.Raw();
        if (quantity != 0 && gen.Coin()) {
            // A price right at the edge: |rate| * quantity / per ~ 2^127.
            cpp_int edge = (cpp_int(1) << 127) * per / quantity;
            rate = gen.Near(gen.Coin() ? edge : -edge);
        }
        const cpp_int exact = ToBig(rate) * quantity;
        const std::string args = std::to_string(quantity) + " per " + std::to_string(per);
        for (RoundingMode mode : kModes) {
            const std::string what = "case " + std::to_string(i) + ": " + Describe("PriceOf", rate, args, mode);
            ExpectMatches(
                InRange(RoundedQuotient(exact, per, mode)),
                [&] { return Decimal::FromRaw(rate).PriceOf(quantity, per, mode); }, what);
        }
        ExpectMatches(
            InRange(RoundedQuotient(exact, per, RoundingMode::kHalfEven)),
            [&] { return Decimal::FromRaw(rate).PriceOf(quantity, per); },
            "case " + std::to_string(i) + ": PriceOf without a mode is half-even");
    }
}

TEST(DecimalProperty, RoundAndMulIntMatchTheReference) {
    const uint64_t seed = SeedFromEnvironment();
    SCOPED_TRACE(SeedTrace(seed));
    Generator gen(seed);
    for (int i = 0; i < kCasesPerProperty && !HasFailure(); ++i) {
        const int128 raw = gen.Raw();
        const int digits = static_cast<int>(gen.Below(Decimal::kScale + 1));
        const RoundingMode mode = kModes[gen.Below(kModes.size())];
        const cpp_int unit = boost::multiprecision::pow(cpp_int(10), static_cast<unsigned>(Decimal::kScale - digits));
        ExpectMatches(
            InRange(RoundedQuotient(ToBig(raw), unit, mode) * unit),
            [&] { return Decimal::FromRaw(raw).Round(digits, mode); },
            "case " + std::to_string(i) + ": " + Describe("Round", raw, std::to_string(digits), mode));

        const auto n = static_cast<int64_t>(gen.Quantity()) * (gen.Coin() ? -1 : 1);
        ExpectMatches(
            InRange(ToBig(raw) * n), [&] { return Decimal::FromRaw(raw).MulInt(n); },
            "case " + std::to_string(i) + ": MulInt(" + Decimal::FromRaw(raw).ToString() + ", " + std::to_string(n) +
                ")");
    }
}

// The reference itself, on cases worked by hand, so that a wrong reference
// cannot agree with a wrong Decimal.
TEST(DecimalProperty, ReferenceRoundsLikeTheDocumentedModes) {
    EXPECT_EQ(RoundedQuotient(125, 10, RoundingMode::kHalfEven), 12);
    EXPECT_EQ(RoundedQuotient(135, 10, RoundingMode::kHalfEven), 14);
    EXPECT_EQ(RoundedQuotient(-125, 10, RoundingMode::kHalfEven), -12);
    EXPECT_EQ(RoundedQuotient(-125, 10, RoundingMode::kHalfUp), -13);
    EXPECT_EQ(RoundedQuotient(-129, 10, RoundingMode::kDown), -12);
    EXPECT_EQ(RoundedQuotient(-121, 10, RoundingMode::kUp), -13);
    EXPECT_EQ(ToBig(FromBig(BigMin())), BigMin());
    EXPECT_EQ(ToBig(FromBig(BigMax())), BigMax());
    EXPECT_FALSE(InRange(BigMax() + 1).has_value());
}

}  // namespace
}  // namespace tally
