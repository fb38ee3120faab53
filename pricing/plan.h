// Price plans: what sales write, as validated in-memory values.
//
// A Plan has one or more immutable versions, each in force from its
// effective_from instant until the next version's (or its own
// effective_until). docs/plan-format.md describes the YAML that produces
// these; plan_yaml.h parses and validates it. Nothing here does I/O.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pricing/currency.h"
#include "pricing/decimal.h"
#include "pricing/money.h"
#include "pricing/time.h"

namespace tally {

// Units a plan can price. The standard ones are split out of every call by
// the rater; extra units are other numeric fields of the event, by name.
using UnitId = uint8_t;
enum StdUnit : UnitId {
    kUnitInput = 0,                // uncached prompt tokens (input - both kinds of hit - cache writes)
    kUnitCachedInput = 1,          // cache hits (implicit: the provider's automatic cache)
    kUnitCachedInputExplicit = 2,  // explicit cache hits (a cache the caller created), priced on their own
    kUnitCacheWrite = 3,           // cache writes (5-minute lifetime, the default)
    kUnitCacheWrite1h = 4,         // cache writes with a 1-hour lifetime
    kUnitOutput = 5,               // completion tokens (without reasoning if reasoning is priced)
    kUnitReasoning = 6,            // reasoning tokens, only when the plan prices them
    kNumStdUnits = 7,
};
// Ids are positions in a catalog's UnitTable, never stored: the ledger keeps
// units by name (RollupRecord::unit), so ids may be renumbered.
constexpr int kMaxUnits = kNumStdUnits + 10;  // 7 token units + up to 10 extra units across a catalog
static_assert(kMaxUnits <= 32, "priced_units and the rater keep one bit per unit in a uint32_t");

// Unit names <-> ids, shared by every plan in one Catalog.
class UnitTable {
   public:
    UnitTable();
    // Standard unit names and the extra units every plan may price.
    static bool IsKnownExtra(std::string_view name);
    std::optional<UnitId> Find(std::string_view name) const;
    // Adds an extra unit; nullopt when the table is full.
    std::optional<UnitId> Intern(std::string_view name);
    const std::string& Name(UnitId id) const { return names_[id]; }
    int size() const { return static_cast<int>(names_.size()); }

   private:
    std::vector<std::string> names_;
};

// One rate table of a plan (a band's `rates`, a condition's `batch_rates`, a
// window's, ...): per unit, a rate of its own, or a share of the input rate
// of the cell the call lands in (`cached_input: {of_input: "0.2"}`;
// `{same_as: input}` is a share of 1), resolved per cell by CellRate. A unit
// has at most one of the two.
struct RateTable {
    std::array<std::optional<Rate>, kMaxUnits> rates;
    std::array<std::optional<Multiplier>, kMaxUnits> of_input;  // only for units that are part of the prompt

    // The written rate of `unit` (nullopt for a share; see Has).
    std::optional<Rate>& operator[](UnitId unit) { return rates[unit]; }
    const std::optional<Rate>& operator[](UnitId unit) const { return rates[unit]; }
    // Whether the table prices `unit` itself, with a rate or a share.
    bool Has(UnitId unit) const { return rates[unit].has_value() || of_input[unit].has_value(); }
    bool Empty() const;
};

// Whether `unit` may be priced as a share of input: a standard unit that is
// part of the prompt (cache hits and writes), not input itself.
bool MayBeShareOfInput(UnitId unit);

struct OutputCondition {
    int64_t up_to = 0;             // inclusive bound on output tokens
    bool reasoning_counts = true;  // whether reasoning tokens count toward up_to
    RateTable rates;               // overrides of the band's rates
    RateTable thinking_rates;      // overrides of the band's thinking rates
    RateTable batch_rates;         // overrides of the band's batch rates
    // Own rates in a window (`window_rates: {<window>: {...}}` in the
    // condition), overriding the band's table for the window: only the
    // windows the condition names, by the model's window index.
    struct WindowTable {
        size_t window = 0;
        RateTable rates;
    };
    std::vector<WindowTable> window_rates;

