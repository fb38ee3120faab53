// Sends events to a Kafka topic, keyed by customer so that one customer's
// events stay on one partition. Idempotent producer, acks=all.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

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
    int64_t failed = 0;     // permanently failed, with the last reason
    std::string last_error;
};

class EventProducer {
   public:
    explicit EventProducer(const ProducerOptions& options);  // throws kafka::KafkaError
    ~EventProducer();
    EventProducer(const EventProducer&) = delete;
    EventProducer& operator=(const EventProducer&) = delete;

    // Queues one message; waits while librdkafka's queue is full.
    void Send(std::string_view key, std::string_view payload);
    // Serves delivery reports without blocking.
    void Poll();
    // Waits up to `timeout_ms` for every queued message; returns the counts.
    ProduceStats Finish(int timeout_ms);
    const ProduceStats& stats() const;

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally
