// Rebuilding a billing period's rollups from the raw event archive, for
// `tally rerate` after a retroactive plan version: the archived calls are
// rated again under today's catalog and replace the period's rollups, in one
// transaction that holds the consumer off the rollup tables meanwhile (a
// call billed during the rebuild is never lost between read and replace).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pricing/rollup_records.h"
#include "pricing/time.h"

namespace tally::ledger {

struct RebuildOutcome {
    std::string customer;
    int64_t calls_before = 0;  // in the period's rollups before the rebuild
    int64_t calls_after = 0;   // in the rebuilt rollups
    bool replaced = false;
    std::string refused;  // why the customer's rollups were kept as they were
};

// Re-rates `payloads` (archived messages of one customer, byte for byte)
// into rollup records of every period they fall in; sets *refusal (and the
// customer is left alone) when some of them could not be rated.
using Rerate = std::function<std::vector<RollupRecord>(const std::string& customer,
                                                       const std::vector<std::string>& payloads, std::string* refusal)>;

// For each customer ("" : every customer with usage or archived calls in the
// period) whose archive covers the period (archived calls of `period_id`
// as many as its rollups count), replaces its rollups of `period_id` with
// `rerate`'s. Archive rows overlapping [from, to) are read: wide enough to
// hold every call of the period. Throws LedgerError / libpqxx exceptions.
std::vector<RebuildOutcome> RebuildRollups(const std::string& database_url, int32_t period_id, Instant from, Instant to,
                                           const std::string& customer, const Rerate& rerate);

}  // namespace tally::ledger