    // The condition's own table for calls in window `window`, or nullptr.
    const RateTable* WindowRatesFor(size_t window) const;
};

struct Band {
    int64_t up_to = std::numeric_limits<int64_t>::max();  // inclusive; max = no upper bound
    RateTable rates;
    RateTable thinking_rates;  // overrides in thinking mode
    RateTable batch_rates;     // own batch rates; otherwise the batch multiplier applies
    std::vector<OutputCondition> output_conditions;
    bool unbounded() const { return up_to == std::numeric_limits<int64_t>::max(); }
};

struct Window {
    std::string name;
    std::string zone_name;
    const date::time_zone* zone = nullptr;
    int start_minute = 0;     // inclusive, local minute of day
    int end_minute = 0;       // exclusive; end < start means the window crosses midnight
    uint8_t weekdays = 0x7f;  // bit 0 = Monday .. bit 6 = Sunday; a crossing window's
                              // weekday is the one on which it starts
    // Exactly one of: a multiplier on the cell's rates, one rate table (a
    // model with a single band), or a table per band (`window_rates` in each
    // band of a banded model).
    std::optional<Multiplier> multiplier;
    RateTable rates;                    // own rates of a single-band model
    std::vector<RateTable> band_rates;  // own rates per band; empty, or one per band

    bool Contains(const LocalTime& t) const;
    // The window's own table for calls in band `band`.
    const RateTable& RatesFor(size_t band) const;
};

enum class BandBy : uint8_t { kPrompt, kUncached };
enum class BandMode : uint8_t { kWholeCall, kGraduated };
enum class AboveTop : uint8_t { kReject, kTopBand };
// How a call of this model that another model served (the event's
// `served_model`) is billed: at this model's prices, or classified and priced
// under the served model's entry of the same plan version.
enum class RoutedCalls : uint8_t { kBillRequested, kBillServed };
enum class BatchCache : uint8_t {
    kDiscounted,     // the batch multiplier applies to cache hits too (Anthropic)
    kFullCacheRate,  // cache hits keep their online cache-hit rate (Volcano's tables)
    kNotCombined,    // a batch call gets no cache-hit price: hits bill as input (Alibaba)
};

struct BatchPricing {
    bool priced = false;  // false: batch calls bill as online calls
    std::optional<Multiplier> multiplier;
    BatchCache cache_hits = BatchCache::kDiscounted;
};

struct ModelPricing {
    std::string name;
    BandBy band_by = BandBy::kPrompt;
    BandMode band_mode = BandMode::kWholeCall;
    AboveTop above_top = AboveTop::kReject;
    RoutedCalls routed_calls = RoutedCalls::kBillRequested;
    std::vector<Band> bands;  // at least one; contiguous from 0
    std::vector<Window> windows;
    BatchPricing batch;
    bool prices_thinking = false;   // some band or output condition has thinking rates
    bool prices_reasoning = false;  // some rate table prices reasoning
    uint32_t priced_units = 0;      // bit per UnitId that some rate table prices

    // "0-32000", "32001-128000", "128001+"; "all" for a single open band.
    std::string BandLabel(size_t band) const;
};

enum class TierAggregate : uint8_t { kPerModelUnit, kPerModel };
enum class TierMode : uint8_t { kGraduated, kVolume };

struct Tier {
    int64_t up_to = std::numeric_limits<int64_t>::max();  // inclusive, over the period
    std::optional<Multiplier> multiplier;                 // on the cell's rate
    std::optional<Rate> rate;                             // or a rate of its own
};

struct TierRule {
    std::string name;
    std::vector<std::string> models;  // empty: all models
    std::vector<UnitId> units;        // empty: all units
    TierAggregate aggregate = TierAggregate::kPerModelUnit;
    TierMode mode = TierMode::kGraduated;
    std::vector<Tier> tiers;

    bool Applies(std::string_view model, UnitId unit) const;
};

struct FreeQuota {
    std::string name;
    std::vector<std::string> models;  // empty: every model (each model gets its own quota)
    std::vector<UnitId> units;        // empty: all token units (not extra units)
    int64_t tokens = 0;               // per model per period

