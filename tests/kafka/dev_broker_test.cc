// The dev broker is a real Kafka-protocol cluster on loopback; the producer
// sends to it over sockets and a plain librdkafka consumer reads back.
#include "ingest/dev_broker.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <map>
#include <set>

#include "ingest/event_decoder.h"
#include "ingest/producer.h"
#include "ingest/synthetic.h"

namespace tally {
namespace {

struct Received {
    std::string key, value;
    int32_t partition = 0;
};

// Reads `expected` messages from every partition of `topic`, from the start.
std::vector<Received> ReadAll(const std::string& brokers, const std::string& topic, int partitions, size_t expected) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "dev-broker-test", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", err, sizeof err);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    EXPECT_NE(rk, nullptr) << err;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) {
        rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    std::vector<Received> out;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (out.size() < expected && std::chrono::steady_clock::now() < deadline) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
        if (m == nullptr) continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            out.push_back({std::string(static_cast<const char*>(m->key), m->key_len),
                           std::string(static_cast<const char*>(m->payload), m->len), m->partition});
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return out;
}

TEST(DevBroker, ProducedEventsArriveKeyedByCustomerOnePartitionEach) {
    DevBroker broker({.brokers = 3, .topics = {{"usage", 6}}, .replication = 3});
    const std::string brokers = broker.bootstrap_servers();
    EXPECT_EQ(std::count(brokers.begin(), brokers.end(), ','), 2) << brokers;

    SyntheticOptions syn;
    syn.count = 5000;
    syn.customers = 50;
    syn.seed = 7;
    syn.malformed_per_million = 20'000;  // 2 %
    SyntheticEvents gen(syn);
    EventProducer producer({.brokers = brokers, .topic = "usage", .compression = "lz4", .linger_ms = 5});
    std::string json, key;
    bool bad = false;
    int64_t malformed = 0;
    while (gen.Next(&json, &key, &bad)) {
        producer.Send(key, json);
        malformed += bad ? 1 : 0;
    }
    ProduceStats stats = producer.Finish(30'000);
    EXPECT_EQ(stats.sent, 5000);
    EXPECT_EQ(stats.delivered, 5000);
    EXPECT_EQ(stats.failed, 0);
    EXPECT_GT(malformed, 50);

    std::vector<Received> got = ReadAll(brokers, "usage", 6, 5000);
    ASSERT_EQ(got.size(), 5000u);
    std::map<std::string, std::set<int32_t>> partitions_of;
    EventDecoder decoder;
    Event e;
    std::string reason;
    int64_t undecodable = 0;
    for (const auto& r : got) {
        partitions_of[r.key].insert(r.partition);
        if (decoder.Decode(r.value, &e, &reason)) {
            EXPECT_EQ(e.subject, r.key);
        } else {
            ++undecodable;
        }
    }
    EXPECT_EQ(undecodable, malformed);
    EXPECT_EQ(partitions_of.size(), 50u);
    for (const auto& [k, parts] : partitions_of) EXPECT_EQ(parts.size(), 1u) << k;
}

TEST(DevBroker, ControlCommandsAreCheckedAndApplied) {
    DevBroker broker({.brokers = 2, .topics = {{"t", 2}}, .replication = 1});
    EXPECT_EQ(broker.Control("down 2"), "");
    EXPECT_EQ(broker.Control("up 2"), "");
    EXPECT_EQ(broker.Control("err 1 3 6"), "");
    EXPECT_EQ(broker.Control("topic extra 4"), "");
    EXPECT_EQ(broker.Control("leader t 0 1"), "");
    EXPECT_NE(broker.Control("down 7"), "");
    EXPECT_NE(broker.Control("err 1"), "");
    EXPECT_NE(broker.Control("reboot"), "");
}

TEST(Synthetic, IsDeterministicForASeedAndHonoursFractions) {
    SyntheticOptions o;
    o.count = 20000;
    o.seed = 3;
    o.duplicates_per_million = 10'000;
    o.malformed_per_million = 10'000;
    auto run = [&] {
        SyntheticEvents gen(o);
        std::vector<std::string> all;
        std::string json, key;
        bool bad = false;
        int64_t malformed = 0;
        while (gen.Next(&json, &key, &bad)) {
            all.push_back(json);
            malformed += bad ? 1 : 0;
        }
        return std::make_pair(all, malformed);
    };
    auto [a, bad_a] = run();
    auto [b, bad_b] = run();
    EXPECT_EQ(a, b);
    ASSERT_EQ(a.size(), 20000u);
    EXPECT_GT(bad_a, 100);
    EXPECT_LT(bad_a, 300);
    std::set<std::string> unique(a.begin(), a.end());
    const auto duplicates = static_cast<int64_t>(a.size() - unique.size());
    EXPECT_GT(duplicates, 100);
    EXPECT_LT(duplicates, 300);
}

}  // namespace
}  // namespace tally
