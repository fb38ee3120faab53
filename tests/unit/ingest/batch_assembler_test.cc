// The consumer's pure pipeline (ingest/batch_assembler.h) with an in-memory
// ledger of billed calls standing in for PostgreSQL: no Kafka, no database.
#include "ingest/batch_assembler.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <set>
#include <tuple>
#include <unordered_map>

#include "ingest/event_key.h"
#include "ingest/file_rater.h"
#include "unit/pricing/test_plans.h"

namespace tally::ingest {
namespace {

const char* const kPlan = R"(
plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: UTC
    rates_per: 1000
    models:
      m:
        bands:
          - up_to: 1000
            rates: {input: "1", output: "2"}
)";

std::string Event(const std::string& id, const std::string& customer = "c1", int64_t input = 10,
                  const std::string& model = "m", const std::string& time = "2025-11-03T12:00:00Z") {
    return R"({"specversion":"1.0","id":")" + id + R"(","source":"s","type":"llm.call","time":")" + time +
           R"(","subject":")" + customer + R"(","data":{"model":")" + model +
           R"(","input_tokens":)" + std::to_string(input) + R"(,"output_tokens":1}})";
}

// What a dead letter is, whatever batch it came in.
using Letter = std::tuple<int64_t, std::string, std::string>;  // offset, code, detail

struct Outcome {
    std::set<Letter> dead;
    std::set<int64_t> billed;      // offsets of billed messages
    std::set<int64_t> duplicates;  // offsets of duplicates
    bool operator==(const Outcome&) const = default;
};

class AssemblerTest : public ::testing::Test {
   protected:
    AssemblerTest() {
        snapshot_.catalog = testing::MustCatalog({kPlan});
        snapshot_.subscriptions = testing::MustSubscriptions(
            "subscriptions:\n  - {customer: c1, plan: p}\n  - {customer: c2, plan: p}\n", &snapshot_.catalog);
        snapshot_.customers = {"c1", "c2", "lonely"};
    }

    // Assembles `payloads` (offsets 0..n-1 of partition 0) in batches cut
    // at `cuts`, each resolved against and then added to one in-memory ledger.
    Outcome Run(const std::vector<std::string>& payloads, const std::vector<size_t>& cuts,
                std::optional<Instant> now = std::nullopt) {
        AssemblerOptions options;
        options.now = now;
        BatchAssembler assembler(snapshot_, "p", options);
        std::unordered_map<Fingerprint, Fingerprint, FingerprintHash> ledger;
        Outcome out;
        size_t begin = 0;
        std::vector<size_t> ends = cuts;
        ends.push_back(payloads.size());
        for (size_t end : ends) {
            std::vector<Message> messages;
            for (size_t i = begin; i < end; ++i) messages.push_back({0, static_cast<int64_t>(i), payloads[i]});
            begin = end;
            AssembledBatch ab = assembler.Assemble(messages);
            std::vector<std::optional<Fingerprint>> stored;
            for (const KeyRow& k : ab.batch.keys) {
                auto it = ledger.find(k.key);
                stored.push_back(it == ledger.end() ? std::nullopt : std::optional(it->second));
            }
            Resolution r = Resolve(ab.batch, stored);
            for (size_t i = 0; i < ab.batch.keys.size(); ++i) {
                if (r.outcomes[i] != KeyOutcome::kNew) continue;
                ledger.emplace(ab.batch.keys[i].key, ab.batch.keys[i].payload_hash);
                out.billed.insert(ab.batch.keys[i].offset);
            }
            for (const auto* list : {&ab.batch.dead_letters, &r.conflicts}) {
                for (const DeadLetter& d : *list) {
                    out.dead.insert({d.offset, std::string(RejectReasonCode(d.reason)), d.detail});
                }
            }
            for (const Duplicate& d : r.duplicates) out.duplicates.insert(d.offset);
        }
        return out;
    }

    CatalogSnapshot snapshot_;
};

