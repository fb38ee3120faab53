// Must not compile with TALLY_COMPILE_FAIL defined:
// a multiplier scales an amount (amount * multiplier), it is not added to one.
// Without it the file compiles, so the failure is that line's alone
// (tests/CMakeLists.txt, compile_fail.*).
#include "pricing/money.h"

namespace tally {

void Check([[maybe_unused]] Amount amount, [[maybe_unused]] Multiplier multiplier) {
#ifdef TALLY_COMPILE_FAIL
    (void)(amount + multiplier);
#endif
}

}  // namespace tally
