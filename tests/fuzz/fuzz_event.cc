// Fuzzes the event decoder and the rater on every event it accepts; then
// the consumer's whole pure pipeline on the input split into lines (one
// batch: assemble, resolve, records, back to rollups, invoices), checking
// that the ledger's path and `tally rate`'s path price the same invoices.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/assert.h"
#include "base/identifier.h"
#include "ingest/event_decoder.h"
#include "ingest/batch_assembler.h"
#include "pricing/invoice.h"
#include "pricing/plan_yaml.h"
#include "pricing/rater.h"
#include "pricing/rollup_records.h"

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
            rates: {input: "1", cached_input: "0.1", cached_input_explicit: "0.05", output: "2", images: "5"}
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

// Everything an invoice says that the two paths must agree on.
std::string Summary(const std::vector<tally::Invoice>& invoices) {
    std::string s;
    for (const auto& inv : invoices) {
        s += inv.customer + "|" + inv.period + "|" + std::to_string(inv.calls) + "|" + inv.total.ToString(2) + "|" +
             inv.error + "|" + std::to_string(inv.lines.size()) + "\n";
    }
    return s;
}

void Pipeline(std::string_view input) {
    static const tally::ingest::CatalogSnapshot snapshot = [] {
        tally::ingest::CatalogSnapshot s;
        s.catalog = MakeCatalog();
        return s;
    }();
    std::vector<tally::ingest::Message> messages;
    for (size_t begin = 0, n = 0; begin <= input.size() && n < 32; ++n) {
        size_t end = input.find('\n', begin);
        if (end == std::string_view::npos) end = input.size();
        messages.push_back({0, static_cast<int64_t>(n), input.substr(begin, end - begin)});
        begin = end + 1;
    }
    tally::ingest::AssemblerOptions options;
    options.known_customers_only = false;
    tally::ingest::BatchAssembler assembler(snapshot, "fuzz", options);
    const tally::ingest::AssembledBatch ab = assembler.Assemble(messages);
    const std::vector<std::optional<tally::Fingerprint>> stored(ab.batch.keys.size());
    const tally::ingest::Resolution r = tally::ingest::Resolve(ab.batch, stored);
    TALLY_ASSERT(r.outcomes.size() == ab.batch.keys.size());
    for (size_t i = 0; i < ab.batch.keys.size(); ++i) {
        if (r.outcomes[i] == tally::ingest::KeyOutcome::kNew) assembler.rater().AddParts(ab.parts[i], 1);
    }
    const auto direct = tally::PriceRollups(snapshot.catalog, {}, "fuzz", {}, assembler.rater().Rollups());
    const auto read = tally::FromRecords(snapshot.catalog, tally::ingest::NewCallRecords(snapshot.catalog, ab, r.outcomes));
    TALLY_ASSERT(read.unresolved == 0);
    const auto ledger = tally::PriceRollups(snapshot.catalog, {}, "fuzz", {}, read.rollups);
    TALLY_ASSERT(Summary(direct) == Summary(ledger));
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static tally::EventDecoder decoder;
    static const tally::Catalog catalog = MakeCatalog();
    static const std::vector<tally::Subscription> subscriptions;
    tally::Event e;
    std::string reason;
    std::string_view json(reinterpret_cast<const char*>(data), size);
    Pipeline(json);
    if (!decoder.Decode(json, &e, &reason)) {
        TALLY_ASSERT(!reason.empty());
        return 0;
    }
    TALLY_ASSERT(e.input_tokens >= e.cached_input_tokens + e.cached_input_explicit_tokens + e.cache_write_tokens +
                                        e.cache_write_1h_tokens);
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
                     p.quantities[tally::kUnitCachedInputExplicit] + p.quantities[tally::kUnitCacheWrite] +
                     p.quantities[tally::kUnitCacheWrite1h];
        }
        TALLY_ASSERT(input == e.input_tokens);  // every prompt token is billed once
    }
    return 0;
}