    bool Applies(std::string_view model, UnitId unit) const;
};

// Where amounts are rounded to the currency's minor unit (docs/pricing.md,
// "Rounding place"). kInvoice, the default, rounds the exact sum once and
// shows the difference to the sum of the rounded lines as a kRounding line.
enum class RoundingPlace : uint8_t { kLine, kInvoice };
std::string_view RoundingPlaceName(RoundingPlace place);  // "line" or "invoice", as in the YAML

// How long after a period ends its draft invoices still take late events.
inline constexpr std::chrono::seconds kDefaultFinalizeGrace = std::chrono::hours(24);

struct PlanVersion {
    std::string id;
    Instant effective_from;
    std::optional<Instant> effective_until;  // set when the version simply ends
    Currency currency;
    std::string zone_name;
    const date::time_zone* zone = nullptr;
    RoundingMode rounding = RoundingMode::kHalfEven;
    RoundingPlace rounding_place = RoundingPlace::kInvoice;       // `round_at`
    std::chrono::seconds finalize_grace = kDefaultFinalizeGrace;  // `finalize_grace`, >= 0
    Percent tax_percent;                                          // on the subtotal
    std::optional<Amount> minimum_commitment;  // per period, in `currency`
    std::vector<ModelPricing> models;
    std::unordered_map<std::string, uint16_t> model_index;
    std::vector<TierRule> tiers;
    std::vector<FreeQuota> free_quotas;
    // As written, for a version that extends this one (docs/plan-format.md,
    // "Versions written as changes"): the version it was written as changes
    // to ("" when written in full), the `rates_per` its rates were read with,
    // and the custom units it declares. Pricing does not read them.
    std::string extends;
    int64_t rates_per = 1'000'000;
    std::vector<std::string> custom_units;

    const ModelPricing* FindModel(std::string_view model) const;
};

struct Plan {
    std::string name;          // the id subscriptions refer to
    std::string display_name;  // for people; may be Chinese
    std::string source_file;
    std::vector<PlanVersion> versions;  // strictly increasing effective_from

    // The version in force at `t`, or nullptr (before the first version, or
    // after a version that ended with no successor).
    const PlanVersion* VersionAt(Instant t) const;
    int VersionIndexAt(Instant t) const;  // -1 when none
};

// All plans that one rating run knows.
struct Catalog {
    UnitTable units;
    std::vector<Plan> plans;
    const Plan* FindPlan(std::string_view name) const;
    int PlanIndex(std::string_view name) const;  // -1 when unknown
};

// The rate of `unit` in a table, or nullopt (also for a share of input).
inline const std::optional<Rate>& RateFor(const RateTable& table, UnitId unit) {
    return table[unit];
}

// A cell of a model, by indices: what CellKey (rater.h) says about the
// model's tables.
struct CellPlace {
    size_t band = 0;
    std::optional<size_t> condition;  // the output condition met, if any
    std::optional<size_t> window;     // the window the call falls in, if any
    bool batch = false;
    bool thinking = false;
};

// Where a table of a cell sits, for the multipliers: a rate from a batch
// table is not discounted by the batch multiplier again, one from a window
// table not by the window's.
enum class TableOrigin : uint8_t { kBatch, kWindow, kOther };
struct CellTable {
    const RateTable* table = nullptr;  // nullptr: the cell has no such table
    TableOrigin origin = TableOrigin::kOther;
};
inline constexpr size_t kCellTables = 8;

// The tables of a cell, most specific first (the order below); the one
// place that order is written.
std::array<CellTable, kCellTables> CellTables(const ModelPricing& m, const CellPlace& cell);

// A cell's rate for a unit as the plan states it, before window and batch
// multipliers: from the most specific table of the cell that prices the unit
// (or, failing that, the unit it falls back to), in this order:
//   condition batch_rates, band batch_rates     (batch calls)
//   condition window_rates, band window_rates   (calls in a window; on a
//     single-band model the window's own rates stand for the band's)
//   condition thinking_rates, band thinking_rates (thinking calls)
//   condition rates, band rates.
// A share of input is resolved against the cell's stated input rate, and
// takes that rate's origin for the multipliers (a share of a batch table's
// input is not discounted again). A cached_input share in a batch cell of a
// model whose batch `cache_hits` is full_cache_rate, written outside the
// batch tables, resolves against the online cell's input.
struct StatedRate {
    Rate rate;
    bool from_batch_table = false;       // the batch multiplier does not apply
    bool from_window_table = false;      // the window multiplier does not apply
    std::optional<Multiplier> of_input;  // the share it was resolved from, if any
    std::optional<Rate> input;           // and the input rate it multiplied
    bool share_in_batch_table = false;   // the share was written in a batch table
};
std::optional<StatedRate> FindStatedRate(const ModelPricing& m, const CellPlace& cell, UnitId unit);

// The unit whose rate a cell uses when it has none for `unit`: cached_input
// and cache_write fall back to input, cached_input_explicit to cached_input
// (and so on to input), cache_write_1h to cache_write, reasoning to output;
// nullopt for every other unit. The rule CellRate (invoice.h) applies, and
// plan validation checks against.
std::optional<UnitId> UnitFallback(UnitId unit);

// Whether `table` has a rate or share for `unit` itself or for a unit it falls back to.
bool PricesWithFallback(const RateTable& table, UnitId unit);

}  // namespace tally
