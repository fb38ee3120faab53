// The batch transaction of `tally consume` against a real PostgreSQL: dedup
// (duplicate vs conflict, repeats within a batch decided against the billed
// payload), the offset fence, a retried commit, rollups adding up (calls
// rows, saturating sums), the archive giving back every accepted message
// byte for byte, and dead letters keeping bytes that are not text.
#include "ledger/batch_writer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <future>
#include <limits>
#include <thread>
#include <pqxx/pqxx>

#include "ledger/migrations.h"
#include "ledger/rollup_rebuild.h"
#include "ledger/store.h"
#include "pricing/invoice.h"
#include "pricing/plan_yaml.h"
#include "pricing/project_cap.h"
#include "pricing/rater.h"
#include "pricing/rollup_records.h"
#include "tests/ledger/ledger_db.h"

namespace tally::ledger {
namespace {

using ingest::Batch;
using ingest::DeadLetter;
using ingest::KeyOutcome;
using ingest::KeyRow;
using ingest::RecordsOfNew;
using ingest::Repeat;
using ingest::SinkError;
using ingest::SinkErrorKind;
using ingest::StoreResult;

Fingerprint Print(uint8_t a, uint8_t b = 0) {
    Fingerprint f{};
    f[0] = a;
    f[15] = b;
    return f;
}

// Messages live as long as the test: KeyRow holds views of them.
struct Messages {
    std::vector<std::unique_ptr<std::string>> all;
    std::string_view Add(std::string s) {
        all.push_back(std::make_unique<std::string>(std::move(s)));
        return *all.back();
    }
};

KeyRow Key(Messages& m, uint8_t id, uint8_t payload, const std::string& customer, int32_t partition, int64_t offset,
           const std::string& body) {
    KeyRow k;
    k.key = Print(id);
    k.payload_hash = Print(payload, 1);
    k.source = "gw";
    k.id = "id-" + std::to_string(id);
    k.customer = customer;
    k.event_time = *ParseRfc3339("2025-11-03T10:00:00Z") + std::chrono::minutes(offset);
    k.partition = partition;
    k.offset = offset;
    k.payload = m.Add(body);
    return k;
}

RollupRecord Cell(const std::string& customer, const std::string& unit, int64_t quantity, int64_t calls) {
    RollupRecord r;
    r.customer = customer;
    r.period = 24310;
    r.hour = 7;
    r.plan = "p";
    r.version = "v1";
    r.model = "m";
    r.unit = unit;
    r.quantity = quantity;
    r.calls = calls;
    return r;
}

// 100 input tokens per new event in hour 7: per customer a calls record and
// an input record (records are unique by key within a batch, as ToRecords
// makes them).
RecordsOfNew OneCallPerNew(const Batch& in) {
    return [&in](const std::vector<KeyOutcome>& outcomes) {
        std::map<std::string, std::pair<RollupRecord, RollupRecord>> cells;
        for (size_t i = 0; i < outcomes.size(); ++i) {
            if (outcomes[i] != KeyOutcome::kNew) continue;
            const std::string& customer = in.keys[i].customer;
            auto [it, fresh] = cells.try_emplace(customer, Cell(customer, "", 0, 0), Cell(customer, "input", 0, 0));
            it->second.first.calls += 1;
            it->second.second.quantity += 100;
        }
        std::vector<RollupRecord> out;
        for (auto& [customer, records] : cells) {
            out.push_back(records.first);
            out.push_back(records.second);
        }
        return out;
    };
}

// The records of one batch, whatever the outcomes.
RecordsOfNew Fixed(std::vector<RollupRecord> records) {
    return [records](const std::vector<KeyOutcome>&) { return records; };
}

class BatchWriterTest : public LedgerDb {
   protected:
    void SetUp() override {
        LedgerDb::SetUp();
        Migrate(url_);
        {  // what the records name (rollups has foreign keys to them)
            pqxx::connection c(url_);
            pqxx::work tx(c);
            tx.exec0(
                "INSERT INTO customers (customer_id) VALUES ('c1'), ('c2');"
                "INSERT INTO plan_versions (plan, version, effective_from, currency, body, body_sha256) "
                "VALUES ('p', 'v1', '2025-01-01Z', 'CNY', 'plan: p', 'x')");
            tx.commit();
        }
        writer_ = std::make_unique<BatchWriter>(url_, "g", "usage");
    }
    int64_t Count(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        return tx.exec1(sql)[0].as<int64_t>();
    }
    std::string Text(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        return tx.exec1(sql)[0].as<std::string>();
    }
    std::unique_ptr<BatchWriter> writer_;
    Messages m_;
};

TEST_F(BatchWriterTest, NewEventsAreBilledOnceRetriesAreDuplicatesChangedOnesAreConflicts) {
    Batch first;
    first.keys = {Key(m_, 1, 1, "c1", 0, 0, R"({"id":"id-1"})"), Key(m_, 2, 2, "c1", 0, 1, R"({"id":"id-2"})"),
                  Key(m_, 3, 3, "c2", 1, 0, R"({"id":"id-3"})")};
    first.offsets = {{0, -1, 2}, {1, -1, 1}};
    StoreResult r1 = writer_->Store(first, OneCallPerNew(first));
    EXPECT_EQ(r1.accepted, 3);
    EXPECT_EQ(r1.duplicates, 0);
    EXPECT_EQ(r1.conflicts, 0);

    // id 1 again with the same bytes (a producer retry), id 3 with other
    // bytes (a conflict), id 4 new.
    Batch second;
    second.keys = {Key(m_, 1, 1, "c1", 0, 2, R"({"id":"id-1"})"), Key(m_, 3, 9, "c2", 1, 1, R"({"id":"id-3","x":1})"),
                   Key(m_, 4, 4, "c1", 0, 3, R"({"id":"id-4"})")};
    second.offsets = {{0, 2, 4}, {1, 1, 2}};
    StoreResult r2 = writer_->Store(second, OneCallPerNew(second));
    EXPECT_EQ(r2.accepted, 1);
    EXPECT_EQ(r2.duplicates, 1);
    EXPECT_EQ(r2.conflicts, 1);
    EXPECT_EQ(r2.dead_letters, 1);

    EXPECT_EQ(Count("SELECT count(*) FROM event_keys"), 4);
    EXPECT_EQ(Count("SELECT sum(quantity) FROM usage_rollups WHERE customer_id = 'c1'"), 300);
    EXPECT_EQ(Count("SELECT sum(calls) FROM usage_rollups WHERE customer_id = 'c2'"), 1);
    EXPECT_EQ(Count("SELECT count(*) FROM dead_letters WHERE reason_code = 'conflict' AND kafka_partition = 1 "
                    "AND kafka_offset = 1 AND reason LIKE '%(gw, id-3)%' AND raw = '{\"id\":\"id-3\",\"x\":1}'::bytea"),
              1);
    EXPECT_EQ(Count("SELECT next_offset FROM consumer_offsets WHERE kafka_partition = 0"), 4);
    EXPECT_EQ(Count("SELECT next_offset FROM consumer_offsets WHERE kafka_partition = 1"), 2);
}

TEST_F(BatchWriterTest, FoldingMovesTheDeltasIntoRollupsAndUsageStaysTheSame) {
    int64_t offset = 0;
    for (uint8_t id = 1; id <= 6; ++id) {  // six batches: c1 gets 4 calls, c2 gets 2
        Batch in;
        in.keys = {Key(m_, id, id, id % 3 == 0 ? "c2" : "c1", 0, offset, "{}")};
        in.offsets = {{0, offset == 0 ? -1 : offset, offset + 1}};
        ++offset;
        writer_->Store(in, OneCallPerNew(in));
        if (id == 3) {
            EXPECT_EQ(writer_->FoldDeltas().rollups, 4);  // c1 and c2, one hour each: calls and input
        }
    }
    const std::string usage =
        "SELECT string_agg(customer_id || ':' || unit || ':' || quantity || ':' || calls, ' ' "
        "ORDER BY customer_id, unit) FROM usage_rollups";
    EXPECT_EQ(Text(usage), "c1::0:4 c1:input:400:0 c2::0:2 c2:input:200:0");
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_deltas"), 6);
    const BatchWriter::Fold second = writer_->FoldDeltas();
    EXPECT_EQ(second.deltas, 6);   // batches 4, 5, 6
    EXPECT_EQ(second.rollups, 4);  // added to c1's and c2's rows
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_deltas"), 0);
    EXPECT_EQ(Text(usage), "c1::0:4 c1:input:400:0 c2::0:2 c2:input:200:0");
    EXPECT_EQ(Text("SELECT string_agg(customer_id || ':' || quantity, ' ' ORDER BY customer_id) FROM rollups "
                   "WHERE unit = 'input'"),
              "c1:400 c2:200");
    EXPECT_EQ(writer_->FoldDeltas().deltas, 0);  // nothing left
}

// The fold's upsert and its delete see one snapshot: a batch stored while
// the fold runs (here: while its upsert waits for a row of rollups another
// transaction holds) is neither added nor deleted, and stays for the next
// fold. Two statements with a snapshot each would delete it unadded.
TEST_F(BatchWriterTest, ABatchStoredDuringAFoldStaysForTheNextFold) {
    auto store = [&](uint8_t id, int64_t offset) {
        Batch in;
        in.keys = {Key(m_, id, id, "c1", 0, offset, "{}")};
        in.offsets = {{0, offset == 0 ? -1 : offset, offset + 1}};
        writer_->Store(in, OneCallPerNew(in));
    };
    store(1, 0);
    EXPECT_EQ(writer_->FoldDeltas().rollups, 2);  // c1's calls and input rows
    store(2, 1);
    BatchWriter folder(url_, "g", "usage");
    std::future<BatchWriter::Fold> fold;  // destroyed after `hold` ends: never waits for it
    pqxx::connection holder(url_);
    pqxx::work hold(holder);
    EXPECT_EQ(hold.exec("SELECT 1 FROM rollups WHERE unit = 'input' FOR UPDATE").size(), 1u);
    fold = std::async(std::launch::async, [&] { return folder.FoldDeltas(); });
    const std::string waiting =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
        "AND query LIKE 'INSERT INTO rollups%'";
    for (int i = 0; i < 1000 && Count(waiting) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (Count(waiting) != 1) {
        hold.abort();
        FAIL() << "the fold's upsert does not wait for the held row";
    }
    store(3, 2);  // committed while the fold runs
    hold.commit();
    const BatchWriter::Fold folded = fold.get();
    EXPECT_EQ(folded.deltas, 2);  // batch 2's rows only
    EXPECT_EQ(folded.rollups, 2);
    EXPECT_EQ(Text("SELECT string_agg(unit || ':' || quantity || ':' || calls, ' ' ORDER BY unit) FROM rollups"),
              ":0:2 input:200:0");
    EXPECT_EQ(Text("SELECT string_agg(unit || ':' || quantity || ':' || calls, ' ' ORDER BY unit) FROM "
                   "rollup_deltas"),
              ":0:1 input:100:0");
    EXPECT_EQ(Text("SELECT string_agg(unit || ':' || quantity || ':' || calls, ' ' ORDER BY unit) FROM "
                   "usage_rollups"),
              ":0:3 input:300:0");
    EXPECT_EQ(writer_->FoldDeltas().deltas, 2);
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_deltas"), 0);
}

// While another writer of rollups holds its lock (a rebuild, another
// consumer's fold), a fold does not wait and does not fail: it folds
// nothing and leaves the deltas for its next turn. Autovacuum's lock does
// not hold it back.
TEST_F(BatchWriterTest, AFoldStepsAsideWhileAnotherWriterOfRollupsHoldsIt) {
    Batch in;
    in.keys = {Key(m_, 1, 1, "c1", 0, 0, "{}")};
    in.offsets = {{0, -1, 1}};
    writer_->Store(in, OneCallPerNew(in));
    {
        std::future<BatchWriter::Fold> fold;  // destroyed after `hold` ends: never waits for it
        pqxx::connection holder(url_);
        pqxx::work hold(holder);
        hold.exec0("LOCK TABLE rollups IN SHARE ROW EXCLUSIVE MODE");  // as RebuildRollups
        fold = std::async(std::launch::async, [&] { return writer_->FoldDeltas(); });
        if (fold.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
            hold.abort();
            FAIL() << "the fold waits for the lock";
        }
        const BatchWriter::Fold none = fold.get();
        EXPECT_EQ(none.deltas, 0);
        EXPECT_EQ(none.rollups, 0);
        EXPECT_EQ(Count("SELECT count(*) FROM rollup_deltas"), 2);
    }
    {
        // Autovacuum's lock (and ANALYZE's, CREATE INDEX CONCURRENTLY's):
        // the fold goes on beside it.
        pqxx::connection holder(url_);
        pqxx::work hold(holder);
        hold.exec0("LOCK TABLE rollups IN SHARE UPDATE EXCLUSIVE MODE");
        const BatchWriter::Fold folded = writer_->FoldDeltas();
        EXPECT_EQ(folded.deltas, 2);
        EXPECT_EQ(folded.rollups, 2);
    }
    // Another consumer folding (its session lock): this one steps aside.
    Batch more;
    more.keys = {Key(m_, 2, 2, "c1", 0, 1, "{}")};
    more.offsets = {{0, 1, 2}};
    writer_->Store(more, OneCallPerNew(more));
    {
        pqxx::connection other(url_);
        const std::string key = std::to_string(0x74616c6c79666c64);
        pqxx::nontransaction(other).exec("SELECT pg_advisory_lock(" + key + ")");
        EXPECT_EQ(writer_->FoldDeltas().deltas, 0);
        // Let go now: a closed connection's backend lets its locks go only
        // when it has exited, a moment later.
        pqxx::nontransaction(other).exec("SELECT pg_advisory_unlock(" + key + ")");
    }
    EXPECT_EQ(writer_->FoldDeltas().deltas, 2);
    pqxx::connection other(url_);
    EXPECT_TRUE(pqxx::nontransaction(other)
                    .exec1("SELECT pg_try_advisory_lock(" + std::to_string(0x74616c6c79666c64) + ")")[0]
                    .as<bool>())
        << "the fold lets its lock go";
}

TEST_F(BatchWriterTest, ArchiveGivesBackEveryAcceptedMessageWithItsOffset) {
    // Bytes the COPY text format must escape, and a Chinese name.
    const std::string tricky = "{\"name\":\"客户\\t\\\\ \\\"q\\\"\",\n \"id\":\"id-2\"}";
    Batch in;
    in.keys = {Key(m_, 1, 1, "c1", 0, 5, R"({"id":"id-1"})"), Key(m_, 2, 2, "c1", 0, 7, tricky),
               Key(m_, 3, 3, "c2", 0, 6, R"({"id":"id-3"})")};
    in.keys[2].event_time += std::chrono::hours(24);  // another day of event time: its own archive row
    in.offsets = {{0, -1, 8}};
    writer_->Store(in, OneCallPerNew(in));
    EXPECT_EQ(Count("SELECT count(*) FROM event_archive"), 2);
    pqxx::connection c(url_);
    pqxx::work tx(c);
    pqxx::result rows =
        tx.exec("SELECT customer_id, kafka_offset, payload FROM archived_events ORDER BY customer_id, kafka_offset");
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0][1].as<int64_t>(), 5);
    EXPECT_EQ(rows[0][2].as<std::string>(), R"({"id":"id-1"})");
    EXPECT_EQ(rows[1][1].as<int64_t>(), 7);
    EXPECT_EQ(rows[1][2].as<std::string>(), tricky);
    EXPECT_EQ(rows[2][0].as<std::string>(), "c2");
    EXPECT_EQ(rows[2][1].as<int64_t>(), 6);
    pqxx::row bounds = tx.exec1(
        "SELECT first_event_time = '2025-11-03T10:05:00Z', last_event_time = '2025-11-03T10:07:00Z' "
        "FROM event_archive WHERE customer_id = 'c1'");
    EXPECT_TRUE(bounds[0].as<bool>());
    EXPECT_TRUE(bounds[1].as<bool>());
}

TEST_F(BatchWriterTest, ArchiveOffStoresKeysAndRollupsOnly) {
    Batch in;
    in.archive = false;
    in.keys = {Key(m_, 1, 1, "c1", 0, 0, R"({"id":"id-1"})")};
    in.offsets = {{0, -1, 1}};
    EXPECT_EQ(writer_->Store(in, OneCallPerNew(in)).accepted, 1);
    EXPECT_EQ(Count("SELECT count(*) FROM event_archive"), 0);
    EXPECT_EQ(Count("SELECT count(*) FROM event_keys"), 1);
}

TEST_F(BatchWriterTest, ABatchFromAnOutdatedOffsetIsFencedAndWritesNothing) {
    Batch in;
    in.keys = {Key(m_, 1, 1, "c1", 3, 0, R"({"id":"id-1"})")};
    in.offsets = {{3, -1, 1}};
    writer_->Store(in, OneCallPerNew(in));
    // Another consumer read partition 3 from the start too and now stores
    // offsets 0..2: its batch lost the race.
    Batch stale;
    stale.keys = {Key(m_, 2, 2, "c1", 3, 1, R"({"id":"id-2"})")};
    stale.offsets = {{3, -1, 2}};
    try {
        writer_->Store(stale, OneCallPerNew(stale));
        FAIL() << "no fence";
    } catch (const SinkError& e) {
        EXPECT_EQ(e.kind, SinkErrorKind::kFenced);
        EXPECT_EQ(e.partitions, std::vector<int32_t>{3});
    }
    EXPECT_EQ(Count("SELECT count(*) FROM event_keys"), 1);
    EXPECT_EQ(Count("SELECT next_offset FROM consumer_offsets WHERE kafka_partition = 3"), 1);
}

TEST_F(BatchWriterTest, ABatchWhoseCommitSucceededIsRecognisedWhenRetried) {
    Batch in;
    in.keys = {Key(m_, 1, 1, "c1", 0, 0, R"({"id":"id-1"})")};
    in.offsets = {{0, -1, 1}};
    writer_->Store(in, OneCallPerNew(in));
    // The commit's answer was lost (connection dropped); the consumer retries.
    StoreResult again = writer_->Store(in, OneCallPerNew(in));
    EXPECT_TRUE(again.already_stored);
    EXPECT_EQ(Count("SELECT sum(quantity) FROM usage_rollups"), 100);
}

TEST_F(BatchWriterTest, DeadLettersKeepBytesThatAreNotText) {
    const std::string raw("\x00\xff\\x41\t\n{", 9);  // NUL, not UTF-8, a backslash, tab, newline
    Batch in;
    in.dead_letters = {{2, 9, RejectReason::kInvalid, "not JSON", raw}};
    in.offsets = {{2, -1, 10}};
    StoreResult r = writer_->Store(in, OneCallPerNew(in));
    EXPECT_EQ(r.dead_letters, 1);
    pqxx::connection c(url_);
    pqxx::work tx(c);
    pqxx::row row = tx.exec1("SELECT encode(raw, 'hex'), reason_code FROM dead_letters");
    EXPECT_EQ(row[0].as<std::string>(), "00ff5c783431090a7b");
    EXPECT_EQ(row[1].as<std::string>(), "invalid");
}

// One call O billed, then C (the same call with another payload) and O'
// (O byte for byte, a producer's retry), all on partition 0 at offsets 0, 1
// and 2. However the consumer cuts them into batches, C is the one conflict
// (dead-lettered with its own bytes) and O' the one duplicate.
class BatchWriterRepeats : public BatchWriterTest {
   protected:
    KeyRow O() { return Key(m_, 1, 1, "c1", 0, 0, R"({"id":"id-1"})"); }
    KeyRow C() { return Key(m_, 1, 9, "c1", 0, 1, R"({"id":"id-1","x":2})"); }
    KeyRow OAgain() { return Key(m_, 1, 1, "c1", 0, 2, R"({"id":"id-1"})"); }
    static Repeat AsRepeat(const KeyRow& k) { return {k.payload_hash, k.partition, k.offset, k.payload}; }

