#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace tally::detail {
void AssertFail(const char* condition, const char* file, int line) {
    std::fprintf(stderr, "tally: internal error: assertion failed: %s at %s:%d\n", condition, file, line);
    std::abort();
}
}  // namespace tally::detail
