#include "ledger/dead_letter_reader.h"

#include <limits>
#include <map>
#include <pqxx/pqxx>

#include "base/assert.h"
#include "base/reject_reason.h"
#include "ledger/connect.h"
#include "pricing/time.h"

namespace tally::ledger {

struct DeadLetterReader::Impl {
    explicit Impl(const std::string& url) : conn(url) {}
    Reconnecting conn;
};

DeadLetterReader::DeadLetterReader(const std::string& database_url) : impl_(std::make_unique<Impl>(database_url)) {}
DeadLetterReader::~DeadLetterReader() = default;

std::vector<DeadLetterCount> DeadLetterReader::CountByReason() {
    std::map<std::string, int64_t> stored;
    {
        pqxx::read_transaction tx(impl_->conn.Get());
        for (const auto& r : tx.exec("SELECT reason_code, count(*) FROM dead_letters GROUP BY reason_code")) {
            stored[r[0].as<std::string>()] = r[1].as<int64_t>();
        }
        tx.commit();
    }
    std::vector<DeadLetterCount> out;
    for (RejectReason reason : kRejectReasons) {
        const std::string code(RejectReasonCode(reason));
        auto it = stored.find(code);
        out.push_back({code, it == stored.end() ? 0 : it->second});
        if (it != stored.end()) stored.erase(it);
    }
    for (const auto& [code, n] : stored) out.push_back({code, n});  // the CHECK constraint leaves none
    return out;
}

std::vector<DeadLetterEntry> DeadLetterReader::List(const DeadLetterPage& page) {
    TALLY_ASSERT(page.limit >= 1 && page.limit <= kDeadLetterPageMax);
    pqxx::read_transaction tx(impl_->conn.Get());
    // Without a cursor: below the largest id there can be (from the newest).
    // The primary key walks it backwards.
    const pqxx::result rows = tx.exec_params(
        "SELECT dead_letter_id, kafka_topic, kafka_partition, kafka_offset, reason_code, reason, "
        "(extract(epoch FROM received_at) * 1000)::bigint, octet_length(raw) FROM dead_letters "
        "WHERE ($1 = '' OR reason_code = $1) AND dead_letter_id < $2 "
        "ORDER BY dead_letter_id DESC LIMIT $3",
        page.reason_code, page.before.value_or(std::numeric_limits<int64_t>::max()), page.limit);
    tx.commit();
    std::vector<DeadLetterEntry> out;
    out.reserve(rows.size());
    for (const auto& r : rows) {
        DeadLetterEntry e;
        e.id = r[0].as<int64_t>();
        e.topic = r[1].as<std::string>();
        e.partition = r[2].as<int32_t>();
        e.offset = r[3].as<int64_t>();
        e.reason_code = r[4].as<std::string>();
        e.reason = r[5].as<std::string>();
        e.received_at = FormatRfc3339(Instant{std::chrono::milliseconds(r[6].as<int64_t>())});
        e.size = r[7].as<int64_t>();
        out.push_back(std::move(e));
    }
    return out;
}

std::optional<std::string> DeadLetterReader::Raw(int64_t id) {
    pqxx::read_transaction tx(impl_->conn.Get());
    const pqxx::result rows = tx.exec_params("SELECT raw FROM dead_letters WHERE dead_letter_id = $1", id);
    tx.commit();
    if (rows.empty()) return std::nullopt;
    const pqxx::binarystring raw(rows[0][0]);
    return raw.str();
}

}  // namespace tally::ledger
