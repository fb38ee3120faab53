#include "ledger/archive_reader.h"

#include <charconv>
#include <pqxx/pqxx>

#include "base/assert.h"
#include "ledger/connect.h"

namespace tally::ledger {

namespace {

// 0x1E separates the messages of one archive row (RFC 7464; BatchWriter).
constexpr char kRecordSeparator = '\x1e';

int64_t Millis(Instant t) {
    return t.time_since_epoch().count();
}

// SQL for the archive rows of [from, to): a row holds calls of one UTC day,
// so its first event time is at most a day before `from` (the index on
// (customer_id, first_event_time) bounds the scan on both sides).
std::string RangeCondition(pqxx::transaction_base& tx, Instant from, Instant to) {
    const std::string f = "(timestamptz 'epoch' + " + tx.quote(Millis(from)) + " * interval '1 millisecond')";
    const std::string t = "(timestamptz 'epoch' + " + tx.quote(Millis(to)) + " * interval '1 millisecond')";
    return "first_event_time >= " + f + " - interval '1 day' AND first_event_time < " + t +
           " AND last_event_time >= " + f;
}

// "1,2,3" (array_to_string of kafka_offsets) into offsets.
void ParseOffsets(std::string_view text, std::vector<int64_t>* out) {
    out->clear();
    while (!text.empty()) {
        const size_t comma = text.find(',');
        const std::string_view one = text.substr(0, comma);
        int64_t value = 0;
        const auto [end, ec] = std::from_chars(one.data(), one.data() + one.size(), value);
        TALLY_ASSERT(ec == std::errc());
        TALLY_ASSERT(end == one.data() + one.size());
        out->push_back(value);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
}

}  // namespace

struct ArchiveReader::Impl {
    explicit Impl(const std::string& url) : conn(Connect(url)) {}
    std::unique_ptr<pqxx::connection> conn;
};

ArchiveReader::ArchiveReader(const std::string& database_url) : impl_(std::make_unique<Impl>(database_url)) {}
ArchiveReader::~ArchiveReader() = default;

std::vector<std::string> ArchiveReader::Customers(Instant from, Instant to) {
    TALLY_ASSERT(from < to);
    pqxx::read_transaction tx(*impl_->conn);
    std::vector<std::string> out;
    for (const auto& row : tx.exec("SELECT DISTINCT customer_id FROM event_archive WHERE " +
                                   RangeCondition(tx, from, to) + " ORDER BY 1")) {
        out.push_back(row[0].as<std::string>());
    }
    tx.commit();
    return out;
}

int64_t ArchiveReader::ForEachEvent(const std::string& customer, Instant from, Instant to,
                                    const std::function<void(const ArchivedEvent&)>& use) {
    TALLY_ASSERT(from < to);
    pqxx::read_transaction tx(*impl_->conn);
    tx.exec0(
        "DECLARE quote_archive NO SCROLL CURSOR FOR "
        "SELECT kafka_topic, kafka_partition, array_to_string(kafka_offsets, ','), payloads "
        "FROM event_archive WHERE customer_id = " +
        tx.quote(customer) + " AND " + RangeCondition(tx, from, to) +
        " ORDER BY first_event_time, kafka_partition, kafka_offsets[1]");
    const std::string fetch = "FETCH " + std::to_string(kRowsPerFetch) + " FROM quote_archive";
    int64_t calls = 0;
    std::vector<int64_t> offsets;
    for (;;) {
        const pqxx::result rows = tx.exec(fetch);
        for (const auto& row : rows) {
            const std::string_view topic(row[0].c_str(), row[0].size());
            const int32_t partition = row[1].as<int32_t>();
            ParseOffsets(std::string_view(row[2].c_str(), row[2].size()), &offsets);
            std::string_view payloads(row[3].c_str(), row[3].size());
            // One message per offset, as BatchWriter wrote them (and the
            // table's CHECK holds at least one).
            TALLY_ASSERT(!offsets.empty());
            for (size_t i = 0; i < offsets.size(); ++i) {
                const size_t end = payloads.find(kRecordSeparator);
                TALLY_ASSERT((end == std::string_view::npos) == (i + 1 == offsets.size()));
                ArchivedEvent e;
                e.customer = customer;
                e.topic = topic;
                e.partition = partition;
                e.offset = offsets[i];
                e.payload = payloads.substr(0, end);
                use(e);
                ++calls;
                if (end != std::string_view::npos) payloads.remove_prefix(end + 1);
            }
        }
        if (rows.size() < static_cast<size_t>(kRowsPerFetch)) break;
    }
    tx.exec0("CLOSE quote_archive");
    tx.commit();
    return calls;
}

}  // namespace tally::ledger
