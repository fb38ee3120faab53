#include "ingest/synthetic.h"

#include <fmt/format.h>

#include "base/assert.h"

namespace tally {

SyntheticEvents::SyntheticEvents(SyntheticOptions options) : o_(std::move(options)), rng_(o_.seed) {
    TALLY_ASSERT(o_.customers > 0);
    TALLY_ASSERT(!o_.models.empty());
}

int64_t SyntheticEvents::Between(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
}

bool SyntheticEvents::Next(std::string* json, std::string* key, bool* malformed) {
    if (emitted_ >= o_.count) return false;
    const int64_t i = emitted_++;
    *malformed = false;
    if (!recent_.empty() && Between(0, 999'999) < o_.duplicates_per_million) {
        const auto& [j, k] = recent_[static_cast<size_t>(Between(0, static_cast<int64_t>(recent_.size()) - 1))];
        *json = j;
        *key = k;
        return true;
    }
    const std::string customer = "cust_" + std::to_string(Between(0, o_.customers - 1));
    const std::string& model = o_.models[static_cast<size_t>(Between(0, static_cast<int64_t>(o_.models.size()) - 1))];
    const int64_t t = o_.start.time_since_epoch().count() + (o_.count > 0 ? i * o_.span_ms / o_.count : 0);
    const std::string time = FormatRfc3339(Instant(std::chrono::milliseconds(t)));
    const std::string id = fmt::format("syn-{}-{}", o_.seed, serial_++);
    *key = customer;
    if (Between(0, 999'999) < o_.malformed_per_million) {
        *malformed = true;
        switch (Between(0, 4)) {
            case 0:  // truncated
                *json = fmt::format(R"({{"specversion":"1.0","id":"{}","source":"{}","type":"llm.call","time":"{}")",
                                    id, o_.source, time);
                break;
            case 1:  // negative count
                *json = fmt::format(
                    R"({{"specversion":"1.0","id":"{}","source":"{}","type":"llm.call","time":"{}","subject":"{}","data":{{"model":"{}","input_tokens":-5,"output_tokens":1}}}})",
                    id, o_.source, time, customer, model);
                break;
            case 2:  // missing subject
                *json = fmt::format(
                    R"({{"specversion":"1.0","id":"{}","source":"{}","type":"llm.call","time":"{}","data":{{"model":"{}","input_tokens":5,"output_tokens":1}}}})",
                    id, o_.source, time, model);
                break;
            case 3:  // fractional count
                *json = fmt::format(
                    R"({{"specversion":"1.0","id":"{}","source":"{}","type":"llm.call","time":"{}","subject":"{}","data":{{"model":"{}","input_tokens":5.5,"output_tokens":1}}}})",
                    id, o_.source, time, customer, model);
                break;
            default:  // cache hits above the prompt
                *json = fmt::format(
                    R"({{"specversion":"1.0","id":"{}","source":"{}","type":"llm.call","time":"{}","subject":"{}","data":{{"model":"{}","input_tokens":5,"cached_input_tokens":9,"output_tokens":1}}}})",
                    id, o_.source, time, customer, model);
        }
        return true;
    }
    // Prompt lengths: most calls short, a long tail into the upper bands.
    const int64_t band = Between(0, 99);
    const int64_t input = band < 60   ? Between(200, 32000)
                          : band < 85 ? Between(32001, 128000)
                          : band < 95 ? Between(128001, 200000)
                                      : Between(1, 2000);
    const int64_t cached = Between(0, 2) == 0 ? input * Between(10, 90) / 100 : 0;
    const int64_t output = Between(0, 9) == 0 ? Between(1, 200) : Between(201, 4000);
    const bool thinking = Between(0, 4) == 0;
    const int64_t reasoning = thinking ? output / 2 : 0;
    const bool batch = Between(0, 9) == 0;
    *json =
        fmt::format(R"({{"specversion":"1.0","id":"{}","source":"{}","type":"llm.call","time":"{}","subject":"{}",)"
                    R"("data":{{"model":"{}","input_tokens":{},"output_tokens":{},"cached_input_tokens":{},)"
                    R"("reasoning_tokens":{},"batch":{},"thinking":{},"project":"p{}","ttft_ms":{},"tpot_ms":{}}}}})",
                    id, o_.source, time, customer, model, input, output, cached, reasoning, batch, thinking,
                    Between(1, 5), Between(80, 2000), Between(5, 60));
    if (o_.duplicates_per_million > 0) {
        if (recent_.size() < 4096) {
            recent_.emplace_back(*json, *key);
        } else {
            recent_[static_cast<size_t>(Between(0, 4095))] = {*json, *key};
        }
    }
    return true;
}

}  // namespace tally