    // Stores each batch (each a list of messages of the one call: the
    // first is the KeyRow, the rest its repeats) and sums the results.
    StoreResult StoreAll(const std::vector<std::vector<KeyRow>>& batches) {
        StoreResult sum;
        int64_t next = -1;
        for (const auto& messages : batches) {
            Batch b;
            KeyRow first = messages.front();
            for (size_t i = 1; i < messages.size(); ++i) first.repeats.push_back(AsRepeat(messages[i]));
            b.keys = {first};
            b.offsets = {{0, next, messages.back().offset + 1}};
            next = messages.back().offset + 1;
            const StoreResult r = writer_->Store(b, OneCallPerNew(b));
            sum.accepted += r.accepted;
            sum.duplicates += r.duplicates;
            sum.conflicts += r.conflicts;
            sum.dead_letters += r.dead_letters;
        }
        return sum;
    }
    std::string DeadLetters() {
        return Text(
            "SELECT coalesce(string_agg(kafka_partition || ':' || kafka_offset || ':' || reason_code || ':' || reason "
            "|| ':' || encode(raw, 'escape'), ' | ' ORDER BY kafka_partition, kafka_offset), '') FROM dead_letters");
    }
    void Forget() {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        tx.exec0("TRUNCATE event_keys, dead_letters, consumer_offsets, rollup_deltas, rollups, event_archive");
        tx.commit();
    }
};

TEST_F(BatchWriterRepeats, AConflictAndACopyInOneBatchAreDecidedAgainstTheBilledPayload) {
    Batch first;
    first.keys = {O()};
    first.offsets = {{0, -1, 1}};
    EXPECT_EQ(writer_->Store(first, OneCallPerNew(first)).accepted, 1);
    Batch second;
    second.keys = {C()};
    second.keys[0].repeats = {AsRepeat(OAgain())};
    second.offsets = {{0, 1, 3}};
    const StoreResult r = writer_->Store(second, OneCallPerNew(second));
    EXPECT_EQ(r.accepted, 0);
    EXPECT_EQ(r.conflicts, 1);
    EXPECT_EQ(r.duplicates, 1);
    EXPECT_EQ(r.dead_letters, 1);
    EXPECT_EQ(r.rollup_deltas, 0);
    EXPECT_EQ(Count("SELECT count(*) FROM dead_letters"), 1);
    EXPECT_EQ(Count("SELECT count(*) FROM dead_letters WHERE reason_code = 'conflict' AND kafka_offset = 1 "
                    "AND raw = '{\"id\":\"id-1\",\"x\":2}'::bytea AND reason LIKE '%(gw, id-1)%'"),
              1);
    EXPECT_EQ(Count("SELECT sum(calls) FROM usage_rollups"), 1);
}

TEST_F(BatchWriterRepeats, TheSameEventsGiveTheSameDeadLettersInEveryBatching) {
    const std::vector<std::vector<std::vector<KeyRow>>> batchings = {
        {{O()}, {C(), OAgain()}},
        {{O(), C(), OAgain()}},
        {{O()}, {C()}, {OAgain()}},
        {{O(), C()}, {OAgain()}},
    };
    std::string expected;
    for (size_t b = 0; b < batchings.size(); ++b) {
        Forget();
        const StoreResult sum = StoreAll(batchings[b]);
        EXPECT_EQ(sum.accepted, 1) << "batching " << b;
        EXPECT_EQ(sum.conflicts, 1) << "batching " << b;
        EXPECT_EQ(sum.duplicates, 1) << "batching " << b;
        EXPECT_EQ(sum.dead_letters, 1) << "batching " << b;
        EXPECT_EQ(Count("SELECT sum(calls) FROM usage_rollups"), 1) << "batching " << b;
        EXPECT_EQ(Count("SELECT sum(quantity) FROM usage_rollups"), 100) << "batching " << b;
        const std::string dead = DeadLetters();
        if (b == 0) expected = dead;
        EXPECT_EQ(dead, expected) << "batching " << b;
    }
    EXPECT_NE(expected.find("0:1:conflict:"), std::string::npos) << expected;
}

TEST_F(BatchWriterTest, CallsWithNoUnitInCommonBothCount) {
    Batch a;
    a.keys = {Key(m_, 1, 1, "c1", 0, 0, "{}")};
    a.offsets = {{0, -1, 1}};
    writer_->Store(a, Fixed({Cell("c1", "", 0, 1), Cell("c1", "input", 100, 0)}));
    Batch b;
    b.keys = {Key(m_, 2, 2, "c1", 0, 1, "{}")};
    b.offsets = {{0, 1, 2}};
    writer_->Store(b, Fixed({Cell("c1", "", 0, 1), Cell("c1", "output", 50, 0)}));
    const std::string usage =
        "SELECT string_agg(unit || ':' || quantity || ':' || calls, ' ' ORDER BY unit) FROM usage_rollups";
    EXPECT_EQ(Text(usage), ":0:2 input:100:0 output:50:0");
    writer_->FoldDeltas();
    EXPECT_EQ(Text(usage), ":0:2 input:100:0 output:50:0");
    EXPECT_EQ(Count("SELECT calls FROM rollups WHERE unit = ''"), 2);
}

// The Model Router: a routed call's served model is part of its cell through
// the deltas, the fold, the view and LoadRollups.
TEST_F(BatchWriterTest, ARoutedCallKeepsItsServedModelThroughStoreFoldAndRead) {
    auto served = [](RollupRecord r, const std::string& model) {
        r.served_model = model;
        return r;
    };
    Batch a;
    a.keys = {Key(m_, 1, 1, "c1", 0, 0, "{}"), Key(m_, 2, 2, "c1", 0, 1, "{}")};
    a.offsets = {{0, -1, 2}};
    writer_->Store(a, Fixed({Cell("c1", "", 0, 1), Cell("c1", "input", 100, 0), served(Cell("c1", "", 0, 1), "pro"),
                             served(Cell("c1", "input", 30, 0), "pro")}));
    const std::string usage =
        "SELECT string_agg(served_model || ':' || unit || ':' || quantity || ':' || calls, ' ' "
        "ORDER BY served_model, unit) FROM usage_rollups";
    EXPECT_EQ(Text(usage), "::0:1 :input:100:0 pro::0:1 pro:input:30:0");
    EXPECT_EQ(writer_->FoldDeltas().rollups, 4);
    Batch b;
    b.keys = {Key(m_, 3, 3, "c1", 0, 2, "{}")};
    b.offsets = {{0, 2, 3}};
    writer_->Store(b, Fixed({served(Cell("c1", "", 0, 1), "pro"), served(Cell("c1", "input", 5, 0), "pro")}));
    EXPECT_EQ(Text(usage), "::0:1 :input:100:0 pro::0:2 pro:input:35:0");
    EXPECT_EQ(writer_->FoldDeltas().rollups, 2);  // added to pro's rows, not to the unrouted ones
    EXPECT_EQ(Text("SELECT string_agg(served_model || ':' || unit || ':' || quantity || ':' || calls, ' ' "
                   "ORDER BY served_model, unit) FROM rollups"),
              "::0:1 :input:100:0 pro::0:2 pro:input:35:0");
    tally::ledger::Store store(url_);
    const std::vector<RollupRecord> read = store.LoadRollups("c1", 24310);
    ASSERT_EQ(read.size(), 4u);
    EXPECT_EQ(read[0].served_model, "");
    EXPECT_EQ(read[1].served_model, "");
    EXPECT_EQ(read[2].served_model, "pro");
    EXPECT_EQ(read[2].calls, 2);
    EXPECT_EQ(read[3].served_model, "pro");
    EXPECT_EQ(read[3].unit, "input");
    EXPECT_EQ(read[3].quantity, 35);
}

// The ledger and `tally rate` agree on a call with both kinds of cache hit
// (Alibaba's qwen-plus, CNY per 1M tokens: input 0.8, implicit hit 0.16,
// explicit hit 0.08): the rater's records stored, folded and read back from
// PostgreSQL price the invoice the rater's own rollups price.
TEST_F(BatchWriterTest, ExplicitCacheHitsPriceTheSameFromTheLedgerAsFromTallyRate) {
    Catalog catalog;
    Diagnostics d;
    auto plan = ParsePlan(R"(plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      m: {rates: {input: "0.8", cached_input: "0.16", cached_input_explicit: "0.08", output: "2"}}
)",
                          "p.yaml", &catalog.units, &d);
    ASSERT_TRUE(plan.has_value()) << (d.empty() ? "" : d.front().ToString());
    catalog.plans.push_back(std::move(*plan));
    Event e;
    e.id = "qw-1";
    e.source = "gw";
    e.subject = "c1";
    e.model = "m";
    e.time = *ParseRfc3339("2025-11-03T10:00:00Z");
    e.input_tokens = 100000;
    e.cached_input_tokens = 20000;
    e.cached_input_explicit_tokens = 30000;
    e.output_tokens = 1000;
    Rater rater(catalog, {}, "p", {});
    ASSERT_EQ(rater.Add(e).status, RateStatus::kRated);
    const std::vector<Rollup> rated = rater.Rollups();
    const std::vector<RollupRecord> records = ToRecords(catalog, rated);
    ASSERT_FALSE(records.empty());
    Batch in;
    in.keys = {Key(m_, 1, 1, "c1", 0, 0, "{}")};
    in.offsets = {{0, -1, 1}};
    writer_->Store(in, Fixed(records));
    EXPECT_EQ(Text("SELECT string_agg(unit || ':' || quantity, ' ' ORDER BY unit) FROM usage_rollups"),
              ":0 cached_input:20000 cached_input_explicit:30000 input:50000 output:1000");
    writer_->FoldDeltas();
    tally::ledger::Store store(url_);
    const RecordsRead read = FromRecords(catalog, store.LoadRollups("c1", records.front().period));
    EXPECT_EQ(read.unresolved, 0);
    auto text = [](const std::vector<Invoice>& invoices) {
        std::string s;
        for (const Invoice& inv : invoices) {
            for (const InvoiceLine& l : inv.lines) {
                if (l.kind == LineKind::kUsage) s += l.unit + " " + l.amount.ToString() + "; ";
            }
            s += "total " + inv.total.ToString();
        }
        return s;
    };
    const std::string via_rate = text(PriceRollups(catalog, {}, "p", {}, rated));
    // 50,000 x 0.8, 20,000 x 0.16, 30,000 x 0.08 and 1,000 x 2, per 1M; 0.0476 is 0.05 to the fen.
    EXPECT_EQ(via_rate, "input 0.04; cached_input 0.0032; cached_input_explicit 0.0024; output 0.002; total 0.05");
    EXPECT_EQ(text(PriceRollups(catalog, {}, "p", {}, read.rollups)), via_rate);
}

