// The batch transaction of `tally consume` against a real PostgreSQL: dedup
// (duplicate vs conflict), the offset fence, a retried commit, rollups adding
// up, the archive giving back every accepted message byte for byte, and dead
// letters keeping bytes that are not text.
#include "ledger/batch_writer.h"

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "tests/ledger/ledger_db.h"

namespace tally::ledger {
namespace {

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

// 100 input tokens per new event in hour 7, one row per customer (rollup
// rows are unique by key).
RollupsOfNew OneRowPerNew(const BatchInput& in) {
    return [&in](const std::vector<KeyOutcome>& outcomes) {
        std::map<std::string, RollupOut> rows;
        for (size_t i = 0; i < outcomes.size(); ++i) {
            if (outcomes[i] != KeyOutcome::kNew) continue;
            RollupOut& r = rows[in.keys[i].customer];
            r.customer = in.keys[i].customer;
            r.period = 24310;
            r.hour = 7;
            r.plan = "p";
            r.version = "v1";
            r.model = "m";
            r.unit = "input";
            r.quantity += 100;
            r.calls += 1;
        }
        std::vector<RollupOut> out;
        for (auto& [customer, r] : rows) out.push_back(r);
        return out;
    };
}

class BatchWriterTest : public LedgerDb {
   protected:
    void SetUp() override {
        LedgerDb::SetUp();
        Migrate(url_);
        writer_ = std::make_unique<BatchWriter>(url_, "g", "usage");
    }
    int64_t Count(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        return tx.exec1(sql)[0].as<int64_t>();
    }
    std::unique_ptr<BatchWriter> writer_;
    Messages m_;
};

TEST_F(BatchWriterTest, NewEventsAreBilledOnceRetriesAreDuplicatesChangedOnesAreConflicts) {
    BatchInput first;
    first.keys = {Key(m_, 1, 1, "c1", 0, 0, R"({"id":"id-1"})"), Key(m_, 2, 2, "c1", 0, 1, R"({"id":"id-2"})"),
                  Key(m_, 3, 3, "c2", 1, 0, R"({"id":"id-3"})")};
    first.offsets = {{0, -1, 2}, {1, -1, 1}};
    BatchResult r1 = writer_->Commit(first, OneRowPerNew(first));
    EXPECT_EQ(r1.accepted, 3);
    EXPECT_EQ(r1.duplicates, 0);
    EXPECT_EQ(r1.conflicts, 0);

    // id 1 again with the same bytes (a producer retry), id 3 with other
    // bytes (a conflict), id 4 new.
    BatchInput second;
    second.keys = {Key(m_, 1, 1, "c1", 0, 2, R"({"id":"id-1"})"), Key(m_, 3, 9, "c2", 1, 1, R"({"id":"id-3","x":1})"),
                   Key(m_, 4, 4, "c1", 0, 3, R"({"id":"id-4"})")};
    second.offsets = {{0, 2, 4}, {1, 1, 2}};
    BatchResult r2 = writer_->Commit(second, OneRowPerNew(second));
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
        BatchInput in;
        in.keys = {Key(m_, id, id, id % 3 == 0 ? "c2" : "c1", 0, offset, "{}")};
        in.offsets = {{0, offset == 0 ? -1 : offset, offset + 1}};
        ++offset;
        writer_->Commit(in, OneRowPerNew(in));
        if (id == 3) {
            EXPECT_EQ(writer_->FoldDeltas().rollups, 2);  // c1 and c2, one hour each
        }
    }
    const std::string usage =
        "SELECT string_agg(customer_id || ':' || quantity || ':' || calls, ' ' ORDER BY customer_id) "
        "FROM usage_rollups";
    auto text = [&](const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        return tx.exec1(sql)[0].as<std::string>();
    };
    EXPECT_EQ(text(usage), "c1:400:4 c2:200:2");
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_deltas"), 3);
    const BatchWriter::Fold second = writer_->FoldDeltas();
    EXPECT_EQ(second.deltas, 3);   // batches 4, 5, 6
    EXPECT_EQ(second.rollups, 2);  // added to c1's and c2's rows
    EXPECT_EQ(Count("SELECT count(*) FROM rollup_deltas"), 0);
    EXPECT_EQ(text(usage), "c1:400:4 c2:200:2");
    EXPECT_EQ(text("SELECT string_agg(customer_id || ':' || quantity, ' ' ORDER BY customer_id) FROM rollups"),
              "c1:400 c2:200");
    EXPECT_EQ(writer_->FoldDeltas().deltas, 0);  // nothing left
}

TEST_F(BatchWriterTest, ArchiveGivesBackEveryAcceptedMessageWithItsOffset) {
    // Bytes the COPY text format must escape, and a Chinese name.
    const std::string tricky = "{\"name\":\"客户\\t\\\\ \\\"q\\\"\",\n \"id\":\"id-2\"}";
    BatchInput in;
    in.keys = {Key(m_, 1, 1, "c1", 0, 5, R"({"id":"id-1"})"), Key(m_, 2, 2, "c1", 0, 7, tricky),
               Key(m_, 3, 3, "c2", 0, 6, R"({"id":"id-3"})")};
    in.keys[2].event_time += std::chrono::hours(24);  // another day of event time: its own archive row
    in.offsets = {{0, -1, 8}};
    writer_->Commit(in, OneRowPerNew(in));
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
    BatchInput in;
    in.archive = false;
    in.keys = {Key(m_, 1, 1, "c1", 0, 0, R"({"id":"id-1"})")};
    in.offsets = {{0, -1, 1}};
    EXPECT_EQ(writer_->Commit(in, OneRowPerNew(in)).accepted, 1);
    EXPECT_EQ(Count("SELECT count(*) FROM event_archive"), 0);
    EXPECT_EQ(Count("SELECT count(*) FROM event_keys"), 1);
}

TEST_F(BatchWriterTest, ABatchFromAnOutdatedOffsetIsFencedAndWritesNothing) {
    BatchInput in;
    in.keys = {Key(m_, 1, 1, "c1", 3, 0, R"({"id":"id-1"})")};
    in.offsets = {{3, -1, 1}};
    writer_->Commit(in, OneRowPerNew(in));
    // Another consumer read partition 3 from the start too and now stores
    // offsets 0..2: its batch lost the race.
    BatchInput stale;
    stale.keys = {Key(m_, 2, 2, "c1", 3, 1, R"({"id":"id-2"})")};
    stale.offsets = {{3, -1, 2}};
    try {
        writer_->Commit(stale, OneRowPerNew(stale));
        FAIL() << "no fence";
    } catch (const FenceError& e) {
        EXPECT_EQ(e.partitions, std::vector<int32_t>{3});
    }
    EXPECT_EQ(Count("SELECT count(*) FROM event_keys"), 1);
    EXPECT_EQ(Count("SELECT next_offset FROM consumer_offsets WHERE kafka_partition = 3"), 1);
}

TEST_F(BatchWriterTest, ABatchWhoseCommitSucceededIsRecognisedWhenRetried) {
    BatchInput in;
    in.keys = {Key(m_, 1, 1, "c1", 0, 0, R"({"id":"id-1"})")};
    in.offsets = {{0, -1, 1}};
    writer_->Commit(in, OneRowPerNew(in));
    // The commit's answer was lost (connection dropped); the consumer retries.
    BatchResult again = writer_->Commit(in, OneRowPerNew(in));
    EXPECT_TRUE(again.already_stored);
    EXPECT_EQ(Count("SELECT sum(quantity) FROM usage_rollups"), 100);
}

TEST_F(BatchWriterTest, DeadLettersKeepBytesThatAreNotText) {
    const std::string raw("\x00\xff\\x41\t\n{", 9);  // NUL, not UTF-8, a backslash, tab, newline
    BatchInput in;
    in.dead_letters = {{2, 9, "invalid", "not JSON", raw}};
    in.offsets = {{2, -1, 10}};
    BatchResult r = writer_->Commit(in, OneRowPerNew(in));
    EXPECT_EQ(r.dead_letters, 1);
    pqxx::connection c(url_);
    pqxx::work tx(c);
    pqxx::row row = tx.exec1("SELECT encode(raw, 'hex'), reason_code FROM dead_letters");
    EXPECT_EQ(row[0].as<std::string>(), "00ff5c783431090a7b");
    EXPECT_EQ(row[1].as<std::string>(), "invalid");
}

}  // namespace
}  // namespace tally::ledger