TEST_F(AssemblerTest, AConflictAndAnExactCopyGiveTheSameDeadLettersInAnyBatching) {
    const std::string original = Event("o", "c1", 10);
    const std::string conflict = Event("o", "c1", 99);  // same (source, id), another payload
    const std::vector<std::string> payloads = {original, conflict, original};
    const Outcome one_batch_after = Run(payloads, {1});  // O billed, then C and the copy in one batch
    ASSERT_EQ(one_batch_after.billed, std::set<int64_t>({0}));
    ASSERT_EQ(one_batch_after.dead.size(), 1u);
    EXPECT_EQ(std::get<0>(*one_batch_after.dead.begin()), 1);
    EXPECT_EQ(std::get<1>(*one_batch_after.dead.begin()), "conflict");
    EXPECT_EQ(one_batch_after.duplicates, std::set<int64_t>({2}));
    EXPECT_EQ(Run(payloads, {}), one_batch_after);      // all in one batch
    EXPECT_EQ(Run(payloads, {1, 2}), one_batch_after);  // one message a batch
    EXPECT_EQ(Run(payloads, {2}), one_batch_after);
}

TEST_F(AssemblerTest, DeadLettersDoNotDependOnBatchingProperty) {
    const char* replay = std::getenv("TALLY_SEED");
    const uint64_t seed = replay != nullptr ? std::strtoull(replay, nullptr, 10) : std::random_device{}();
    SCOPED_TRACE("seed=" + std::to_string(seed) + " (replay with TALLY_SEED=" + std::to_string(seed) + ")");
    std::mt19937_64 rng(seed);
    for (int round = 0; round < 50; ++round) {
        std::vector<std::string> payloads;
        for (int i = 0; i < 40; ++i) {
            const std::string id = "e" + std::to_string(rng() % 12);  // many repeats of few ids
            switch (rng() % 6) {
                case 0: payloads.push_back(Event(id, "c1", static_cast<int64_t>(rng() % 3))); break;
                case 1: payloads.push_back(Event(id, "nobody")); break;
                case 2: payloads.push_back(Event(id, "c2", 5000)); break;  // above the top band
                case 3: payloads.push_back(Event(id, "c1", 1, "unknown-model")); break;
                case 4: payloads.push_back("{not json"); break;
                default: payloads.push_back(Event(id, "c2", static_cast<int64_t>(rng() % 2))); break;
            }
        }
        std::vector<size_t> one_each;
        for (size_t i = 1; i < payloads.size(); ++i) one_each.push_back(i);
        const Outcome reference = Run(payloads, one_each);
        std::vector<size_t> cuts;
        for (size_t i = 1; i < payloads.size(); ++i) {
            if (rng() % 4 == 0) cuts.push_back(i);
        }
        ASSERT_EQ(Run(payloads, cuts), reference) << "round " << round;
        ASSERT_EQ(Run(payloads, {}), reference) << "round " << round;
    }
}

TEST_F(AssemblerTest, EachRejectionKeepsItsOwnReason) {
    std::string nul = Event("n");
    nul[10] = '\0';
    const Outcome out = Run({Event("a", "nobody"), Event("b", "lonely"), Event("c", "c1", 5000),
                             Event("d", "c1", 1, "unknown-model"), "{}", nul,
                             Event("e", "c1", 1, "m", "2020-01-01T00:00:00Z")},
                            {});
    std::vector<std::string> codes;
    for (const Letter& l : out.dead) codes.push_back(std::get<1>(l));
    EXPECT_EQ(codes, (std::vector<std::string>{"unknown_customer", "no_subscription", "above_top_band",
                                                "unknown_model", "invalid", "invalid", "no_plan_version"}));
}

TEST_F(AssemblerTest, CallsFurtherAheadThanTheSkewAreDeadLetters) {
    const Instant now = testing::At("2025-11-03T12:00:00Z");
    const Outcome out = Run({Event("soon", "c1", 1, "m", "2025-11-04T11:59:59Z"),
                             Event("late", "c1", 1, "m", "2025-11-04T12:00:01Z"),
                             Event("far", "c1", 1, "m", "2150-01-01T00:00:00Z")},
                            {}, now);
    EXPECT_EQ(out.billed, std::set<int64_t>({0}));
    ASSERT_EQ(out.dead.size(), 2u);
    for (const Letter& l : out.dead) EXPECT_EQ(std::get<1>(l), "future_time") << std::get<2>(l);
}

