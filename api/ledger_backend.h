// The Backend of `tally serve` on the PostgreSQL ledger: one per worker
// thread, each with its own connections (KeyStore, InvoiceStore, Store,
// UsageReader), made on first use and made again after a failure. The
// published catalog is cached per thread and loaded again only when its
// change counter moves (sql/0009). GET /v1/usage's answers may be kept in a
// UsageCache shared by the threads: each request reads the marks of the
// catalog and of the customer's usage in the query's scope in one
// statement (UsageReader::ReadMarks) and answers from the cache only when
// they equal the marks read before the cached answer was computed, so a
// cached answer is the uncached one at the snapshot of that statement:
// never stale.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "api/service.h"

namespace tally::api {

// The URL with `-c statement_timeout=<ms>` added to the connection's
// options (URI form "postgresql://..." or key=value form), so that every
// statement of a request is bounded in time.
std::string WithStatementTimeout(const std::string& database_url, int64_t timeout_ms);

// GET /v1/usage's answers by customer and query, at most `max_entries`
// (the least recently used goes first). Thread-safe; share one between
// the backends of a server. `max_age` 0: an answer is served only while
// the marks are those it was computed under (always current). max_age > 0
// (opt-in staleness): also while its marks were read at most `max_age`
// ago, though the ledger changed since: an exact answer of that older
// snapshot, never more than max_age old.
class UsageCache;
std::shared_ptr<UsageCache> MakeUsageCache(size_t max_entries,
                                           std::chrono::milliseconds max_age = std::chrono::milliseconds(0));
// `tally serve`'s: a month by day is a few KiB, so at most ~20 MiB.
inline constexpr size_t kUsageCacheEntries = 4096;
// Hits, misses (an answer computed and kept) and entries now.
struct UsageCacheStats {
    int64_t hits = 0;
    int64_t older_hits = 0;  // served under max_age though the ledger had changed
    int64_t misses = 0;
    size_t entries = 0;
};
UsageCacheStats StatsOf(const UsageCache& cache);

// PDF and CSV are documents/'s (the bytes `tally invoice export` writes).
// `usage_cache` null: every GET /v1/usage is computed.
std::unique_ptr<Backend> MakeLedgerBackend(const std::string& database_url,
                                           std::shared_ptr<UsageCache> usage_cache = nullptr);

}  // namespace tally::api
