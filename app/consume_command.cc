// `tally consume`: Kafka consumer group -> rating -> one PostgreSQL
// transaction per batch (ledger/batch_writer.h). Wiring only: the pieces
// live in ingest/, pricing/ and ledger/.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "app/commands.h"
#include "ingest/consumer.h"
#include "ingest/event_decoder.h"
#include "ingest/event_key.h"
#include "ledger/batch_writer.h"
#include "ledger/store.h"
#include "pricing/rater.h"

namespace tally {

namespace {

std::atomic<bool> g_stop{false};
void OnStopSignal(int) {
    g_stop.store(true);
}

using Clock = std::chrono::steady_clock;

// Counters for the Prometheus endpoint.
struct Metrics {
    std::atomic<int64_t> consumed{0}, accepted{0}, duplicates{0}, batches{0};
    std::atomic<int64_t> batch_micros_total{0};
    std::mutex mu;
    std::map<std::string, int64_t> dead_letters;  // by reason code
    std::map<int32_t, int64_t> lag;
    std::map<int32_t, bool> stopped;

    std::string Render() {
        std::ostringstream out;
        out << "# TYPE tally_events_consumed_total counter\ntally_events_consumed_total " << consumed << "\n"
            << "# TYPE tally_events_accepted_total counter\ntally_events_accepted_total " << accepted << "\n"
            << "# TYPE tally_events_duplicate_total counter\ntally_events_duplicate_total " << duplicates << "\n"
            << "# TYPE tally_batch_seconds summary\ntally_batch_seconds_count " << batches << "\n"
            << "tally_batch_seconds_sum " << batch_micros_total / 1'000'000 << "." << (batch_micros_total % 1'000'000)
            << "\n# TYPE tally_dead_letters_total counter\n";
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& [reason, n] : dead_letters)
            out << "tally_dead_letters_total{reason=\"" << reason << "\"} " << n << "\n";
        out << "# TYPE tally_consumer_lag gauge\n";
        for (const auto& [p, n] : lag) out << "tally_consumer_lag{partition=\"" << p << "\"} " << n << "\n";
        out << "# TYPE tally_partition_stopped gauge\n";
        for (const auto& [p, s] : stopped)
            out << "tally_partition_stopped{partition=\"" << p << "\"} " << (s ? 1 : 0) << "\n";
        return out.str();
    }
};

// A minimal HTTP/1.0 server for GET /metrics on 127.0.0.1:port.
class MetricsServer {
   public:
    MetricsServer(int port, Metrics* metrics) : metrics_(metrics) {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<uint16_t>(port));
        if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 16) != 0) {
            throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port) + " for metrics");
        }
        thread_ = std::thread([this] { Serve(); });
    }
    ~MetricsServer() {
        shutdown(fd_, SHUT_RDWR);
        close(fd_);
        thread_.join();
    }

   private:
    void Serve() {
        for (;;) {
            int c = accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            char buf[1024];
            ssize_t n = read(c, buf, sizeof buf);
            std::string req(buf, n > 0 ? static_cast<size_t>(n) : 0);
            std::string body = req.rfind("GET /metrics", 0) == 0 ? metrics_->Render() : "see /metrics\n";
            std::string head =
                std::string(req.rfind("GET /metrics", 0) == 0 ? "HTTP/1.0 200 OK" : "HTTP/1.0 404 Not Found") +
                "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\n\r\n";
            std::string all = head + body;
            ssize_t written = write(c, all.data(), all.size());
            (void)written;
            close(c);
        }
    }
    int fd_ = -1;
    Metrics* metrics_;
    std::thread thread_;
};

void Log(const ConsumeOptions& o, const std::string& level, const std::string& message) {
    if (o.log_level == "error" && level != "error") return;
    if (o.log_level == "warn" && level == "info") return;
    auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    if (o.log_format == "json") {
        std::cerr << "{\"time\":\"" << FormatRfc3339(now) << "\",\"level\":\"" << level << "\",\"msg\":\"";
        for (char ch : message) {
            if (ch == '"' || ch == '\\') std::cerr << '\\';
            if (ch != '\n') std::cerr << ch;
        }
        std::cerr << "\"}" << std::endl;
    } else {
        std::cerr << FormatRfc3339(now) << " " << level << " " << message << std::endl;
    }
}