TEST_F(AssemblerTest, ZeroTokenCallsAreBilledAndGiveACallsRecord) {
    AssemblerOptions options;
    BatchAssembler assembler(snapshot_, "p", options);
    const std::string zero = R"({"specversion":"1.0","id":"z","source":"s","type":"llm.call",)"
                             R"("time":"2025-11-03T12:00:00Z","subject":"c1",)"
                             R"("data":{"model":"m","input_tokens":0,"output_tokens":0}})";
    std::vector<Message> messages = {{0, 0, zero}};
    AssembledBatch ab = assembler.Assemble(messages);
    ASSERT_EQ(ab.batch.keys.size(), 1u);
    std::vector<RollupRecord> records = NewCallRecords(snapshot_.catalog, ab, {KeyOutcome::kNew});
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].unit, "");
    EXPECT_EQ(records[0].calls, 1);
    EXPECT_TRUE(NewCallRecords(snapshot_.catalog, ab, {KeyOutcome::kDuplicate}).empty());
}

TEST_F(AssemblerTest, ARoutedCallsRecordsNameItsServedModel) {
    AssemblerOptions options;
    BatchAssembler assembler(snapshot_, "p", options);
    const std::string routed = R"({"specversion":"1.0","id":"r","source":"s","type":"llm.call",)"
                               R"("time":"2025-11-03T12:00:00Z","subject":"c1",)"
                               R"("data":{"model":"m","served_model":"other","input_tokens":5,"output_tokens":0}})";
    const std::string plain = Event("plain", "c1", 7);
    std::vector<Message> messages = {{0, 0, routed}, {0, 1, plain}};
    const AssembledBatch ab = assembler.Assemble(messages);
    ASSERT_EQ(ab.batch.keys.size(), 2u);
    EXPECT_EQ(ab.served_models, (std::vector<std::string>{"other", ""}));
    const std::vector<RollupRecord> records =
        NewCallRecords(snapshot_.catalog, ab, {KeyOutcome::kNew, KeyOutcome::kNew});
    std::set<std::string> seen;
    for (const RollupRecord& r : records) {
        EXPECT_EQ(r.model, "m");
        seen.insert(r.served_model + ":" + r.unit + ":" + std::to_string(r.quantity + r.calls));
    }
    EXPECT_EQ(seen, (std::set<std::string>{":input:7", ":output:1", "::1", "other:input:5", "other::1"}));
}

TEST_F(AssemblerTest, RepeatsAreGroupedWithinTheTransactionThatStoresThem) {
    // Stored by 2 connections: partitions 0 and 2 in one transaction, 1 in
    // the other. A repeat on partition 1 of a call first seen on partition 0
    // must not be decided (and its offset passed) in partition 0's transaction.
    AssemblerOptions options;
    options.shares = 2;
    BatchAssembler assembler(snapshot_, "p", options);
    const std::string a = Event("same", "c1", 10), b = Event("same", "c1", 11);
    const std::vector<Message> messages = {{0, 0, a}, {1, 0, b}, {2, 0, b}};
    const AssembledBatch ab = assembler.Assemble(messages);
    ASSERT_EQ(ab.batch.keys.size(), 2u);
    EXPECT_EQ(ab.batch.keys[0].partition, 0);
    ASSERT_EQ(ab.batch.keys[0].repeats.size(), 1u);
    EXPECT_EQ(ab.batch.keys[0].repeats[0].partition, 2);
    EXPECT_EQ(ab.batch.keys[1].partition, 1);
    EXPECT_TRUE(ab.batch.keys[1].repeats.empty());
}

TEST_F(AssemblerTest, FileRaterBillsACallOnceAndNamesTheFirstLine) {
    AssemblerOptions options;
    options.known_customers_only = false;
    FileRater rater(snapshot_, "p", options);
    rater.Add(0, 1, Event("o", "c1", 10));
    rater.Add(0, 2, Event("o", "c1", 99));  // conflict
    rater.Add(1, 5, Event("o", "c1", 10));  // duplicate, in another file
    rater.Add(1, 6, Event("x", "someone", 1));  // no subscription: the default plan, allowed here
    const FileRater::Result r = rater.Finish();
    EXPECT_EQ(r.rated, 2);
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].at.line, 2);
    EXPECT_EQ(r.rejected[0].code, RejectReason::kConflict);
    ASSERT_EQ(r.duplicates.size(), 1u);
    EXPECT_EQ(r.duplicates[0].at.file, 1);
    EXPECT_EQ(r.duplicates[0].at.line, 5);
    EXPECT_EQ(r.duplicates[0].first.file, 0);
    EXPECT_EQ(r.duplicates[0].first.line, 1);
    int64_t calls = 0;
    for (const Rollup& roll : r.rollups) calls += roll.calls;
    EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace tally::ingest
