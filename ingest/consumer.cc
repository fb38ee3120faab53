#include "ingest/consumer.h"

#include <chrono>
#include <cstring>
#include <iostream>
#include <set>

#include "base/assert.h"
#include "ingest/kafka.h"

namespace tally {

struct KafkaConsumer::Impl {
    ConsumerOptions options;
    OffsetLookup lookup;
    kafka::HandlePtr handle;
    std::map<int32_t, PartitionState> parts;
    std::map<int32_t, uint64_t> epoch;  // bumped on every (re)assignment and seek
    uint64_t next_epoch = 1;
    bool assigned_once = false;  // an ASSIGN rebalance callback has run (see Close)

    void Assign(rd_kafka_topic_partition_list_t* list, bool cooperative) {
        std::vector<int32_t> ps;
        for (int i = 0; i < list->cnt; ++i) ps.push_back(list->elems[i].partition);
        std::map<int32_t, int64_t> stored = lookup(ps);
        for (int i = 0; i < list->cnt; ++i) {
            auto& e = list->elems[i];
            auto it = stored.find(e.partition);
            e.offset = it == stored.end() ? RD_KAFKA_OFFSET_BEGINNING : it->second;
            PartitionState& st = parts[e.partition];
            st = PartitionState{};
            st.next_offset = it == stored.end() ? -1 : it->second;
            epoch[e.partition] = next_epoch++;
        }
        rd_kafka_error_t* error = nullptr;
        if (cooperative) {
            error = rd_kafka_incremental_assign(handle.get(), list);
        } else {
            rd_kafka_assign(handle.get(), list);
        }
        if (error != nullptr) {
            std::cerr << "tally consume: assign failed: " << rd_kafka_error_string(error) << std::endl;
            rd_kafka_error_destroy(error);
        }
    }

    void Revoke(rd_kafka_topic_partition_list_t* list, bool cooperative) {
        for (int i = 0; i < list->cnt; ++i) {
            parts.erase(list->elems[i].partition);
            epoch.erase(list->elems[i].partition);
        }
        if (cooperative) {
            rd_kafka_error_t* error = rd_kafka_incremental_unassign(handle.get(), list);
            if (error != nullptr) rd_kafka_error_destroy(error);
        } else {
            rd_kafka_assign(handle.get(), nullptr);
        }
    }
};

namespace {
void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list, void* opaque) {
    auto* impl = static_cast<KafkaConsumer::Impl*>(opaque);
    TALLY_ASSERT(impl != nullptr);
    TALLY_ASSERT(impl->handle.get() == rk);
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        impl->assigned_once = true;
        impl->Assign(list, cooperative);
    } else {
        impl->Revoke(list, cooperative);
    }
}

// librdkafka before 2.3.0 aborts in rd_kafka_destroy() (assertion
// `assignor_state' in rd_kafka_sticky_assignor_state_destroy) when the
// consumer has joined its group, so the cooperative-sticky assignor is
// chosen, but no SyncGroup answer has given it an assignment yet: the
// assignor's state is created by that answer and destroyed without a check
// (librdkafka issue 4312, fixed by PR 4381 in 2.3.0). Debian 12 ships 2.0.2.
// The answer comes before the first ASSIGN callback, and the state then
// lives as long as the handle, so after that callback destroying is safe.
bool DestroyMayAbort(bool assigned_once) {
    return !assigned_once && rd_kafka_version() < 0x02030000;
}

// Handles that cannot be destroyed (DestroyMayAbort): closed, they stay
// here, reachable, until the process exits.
void KeepUntilExit(kafka::HandlePtr handle) {
    static auto* kept = new std::vector<rd_kafka_t*>();
    kept->push_back(handle.release());
}
}  // namespace

