#include "ledger/batch_writer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <pqxx/pqxx>
#include <set>
#include <tuple>
#include <unordered_map>

#include "base/assert.h"
#include "base/identifier.h"
#include "base/reject_reason.h"
#include "ledger/connect.h"
#include "ledger/copy_rows.h"
#include "ledger/errors.h"
#include "ledger/rollup_projects.h"
#include "pricing/rater.h"

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

std::string Hex32(const Fingerprint& f) {
    static const char* kDigits = "0123456789abcdef";
    std::string out(32, '0');
    for (size_t i = 0; i < f.size(); ++i) {
        out[2 * i] = kDigits[f[i] >> 4];
        out[2 * i + 1] = kDigits[f[i] & 15];
    }
    return out;
}

Fingerprint FromHex32(std::string_view hex) {
    TALLY_ASSERT(hex.size() == 32);
    auto nibble = [](char c) -> uint8_t {
        if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
        TALLY_ASSERT(c >= 'a' && c <= 'f');
        return static_cast<uint8_t>(c - 'a' + 10);
    };
    Fingerprint f{};
    for (size_t i = 0; i < f.size(); ++i) {
        f[i] = static_cast<uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    }
    return f;
}

constexpr char kRecordSeparator = '\x1e';

// A batch that loses the race for a call's key to another transaction (the
// same call on two partitions, stored by two consumers at once) is stored
// again at once and then finds the call billed; this many times.
constexpr int kStoreAttemptsMax = 3;

// Sums saturate as pricing's SaturatingAdd does (sql/0002 says why).
static_assert(kQuantitySaturated == std::numeric_limits<int64_t>::max());

// The fold's upsert: the sums of the deltas its snapshot sees added to
// rollups. Sorted, so the rows of rollups are locked in one order by
// everyone. Sums saturate at 2^63-1 (computed in numeric, then LEAST), as
// the view usage_rollups does: a huge count never stops a fold. FoldDeltas
// then deletes the same deltas in the same REPEATABLE READ snapshot.
std::string FoldSql() {
    const std::string columns =
        "customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags, unit, "
        "project";
    std::string sql =
        "INSERT INTO rollups AS u (" + columns + ", quantity, calls) "
        "SELECT " + columns + ", LEAST(sum(quantity), {max})::bigint, LEAST(sum(calls), {max})::bigint "
        "FROM rollup_deltas GROUP BY " + columns + " ORDER BY " + columns + " "
        "ON CONFLICT (" + columns + ") "
        "DO UPDATE SET quantity = LEAST(u.quantity::numeric + EXCLUDED.quantity, {max})::bigint, "
        "calls = LEAST(u.calls::numeric + EXCLUDED.calls, {max})::bigint";
    const std::string max = std::to_string(kQuantitySaturated);
    for (size_t at = sql.find("{max}"); at != std::string::npos; at = sql.find("{max}", at)) {
        sql.replace(at, 5, max);
    }
    TALLY_ASSERT(sql.find('{') == std::string::npos);
    return sql;
}

// pg_advisory lock key of FoldDeltas ("tallyfld"): one folder at a time.
constexpr int64_t kFoldLock = 0x74616c6c79666c64;

}  // namespace

struct BatchWriter::Impl {
    std::string url, group, topic;
    std::unique_ptr<pqxx::connection> conn;
    std::set<std::string> archive_days;  // partitions known to exist

    // The connection, connecting first when there is none (after Reconnect,
    // or when the last attempt failed); throws SinkError (ledger/connect.h).
    pqxx::connection& Conn() {
        if (!conn || !conn->is_open()) {
            conn.reset();
            archive_days.clear();
            conn = Connect(url);
        }
        TALLY_ASSERT(conn != nullptr);
        return *conn;
    }

    void Drop() {
        conn.reset();
        archive_days.clear();
    }

    // Runs `body`, turning every failure into a classified SinkError. A
    // connection that failed (or may have failed) in the middle of a
    // transaction is not used again.
    template <typename Body>
    auto Guarded(std::string_view what, Body body) -> decltype(body()) {
        try {
            return body();
        } catch (const std::exception& e) {
            ingest::SinkError error = Classify(e, what);
            if (error.kind == ingest::SinkErrorKind::kRetry || error.kind == ingest::SinkErrorKind::kInDoubt) Drop();
            throw error;
        }
    }

    void EnsureArchivePartition(const std::string& day, const std::string& next_day) {
        if (archive_days.count(day) != 0) return;
        std::string name = "event_archive_" + day.substr(0, 4) + day.substr(5, 2) + day.substr(8, 2);
        try {
            pqxx::work tx(Conn());
            tx.exec0("CREATE TABLE IF NOT EXISTS " + name + " PARTITION OF event_archive FOR VALUES FROM ('" + day +
                     "') TO ('" + next_day + "')");
            tx.commit();
        } catch (const pqxx::sql_error& e) {
            // Another consumer created it at the same moment: IF NOT EXISTS
            // does not cover that race, the catalog's unique index does.
            if (e.sqlstate() != "23505" && e.sqlstate() != "42P07") throw;
        }
        archive_days.insert(day);
    }
};

BatchWriter::BatchWriter(const std::string& database_url, std::string group, std::string topic)
    : impl_(std::make_unique<Impl>()) {
    TALLY_ASSERT(!group.empty());
    TALLY_ASSERT(!topic.empty());
    impl_->url = database_url;
    impl_->group = std::move(group);
    impl_->topic = std::move(topic);
    impl_->Conn();
}

BatchWriter::~BatchWriter() = default;

void BatchWriter::Reconnect() {
    impl_->Drop();
}  // the next use connects again

std::map<int32_t, int64_t> BatchWriter::StoredOffsets(const std::vector<int32_t>& partitions) {
    return impl_->Guarded("reading the stored offsets", [&] {
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
    });
}

ingest::StoreResult BatchWriter::Store(const ingest::Batch& batch, const ingest::RecordsOfNew& records_of_new) {
    return impl_->Guarded("storing a batch", [&] {
        // A call billed by another transaction between this batch's dedup
        // lookup and its insert fails the insert on the primary key; the
        // batch is then stored again and finds it billed.
        for (int attempt = 1;; ++attempt) {
            try {
                return StoreOnce(batch, records_of_new);
            } catch (const pqxx::unique_violation& e) {
                if (std::string_view(e.what()).find("event_keys_pkey") == std::string_view::npos) throw;
                if (attempt == kStoreAttemptsMax) {
                    throw ingest::SinkError(ingest::SinkErrorKind::kRetry,
                                            "storing a batch: its calls were being billed by another transaction " +
                                                std::to_string(kStoreAttemptsMax) + " times in a row; retry");
                }
            } catch (const pqxx::deadlock_detected&) {  // keys are inserted in order; defensive
                if (attempt == kStoreAttemptsMax) throw;
            }
        }
    });
}