// Calls `fn` until it succeeds or a stop is asked, reconnecting with backoff
// when PostgreSQL is unreachable. Returns false when stopped.
template <typename Fn>
bool WithRetry(const ConsumeOptions& o, const char* what, Fn fn) {
    int delay_ms = 100;
    for (;;) {
        try {
            fn();
            return true;
        } catch (const ledger::FenceError&) {
            throw;
        } catch (const pqxx::broken_connection& e) {
            Log(o, "warn", std::string(what) + ": PostgreSQL unreachable, retrying: " + e.what());
        } catch (const pqxx::in_doubt_error& e) {
            Log(o, "warn", std::string(what) + ": commit in doubt, checking: " + e.what());
        } catch (const pqxx::sql_error& e) {
            // A server restarting answers with admin_shutdown / cannot_connect_now.
            Log(o, "warn", std::string(what) + ": " + e.what());
        }
        if (g_stop.load()) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        delay_ms = std::min(delay_ms * 2, 5000);
    }
}

// For --exit-when-idle --discard (offsets stay in memory): is every assigned
// partition read to its end?
bool CaughtUp(KafkaConsumer& consumer) {
    auto lag = consumer.Lag();
    auto parts = consumer.Partitions();
    bool done = !lag.empty();
    for (const auto& [p, n] : lag) done = done && (n == 0 || parts[p].stopped);
    return done;
}

// For --exit-when-idle: is every partition of the topic stored in the ledger
// up to the brokers' end (or stopped here)?
bool TopicBilled(const ConsumeOptions& o, KafkaConsumer& consumer, ledger::BatchWriter& writer) {
    std::map<int32_t, int64_t> ends = consumer.TopicEnds();
    if (ends.empty()) return false;
    std::vector<int32_t> all;
    for (const auto& [p, end] : ends) all.push_back(p);
    std::map<int32_t, int64_t> stored;
    if (!WithRetry(o, "reading offsets", [&] {
            try {
                stored = writer.StoredOffsets(all);
            } catch (const pqxx::broken_connection&) {
                writer.Reconnect();
                throw;
            }
        })) {
        return true;  // stopping
    }
    auto mine = consumer.Partitions();
    for (const auto& [p, end] : ends) {
        auto it = stored.find(p);
        const int64_t at = it == stored.end() ? 0 : it->second;
        auto own = mine.find(p);
        if (own != mine.end() && own->second.stopped) continue;
        if (at < end) return false;
    }
    return true;
}

// One batch, read and rated, on its way to the ledger: everything storing
// it needs, owned, so the next batch can be read and rated meanwhile.
struct Job {
    std::shared_ptr<const std::vector<RawMessage>> batch;  // input.keys and dead letters view these bytes
    ledger::BatchInput input;
    std::vector<std::vector<RatedPart>> parts_of_key;  // per input.keys
    std::shared_ptr<const ledger::StoredCatalog> cat;  // the catalog it was rated with
    std::map<int32_t, int64_t> next;                   // next offset per partition after it
    std::map<std::string, int64_t> dead_by_reason;
    int64_t in_batch_duplicates = 0;
    Clock::time_point t0;
};

struct JobOutcome {
    enum Status { kStored, kFenced, kStopped } status = kStored;
    ledger::BatchResult result;
    std::string fence_message;
    double seconds = 0;
};

