// TALLY_ASSERT: always on, in every build. An assertion failure is a bug in
// Tally, never a problem with input (input problems are values: rejections,
// diagnostics, dead letters). It prints where and aborts.
#pragma once

namespace tally::detail {
[[noreturn]] void AssertFail(const char* condition, const char* file, int line);
}

#define TALLY_ASSERT(condition) \
    ((condition) ? static_cast<void>(0) : ::tally::detail::AssertFail(#condition, __FILE__, __LINE__))
#define TALLY_UNREACHABLE() ::tally::detail::AssertFail("unreachable", __FILE__, __LINE__)
