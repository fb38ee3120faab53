#include "ledger/batch_writer.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <pqxx/pqxx>
#include <set>
#include <unordered_set>

#include "pricing/assert.h"

namespace tally::ledger {

namespace {

std::string DayText(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

std::string Hex(std::string_view bytes) {
    static const char* kDigits = "0123456789abcdef";
    std::string out = "\\x";
    out.reserve(2 + bytes.size() * 2);
    for (char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        out += kDigits[c >> 4];
        out += kDigits[c & 15];
    }
    return out;
}

}  // namespace

struct BatchWriter::Impl {
    std::string url, group, topic;
    std::unique_ptr<pqxx::connection> conn;
    std::set<std::string> archive_days;  // partitions known to exist

    // The connection, connecting first when there is none (after Reconnect,
    // or when the last attempt failed); throws when PostgreSQL is away.
    pqxx::connection& Conn() {
        if (!conn || !conn->is_open()) {
            conn.reset();
            conn = std::make_unique<pqxx::connection>(url);
            archive_days.clear();
        }
        return *conn;
    }

    void EnsureArchivePartition(const std::string& day, const std::string& next_day) {
        if (archive_days.count(day) != 0) return;
        std::string name = "events_" + day.substr(0, 4) + day.substr(5, 2) + day.substr(8, 2);
        pqxx::work tx(Conn());
        tx.exec0("CREATE TABLE IF NOT EXISTS " + name + " PARTITION OF events FOR VALUES FROM ('" + day + "') TO ('" +
                 next_day + "')");
        tx.commit();
        archive_days.insert(day);
    }
};

BatchWriter::BatchWriter(const std::string& url, std::string group, std::string topic)
    : impl_(std::make_unique<Impl>()) {
    impl_->url = url;
    impl_->group = std::move(group);
    impl_->topic = std::move(topic);
    impl_->Conn();
}

BatchWriter::~BatchWriter() = default;

void BatchWriter::Reconnect() {
    impl_->conn.reset();  // the next use connects again
    impl_->archive_days.clear();
}

std::map<int32_t, int64_t> BatchWriter::StoredOffsets(const std::vector<int32_t>& partitions) {
    std::map<int32_t, int64_t> out;
    pqxx::work tx(impl_->Conn());
    for (const auto& row : tx.exec_params(
             "SELECT kafka_partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2",
             impl_->group, impl_->topic)) {
        out[row[0].as<int32_t>()] = row[1].as<int64_t>();
    }
    tx.commit();
    std::map<int32_t, int64_t> wanted;
    for (int32_t p : partitions) {
        auto it = out.find(p);
        if (it != out.end()) wanted.insert(*it);
    }
    return wanted;
}

BatchResult BatchWriter::Commit(const BatchInput& in, const RollupsOfNew& rollups_of_new) {
    BatchResult result;
    const std::time_t now = std::time(nullptr);
    const std::string accepted_at = DayText(now) + "T" + [&] {
        std::tm tm{};
        gmtime_r(&now, &tm);
        char buf[16];
        std::strftime(buf, sizeof buf, "%H:%M:%SZ", &tm);
        return std::string(buf);
    }();
    if (in.archive && !in.keys.empty()) impl_->EnsureArchivePartition(DayText(now), DayText(now + 86400));

    auto tp = std::chrono::steady_clock::now();
    auto mark = [&](const char* what) {
        if (std::getenv("TALLY_TRACE_BATCH") == nullptr) return;
        auto now2 = std::chrono::steady_clock::now();
        const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now2 - tp).count();
        std::fprintf(stderr, "batch %s %lld us\n", what, static_cast<long long>(micros));
        tp = now2;
    };
    pqxx::work tx(impl_->Conn());
    // 1. Fence: every partition must still be where this consumer found it.
    std::vector<int32_t> lost;
    bool all_already = !in.offsets.empty();
    for (const OffsetAdvance& a : in.offsets) {
        pqxx::result r = tx.exec_params(
            "SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = "
            "$3 "
            "FOR UPDATE",
            impl_->group, impl_->topic, a.partition);
        const int64_t stored = r.empty() ? -1 : r[0][0].as<int64_t>();
        if (stored == a.next) continue;  // this very batch was stored before (a retried commit)
        all_already = false;
        if (stored != a.expected) lost.push_back(a.partition);
    }
    if (all_already) {
        result.already_stored = true;
        return result;  // the transaction aborts; nothing to do
    }
    if (!lost.empty()) {
        std::string list;
        for (int32_t p : lost) list += (list.empty() ? "" : ", ") + std::to_string(p);
        throw FenceError("partitions " + list + " were advanced by another consumer", lost);
    }

