#include "ingest/consume_loop.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "base/assert.h"
#include "ingest/batch_assembler.h"

namespace tally::ingest {

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// Counters for the Prometheus endpoint: one dead-letter label per reason.
struct Metrics {
    std::atomic<int64_t> consumed{0}, accepted{0}, duplicates{0}, batches{0};
    std::atomic<int64_t> batch_micros_total{0};
    std::mutex mu;
    std::map<RejectReason, int64_t> dead_letters;
    std::map<int32_t, int64_t> lag;
    std::map<int32_t, bool> stopped;

    Metrics() {
        for (RejectReason r : kRejectReasons) dead_letters[r] = 0;
    }

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
            out << "tally_dead_letters_total{reason=\"" << RejectReasonCode(reason) << "\"} " << n << "\n";
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
            close(fd_);
            throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port) + " for metrics");
        }
        thread_ = std::thread([this] { Serve(); });
    }
    ~MetricsServer() {
        shutdown(fd_, SHUT_RDWR);
        close(fd_);
        thread_.join();
    }
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

   private:
    void Serve() {
        for (;;) {
            int c = accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            char buf[1024];
            ssize_t n = read(c, buf, sizeof buf);
            std::string req(buf, n > 0 ? static_cast<size_t>(n) : 0);
            const bool metrics = req.rfind("GET /metrics", 0) == 0;
            std::string body = metrics ? metrics_->Render() : "see /metrics\n";
            std::string head = std::string(metrics ? "HTTP/1.0 200 OK" : "HTTP/1.0 404 Not Found") +
                               "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n";
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

class Logger {
   public:
    Logger(const ConsumeLoopOptions& o, std::ostream& out) : o_(o), out_(out) {}
    void operator()(const std::string& level, const std::string& message) {
        if (o_.log_level == "error" && level != "error") return;
        if (o_.log_level == "warn" && level == "info") return;
        auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
        std::lock_guard<std::mutex> lock(mu_);
        if (o_.log_format == "json") {
            out_ << "{\"time\":\"" << FormatRfc3339(now) << "\",\"level\":\"" << level << "\",\"msg\":\"";
            for (char ch : message) {
                if (ch == '"' || ch == '\\') out_ << '\\';
                if (static_cast<unsigned char>(ch) >= 0x20) out_ << ch;
            }
            out_ << "\"}" << std::endl;
        } else {
            out_ << FormatRfc3339(now) << " " << level << " " << message << std::endl;
        }
    }

   private:
    const ConsumeLoopOptions& o_;
    std::ostream& out_;
    std::mutex mu_;
};

// "what: message", unless the message says what already.
std::string Prefixed(std::string_view what, std::string_view message) {
    if (message.substr(0, what.size()) == what) return std::string(message);
    return std::string(what) + ": " + std::string(message);
}

// Ends the run: a fatal sink error, or retries past give_up_after.
struct RunEnded {
    std::string message;
};

// Retries `fn` on retry and in-doubt errors with backoff (calling
// `reconnect` first), rethrows kFenced, ends the run on kFatal or when
// retrying lasts past `give_up` (when set). False when a stop was asked.
class Retrier {
   public:
    Retrier(Logger& log, const std::atomic<bool>& stop, const std::atomic<bool>& ending,
            std::optional<std::chrono::seconds> give_up)
        : log_(log), stop_(stop), ending_(ending), give_up_(give_up) {}

    template <typename Fn, typename Reconnect>
    bool Run(const char* what, Fn fn, Reconnect reconnect) {
        int delay_ms = 100;
        const auto start = Clock::now();
        for (;;) {
            try {
                fn();
                return true;
            } catch (const SinkError& e) {
                if (e.kind == SinkErrorKind::kFenced) throw;
                if (e.kind == SinkErrorKind::kFatal) throw RunEnded{Prefixed(what, e.what())};
                log_("warn", std::string(what) + (e.kind == SinkErrorKind::kInDoubt ? ": commit in doubt, checking: "
                                                                                    : ": retrying: ") +
                                 e.what());
                reconnect();
                if (give_up_ && Clock::now() - start > *give_up_) {
                    throw RunEnded{"gave up after " + std::to_string(give_up_->count()) + " s of retrying: " +
                                   Prefixed(what, e.what())};
                }
            }
            if (stop_.load() || ending_.load()) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
            delay_ms = std::min(delay_ms * 2, 5000);
        }
    }

   private:
    Logger& log_;
    const std::atomic<bool>& stop_;
    const std::atomic<bool>& ending_;  // the run is ending on an error: stop retrying
    std::optional<std::chrono::seconds> give_up_;
};

// One batch, assembled, on its way to the ledger: everything storing it
// needs, owned, so the next batch can be read and assembled meanwhile.
struct Job {
    std::shared_ptr<const std::vector<RawMessage>> messages;  // the batch's keys and dead letters view these bytes
    std::shared_ptr<const CatalogSnapshot> snapshot;          // the catalog it was rated with
    AssembledBatch assembled;
    std::map<int32_t, int64_t> next;     // next offset per partition after it
    std::map<int32_t, uint64_t> epochs;  // each partition's epoch when the batch was read
    Clock::time_point t0;
};

struct JobOutcome {
    enum Status { kStored, kFenced, kStopped, kEnded } status = kStored;
    StoreResult result;
    std::string message;  // fence or end
    double seconds = 0;
};

std::vector<RollupRecord> RecordsOf(const Job& job, const std::vector<KeyOutcome>& outcomes) {
    return NewCallRecords(job.snapshot->catalog, job.assembled, outcomes);
}

// The batch's share of each storing connection: partition p goes to
// connection p mod n. Null where a connection gets no partition.
std::vector<std::shared_ptr<Job>> SplitByPartition(Job& job, size_t n) {
    std::vector<std::shared_ptr<Job>> shares(n);
    auto share_of = [&](int32_t partition) -> Job& {
        auto& s = shares[static_cast<size_t>(partition) % n];
        if (!s) {
            s = std::make_shared<Job>();
            s->messages = job.messages;
            s->snapshot = job.snapshot;
            s->t0 = job.t0;
            s->assembled.batch.archive = job.assembled.batch.archive;
        }
        return *s;
    };
    Batch& batch = job.assembled.batch;
    for (size_t i = 0; i < batch.keys.size(); ++i) {
        Job& s = share_of(batch.keys[i].partition);
        s.assembled.batch.keys.push_back(std::move(batch.keys[i]));
        s.assembled.parts.push_back(std::move(job.assembled.parts[i]));
        s.assembled.served_models.push_back(std::move(job.assembled.served_models[i]));
        s.assembled.projects.push_back(std::move(job.assembled.projects[i]));
    }
    for (auto& d : batch.dead_letters) share_of(d.partition).assembled.batch.dead_letters.push_back(std::move(d));
    for (const auto& a : batch.offsets) share_of(a.partition).assembled.batch.offsets.push_back(a);
    for (const auto& [p, next] : job.next) {
        Job& s = share_of(p);
        s.next[p] = next;
        if (auto e = job.epochs.find(p); e != job.epochs.end()) s.epochs[p] = e->second;
    }
    return shares;
}

class Loop {
   public:
    Loop(const ConsumeLoopOptions& o, const SinkFactory& make_sink, const CatalogFactory& make_catalog,
         const std::atomic<bool>& stop, std::ostream& log_out)
        : o_(o),
          make_sink_(make_sink),
          make_catalog_(make_catalog),
          stop_(stop),
          log_(o, log_out),
          retry_(log_, stop, ending_, o.exit_when_idle_s > 0 ? std::optional(o.give_up_after) : std::nullopt) {}

    ConsumeSummary Run() {
        try {
            RunUntilDone();
        } catch (const RunEnded& e) {  // an empty message: stopped while connecting
            summary_.fatal = e.message;
            if (!e.message.empty()) log_("error", e.message);
            // A batch may be storing: its retries stop now, and it is waited
            // for (stored, or not and read again next time) before the close.
            ending_.store(true);
            for (auto& [job, future] : inflight_) {
                JobOutcome done = future.get();
                if (done.status == JobOutcome::kStored) TakeStored(*job, done.result);
            }
            inflight_.clear();
            TakeFold(/*wait=*/true);  // its retries stop too; a statement running ends first
        }
        // Every share handed to storing has ended (finish() waits for them)
        // before the consumer closes.
        if (consumer_) {
            for (const auto& [p, st] : consumer_->Partitions()) summary_.stopped_partitions += st.stopped ? 1 : 0;
            consumer_->Close();
        }
        summary_.consumed = metrics_.consumed.load();
        summary_.accepted = metrics_.accepted.load();
        summary_.duplicates = metrics_.duplicates.load();
        summary_.batches = metrics_.batches.load();
        std::lock_guard<std::mutex> lock(metrics_.mu);
        for (const auto& [r, n] : metrics_.dead_letters) summary_.dead_letters += n;
        return summary_;
    }

   private:
    void Connect() {
        const bool connected = retry_.Run(
            "connecting to the ledger",
            [&] {
                writers_.clear();
                for (int i = 0; i < o_.store_connections; ++i) writers_.push_back(make_sink_());
                side_ = make_sink_();
                catalog_source_ = make_catalog_();
                snapshot_ = std::make_shared<const CatalogSnapshot>(catalog_source_->Load());
            },
            [] {});
        if (!connected) throw RunEnded{};
        if (snapshot_->catalog.plans.empty()) throw RunEnded{"no published plans; run tally plan publish first"};
        NewAssembler();
    }

    void NewAssembler() {
        AssemblerOptions options;
        options.future_skew = o_.future_skew;
        options.shares = o_.store_connections;  // as SplitByPartition: repeats stay in their share
        assembler_ = std::make_unique<BatchAssembler>(*snapshot_, snapshot_->catalog.plans.front().name, options);
    }

    void Reload() {
        retry_.Run(
            "loading plans and customers",
            [&] {
                if (!catalog_source_) catalog_source_ = make_catalog_();
                snapshot_ = std::make_shared<const CatalogSnapshot>(catalog_source_->Load());
            },
            [&] { catalog_source_.reset(); });
        NewAssembler();
        last_reload_ = Clock::now();
    }

    template <typename Fn>
    void OnSide(const char* what, Fn fn) {
        retry_.Run(what, fn, [&] { side_->Reconnect(); });
    }

    std::map<int32_t, int64_t> Lookup(const std::vector<int32_t>& parts) {
        // Runs inside the consumer's rebalance callback: nothing may escape.
        for (int32_t p : parts) pending_next_.erase(p);
        std::map<int32_t, int64_t> stored;
        try {
            OnSide("reading offsets", [&] { stored = side_->StoredOffsets(parts); });
        } catch (const RunEnded& e) {
            ended_ = e.message;  // the loop ends before it stores anything of these partitions
        } catch (const SinkError& e) {
            ended_ = std::string("reading offsets: ") + e.what();
        }
        std::string list;
        for (int32_t p : parts) {
            list += " " + std::to_string(p) + "@" + (stored.count(p) ? std::to_string(stored[p]) : "start");
        }
        log_("info", "assigned partitions (resuming from the ledger's offsets):" + list);
        return stored;
    }

    // For --exit-when-idle: is every partition of the topic stored in the
    // ledger up to the brokers' end, whoever consumed it (or ours and stopped)?
    bool TopicBilled() {
        if (o_.discard) {  // offsets stay in memory: is every assigned partition read to its end?
            auto lag = consumer_->Lag();
            auto parts = consumer_->Partitions();
            bool done = !lag.empty();
            for (const auto& [p, n] : lag) done = done && (n == 0 || parts[p].stopped);
            return done;
        }
        std::map<int32_t, int64_t> ends = consumer_->TopicEnds();
        if (ends.empty()) {
            if (!brokers_silent_since_) brokers_silent_since_ = Clock::now();
            if (Clock::now() - *brokers_silent_since_ > o_.give_up_after) {
                throw RunEnded{"the brokers did not answer for " + std::to_string(o_.give_up_after.count()) +
                               " s: cannot tell whether the topic is billed"};
            }
            return false;
        }
        brokers_silent_since_.reset();
        std::vector<int32_t> all;
        for (const auto& [p, end] : ends) all.push_back(p);
        std::map<int32_t, int64_t> stored;
        OnSide("reading offsets", [&] { stored = side_->StoredOffsets(all); });
        auto mine = consumer_->Partitions();
        for (const auto& [p, end] : ends) {
            auto it = stored.find(p);
            const int64_t at = it == stored.end() ? 0 : it->second;
            auto own = mine.find(p);
            if (own != mine.end() && own->second.stopped) continue;
            if (at < end) return false;
        }
        return true;
    }

    // The fold runs beside the batches, on a connection of its own: it
    // takes no lock a batch or a reader of usage waits for
    // (BatchWriter::FoldDeltas), so billing goes on while it runs. One at a
    // time; deltas stored meanwhile wait for the next. A fold that fails is
    // logged and tried again at the next turn: it is not needed for
    // correctness (usage_rollups reads the deltas too).
    static constexpr int64_t kFoldEvery = 5'000'000;  // delta rows; or 30 s

    struct FoldOutcome {
        BatchSink::Fold done;
        double seconds = 0;
        std::string error;  // empty: folded
    };

    void StartFold() {
        TALLY_ASSERT(!fold_.valid());
        unfolded_ = 0;
        last_fold_ = Clock::now();
        fold_ = std::async(std::launch::async, [this] {
            FoldOutcome out;
            const auto start = Clock::now();
            try {
                const bool done = retry_.Run(
                    "folding rollups",
                    [&] {
                        if (!folder_) folder_ = make_sink_();
                        out.done = folder_->FoldDeltas();
                    },
                    [&] { folder_.reset(); });
                if (!done) out.error = "stopped";
            } catch (const RunEnded& e) {
                out.error = e.message.empty() ? std::string("stopped") : e.message;
            } catch (const std::exception& e) {
                out.error = e.what();
            }
            out.seconds = SecondsSince(start);
            return out;
        });
    }

    // Logs a fold that has ended; with `wait`, waits for one that runs.
    void TakeFold(bool wait) {
        if (!fold_.valid()) return;
        if (!wait && fold_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
        const FoldOutcome out = fold_.get();
        if (!out.error.empty()) {
            log_("warn", "folding rollups: " + out.error + " (tried again later)");
            return;
        }
        char buf[160];
        std::snprintf(buf, sizeof buf, "folded %lld rollup delta rows into %lld rollups rows in %.2f s",
                      static_cast<long long>(out.done.deltas), static_cast<long long>(out.done.rollups),
                      out.seconds);
        log_("info", buf);
    }

    void Housekeeping() {
        if (Clock::now() - last_expire_ > std::chrono::minutes(10)) {
            OnSide("expiring old dedup keys", [&] {
                const int64_t n = side_->Expire(o_.dedup_days, o_.archive_days);
                if (n > 0) {
                    log_("info", "expired " + std::to_string(n) + " dedup keys older than " +
                                     std::to_string(o_.dedup_days) + " days");
                }
            });
            last_expire_ = Clock::now();
        }
        TakeFold(/*wait=*/false);
        // A fold that falls behind the batches holds them back until it ends,
        // so the deltas stay bounded (a fold is slower while billing goes on).
        if (fold_.valid() && unfolded_ > kFoldEvery) TakeFold(/*wait=*/true);
        if (!fold_.valid() && unfolded_ > 0 &&
            (Clock::now() - last_fold_ > std::chrono::seconds(30) || unfolded_ > kFoldEvery)) {
            StartFold();
        }
        if (Clock::now() - last_reload_ > std::chrono::seconds(30)) Reload();
        auto lag = consumer_->Lag();
        auto parts = consumer_->Partitions();
        std::lock_guard<std::mutex> lock(metrics_.mu);
        metrics_.lag = lag;
        for (const auto& [p, st] : parts) metrics_.stopped[p] = st.stopped;
    }

    // Stores one share in one transaction, on its own thread and sink.
    JobOutcome Store(BatchSink& sink, const Job& job) {
        JobOutcome out;
        const auto start = Clock::now();
        try {
            const bool done = retry_.Run(
                "storing a batch",
                [&] {
                    out.result = sink.Store(job.assembled.batch, [&job](const std::vector<KeyOutcome>& outcomes) {
                        return RecordsOf(job, outcomes);
                    });
                },
                [&] { sink.Reconnect(); });
            out.status = done ? JobOutcome::kStored : JobOutcome::kStopped;
        } catch (const SinkError& fenced) {
            out.status = JobOutcome::kFenced;
            out.message = fenced.what();
        } catch (const RunEnded& e) {
            out.status = JobOutcome::kEnded;
            out.message = e.message;
        }
        out.seconds = SecondsSince(start);
        return out;
    }

    void TakeStored(const Job& job, const StoreResult& result) {
        consumer_->Stored(job.next, &job.epochs);
        last_stored_ = Clock::now();
        unfolded_ += result.rollup_deltas;
        total_accepted_ += result.accepted;
        metrics_.accepted += result.accepted;
        metrics_.duplicates += result.duplicates;
        metrics_.batches += 1;
        metrics_.batch_micros_total +=
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - job.t0).count();
        {
            std::lock_guard<std::mutex> lock(metrics_.mu);
            for (const DeadLetter& d : job.assembled.batch.dead_letters) ++metrics_.dead_letters[d.reason];
            metrics_.dead_letters[RejectReason::kConflict] += result.conflicts;
        }
        if (Clock::now() - last_log_ > std::chrono::seconds(5)) {
            log_("info", "billed " + std::to_string(total_accepted_) + " events so far; consumed " +
                             std::to_string(metrics_.consumed.load()));
            last_log_ = Clock::now();
        }
    }

    // Waits for the batch being stored. False when some share was not stored
    // (fenced: its partitions are read again; stopped).
    bool Finish() {
        bool all_stored = true;
        double longest = 0;  // the shares are stored at the same time
        std::string ended;
        for (auto& [job, future] : inflight_) {
            JobOutcome done = future.get();
            longest = std::max(longest, done.seconds);
            switch (done.status) {
                case JobOutcome::kStored: TakeStored(*job, done.result); break;
                case JobOutcome::kStopped: all_stored = false; break;  // not stored: nothing is lost
                case JobOutcome::kEnded:
                    ended = done.message;
                    all_stored = false;
                    break;
                case JobOutcome::kFenced: {
                    log_("warn", done.message + "; re-reading their offsets");
                    std::vector<int32_t> again;
                    for (const auto& [p, n] : job->next) again.push_back(p);
                    consumer_->Resync(again);
                    pending_next_.clear();
                    all_stored = false;
                    break;
                }
            }
        }
        summary_.store_s += longest;
        inflight_.clear();
        if (!ended.empty()) throw RunEnded{ended};
        return all_stored;
    }

    std::shared_ptr<Job> Assemble(std::vector<RawMessage> batch, Clock::time_point t0) {
        auto job = std::make_shared<Job>();
        job->messages = std::make_shared<const std::vector<RawMessage>>(std::move(batch));
        job->t0 = t0;
        std::vector<Message> messages;
        messages.reserve(job->messages->size());
        for (const RawMessage& m : *job->messages) messages.push_back({m.partition, m.offset, m.payload});
        const Instant now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
        assembler_->set_now(now);
        job->assembled = assembler_->Assemble(messages);
        // A customer added a moment ago: reload (every 2 s at most) and assemble again.
        bool unknown = false;
        for (const DeadLetter& d : job->assembled.batch.dead_letters) {
            unknown = unknown || d.reason == RejectReason::kUnknownCustomer || d.reason == RejectReason::kNoSubscription;
        }
        if (unknown && Clock::now() - last_unknown_reload_ > std::chrono::seconds(2)) {
            Reload();
            last_unknown_reload_ = Clock::now();
            assembler_->set_now(now);  // a new assembler: the same clock for the same batch
            job->assembled = assembler_->Assemble(messages);
        }
        job->snapshot = snapshot_;
        job->assembled.batch.archive = o_.archive;
        for (const RawMessage& m : *job->messages) job->next[m.partition] = std::max(job->next[m.partition], m.offset + 1);
        // Offsets: from where the batch before left each partition (stored,
        // or being stored) to after this batch's last message.
        auto states = consumer_->Partitions();
        for (const auto& [p, n] : job->next) {
            if (auto st = states.find(p); st != states.end()) job->epochs[p] = st->second.epoch;
            auto pending = pending_next_.find(p);
            const int64_t from = pending != pending_next_.end() ? pending->second
                                 : states.count(p)              ? states[p].next_offset
                                                                : -1;
            job->assembled.batch.offsets.push_back({p, from, n});
        }
        return job;
    }

    void RunUntilDone() {
        Connect();
        std::unique_ptr<MetricsServer> server;
        if (o_.metrics_port > 0) server = std::make_unique<MetricsServer>(o_.metrics_port, &metrics_);
        consumer_ = std::make_unique<KafkaConsumer>(
            o_.kafka, [this](const std::vector<int32_t>& parts) { return Lookup(parts); });
        log_("info", "consuming " + o_.kafka.topic + " as group " + o_.kafka.group + " from " + o_.kafka.brokers +
                         " into " + o_.ledger_name);
        auto idle_since = Clock::now();
        std::optional<Clock::time_point> first_message;
        while (!stop_.load()) {
            if (!ended_.empty()) throw RunEnded{ended_};
            const auto poll_start = Clock::now();
            std::vector<RawMessage> batch = consumer_->PollBatch(stop_);
            if (!ended_.empty()) throw RunEnded{ended_};
            if (!batch.empty()) summary_.poll_s += SecondsSince(poll_start);
            if (!o_.discard) Housekeeping();
            if (batch.empty()) {
                Finish();
                if (o_.exit_when_idle_s > 0 && Clock::now() - idle_since > std::chrono::seconds(o_.exit_when_idle_s)) {
                    // Partitions still held by a crashed member of the group
                    // are waited for: they come to us when its session expires.
                    if (TopicBilled()) break;
                    idle_since = Clock::now() - std::chrono::seconds(o_.exit_when_idle_s) + std::chrono::seconds(1);
                }
                continue;
            }
            idle_since = Clock::now();
            const auto t0 = Clock::now();
            if (!first_message) first_message = poll_start;
            metrics_.consumed += static_cast<int64_t>(batch.size());
            if (o_.discard) {  // the ceiling of reading the topic; offsets stay in memory
                std::map<int32_t, int64_t> read;
                for (const RawMessage& m : batch) read[m.partition] = std::max(read[m.partition], m.offset + 1);
                consumer_->Stored(read);
                last_stored_ = Clock::now();
                metrics_.batches += 1;
                continue;
            }
            std::shared_ptr<Job> job = Assemble(std::move(batch), t0);
            summary_.rate_s += SecondsSince(t0);
            // Hand the batch to storing once the one before is stored.
            if (!Finish()) {
                if (!stop_.load()) {  // the batch before lost its partitions' race: read this one's again too
                    std::vector<int32_t> again;
                    for (const auto& [p, n] : job->next) again.push_back(p);
                    consumer_->Resync(again);
                }
                continue;
            }
            for (const auto& [p, n] : job->next) pending_next_[p] = n;
            std::vector<std::shared_ptr<Job>> shares = SplitByPartition(*job, writers_.size());
            for (size_t w = 0; w < shares.size(); ++w) {
                if (!shares[w]) continue;
                BatchSink* writer = writers_[w].get();
                std::shared_ptr<Job> share = shares[w];
                inflight_.emplace_back(share,
                                       std::async(std::launch::async, [this, writer, share] { return Store(*writer, *share); }));
            }
        }
        Finish();
        TakeFold(/*wait=*/true);
        if (unfolded_ > 0 && !stop_.load()) {  // not needed for correctness: keeps the deltas short
            StartFold();
            TakeFold(/*wait=*/true);
        }
        if (first_message && metrics_.batches > 0) {
            summary_.busy_s = std::chrono::duration<double>(last_stored_ - *first_message).count();
        }
    }

    const ConsumeLoopOptions& o_;
    const SinkFactory& make_sink_;
    const CatalogFactory& make_catalog_;
    const std::atomic<bool>& stop_;
    std::atomic<bool> ending_{false};
    Logger log_;
    Retrier retry_;
    Metrics metrics_;
    ConsumeSummary summary_;

    std::vector<std::unique_ptr<BatchSink>> writers_;  // one per storing connection
    std::unique_ptr<BatchSink> side_;                   // offsets, folds, expiry
    std::unique_ptr<CatalogSource> catalog_source_;
    std::shared_ptr<const CatalogSnapshot> snapshot_;  // a stored batch keeps the one it was rated with
    std::unique_ptr<BatchAssembler> assembler_;
    std::unique_ptr<KafkaConsumer> consumer_;
    std::vector<std::pair<std::shared_ptr<Job>, std::future<JobOutcome>>> inflight_;
    std::unique_ptr<BatchSink> folder_;  // the fold's connection, used by the fold's task only
    std::future<FoldOutcome> fold_;      // after folder_: destroyed (waited for) first
    // Next offsets after the batches handed to storing; forgotten for a
    // partition when it is (re)assigned or re-read from the ledger's offsets.
    std::map<int32_t, int64_t> pending_next_;
    std::string ended_;  // set in the rebalance callback: a fatal error there

    Clock::time_point last_expire_ = Clock::now() - std::chrono::hours(1);
    Clock::time_point last_reload_ = Clock::now();
    Clock::time_point last_unknown_reload_ = Clock::now() - std::chrono::seconds(10);
    Clock::time_point last_fold_ = Clock::now();
    Clock::time_point last_log_ = Clock::now();
    Clock::time_point last_stored_;
    std::optional<Clock::time_point> brokers_silent_since_;
    int64_t unfolded_ = 0;
    int64_t total_accepted_ = 0;
};

}  // namespace

ConsumeSummary RunConsumeLoop(const ConsumeLoopOptions& options, const SinkFactory& make_sink,
                              const CatalogFactory& make_catalog, const std::atomic<bool>& stop, std::ostream& log) {
    Loop loop(options, make_sink, make_catalog, stop, log);
    return loop.Run();
}

}  // namespace tally::ingest
