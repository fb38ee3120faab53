// EventProducer against the dev broker: a message librdkafka refuses at once
// and one whose delivery fails later both come back with the id they were
// sent with (tally produce: the line number), and the others still go.
#include "ingest/producer.h"

#include <gtest/gtest.h>

#include <string>

#include "ingest/dev_broker.h"

namespace tally {
namespace {

constexpr int64_t kTimeoutMs = 30'000;

TEST(EventProducer, AMessageRefusedAtOnceIsNamedAndTheNextOnesGo) {
    DevBroker broker({.brokers = 1, .topics = {{"usage", 2}}, .replication = 1});
    EventProducer producer({.brokers = broker.bootstrap_servers(), .topic = "usage"});
    const std::string small = R"({"id":"x"})";
    const std::string huge(2'000'000, 'x');  // more than message.max.bytes (1000000)
    for (int64_t line = 1; line <= 9; ++line) {
        EXPECT_EQ(producer.Send("cust_1", line == 6 ? huge : small, line), line != 6) << line;
    }
    std::vector<SendFailure> failures = producer.TakeFailures();
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(failures[0].id, 6);
    EXPECT_NE(failures[0].reason.find("Message size too large"), std::string::npos) << failures[0].reason;
    EXPECT_NE(failures[0].reason.find("2000006 bytes"), std::string::npos) << failures[0].reason;

    ProduceStats stats = producer.Finish(kTimeoutMs);
    EXPECT_EQ(stats.sent, 8);
    EXPECT_EQ(stats.delivered, 8);
    EXPECT_EQ(stats.refused, 1);
    EXPECT_EQ(stats.failed, 0);
    EXPECT_TRUE(producer.TakeFailures().empty());
}

TEST(EventProducer, ADeliveryFailureComesBackWithItsId) {
    DevBroker broker({.brokers = 1, .topics = {{"usage", 1}}, .replication = 1});
    EventProducer producer({.brokers = broker.bootstrap_servers(), .topic = "usage"});
    const std::string event = R"({"id":"x"})";
    ASSERT_TRUE(producer.Send("cust_1", event, 1));
    EXPECT_EQ(producer.Finish(kTimeoutMs).delivered, 1);
    // The broker answers the next Produce request with MESSAGE_TOO_LARGE (10).
    ASSERT_EQ(broker.Control("err 0 1 10"), "");
    ASSERT_TRUE(producer.Send("cust_1", event, 2));  // librdkafka takes it; the broker refuses it
    ProduceStats stats = producer.Finish(kTimeoutMs);
    EXPECT_EQ(stats.failed, 1);
    std::vector<SendFailure> failures = producer.TakeFailures();
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(failures[0].id, 2);
    EXPECT_EQ(failures[0].reason, "Broker: Message size too large");

    ASSERT_TRUE(producer.Send("cust_1", event, 3));
    stats = producer.Finish(kTimeoutMs);
    EXPECT_EQ(stats.sent, 3);
    EXPECT_EQ(stats.delivered, 2);
    EXPECT_EQ(stats.failed, 1);
    EXPECT_EQ(stats.refused, 0);
    EXPECT_TRUE(producer.TakeFailures().empty());
}

}  // namespace
}  // namespace tally
