#include "ingest/producer.h"

#include "ingest/kafka.h"
#include "base/assert.h"

namespace tally {

struct EventProducer::Impl {
    kafka::HandlePtr handle;
    std::string topic;
    ProduceStats stats;
};

namespace {
void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    auto* stats = static_cast<ProduceStats*>(opaque);
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++stats->delivered;
    } else {
        ++stats->failed;
        stats->last_error = rd_kafka_err2str(msg->err);
    }
}
}  // namespace

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
    rd_kafka_conf_set_opaque(conf.get(), &impl_->stats);
    char err[512];
    impl_->handle.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err));
    if (!impl_->handle) throw kafka::KafkaError(std::string("cannot create a Kafka producer: ") + err);
    conf.release();
}

EventProducer::~EventProducer() = default;

void EventProducer::Send(std::string_view key, std::string_view payload) {
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(impl_->handle.get(), RD_KAFKA_V_TOPIC(impl_->topic.c_str()),
                                                  RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                                                  RD_KAFKA_V_VALUE(const_cast<char*>(payload.data()), payload.size()),
                                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            throw kafka::KafkaError(std::string("cannot produce to ") + impl_->topic + ": " + rd_kafka_err2str(e));
        }
        rd_kafka_poll(impl_->handle.get(), 50);  // let deliveries drain the queue
    }
    ++impl_->stats.sent;
}

void EventProducer::Poll() {
    rd_kafka_poll(impl_->handle.get(), 0);
}

ProduceStats EventProducer::Finish(int timeout_ms) {
    rd_kafka_flush(impl_->handle.get(), timeout_ms);
    rd_kafka_poll(impl_->handle.get(), 0);
    const ProduceStats& s = impl_->stats;
    TALLY_ASSERT(s.delivered + s.failed <= s.sent);
    return s;
}

const ProduceStats& EventProducer::stats() const {
    return impl_->stats;
}

}  // namespace tally
