// A development Kafka cluster: librdkafka's mock cluster, a real
// Kafka-protocol broker inside this process on loopback ports. For the
// quickstart, tests and benchmarks; production uses a real Kafka cluster.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tally {

struct DevBrokerOptions {
    int brokers = 3;
    std::vector<std::pair<std::string, int>> topics;  // name, partitions
    int replication = 1;                              // capped at `brokers`
};

class DevBroker {
   public:
    explicit DevBroker(const DevBrokerOptions& options);  // throws kafka::KafkaError
    ~DevBroker();
    DevBroker(const DevBroker&) = delete;
    DevBroker& operator=(const DevBroker&) = delete;

    // "127.0.0.1:port,127.0.0.1:port,..."
    std::string bootstrap_servers() const;

    // Fault injection for tests. A control line is one of:
    //   down BROKER | up BROKER | err API_KEY COUNT ERROR_CODE |
    //   leader TOPIC PARTITION BROKER | topic NAME PARTITIONS
    // Returns "" when done, or what is wrong with the line.
    std::string Control(const std::string& line);

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally
