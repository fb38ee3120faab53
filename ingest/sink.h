// What the consume loop (ingest/consume_loop.h) stores its batches into, and
// where it loads plans and customers from. ingest declares these interfaces
// (the user of a service owns its interface, as LevelDB does); ledger/
// implements them over PostgreSQL and includes this header and nothing else
// of ingest (tests/tidy/check_layers.sh); app/ builds one and hands it to the
// other. Everything here is a value or an abstract class: no Kafka, no SQL.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/fingerprint.h"
#include "base/reject_reason.h"
#include "pricing/plan.h"
#include "pricing/rollup_records.h"
#include "pricing/subscription.h"
#include "pricing/time.h"

namespace tally::ingest {

// A later message of the batch with the same (source, id) as a KeyRow: a
// duplicate or a conflict, decided by Resolve against the stored payload
// (or, for a call new to the ledger, against the KeyRow's own payload), so
// the same events give the same dead letters in any batching.
struct Repeat {
    Fingerprint payload_hash;
    int32_t partition = 0;
    int64_t offset = 0;
    std::string_view payload;  // the raw message; must outlive Store
};

// The first priceable message of one (source, id) in a batch.
struct KeyRow {
    Fingerprint key;           // DedupKey(source, id): ingest/event_key.h
    Fingerprint payload_hash;  // PayloadHash(payload)
    std::string source, id;    // for the reason of a conflict
    std::string customer;
    Instant event_time;
    int32_t partition = 0;
    int64_t offset = 0;
    std::string_view payload;    // the raw message; must outlive Store
    std::vector<Repeat> repeats;  // later messages of the same call in this batch
};

struct DeadLetter {
    int32_t partition = 0;
    int64_t offset = 0;
    RejectReason reason = RejectReason::kInvalid;
    std::string detail;    // a sentence naming the field and what is wrong
    std::string_view raw;  // the message byte for byte; must outlive Store
};

struct OffsetAdvance {
    int32_t partition = 0;
    int64_t expected = -1;  // the stored next offset this batch started from; -1: none stored
    int64_t next = 0;       // the next offset after this batch
};

struct Batch {
    std::vector<KeyRow> keys;  // decoded, priceable; unique keys within the batch
    std::vector<DeadLetter> dead_letters;
    std::vector<OffsetAdvance> offsets;
    bool archive = true;
};

enum class KeyOutcome : uint8_t { kNew, kDuplicate, kConflict };

// A message equal to the billed payload of its call: billed once, no dead letter.
struct Duplicate {
    int32_t partition = 0;
    int64_t offset = 0;
    size_t key = 0;  // index in Batch::keys of its call
};

// What the ledger's stored keys make of a batch.
struct Resolution {
    std::vector<KeyOutcome> outcomes;   // per Batch::keys
    std::vector<DeadLetter> conflicts;  // KeyRows and repeats whose payload differs from the billed one
    std::vector<Duplicate> duplicates;  // KeyRows and repeats equal to the billed payload
};

// `stored[i]` is the payload hash stored for keys[i], or nullopt for a call
// not billed yet. A new call is billed with its KeyRow's payload; every other
// message of the call is a duplicate when its payload hash equals the billed
// one and a conflict otherwise. Pure: the ledger calls it after its lookup.
Resolution Resolve(const Batch& batch, const std::vector<std::optional<Fingerprint>>& stored);

// Given which keys are new, the rollup records of the new calls.
using RecordsOfNew = std::function<std::vector<RollupRecord>(const std::vector<KeyOutcome>&)>;

struct StoreResult {
    int64_t accepted = 0;         // new calls, billed
    int64_t duplicates = 0;       // seen before (or earlier in the batch) with the same payload
    int64_t conflicts = 0;        // dead letters: the same call with another payload
    int64_t dead_letters = 0;     // dead letter rows written (the batch's and the conflicts)
    int64_t rollup_deltas = 0;    // rollup records appended
    bool already_stored = false;  // a retried batch whose commit had in fact succeeded
};

// How a failure of the sink is to be handled.
enum class SinkErrorKind : uint8_t {
    kRetry,    // connection lost, server restarting, serialization failure, deadlock: reconnect, try again
    kInDoubt,  // the commit's outcome is unknown: reconnect and store again (a stored batch is recognised)
    kFenced,   // another consumer advanced these partitions: re-read them from their stored offsets
    kFatal,    // schema missing or of another version, permission, data refused: stop with this message
};

struct SinkError : std::runtime_error {
    SinkError(SinkErrorKind k, const std::string& what, std::vector<int32_t> parts = {})
        : std::runtime_error(what), kind(k), partitions(std::move(parts)) {}
    SinkErrorKind kind;
    std::vector<int32_t> partitions;  // for kFenced
};

// Stores batches. Every method throws SinkError only (classified), never a
// database library's exception. One sink is one connection: not shared
// between threads.
class BatchSink {
   public:
    virtual ~BatchSink() = default;
    // Writes one batch atomically: fences the offsets, dedups, appends the
    // rollup records of the new calls, archives them, writes dead letters
    // and advances the offsets. All of it or none of it.
    virtual StoreResult Store(const Batch& batch, const RecordsOfNew& records_of_new) = 0;
    // Stored next offsets of these partitions (absent: none stored).
    virtual std::map<int32_t, int64_t> StoredOffsets(const std::vector<int32_t>& partitions) = 0;
    struct Fold {
        int64_t deltas = 0;   // records taken from the append-only deltas
        int64_t rollups = 0;  // rollup rows written
    };
    // Sums appended records into the rollups (keeps the deltas short).
    virtual Fold FoldDeltas() = 0;
    // Forgets dedup keys older than `dedup_days`, archives older than
    // `archive_days`. Returns the number of keys forgotten.
    virtual int64_t Expire(int dedup_days, int archive_days) = 0;
    // Drops the connection; the next call connects again.
    virtual void Reconnect() = 0;
};

// Everything rating needs from the ledger.
struct CatalogSnapshot {
    Catalog catalog;
    std::vector<Subscription> subscriptions;  // every subscription of every customer
    std::unordered_set<std::string> customers;
};

class CatalogSource {
   public:
    virtual ~CatalogSource() = default;
    // Throws SinkError (classified) when the catalog cannot be read.
    virtual CatalogSnapshot Load() = 0;
};

}  // namespace tally::ingest
