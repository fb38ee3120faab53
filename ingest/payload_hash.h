// A 128-bit hash of a message's bytes, as 32 hex digits: tells a duplicate
// (same bytes again) from a conflict (same (source, id), other bytes). Not a
// cryptographic hash; accidental collisions are ~2^-64 per pair.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tally {

inline std::string PayloadHash(std::string_view s) {
    auto lane = [&](uint64_t seed, uint64_t mul) {
        uint64_t h = seed ^ (s.size() * mul);
        size_t i = 0;
        for (; i + 8 <= s.size(); i += 8) {
            uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            h = (h ^ (w * mul)) * 0x9fb21c651e98df25ULL;
            h ^= h >> 29;
        }
        uint64_t tail = 0;
        std::memcpy(&tail, s.data() + i, s.size() - i);
        h = (h ^ (tail * mul) ^ (s.size() - i)) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
        h *= 0x94d049bb133111ebULL;
        return h ^ (h >> 32);
    };
    const uint64_t a = lane(0x243f6a8885a308d3ULL, 0xff51afd7ed558ccdULL);
    const uint64_t b = lane(0x13198a2e03707344ULL, 0xc4ceb9fe1a85ec53ULL);
    static const char* kDigits = "0123456789abcdef";
    std::string out(32, '0');
    for (int k = 0; k < 16; ++k) {
        out[static_cast<size_t>(15 - k)] = kDigits[(a >> (4 * k)) & 15];
        out[static_cast<size_t>(31 - k)] = kDigits[(b >> (4 * k)) & 15];
    }
    return out;
}

}  // namespace tally
