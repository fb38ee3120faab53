#include "ingest/batch_assembler.h"

#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "base/identifier.h"
#include "ingest/event_key.h"

namespace tally::ingest {

BatchAssembler::BatchAssembler(const CatalogSnapshot& snapshot, const std::string& default_plan,
                               AssemblerOptions options)
    : snapshot_(snapshot),
      options_(std::move(options)),
      rater_(snapshot.catalog, snapshot.subscriptions, default_plan, options_.period) {
    for (const Subscription& s : snapshot_.subscriptions) subscribed_[s.customer] = true;
}

AssembledBatch BatchAssembler::Assemble(std::span<const Message> messages) {
    AssembledBatch out;
    Batch& batch = out.batch;
    // Per share (AssemblerOptions::shares): dedup key -> index in batch.keys.
    const int shares = std::max(options_.shares, 1);
    std::vector<std::unordered_map<Fingerprint, size_t, FingerprintHash>> key_index(static_cast<size_t>(shares));
    std::vector<RatedPart> parts;
    for (const Message& m : messages) {
        auto dead = [&](RejectReason reason, const std::string& detail) {
            batch.dead_letters.push_back({m.partition, m.offset, reason, SafeText(detail), m.payload});
        };
        // JSON allows neither byte unescaped; the archive separates messages
        // with 0x1E and PostgreSQL text cannot hold NUL.
        const bool has_nul = std::memchr(m.payload.data(), 0, m.payload.size()) != nullptr;
        if (has_nul || std::memchr(m.payload.data(), 0x1e, m.payload.size()) != nullptr) {
            dead(RejectReason::kInvalid, std::string("the message contains the control character ") +
                                             (has_nul ? "NUL" : "0x1E") + ", which JSON does not allow");
            continue;
        }
        if (!decoder_.Decode(m.payload, &event_, &reason_)) {
            dead(RejectReason::kInvalid, reason_);
            continue;
        }
        if (!options_.only_customer.empty() && event_.subject != options_.only_customer) {
            ++out.other_customers;
            continue;
        }
        if (options_.known_customers_only) {
            if (snapshot_.customers.count(event_.subject) == 0) {
                dead(RejectReason::kUnknownCustomer,
                     "unknown customer '" + event_.subject + "': add it with tally customer add");
                continue;
            }
            if (subscribed_.count(event_.subject) == 0) {
                dead(RejectReason::kNoSubscription, "customer '" + event_.subject + "' is on no plan: tally subscribe");
                continue;
            }
        }
        if (options_.now && event_.time > *options_.now + options_.future_skew) {
            dead(RejectReason::kFutureTime, "time " + FormatRfc3339(event_.time) + " is more than " +
                                                std::to_string(options_.future_skew.count() / 1000) +
                                                " s after the time it was consumed (" + FormatRfc3339(*options_.now) +
                                                ")");
            continue;
        }
        // Classified before the dedup check, as the ledger does (it looks
        // the keys of classified calls up): a message that cannot be rated is
        // that dead letter whether or not its call came earlier.
        const RateOutcome outcome = rater_.Classify(event_, &parts);
        if (outcome.status == RateStatus::kOutsidePeriod) {
            ++out.outside_period;
            continue;
        }
        if (outcome.status != RateStatus::kRated) {
            dead(outcome.code, outcome.reason);
            continue;
        }
        const Fingerprint key = DedupKey(event_.source, event_.id);
        const Fingerprint hash = PayloadHash(m.payload);
        auto& in_share = key_index[static_cast<size_t>(m.partition) % key_index.size()];
        if (auto seen = in_share.find(key); seen != in_share.end()) {
            batch.keys[seen->second].repeats.push_back({hash, m.partition, m.offset, m.payload});
            continue;
        }
        in_share.emplace(key, batch.keys.size());
        batch.keys.push_back(
            {key, hash, event_.source, event_.id, event_.subject, event_.time, m.partition, m.offset, m.payload, {}});
        out.parts.push_back(parts);
        out.served_models.push_back(event_.served_model);
        out.projects.push_back(event_.project);
    }
    TALLY_ASSERT(out.parts.size() == batch.keys.size());
    TALLY_ASSERT(out.served_models.size() == batch.keys.size());
    TALLY_ASSERT(out.projects.size() == batch.keys.size());
    return out;
}

std::vector<RollupRecord> NewCallRecords(const Catalog& catalog, const AssembledBatch& assembled,
                                       const std::vector<KeyOutcome>& outcomes) {
    TALLY_ASSERT(outcomes.size() == assembled.batch.keys.size());
    TALLY_ASSERT(assembled.parts.size() == outcomes.size());
    TALLY_ASSERT(assembled.served_models.size() == outcomes.size());
    TALLY_ASSERT(assembled.projects.size() == outcomes.size());
    std::vector<Rollup> rollups;
    for (size_t i = 0; i < outcomes.size(); ++i) {
        if (outcomes[i] != KeyOutcome::kNew) continue;
        const std::vector<RatedPart>& parts = assembled.parts[i];
        for (size_t p = 0; p < parts.size(); ++p) {
            Rollup r;
            r.customer = assembled.batch.keys[i].customer;
            r.cell = parts[p].key.cell;
            r.cell.customer = 0;
            r.cell.served = 0;
            r.served_model = assembled.served_models[i];
            r.project = assembled.projects[i];  // as named: the ledger caps it (BatchWriter)
            r.period = parts[p].key.period;
            r.hour = parts[p].key.hour;
            r.quantities = parts[p].quantities;
            r.calls = p + 1 == parts.size() ? 1 : 0;  // a call counts once: in the cell it reaches
            rollups.push_back(r);
        }
    }
    CanonicalizeRollups(&rollups);
    return ToRecords(catalog, rollups);
}

}  // namespace tally::ingest
