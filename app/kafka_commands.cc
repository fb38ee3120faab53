#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include "app/commands.h"
#include "base/assert.h"
#include "ingest/dev_broker.h"
#include "ingest/event_decoder.h"
#include "ingest/producer.h"
#include "ingest/synthetic.h"
#include "pricing/decimal.h"

namespace tally {

namespace {

// Writes `text` to `path` atomically (write a temporary file, rename it), so
// a reader polling for the file never sees it half written.
bool WriteFileAtomically(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << text << "\n";
        if (!out) return false;
    }
    return std::rename(tmp.c_str(), path.c_str()) == 0;
}

std::optional<int64_t> PerMillion(const std::string& fraction) {
    auto d = Decimal::Parse(fraction);
    if (!d || d->is_negative() || *d > Decimal::FromInt(1)) return std::nullopt;
    return static_cast<int64_t>(d->MulInt(1'000'000).raw() / Decimal::kOne);
}

}  // namespace

int RunDevKafka(const DevKafkaOptions& o, std::ostream& out, std::ostream& err) {
    DevBrokerOptions options;
    options.brokers = o.brokers;
    options.replication = o.brokers;
    for (const auto& spec : o.topics) {
        auto colon = spec.rfind(':');
        int partitions = 0;
        try {
            partitions = colon == std::string::npos ? 0 : std::stoi(spec.substr(colon + 1));
        } catch (const std::exception&) {
        }
        if (colon == std::string::npos || colon == 0 || partitions < 1 || partitions > 1024) {
            err << "tally dev-kafka: --topic takes NAME:PARTITIONS (1..1024), not '" << spec << "'\n";
            return kExitUsage;
        }
        options.topics.emplace_back(spec.substr(0, colon), partitions);
    }
    // Block the stop signals before librdkafka starts its threads, so that
    // only this thread receives them, in sigtimedwait below.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    DevBroker broker(options);
    const std::string bootstrap = broker.bootstrap_servers();
    out << "dev Kafka cluster: " << o.brokers << " brokers at " << bootstrap << "; topics:";
    for (const auto& [name, partitions] : options.topics) out << " " << name << "(" << partitions << ")";
    out << "\nstop with SIGTERM or Ctrl-C" << std::endl;
    if (!o.bootstrap_file.empty() && !WriteFileAtomically(o.bootstrap_file, bootstrap)) {
        err << "tally dev-kafka: cannot write " << o.bootstrap_file << "\n";
        return kExitFailure;
    }
    int control = -1;
    if (!o.control_fifo.empty()) {
        unlink(o.control_fifo.c_str());
        if (mkfifo(o.control_fifo.c_str(), 0600) != 0 ||
            (control = open(o.control_fifo.c_str(), O_RDWR | O_NONBLOCK)) < 0) {
            err << "tally dev-kafka: cannot create the control FIFO " << o.control_fifo << ": " << std::strerror(errno)
                << "\n";
            return kExitFailure;
        }
    }
    std::string pending;
    for (;;) {
        timespec tick{0, 100'000'000};
        int sig = sigtimedwait(&stop, nullptr, &tick);
        if (sig == SIGINT || sig == SIGTERM) break;
        if (control < 0) continue;
        char buf[4096];
        ssize_t n;
        while ((n = read(control, buf, sizeof buf)) > 0) pending.append(buf, static_cast<size_t>(n));
        for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            if (line.empty()) continue;
            std::string problem = broker.Control(line);
            err << "dev-kafka control: " << line << (problem.empty() ? ": done" : ": " + problem) << std::endl;
        }
    }
    if (control >= 0) {
        close(control);
        unlink(o.control_fifo.c_str());
    }
    if (!o.bootstrap_file.empty()) std::remove(o.bootstrap_file.c_str());
    out << "dev Kafka cluster stopped" << std::endl;
    return kExitOk;
}

