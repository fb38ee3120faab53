// The write side of `tally consume`: one PostgreSQL transaction per batch
// that fences the partition offsets, deduplicates on (source, id), appends
// the batch's rollups (folded into the rollups table every few seconds), archives the accepted events, stores dead
// letters and advances the offsets. Either all of it happens or none of it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fingerprint.h"
#include "ledger/migrations.h"
#include "pricing/time.h"

namespace tally::ledger {

using tally::Fingerprint;  // a call's identity (dedup key) or its payload's hash

struct KeyRow {
    Fingerprint key;           // DedupKey(source, id): ingest/event_key.h
    Fingerprint payload_hash;  // PayloadHash(payload)
    std::string source, id;    // for the reason of a conflict
    std::string customer;
    Instant event_time;
    int32_t partition = 0;
    int64_t offset = 0;
    std::string_view payload;  // the raw message; must outlive Commit
};

enum class KeyOutcome : uint8_t { kNew, kDuplicate, kConflict };

struct DeadLetterRow {
    int32_t partition = 0;
    int64_t offset = 0;
    std::string reason_code;  // invalid, unknown_customer, no_subscription, unpriced, conflict
    std::string reason;
    std::string_view raw;
};

struct RollupOut {
    std::string customer;
    int32_t period = 0;
    int32_t hour = 0;
    std::string plan, version, model;
    int16_t band = 0, condition = -1, time_window = -1, flags = 0;
    std::string unit;
    int64_t quantity = 0;
    int64_t calls = 0;
};

struct OffsetAdvance {
    int32_t partition = 0;
    int64_t expected = -1;  // the stored next offset this batch started from; -1: none stored
    int64_t next = 0;       // the next offset after this batch
};

struct BatchInput {
    std::vector<KeyRow> keys;  // decoded, priceable events; unique keys within the batch
    std::vector<DeadLetterRow> dead_letters;
    std::vector<OffsetAdvance> offsets;
    bool archive = true;
};

struct BatchResult {
    int64_t accepted = 0;    // new events, billed
    int64_t duplicates = 0;  // seen before with the same payload
    int64_t conflicts = 0;   // seen before with another payload: dead letters
    int64_t dead_letters = 0;
    int64_t rollup_deltas = 0;    // rows appended to rollup_deltas
    bool already_stored = false;  // a retried batch whose commit had in fact succeeded
};

// Another consumer stored offsets for these partitions since this one read
// them: the batch is not written; re-read the offsets and go on.
struct FenceError : LedgerError {
    FenceError(const std::string& what, std::vector<int32_t> parts) : LedgerError(what), partitions(std::move(parts)) {}
    std::vector<int32_t> partitions;
};

// Given which keys are new, the rollups of the new events, one row per key.
using RollupsOfNew = std::function<std::vector<RollupOut>(const std::vector<KeyOutcome>&)>;

class BatchWriter {
   public:
    BatchWriter(const std::string& database_url, std::string group, std::string topic);  // connects
    ~BatchWriter();
    BatchWriter(const BatchWriter&) = delete;
    BatchWriter& operator=(const BatchWriter&) = delete;

    // Stored next offsets of these partitions (absent: none stored).
    std::map<int32_t, int64_t> StoredOffsets(const std::vector<int32_t>& partitions);

    // Writes one batch in one transaction. Throws FenceError (nothing
    // written), or a connection error (then call Reconnect and Commit again:
    // a batch whose commit did succeed is recognised by its offsets).
    BatchResult Commit(const BatchInput& input, const RollupsOfNew& rollups_of_new);

    void Reconnect();

    // Moves the rows of rollup_deltas into rollups (summed by key), in one
    // transaction; usage_rollups reads the same before and after. Both
    // counts are 0 when another consumer is folding.
    struct Fold {
        int64_t deltas = 0;   // rows taken from rollup_deltas
        int64_t rollups = 0;  // rollups rows written (inserted or added to)
    };
    Fold FoldDeltas();

    // Operator's decision after events were lost to retention: moves the
    // stored offset of `partition` up to `earliest_on_broker` and records
    // the gap (from, to, who) in offset_gaps, in one transaction. Returns the
    // skipped range, or nullopt when the stored offset is still on the broker.
    std::optional<std::pair<int64_t, int64_t>> SkipGap(int32_t partition, int64_t earliest_on_broker,
                                                       const std::string& by);
    // Deletes dedup keys older than `days`; drops archive partitions older
    // than `archive_days`. Returns the number of keys deleted.
    int64_t Expire(int days, int archive_days);

   private:
    BatchResult CommitOnce(const BatchInput& input, const RollupsOfNew& rollups_of_new);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ledger
