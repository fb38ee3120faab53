#include "ingest/event_key.h"

#include <openssl/sha.h>

#include <cstring>

namespace tally {

Fingerprint DedupKey(std::string_view source, std::string_view id) {
    // length(source) as 8 bytes, source, id: no two (source, id) pairs give
    // the same input, whatever bytes they hold.
    unsigned char digest[SHA256_DIGEST_LENGTH];
    unsigned char small[256];
    const uint64_t n = source.size();
    const size_t total = 8 + source.size() + id.size();
    std::string big;
    unsigned char* buf = small;
    if (total > sizeof small) {
        big.resize(total);
        buf = reinterpret_cast<unsigned char*>(big.data());
    }
    for (int i = 0; i < 8; ++i) buf[i] = static_cast<unsigned char>(n >> (8 * i));
    std::memcpy(buf + 8, source.data(), source.size());
    std::memcpy(buf + 8 + source.size(), id.data(), id.size());
    SHA256(buf, total, digest);
    Fingerprint out;
    std::memcpy(out.data(), digest, out.size());
    return out;
}

Fingerprint PayloadHash(std::string_view s) {
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
    Fingerprint out;
    for (int k = 0; k < 8; ++k) {
        out[static_cast<size_t>(k)] = static_cast<uint8_t>(a >> (56 - 8 * k));
        out[static_cast<size_t>(8 + k)] = static_cast<uint8_t>(b >> (56 - 8 * k));
    }
    return out;
}

}  // namespace tally