ingest::StoreResult BatchWriter::StoreOnce(const ingest::Batch& in, const ingest::RecordsOfNew& records_of_new) {
    using ingest::KeyOutcome;
    ingest::StoreResult result;
    const std::time_t now = std::time(nullptr);
    if (in.archive && !in.keys.empty()) {
        // accepted_at is the server's now(): yesterday to tomorrow by this
        // machine's clock covers a skew between the two around midnight.
        for (std::time_t day = now - 86400; day <= now + 86400; day += 86400) {
            impl_->EnsureArchivePartition(DayText(day), DayText(day + 86400));
        }
    }

    auto tp = std::chrono::steady_clock::now();
    const bool trace = std::getenv("TALLY_TRACE_BATCH") != nullptr;
    auto mark = [&](const char* what) {
        if (!trace) return;
        auto now2 = std::chrono::steady_clock::now();
        const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now2 - tp).count();
        std::fprintf(stderr, "batch %s %lld us\n", what, static_cast<long long>(micros));
        tp = now2;
    };
    pqxx::work tx(impl_->Conn());
    // 1. Fence: every partition must still be where this consumer found it.
    // The rows are locked in partition order, so two consumers never deadlock.
    std::string partitions = "{";
    for (const ingest::OffsetAdvance& a : in.offsets) {
        if (partitions.size() > 1) partitions += ',';
        partitions += std::to_string(a.partition);
    }
    partitions += '}';
    std::map<int32_t, int64_t> stored_offsets;
    for (const auto& row : tx.exec_params(
             "SELECT kafka_partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2 "
             "AND kafka_partition = ANY($3::integer[]) ORDER BY kafka_partition FOR UPDATE",
             impl_->group, impl_->topic, partitions)) {
        stored_offsets[row[0].as<int32_t>()] = row[1].as<int64_t>();
    }
    std::vector<int32_t> lost;
    bool all_already = !in.offsets.empty();
    for (const ingest::OffsetAdvance& a : in.offsets) {
        auto it = stored_offsets.find(a.partition);
        const int64_t at = it == stored_offsets.end() ? -1 : it->second;
        if (at == a.next) continue;  // this very batch was stored before (a retried commit)
        all_already = false;
        if (at != a.expected) lost.push_back(a.partition);
    }
    if (all_already) {
        result.already_stored = true;
        return result;  // the transaction aborts; nothing to do
    }
    if (!lost.empty()) {
        std::string list;
        for (int32_t p : lost) list += (list.empty() ? "" : ", ") + std::to_string(p);
        throw ingest::SinkError(ingest::SinkErrorKind::kFenced,
                                "storing a batch: partitions " + list +
                                    " were advanced by another consumer; nothing was stored: re-read their offsets",
                                lost);
    }

    mark("fence");
    // 2. Dedup: look the batch's keys up, decide every message of each call
    // against the billed payload (ingest::Resolve), insert the new keys.
    std::vector<std::optional<Fingerprint>> stored(in.keys.size());
    std::vector<size_t> order(in.keys.size());     // in key order: the index is walked, and filled, left to right
    std::vector<std::string> hex(in.keys.size());  // Hex32(key), for the lookup and the COPY
    if (!in.keys.empty()) {
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return in.keys[a].key < in.keys[b].key; });
        std::unordered_map<std::string_view, size_t> index;  // hex -> position in the batch
        index.reserve(in.keys.size());
        std::string list = "{";
        list.reserve(in.keys.size() * 33 + 2);
        for (size_t i : order) {
            hex[i] = Hex32(in.keys[i].key);
            if (list.size() > 1) list += ',';
            list += hex[i];
            const bool unique = index.emplace(hex[i], i).second;
            TALLY_ASSERT(unique);  // REQUIRES: one KeyRow per call; later messages are its repeats
        }
        list += '}';
        // Probes of the primary key, whatever the table's size: the planner
        // would rather scan a table of a few million keys whole and hash the
        // batch, a cost that grows with every key kept.
        tx.exec0("SET LOCAL enable_seqscan = off");
        for (const auto& row :
             tx.exec_params("SELECT replace(event_key::text, '-', ''), replace(payload_hash::text, '-', '') "
                            "FROM event_keys WHERE event_key = ANY($1::uuid[])",
                            list)) {
            auto it = index.find(std::string_view(row[0].c_str(), row[0].size()));
            TALLY_ASSERT(it != index.end());
            stored[it->second] = FromHex32(std::string_view(row[1].c_str(), row[1].size()));
        }
        tx.exec0("SET LOCAL enable_seqscan = on");
    }
    mark("dedup lookup");
    const ingest::Resolution resolution = ingest::Resolve(in, stored);
    TALLY_ASSERT(resolution.outcomes.size() == in.keys.size());
    if (!in.keys.empty()) {
        CopyRows s(tx, "event_keys", {"event_key", "payload_hash"});
        for (size_t i : order) {
            if (resolution.outcomes[i] != KeyOutcome::kNew) continue;
            TALLY_ASSERT(!stored[i].has_value());
            ++result.accepted;
            s.Text(hex[i]).Text(Hex32(in.keys[i].payload_hash)).EndRow();
        }
        s.Complete();
    }
    result.duplicates = static_cast<int64_t>(resolution.duplicates.size());
    result.conflicts = static_cast<int64_t>(resolution.conflicts.size());
    size_t messages = in.keys.size();
    for (const ingest::KeyRow& k : in.keys) messages += k.repeats.size();
    TALLY_ASSERT(static_cast<size_t>(result.accepted + result.duplicates + result.conflicts) == messages);

    mark("dedup insert");
    // 3. Rollup records of the new calls, appended to the deltas.
    std::vector<RollupRecord> records = records_of_new(resolution.outcomes);
    // Their projects as kept: admitted in this transaction, or `other`.
    CapProjects(tx, &records);
    mark("rollups computed");
    if (trace) std::fprintf(stderr, "rows keys %zu rollups %zu\n", in.keys.size(), records.size());
    if (!records.empty()) {
        CopyRows s(tx, "rollup_deltas",
                   {"customer_id", "period", "hour", "plan", "version", "model", "served_model", "band", "condition",
                    "time_window", "flags", "unit", "quantity", "calls", "project"});
        for (const RollupRecord& r : records) {
            // The shape of pricing/rollup_records.h, checked again by the
            // table (sql/0002): a calls record or a unit record.
            TALLY_ASSERT(!r.unit.empty() || r.quantity == 0);
            TALLY_ASSERT(r.unit.empty() || r.calls == 0);
            s.Text(r.customer).Int(r.period).Int(r.hour).Text(r.plan).Text(r.version).Text(r.model);
            s.Text(r.served_model).Int(r.band);
            s.Int(r.condition).Int(r.time_window).Int(r.flags).Text(r.unit).Int(r.quantity).Int(r.calls);
            s.Text(r.project).EndRow();
        }
        s.Complete();
        result.rollup_deltas = static_cast<int64_t>(records.size());
    }

    mark("rollups stored");
    // 4. The archive of accepted events: one row per customer, partition and
    // UTC day of event time.
    if (in.archive && result.accepted > 0) {
        struct Segment {
            Instant first = Instant::max(), last = Instant::min();
            std::string offsets = "{";
            std::string payloads;
        };
        std::map<std::tuple<std::string_view, int32_t, int64_t>, Segment> segments;
        for (size_t i = 0; i < in.keys.size(); ++i) {
            if (resolution.outcomes[i] != KeyOutcome::kNew) continue;
            const ingest::KeyRow& k = in.keys[i];
            const int64_t day = std::chrono::floor<std::chrono::days>(k.event_time).time_since_epoch().count();
            Segment& seg = segments[{k.customer, k.partition, day}];
            if (!seg.payloads.empty() || seg.offsets.size() > 1) {
                seg.offsets += ',';
                seg.payloads += kRecordSeparator;
            }
            seg.offsets += std::to_string(k.offset);
            seg.payloads.append(k.payload);
            seg.first = std::min(seg.first, k.event_time);
            seg.last = std::max(seg.last, k.event_time);
        }
        CopyRows s(tx, "event_archive",
                   {"customer_id", "first_event_time", "last_event_time", "kafka_topic", "kafka_partition",
                    "kafka_offsets", "payloads"});
        for (auto& [where, seg] : segments) {
            seg.offsets += '}';
            s.Text(std::get<0>(where)).Text(FormatRfc3339(seg.first)).Text(FormatRfc3339(seg.last)).Text(impl_->topic);
            s.Int(std::get<1>(where)).Text(seg.offsets).Text(seg.payloads).EndRow();
        }
        s.Complete();
    }

    mark("archive");
    // 5. Dead letters: the batch's own, and the conflicts found just now.
    if (!in.dead_letters.empty() || !resolution.conflicts.empty()) {
        tx.exec0(
            "CREATE TEMP TABLE batch_dead_letters (kafka_partition integer, kafka_offset bigint, reason_code text, "
            "reason text, raw bytea) ON COMMIT DROP");
        {
            CopyRows s(tx, "batch_dead_letters", {"kafka_partition", "kafka_offset", "reason_code", "reason", "raw"});
            for (const std::vector<ingest::DeadLetter>* list : {&in.dead_letters, &resolution.conflicts}) {
                for (const ingest::DeadLetter& d : *list) {
                    s.Int(d.partition).Int(d.offset).Text(RejectReasonCode(d.reason)).Text(SafeText(d.detail));
                    s.Text(Hex(d.raw)).EndRow();
                }
            }
            s.Complete();
        }
        result.dead_letters += static_cast<int64_t>(
            tx.exec_params0(
                  "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, reason_code, "
                  "reason, raw) SELECT $1, kafka_partition, kafka_offset, reason_code, reason, raw "
                  "FROM batch_dead_letters ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING",
                  impl_->topic)
                .affected_rows());
    }

    // 6. Offsets, in the same transaction as everything they produced.
    std::string nexts = "{";
    for (const ingest::OffsetAdvance& a : in.offsets) {
        if (nexts.size() > 1) nexts += ',';
        nexts += std::to_string(a.next);
    }
    nexts += '}';
    tx.exec_params0(
        "INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset) "
        "SELECT $1, $2, p, n FROM unnest($3::integer[], $4::bigint[]) AS t (p, n) "
        "ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, "
        "updated_at = now()",
        impl_->group, impl_->topic, partitions, nexts);
    mark("offsets");
    tx.commit();
    mark("commit");
    return result;
}