TEST_F(BatchWriterTest, AZeroTokenCallIsStoredAsACallsRow) {
    Batch in;
    in.keys = {Key(m_, 1, 1, "c1", 0, 0, "{}")};
    in.offsets = {{0, -1, 1}};
    const StoreResult r = writer_->Store(in, Fixed({Cell("c1", "", 0, 1)}));
    EXPECT_EQ(r.accepted, 1);
    EXPECT_EQ(r.rollup_deltas, 1);
    EXPECT_EQ(Text("SELECT string_agg(unit || ':' || quantity || ':' || calls, ' ') FROM usage_rollups"), ":0:1");
    writer_->FoldDeltas();
    EXPECT_EQ(Text("SELECT string_agg(unit || ':' || quantity || ':' || calls, ' ') FROM rollups"), ":0:1");
}

TEST_F(BatchWriterTest, SumsSaturateAtTheLargestBigintInTheViewAndInTheFold) {
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    const std::string usage =
        "SELECT string_agg(unit || ':' || quantity || ':' || calls, ' ' ORDER BY unit) FROM usage_rollups";
    const std::string max = std::to_string(kMax);
    for (int64_t offset = 0; offset < 3; ++offset) {
        Batch in;
        in.keys = {Key(m_, static_cast<uint8_t>(offset + 1), 1, "c1", 0, offset, "{}")};
        in.offsets = {{0, offset == 0 ? -1 : offset, offset + 1}};
        writer_->Store(in, Fixed({Cell("c1", "", 0, kMax), Cell("c1", "input", kMax, 0)}));
        if (offset == 1) {
            // Two deltas of 2^63-1 for one cell: read through the view, then folded.
            EXPECT_EQ(Text(usage), ":0:" + max + " input:" + max + ":0");
            const BatchWriter::Fold fold = writer_->FoldDeltas();
            EXPECT_EQ(fold.deltas, 4);
            EXPECT_EQ(fold.rollups, 2);
            EXPECT_EQ(Text(usage), ":0:" + max + " input:" + max + ":0");
        }
    }
    // A third delta added to a saturated rollups row.
    EXPECT_EQ(Text(usage), ":0:" + max + " input:" + max + ":0");
    EXPECT_EQ(writer_->FoldDeltas().rollups, 2);
    EXPECT_EQ(Text("SELECT string_agg(unit || ':' || quantity || ':' || calls, ' ' ORDER BY unit) FROM rollups"),
              ":0:" + max + " input:" + max + ":0");
}

