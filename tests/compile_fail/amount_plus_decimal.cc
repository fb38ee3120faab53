// Must not compile with TALLY_COMPILE_FAIL defined:
// a bare Decimal has no currency, so it never adds to an Amount.
// Without it the file compiles, so the failure is that line's alone
// (tests/CMakeLists.txt, compile_fail.*).
#include "pricing/money.h"

namespace tally {

void Check([[maybe_unused]] Amount amount, [[maybe_unused]] Decimal decimal) {
#ifdef TALLY_COMPILE_FAIL
    (void)(amount + decimal);
#endif
}

}  // namespace tally
