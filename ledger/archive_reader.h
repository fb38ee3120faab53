// Reading the raw event archive back (table event_archive, written by
// BatchWriter when consuming with the archive on): the accepted messages of
// a customer, byte for byte, for `tally quote` to re-rate under another plan.
// Rows are fetched through a server-side cursor a few at a time, so a
// customer with a large archive never becomes one unbounded result set.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pricing/time.h"

namespace tally::ledger {

// One archived call. The views point into the reader's current rows: valid
// during the callback only.
struct ArchivedEvent {
    std::string_view customer;
    std::string_view topic;
    int32_t partition = 0;
    int64_t offset = 0;
    std::string_view payload;  // the message as consumed
};

// Throws libpqxx's exceptions (std::exception) for the database, and
// ingest::SinkError from the constructor, as Store's CLI methods do.
class ArchiveReader {
   public:
    // Connects and checks the schema's version (ledger/connect.h).
    explicit ArchiveReader(const std::string& database_url);
    ~ArchiveReader();
    ArchiveReader(const ArchiveReader&) = delete;
    ArchiveReader& operator=(const ArchiveReader&) = delete;

    // Customers with archived calls whose event time may fall in [from, to)
    // (archive rows overlapping the range), in byte order of their ids.
    // REQUIRES: from < to.
    std::vector<std::string> Customers(Instant from, Instant to);

    // Calls `use` for each archived call of `customer` in every archive row
    // whose event times overlap [from, to) (a row holds one UTC day: calls
    // of the row outside the range come too; the caller's rating decides),
    // in (first event time, partition, offset) order. Returns the number of
    // calls. REQUIRES: from < to.
    int64_t ForEachEvent(const std::string& customer, Instant from, Instant to,
                         const std::function<void(const ArchivedEvent&)>& use);

    // Archive rows fetched per round trip.
    static constexpr int kRowsPerFetch = 4;

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ledger
