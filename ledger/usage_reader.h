// What `tally serve` reads on every request besides keys and invoices: one
// customer's stored usage records of a period or of the periods a range of
// hours touches, a cheap fingerprint of the published catalog (to know when
// a cached catalog is stale), and whether the ledger is ready to serve.
// One connection, reconnecting: one UsageReader per thread.
#pragma once

#include <cstdint>
#include <memory>
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

    // The customer's records (usage_rollups) of billing period `period`,
    // ordered as Store::LoadRollups orders them.
    std::vector<RollupRecord> PeriodRecords(const std::string& customer, int32_t period);
    // The customer's records of every billing period that has a record in
    // hours [from_hour, to_hour), with hours before to_hour (the earlier
    // hours of those periods too: costs are priced from a period's start).
    std::vector<RollupRecord> RangeRecords(const std::string& customer, int32_t from_hour, int32_t to_hour);

    // The customer's records of every billing period before `period`.
    std::vector<RollupRecord> EarlierRecords(const std::string& customer, int32_t period);

    // Changes whenever a plan version, customer or subscription is added
    // (they are append-only): counts and latest instants, one query.
    std::string CatalogVersion();

    // "" when the database answers and its applied migrations are exactly
    // this binary's; else why not. Never throws.
    std::string NotReady();

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ledger
