#include "ingest/dev_broker.h"

#include <algorithm>
#include <sstream>

#include "ingest/kafka.h"  // rdkafka.h, which rdkafka_mock.h needs first
#include "base/assert.h"

// clang-format off
#include <librdkafka/rdkafka_mock.h>
// clang-format on

namespace tally {

struct DevBroker::Impl {
    kafka::HandlePtr handle;
    rd_kafka_mock_cluster_t* cluster = nullptr;
    int brokers = 0;
};

DevBroker::DevBroker(const DevBrokerOptions& options) : impl_(std::make_unique<Impl>()) {
    if (options.brokers < 1) throw kafka::KafkaError("a dev cluster needs at least one broker");
    // Any client handle can own a mock cluster; a producer is the lightest.
    kafka::ConfPtr conf = kafka::MakeConf({{"log_level", "3"}});
    char err[512];
    impl_->handle.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err));
    if (!impl_->handle) throw kafka::KafkaError(std::string("cannot create the dev broker's handle: ") + err);
    conf.release();  // owned by the handle now
    impl_->cluster = rd_kafka_mock_cluster_new(impl_->handle.get(), options.brokers);
    if (impl_->cluster == nullptr) throw kafka::KafkaError("cannot start the mock Kafka cluster");
    impl_->brokers = options.brokers;
    const int replication = std::min(std::max(options.replication, 1), options.brokers);
    for (const auto& [name, partitions] : options.topics) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(impl_->cluster, name.c_str(), partitions, replication);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            throw kafka::KafkaError("cannot create topic " + name + ": " + rd_kafka_err2str(e));
        }
    }
}

DevBroker::~DevBroker() {
    if (impl_->cluster != nullptr) rd_kafka_mock_cluster_destroy(impl_->cluster);
}

std::string DevBroker::bootstrap_servers() const {
    TALLY_ASSERT(impl_->cluster != nullptr);
    return rd_kafka_mock_cluster_bootstraps(impl_->cluster);
}

std::string DevBroker::Control(const std::string& line) {
    std::istringstream in(line);
    std::string verb;
    in >> verb;
    auto broker_ok = [&](int b) { return b >= 1 && b <= impl_->brokers; };
    if (verb == "down" || verb == "up") {
        int broker = 0;
        if (!(in >> broker) || !broker_ok(broker))
            return "usage: " + verb + " BROKER (1.." + std::to_string(impl_->brokers) + ")";
        rd_kafka_resp_err_t e = verb == "down" ? rd_kafka_mock_broker_set_down(impl_->cluster, broker)
                                               : rd_kafka_mock_broker_set_up(impl_->cluster, broker);
        return e == RD_KAFKA_RESP_ERR_NO_ERROR ? "" : rd_kafka_err2str(e);
    }
    if (verb == "err") {
        int api = 0, count = 0, code = 0;
        if (!(in >> api >> count >> code) || count < 1 || count > 1000) return "usage: err API_KEY COUNT ERROR_CODE";
        std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count), static_cast<rd_kafka_resp_err_t>(code));
        rd_kafka_mock_push_request_errors_array(impl_->cluster, static_cast<int16_t>(api), errors.size(),
                                                errors.data());
        return "";
    }
    if (verb == "leader") {
        std::string topic;
        int partition = 0, broker = 0;
        if (!(in >> topic >> partition >> broker) || !broker_ok(broker)) return "usage: leader TOPIC PARTITION BROKER";
        rd_kafka_resp_err_t e = rd_kafka_mock_partition_set_leader(impl_->cluster, topic.c_str(), partition, broker);
        return e == RD_KAFKA_RESP_ERR_NO_ERROR ? "" : rd_kafka_err2str(e);
    }
    if (verb == "topic") {
        std::string topic;
        int partitions = 0;
        if (!(in >> topic >> partitions) || partitions < 1) return "usage: topic NAME PARTITIONS";
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(impl_->cluster, topic.c_str(), partitions, 1);
        return e == RD_KAFKA_RESP_ERR_NO_ERROR ? "" : rd_kafka_err2str(e);
    }
    return "unknown control command '" + verb + "' (down, up, err, leader, topic)";
}

}  // namespace tally
