// Fuzzes the event decoder, and the rater on every event it accepts.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/assert.h"
#include "base/identifier.h"
#include "ingest/event_decoder.h"
#include "pricing/plan_yaml.h"
#include "pricing/rater.h"

namespace {

const char* const kPlan = R"(
plan: fuzz
versions:
  - version: v1
    effective_from: 2000-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      m:
        band_pricing: graduated
        above_top_band: bill_at_top_band
        bands:
          - up_to: 100
            rates: {input: "1", cached_input: "0.1", output: "2", images: "5"}
            output_conditions: [{up_to: 10, rates: {output: "1"}}]
          - up_to: 1000
            rates: {input: "2", output: "4", reasoning: "3", images: "5"}
        windows: [{name: w, start: "22:00", end: "06:00", multiplier: "0.5", weekdays: [mon, sun]}]
        batch: {multiplier: "0.5", cache_hits: not_combined}
)";

tally::Catalog MakeCatalog() {
    tally::Catalog catalog;
    tally::Diagnostics d;
    auto plan = tally::ParsePlan(kPlan, "fuzz.yaml", &catalog.units, &d);
    TALLY_ASSERT(plan.has_value());
    catalog.plans.push_back(std::move(*plan));
    return catalog;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static tally::EventDecoder decoder;
    static const tally::Catalog catalog = MakeCatalog();
    static const std::vector<tally::Subscription> subscriptions;
    tally::Event e;
    std::string reason;
    std::string_view json(reinterpret_cast<const char*>(data), size);
    if (!decoder.Decode(json, &e, &reason)) {
        TALLY_ASSERT(!reason.empty());
        return 0;
    }
    TALLY_ASSERT(e.input_tokens >= e.cached_input_tokens);
    TALLY_ASSERT(e.output_tokens >= e.reasoning_tokens);
    TALLY_ASSERT(!e.id.empty());
    TALLY_ASSERT(e.input_tokens <= tally::kCountMax);
    TALLY_ASSERT(e.output_tokens <= tally::kCountMax);
    for (const auto& x : e.extras) {
        TALLY_ASSERT(x.value >= 0);
        TALLY_ASSERT(x.value <= tally::kCountMax);
    }
    TALLY_ASSERT(e.time >= tally::kEventTimeMin);
    TALLY_ASSERT(e.time < tally::kEventTimeEnd);
    for (const std::string* s : {&e.id, &e.source, &e.subject, &e.model}) {
        TALLY_ASSERT(!tally::IdentifierError("an identifier", *s).has_value());
    }
    TALLY_ASSERT(tally::FindAsciiControl(e.project) == std::string_view::npos);
    e.model = "m";  // rate every accepted event under the fuzz plan
    // Nothing is caught: with counts bounded at kCountMax no sum may
    // overflow, so an exception escaping is a finding.
    tally::Rater rater(catalog, subscriptions, "fuzz", {});
    std::vector<tally::RatedPart> parts;
    tally::RateOutcome outcome = rater.Classify(e, &parts);
    if (outcome.status == tally::RateStatus::kRated) {
        int64_t input = 0;
        for (const auto& p : parts) {
            input += p.quantities[tally::kUnitInput] + p.quantities[tally::kUnitCachedInput] +
                     p.quantities[tally::kUnitCacheWrite] + p.quantities[tally::kUnitCacheWrite1h];
        }
        TALLY_ASSERT(input == e.input_tokens);  // every prompt token is billed once
    }
    return 0;
}