KafkaConsumer::KafkaConsumer(const ConsumerOptions& o, OffsetLookup lookup) : impl_(std::make_unique<Impl>()) {
    impl_->options = o;
    impl_->lookup = std::move(lookup);
    kafka::ConfPtr conf = kafka::MakeConf({
        {kafka::kBootstrapServers, o.brokers},
        {"group.id", o.group},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        // Never jump over lost offsets: an out-of-range position is an error
        // that stops the partition until an operator decides.
        {"auto.offset.reset", "error"},
        {"session.timeout.ms", std::to_string(o.session_timeout_ms)},
        {"heartbeat.interval.ms", std::to_string(std::max(100, o.session_timeout_ms / 10))},
        {"fetch.wait.max.ms", "50"},
        {"queued.max.messages.kbytes", "262144"},
    });
    rd_kafka_conf_set_rebalance_cb(conf.get(), OnRebalance);
    rd_kafka_conf_set_opaque(conf.get(), impl_.get());
    char err[512];
    impl_->handle.reset(rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err));
    if (!impl_->handle) throw kafka::KafkaError(std::string("cannot create a Kafka consumer: ") + err);
    conf.release();
    rd_kafka_poll_set_consumer(impl_->handle.get());
    rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, o.topic.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(impl_->handle.get(), topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        throw kafka::KafkaError("cannot subscribe to " + o.topic + ": " + rd_kafka_err2str(e));
    }
}

KafkaConsumer::~KafkaConsumer() {
    Close();
}

std::vector<RawMessage> KafkaConsumer::PollBatch(const std::atomic<bool>& stop) {
    using Clock = std::chrono::steady_clock;
    std::vector<RawMessage> batch;
    std::vector<uint64_t> epochs;
    const auto deadline = Clock::now() + std::chrono::milliseconds(impl_->options.linger_ms);
    while (static_cast<int>(batch.size()) < impl_->options.batch_max && !stop.load()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) break;
        rd_kafka_message_t* m =
            rd_kafka_consumer_poll(impl_->handle.get(), static_cast<int>(std::min<int64_t>(left, 100)));
        if (m == nullptr) continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET || m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
                auto it = impl_->parts.find(m->partition);
                if (it != impl_->parts.end() && !it->second.stopped) {
                    it->second.stopped = true;
                    it->second.error = rd_kafka_message_errstr(m);
                    std::cerr << "tally consume: partition " << m->partition << " of " << impl_->options.topic
                              << " stopped: the offset stored in the ledger (" << it->second.next_offset
                              << ") is no longer on the broker, so events were lost before they were billed. "
                                 "Skipping the gap needs an operator: tally offsets skip-gap (see docs/operations.md)"
                              << std::endl;
                    rd_kafka_topic_partition_list_t* one = rd_kafka_topic_partition_list_new(1);
                    rd_kafka_topic_partition_list_add(one, impl_->options.topic.c_str(), m->partition);
                    rd_kafka_pause_partitions(impl_->handle.get(), one);
                    rd_kafka_topic_partition_list_destroy(one);
                }
            }
            // Other errors (a broker down, a leader moving) are retried by librdkafka.
            rd_kafka_message_destroy(m);
            continue;
        }
        auto ep = impl_->epoch.find(m->partition);
        if (ep != impl_->epoch.end()) {
            batch.push_back({m->partition, m->offset,
                             m->key != nullptr ? std::string(static_cast<const char*>(m->key), m->key_len) : "",
                             std::string(static_cast<const char*>(m->payload), m->len)});
            epochs.push_back(ep->second);
        }
        rd_kafka_message_destroy(m);
    }
    // Drop messages of partitions revoked (or re-assigned) during the batch:
    // their next owner resumes from the ledger's offsets.
    std::vector<RawMessage> kept;
    kept.reserve(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
        auto ep = impl_->epoch.find(batch[i].partition);
        if (ep != impl_->epoch.end() && ep->second == epochs[i]) kept.push_back(std::move(batch[i]));
    }
    return kept;
}

void KafkaConsumer::Stored(const std::map<int32_t, int64_t>& next_offsets,
                           const std::map<int32_t, uint64_t>* epochs) {
    for (const auto& [p, next] : next_offsets) {
        auto it = impl_->parts.find(p);
        if (it == impl_->parts.end()) continue;
        if (epochs != nullptr) {
            auto then = epochs->find(p);
            auto now = impl_->epoch.find(p);
            if (then == epochs->end() || now == impl_->epoch.end() || then->second != now->second) continue;
        }
        it->second.next_offset = next;
    }
}

