#include "ingest/kafka.h"

namespace tally::kafka {

ConfPtr MakeConf(const std::vector<std::pair<std::string, std::string>>& settings) {
    ConfPtr conf(rd_kafka_conf_new());
    char err[512];
    for (const auto& [key, value] : settings) {
        if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
            throw KafkaError("Kafka setting " + key + "=" + value + ": " + err);
        }
    }
    return conf;
}

}  // namespace tally::kafka