// The rollup rows of the batch's new events (names, not the Rater's indices).
std::vector<ledger::RollupOut> RollupRowsOfNew(const Job& job, const std::vector<ledger::KeyOutcome>& outcomes) {
    const Catalog& catalog = job.cat->catalog;
    std::vector<Rollup> rollups;
    for (size_t i = 0; i < outcomes.size(); ++i) {
        if (outcomes[i] != ledger::KeyOutcome::kNew) continue;
        for (const RatedPart& part : job.parts_of_key[i]) {
            Rollup r;
            r.customer = job.input.keys[i].customer;
            r.cell = part.key.cell;
            r.cell.customer = 0;
            r.period = part.key.period;
            r.hour = part.key.hour;
            r.quantities = part.quantities;
            r.calls = 1;
            rollups.push_back(r);
        }
    }
    CanonicalizeRollups(&rollups);
    std::vector<ledger::RollupOut> rows;
    for (const Rollup& r : rollups) {
        const Plan& plan = catalog.plans[r.cell.plan];
        const PlanVersion& v = plan.versions[r.cell.version];
        for (size_t u = 0; u < kMaxUnits; ++u) {
            if (r.quantities[u] == 0) continue;
            ledger::RollupOut row;
            row.customer = r.customer;
            row.period = r.period;
            row.hour = r.hour;
            row.plan = plan.name;
            row.version = v.id;
            row.model = v.models[r.cell.model].name;
            row.band = r.cell.band;
            row.condition = r.cell.condition == kNone ? int16_t{-1} : int16_t{r.cell.condition};
            row.time_window = r.cell.window == kNone ? int16_t{-1} : int16_t{r.cell.window};
            row.flags = r.cell.flags;
            row.unit = catalog.units.Name(static_cast<UnitId>(u));
            row.quantity = r.quantities[u];
            row.calls = r.calls;
            rows.push_back(std::move(row));
        }
    }
    return rows;
}

// Stores one batch in one transaction, retrying while PostgreSQL is away.
// Runs on its own thread with its own connection.
JobOutcome StoreBatch(const ConsumeOptions& o, ledger::BatchWriter& writer, const Job& job) {
    JobOutcome out;
    const auto start = Clock::now();
    auto rollups_of_new = [&job](const std::vector<ledger::KeyOutcome>& outcomes) {
        return RollupRowsOfNew(job, outcomes);
    };
    const bool done = WithRetry(o, "storing a batch", [&] {
        try {
            out.result = writer.Commit(job.input, rollups_of_new);
            out.status = JobOutcome::kStored;
        } catch (const ledger::FenceError& f) {
            out.status = JobOutcome::kFenced;
            out.fence_message = f.what();
        } catch (const pqxx::broken_connection&) {
            writer.Reconnect();
            throw;
        } catch (const pqxx::in_doubt_error&) {
            writer.Reconnect();
            throw;
        }
    });
    if (!done) out.status = JobOutcome::kStopped;
    out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return out;
}

// The batch's share of each storing connection: partition p goes to
// connection p mod n. Null where a connection gets no partition. The counts
// of the whole batch (dead letters by reason, duplicates within it, its
// start) go with the first share. Takes the keys out of `job`.
std::vector<std::shared_ptr<Job>> SplitByPartition(Job& job, size_t n) {
    std::vector<std::shared_ptr<Job>> shares(n);
    auto share_of = [&](int32_t partition) -> Job& {
        auto& s = shares[static_cast<size_t>(partition) % n];
        if (!s) {
            s = std::make_shared<Job>();
            s->batch = job.batch;
            s->cat = job.cat;
            s->t0 = job.t0;
            s->input.archive = job.input.archive;
        }
        return *s;
    };
    for (size_t i = 0; i < job.input.keys.size(); ++i) {
        Job& s = share_of(job.input.keys[i].partition);
        s.input.keys.push_back(std::move(job.input.keys[i]));
        s.parts_of_key.push_back(std::move(job.parts_of_key[i]));
    }
    for (const auto& d : job.input.dead_letters) share_of(d.partition).input.dead_letters.push_back(d);
    for (const auto& a : job.input.offsets) share_of(a.partition).input.offsets.push_back(a);
    for (const auto& [p, next] : job.next) share_of(p).next[p] = next;
    for (auto& s : shares) {
        if (!s) continue;
        s->dead_by_reason = job.dead_by_reason;
        s->in_batch_duplicates = job.in_batch_duplicates;
        break;
    }
    return shares;
}

}  // namespace

