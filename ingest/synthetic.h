// Synthetic call events for load tests and benchmarks: realistic token
// counts, cache hits, batch and thinking calls, optional duplicates and
// malformed messages. Deterministic for a seed.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "pricing/time.h"

namespace tally {

struct SyntheticOptions {
    int64_t count = 1000;
    int customers = 100;  // cust_0 .. cust_{N-1}
    std::vector<std::string> models = {"doubao-seed-1.6"};
    Instant start = Instant(std::chrono::milliseconds(1762128000000));  // 2025-11-03T00:00Z
    int64_t span_ms = 3'600'000;                                        // events are spread evenly over this
    uint64_t seed = 1;
    int64_t duplicates_per_million = 0;  // re-sends of an earlier event, byte for byte
    int64_t malformed_per_million = 0;   // messages that must become dead letters
    std::string source = "gw-synthetic";
};

class SyntheticEvents {
   public:
    explicit SyntheticEvents(SyntheticOptions options);

    // The next message and its key (the customer); false after `count`.
    // `*malformed` tells whether this message is a deliberate bad one.
    bool Next(std::string* json, std::string* key, bool* malformed);

   private:
    int64_t Between(int64_t lo, int64_t hi);

    SyntheticOptions o_;
    std::mt19937_64 rng_;
    int64_t emitted_ = 0;
    int64_t serial_ = 0;
    std::vector<std::pair<std::string, std::string>> recent_;  // (json, key) for duplicates
};

}  // namespace tally
