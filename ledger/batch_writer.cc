#include "ledger/batch_writer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <pqxx/pqxx>
#include <set>
#include <tuple>
#include <unordered_map>

#include "ledger/copy_rows.h"
#include "base/assert.h"

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

constexpr char kRecordSeparator = '\x1e';

// pg_advisory lock key of FoldDeltas ("tallyfld").
constexpr int64_t kFoldLock = 0x74616c6c79666c64;

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
        std::string name = "event_archive_" + day.substr(0, 4) + day.substr(5, 2) + day.substr(8, 2);
        pqxx::work tx(Conn());
        tx.exec0("CREATE TABLE IF NOT EXISTS " + name + " PARTITION OF event_archive FOR VALUES FROM ('" + day +
                 "') TO ('" + next_day + "')");
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
    // A call billed by another transaction between this batch's dedup lookup
    // and its insert (the same call on two partitions, stored by two
    // consumers or two connections of one) fails the insert on the primary
    // key; the batch is then written again and finds it billed.
    for (int attempt = 1;; ++attempt) {
        try {
            return CommitOnce(in, rollups_of_new);
        } catch (const pqxx::unique_violation&) {
            if (attempt == 3) throw;
        } catch (const pqxx::deadlock_detected&) {  // keys are inserted in order; defensive
            if (attempt == 3) throw;
        }
    }
}

