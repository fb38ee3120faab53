// The write side of `tally consume`: ingest::BatchSink over PostgreSQL. One
// transaction per batch fences the partition offsets, deduplicates on
// (source, id) against the billed payloads (ingest::Resolve), appends the
// rollup records of the new calls (folded into the rollups table every few
// seconds), archives the accepted events, stores dead letters and advances
// the offsets. Either all of it happens or none of it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ingest/sink.h"

namespace tally::ledger {

class BatchWriter final : public ingest::BatchSink {
   public:
    // Connects and checks the schema's version. Throws ingest::SinkError:
    // kRetry when the server is not reachable now, kFatal for a missing
    // database, a refused login, or a schema that is not this binary's.
    BatchWriter(const std::string& database_url, std::string group, std::string topic);
    ~BatchWriter() override;
    BatchWriter(const BatchWriter&) = delete;
    BatchWriter& operator=(const BatchWriter&) = delete;

    // The BatchSink methods (ingest/sink.h) throw ingest::SinkError only:
    // ledger/errors.h sorts the database's failures. Store throws kFenced
    // (nothing written) when another consumer advanced a partition of the
    // batch; a batch whose commit did succeed, stored again after kInDoubt
    // or kRetry, comes back with already_stored.
    ingest::StoreResult Store(const ingest::Batch& batch, const ingest::RecordsOfNew& records_of_new) override;
    std::map<int32_t, int64_t> StoredOffsets(const std::vector<int32_t>& partitions) override;
    // Moves the records of rollup_deltas into rollups (summed by key,
    // saturating at 2^63-1), in one transaction; usage_rollups reads the
    // same before and after. Both counts are 0 when another consumer is
    // folding.
    Fold FoldDeltas() override;
    // Deletes dedup keys older than `dedup_days`; drops archive partitions
    // older than `archive_days`. Returns the number of keys deleted.
    int64_t Expire(int dedup_days, int archive_days) override;
    void Reconnect() override;

    // Operator's decision after events were lost to retention (not part of
    // BatchSink): moves the stored offset of `partition` up to
    // `earliest_on_broker` and records the gap (from, to, who) in
    // offset_gaps, in one transaction. Returns the skipped range, or nullopt
    // when the stored offset is still on the broker. Throws SinkError.
    std::optional<std::pair<int64_t, int64_t>> SkipGap(int32_t partition, int64_t earliest_on_broker,
                                                       const std::string& by);

   private:
    ingest::StoreResult StoreOnce(const ingest::Batch& batch, const ingest::RecordsOfNew& records_of_new);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ledger
