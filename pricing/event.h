// One model call, as decoded from its CloudEvent (docs/event-format.md).
// The decoder in ingest/ produces it; the rater consumes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pricing/time.h"

namespace tally {

// Another numeric field of the event's data (images, tool_calls, ...).
struct ExtraQuantity {
    std::string name;
    int64_t value = 0;
};

struct Event {
    std::string id;  // with source, identifies the call
    std::string source;
    std::string subject;  // the billing account (customer id)
    Instant time;         // what the call is billed by
    std::string model;
    std::string project;
    int64_t input_tokens = 0;   // the whole prompt, including cached and cache writes
    int64_t output_tokens = 0;  // the whole completion, including reasoning
    int64_t cached_input_tokens = 0;
    int64_t cache_write_tokens = 0;     // 5-minute cache writes
    int64_t cache_write_1h_tokens = 0;  // 1-hour cache writes
    int64_t reasoning_tokens = 0;
    bool batch = false;
    bool thinking = false;
    std::vector<ExtraQuantity> extras;
};

}  // namespace tally
