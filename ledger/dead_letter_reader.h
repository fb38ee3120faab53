// The dead letters (sql/0001 dead_letters): messages the consumer could not
// bill, with the reason (base/reject_reason.h codes) and their raw bytes,
// for finance (`GET /v1/dead-letters`, docs/api.md). Read only,
// parameterized SQL. One connection, reconnecting: one reader per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tally::ledger {

struct DeadLetterCount {
    std::string reason_code;  // RejectReasonCode
    int64_t count = 0;
};

struct DeadLetterEntry {
    int64_t id = 0;  // dead_letter_id
    std::string topic;
    int32_t partition = 0;
    int64_t offset = 0;
    std::string reason_code, reason;
    std::string received_at;  // RFC 3339 UTC, milliseconds
    int64_t size = 0;         // bytes of the raw message
};

struct DeadLetterPage {
    std::string reason_code;        // "" : every reason
    std::optional<int64_t> before;  // only ids below this one (the cursor)
    int limit = 100;                // 1..kDeadLetterPageMax
};
inline constexpr int kDeadLetterPageMax = 500;

class DeadLetterReader {
   public:
    // Connects (as Store: throws ingest::SinkError when it cannot or the
    // schema is not this binary's).
    explicit DeadLetterReader(const std::string& database_url);
    ~DeadLetterReader();
    DeadLetterReader(const DeadLetterReader&) = delete;
    DeadLetterReader& operator=(const DeadLetterReader&) = delete;

    // Every reason code of base/reject_reason.h in its order, with how many
    // dead letters have it (0 for none), then any other code stored.
    std::vector<DeadLetterCount> CountByReason();
    // Newest first (highest id first). REQUIRES: 1 <= limit <= kDeadLetterPageMax.
    std::vector<DeadLetterEntry> List(const DeadLetterPage& page);
    // The raw message bytes of one dead letter; nullopt when there is none.
    std::optional<std::string> Raw(int64_t id);

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ledger
