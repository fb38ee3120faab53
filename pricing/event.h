// One model call, as decoded from its CloudEvent (docs/event-format.md).
// The decoder in ingest/ produces it; the rater consumes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "pricing/time.h"

namespace tally {

// The largest count of one unit in one call (tokens, images, ...): 10^12.
// Far above any real call (a million-token prompt is 10^6), and small enough
// that a month of a customer's calls summed per unit stays inside 63 bits:
// 9.2 * 10^6 calls at the maximum each. The decoder rejects larger counts
// (docs/event-format.md), so sums of decoded events do not overflow.
inline constexpr int64_t kCountMax = 1'000'000'000'000;
static_assert(kCountMax < INT64_MAX / 1'000'000, "a million maximal counts fit in a sum");

// Event times the decoder accepts: [kEventTimeMin, kEventTimeEnd), i.e.
// 1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z. Every local time of them in
// every zone has a four-digit year, so periods ("YYYY-MM"), hours and
// months stay well-formed.
inline constexpr Instant kEventTimeMin{std::chrono::sys_days{std::chrono::year{1970} / 1 / 1}};
inline constexpr Instant kEventTimeEnd{std::chrono::sys_days{std::chrono::year{2200} / 1 / 1}};
static_assert(kEventTimeMin.time_since_epoch().count() == 0);
static_assert(kEventTimeEnd.time_since_epoch().count() == 7'258'118'400'000);

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
    std::string model;    // the model the call asked for
    // The model that actually served it (the Model Router's `served_model`);
    // "" when the call was not routed (absent, or equal to `model`).
    std::string served_model;
    std::string project;
    int64_t input_tokens = 0;   // the whole prompt, including both kinds of cache hit and cache writes
    int64_t output_tokens = 0;  // the whole completion, including reasoning
    int64_t cached_input_tokens = 0;           // cache hits (implicit: the provider's automatic cache)
    int64_t cached_input_explicit_tokens = 0;  // explicit cache hits (a cache the caller created)
    int64_t cache_write_tokens = 0;     // 5-minute cache writes
    int64_t cache_write_1h_tokens = 0;  // 1-hour cache writes
    int64_t reasoning_tokens = 0;
    bool batch = false;
    bool thinking = false;
    std::vector<ExtraQuantity> extras;
};

}  // namespace tally
