// Money and what scales it, as distinct value types.
// Each class is [[nodiscard]], so a computed Amount or Rate cannot be
// dropped by mistake (its friend operators included).
//
// Decimal (decimal.h) is the exact arithmetic underneath; these types say
// what a number means, so that the sums that make no sense do not compile:
//
//   Amount + Amount      -> Amount  (same currency: TALLY_ASSERT otherwise)
//   Amount * Multiplier  -> Amount
//   Amount * Percent     -> Amount  (amount * percent / 100)
//   Rate * Multiplier    -> Rate
//   Rate.AmountFor(quantity, currency, mode) -> Amount
//
// and nothing else: no Amount + Rate, Amount + Multiplier, Percent + Amount,
// Amount + Decimal, no implicit Decimal -> Amount. tests/compile_fail/ checks
// that these are refused, with a control that the allowed ones compile.
//
// A currency mismatch is a programmer error, not an input problem: plans keep
// one currency across versions (plan_yaml.cc) and a subscription's amounts
// take its plan's currency (subscription.cc), so every amount on one invoice
// has the invoice's currency by construction. It is a TALLY_ASSERT, which
// aborts, rather than an exception, which PriceRollups would turn into one
// invoice's `error` and so hide the bug.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <type_traits>

#include "pricing/currency.h"
#include "pricing/decimal.h"

namespace tally {

// A factor on a rate or an amount: window, batch and tier multipliers
// ("0.5" halves the price).
class [[nodiscard]] Multiplier {
   public:
    explicit constexpr Multiplier(Decimal factor) : factor_(factor) {}

    // For display and serialization; arithmetic goes through the operators.
    [[nodiscard]] Decimal value() const { return factor_; }
    [[nodiscard]] std::string ToString() const { return factor_.ToString(); }
    friend bool operator==(const Multiplier& a, const Multiplier& b) = default;

   private:
    Decimal factor_;
};

// A percentage: tax, contract discounts, coupons. Percent(6) means 6 %.
class [[nodiscard]] Percent {
   public:
    constexpr Percent() = default;  // 0 %
    explicit constexpr Percent(Decimal percent) : percent_(percent) {}

    // The number of percent (6 for 6 %), for display and serialization.
    [[nodiscard]] Decimal value() const { return percent_; }
    // percent / 100, half-even at the 18th place (exact up to 16 places).
    [[nodiscard]] Decimal Fraction() const;
    [[nodiscard]] std::string ToString() const { return percent_.ToString(); }
    friend auto operator<=>(const Percent& a, const Percent& b) = default;
    friend bool operator==(const Percent& a, const Percent& b) = default;

   private:
    Decimal percent_;
};

// An exact amount of one currency, at Decimal's 10^-18.
class [[nodiscard]] Amount {
   public:
    // Zero of no currency: a field not priced yet (an invoice that failed
    // keeps them). It adds only to amounts of no currency.
    constexpr Amount() = default;
    explicit constexpr Amount(Currency currency, Decimal value) : value_(value), currency_(currency) {}
    [[nodiscard]] static constexpr Amount Zero(Currency currency) { return Amount(currency, Decimal()); }

    [[nodiscard]] Currency currency() const { return currency_; }
    // For display and serialization; arithmetic goes through the operators.
    [[nodiscard]] Decimal value() const { return value_; }
    [[nodiscard]] bool is_zero() const { return value_.is_zero(); }
    [[nodiscard]] bool is_negative() const { return value_.is_negative(); }

    // REQUIRES: a.currency() == b.currency() (TALLY_ASSERT). Throws
    // OverflowError instead of wrapping, as Decimal does.
    friend Amount operator+(const Amount& a, const Amount& b);
    friend Amount operator-(const Amount& a, const Amount& b);
    [[nodiscard]] Amount operator-() const { return Amount(currency_, -value_); }
    Amount& operator+=(const Amount& b) { return *this = *this + b; }
    Amount& operator-=(const Amount& b) { return *this = *this - b; }

