// Sends events to a Kafka topic, keyed by customer so that one customer's
// events stay on one partition. Idempotent producer, acks=all.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tally {

struct ProducerOptions {
    std::string brokers;  // bootstrap servers
    std::string topic;
    std::string compression = "lz4";  // none, gzip, snappy, lz4, zstd
    int64_t linger_ms = 5;
};

struct ProduceStats {
    int64_t sent = 0;       // handed to librdkafka
    int64_t delivered = 0;  // acknowledged by the brokers
    int64_t failed = 0;     // handed over, then permanently failed, with the last reason
    int64_t refused = 0;    // refused by librdkafka at once (e.g. larger than message.max.bytes)
    std::string last_error;
};

// One message that will not reach the topic, named by the id it was sent
// with (tally produce: its line number).
struct SendFailure {
    int64_t id = 0;
    std::string reason;
};

class EventProducer {
   public:
    explicit EventProducer(const ProducerOptions& options);  // throws kafka::KafkaError
    ~EventProducer();
    EventProducer(const EventProducer&) = delete;
    EventProducer& operator=(const EventProducer&) = delete;

    // Queues one message; waits while librdkafka's queue is full. False when
    // librdkafka refuses it at once; that failure, and a later delivery
    // failure, are kept with `id` for TakeFailures. Throws kafka::KafkaError
    // when the producer can send nothing more (a fatal error).
    bool Send(std::string_view key, std::string_view payload, int64_t id = 0);
    // Serves delivery reports without blocking.
    void Poll();
    // Waits up to `timeout_ms` for every queued message; returns the counts.
    ProduceStats Finish(int timeout_ms);
    const ProduceStats& stats() const;
    // The failures seen since the last call (refused at once, in the order
    // sent; delivery failures as Send, Poll and Finish serve their reports).
    std::vector<SendFailure> TakeFailures();

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally
