#include "ingest/producer.h"

#include <cstdint>

#include "base/assert.h"
#include "ingest/kafka.h"

namespace tally {

namespace {

// What the delivery reports say; librdkafka calls OnDelivery from Send,
// Poll and Finish, on the caller's thread.
struct Deliveries {
    ProduceStats stats;
    std::vector<SendFailure> failures;
};

// A message's id travels with it as its opaque pointer-sized value.
void* IdToOpaque(int64_t id) {
    return reinterpret_cast<void*>(static_cast<std::intptr_t>(id));
}
int64_t IdFromOpaque(void* opaque) {
    return static_cast<int64_t>(reinterpret_cast<std::intptr_t>(opaque));
}
static_assert(sizeof(std::intptr_t) >= sizeof(int64_t), "a message id must fit in librdkafka's opaque");

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    auto* d = static_cast<Deliveries*>(opaque);
    TALLY_ASSERT(d != nullptr);
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++d->stats.delivered;
    } else {
        ++d->stats.failed;
        d->stats.last_error = rd_kafka_err2str(msg->err);
        d->failures.push_back({IdFromOpaque(msg->_private), d->stats.last_error});
    }
    TALLY_ASSERT(d->stats.delivered + d->stats.failed <= d->stats.sent);
}

}  // namespace

struct EventProducer::Impl {
    kafka::HandlePtr handle;
    std::string topic;
    std::string message_max_bytes;  // librdkafka's limit on a message with its key
    Deliveries deliveries;
};

EventProducer::EventProducer(const ProducerOptions& o) : impl_(std::make_unique<Impl>()) {
    impl_->topic = o.topic;
    kafka::ConfPtr conf = kafka::MakeConf({
        {kafka::kBootstrapServers, o.brokers},
        {kafka::kLingerMs, std::to_string(o.linger_ms)},
        {kafka::kBatchSize, "1000000"},
        {kafka::kAcks, "all"},
        {kafka::kIdempotence, "true"},
        {kafka::kCompression, o.compression},
        {kafka::kPartitioner, "murmur2_random"},  // the Java client's, so other producers agree
        {"queue.buffering.max.messages", "1000000"},
    });
    rd_kafka_conf_set_dr_msg_cb(conf.get(), OnDelivery);
    rd_kafka_conf_set_opaque(conf.get(), &impl_->deliveries);
    char err[512];
    impl_->handle.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err));
    if (!impl_->handle) throw kafka::KafkaError(std::string("cannot create a Kafka producer: ") + err);
    conf.release();
    char max[32];
    size_t max_size = sizeof max;
    if (rd_kafka_conf_get(rd_kafka_conf(impl_->handle.get()), "message.max.bytes", max, &max_size) ==
        RD_KAFKA_CONF_OK) {
        impl_->message_max_bytes = max;
    }
}

EventProducer::~EventProducer() = default;

bool EventProducer::Send(std::string_view key, std::string_view payload, int64_t id) {
    ProduceStats& stats = impl_->deliveries.stats;
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(impl_->handle.get(), RD_KAFKA_V_TOPIC(impl_->topic.c_str()),
                                                  RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                                                  RD_KAFKA_V_VALUE(const_cast<char*>(payload.data()), payload.size()),
                                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                                  RD_KAFKA_V_OPAQUE(IdToOpaque(id)), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(impl_->handle.get(), 50);  // let deliveries drain the queue
            continue;
        }
        if (e == RD_KAFKA_RESP_ERR__FATAL) {
            char reason[512];
            rd_kafka_fatal_error(impl_->handle.get(), reason, sizeof reason);
            throw kafka::KafkaError("cannot produce to " + impl_->topic + ": " + reason);
        }
        // This message only (too large, say): the next one may go.
        std::string reason = rd_kafka_err2str(e);
        if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
            reason += " (" + std::to_string(key.size() + payload.size()) +
                      " bytes with its key; message.max.bytes is " +
                      (impl_->message_max_bytes.empty() ? "?" : impl_->message_max_bytes) + ")";
        }
        ++stats.refused;
        stats.last_error = reason;
        impl_->deliveries.failures.push_back({id, std::move(reason)});
        return false;
    }
    ++stats.sent;
    return true;
}

void EventProducer::Poll() {
    rd_kafka_poll(impl_->handle.get(), 0);
}

ProduceStats EventProducer::Finish(int timeout_ms) {
    rd_kafka_flush(impl_->handle.get(), timeout_ms);
    rd_kafka_poll(impl_->handle.get(), 0);
    const ProduceStats& s = impl_->deliveries.stats;
    TALLY_ASSERT(s.delivered + s.failed <= s.sent);
    TALLY_ASSERT(s.refused >= 0);
    return s;
}

const ProduceStats& EventProducer::stats() const {
    return impl_->deliveries.stats;
}

std::vector<SendFailure> EventProducer::TakeFailures() {
    std::vector<SendFailure> taken;
    taken.swap(impl_->deliveries.failures);
    return taken;
}

}  // namespace tally