// Usage by project (pricing/project_cap.h): the first kProjectsPerPeriodMax
// projects of a customer's period stored are named, the rest are `other`;
// admitted in the batch's transaction, so a batch that is not stored admits
// nothing, and a rebuild names what was named.
RollupRecord InProject(RollupRecord r, const std::string& project, int32_t hour = 7) {
    r.project = project;
    r.hour = hour;
    return r;
}

std::string ProjectName(size_t i) {
    char name[16];
    std::snprintf(name, sizeof name, "p%03zu", i);
    return name;
}

TEST_F(BatchWriterTest, ProjectsBeyondTheCapAreOtherAndABatchNotStoredAdmitsNothing) {
    std::vector<RollupRecord> first;
    for (size_t i = 0; i + 1 < kProjectsPerPeriodMax; ++i) first.push_back(InProject(Cell("c1", "", 0, 1), ProjectName(i)));
    first.push_back(InProject(Cell("c1", "", 0, 1), ""));       // none: takes no place
    first.push_back(InProject(Cell("c1", "", 0, 1), "other"));  // reserved: takes no place
    Batch a;
    a.keys = {Key(m_, 1, 1, "c1", 0, 0, "{}")};
    a.offsets = {{0, -1, 1}};
    writer_->Store(a, Fixed(first));
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_projects"), static_cast<int64_t>(kProjectsPerPeriodMax - 1));
    // A fenced batch (stale offset) stores nothing and admits nothing.
    Batch stale;
    stale.keys = {Key(m_, 2, 2, "c1", 0, 0, "{}")};
    stale.offsets = {{0, -1, 2}};
    EXPECT_THROW(writer_->Store(stale, Fixed({InProject(Cell("c1", "", 0, 1), "zz-lost")})), SinkError);
    // A batch that fails after admitting (a row the table refuses: its
    // transaction, a crash's equal, rolls back) admits nothing either.
    Batch broken;
    broken.keys = {Key(m_, 6, 6, "c1", 0, 1, "{}")};
    broken.offsets = {{0, 1, 2}};
    EXPECT_ANY_THROW(writer_->Store(broken, Fixed({InProject(Cell("c1", "", 0, 1), "zz-lost"),
                                                   InProject(Cell("c1", "input", -1, 0), "zz-lost")})));
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_projects WHERE project = 'zz-lost'"), 0);
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_projects"), static_cast<int64_t>(kProjectsPerPeriodMax - 1));
    // The last place goes to the first project by hour, then name: p900 (hour 5) before p100 (hour 7).
    Batch b;
    b.keys = {Key(m_, 3, 3, "c1", 0, 1, "{}")};
    b.offsets = {{0, 1, 2}};
    writer_->Store(b, Fixed({InProject(Cell("c1", "", 0, 1), "p100"), InProject(Cell("c1", "", 0, 1), "p900", 5),
                             InProject(Cell("c1", "input", 10, 0), "p101"), InProject(Cell("c1", "", 0, 1), "p000")}));
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_projects"), static_cast<int64_t>(kProjectsPerPeriodMax));
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_projects WHERE project = 'p900'"), 1);
    EXPECT_EQ(Text("SELECT string_agg(project || ':' || unit || ':' || quantity || ':' || calls, ' ' ORDER BY project, "
                   "unit) FROM usage_rollups WHERE project IN ('', 'other', 'p000', 'p900', 'p100', 'p101')"),
              "::0:1 other::0:2 other:input:10:0 p000::0:2 p900::0:1");
    // Another customer, and another period of c1, have places of their own.
    Batch c;
    c.keys = {Key(m_, 4, 4, "c2", 0, 2, "{}"), Key(m_, 5, 5, "c1", 0, 3, "{}")};
    c.offsets = {{0, 2, 3}};
    RollupRecord next_period = InProject(Cell("c1", "", 0, 1), "p100");
    next_period.period += 1;
    writer_->Store(c, Fixed({InProject(Cell("c2", "", 0, 1), "p100"), next_period}));
    EXPECT_EQ(Text("SELECT string_agg(customer_id || '/' || period || '/' || project, ' ' ORDER BY customer_id, period) "
                   "FROM usage_rollups WHERE project = 'p100'"),
              "c1/24311/p100 c2/24310/p100");
    // Calls in all: every one is kept, named or not.
    EXPECT_EQ(Count("SELECT sum(calls) FROM usage_rollups"), static_cast<int64_t>(kProjectsPerPeriodMax) + 1 + 3 + 2);
    const int64_t folded = writer_->FoldDeltas().rollups;
    EXPECT_EQ(folded, Count("SELECT count(*) FROM rollups"));
    EXPECT_EQ(Count("SELECT sum(calls) FROM rollups"), static_cast<int64_t>(kProjectsPerPeriodMax) + 1 + 3 + 2);
}