BatchResult BatchWriter::CommitOnce(const BatchInput& in, const RollupsOfNew& rollups_of_new) {
    BatchResult result;
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
    for (const OffsetAdvance& a : in.offsets) {
        if (partitions.size() > 1) partitions += ',';
        partitions += std::to_string(a.partition);
    }
    partitions += '}';
    std::map<int32_t, int64_t> stored;
    for (const auto& row : tx.exec_params(
             "SELECT kafka_partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2 "
             "AND kafka_partition = ANY($3::integer[]) ORDER BY kafka_partition FOR UPDATE",
             impl_->group, impl_->topic, partitions)) {
        stored[row[0].as<int32_t>()] = row[1].as<int64_t>();
    }
    std::vector<int32_t> lost;
    bool all_already = !in.offsets.empty();
    for (const OffsetAdvance& a : in.offsets) {
        auto it = stored.find(a.partition);
        const int64_t at = it == stored.end() ? -1 : it->second;
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
        throw FenceError("partitions " + list + " were advanced by another consumer", lost);
    }

    mark("fence");
    // 2. Dedup: look the batch's keys up, then insert the new ones. The keys
    // are unique within the batch (the consumer drops repeats).
    std::vector<KeyOutcome> outcomes(in.keys.size(), KeyOutcome::kNew);
    if (!in.keys.empty()) {
        // In key order: the index is walked, and filled, from left to right.
        std::vector<size_t> order(in.keys.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return in.keys[a].key < in.keys[b].key; });
        std::vector<std::string> hex(in.keys.size());        // Hex32(key), for the lookup and the COPY
        std::unordered_map<std::string_view, size_t> index;  // hex -> position in the batch
        index.reserve(in.keys.size());
        std::string list = "{";
        list.reserve(in.keys.size() * 33 + 2);
        for (size_t i : order) {
            hex[i] = Hex32(in.keys[i].key);
            if (list.size() > 1) list += ',';
            list += hex[i];
            index.emplace(hex[i], i);
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
            const size_t i = it->second;
            outcomes[i] = row[1].as<std::string>() == Hex32(in.keys[i].payload_hash) ? KeyOutcome::kDuplicate
                                                                                     : KeyOutcome::kConflict;
        }
        tx.exec0("SET LOCAL enable_seqscan = on");
        mark("dedup lookup");
        CopyRows s(tx, "event_keys", {"event_key", "payload_hash"});
        for (size_t i : order) {
            switch (outcomes[i]) {
                case KeyOutcome::kNew:
                    ++result.accepted;
                    s.Text(hex[i]).Text(Hex32(in.keys[i].payload_hash)).EndRow();
                    break;
                case KeyOutcome::kDuplicate: ++result.duplicates; break;
                case KeyOutcome::kConflict: ++result.conflicts; break;
            }
        }
        s.Complete();
    }

    mark("dedup insert");
    // 3. Rollups of the new events, added to the stored ones.
    std::vector<RollupOut> rollups = rollups_of_new(outcomes);
    mark("rollups computed");
    if (trace) std::fprintf(stderr, "rows keys %zu rollups %zu\n", in.keys.size(), rollups.size());
    if (!rollups.empty()) {
        CopyRows s(tx, "rollup_deltas",
                   {"customer_id", "period", "hour", "plan", "version", "model", "band", "condition", "time_window",
                    "flags", "unit", "quantity", "calls"});
        for (const RollupOut& r : rollups) {
            s.Text(r.customer).Int(r.period).Int(r.hour).Text(r.plan).Text(r.version).Text(r.model).Int(r.band);
            s.Int(r.condition).Int(r.time_window).Int(r.flags).Text(r.unit).Int(r.quantity).Int(r.calls).EndRow();
        }
        s.Complete();
        result.rollup_deltas = static_cast<int64_t>(rollups.size());
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
            if (outcomes[i] != KeyOutcome::kNew) continue;
            const KeyRow& k = in.keys[i];
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
    // 5. Dead letters: the batch's own, and conflicts found just now.
    std::vector<DeadLetterRow> conflicts;
    for (size_t i = 0; i < in.keys.size(); ++i) {
        if (outcomes[i] != KeyOutcome::kConflict) continue;
        const KeyRow& k = in.keys[i];
        conflicts.push_back({k.partition, k.offset, "conflict",
                             "(source, id) = (" + k.source + ", " + k.id +
                                 ") was already billed with a different payload; the same call must not change",
                             k.payload});
    }
    if (!in.dead_letters.empty() || !conflicts.empty()) {
        tx.exec0(
            "CREATE TEMP TABLE batch_dead_letters (kafka_partition integer, kafka_offset bigint, reason_code text, "
            "reason text, raw bytea) ON COMMIT DROP");
        {
            CopyRows s(tx, "batch_dead_letters", {"kafka_partition", "kafka_offset", "reason_code", "reason", "raw"});
            for (const std::vector<DeadLetterRow>* list :
                 {&in.dead_letters, static_cast<const std::vector<DeadLetterRow>*>(&conflicts)}) {
                for (const DeadLetterRow& d : *list) {
                    s.Int(d.partition).Int(d.offset).Text(d.reason_code).Text(d.reason).Text(Hex(d.raw)).EndRow();
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
    for (const OffsetAdvance& a : in.offsets) {
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
    pqxx::work tx(impl_->Conn());
    // One folder at a time; another consumer folding now will take these too.
    if (!tx.exec1("SELECT pg_try_advisory_xact_lock(" + std::to_string(kFoldLock) + ")")[0].as<bool>()) return {};
    // The deltas are read whole and emptied with TRUNCATE, not deleted row
    // by row (which cost more than the upserts it saves). The exclusive
    // lock waits for the batches writing deltas now and holds new ones back
    // until the fold commits; a reader of usage_rollups sees the deltas or
    // their sums in rollups, never both or neither (a single statement, or
    // a READ COMMITTED transaction: TRUNCATE is not MVCC-safe for a
    // REPEATABLE READ snapshot taken before it).
    tx.exec0("LOCK TABLE rollup_deltas IN ACCESS EXCLUSIVE MODE");
    Fold fold;
    fold.deltas = tx.exec1("SELECT count(*) FROM rollup_deltas")[0].as<int64_t>();
    // Sorted, so the rows of rollups are locked in one order by everyone.
    pqxx::result r = tx.exec0(
        "INSERT INTO rollups AS u "
        "SELECT customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit, "
        "sum(quantity), sum(calls) FROM rollup_deltas "
        "GROUP BY customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit "
        "ORDER BY customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit "
        "ON CONFLICT (customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit) "
        "DO UPDATE SET quantity = u.quantity + EXCLUDED.quantity, calls = u.calls + EXCLUDED.calls");
    tx.exec0("TRUNCATE rollup_deltas");
    tx.commit();
    fold.rollups = static_cast<int64_t>(r.affected_rows());
    return fold;
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
                        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'event_archive' "
                        "AND c.relname < 'event_archive_' || to_char(now() - make_interval(days => $1), 'YYYYMMDD')",
                        archive_days)) {
        tx.exec0("DROP TABLE " + row[0].as<std::string>());
    }
    tx.commit();
    impl_->archive_days.clear();
    return deleted;
}

}  // namespace tally::ledger
