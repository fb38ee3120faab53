// Per-event rating: classification of one call into rate cells and
// quantities, and their summation into hourly rollups (DESIGN.md, Rating).
//
// Classification depends only on the event, the plans and the
// subscriptions, and summation is addition of integers, so the rollups of
// a set of events do not depend on the order or batching of the events.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/reject_reason.h"
#include "pricing/event.h"
#include "pricing/internal/string_index.h"
#include "pricing/plan.h"
#include "pricing/subscription.h"

namespace tally {

constexpr uint8_t kNone = 0xff;  // no output condition / no window
constexpr uint8_t kFlagBatch = 1;
constexpr uint8_t kFlagThinking = 2;
constexpr size_t kMaxBands = 16;

// What selects a rate: customer, plan version, model and the conditions of
// the call. Indices refer to the Rater's customer table and the Catalog.
struct CellKey {
    uint32_t customer = 0;
    uint16_t plan = 0;
    uint16_t version = 0;
    uint16_t model = 0;
    uint8_t band = 0;
    uint8_t condition = kNone;  // output condition within the band
    uint8_t window = kNone;     // time window
    uint8_t flags = 0;          // kFlagBatch | kFlagThinking
    // The model that served a routed call: 1 + its index in the Rater's
    // served-model table (Rater::ServedModel); 0 when the call was not
    // routed. In a Rollup it is 0 and Rollup::served_model names the model.
    uint16_t served = 0;

    friend bool operator==(const CellKey&, const CellKey&) = default;
    friend auto operator<=>(const CellKey&, const CellKey&) = default;
};
static_assert(sizeof(CellKey) == 16, "CellKey is packed into two words for hashing");
static_assert(offsetof(CellKey, served) == 14, "served fills what was the padding");

struct RollupKey {
    CellKey cell;
    int32_t period = 0;  // billing period id (MonthId of the month the period starts in, or 0
                         // for an explicit period); see ZoneClock::AnchoredMonth
    int32_t hour = 0;    // UTC hours since the epoch
    // The call's project: 1 + its index in the Rater's project table
    // (Rater::Project); 0 when it named none. Set by Rater::Add only: the
    // consumer's parts (Classify) carry none, it keeps projects beside them.
    uint32_t project = 0;

    friend bool operator==(const RollupKey&, const RollupKey&) = default;
};

struct RollupKeyHash {
    size_t operator()(const RollupKey& k) const noexcept;
};

using Quantities = std::array<int64_t, kMaxUnits>;

// Quantities and call counts are summed saturating at 2^63-1: a sum that
// reaches it has overflowed, and the invoice it belongs to is reported as
// not priced (never a wrapped number, never an exception that stops a run).
// The ledger's fold and its usage_rollups view saturate the same way, so
// both paths agree even then. Saturating addition of non-negative numbers
// is associative: the order and batching of events cannot change a sum.
inline constexpr int64_t kQuantitySaturated = INT64_MAX;
inline int64_t SaturatingAdd(int64_t a, int64_t b) {
    int64_t sum = 0;
    return __builtin_add_overflow(a, b, &sum) ? kQuantitySaturated : sum;
}

struct RollupRow {
    RollupKey key;
    Quantities quantities{};
    int64_t calls = 0;
};

// A rollup row that stands on its own: the customer by id, not by a Rater's
// index. This is what is summed across batches and stored.
struct Rollup {
    std::string customer;
    CellKey cell;  // cell.customer and cell.served are unused (0)
    // The model that served the calls when they were routed (the events'
    // `served_model`), "" when not. cell.model is the model billed: the one
    // asked for, or the served one under `routed_calls: bill_served`.
    std::string served_model;
    // The calls' project as kept (pricing/project_cap.h): "" when they named
    // none, kOtherProject beyond the cap. Never changes a price.
    std::string project;
    int32_t period = 0;
    int32_t hour = 0;
    Quantities quantities{};
    int64_t calls = 0;
};

// Orders rollups by (customer, period, hour, cell, served_model, project) and sums rows with equal
// keys: the canonical form, equal for equal sets of events.
void CanonicalizeRollups(std::vector<Rollup>* rollups);

// How events are assigned to billing periods.
struct PeriodRule {
    // Without bounds: months in the zone of the plan version, calendar months
    // or from the billing anchor day of the customer's subscription.
    std::optional<Instant> from;  // inclusive
    std::optional<Instant> to;    // exclusive
    bool monthly() const { return !from.has_value(); }
};

// A customer's billing anchor days over time: one entry per subscription,
// earliest `from` first; the first entry reaches back to the beginning of
// time. Monthly billing periods are assigned and bounded by these
// (docs/pricing.md, "Billing periods").
struct AnchorTerm {
    Instant from;
    int anchor_day = 1;  // 1..28; 1 is the calendar month
};
std::vector<AnchorTerm> AnchorTerms(const std::vector<const Subscription*>& subscriptions);
// Whether any term has an anchor day other than 1 (else periods are calendar months).
bool HasAnchor(const std::vector<AnchorTerm>& terms);

// The period id of `t` in the zone of `clock`: the MonthId of the anchored
// month of `t` under the term in force at `t` (ZoneClock::AnchoredMonth),
// but never a period before the one in progress when that term began, so
// that period ids never decrease with time (an anchor moved later does not
// send calls back to a period that has ended). Calendar months when every
// anchor day is 1.
int32_t AnchoredPeriod(const std::vector<AnchorTerm>& terms, ZoneClock* clock, Instant t);
// The instants whose AnchoredPeriod is `period`: contiguous, and each
// period's end is the next one's start.
PeriodBounds AnchoredPeriodBounds(const std::vector<AnchorTerm>& terms, const date::time_zone* zone, int32_t period);

enum class RateStatus : uint8_t { kRated, kRejected, kOutsidePeriod };

struct RateOutcome {
    RateStatus status = RateStatus::kRated;
    RejectReason code = RejectReason::kInvalid;  // for kRejected
    std::string reason;                          // for kRejected: a sentence naming the field and value
};

// One part of a rated call: graduated band pricing splits a call into one
// part per band it reaches; every other call is one part.
struct RatedPart {
    RollupKey key;
    Quantities quantities{};
};

// Open-addressing hash table of rollup rows, keyed by RollupKey. Rows live
// in one vector in insertion order; the slot array holds their indices.
class RollupTable {
   public:
    RollupTable();
    RollupRow& FindOrInsert(const RollupKey& key);
    const std::vector<RollupRow>& rows() const { return rows_; }
    size_t size() const { return rows_.size(); }

