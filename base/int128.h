// 128-bit integers: the width of exact decimals and of checked sums.
// -Wpedantic rejects a bare __int128, so the names are made once, here.
#pragma once

namespace tally {

__extension__ typedef __int128 int128;  // GCC and clang; __extension__ keeps -Wpedantic quiet
__extension__ typedef unsigned __int128 uint128;

}  // namespace tally
