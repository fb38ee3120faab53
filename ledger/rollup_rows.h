// Reading rollup rows (rollups, rollup_deltas, usage_rollups) into
// RollupRecords: one column list and one conversion for every reader.
// Internal to ledger/ (it names libpqxx).
#pragma once

#include <charconv>
#include <cstring>
#include <pqxx/pqxx>
#include <string_view>

#include "base/assert.h"
#include "ledger/migrations.h"
#include "pricing/rollup_records.h"

namespace tally::ledger {

inline constexpr const char* kRollupColumns =
    "customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit, quantity, calls, "
    "served_model, project";

namespace internal {
// An integer as PostgreSQL writes integer types.
template <typename Int>
Int IntOf(std::string_view text) {
    Int value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
        throw LedgerError("a rollup row holds '" + std::string(text) + "' where an integer belongs");
    }
    return value;
}
template <typename Int>
Int IntOf(const pqxx::field& f) {
    return IntOf<Int>(std::string_view(f.c_str(), f.size()));
}
}  // namespace internal

// The row's columns in kRollupColumns' order, checked for the shape the
// tables check (sql/0002): a calls record has no quantity, a unit record
// no calls. Fields are read as views (no libpqxx conversions: this is the
// loop of every invoice run).
inline RollupRecord RollupRecordOf(const pqxx::row& row) {
    RollupRecord r;
    r.customer.assign(row[0].c_str(), row[0].size());
    r.period = internal::IntOf<int32_t>(row[1]);
    r.hour = internal::IntOf<int32_t>(row[2]);
    r.plan.assign(row[3].c_str(), row[3].size());
    r.version.assign(row[4].c_str(), row[4].size());
    r.model.assign(row[5].c_str(), row[5].size());
    r.band = internal::IntOf<int16_t>(row[6]);
    r.condition = internal::IntOf<int16_t>(row[7]);
    r.time_window = internal::IntOf<int16_t>(row[8]);
    r.flags = internal::IntOf<int16_t>(row[9]);
    r.unit.assign(row[10].c_str(), row[10].size());
    r.quantity = internal::IntOf<int64_t>(row[11]);
    r.calls = internal::IntOf<int64_t>(row[12]);
    r.served_model.assign(row[13].c_str(), row[13].size());
    r.project.assign(row[14].c_str(), row[14].size());
    TALLY_ASSERT(!r.unit.empty() || r.quantity == 0);
    TALLY_ASSERT(r.unit.empty() || r.calls == 0);
    return r;
}

}  // namespace tally::ledger
