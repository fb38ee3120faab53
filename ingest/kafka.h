// Kafka plumbing shared by the dev broker, the producer and (later) the
// consumer: RAII handles over librdkafka's C API and configuration helpers.
// Only ingest/ includes this header; librdkafka stays out of other modules.
#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tally::kafka {

struct KafkaError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct ConfDeleter {
    void operator()(rd_kafka_conf_t* p) const { rd_kafka_conf_destroy(p); }
};
struct HandleDeleter {
    void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
};
struct TopicDeleter {
    void operator()(rd_kafka_topic_t* p) const { rd_kafka_topic_destroy(p); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;

// Configuration keys Tally sets, named once.
inline constexpr const char* kBootstrapServers = "bootstrap.servers";
inline constexpr const char* kLingerMs = "linger.ms";
inline constexpr const char* kBatchSize = "batch.size";
inline constexpr const char* kAcks = "acks";
inline constexpr const char* kIdempotence = "enable.idempotence";
inline constexpr const char* kCompression = "compression.type";
inline constexpr const char* kPartitioner = "partitioner";

// A configuration with `settings` applied; throws KafkaError naming the key.
ConfPtr MakeConf(const std::vector<std::pair<std::string, std::string>>& settings);

}  // namespace tally::kafka