   private:
    struct Slot {
        uint32_t index_plus_one = 0;  // 0: empty
        uint32_t tag = 0;             // high bits of the hash
    };
    void Grow();

    std::vector<Slot> slots_;
    std::vector<RollupRow> rows_;
    size_t mask_ = 0;
};

class Rater {
   public:
    // Customers not in `subscriptions` are on `default_plan` (a plan name in
    // the catalog). The catalog and subscriptions must outlive the Rater.
    Rater(const Catalog& catalog, const std::vector<Subscription>& subscriptions, std::string default_plan,
          PeriodRule period);

    // Classifies `event` into parts (returned through `parts`, reused).
    RateOutcome Classify(const Event& event, std::vector<RatedPart>* parts);
    // Classifies and adds to the rollups, keyed by the event's project too.
    RateOutcome Add(const Event& event);
    // Adds already-classified parts (the rollups of another Rater on the
    // same catalog and customers, e.g. another batch) of a call that named
    // `project` ("" for none). Sums saturate.
    void AddParts(const std::vector<RatedPart>& parts, int64_t calls, std::string_view project = {});

    // Rollups in canonical order (see CanonicalizeRollups), their projects
    // capped (pricing/project_cap.h: the first kProjectsPerPeriodMax of each
    // customer's period by first hour and name; the rest are `other`), so
    // they do not depend on the order of the events either. kAsNamed keeps
    // every project as the events named it (for a caller that caps them
    // itself, with the ledger's admitted projects).
    enum class Projects : uint8_t { kCapped, kAsNamed };
    std::vector<Rollup> Rollups(Projects projects = Projects::kCapped) const;
    size_t row_count() const { return rollups_.size(); }

    const std::string& CustomerId(uint32_t index) const { return customers_.Get(index); }
    // The served model of CellKey::served: "" for 0 (not routed).
    const std::string& ServedModel(uint16_t served) const;
    // The project of RollupKey::project as the event named it: "" for 0.
    const std::string& Project(uint32_t project) const;
    const Catalog& catalog() const { return catalog_; }
    const PeriodRule& period_rule() const { return period_; }

   private:
    uint32_t CustomerIndex(const std::string& subject);
    ZoneClock& Clock(const date::time_zone* zone);

    const Catalog& catalog_;
    std::unordered_map<std::string, std::vector<const Subscription*>> subscriptions_;  // by `from`
    int default_plan_ = -1;
    std::string default_plan_name_;
    PeriodRule period_;

    internal::StringIndex customers_;
    internal::StringIndex served_models_;  // CellKey::served - 1
    internal::StringIndex projects_;       // RollupKey::project - 1
    // Per interned customer, the plans it is on, latest first.
    struct Term {
        Instant from;
        uint16_t plan;
    };
    std::vector<std::vector<Term>> customer_terms_;
    // Per interned customer, its anchor terms; empty for calendar months.
    std::vector<std::vector<AnchorTerm>> customer_anchors_;

    std::vector<std::pair<const date::time_zone*, ZoneClock>> clocks_;
    std::vector<RatedPart> scratch_;
    RollupTable rollups_;
};

}  // namespace tally
