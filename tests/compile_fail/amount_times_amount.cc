// Must not compile with TALLY_COMPILE_FAIL defined:
// money times money is no money.
// Without it the file compiles, so the failure is that line's alone
// (tests/CMakeLists.txt, compile_fail.*).
#include "pricing/money.h"

namespace tally {

void Check([[maybe_unused]] Amount a, [[maybe_unused]] Amount b) {
#ifdef TALLY_COMPILE_FAIL
    (void)(a * b);
#endif
}

}  // namespace tally
