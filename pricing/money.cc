#include "pricing/money.h"

#include <string>

#include "base/assert.h"

namespace tally {

namespace {

std::string CodeOf(const Currency& c) {
    return c.valid() ? std::string(c.code()) : std::string("no currency");
}

// The TALLY_ASSERT of every two-amount operation, with the currencies in the
// message. A mismatch is a bug in Tally (see money.h), never bad input.
void RequireSameCurrency(const Amount& a, const Amount& b, const char* operation) {
    if (a.currency() == b.currency()) [[likely]]
        return;
    const std::string what =
        std::string("currency mismatch: ") + operation + " " + CodeOf(a.currency()) + " and " + CodeOf(b.currency());
    detail::AssertFail(what.c_str(), __FILE__, __LINE__);
}

}  // namespace

Decimal Percent::Fraction() const {
    return percent_.Mul(Decimal::FromRaw(Decimal::kOne / 100), RoundingMode::kHalfEven);
}

Amount operator+(const Amount& a, const Amount& b) {
    RequireSameCurrency(a, b, "add");
    return Amount(a.currency_, a.value_ + b.value_);
}

Amount operator-(const Amount& a, const Amount& b) {
    RequireSameCurrency(a, b, "subtract");
    return Amount(a.currency_, a.value_ - b.value_);
}

Amount operator*(const Amount& a, const Multiplier& m) {
    return Amount(a.currency_, a.value_.Mul(m.value(), RoundingMode::kHalfEven));
}

Amount operator*(const Amount& a, const Percent& p) {
    return Amount(a.currency_, a.value_.Mul(p.Fraction(), RoundingMode::kHalfEven));
}

std::strong_ordering operator<=>(const Amount& a, const Amount& b) {
    RequireSameCurrency(a, b, "compare");
    return a.value_ <=> b.value_;
}

Amount Amount::RoundToMinor(RoundingMode mode) const {
    return Amount(currency_, value_.Round(currency_.minor_digits(), mode));
}

Rate::Rate(Decimal price, int64_t per) : price_(price), per_(per) {
    TALLY_ASSERT(per > 0);
}

Amount Rate::AmountFor(int64_t quantity, Currency currency, RoundingMode mode) const {
    TALLY_ASSERT(quantity >= 0);
    return Amount(currency, price_.PriceOf(quantity, per_, mode));
}

Rate operator*(const Rate& r, const Multiplier& m) {
    return Rate(r.price_.Mul(m.value(), RoundingMode::kHalfEven), r.per_);
}

}  // namespace tally
