// A 16-byte fingerprint: a call's identity (its dedup key) or the hash of
// its payload (ingest/event_key.h makes both; the ledger stores them).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tally {

using Fingerprint = std::array<uint8_t, 16>;

// Fingerprints are uniformly distributed already: the first 8 bytes are a hash.
struct FingerprintHash {
    size_t operator()(const Fingerprint& f) const {
        size_t h;
        std::memcpy(&h, f.data(), sizeof h);
        return h;
    }
};

}  // namespace tally
