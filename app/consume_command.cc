// `tally consume`: flags in, the summary out. The loop lives in
// ingest/consume_loop.h; the ledger's sinks in ledger/batch_writer.h.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <iostream>

#include "app/commands.h"
#include "ingest/consume_loop.h"
#include "ledger/batch_writer.h"
#include "ledger/store.h"

namespace tally {

namespace {

std::atomic<bool> g_stop{false};
void OnStopSignal(int) {
    g_stop.store(true);
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

    ingest::ConsumeLoopOptions lo;
    lo.kafka.brokers = brokers;
    lo.kafka.group = o.group;
    lo.kafka.topic = o.topic;
    lo.kafka.batch_max = o.batch_max;
    lo.kafka.linger_ms = o.linger_ms;
    lo.kafka.session_timeout_ms = o.session_timeout_ms;
    lo.store_connections = o.store_connections;
    lo.archive = o.archive;
    lo.dedup_days = o.dedup_days;
    lo.archive_days = o.archive_days;
    lo.metrics_port = o.metrics_port;
    lo.exit_when_idle_s = o.exit_when_idle_s;
    lo.give_up_after = std::chrono::seconds(o.give_up_after_s);
    lo.future_skew = std::chrono::seconds(o.future_skew_s);
    lo.discard = o.discard;
    lo.log_level = o.log_level;
    lo.log_format = o.log_format;
    lo.ledger_name = MaskSecret(url);
    const ingest::SinkFactory make_sink = [&]() -> std::unique_ptr<ingest::BatchSink> {
        return std::make_unique<ledger::BatchWriter>(url, o.group, o.topic);
    };
    const ingest::CatalogFactory make_catalog = [&]() -> std::unique_ptr<ingest::CatalogSource> {
        return std::make_unique<ledger::Store>(url);
    };
    ingest::ConsumeSummary s;
    try {
        s = ingest::RunConsumeLoop(lo, make_sink, make_catalog, g_stop, err);
    } catch (const std::exception& e) {  // the brokers refused the consumer's configuration, a metrics port in use
        err << "tally consume: " << e.what() << "\n";
        return kExitFailure;
    }
    out << "consumed " << s.consumed << " messages: " << s.accepted << " billed, " << s.duplicates
        << " duplicates, " << s.dead_letters << " dead letters";
    if (s.batches > 0) {
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      " in %.2f s from the first batch to the last stored (%lld batches; seconds polling %.2f, "
                      "decoding and rating %.2f, storing %.2f)",
                      s.busy_s, static_cast<long long>(s.batches), s.poll_s, s.rate_s, s.store_s);
        out << buf;
    }
    out << "\n";
    if (!s.fatal.empty()) {
        err << "tally consume: " << s.fatal << "\n";
        return kExitFailure;
    }
    if (s.stopped_partitions > 0) {
        err << "tally consume: " << s.stopped_partitions << " partition(s) stopped: their stored offsets are no "
            << "longer on the broker (see tally offsets skip-gap)\n";
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