int RunConsume(const ConsumeOptions& o, std::ostream& out, std::ostream& err) {
    const std::string url = DatabaseUrl(o.database_url);
    const std::string brokers = KafkaBrokers(o.brokers, o.bootstrap_file);
    if (url.empty() || brokers.empty()) {
        err << "tally consume: needs a database (--database-url or TALLY_DATABASE_URL) and brokers (--brokers, "
               "--bootstrap-file or TALLY_KAFKA_BROKERS)\n";
        return kExitUsage;
    }
    struct sigaction sa {};
    sa.sa_handler = OnStopSignal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    g_stop.store(false);

    std::vector<std::unique_ptr<ledger::BatchWriter>> writers;  // one per storing connection
    std::unique_ptr<ledger::Store> store;
    // A batch is stored by `writers`, each on its own thread and connection,
    // each its share of the partitions in its own transaction; everything
    // else that reads or writes the ledger uses `side`, one more connection.
    std::unique_ptr<ledger::BatchWriter> side;
    std::shared_ptr<const ledger::StoredCatalog> cat;  // a stored batch keeps the one it was rated with
    if (!WithRetry(o, "connecting", [&] {
            writers.clear();
            for (int i = 0; i < o.store_connections; ++i) {
                writers.push_back(std::make_unique<ledger::BatchWriter>(url, o.group, o.topic));
            }
            side = std::make_unique<ledger::BatchWriter>(url, o.group, o.topic);
            store = std::make_unique<ledger::Store>(url);
            cat = std::make_shared<const ledger::StoredCatalog>(store->Load());
        })) {
        return kExitOk;
    }
    if (cat->catalog.plans.empty()) {
        err << "tally consume: no published plans; run tally plan publish first\n";
        return kExitFailure;
    }
    auto reload = [&] {
        WithRetry(o, "loading plans", [&] { cat = std::make_shared<const ledger::StoredCatalog>(store->Load()); });
    };
    auto subscription_of = [&] {
        std::unordered_map<std::string, const Subscription*> m;
        for (const auto& s : cat->subscriptions) m[s.customer] = &s;
        return m;
    };
    auto subs = subscription_of();

    Metrics metrics;
    std::unique_ptr<MetricsServer> server;
    if (o.metrics_port > 0) server = std::make_unique<MetricsServer>(o.metrics_port, &metrics);

    // Next offsets after the batches handed to storing; forgotten for a
    // partition when it is (re)assigned or re-read from the ledger's offsets.
    std::map<int32_t, int64_t> pending_next;
    OffsetLookup lookup = [&](const std::vector<int32_t>& parts) {
        for (int32_t p : parts) pending_next.erase(p);
        std::map<int32_t, int64_t> stored;
        WithRetry(o, "reading offsets", [&] {
            try {
                stored = side->StoredOffsets(parts);
            } catch (const pqxx::broken_connection&) {
                side->Reconnect();
                throw;
            }
        });
        std::string list;
        for (int32_t p : parts) {
            list += " " + std::to_string(p) + "@" + (stored.count(p) ? std::to_string(stored[p]) : "start");
        }
        Log(o, "info", "assigned partitions (resuming from the ledger's offsets):" + list);
        return stored;
    };
    ConsumerOptions co;
    co.brokers = brokers;
    co.group = o.group;
    co.topic = o.topic;
    co.batch_max = o.batch_max;
    co.linger_ms = o.linger_ms;
    co.session_timeout_ms = o.session_timeout_ms;
    KafkaConsumer consumer(co, lookup);
    Log(o, "info", "consuming " + o.topic + " as group " + o.group + " from " + brokers + " into " + MaskSecret(url));

    EventDecoder decoder;
    Event event;
    std::string reason;
    auto last_expire = Clock::now() - std::chrono::hours(1);
    auto last_reload = Clock::now();
    // A stream of events from an unknown customer must not reload the plans
    // for every batch: a newly added customer is picked up within 2 s.
    auto last_unknown_reload = Clock::now() - std::chrono::seconds(10);
    auto idle_since = Clock::now();
    auto last_log = Clock::now();
    int64_t total_accepted = 0;
    double poll_s = 0, rate_s = 0, store_s = 0;      // where the time goes, for the summary
    std::optional<Clock::time_point> first_message;  // busy time: from the first batch polled
    Clock::time_point last_stored;                   // to the last one stored
    auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
    // Rollup rows appended since the last fold (see ledger/batch_writer.h).
    int64_t unfolded = 0;
    auto last_fold = Clock::now();
    auto fold = [&] {
        const auto start = Clock::now();
        WithRetry(o, "folding rollups", [&] {
            try {
                const ledger::BatchWriter::Fold done = side->FoldDeltas();
                char buf[160];
                std::snprintf(buf, sizeof buf, "folded %lld rollup delta rows into %lld rollups rows in %.2f s",
                              static_cast<long long>(done.deltas), static_cast<long long>(done.rollups),
                              seconds_since(start));
                Log(o, "info", buf);
            } catch (const pqxx::broken_connection&) {
                side->Reconnect();
                throw;
            }
        });
        unfolded = 0;
        last_fold = Clock::now();
    };
    auto take_stored = [&](const Job& job, const ledger::BatchResult& result) {
        consumer.Stored(job.next);
        last_stored = Clock::now();
        unfolded += result.rollup_deltas;
        total_accepted += result.accepted;
        metrics.accepted += result.accepted;
        metrics.duplicates += result.duplicates + job.in_batch_duplicates;
        metrics.batches += 1;
        metrics.batch_micros_total +=
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - job.t0).count();
        {
            std::lock_guard<std::mutex> lock(metrics.mu);
            for (const auto& [code, n] : job.dead_by_reason) metrics.dead_letters[code] += n;
            if (result.conflicts > 0) metrics.dead_letters["conflict"] += result.conflicts;
        }
        if (Clock::now() - last_log > std::chrono::seconds(5)) {
            Log(o, "info",
                "billed " + std::to_string(total_accepted) + " events so far; consumed " +
                    std::to_string(metrics.consumed.load()));
            last_log = Clock::now();
        }
    };
    // The batch being stored (in parts) while the next one is read and rated.
    std::vector<std::pair<std::shared_ptr<Job>, std::future<JobOutcome>>> inflight;
    bool stopping = false;
    // Waits for the batch being stored and takes its outcome in. False when
    // some part was not stored (fenced: its partitions are read again; stopped).
    auto finish = [&]() -> bool {
        bool all_stored = true;
        double longest = 0;  // the shares are stored at the same time
        for (auto& [job, future] : inflight) {
            JobOutcome done = future.get();
            longest = std::max(longest, done.seconds);
            if (done.status == JobOutcome::kStopped) {
                stopping = true;  // PostgreSQL away while stopping: the part is not stored, nothing is lost
                all_stored = false;
                continue;
            }
            if (done.status == JobOutcome::kFenced) {
                Log(o, "warn", done.fence_message + "; re-reading their offsets");
                std::vector<int32_t> again;
                for (const auto& [p, n] : job->next) again.push_back(p);
                consumer.Resync(again);
                pending_next.clear();
                all_stored = false;
                continue;
            }
            take_stored(*job, done.result);
        }
        store_s += longest;
        inflight.clear();
        return all_stored;
    };

    while (!g_stop.load() && !stopping) {
        const auto poll_start = Clock::now();
        std::vector<RawMessage> batch = consumer.PollBatch(g_stop);
        if (!batch.empty()) poll_s += seconds_since(poll_start);
        if (Clock::now() - last_expire > std::chrono::minutes(10)) {
            // Dedup keys past the window and archive days past retention.
            WithRetry(o, "expiring old dedup keys", [&] {
                try {
                    int64_t n = side->Expire(o.dedup_days, o.archive_days);
                    if (n > 0)
                        Log(o, "info",
                            "expired " + std::to_string(n) + " dedup keys older than " + std::to_string(o.dedup_days) +
                                " days");
                } catch (const pqxx::broken_connection&) {
                    side->Reconnect();
                    throw;
                }
            });
            last_expire = Clock::now();
        }
        if (unfolded > 0 && (Clock::now() - last_fold > std::chrono::seconds(30) || unfolded > 5'000'000)) {
            fold();
        }
        if (Clock::now() - last_reload > std::chrono::seconds(30)) {
            reload();
            subs = subscription_of();
            last_reload = Clock::now();
        }
        {
            auto lag = consumer.Lag();
            auto parts = consumer.Partitions();
            std::lock_guard<std::mutex> lock(metrics.mu);
            metrics.lag = lag;
            for (const auto& [p, st] : parts) metrics.stopped[p] = st.stopped;
        }
        if (batch.empty()) {
            finish();
            if (o.exit_when_idle_s > 0 && Clock::now() - idle_since > std::chrono::seconds(o.exit_when_idle_s)) {
                // Done when the ledger holds every partition of the topic up
                // to its end, whoever consumed it, or the partition is ours
                // and stopped (it waits for an operator: the exit code says
                // so). Partitions still held by a crashed member of the group
                // are waited for: they come to us when its session expires.
                if (o.discard ? CaughtUp(consumer) : TopicBilled(o, consumer, *side)) break;
                idle_since = Clock::now() - std::chrono::seconds(o.exit_when_idle_s) + std::chrono::seconds(1);
            }
            continue;
        }
        idle_since = Clock::now();
        const auto t0 = Clock::now();
        if (!first_message) first_message = poll_start;
        metrics.consumed += static_cast<int64_t>(batch.size());
        if (o.discard) {  // the ceiling of reading the topic; offsets stay in memory
            std::map<int32_t, int64_t> read;
            for (const RawMessage& m : batch) read[m.partition] = std::max(read[m.partition], m.offset + 1);
            consumer.Stored(read);
            last_stored = Clock::now();
            metrics.batches += 1;
            continue;
        }

        // Decode, check the customer, dedup within the batch, classify.
        auto job = std::make_shared<Job>();
        job->batch = std::make_shared<const std::vector<RawMessage>>(std::move(batch));
        job->t0 = t0;
        ledger::BatchInput& input = job->input;
        input.archive = o.archive;
        std::optional<Rater> rater;
        rater.emplace(cat->catalog, cat->subscriptions, cat->catalog.plans.front().name, PeriodRule{});
        std::unordered_map<Fingerprint, size_t, FingerprintHash> key_index;  // dedup key -> index in input.keys

        bool reloaded_for_unknown = false;  // at most once a batch, and every 2 s at most

        std::vector<RatedPart> parts;
        for (const RawMessage& m : *job->batch) {
            auto dead = [&](const char* code, const std::string& why) {
                input.dead_letters.push_back({m.partition, m.offset, code, why, m.payload});
                ++job->dead_by_reason[code];
            };
            if (!decoder.Decode(m.payload, &event, &reason)) {
                dead("invalid", reason);
                continue;
            }
            // JSON allows neither byte; the archive separates messages with 0x1E
            // and PostgreSQL text cannot hold NUL.
            const bool has_nul = std::memchr(m.payload.data(), 0, m.payload.size()) != nullptr;
            if (has_nul || std::memchr(m.payload.data(), 0x1e, m.payload.size()) != nullptr) {
                dead("invalid", std::string("the message contains the control character ") +
                                    (has_nul ? "NUL" : "0x1E") + ", which JSON does not allow");
                continue;
            }
            if (cat->customers.count(event.subject) == 0 && !reloaded_for_unknown &&
                Clock::now() - last_unknown_reload > std::chrono::seconds(2)) {
                reload();  // a customer added a moment ago
                subs = subscription_of();
                rater.emplace(cat->catalog, cat->subscriptions, cat->catalog.plans.front().name, PeriodRule{});
                reloaded_for_unknown = true;
                last_unknown_reload = Clock::now();
            }
            if (cat->customers.count(event.subject) == 0) {
                dead("unknown_customer", "unknown customer '" + event.subject + "': add it with tally customer add");
                continue;
            }
            if (subs.count(event.subject) == 0) {
                dead("no_subscription", "customer '" + event.subject + "' is on no plan: tally subscribe");
                continue;
            }
            const Fingerprint key = DedupKey(event.source, event.id);
            const Fingerprint hash = PayloadHash(m.payload);
            auto seen = key_index.find(key);
            if (seen != key_index.end()) {
                if (input.keys[seen->second].payload_hash == hash) {
                    ++job->in_batch_duplicates;
                } else {
                    dead("conflict", "(source, id) = (" + event.source + ", " + event.id +
                                         ") appears twice in a batch with different payloads");
                }
                continue;
            }
            RateOutcome outcome = rater->Classify(event, &parts);
            if (outcome.status != RateStatus::kRated) {
                dead("unpriced", outcome.reason);
                continue;
            }
            key_index.emplace(key, input.keys.size());
            input.keys.push_back(
                {key, hash, event.source, event.id, event.subject, event.time, m.partition, m.offset, m.payload});
            job->parts_of_key.push_back(parts);
        }
        job->cat = cat;  // after any reload above: the catalog the batch was rated with
        // Offsets: from where the batch before left each partition (stored,
        // or being stored) to after this batch's last message.
        for (const RawMessage& m : *job->batch) job->next[m.partition] = std::max(job->next[m.partition], m.offset + 1);
        auto states = consumer.Partitions();
        for (const auto& [p, n] : job->next) {
            auto pending = pending_next.find(p);
            const int64_t from = pending != pending_next.end() ? pending->second
                                 : states.count(p)             ? states[p].next_offset
                                                               : -1;
            input.offsets.push_back({p, from, n});
        }

        rate_s += seconds_since(t0);
        // Hand the batch to storing once the one before is stored.
        if (!finish()) {
            if (!stopping) {  // the batch before lost its partitions' race: read this one's again too
                std::vector<int32_t> again;
                for (const auto& [p, n] : job->next) again.push_back(p);
                consumer.Resync(again);
            }
            continue;
        }
        for (const auto& [p, n] : job->next) pending_next[p] = n;
        std::vector<std::shared_ptr<Job>> shares = SplitByPartition(*job, writers.size());
        for (size_t w = 0; w < shares.size(); ++w) {
            if (!shares[w]) continue;
            ledger::BatchWriter* writer = writers[w].get();
            std::shared_ptr<Job> share = shares[w];
            inflight.emplace_back(
                share, std::async(std::launch::async, [&o, writer, share] { return StoreBatch(o, *writer, *share); }));
        }
    }
    finish();
    if (unfolded > 0) fold();  // not needed for correctness: keeps rollup_deltas short
    int stopped = 0;
    for (const auto& [p, st] : consumer.Partitions()) stopped += st.stopped ? 1 : 0;
    consumer.Close();
    out << "consumed " << metrics.consumed.load() << " messages: " << metrics.accepted.load() << " billed, "
        << metrics.duplicates.load() << " duplicates, ";
    int64_t dead_total = 0;
    for (const auto& [code, n] : metrics.dead_letters) dead_total += n;
    out << dead_total << " dead letters";
    if (metrics.batches > 0) {
        char buf[256];
        const double busy = first_message ? std::chrono::duration<double>(last_stored - *first_message).count() : 0;
        std::snprintf(buf, sizeof buf,
                      " in %.2f s from the first batch to the last stored (%lld batches; seconds polling %.2f, "
                      "decoding and rating %.2f, storing %.2f)",
                      busy, static_cast<long long>(metrics.batches.load()), poll_s, rate_s, store_s);
        out << buf;
    }
    out << "\n";
    if (stopped > 0) {
        err << "tally consume: " << stopped << " partition(s) stopped: their stored offsets are no longer on the "
            << "broker (see tally offsets skip-gap)\n";
        return kExitFailure;
    }
    return kExitOk;
}

