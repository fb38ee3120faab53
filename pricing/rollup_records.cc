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

namespace {

using CellOf = std::tuple<std::string, int32_t, int32_t, uint16_t, uint16_t, uint16_t, int16_t, int16_t, int16_t,
                          int16_t, std::string>;

// Hashed, not ordered: CanonicalizeRollups orders the result once.
struct CellHash {
    size_t operator()(const CellOf& c) const noexcept {
        size_t h = std::hash<std::string>()(std::get<0>(c));
        auto mix = [&h](uint64_t v) { h = (h ^ v) * 0x100000001b3ULL + (h >> 29); };
        mix(static_cast<uint64_t>(static_cast<uint32_t>(std::get<1>(c))) << 32 | static_cast<uint32_t>(std::get<2>(c)));
        mix(static_cast<uint64_t>(std::get<3>(c)) << 32 | static_cast<uint64_t>(std::get<4>(c)) << 16 | std::get<5>(c));
        mix(static_cast<uint64_t>(static_cast<uint16_t>(std::get<6>(c))) << 48 |
            static_cast<uint64_t>(static_cast<uint16_t>(std::get<7>(c))) << 32 |
            static_cast<uint64_t>(static_cast<uint16_t>(std::get<8>(c))) << 16 |
            static_cast<uint16_t>(std::get<9>(c)));
        if (!std::get<10>(c).empty()) mix(std::hash<std::string>()(std::get<10>(c)));
        return h;
    }
};

}  // namespace

// Records come grouped (the unit records of a cell one after the other, a
// customer's cells together), so each record is first compared with the
// one before: same names, same indices; same cell, same rollup (pointers
// into `map` stay valid as it grows). Only a change looks names up and
// hashes. The result is the same in any order.
struct RecordsFolder::Cells {
    std::unordered_map<CellOf, Rollup, CellHash> map;
    bool any = false;  // whether `prev` holds a record
    struct {
        std::string customer, plan, version, model, served_model;
        int32_t period = 0, hour = 0;
        int16_t band = 0, condition = 0, time_window = 0, flags = 0;
    } prev;
    int plan = -1, version = -1, model = -1;  // of prev's names
    Rollup* prev_roll = nullptr;              // prev's rollup, null if prev was unresolved
    std::vector<std::pair<std::string, std::optional<UnitId>>> units;  // names seen, with their ids
};

RecordsFolder::RecordsFolder(const Catalog& catalog) : catalog_(catalog), cells_(std::make_unique<Cells>()) {}
RecordsFolder::~RecordsFolder() = default;