    mark("fence");
    // 2. Dedup against the durable keys.
    std::vector<KeyOutcome> outcomes(in.keys.size(), KeyOutcome::kNew);
    if (!in.keys.empty()) {
        tx.exec0(
            "CREATE TEMP TABLE batch_keys (idx integer, source text, id text, customer_id text, payload_hash text, "
            "event_time timestamptz) ON COMMIT DROP");
        {
            pqxx::stream_to s(
                tx, "batch_keys",
                std::vector<std::string>{"idx", "source", "id", "customer_id", "payload_hash", "event_time"});
            for (size_t i = 0; i < in.keys.size(); ++i) {
                const KeyRow& k = in.keys[i];
                s << std::make_tuple(static_cast<int>(i), k.source, k.id, k.customer, k.payload_hash, k.event_time);
            }
            s.complete();
        }
        mark("copy keys");
        // Statistics for the planner: the batch is small next to event_keys,
        // so the lookups below go through its primary key.
        tx.exec0("ANALYZE batch_keys");
        std::unordered_set<std::string> inserted;  // source \x1f id
        for (const auto& row :
             tx.exec_params("INSERT INTO event_keys (source, id, customer_id, payload_hash, event_time, accepted_at) "
                            "SELECT source, id, customer_id, payload_hash, event_time, $1 FROM batch_keys "
                            "ON CONFLICT (source, id) DO NOTHING RETURNING source, id",
                            accepted_at)) {
            inserted.insert(row[0].as<std::string>() + '\x1f' + row[1].as<std::string>());
        }
        mark("insert keys");
        std::vector<uint8_t> same_payload(in.keys.size(), 0);
        for (const auto& row : tx.exec("SELECT b.idx, k.payload_hash = b.payload_hash FROM batch_keys b "
                                       "JOIN event_keys k ON k.source = b.source AND k.id = b.id")) {
            const auto idx = static_cast<size_t>(row[0].as<int>());
            TALLY_ASSERT(idx < same_payload.size());
            same_payload[idx] = row[1].as<bool>() ? 1 : 2;
        }
        for (size_t i = 0; i < in.keys.size(); ++i) {
            const KeyRow& k = in.keys[i];
            TALLY_ASSERT(same_payload[i] != 0);  // every key is stored now: inserted, or there before
            if (inserted.count(k.source + '\x1f' + k.id) != 0) {
                outcomes[i] = KeyOutcome::kNew;
                ++result.accepted;
            } else if (same_payload[i] == 1) {
                outcomes[i] = KeyOutcome::kDuplicate;
                ++result.duplicates;
            } else {
                outcomes[i] = KeyOutcome::kConflict;
                ++result.conflicts;
            }
        }
    }

    mark("dedup");
    // 3. Rollups of the new events, added to the stored ones.
    std::vector<RollupOut> rollups = rollups_of_new(outcomes);
    mark("rollups computed");
    if (!rollups.empty()) {
        tx.exec0("CREATE TEMP TABLE batch_rollups (LIKE rollups) ON COMMIT DROP");
        {
            pqxx::stream_to s(
                tx, "batch_rollups",
                std::vector<std::string>{"customer_id", "period", "hour", "plan", "version", "model", "band",
                                         "condition", "time_window", "flags", "unit", "quantity", "calls"});
            for (const RollupOut& r : rollups) {
                s << std::make_tuple(r.customer, r.period, r.hour, r.plan, r.version, r.model, r.band, r.condition,
                                     r.time_window, r.flags, r.unit, r.quantity, r.calls);
            }
            s.complete();
        }
        tx.exec0(
            "INSERT INTO rollups AS u SELECT * FROM batch_rollups "
            "ON CONFLICT (customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit) "
            "DO UPDATE SET quantity = u.quantity + EXCLUDED.quantity, calls = u.calls + EXCLUDED.calls");
    }

