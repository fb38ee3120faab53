// Must not compile with TALLY_COMPILE_FAIL defined:
// no implicit Decimal -> Amount; Amount(currency, decimal) names the currency.
// Without it the file compiles, so the failure is that line's alone
// (tests/CMakeLists.txt, compile_fail.*).
#include "pricing/money.h"

namespace tally {

void Check([[maybe_unused]] Decimal decimal) {
#ifdef TALLY_COMPILE_FAIL
    [[maybe_unused]] Amount amount = decimal;
#endif
}

}  // namespace tally