int RunSkipGap(const ConsumeOptions& o, int32_t partition, const std::string& by, std::ostream& out,
               std::ostream& err) {
    const std::string url = DatabaseUrl(o.database_url);
    const std::string brokers = KafkaBrokers(o.brokers, o.bootstrap_file);
    if (url.empty() || brokers.empty() || by.empty()) {
        err << "tally offsets skip-gap: needs a database, brokers, and --by NAME (who decided)\n";
        return kExitUsage;
    }
    try {
        auto [low, high] = QueryWatermarks(brokers, o.topic, partition);
        ledger::BatchWriter writer(url, o.group, o.topic);
        auto gap = writer.SkipGap(partition, low, by);
        if (!gap) {
            out << "nothing to skip: the stored offset of " << o.topic << " partition " << partition
                << " is still on the broker (earliest " << low << ", next " << high << ")\n";
            return kExitOk;
        }
        out << "skipped offsets " << gap->first << " to " << gap->second - 1 << " of " << o.topic << " partition "
            << partition << " for group " << o.group << "; recorded in offset_gaps. Restart the consumer.\n";
        return kExitOk;
    } catch (const std::exception& e) {
        err << "tally offsets skip-gap: " << e.what() << "\n";
        return kExitFailure;
    }
}

}  // namespace tally
