#include "pricing/plan.h"

#include <algorithm>
#include <array>

#include "base/assert.h"

namespace tally {

namespace {
constexpr std::array<std::string_view, kNumStdUnits> kStdUnitNames = {
    "input", "cached_input", "cached_input_explicit", "cache_write", "cache_write_1h", "output", "reasoning"};
// Numeric event fields that plans may price without declaring them.
constexpr std::array<std::string_view, 6> kKnownExtras = {
    "images", "video_seconds", "tool_calls", "cache_storage_token_hours", "web_searches", "audio_seconds"};

bool ListHas(const std::vector<std::string>& list, std::string_view item) {
    return list.empty() || std::find(list.begin(), list.end(), item) != list.end();
}
bool ListHas(const std::vector<UnitId>& list, UnitId item) {
    return list.empty() || std::find(list.begin(), list.end(), item) != list.end();
}
}  // namespace

UnitTable::UnitTable() {
    for (auto name : kStdUnitNames) names_.emplace_back(name);
    TALLY_ASSERT(names_.size() == kNumStdUnits);
}

bool UnitTable::IsKnownExtra(std::string_view name) {
    return std::find(kKnownExtras.begin(), kKnownExtras.end(), name) != kKnownExtras.end();
}

std::optional<UnitId> UnitTable::Find(std::string_view name) const {
    for (size_t i = 0; i < names_.size(); ++i) {
        if (names_[i] == name) return static_cast<UnitId>(i);
    }
    return std::nullopt;
}

std::optional<UnitId> UnitTable::Intern(std::string_view name) {
    if (auto id = Find(name)) return id;
    if (names_.size() >= kMaxUnits) return std::nullopt;
    names_.emplace_back(name);
    return static_cast<UnitId>(names_.size() - 1);
}

bool Window::Contains(const LocalTime& t) const {
    int m = t.minute_of_day;
    int day = t.weekday;
    bool inside;
    if (start_minute < end_minute) {
        inside = m >= start_minute && m < end_minute;
    } else {
        // Crosses midnight: [start, 24:00) on its day, [00:00, end) on the next.
        if (m >= start_minute) {
            inside = true;
        } else if (m < end_minute) {
            inside = true;
            day = (day + 6) % 7;  // the window started the day before
        } else {
            inside = false;
        }
    }
    return inside && (weekdays & (1u << day)) != 0;
}

std::string ModelPricing::BandLabel(size_t band) const {
    TALLY_ASSERT(band < bands.size());
    int64_t from = band == 0 ? 0 : bands[band - 1].up_to + 1;
    if (bands[band].unbounded()) {
        return band == 0 ? "all" : std::to_string(from) + "+";
    }
    return std::to_string(from) + "-" + std::to_string(bands[band].up_to);
}

bool TierRule::Applies(std::string_view model, UnitId unit) const {
    return ListHas(models, model) && ListHas(units, unit);
}

bool FreeQuota::Applies(std::string_view model, UnitId unit) const {
    if (units.empty() && unit >= kNumStdUnits) return false;
    return ListHas(models, model) && ListHas(units, unit);
}

const ModelPricing* PlanVersion::FindModel(std::string_view model) const {
    auto it = model_index.find(std::string(model));
    if (it == model_index.end()) return nullptr;
    return &models[it->second];
}

int Plan::VersionIndexAt(Instant t) const {
    // Versions are few; the last one whose effective_from <= t.
    int found = -1;
    for (size_t i = 0; i < versions.size(); ++i) {
        if (versions[i].effective_from <= t) found = static_cast<int>(i);
    }
    if (found < 0) return -1;
    const auto& v = versions[static_cast<size_t>(found)];
    if (v.effective_until && t >= *v.effective_until) return -1;
    return found;
}

const PlanVersion* Plan::VersionAt(Instant t) const {
    int i = VersionIndexAt(t);
    return i < 0 ? nullptr : &versions[static_cast<size_t>(i)];
}

const Plan* Catalog::FindPlan(std::string_view name) const {
    int i = PlanIndex(name);
    return i < 0 ? nullptr : &plans[static_cast<size_t>(i)];
}

int Catalog::PlanIndex(std::string_view name) const {
    for (size_t i = 0; i < plans.size(); ++i) {
        if (plans[i].name == name) return static_cast<int>(i);
    }
    return -1;
}

std::string_view RoundingPlaceName(RoundingPlace place) {
    switch (place) {
        case RoundingPlace::kLine: return "line";
        case RoundingPlace::kInvoice: return "invoice";
    }
    TALLY_UNREACHABLE();
}

std::optional<UnitId> UnitFallback(UnitId unit) {
    switch (unit) {
        case kUnitCachedInput: return kUnitInput;
        case kUnitCachedInputExplicit: return kUnitCachedInput;
        case kUnitCacheWrite: return kUnitInput;
        case kUnitCacheWrite1h: return kUnitCacheWrite;
        case kUnitReasoning: return kUnitOutput;
        default: return std::nullopt;
    }
}

bool PricesWithFallback(const RateTable& table, UnitId unit) {
    TALLY_ASSERT(unit < kMaxUnits);
    for (std::optional<UnitId> u = unit; u; u = UnitFallback(*u)) {
        if (table.Has(*u)) return true;
    }
    return false;
}

bool RateTable::Empty() const {
    for (UnitId u = 0; u < kMaxUnits; ++u) {
        if (Has(u)) return false;
    }
    return true;
}

bool MayBeShareOfInput(UnitId unit) {
    return unit < kNumStdUnits && unit != kUnitInput && unit != kUnitOutput && unit != kUnitReasoning;
}

const RateTable& Window::RatesFor(size_t band) const {
    if (band_rates.empty()) return rates;
    TALLY_ASSERT(band < band_rates.size());
    return band_rates[band];
}

const RateTable* OutputCondition::WindowRatesFor(size_t window) const {
    for (const WindowTable& t : window_rates) {
        if (t.window == window) return &t.rates;
    }
    return nullptr;
}

std::array<CellTable, kCellTables> CellTables(const ModelPricing& m, const CellPlace& cell) {
    TALLY_ASSERT(cell.band < m.bands.size());
    const Band& band = m.bands[cell.band];
    const OutputCondition* cond = nullptr;
    if (cell.condition) {
        TALLY_ASSERT(*cell.condition < band.output_conditions.size());
        cond = &band.output_conditions[*cell.condition];
    }
    const RateTable* window = nullptr;
    const RateTable* cond_window = nullptr;
    if (cell.window) {
        TALLY_ASSERT(*cell.window < m.windows.size());
        window = &m.windows[*cell.window].RatesFor(cell.band);
        if (cond != nullptr) cond_window = cond->WindowRatesFor(*cell.window);
    }
    using O = TableOrigin;
    return {{
        {cell.batch && cond != nullptr ? &cond->batch_rates : nullptr, O::kBatch},
        {cell.batch ? &band.batch_rates : nullptr, O::kBatch},
        {cond_window, O::kWindow},
        {window, O::kWindow},
        {cell.thinking && cond != nullptr ? &cond->thinking_rates : nullptr, O::kOther},
        {cell.thinking ? &band.thinking_rates : nullptr, O::kOther},
        {cond != nullptr ? &cond->rates : nullptr, O::kOther},
        {&band.rates, O::kOther},
    }};
}

namespace {

struct Found {
    const RateTable* table = nullptr;
    UnitId unit = 0;  // `unit` or the unit it fell back to
    TableOrigin origin = TableOrigin::kOther;
};

// The first table of the cell, in FindStatedRate's order, that prices
// `unit` (or, failing every table, the unit it falls back to).
std::optional<Found> FindTable(const ModelPricing& m, const CellPlace& cell, UnitId unit) {
    const auto tables = CellTables(m, cell);
    for (std::optional<UnitId> u = unit; u; u = UnitFallback(*u)) {
        for (const auto& [table, origin] : tables) {
            if (table != nullptr && table->Has(*u)) return Found{table, *u, origin};
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<StatedRate> FindStatedRate(const ModelPricing& m, const CellPlace& cell, UnitId unit) {
    TALLY_ASSERT(unit < kMaxUnits);
    std::optional<Found> found = FindTable(m, cell, unit);
    if (!found) return std::nullopt;
    const RateTable& table = *found->table;
    if (table[found->unit]) {
        return StatedRate{*table[found->unit],
                          found->origin == TableOrigin::kBatch,
                          found->origin == TableOrigin::kWindow,
                          std::nullopt,
                          std::nullopt,
                          false};
    }
    TALLY_ASSERT(table.of_input[found->unit].has_value());
    TALLY_ASSERT(MayBeShareOfInput(found->unit));
    const Multiplier share = *table.of_input[found->unit];
    const bool share_in_batch = found->origin == TableOrigin::kBatch;
    CellPlace input_cell = cell;
    if (cell.batch && (found->unit == kUnitCachedInput || found->unit == kUnitCachedInputExplicit) &&
        m.batch.cache_hits == BatchCache::kFullCacheRate &&
        !share_in_batch) {
        input_cell.batch = false;  // the online cache-hit rate: a share of the online input
    }
    std::optional<Found> input = FindTable(m, input_cell, kUnitInput);
    TALLY_ASSERT(input.has_value());  // every band prices input
    TALLY_ASSERT(input->unit == kUnitInput);
    TALLY_ASSERT((*input->table)[kUnitInput].has_value());  // input is never a share
    const Rate input_rate = *(*input->table)[kUnitInput];
    return StatedRate{
        input_rate * share, input->origin == TableOrigin::kBatch, input->origin == TableOrigin::kWindow, share, input_rate,
        share_in_batch};
}

}  // namespace tally