void RecordsFolder::Add(const RecordView& rec) {
    Cells& c = *cells_;
    ++records_;
    const bool same_names =
        c.any && rec.plan == c.prev.plan && rec.version == c.prev.version && rec.model == c.prev.model;
    if (!same_names) {
        c.plan = catalog_.PlanIndex(rec.plan);
        c.version = -1;
        c.model = -1;
        if (c.plan >= 0) {
            const Plan& p = catalog_.plans[static_cast<size_t>(c.plan)];
            for (size_t i = 0; i < p.versions.size(); ++i) {
                if (p.versions[i].id == rec.version) c.version = static_cast<int>(i);
            }
            if (c.version >= 0) {
                const PlanVersion& v = p.versions[static_cast<size_t>(c.version)];
                auto it = v.model_index.find(std::string(rec.model));
                if (it != v.model_index.end()) c.model = it->second;
            }
        }
        c.prev.plan.assign(rec.plan);
        c.prev.version.assign(rec.version);
        c.prev.model.assign(rec.model);
    }
    const bool same_cell = c.prev_roll != nullptr && same_names && rec.customer == c.prev.customer &&
                           rec.period == c.prev.period && rec.hour == c.prev.hour && rec.band == c.prev.band &&
                           rec.condition == c.prev.condition && rec.time_window == c.prev.time_window &&
                           rec.flags == c.prev.flags && rec.served_model == c.prev.served_model;
    if (!same_cell) {
        c.prev.customer.assign(rec.customer);
        c.prev.period = rec.period;
        c.prev.hour = rec.hour;
        c.prev.band = rec.band;
        c.prev.condition = rec.condition;
        c.prev.time_window = rec.time_window;
        c.prev.flags = rec.flags;
        c.prev.served_model.assign(rec.served_model);
    }
    c.any = true;
    std::optional<UnitId> unit;
    const bool calls_record = rec.unit == kCallsUnit;
    if (!calls_record) {
        auto seen = std::find_if(c.units.begin(), c.units.end(), [&](const auto& u) { return u.first == rec.unit; });
        if (seen == c.units.end()) {
            seen = c.units.insert(c.units.end(), {std::string(rec.unit), catalog_.units.Find(rec.unit)});
        }
        unit = seen->second;
    }
    const bool cell_ok = rec.band >= 0 && rec.band < static_cast<int16_t>(kMaxBands) && rec.condition >= -1 &&
                         rec.condition < 0xff && rec.time_window >= -1 && rec.time_window < 0xff && rec.flags >= 0 &&
                         rec.flags <= (kFlagBatch | kFlagThinking);
    if (c.plan < 0 || c.version < 0 || c.model < 0 || !cell_ok) {
        c.prev_roll = nullptr;
        ++unresolved_;
        return;
    }
    if (!calls_record && !unit) {  // an unknown unit: the cell is made by its other records, if any
        if (!same_cell) c.prev_roll = nullptr;
        ++unresolved_;
        return;
    }
    if (!same_cell) {
        auto key = std::make_tuple(std::string(rec.customer), rec.period, rec.hour, static_cast<uint16_t>(c.plan),
                                   static_cast<uint16_t>(c.version), static_cast<uint16_t>(c.model), rec.band,
                                   rec.condition, rec.time_window, rec.flags, std::string(rec.served_model));
        auto [it, fresh] = c.map.try_emplace(std::move(key));
        c.prev_roll = &it->second;
        if (fresh) {
            Rollup& roll = *c.prev_roll;
            roll.customer = rec.customer;
            roll.period = rec.period;
            roll.hour = rec.hour;
            roll.cell.plan = static_cast<uint16_t>(c.plan);
            roll.cell.version = static_cast<uint16_t>(c.version);
            roll.cell.model = static_cast<uint16_t>(c.model);
            roll.cell.band = static_cast<uint8_t>(rec.band);
            roll.cell.condition = rec.condition < 0 ? kNone : static_cast<uint8_t>(rec.condition);
            roll.cell.window = rec.time_window < 0 ? kNone : static_cast<uint8_t>(rec.time_window);
            roll.cell.flags = static_cast<uint8_t>(rec.flags);
            roll.served_model = rec.served_model;
        }
    }
    Rollup& roll = *c.prev_roll;
    if (calls_record) {
        roll.calls = SaturatingAdd(roll.calls, rec.calls);
    } else {
        roll.quantities[*unit] = SaturatingAdd(roll.quantities[*unit], rec.quantity);
    }
}

RecordsRead RecordsFolder::Finish() {
    RecordsRead read;
    read.unresolved = unresolved_;
    read.rollups.reserve(cells_->map.size());
    for (auto& [key, r] : cells_->map) read.rollups.push_back(std::move(r));
    CanonicalizeRollups(&read.rollups);
    cells_ = std::make_unique<Cells>();
    records_ = 0;
    unresolved_ = 0;
    return read;
}

RecordsRead FromRecords(const Catalog& catalog, const std::vector<RollupRecord>& records) {
    RecordsFolder folder(catalog);
    for (const RollupRecord& r : records) {
        RecordView v;
        v.customer = r.customer;
        v.period = r.period;
        v.hour = r.hour;
        v.plan = r.plan;
        v.version = r.version;
        v.model = r.model;
        v.served_model = r.served_model;
        v.band = r.band;
        v.condition = r.condition;
        v.time_window = r.time_window;
        v.flags = r.flags;
        v.unit = r.unit;
        v.quantity = r.quantity;
        v.calls = r.calls;
        folder.Add(v);
    }
    return folder.Finish();
}

}  // namespace tally
