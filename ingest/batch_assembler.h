// The pure half of `tally consume` (and of `tally rate`'s dedup): messages
// in, a batch to store out. Per message, in order:
//   decode (every validation rule of the event format) -> the customer is
//   known and subscribed -> not further ahead than the allowed clock skew ->
//   classify (rate cells and quantities) -> a repeat of a call earlier in the
//   batch? (then it waits for Resolve: duplicate or conflict against the
//   billed payload) -> else a new KeyRow.
// Whatever a message is, it ends as a KeyRow, a repeat, a dead letter with
// its reason, or (for `tally rate` only) a count of messages outside the
// period or of other customers. Nothing here does I/O or throws on input.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ingest/event_decoder.h"
#include "ingest/sink.h"
#include "pricing/rater.h"

namespace tally::ingest {

// One message to assemble: Kafka coordinates (or, for files, file index
// and line number) and its bytes, which must outlive the batch.
struct Message {
    int32_t partition = 0;
    int64_t offset = 0;
    std::string_view payload;
};

struct AssemblerOptions {
    // The consumer bills the ledger's customers only, each on its
    // subscriptions. False for `tally rate`: a customer of no subscription
    // is on the default plan.
    bool known_customers_only = true;
    // With a value: calls whose time is later than now + future_skew are
    // dead letters (future_time). The consumer sets it; `tally rate` has no
    // consumption time.
    std::optional<Instant> now;
    std::chrono::milliseconds future_skew = std::chrono::hours(24);
    std::string only_customer;  // not empty: other customers are counted and left out
    PeriodRule period;          // calendar months unless bounded (`tally rate --from --to`)
    // The batch is stored in this many transactions, partition p in share
    // p mod shares (the consumer's --store-connections). Repeats of a call
    // are grouped within a share only: a repeat decided in another share's
    // transaction could be committed past while its own share is not. The
    // same call in two shares is two KeyRows; the ledger's unique key lets
    // one transaction bill it and makes the other find it billed.
    int shares = 1;
    // FileRater's rollups keep every project as the events named it, not
    // capped by the rater's rule (pricing/project_cap.h): `tally rerate`
    // caps them with the ledger's admitted projects instead.
    bool projects_as_named = false;
};

struct AssembledBatch {
    Batch batch;  // keys, repeats and dead letters; offsets are the caller's
    std::vector<std::vector<RatedPart>> parts;  // per batch.keys: the call's rate cells
    std::vector<std::string> served_models;     // per batch.keys: the served model, "" when not routed
    std::vector<std::string> projects;          // per batch.keys: the event's project as named, "" for none
    int64_t outside_period = 0;                 // bounded periods only
    int64_t other_customers = 0;                // only_customer only
};

class BatchAssembler {
   public:
    // `snapshot` must outlive the assembler. `default_plan` names a plan of
    // the catalog (for customers of no subscription when they are allowed).
    BatchAssembler(const CatalogSnapshot& snapshot, const std::string& default_plan, AssemblerOptions options);

    AssembledBatch Assemble(std::span<const Message> messages);

    // The rater that classified the batches: `tally rate` adds the parts of
    // new calls to it (AddParts) and prices its rollups.
    Rater& rater() { return rater_; }
    void set_now(Instant now) { options_.now = now; }

   private:
    const CatalogSnapshot& snapshot_;
    AssemblerOptions options_;
    Rater rater_;
    EventDecoder decoder_;
    Event event_;
    std::string reason_;
    std::unordered_map<std::string, bool> subscribed_;  // customer -> has a subscription
};

// The rollup records of the calls that Resolve found new (`catalog`: the one
// the batch was assembled with).
std::vector<RollupRecord> NewCallRecords(const Catalog& catalog, const AssembledBatch& assembled,
                                       const std::vector<KeyOutcome>& outcomes);

}  // namespace tally::ingest
