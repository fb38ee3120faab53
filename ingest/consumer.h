// The Kafka side of `tally consume`: a consumer-group member (subscribe,
// cooperative-sticky) that resumes every assigned partition from the offset
// stored in the ledger, never from Kafka's committed offsets, and hands out
// batches of raw messages with their coordinates.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tally {

struct RawMessage {
    int32_t partition = 0;
    int64_t offset = 0;
    std::string key;
    std::string payload;
};

struct ConsumerOptions {
    std::string brokers;
    std::string group = "tally";
    std::string topic = "usage";
    int batch_max = 20000;  // messages per batch at most
    int linger_ms = 200;    // wait at most this long to fill a batch
    int session_timeout_ms = 6000;
};

// Where assigned partitions resume: partition -> next offset, or absent when
// the ledger has none yet (then the partition starts at its beginning).
using OffsetLookup = std::function<std::map<int32_t, int64_t>(const std::vector<int32_t>& partitions)>;

struct PartitionState {
    int64_t next_offset = -1;  // what this consumer will read next (-1: unknown)
    int64_t high_watermark = -1;
    bool stopped = false;  // stored offset no longer on the broker: needs an operator
    uint64_t epoch = 0;    // changes at every (re)assignment and re-read of the partition
    std::string error;
};

class KafkaConsumer {
   public:
    KafkaConsumer(const ConsumerOptions& options, OffsetLookup lookup);  // throws kafka::KafkaError
    ~KafkaConsumer();
    KafkaConsumer(const KafkaConsumer&) = delete;
    KafkaConsumer& operator=(const KafkaConsumer&) = delete;

    // Up to batch_max messages of partitions still assigned, in offset order
    // per partition; empty when nothing arrived within linger_ms.
    std::vector<RawMessage> PollBatch(const std::atomic<bool>& stop);

    // After a batch is durably stored: the stored next offsets. Messages of
    // a partition revoked meanwhile are not reported again. With `epochs`
    // (the partitions' epochs when the batch was read), a partition
    // reassigned or re-read since keeps the offset it was given then (the
    // ledger's), never the batch's.
    void Stored(const std::map<int32_t, int64_t>& next_offsets, const std::map<int32_t, uint64_t>* epochs = nullptr);

    // Re-reads the stored offsets of these partitions and seeks to them
    // (after a batch lost a race for a partition: see the ledger's fence).
    void Resync(const std::vector<int32_t>& partitions);

    std::map<int32_t, PartitionState> Partitions();
    // Lag per assigned partition (high watermark - next offset), refreshed.
    std::map<int32_t, int64_t> Lag();
    // The next offset (high watermark) of every partition of the topic,
    // assigned here or not, asked of the brokers; empty when they cannot say.
    std::map<int32_t, int64_t> TopicEnds();
    void Close();

    struct Impl;  // opaque; public only for librdkafka's rebalance callback

   private:
    std::unique_ptr<Impl> impl_;
};

// The earliest and the next offset a partition has on the brokers.
std::pair<int64_t, int64_t> QueryWatermarks(const std::string& brokers, const std::string& topic, int32_t partition);

}  // namespace tally