void KafkaConsumer::Resync(const std::vector<int32_t>& partitions) {
    std::map<int32_t, int64_t> stored = impl_->lookup(partitions);
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
    for (int32_t p : partitions) {
        if (impl_->parts.count(p) == 0) continue;
        auto it = stored.find(p);
        rd_kafka_topic_partition_list_add(list, impl_->options.topic.c_str(), p)->offset =
            it == stored.end() ? RD_KAFKA_OFFSET_BEGINNING : it->second;
        impl_->parts[p].next_offset = it == stored.end() ? -1 : it->second;
        impl_->epoch[p] = impl_->next_epoch++;
    }
    if (list->cnt > 0) {
        rd_kafka_error_t* error = rd_kafka_seek_partitions(impl_->handle.get(), list, 5000);
        if (error != nullptr) {
            std::cerr << "tally consume: seek failed: " << rd_kafka_error_string(error) << std::endl;
            rd_kafka_error_destroy(error);
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

std::map<int32_t, PartitionState> KafkaConsumer::Partitions() {
    for (auto& [p, st] : impl_->parts) {
        int64_t low = 0, high = 0;
        if (rd_kafka_get_watermark_offsets(impl_->handle.get(), impl_->options.topic.c_str(), p, &low, &high) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            st.high_watermark = high;
        }
    }
    for (auto& [p, st] : impl_->parts) {
        auto ep = impl_->epoch.find(p);
        st.epoch = ep == impl_->epoch.end() ? 0 : ep->second;
    }
    return impl_->parts;
}

std::map<int32_t, int64_t> KafkaConsumer::Lag() {
    std::map<int32_t, int64_t> lag;
    for (const auto& [p, st] : Partitions()) {
        if (st.high_watermark < 0) continue;
        lag[p] = st.high_watermark - std::max<int64_t>(st.next_offset, 0);
    }
    return lag;
}

std::map<int32_t, int64_t> KafkaConsumer::TopicEnds() {
    std::map<int32_t, int64_t> ends;
    kafka::TopicPtr topic(rd_kafka_topic_new(impl_->handle.get(), impl_->options.topic.c_str(), nullptr));
    const rd_kafka_metadata_t* md = nullptr;
    if (!topic || rd_kafka_metadata(impl_->handle.get(), 0, topic.get(), &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return ends;
    }
    for (int t = 0; t < md->topic_cnt; ++t) {
        if (md->topics[t].err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
        for (int i = 0; i < md->topics[t].partition_cnt; ++i) {
            const int32_t p = md->topics[t].partitions[i].id;
            int64_t low = 0, high = 0;
            if (rd_kafka_query_watermark_offsets(impl_->handle.get(), impl_->options.topic.c_str(), p, &low, &high,
                                                 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                rd_kafka_metadata_destroy(md);
                return {};
            }
            ends[p] = high;
        }
    }
    rd_kafka_metadata_destroy(md);
    return ends;
}

void KafkaConsumer::Close() {
    if (!impl_->handle) return;
    // Leaves the group (the other members take over at once) and serves the
    // last rebalance callbacks. Waiting for a first assignment instead
    // could take up to the group's rebalance timeout, and would take
    // partitions from the other members only to give them back.
    rd_kafka_consumer_close(impl_->handle.get());
    if (DestroyMayAbort(impl_->assigned_once)) {
        std::cerr << "tally consume: Kafka consumer closed before its first assignment; its handle is left to the "
                     "process exit (librdkafka before 2.3.0 aborts destroying it, see docs/operations.md)"
                  << std::endl;
        KeepUntilExit(std::move(impl_->handle));
    } else {
        impl_->handle.reset();
    }
    TALLY_ASSERT(!impl_->handle);
}

std::pair<int64_t, int64_t> QueryWatermarks(const std::string& brokers, const std::string& topic, int32_t partition) {
    kafka::ConfPtr conf = kafka::MakeConf({{kafka::kBootstrapServers, brokers}});
    char err[512];
    kafka::HandlePtr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err));
    if (!rk) throw kafka::KafkaError(std::string("cannot create a Kafka client: ") + err);
    conf.release();
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), partition, &low, &high, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        throw kafka::KafkaError("cannot read the offsets of " + topic + " partition " + std::to_string(partition) +
                                ": " + rd_kafka_err2str(e));
    }
    return {low, high};
}

}  // namespace tally