// Two consumers on different partitions of one customer, storing at once:
// between them they name exactly the cap's worth of projects, and the
// rollups name exactly the projects admitted.
TEST_F(BatchWriterTest, TwoConsumersNeverAdmitMoreThanTheCapBetweenThem) {
    constexpr int kBatches = 6, kPerBatch = 25;  // 2 x 150 projects, 300 calls
    auto consumer = [this](int32_t partition) {
        BatchWriter writer(url_, "g", "usage");
        Messages m;
        for (int b = 0; b < kBatches; ++b) {
            Batch in;
            in.keys = {Key(m, static_cast<uint8_t>(partition * 100 + b), 1, "c1", partition, b, "{}")};
            in.offsets = {{partition, b == 0 ? -1 : b, b + 1}};
            in.archive = false;  // the race under test is the projects', not the archive partitions' creation
            std::vector<RollupRecord> records;
            for (int i = 0; i < kPerBatch; ++i) {
                const size_t n = static_cast<size_t>(partition * 1000 + b * kPerBatch + i);
                records.push_back(InProject(Cell("c1", "", 0, 1), ProjectName(n)));
            }
            writer.Store(in, Fixed(records));
        }
    };
    std::thread t0(consumer, 0), t1(consumer, 1);
    t0.join();
    t1.join();
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_projects"), static_cast<int64_t>(kProjectsPerPeriodMax));
    EXPECT_EQ(Count("SELECT sum(calls) FROM usage_rollups"), 2 * kBatches * kPerBatch);
    EXPECT_EQ(Count("SELECT sum(calls) FROM usage_rollups WHERE project = 'other'"),
              2 * kBatches * kPerBatch - static_cast<int64_t>(kProjectsPerPeriodMax));
    EXPECT_EQ(Count("SELECT count(*) FROM (SELECT DISTINCT project FROM usage_rollups WHERE project <> 'other' "
                    "EXCEPT SELECT project FROM rollup_projects) d"),
              0);
    EXPECT_EQ(Count("SELECT count(*) FROM (SELECT project FROM rollup_projects "
                    "EXCEPT SELECT DISTINCT project FROM usage_rollups) d"),
              0);
}