BatchWriter::Fold BatchWriter::FoldDeltas() {
    return impl_->Guarded("folding the rollup deltas", [&] {
        // One snapshot for the upsert and the delete: the deltas a batch
        // commits meanwhile are in neither and stay for the next fold; a
        // reader's snapshot sees the deltas or their sums in rollups, never
        // both or neither. Batches keep writing deltas and readers keep
        // reading while the fold runs. (It was TRUNCATE under an exclusive
        // lock, which held every reader of usage and every batch back for
        // the fold's duration; then one statement that deleted the deltas and
        // upserted what it returned, about 4x the database time of these
        // two: docs/performance.md, "tally serve".)
        //
        // Nothing else may change rollups or the counters after the snapshot
        // (that would fail it to serialize), so before it: another
        // consumer's fold is kept out by a session advisory lock taken
        // outside the transaction, a rebuild (ledger/rollup_rebuild.cc,
        // SHARE ROW EXCLUSIVE) or a migration by the fold's own ROW EXCLUSIVE
        // lock on rollups taken first in it (LOCK takes no snapshot). Neither
        // is one that batches, readers or autovacuum conflict with. Either
        // held by someone else: the fold steps aside, and the deltas wait
        // for the next turn.
        pqxx::connection& conn = impl_->Conn();
        if (!pqxx::nontransaction(conn)
                 .exec1("SELECT pg_try_advisory_lock(" + std::to_string(kFoldLock) + ")")[0]
                 .as<bool>()) {
            return Fold{};
        }
        struct Unlock {
            pqxx::connection& conn;
            ~Unlock() {
                try {  // a lost connection has lost the lock too
                    pqxx::nontransaction(conn).exec("SELECT pg_advisory_unlock(" + std::to_string(kFoldLock) + ")");
                } catch (const std::exception&) {
                }
            }
        } unlock{conn};
        pqxx::transaction<pqxx::isolation_level::repeatable_read> tx(conn);
        try {
            tx.exec0("LOCK TABLE rollups IN ROW EXCLUSIVE MODE NOWAIT");
        } catch (const pqxx::sql_error& e) {
            if (e.sqlstate() == "55P03") return Fold{};  // lock_not_available
            throw;
        }
        Fold fold;
        fold.rollups = static_cast<int64_t>(tx.exec0(FoldSql()).affected_rows());
        fold.deltas = static_cast<int64_t>(tx.exec0("DELETE FROM rollup_deltas").affected_rows());
        tx.commit();
        TALLY_ASSERT(fold.rollups <= fold.deltas);
        return fold;
    });
}

