#include "pricing/decimal.h"

#include <algorithm>
#include <array>
#include <cassert>

#include "base/assert.h"

namespace tally {

namespace {

constexpr int128 kInt128Max = static_cast<int128>(~static_cast<uint128>(0) >> 1);

// Strips trailing decimal zeros of a raw value: raw = mantissa * 10^zeros.
void StripZeros(int128 raw, int128* mantissa, int* zeros) {
    *mantissa = raw;
    *zeros = 0;
    if (raw == 0) return;
    while (*zeros < Decimal::kScale && *mantissa % 10 == 0) {
        *mantissa /= 10;
        ++*zeros;
    }
}

// An unsigned 256-bit integer: four 64-bit limbs, least significant first.
// Only what Mul and PriceOf need: the full product of two 128-bit
// magnitudes and its division by a 64-bit divisor.
struct Uint256 {
    std::array<uint64_t, 4> limbs{};
};

// |value| as unsigned. Defined for INT128_MIN too: 0 - 2^127 mod 2^128 = 2^127.
uint128 Magnitude(int128 value) {
    return value < 0 ? uint128{0} - static_cast<uint128>(value) : static_cast<uint128>(value);
}

// Schoolbook a * b. Each step fits in 128 bits:
// (2^64-1)^2 + 2 * (2^64-1) = 2^128 - 1.
Uint256 MulWide(uint128 a, uint128 b) {
    const std::array<uint64_t, 2> x = {static_cast<uint64_t>(a), static_cast<uint64_t>(a >> 64)};
    const std::array<uint64_t, 2> y = {static_cast<uint64_t>(b), static_cast<uint64_t>(b >> 64)};
    Uint256 product;
    for (size_t i = 0; i < x.size(); ++i) {
        uint64_t carry = 0;
        for (size_t j = 0; j < y.size(); ++j) {
            const uint128 step = static_cast<uint128>(x[i]) * y[j] + product.limbs[i + j] + carry;
            product.limbs[i + j] = static_cast<uint64_t>(step);
            carry = static_cast<uint64_t>(step >> 64);
        }
        product.limbs[i + y.size()] = carry;
    }
    return product;
}

// value /= divisor, returning the remainder. Long division one limb at a
// time: the running remainder is below divisor < 2^64, so each step's
// dividend fits in 128 bits.
uint64_t DivRemSmall(Uint256* value, uint64_t divisor) {
    TALLY_ASSERT(divisor > 0);
    uint128 remainder = 0;
    for (size_t i = value->limbs.size(); i-- > 0;) {
        const uint128 dividend = (remainder << 64) | value->limbs[i];
        value->limbs[i] = static_cast<uint64_t>(dividend / divisor);
        remainder = dividend % divisor;
    }
    return static_cast<uint64_t>(remainder);
}

void Increment(Uint256* value) {
    for (uint64_t& limb : value->limbs) {
        if (++limb != 0) return;
    }
    TALLY_UNREACHABLE();  // callers' quotients are far below 2^256 - 1
}

// Whether a magnitude whose division left `remainder` (< divisor) moves one
// unit away from zero. All four modes are symmetric in the sign, so
// rounding the magnitude and applying the sign afterwards is exact.
bool RoundsAway(RoundingMode mode, uint64_t remainder, uint64_t divisor, bool quotient_odd) {
    TALLY_ASSERT(remainder < divisor);
    if (remainder == 0) return false;
    const uint64_t rest = divisor - remainder;  // distance to the next multiple
    switch (mode) {
        case RoundingMode::kDown: return false;
        case RoundingMode::kUp: return true;
        case RoundingMode::kHalfUp: return remainder >= rest;
        case RoundingMode::kHalfEven: return remainder > rest || (remainder == rest && quotient_odd);
    }
    TALLY_UNREACHABLE();
}

// a * b / divisor, rounded once with `mode`. The product is exact at 256
// bits; nullopt exactly when the rounded result is outside the int128 range.
std::optional<int128> MulDivRound(int128 a, int128 b, uint64_t divisor, RoundingMode mode) {
    const bool negative = (a < 0) != (b < 0);
    Uint256 quotient = MulWide(Magnitude(a), Magnitude(b));
    const uint64_t remainder = DivRemSmall(&quotient, divisor);
    if (RoundsAway(mode, remainder, divisor, (quotient.limbs[0] & 1) != 0)) Increment(&quotient);
    if (quotient.limbs[2] != 0 || quotient.limbs[3] != 0) return std::nullopt;
    const uint128 magnitude = (static_cast<uint128>(quotient.limbs[1]) << 64) | quotient.limbs[0];
    const uint128 magnitude_max = negative ? uint128{1} << 127 : (uint128{1} << 127) - 1;
    if (magnitude > magnitude_max) return std::nullopt;
    return negative ? static_cast<int128>(uint128{0} - magnitude) : static_cast<int128>(magnitude);
}

}  // namespace

int128 Pow10(int exponent) {
    TALLY_ASSERT(exponent >= 0);
    TALLY_ASSERT(exponent <= 38);
    int128 result = 1;
    for (int i = 0; i < exponent; ++i) result *= 10;
    return result;
}

int64_t CheckedAdd(int64_t a, int64_t b) {
    int64_t result = 0;
    if (__builtin_add_overflow(a, b, &result)) {
        throw OverflowError("quantity overflow: the sum of counts exceeds 2^63-1");
    }
    return result;
}

std::string_view RoundingModeName(RoundingMode mode) {
    switch (mode) {
        case RoundingMode::kHalfEven: return "half_even";
        case RoundingMode::kHalfUp: return "half_up";
        case RoundingMode::kDown: return "down";
        case RoundingMode::kUp: return "up";
    }
    TALLY_UNREACHABLE();
}

std::optional<RoundingMode> ParseRoundingMode(std::string_view text) {
    if (text == "half_even") return RoundingMode::kHalfEven;
    if (text == "half_up") return RoundingMode::kHalfUp;
    if (text == "down") return RoundingMode::kDown;
    if (text == "up") return RoundingMode::kUp;
    return std::nullopt;
}

int128 DivRound(int128 value, int128 divisor, RoundingMode mode) {
    TALLY_ASSERT(divisor > 0);
    int128 quotient = value / divisor;
    int128 remainder = value % divisor;  // same sign as value
    if (remainder == 0) return quotient;
    int128 abs_rem = remainder < 0 ? -remainder : remainder;
    int sign = value < 0 ? -1 : 1;
    bool away = false;
    switch (mode) {
        case RoundingMode::kDown: away = false; break;
        case RoundingMode::kUp: away = true; break;
        case RoundingMode::kHalfUp: away = abs_rem >= divisor - abs_rem; break;
        case RoundingMode::kHalfEven: {
            int128 other = divisor - abs_rem;
            if (abs_rem != other) {
                away = abs_rem > other;
            } else {
                away = (quotient % 2) != 0;
            }
            break;
        }
    }
    return away ? quotient + sign : quotient;
}

Decimal Decimal::FromInt(int64_t value) {
    return FromRaw(static_cast<int128>(value) * kOne);
}

std::string Decimal::ParseError(std::string_view text) {
    if (text.empty()) return "empty number";
    size_t i = 0;
    if (text[0] == '+' || text[0] == '-') i = 1;
    size_t int_digits = 0, frac_digits = 0;
    bool dot = false;
    for (; i < text.size(); ++i) {
        char c = text[i];
        if (c == '.') {
            if (dot) return "'" + std::string(text) + "' has two decimal points";
            dot = true;
        } else if (c >= '0' && c <= '9') {
            (dot ? frac_digits : int_digits)++;
        } else {
            return "'" + std::string(text) + "' is not a plain decimal number (digits, one '.', optional sign)";
        }
    }
    if (int_digits + frac_digits == 0) return "'" + std::string(text) + "' has no digits";
    if (frac_digits > static_cast<size_t>(kScale)) {
        return "'" + std::string(text) + "' has more than 18 decimal places";
    }
    if (dot && frac_digits == 0) return "'" + std::string(text) + "' ends with a decimal point";
    return "'" + std::string(text) + "' is too large";
}

std::optional<Decimal> Decimal::Parse(std::string_view text) {
    if (text.empty()) return std::nullopt;
    size_t i = 0;
    bool negative = false;
    if (text[0] == '+' || text[0] == '-') {
        negative = text[0] == '-';
        i = 1;
    }
    int128 value = 0;
    int frac_digits = 0;
    int digits = 0;
    bool dot = false;
    for (; i < text.size(); ++i) {
        char c = text[i];
        if (c == '.') {
            if (dot) return std::nullopt;
            dot = true;
            continue;
        }
        if (c < '0' || c > '9') return std::nullopt;
        if (dot) {
            if (++frac_digits > kScale) return std::nullopt;
        }
        if (__builtin_mul_overflow(value, 10, &value)) return std::nullopt;
        if (__builtin_add_overflow(value, c - '0', &value)) return std::nullopt;
        ++digits;
    }
    if (digits == 0) return std::nullopt;
    if (dot && frac_digits == 0) return std::nullopt;
    if (__builtin_mul_overflow(value, Pow10(kScale - frac_digits), &value)) return std::nullopt;
    return FromRaw(negative ? -value : value);
}

int Decimal::fraction_digits() const {
    int128 mantissa;
    int zeros;
    StripZeros(raw_, &mantissa, &zeros);
    return raw_ == 0 ? 0 : kScale - zeros;
}

std::string Decimal::ToString(int min_fraction_digits) const {
    TALLY_ASSERT(min_fraction_digits >= 0);
    TALLY_ASSERT(min_fraction_digits <= kScale);
    uint128 magnitude = raw_ < 0 ? static_cast<uint128>(-(raw_ + 1)) + 1 : static_cast<uint128>(raw_);
    const auto one = static_cast<uint128>(kOne);
    uint128 whole = magnitude / one;
    uint128 frac = magnitude % one;
    std::string int_part;
    do {
        int_part.push_back(static_cast<char>('0' + static_cast<int>(whole % 10)));
        whole /= 10;
    } while (whole != 0);
    std::reverse(int_part.begin(), int_part.end());
    std::string frac_part(kScale, '0');
    for (int i = kScale - 1; i >= 0; --i) {
        frac_part[static_cast<size_t>(i)] = static_cast<char>('0' + static_cast<int>(frac % 10));
        frac /= 10;
    }
    size_t keep = frac_part.find_last_not_of('0');
    keep = keep == std::string::npos ? 0 : keep + 1;
    keep = std::max(keep, static_cast<size_t>(min_fraction_digits));
    frac_part.resize(keep);
    std::string out = raw_ < 0 ? "-" : "";
    out += int_part;
    if (!frac_part.empty()) out += "." + frac_part;
    return out;
}

Decimal Decimal::operator-() const {
    if (raw_ == -kInt128Max - 1) throw OverflowError("decimal overflow in negation");
    return FromRaw(-raw_);
}

Decimal operator+(Decimal a, Decimal b) {
    int128 r;
    if (__builtin_add_overflow(a.raw_, b.raw_, &r)) {
        throw OverflowError("decimal overflow adding " + a.ToString() + " and " + b.ToString());
    }
    return Decimal::FromRaw(r);
}

Decimal operator-(Decimal a, Decimal b) {
    int128 r;
    if (__builtin_sub_overflow(a.raw_, b.raw_, &r)) {
        throw OverflowError("decimal overflow subtracting " + b.ToString() + " from " + a.ToString());
    }
    return Decimal::FromRaw(r);
}

Decimal Decimal::MulInt(int64_t n) const {
    int128 r;
    if (__builtin_mul_overflow(raw_, static_cast<int128>(n), &r)) {
        throw OverflowError("decimal overflow multiplying " + ToString() + " by " + std::to_string(n));
    }
    return FromRaw(r);
}

Decimal Decimal::Mul(Decimal other, RoundingMode mode) const {
    static_assert(kOne > 0 && static_cast<uint128>(kOne) <= UINT64_MAX, "MulDivRound takes a 64-bit divisor");
    std::optional<int128> product = MulDivRound(raw_, other.raw_, static_cast<uint64_t>(kOne), mode);
    if (!product) {
        throw OverflowError("decimal overflow multiplying " + ToString() + " by " + other.ToString());
    }
    return FromRaw(*product);
}

Decimal Decimal::Mul(Decimal other) const {
    return Mul(other, RoundingMode::kHalfEven);
}

Decimal Decimal::DivInt(int64_t n) const {
    TALLY_ASSERT(n > 0);
    return FromRaw(DivRound(raw_, n, RoundingMode::kHalfEven));
}

Decimal Decimal::PriceOf(int64_t quantity, int64_t per, RoundingMode mode) const {
    TALLY_ASSERT(per > 0);
    TALLY_ASSERT(quantity >= 0);
    std::optional<int128> price = MulDivRound(raw_, quantity, static_cast<uint64_t>(per), mode);
    if (!price) {
        throw OverflowError("decimal overflow pricing " + std::to_string(quantity) + " units at " + ToString() +
                            " per " + std::to_string(per));
    }
    return FromRaw(*price);
}

Decimal Decimal::PriceOf(int64_t quantity, int64_t per) const {
    return PriceOf(quantity, per, RoundingMode::kHalfEven);
}

Decimal Decimal::Round(int digits, RoundingMode mode) const {
    TALLY_ASSERT(digits >= 0);
    TALLY_ASSERT(digits <= kScale);
    int128 unit = Pow10(kScale - digits);
    int128 q = DivRound(raw_, unit, mode);
    int128 rounded;
    if (__builtin_mul_overflow(q, unit, &rounded)) {
        throw OverflowError("decimal overflow rounding " + ToString() + " to " + std::to_string(digits) + " places " +
                            std::string(RoundingModeName(mode)));
    }
    return FromRaw(rounded);
}

}  // namespace tally
