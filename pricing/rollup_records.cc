#include "pricing/rollup_records.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
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
        base.project = r.project;
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

// The canonical order of rollups (CanonicalizeRollups'): customer, period,
// hour, cell, served model, project.
bool CanonicalLess(const Rollup& a, const Rollup& b) {
    if (a.customer != b.customer) return a.customer < b.customer;
    if (a.period != b.period) return a.period < b.period;
    if (a.hour != b.hour) return a.hour < b.hour;
    if (a.cell != b.cell) return a.cell < b.cell;
    if (a.served_model != b.served_model) return a.served_model < b.served_model;
    return a.project < b.project;
}

bool SameCell(const Rollup& a, const Rollup& b) {
    return a.customer == b.customer && a.period == b.period && a.hour == b.hour && a.cell == b.cell &&
           a.served_model == b.served_model && a.project == b.project;
}

}  // namespace

// Records come grouped (the unit records of a cell one after the other, a
// customer's cells together), so each record is compared with the one
// before: same names, same indices; same cell, same rollup. Each run of
// records of one cell makes a rollup in `runs`; Finish puts the runs of a
// cell together in their order and sums them (so every cell's quantities
// are summed in record order, as a map from cell to rollup would), sorting
// only when the runs are not in canonical order already.
struct RecordsFolder::Cells {
    std::vector<Rollup> runs;
    bool any = false;  // whether `prev` holds a record
    struct {
        std::string customer, plan, version, model, served_model, project;
        int32_t period = 0, hour = 0;
        int16_t band = 0, condition = 0, time_window = 0, flags = 0;
    } prev;
    int plan = -1, version = -1, model = -1;  // of prev's names
    bool prev_in_run = false;                 // prev's rollup is runs.back() (prev was resolved)
    std::vector<std::pair<std::string, std::optional<UnitId>>> units;  // names seen, with their ids
};

RecordsFolder::RecordsFolder(const Catalog& catalog) : catalog_(catalog), cells_(std::make_unique<Cells>()) {}
RecordsFolder::~RecordsFolder() = default;

void RecordsFolder::Add(const RecordView& rec) {
    Cells& c = *cells_;
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
    const bool same_fields = same_names && rec.customer == c.prev.customer && rec.period == c.prev.period &&
                             rec.hour == c.prev.hour && rec.band == c.prev.band &&
                             rec.condition == c.prev.condition && rec.time_window == c.prev.time_window &&
                             rec.flags == c.prev.flags && rec.served_model == c.prev.served_model &&
                             rec.project == c.prev.project;
    if (!same_fields) {
        c.prev.customer.assign(rec.customer);
        c.prev.period = rec.period;
        c.prev.hour = rec.hour;
        c.prev.band = rec.band;
        c.prev.condition = rec.condition;
        c.prev.time_window = rec.time_window;
        c.prev.flags = rec.flags;
        c.prev.served_model.assign(rec.served_model);
        c.prev.project.assign(rec.project);
    }
    c.any = true;
    AddUnit(same_fields, rec.unit, rec.quantity, rec.calls);
}

void RecordsFolder::AddSameCell(std::string_view unit, int64_t quantity, int64_t calls) {
    TALLY_ASSERT(cells_->any);  // there is a record before
    AddUnit(true, unit, quantity, calls);
}

// The rest of Add, for a record whose cell fields are the ones in `prev`
// (`same_fields`: they were the previous record's too).
void RecordsFolder::AddUnit(bool same_fields, std::string_view unit_name, int64_t quantity, int64_t calls) {
    Cells& c = *cells_;
    const bool same_cell = same_fields && c.prev_in_run;
    std::optional<UnitId> unit;
    const bool calls_record = unit_name == kCallsUnit;
    if (!calls_record) {
        auto seen = std::find_if(c.units.begin(), c.units.end(), [&](const auto& u) { return u.first == unit_name; });
        if (seen == c.units.end()) {
            seen = c.units.insert(c.units.end(), {std::string(unit_name), catalog_.units.Find(unit_name)});
        }
        unit = seen->second;
    }
    const auto& f = c.prev;
    const bool cell_ok = f.band >= 0 && f.band < static_cast<int16_t>(kMaxBands) && f.condition >= -1 &&
                         f.condition < 0xff && f.time_window >= -1 && f.time_window < 0xff && f.flags >= 0 &&
                         f.flags <= (kFlagBatch | kFlagThinking);
    if (c.plan < 0 || c.version < 0 || c.model < 0 || !cell_ok) {
        c.prev_in_run = false;
        ++unresolved_;
        return;
    }
    if (!calls_record && !unit) {  // an unknown unit: the cell is made by its other records, if any
        if (!same_cell) c.prev_in_run = false;
        ++unresolved_;
        return;
    }
    if (!same_cell) {
        Rollup& roll = c.runs.emplace_back();
        roll.customer = f.customer;
        roll.period = f.period;
        roll.hour = f.hour;
        roll.cell.plan = static_cast<uint16_t>(c.plan);
        roll.cell.version = static_cast<uint16_t>(c.version);
        roll.cell.model = static_cast<uint16_t>(c.model);
        roll.cell.band = static_cast<uint8_t>(f.band);
        roll.cell.condition = f.condition < 0 ? kNone : static_cast<uint8_t>(f.condition);
        roll.cell.window = f.time_window < 0 ? kNone : static_cast<uint8_t>(f.time_window);
        roll.cell.flags = static_cast<uint8_t>(f.flags);
        roll.served_model = f.served_model;
        roll.project = f.project;
        c.prev_in_run = true;
    }
    Rollup& roll = c.runs.back();
    if (calls_record) {
        roll.calls = SaturatingAdd(roll.calls, calls);
    } else {
        roll.quantities[*unit] = SaturatingAdd(roll.quantities[*unit], quantity);
    }
}

RecordsRead RecordsFolder::Finish() {
    std::vector<Rollup>& runs = cells_->runs;
    RecordsRead read;
    read.unresolved = unresolved_;
    read.rollups.reserve(runs.size());
    // Runs of one cell in their order (a stable sort), then each cell's
    // runs summed into one rollup.
    std::vector<uint32_t> order(runs.size());
    TALLY_ASSERT(runs.size() <= std::numeric_limits<uint32_t>::max());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(i);
    auto less = [&runs](uint32_t a, uint32_t b) { return CanonicalLess(runs[a], runs[b]); };
    if (!std::is_sorted(order.begin(), order.end(), less)) std::stable_sort(order.begin(), order.end(), less);
    for (const uint32_t i : order) {
        Rollup& r = runs[i];
        if (!read.rollups.empty() && SameCell(read.rollups.back(), r)) {
            Rollup& into = read.rollups.back();
            for (size_t u = 0; u < kMaxUnits; ++u) into.quantities[u] = SaturatingAdd(into.quantities[u], r.quantities[u]);
            into.calls = SaturatingAdd(into.calls, r.calls);
        } else {
            read.rollups.push_back(std::move(r));
        }
    }
    // Already in order, with no two rollups of one cell: this only checks.
    CanonicalizeRollups(&read.rollups);
    const size_t capacity = runs.size();
    cells_ = std::make_unique<Cells>();
    cells_->runs.reserve(capacity);  // the next set is most likely as large
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
        v.project = r.project;
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
