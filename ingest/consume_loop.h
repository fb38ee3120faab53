// `tally consume` as a module: the loop poll -> assemble -> store, which
// owns its state (the Kafka consumer, the batch being stored while the next
// one is read and rated, the catalog snapshot, metrics). app/ only parses
// flags, builds the ledger's sinks and prints the summary.
//
// Failures of the sinks come classified (ingest/sink.h): retry and in-doubt
// are retried with backoff (bounded by give_up_after when the run is meant
// to end, --exit-when-idle), fenced batches are re-read, and a fatal error
// ends the run with its instruction. No single message can end it: each
// one becomes a billed call, a duplicate or a dead letter.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "ingest/consumer.h"
#include "ingest/sink.h"

namespace tally::ingest {

struct ConsumeLoopOptions {
    ConsumerOptions kafka;
    int store_connections = 1;  // batches stored in parallel, split by partition
    bool archive = true;
    int dedup_days = 35;
    int archive_days = 400;
    int metrics_port = 0;      // 0: no metrics endpoint
    int exit_when_idle_s = 0;  // 0: run until stopped
    // With exit_when_idle_s: give up (exit non-zero) when the ledger or the
    // brokers stay unreachable this long. A service (no exit_when_idle_s)
    // retries for as long as it runs.
    std::chrono::seconds give_up_after{60};
    std::chrono::milliseconds future_skew = std::chrono::hours(24);
    bool discard = false;  // benchmark ceiling: read and drop, store nothing
    std::string log_level = "info";
    std::string log_format = "text";
    std::string ledger_name;  // for the log: the database, secrets masked
};

struct ConsumeSummary {
    int64_t consumed = 0, accepted = 0, duplicates = 0, dead_letters = 0, batches = 0;
    double busy_s = 0, poll_s = 0, rate_s = 0, store_s = 0;
    int stopped_partitions = 0;  // stored offsets no longer on the broker
    std::string fatal;           // not empty: the run ended on this error (exit non-zero)
};

// Connects a new sink or catalog source (throws SinkError when it cannot).
using SinkFactory = std::function<std::unique_ptr<BatchSink>()>;
using CatalogFactory = std::function<std::unique_ptr<CatalogSource>()>;

// Runs until `stop` is set (SIGTERM, SIGINT), the topic is billed to its
// end and idle (exit_when_idle_s), or a fatal error. Logs to `log`.
ConsumeSummary RunConsumeLoop(const ConsumeLoopOptions& options, const SinkFactory& make_sink,
                              const CatalogFactory& make_catalog, const std::atomic<bool>& stop, std::ostream& log);

}  // namespace tally::ingest