int RunProduce(const ProduceOptions& o, std::ostream& out, std::ostream& err) {
    const std::string brokers = KafkaBrokers(o.brokers, o.bootstrap_file);
    if (brokers.empty() && o.output.empty()) {
        err << "tally produce: no brokers: give --brokers, --bootstrap-file or TALLY_KAFKA_BROKERS\n";
        return kExitUsage;
    }
    if (o.file.empty() == (o.synthetic <= 0)) {
        err << "tally produce: give either --file EVENTS.jsonl or --synthetic N\n";
        return kExitUsage;
    }
    SyntheticOptions syn;
    if (o.synthetic > 0) {
        auto dup = PerMillion(o.duplicates);
        auto bad = PerMillion(o.malformed);
        if (!dup || !bad) {
            err << "tally produce: --duplicates and --malformed are fractions from 0 to 1, like 0.01\n";
            return kExitUsage;
        }
        syn.count = o.synthetic;
        syn.customers = o.customers;
        syn.models = o.models;
        syn.seed = o.seed;
        syn.duplicates_per_million = *dup;
        syn.malformed_per_million = *bad;
        syn.span_ms = o.span_seconds * 1000;
        if (!o.start.empty()) {
            auto t = ParseRfc3339(o.start);
            if (!t) {
                err << "tally produce: --start must be an RFC 3339 instant\n";
                return kExitUsage;
            }
            syn.start = *t;
        }
        if (syn.customers < 1 || syn.models.empty() || syn.span_ms < 0) {
            err << "tally produce: --customers must be at least 1 and --models not empty\n";
            return kExitUsage;
        }
    }
    if (!o.output.empty()) {  // write the messages to a file instead
        if (o.synthetic <= 0) {
            err << "tally produce: --output goes with --synthetic\n";
            return kExitUsage;
        }
        std::ofstream file(o.output, std::ios::trunc);
        SyntheticEvents gen(syn);
        std::string json, key;
        bool bad = false;
        int64_t n = 0, bad_count = 0;
        while (gen.Next(&json, &key, &bad)) {
            file << json << "\n";
            ++n;
            bad_count += bad ? 1 : 0;
        }
        if (!file) {
            err << "tally produce: cannot write " << o.output << "\n";
            return kExitFailure;
        }
        out << "wrote " << n << " messages to " << o.output << " (" << bad_count << " malformed on purpose)\n";
        return kExitOk;
    }
    const bool skip_refused = o.on_error == "skip";
    if (!skip_refused && o.on_error != "stop") {
        err << "tally produce: --on-error takes skip or stop, not '" << o.on_error << "'\n";
        return kExitUsage;
    }
    ProducerOptions po;
    po.brokers = brokers;
    po.topic = o.topic;
    po.compression = o.compression;
    EventProducer producer(po);
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    int64_t malformed = 0;
    auto pace = [&](int64_t sent) {
        if (o.rate <= 0 || sent % 256 != 0) return;
        auto due = t0 + std::chrono::microseconds(sent * 1'000'000 / o.rate);
        if (due > Clock::now()) std::this_thread::sleep_until(due);
    };
    // Each message goes with its line number (synthetic: its number), so a
    // refusal, at once or in a later delivery report, names it.
    int64_t refused = 0;
    auto report_refused = [&] {
        for (const SendFailure& f : producer.TakeFailures()) {
            if (o.synthetic > 0) {
                err << "synthetic message " << f.id << ": " << f.reason << "\n";
            } else {
                err << o.file << ":" << f.id << ": " << f.reason << "\n";
            }
            ++refused;
        }
    };
    int64_t read = 0;  // lines read (synthetic: messages made)
    auto send = [&](const std::string& k, const std::string& payload) {
        producer.Send(k, payload, read);
        pace(producer.stats().sent);
        if (read % 64 == 0) producer.Poll();
        report_refused();
        return skip_refused || refused == 0;  // go on?
    };
    std::string json, key;
    if (o.synthetic > 0) {
        SyntheticEvents gen(syn);
        bool bad = false;
        while (gen.Next(&json, &key, &bad)) {
            ++read;
            malformed += bad ? 1 : 0;
            if (!send(key, json)) break;
        }
    } else {
        std::ifstream in(o.file, std::ios::binary);
        if (!in) {
            err << "tally produce: cannot open " << o.file << "\n";
            return kExitFailure;
        }
        EventDecoder decoder;
        Event event;
        std::string reason;
        while (std::getline(in, json)) {
            ++read;
            if (!json.empty() && json.back() == '\r') json.pop_back();
            if (json.find_first_not_of(" \t") == std::string::npos) continue;
            // Key by customer; a line that does not decode is still sent (the
            // consumer makes it a dead letter), with an empty key.
            bool ok = decoder.Decode(json, &event, &reason);
            malformed += ok ? 0 : 1;
            if (!send(ok ? event.subject : std::string(), json)) break;
        }
    }
    const bool stopped_early = !skip_refused && refused > 0;  // refusals seen later stop nothing
    ProduceStats s = producer.Finish(60'000);
    report_refused();
    TALLY_ASSERT(refused == s.refused + s.failed);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    out << "sent " << s.sent << " messages to " << o.topic << " (" << malformed
        << " malformed on purpose or in the file)"
        << ", delivered " << s.delivered << ", failed " << s.failed << ", "
        << static_cast<int64_t>(static_cast<double>(s.sent) / (seconds > 0 ? seconds : 1)) << " messages/s\n";
    const int64_t unknown = s.sent - s.delivered - s.failed;  // still queued when Finish gave up
    if (unknown > 0) {
        err << "tally produce: " << unknown << " messages were neither delivered nor refused within 60 s"
            << (s.last_error.empty() ? "" : "; last error: " + s.last_error) << "\n";
    }
    if (refused > 0) {
        err << "tally produce: ";
        if (stopped_early) err << "stopped after " << (o.synthetic > 0 ? "message " : o.file + ":") << read << ": ";
        err << s.delivered << " sent, " << refused << " refused";
        if (stopped_early) {
            err << "; nothing after it was sent (--on-error skip sends the other "
                << (o.synthetic > 0 ? "messages" : "lines") << ")";
        }
        err << "\n";
    }
    if (unknown > 0 || (refused > 0 && !skip_refused)) return kExitFailure;
    return refused > 0 ? kExitPartial : kExitOk;
}

}  // namespace tally