std::optional<std::pair<int64_t, int64_t>> BatchWriter::SkipGap(int32_t partition, int64_t earliest,
                                                                const std::string& by) {
    return impl_->Guarded("skipping a gap", [&]() -> std::optional<std::pair<int64_t, int64_t>> {
        pqxx::work tx(impl_->Conn());
        pqxx::result r = tx.exec_params(
            "SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2 "
            "AND kafka_partition = $3 FOR UPDATE",
            impl_->group, impl_->topic, partition);
        const int64_t stored = r.empty() ? 0 : r[0][0].as<int64_t>();
        if (stored >= earliest) return std::nullopt;
        tx.exec_params0(
            "INSERT INTO offset_gaps (consumer_group, topic, kafka_partition, from_offset, to_offset, skipped_by) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            impl_->group, impl_->topic, partition, stored, earliest, by);
        tx.exec_params0(
            "INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset) "
            "VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, "
            "updated_at = now()",
            impl_->group, impl_->topic, partition, earliest);
        tx.commit();
        return std::make_pair(stored, earliest);
    });
}

int64_t BatchWriter::Expire(int dedup_days, int archive_days) {
    return impl_->Guarded("expiring old keys and archives", [&] {
        pqxx::work tx(impl_->Conn());
        pqxx::result r =
            tx.exec_params("DELETE FROM event_keys WHERE accepted_at < now() - make_interval(days => $1)", dedup_days);
        const auto deleted = static_cast<int64_t>(r.affected_rows());
        for (const auto& row : tx.exec_params(
                 "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                 "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'event_archive' "
                 "AND c.relname < 'event_archive_' || to_char(now() - make_interval(days => $1), 'YYYYMMDD')",
                 archive_days)) {
            tx.exec0("DROP TABLE " + row[0].as<std::string>());
        }
        tx.commit();
        impl_->archive_days.clear();
        return deleted;
    });
}

}  // namespace tally::ledger
