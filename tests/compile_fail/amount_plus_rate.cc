// Must not compile with TALLY_COMPILE_FAIL defined:
// a rate is no amount; Rate::AmountFor(quantity, currency, mode) makes one.
// Without it the file compiles, so the failure is that line's alone
// (tests/CMakeLists.txt, compile_fail.*).
#include "pricing/money.h"

namespace tally {

void Check([[maybe_unused]] Amount amount, [[maybe_unused]] Rate rate) {
#ifdef TALLY_COMPILE_FAIL
    (void)(amount + rate);
#endif
}

}  // namespace tally
