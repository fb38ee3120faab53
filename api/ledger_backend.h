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
// never stale. A miss of a `period` query reads only the customer's
// deltas when the month's rows of the rollups table are kept from an
// earlier miss and the 'usage' counter has not moved since (it moves with
// every change to rollups: UsageReader::ReadPeriodParts). Opt-in
// staleness: max_age (MakeUsageCache, UsageRefresher) and fold_wait > 0: a
// miss whose read waits for a lock on rollup_deltas (a migration's; the
// consumer's fold takes none any more) longer than fold_wait is answered
// with the answer kept for the same query if its marks were read at most
// kUsageFoldStaleness ago (the exact answer of that older snapshot;
// docs/api.md), else it waits.
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
// (opt-in staleness): an answer whose marks were read (computed, or found
// current) at most `max_age` ago is served without reading the ledger: an
// exact answer of that older snapshot, never more than max_age old (but see
// fold_wait, which may serve one up to kUsageFoldStaleness old). With a
// UsageRefresher running, one served older than max_age/2 is computed
// again in the background, so a requested answer rarely reaches max_age
// and requests rarely wait for a computation.
// `fold_wait` > 0 (opt-in staleness, as max_age): how long a miss's read of
// usage_rollups waits for a lock (the fold's) before it serves the kept
// answer of the query if one was computed from marks read at most
// kUsageFoldStaleness ago; 0: it waits as long as the fold takes (the
// statement_timeout bounds it), always current.
class UsageCache;
inline constexpr std::chrono::milliseconds kUsageFoldStaleness{60000};
std::shared_ptr<UsageCache> MakeUsageCache(size_t max_entries,
                                           std::chrono::milliseconds max_age = std::chrono::milliseconds(0),
                                           std::chrono::milliseconds fold_wait = std::chrono::milliseconds(0));
// `tally serve`'s: a month by day is a few KiB, so at most ~20 MiB.
inline constexpr size_t kUsageCacheEntries = 4096;
// Hits, misses (an answer computed and kept) and entries now.
struct UsageCacheStats {
    int64_t hits = 0;
    int64_t older_hits = 0;  // served under max_age without reading the ledger
    int64_t fold_hits = 0;   // served because a fold held the read longer than fold_wait
    int64_t misses = 0;      // computed by a request
    int64_t delta_only = 0;  // misses computed from a kept folded part plus the deltas read
    size_t entries = 0;
    size_t folded_parts = 0;  // months of rollups rows kept (one per 16 answers at most)
    int64_t refresh_current = 0;   // the UsageRefresher found the answer current
    int64_t refresh_computed = 0;  // the UsageRefresher computed it again
    int64_t refresh_failures = 0;
};
UsageCacheStats StatsOf(const UsageCache& cache);
// The stats as Prometheus text (tally_usage_cache_*), for GET /metrics.
std::string MetricsText(const UsageCacheStats& stats);

// Computes the answers `cache` asks for again (those served older than its
// max_age/2) on `threads` threads, each with database connections of its
// own; stops and joins in its destructor. Only useful with a max_age > 0.
class UsageRefresher {
   public:
    UsageRefresher(const std::string& database_url, std::shared_ptr<UsageCache> cache, int threads = 1);
    ~UsageRefresher();
    UsageRefresher(const UsageRefresher&) = delete;
    UsageRefresher& operator=(const UsageRefresher&) = delete;

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// PDF and CSV are documents/'s (the bytes `tally invoice export` writes).
// `usage_cache` null: every GET /v1/usage is computed.
std::unique_ptr<Backend> MakeLedgerBackend(const std::string& database_url,
                                           std::shared_ptr<UsageCache> usage_cache = nullptr);

}  // namespace tally::api