// `tally rerate` (RebuildRollups) caps with the admitted projects:
// a project that went to `other` stays there even when the archive's calls
// would rank it first, and the named ones stay named.
TEST_F(BatchWriterTest, ARebuildNamesTheProjectsThatWereNamed) {
    std::vector<RollupRecord> stored;
    for (size_t i = 0; i < kProjectsPerPeriodMax + 2; ++i) stored.push_back(InProject(Cell("c1", "", 0, 1), ProjectName(i)));
    Batch a;
    a.keys = {Key(m_, 1, 1, "c1", 0, 0, "{}")};
    a.offsets = {{0, -1, 1}};
    writer_->Store(a, Fixed(stored));
    writer_->FoldDeltas();
    const std::string named =
        "SELECT string_agg(project || ':' || calls, ' ' ORDER BY project) FROM "
        "(SELECT project, sum(calls) AS calls FROM usage_rollups GROUP BY project) p";
    const std::string before = Text(named);
    EXPECT_NE(before.find("other:2"), std::string::npos) << before;  // p100, p101
    // The rerate gives the projects as named; p101 now in an earlier hour.
    std::vector<RollupRecord> rerated = stored;
    rerated.back().hour = 3;
    const Instant from = *ParseRfc3339("2025-10-01T00:00:00Z"), to = *ParseRfc3339("2026-01-01T00:00:00Z");
    const std::vector<RebuildOutcome> out =
        RebuildRollups(url_, 24310, from, to, "c1",
                       [&](const std::string&, const std::vector<std::string>&, std::string*) { return rerated; });
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].replaced) << out[0].refused;
    EXPECT_EQ(Text(named), before);
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_projects"), static_cast<int64_t>(kProjectsPerPeriodMax));
}

}  // namespace
}  // namespace tally::ledger
