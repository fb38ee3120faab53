// Exact decimal arithmetic for money, rates and multipliers.
//
// A Decimal is a signed 128-bit integer counting units of 10^-18. That holds
// every amount Tally meets exactly: a rate with 9 decimal places quoted per
// 1,000,000 tokens is exact at 15 places, and the largest value (about
// 1.7 * 10^20 currency units) is far above a month of any customer's usage.
// No float or double is ever involved. Every operation that could overflow
// is checked and throws OverflowError instead of wrapping.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "base/int128.h"

namespace tally {

struct OverflowError : std::overflow_error {
    using std::overflow_error::overflow_error;
};

// How a value is rounded to fewer decimal places.
enum class RoundingMode : uint8_t {
    kHalfEven,  // banker's rounding: 0.125 -> 0.12, 0.135 -> 0.14 (the default)
    kHalfUp,    // ties away from zero: 0.125 -> 0.13, -0.125 -> -0.13
    kDown,      // toward zero (truncate)
    kUp,        // away from zero
};

std::string_view RoundingModeName(RoundingMode mode);
std::optional<RoundingMode> ParseRoundingMode(std::string_view text);

class Decimal {
   public:
    static constexpr int kScale = 18;
    static constexpr int128 kOne = static_cast<int128>(1'000'000'000'000'000'000LL);

    constexpr Decimal() = default;
    static constexpr Decimal FromRaw(int128 raw) {
        Decimal d;
        d.raw_ = raw;
        return d;
    }
    static Decimal FromInt(int64_t value);

    // Parses "12", "-0.80", "+3.125", "1e-3" is NOT accepted (prices are
    // written as plain decimals). At most kScale fractional digits. Returns
    // nullopt on anything else; ParseError() says why.
    static std::optional<Decimal> Parse(std::string_view text);
    static std::string ParseError(std::string_view text);

    int128 raw() const { return raw_; }
    bool is_zero() const { return raw_ == 0; }
    bool is_negative() const { return raw_ < 0; }
    // Number of fractional digits needed to print this value exactly (0..18).
    int fraction_digits() const;
    // True when the value has no fractional part.
    bool is_integer() const { return raw_ % kOne == 0; }

    // Plain decimal text with no exponent, trailing zeros removed but at
    // least `min_fraction_digits` fractional digits ("0.8", "2.00", "-3").
    std::string ToString(int min_fraction_digits = 0) const;

    Decimal operator-() const;
    friend Decimal operator+(Decimal a, Decimal b);
    friend Decimal operator-(Decimal a, Decimal b);
    Decimal& operator+=(Decimal b) { return *this = *this + b; }
    Decimal& operator-=(Decimal b) { return *this = *this - b; }
    friend auto operator<=>(Decimal a, Decimal b) = default;
    friend bool operator==(Decimal a, Decimal b) = default;

    // this * n, exact. Throws OverflowError when the product does not fit.
    Decimal MulInt(int64_t n) const;
    // this * other, computed at double width (256 bits) and rounded once at
    // the 18th place with `mode`. Exact whenever the true product has at
    // most 18 fractional digits. Throws OverflowError exactly when the
    // rounded product is outside the 128-bit range.
    Decimal Mul(Decimal other, RoundingMode mode) const;
    // Mul with RoundingMode::kHalfEven.
    Decimal Mul(Decimal other) const;
    // this / n for n > 0, rounded half-even at the 18th place if inexact.
    Decimal DivInt(int64_t n) const;
    // quantity * this / per: the price of `quantity` (>= 0) units at a rate
    // quoted per `per` (> 0) units. The product is taken at double width and
    // rounded once with `mode`; exact for rates with at most
    // 18 - log10(per) places. Throws OverflowError exactly when the rounded
    // price is outside the 128-bit range.
    Decimal PriceOf(int64_t quantity, int64_t per, RoundingMode mode) const;
    // PriceOf with RoundingMode::kHalfEven.
    Decimal PriceOf(int64_t quantity, int64_t per) const;
    // Rounded to `digits` fractional digits (0..18) with `mode`. Throws
    // OverflowError when rounding away from zero leaves the 128-bit range.
    Decimal Round(int digits, RoundingMode mode) const;

    static Decimal Min(Decimal a, Decimal b) { return a < b ? a : b; }
    static Decimal Max(Decimal a, Decimal b) { return a < b ? b : a; }

   private:
    int128 raw_ = 0;
};

// Divides `value` by `divisor` (> 0) rounding with `mode`. Exposed for tests.
int128 DivRound(int128 value, int128 divisor, RoundingMode mode);
int128 Pow10(int exponent);  // 0..38

// Checked integer helpers for quantities.
int64_t CheckedAdd(int64_t a, int64_t b);

}  // namespace tally