    mark("rollups stored");
    // 4. The archive of accepted events.
    if (in.archive && result.accepted > 0) {
        pqxx::stream_to s(tx, "events",
                          std::vector<std::string>{"customer_id", "source", "id", "event_time", "accepted_at",
                                                   "kafka_topic", "kafka_partition", "kafka_offset", "payload"});
        for (size_t i = 0; i < in.keys.size(); ++i) {
            if (outcomes[i] != KeyOutcome::kNew) continue;
            const KeyRow& k = in.keys[i];
            s << std::make_tuple(k.customer, k.source, k.id, k.event_time, accepted_at, impl_->topic, k.partition,
                                 k.offset, std::string(k.payload));
        }
        s.complete();
    }

    mark("archive");
    // 5. Dead letters: the batch's own, and conflicts found just now.
    auto dead_letter = [&](int32_t partition, int64_t offset, const std::string& code, const std::string& reason,
                           std::string_view raw) {
        tx.exec_params0(
            "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, reason_code, reason, raw) "
            "VALUES ($1, $2, $3, $4, $5, decode(substr($6, 3), 'hex')) "
            "ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING",
            impl_->topic, partition, offset, code, reason, Hex(raw));
        ++result.dead_letters;
    };
    for (const DeadLetterRow& d : in.dead_letters) dead_letter(d.partition, d.offset, d.reason_code, d.reason, d.raw);
    for (size_t i = 0; i < in.keys.size(); ++i) {
        if (outcomes[i] != KeyOutcome::kConflict) continue;
        const KeyRow& k = in.keys[i];
        dead_letter(k.partition, k.offset, "conflict",
                    "(source, id) = (" + k.source + ", " + k.id +
                        ") was already billed with a different payload; the same call must not change",
                    k.payload);
    }

    // 6. Offsets, in the same transaction as everything they produced.
    for (const OffsetAdvance& a : in.offsets) {
        tx.exec_params0(
            "INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset) VALUES ($1, $2, $3, "
            "$4) "
            "ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, "
            "updated_at = now()",
            impl_->group, impl_->topic, a.partition, a.next);
    }
    mark("offsets");
    tx.commit();
    mark("commit");
    return result;
}

std::optional<std::pair<int64_t, int64_t>> BatchWriter::SkipGap(int32_t partition, int64_t earliest,
                                                                const std::string& by) {
    pqxx::work tx(impl_->Conn());
    pqxx::result r = tx.exec_params(
        "SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = $3 "
        "FOR UPDATE",
        impl_->group, impl_->topic, partition);
    const int64_t stored = r.empty() ? 0 : r[0][0].as<int64_t>();
    if (stored >= earliest) return std::nullopt;
    tx.exec_params0(
        "INSERT INTO offset_gaps (consumer_group, topic, kafka_partition, from_offset, to_offset, skipped_by) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        impl_->group, impl_->topic, partition, stored, earliest, by);
    tx.exec_params0(
        "INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, "
        "updated_at = now()",
        impl_->group, impl_->topic, partition, earliest);
    tx.commit();
    return std::make_pair(stored, earliest);
}

int64_t BatchWriter::Expire(int days, int archive_days) {
    pqxx::work tx(impl_->Conn());
    pqxx::result r =
        tx.exec_params("DELETE FROM event_keys WHERE accepted_at < now() - make_interval(days => $1)", days);
    const auto deleted = static_cast<int64_t>(r.affected_rows());
    for (const auto& row :
         tx.exec_params("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events' "
                        "AND c.relname < 'events_' || to_char(now() - make_interval(days => $1), 'YYYYMMDD')",
                        archive_days)) {
        tx.exec0("DROP TABLE " + row[0].as<std::string>());
    }
    tx.commit();
    impl_->archive_days.clear();
    return deleted;
}

}  // namespace tally::ledger