    // Rounded half-even at the 18th place (Decimal::Mul).
    friend Amount operator*(const Amount& a, const Multiplier& m);
    // a * percent / 100: a.Mul(p.Fraction()), half-even at the 18th place.
    friend Amount operator*(const Amount& a, const Percent& p);

    // Ordering REQUIRES one currency (TALLY_ASSERT). Equality does not:
    // amounts of two currencies are simply not equal.
    friend std::strong_ordering operator<=>(const Amount& a, const Amount& b);
    friend bool operator==(const Amount& a, const Amount& b) = default;
    [[nodiscard]] static Amount Min(const Amount& a, const Amount& b) { return b < a ? b : a; }
    [[nodiscard]] static Amount Max(const Amount& a, const Amount& b) { return a < b ? b : a; }

    // Rounded to the currency's minor unit (2 places for CNY, 0 for JPY).
    // No default mode: the plan names it. Throws OverflowError like Decimal::Round.
    [[nodiscard]] Amount RoundToMinor(RoundingMode mode) const;

    // The number without the currency code, trailing zeros removed but at
    // least `min_fraction_digits` fractional digits ("0.8", "2.00").
    [[nodiscard]] std::string ToString(int min_fraction_digits = 0) const {
        return value_.ToString(min_fraction_digits);
    }

   private:
    Decimal value_;
    Currency currency_;
};

// A price quoted as in a price sheet: `price` per `per` units. Only a
// multiplier scales it, and only a quantity (and a currency) turns it into
// money: a Rate is never added to an Amount.
class [[nodiscard]] Rate {
   public:
    static constexpr int64_t kPerDefault = 1'000'000;

    // REQUIRES: per > 0.
    explicit Rate(Decimal price, int64_t per);

    [[nodiscard]] Decimal price() const { return price_; }
    [[nodiscard]] int64_t per() const { return per_; }

    // quantity * price / per (quantity >= 0), rounded once at the 18th place
    // with `mode` (Decimal::PriceOf: exact for rates with at most 18 -
    // log10(per) places). Throws OverflowError when it does not fit.
    [[nodiscard]] Amount AmountFor(int64_t quantity, Currency currency, RoundingMode mode) const;

    // The price times the factor, half-even at the 18th place; same `per`.
    friend Rate operator*(const Rate& r, const Multiplier& m);
    friend bool operator==(const Rate& a, const Rate& b) = default;

   private:
    Decimal price_;
    int64_t per_;
};

// Small value types: pass by value or const&, copy freely (Style 3.3).
static_assert(sizeof(Decimal) == 16, "Decimal is one int128");
static_assert(sizeof(Currency) == 8, "Currency is a code and its minor digits");
static_assert(sizeof(Multiplier) == sizeof(Decimal), "Multiplier is a Decimal with a meaning");
static_assert(sizeof(Percent) == sizeof(Decimal), "Percent is a Decimal with a meaning");
static_assert(sizeof(Amount) == 32, "Amount is a Decimal and a Currency, padded to int128 alignment");
static_assert(sizeof(Rate) == 32, "Rate is a Decimal and a 64-bit per, padded to int128 alignment");
static_assert(std::is_trivially_copyable_v<Amount> && std::is_trivially_copyable_v<Rate> &&
              std::is_trivially_copyable_v<Multiplier> && std::is_trivially_copyable_v<Percent>);
// The refusals that need no compiler run: no implicit conversions between them.
static_assert(!std::is_convertible_v<Decimal, Amount> && !std::is_convertible_v<Decimal, Multiplier> &&
              !std::is_convertible_v<Decimal, Percent> && !std::is_convertible_v<Amount, Decimal> &&
              !std::is_convertible_v<Percent, Multiplier> && !std::is_convertible_v<Multiplier, Percent>);

}  // namespace tally
