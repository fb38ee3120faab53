#include "ingest/sink.h"

#include "base/assert.h"

namespace tally::ingest {

namespace {

// The same words whether the billed payload came in this batch or an
// earlier one: dead letters do not depend on batching.
DeadLetter ConflictOf(const KeyRow& k, int32_t partition, int64_t offset, std::string_view payload) {
    return {partition, offset, RejectReason::kConflict,
            "(source, id) = (" + k.source + ", " + k.id +
                ") was billed with a different payload; the same call must not change",
            payload};
}

}  // namespace

Resolution Resolve(const Batch& batch, const std::vector<std::optional<Fingerprint>>& stored) {
    TALLY_ASSERT(stored.size() == batch.keys.size());
    Resolution r;
    r.outcomes.resize(batch.keys.size(), KeyOutcome::kNew);
    for (size_t i = 0; i < batch.keys.size(); ++i) {
        const KeyRow& k = batch.keys[i];
        const bool known = stored[i].has_value();
        const Fingerprint& billed = known ? *stored[i] : k.payload_hash;
        if (known) {
            if (*stored[i] == k.payload_hash) {
                r.outcomes[i] = KeyOutcome::kDuplicate;
                r.duplicates.push_back({k.partition, k.offset, i});
            } else {
                r.outcomes[i] = KeyOutcome::kConflict;
                r.conflicts.push_back(ConflictOf(k, k.partition, k.offset, k.payload));
            }
        }
        for (const Repeat& rep : k.repeats) {
            if (rep.payload_hash == billed) {
                r.duplicates.push_back({rep.partition, rep.offset, i});
            } else {
                r.conflicts.push_back(ConflictOf(k, rep.partition, rep.offset, rep.payload));
            }
        }
    }
    TALLY_ASSERT(r.outcomes.size() == batch.keys.size());
    return r;
}

}  // namespace tally::ingest
