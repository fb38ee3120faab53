// Must not compile with TALLY_COMPILE_FAIL defined:
// 6 % plus 100 CNY means nothing; amount * percent is 6 % of it.
// Without it the file compiles, so the failure is that line's alone
// (tests/CMakeLists.txt, compile_fail.*).
#include "pricing/money.h"

namespace tally {

void Check([[maybe_unused]] Percent percent, [[maybe_unused]] Amount amount) {
#ifdef TALLY_COMPILE_FAIL
    (void)(percent + amount);
#endif
}

}  // namespace tally
