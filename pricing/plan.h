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
    kUnitInput = 0,         // uncached prompt tokens (input - cached - cache writes)
    kUnitCachedInput = 1,   // cache hits
    kUnitCacheWrite = 2,    // cache writes (5-minute lifetime, the default)
    kUnitCacheWrite1h = 3,  // cache writes with a 1-hour lifetime
    kUnitOutput = 4,        // completion tokens (without reasoning if reasoning is priced)
    kUnitReasoning = 5,     // reasoning tokens, only when the plan prices them
    kNumStdUnits = 6,
};
constexpr int kMaxUnits = 16;  // 6 token units + up to 10 extra units across a catalog

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

using RateTable = std::array<std::optional<Rate>, kMaxUnits>;

struct OutputCondition {
    int64_t up_to = 0;             // inclusive bound on output tokens
    bool reasoning_counts = true;  // whether reasoning tokens count toward up_to
    RateTable rates;               // overrides of the band's rates
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
    std::optional<Multiplier> multiplier;
    RateTable rates;  // own rates (used when multiplier is absent)

    bool Contains(const LocalTime& t) const;
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
    bool prices_thinking = false;   // some band has thinking rates
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

// The rate of `unit` in a table, or nullopt.
inline const std::optional<Rate>& RateFor(const RateTable& table, UnitId unit) {
    return table[unit];
}


// The unit whose rate a cell uses when it has none for `unit`: cached_input
// and cache_write fall back to input, cache_write_1h to cache_write,
// reasoning to output; nullopt for every other unit. The rule CellRate
// (invoice.h) applies, and plan validation checks against.
std::optional<UnitId> UnitFallback(UnitId unit);

// Whether `table` has a rate for `unit` itself or for a unit it falls back to.
bool PricesWithFallback(const RateTable& table, UnitId unit);

}  // namespace tally
