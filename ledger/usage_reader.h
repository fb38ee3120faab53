// What `tally serve` reads on every request besides keys and invoices: one
// customer's stored usage records of a period or of the periods a range of
// hours touches, cheap marks of the published catalog and of a customer's
// usage (to know when a cached catalog or answer is stale), and whether the
// ledger is ready to serve. One connection, reconnecting: one UsageReader
// per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "pricing/rollup_records.h"

namespace tally::ledger {

class UsageReader {
   public:
    // Connects (as Store: throws ingest::SinkError when it cannot or the
    // schema is not this binary's).
    explicit UsageReader(const std::string& database_url);
    ~UsageReader();
    UsageReader(const UsageReader&) = delete;
    UsageReader& operator=(const UsageReader&) = delete;

    // Thrown by the reads below given a lock_timeout_ms > 0 when a lock
    // they need (on rollup_deltas: a migration's, or a rerate's; the fold
    // takes none since 2026-11-30) was not granted
    // within it. The connection stays usable.
    struct Busy : std::runtime_error {
        using std::runtime_error::runtime_error;
    };

    // The customer's records (usage_rollups) of billing period `period`,
    // ordered as Store::LoadRollups orders them. lock_timeout_ms > 0: wait
    // at most that long for a lock (then Busy); 0: as long as it takes.
    std::vector<RollupRecord> PeriodRecords(const std::string& customer, int32_t period, int64_t lock_timeout_ms = 0);
    // The customer's records of every billing period that has a record in
    // hours [from_hour, to_hour), with hours before to_hour (the earlier
    // hours of those periods too: costs are priced from a period's start).
    std::vector<RollupRecord> RangeRecords(const std::string& customer, int32_t from_hour, int32_t to_hour,
                                           int64_t lock_timeout_ms = 0);

    // The customer's records of every billing period before `period`.
    std::vector<RollupRecord> EarlierRecords(const std::string& customer, int32_t period, int64_t lock_timeout_ms = 0);

    // PeriodRecords in two parts, read in one statement (one snapshot):
    // the 'usage' change counter, the customer's rows of `period` in the
    // rollups table (only with `with_folded`) and its rows in rollup_deltas
    // summed per key (through the delta index). The rollups table changes
    // only with that counter (sql/0009: the fold, a rebuild), so the folded
    // part read at an earlier snapshot with the same counter is the folded
    // part of this one: Combine(kept folded part, these deltas) is then
    // PeriodRecords at this snapshot, without reading the month again.
    // lock_timeout_ms as PeriodRecords.
    struct PeriodParts {
        int64_t usage = 0;                  // the 'usage' counter at the snapshot
        bool with_folded = false;           // `folded` was read
        std::vector<RollupRecord> folded;   // rows of rollups, in record order (Combine's)
        std::vector<RollupRecord> deltas;   // rows of rollup_deltas summed per key, in record order
    };
    PeriodParts ReadPeriodParts(const std::string& customer, int32_t period, bool with_folded,
                                int64_t lock_timeout_ms = 0);
    // What usage_rollups answers for rollups rows `folded` and summed delta
    // rows `deltas` (each at most one record per key, both in record order):
    // one record per key, quantities and calls summed, at most 2^63-1 (the
    // view's LEAST: every count is >= 0), in PeriodRecords' order.
    static std::vector<RollupRecord> Combine(const std::vector<RollupRecord>& folded,
                                             const std::vector<RollupRecord>& deltas);
    // Sorts records into PeriodRecords' order (its ORDER BY: the key
    // columns, text in byte order as COLLATE "C").
    static void SortRecords(std::vector<RollupRecord>* records);

    // Changes whenever a plan version, plan name, customer or subscription
    // is added or changed: the 'catalog' change counter (sql/0009), one row.
    std::string CatalogVersion();

    // The catalog's change counter and a mark of `customer`'s usage records
    // of the periods up to `period_max`, read in one statement (so at one
    // snapshot) without touching rollup_deltas (the fold locks it). Two
    // reads with equal marks saw the same usage records in that scope
    // (sql/0009: the 'usage' counter moves on every change to rollups and on
    // every change to rollup_deltas but an insert; inserts are counted per
    // customer and period in usage_marks), and once the records in scope
    // change, no later mark equals an earlier one: so an answer computed
    // from records read after a mark may be kept under that mark.
    struct Marks {
        int64_t catalog = 0;
        int64_t usage = 0;   // the 'usage' change counter
        int64_t deltas = 0;  // rows ever inserted into rollup_deltas in scope
        friend bool operator==(const Marks&, const Marks&) = default;
    };
    Marks ReadMarks(const std::string& customer, int32_t period_max);

    // "" when the database answers and its applied migrations are exactly
    // this binary's; else why not. Never throws.
    std::string NotReady();

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ledger
