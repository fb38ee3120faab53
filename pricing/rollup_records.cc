#include "pricing/rollup_records.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "base/assert.h"

namespace tally {

std::vector<RollupRecord> ToRecords(const Catalog& catalog, const std::vector<Rollup>& rollups) {
    std::vector<RollupRecord> out;
    out.reserve(rollups.size() * 3);
    for (const Rollup& r : rollups) {
        TALLY_ASSERT(r.cell.plan < catalog.plans.size());
        const Plan& plan = catalog.plans[r.cell.plan];
        TALLY_ASSERT(r.cell.version < plan.versions.size());
        const PlanVersion& v = plan.versions[r.cell.version];
        TALLY_ASSERT(r.cell.model < v.models.size());
        RollupRecord base;
        base.customer = r.customer;
        base.period = r.period;
        base.hour = r.hour;
        base.plan = plan.name;
        base.version = v.id;
        base.model = v.models[r.cell.model].name;
        base.served_model = r.served_model;
        base.band = r.cell.band;
        base.condition = r.cell.condition == kNone ? int16_t{-1} : int16_t{r.cell.condition};
        base.time_window = r.cell.window == kNone ? int16_t{-1} : int16_t{r.cell.window};
        base.flags = r.cell.flags;
        if (r.calls != 0) {  // graduated bands: a call counts in the last cell it reaches only
            RollupRecord calls = base;
            calls.unit = kCallsUnit;
            calls.calls = r.calls;
            out.push_back(std::move(calls));
        }
        for (size_t u = 0; u < kMaxUnits; ++u) {
            if (r.quantities[u] == 0) continue;
            RollupRecord rec = base;
            rec.unit = catalog.units.Name(static_cast<UnitId>(u));
            TALLY_ASSERT(!rec.unit.empty());
            rec.quantity = r.quantities[u];
            out.push_back(std::move(rec));
        }
    }
    return out;
}

RecordsRead FromRecords(const Catalog& catalog, const std::vector<RollupRecord>& records) {
    RecordsRead read;
    using CellOf = std::tuple<std::string, int32_t, int32_t, uint16_t, uint16_t, uint16_t, int16_t, int16_t, int16_t,
                              int16_t, std::string>;
    // Hashed, not ordered: CanonicalizeRollups orders the result once.
    struct CellHash {
        size_t operator()(const CellOf& c) const noexcept {
            size_t h = std::hash<std::string>()(std::get<0>(c));
            auto mix = [&h](uint64_t v) { h = (h ^ v) * 0x100000001b3ULL + (h >> 29); };
            mix(static_cast<uint64_t>(static_cast<uint32_t>(std::get<1>(c))) << 32 |
                static_cast<uint32_t>(std::get<2>(c)));
            mix(static_cast<uint64_t>(std::get<3>(c)) << 32 | static_cast<uint64_t>(std::get<4>(c)) << 16 |
                std::get<5>(c));
            mix(static_cast<uint64_t>(static_cast<uint16_t>(std::get<6>(c))) << 48 |
                static_cast<uint64_t>(static_cast<uint16_t>(std::get<7>(c))) << 32 |
                static_cast<uint64_t>(static_cast<uint16_t>(std::get<8>(c))) << 16 |
                static_cast<uint16_t>(std::get<9>(c)));
            if (!std::get<10>(c).empty()) mix(std::hash<std::string>()(std::get<10>(c)));
            return h;
        }
    };
    std::unordered_map<CellOf, Rollup, CellHash> cells;
    cells.reserve(records.size() / 2 + 1);
    // Records come grouped (the unit records of a cell one after the other,
    // a customer's cells together), so each record is first compared with
    // the one before: same names, same indices; same cell, same rollup
    // (pointers into `cells` stay valid as it grows). Only a change looks
    // names up and hashes. The result is the same in any order.
    const RollupRecord* prev = nullptr;
    int plan = -1, version = -1, model = -1;  // of `prev`'s names
    Rollup* prev_roll = nullptr;              // `prev`'s rollup, null if `prev` was unresolved
    std::vector<std::pair<std::string, std::optional<UnitId>>> units;  // names seen, with their ids
    for (const RollupRecord& rec : records) {
        const bool same_names =
            prev != nullptr && rec.plan == prev->plan && rec.version == prev->version && rec.model == prev->model;
        if (!same_names) {
            plan = catalog.PlanIndex(rec.plan);
            version = -1;
            model = -1;
            if (plan >= 0) {
                const Plan& p = catalog.plans[static_cast<size_t>(plan)];
                for (size_t i = 0; i < p.versions.size(); ++i) {
                    if (p.versions[i].id == rec.version) version = static_cast<int>(i);
                }
                if (version >= 0) {
                    const PlanVersion& v = p.versions[static_cast<size_t>(version)];
                    auto it = v.model_index.find(rec.model);
                    if (it != v.model_index.end()) model = it->second;
                }
            }
        }
        const bool same_cell = prev_roll != nullptr && same_names && rec.customer == prev->customer &&
                               rec.period == prev->period && rec.hour == prev->hour && rec.band == prev->band &&
                               rec.condition == prev->condition && rec.time_window == prev->time_window &&
                               rec.flags == prev->flags && rec.served_model == prev->served_model;
        prev = &rec;
        std::optional<UnitId> unit;
        const bool calls_record = rec.unit == kCallsUnit;
        if (!calls_record) {
            auto seen = std::find_if(units.begin(), units.end(), [&](const auto& u) { return u.first == rec.unit; });
            if (seen == units.end()) seen = units.insert(units.end(), {rec.unit, catalog.units.Find(rec.unit)});
            unit = seen->second;
        }
        const bool cell_ok = rec.band >= 0 && rec.band < static_cast<int16_t>(kMaxBands) && rec.condition >= -1 &&
                             rec.condition < 0xff && rec.time_window >= -1 && rec.time_window < 0xff &&
                             rec.flags >= 0 && rec.flags <= (kFlagBatch | kFlagThinking);
        if (plan < 0 || version < 0 || model < 0 || !cell_ok) {
            prev_roll = nullptr;
            ++read.unresolved;
            continue;
        }
        if (!calls_record && !unit) {  // an unknown unit: the cell is made by its other records, if any
            if (!same_cell) prev_roll = nullptr;
            ++read.unresolved;
            continue;
        }
        if (!same_cell) {
            const auto key = std::make_tuple(rec.customer, rec.period, rec.hour, static_cast<uint16_t>(plan),
                                             static_cast<uint16_t>(version), static_cast<uint16_t>(model), rec.band,
                                             rec.condition, rec.time_window, rec.flags, rec.served_model);
            auto [it, fresh] = cells.try_emplace(key);
            prev_roll = &it->second;
            if (fresh) {
                Rollup& roll = *prev_roll;
                roll.customer = rec.customer;
                roll.period = rec.period;
                roll.hour = rec.hour;
                roll.cell.plan = static_cast<uint16_t>(plan);
                roll.cell.version = static_cast<uint16_t>(version);
                roll.cell.model = static_cast<uint16_t>(model);
                roll.cell.band = static_cast<uint8_t>(rec.band);
                roll.cell.condition = rec.condition < 0 ? kNone : static_cast<uint8_t>(rec.condition);
                roll.cell.window = rec.time_window < 0 ? kNone : static_cast<uint8_t>(rec.time_window);
                roll.cell.flags = static_cast<uint8_t>(rec.flags);
                roll.served_model = rec.served_model;
            }
        }
        Rollup& roll = *prev_roll;
        if (calls_record) {
            roll.calls = SaturatingAdd(roll.calls, rec.calls);
        } else {
            roll.quantities[*unit] = SaturatingAdd(roll.quantities[*unit], rec.quantity);
        }
    }
    read.rollups.reserve(cells.size());
    for (auto& [key, r] : cells) read.rollups.push_back(std::move(r));
    CanonicalizeRollups(&read.rollups);
    return read;
}

}  // namespace tally
