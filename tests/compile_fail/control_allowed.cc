// The control of the compile-failure tests: must compile, with the same
// command and warnings as the files that must not. It proves the harness
// (compiler, flags, include path) works, and that every operation the money
// types offer is spelled as the failing files assume.
#include "pricing/money.h"

namespace tally {

Amount Check(Currency currency, Decimal decimal, int64_t quantity) {
    const Amount amount(currency, decimal);
    const Rate rate(decimal, Rate::kPerDefault);
    const Multiplier multiplier(decimal);
    const Percent percent(decimal);

    const Rate scaled = rate * multiplier;                                       // Rate x Multiplier -> Rate
    Amount sum = scaled.AmountFor(quantity, currency, RoundingMode::kHalfEven);  // Rate x quantity -> Amount
    sum += amount + amount - amount;                                             // Amount +- Amount -> Amount
    sum = sum * multiplier;                                                      // Amount x Multiplier -> Amount
    sum = sum * percent;                                                         // Amount x Percent -> Amount
    sum = Amount::Max(-sum, Amount::Zero(currency));
    return sum < amount ? sum.RoundToMinor(RoundingMode::kHalfUp) : amount;
}

}  // namespace tally
