#include "api/ledger_backend.h"

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/finance.h"
#include "api/ledger_handle.h"
#include "api/sales.h"

#include "base/assert.h"
#include "documents/invoice_export.h"
#include "ledger/invoice_store.h"
#include "ledger/key_store.h"
#include "ledger/migrations.h"
#include "ledger/store.h"
#include "ledger/usage_reader.h"

namespace tally::api {

namespace {
// Folded parts kept: one per this many answers (a month's folded part is
// ~2,200 records for the benches' customers, about 0.5 MiB).
constexpr size_t kAnswersPerFoldedPart = 16;
}  // namespace

std::string WithStatementTimeout(const std::string& url, int64_t timeout_ms) {
    TALLY_ASSERT(timeout_ms > 0);
    const std::string ms = std::to_string(timeout_ms);
    if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
        return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-c%20statement_timeout%3D" + ms;
    }
    return url + (url.empty() ? "" : " ") + "options='-c statement_timeout=" + ms + "'";
}

class UsageCache {
   public:
    using Marks = ledger::UsageReader::Marks;
    using Clock = std::chrono::steady_clock;
    UsageCache(size_t max_entries, std::chrono::milliseconds max_age, std::chrono::milliseconds fold_wait)
        : max_entries_(max_entries),
          max_folded_(std::max<size_t>(1, max_entries / kAnswersPerFoldedPart)),
          max_age_(max_age),
          fold_wait_(fold_wait) {
        TALLY_ASSERT(max_entries_ > 0);
        TALLY_ASSERT(max_age_.count() >= 0);
        TALLY_ASSERT(fold_wait_.count() >= 0);
    }

    std::chrono::milliseconds FoldWait() const { return fold_wait_; }

    // The answer kept for `key`, whatever the marks now, if they were read
    // at most kUsageFoldStaleness before `now`: what a miss serves when a
    // fold holds its read longer than FoldWait (then it calls FoldHit).
    std::shared_ptr<const UsageReport> Recent(const std::string& key, Clock::time_point now) const {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = entries_.find(key);
        if (it == entries_.end() || now - it->second.marks_read_at > kUsageFoldStaleness) return nullptr;
        return it->second.report;
    }
    void FoldHit() {
        std::lock_guard<std::mutex> lock(mu_);
        ++fold_hits_;
    }

    // max_age > 0: the answer kept for `key` if its marks were read at most
    // max_age before `now`, without reading the ledger. One older than
    // max_age/2 is queued for the refresher, if one runs and it is not
    // queued yet: `query` is what computes it.
    std::shared_ptr<const UsageReport> Young(const std::string& key, const UsageQuery& query, Clock::time_point now) {
        if (max_age_.count() == 0) return nullptr;
        std::lock_guard<std::mutex> lock(mu_);
        auto it = entries_.find(key);
        if (it == entries_.end() || now - it->second.marks_read_at > max_age_) return nullptr;
        used_.splice(used_.begin(), used_, it->second.used);
        ++older_hits_;
        if (refresher_running_ && !it->second.refreshing && now - it->second.marks_read_at > max_age_ / 2) {
            it->second.refreshing = true;
            refresh_queue_.push_back({key, query});
            refresh_wanted_.notify_one();
        }
        return it->second.report;
    }

    // The answer kept for `key` if it was computed under exactly `marks`
    // (read at `marks_read_at`, which it is then known current at).
    // `refresh`: the refresher's (counted apart).
    std::shared_ptr<const UsageReport> Find(const std::string& key, const Marks& marks,
                                            Clock::time_point marks_read_at, bool refresh) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = entries_.find(key);
        if (it == entries_.end() || it->second.marks != marks) return nullptr;
        used_.splice(used_.begin(), used_, it->second.used);
        it->second.marks_read_at = std::max(it->second.marks_read_at, marks_read_at);
        ++(refresh ? refresh_current_ : hits_);
        return it->second.report;
    }

    // Keeps `report`, computed from what was read after `marks` were (read
    // at `marks_read_at`).
    void Put(const std::string& key, const Marks& marks, Clock::time_point marks_read_at,
             std::shared_ptr<const UsageReport> report, bool refresh) {
        TALLY_ASSERT(report != nullptr);
        std::lock_guard<std::mutex> lock(mu_);
        ++(refresh ? refresh_computed_ : misses_);
        auto [it, fresh] = entries_.try_emplace(key);
        if (fresh) {
            used_.push_front(key);
            it->second.used = used_.begin();
        } else {
            used_.splice(used_.begin(), used_, it->second.used);
        }
        // Two computations of one answer at once (a request's and the
        // refresher's): the one from the later marks stays.
        if (fresh || it->second.marks_read_at <= marks_read_at) {
            it->second.marks = marks;
            it->second.marks_read_at = marks_read_at;
            it->second.report = std::move(report);
        }
        // `refreshing` stays until the refresher is done with the key: it
        // is queued at most once.
        while (entries_.size() > max_entries_) {
            TALLY_ASSERT(!used_.empty());
            entries_.erase(used_.back());
            used_.pop_back();
        }
        TALLY_ASSERT(entries_.size() == used_.size());
    }

    // The folded part (rows of the rollups table) of a customer's period as
    // read when the 'usage' counter was `usage` (UsageReader::PeriodParts).
    struct Folded {
        int64_t usage = 0;
        std::vector<RollupRecord> records;
    };
    std::shared_ptr<const Folded> FindFolded(const std::string& key) const {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = folded_.find(key);
        return it == folded_.end() ? nullptr : it->second.folded;
    }
    void PutFolded(const std::string& key, std::shared_ptr<const Folded> folded) {
        std::lock_guard<std::mutex> lock(mu_);
        auto [it, fresh] = folded_.try_emplace(key);
        if (fresh) {
            folded_used_.push_front(key);
            it->second.used = folded_used_.begin();
        } else {
            folded_used_.splice(folded_used_.begin(), folded_used_, it->second.used);
        }
        it->second.folded = std::move(folded);
        while (folded_.size() > max_folded_) {
            folded_.erase(folded_used_.back());
            folded_used_.pop_back();
        }
    }
    // An answer computed from a kept folded part plus the deltas read now.
    void DeltaOnly() {
        std::lock_guard<std::mutex> lock(mu_);
        ++delta_only_;
    }

    UsageCacheStats Stats() const {
        std::lock_guard<std::mutex> lock(mu_);
        return {hits_,          older_hits_,      fold_hits_,       misses_,           delta_only_, entries_.size(),
                folded_.size(), refresh_current_, refresh_computed_, refresh_failures_};
    }

    // The refresher's side: Young queues only while one runs.
    struct Refresh {
        std::string key;
        UsageQuery query;
    };
    void StartRefresher() {
        std::lock_guard<std::mutex> lock(mu_);
        TALLY_ASSERT(!refresher_running_);
        refresher_running_ = true;
        refresher_stop_ = false;
    }
    void StopRefresher() {
        std::lock_guard<std::mutex> lock(mu_);
        refresher_stop_ = true;
        refresher_running_ = false;
        for (const Refresh& r : refresh_queue_) {
            if (auto it = entries_.find(r.key); it != entries_.end()) it->second.refreshing = false;
        }
        refresh_queue_.clear();
        refresh_wanted_.notify_all();
    }
    // The next answer to compute again; nullopt once stopped. Skipped: a
    // key no longer kept, and one a request computed since it was queued.
    std::optional<Refresh> NextRefresh() {
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
            refresh_wanted_.wait(lock, [&] { return refresher_stop_ || !refresh_queue_.empty(); });
            if (refresher_stop_) return std::nullopt;
            Refresh r = std::move(refresh_queue_.front());
            refresh_queue_.pop_front();
            auto it = entries_.find(r.key);
            if (it == entries_.end()) continue;
            if (Clock::now() - it->second.marks_read_at <= max_age_ / 2) {
                it->second.refreshing = false;
                continue;
            }
            return r;
        }
    }
    // The refresh of `key` ended (its answer Put or found current, or not).
    void RefreshEnded(const std::string& key, bool ok) {
        std::lock_guard<std::mutex> lock(mu_);
        Refreshed(key, ok);
    }

   private:
    struct Entry {
        Marks marks;
        Clock::time_point marks_read_at;
        std::shared_ptr<const UsageReport> report;
        std::list<std::string>::iterator used;  // its place in used_
        bool refreshing = false;                // queued for, or being computed by, the refresher
    };
    void Refreshed(const std::string& key, bool ok) {  // REQUIRES(mu_)
        if (!ok) ++refresh_failures_;
        if (auto it = entries_.find(key); it != entries_.end()) it->second.refreshing = false;
    }
    struct FoldedEntry {
        std::shared_ptr<const Folded> folded;
        std::list<std::string>::iterator used;  // its place in folded_used_
    };
    const size_t max_entries_;
    const size_t max_folded_;
    const std::chrono::milliseconds max_age_;
    const std::chrono::milliseconds fold_wait_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
    std::list<std::string> used_;                     // keys, most recently used first; GUARDED_BY(mu_)
    std::unordered_map<std::string, FoldedEntry> folded_;  // by customer and period; GUARDED_BY(mu_)
    std::list<std::string> folded_used_;                   // GUARDED_BY(mu_)
    int64_t hits_ = 0, older_hits_ = 0, fold_hits_ = 0, misses_ = 0, delta_only_ = 0;  // GUARDED_BY(mu_)
    int64_t refresh_current_ = 0, refresh_computed_ = 0, refresh_failures_ = 0;         // GUARDED_BY(mu_)
    bool refresher_running_ = false, refresher_stop_ = false;                           // GUARDED_BY(mu_)
    std::deque<Refresh> refresh_queue_;  // at most one per entry; GUARDED_BY(mu_)
    std::condition_variable refresh_wanted_;
};

namespace {

int32_t HourOf(Instant t) {
    return static_cast<int32_t>(std::chrono::floor<std::chrono::hours>(t.time_since_epoch()).count());
}

// The last billing period whose records the query reads: the period (and
// those before it for amount coupons), or for a range, the periods of hours
// before `to`. A record's period is the month its billing period starts in
// (local time), never after the local month of its hour, which is at most
// the UTC month after: one more for good measure.
int32_t LastPeriodRead(const UsageQuery& q) {
    if (q.period) return *q.period;
    const std::chrono::sys_days day = std::chrono::floor<std::chrono::days>(q.to - std::chrono::hours(1));
    const std::chrono::year_month_day ymd{day};
    return MonthId(static_cast<int>(ymd.year()), static_cast<int>(static_cast<unsigned>(ymd.month()))) + 2;
}

// Everything of a query its answer depends on besides the ledger.
std::string CacheKey(const UsageQuery& q) {
    std::string key = q.customer;
    key += '\x1f';
    key += q.period ? "p" + std::to_string(*q.period)
                    : "r" + std::to_string(q.from.time_since_epoch().count()) + "-" +
                          std::to_string(q.to.time_since_epoch().count());
    key += '\x1f';
    key += GroupByName(q.group_by);
    return key;
}

class LedgerBackend final : public Backend {
   public:
    LedgerBackend(std::string url, std::shared_ptr<UsageCache> cache) : url_(std::move(url)), cache_(std::move(cache)) {}

    std::optional<ledger::Principal> Authenticate(std::string_view secret) override {
        return Guard(keys_, [&](ledger::KeyStore& k) { return k.Authenticate(secret); });
    }

    std::string NotReady() override {
        try {
            return Reader().NotReady();
        } catch (const std::exception&) {
            reader_.reset();
            return "the database does not answer";
        }
    }

    UsageReport Usage(const UsageQuery& q) override {
        const std::string key = CacheKey(q);
        if (cache_) {
            if (std::shared_ptr<const UsageReport> young = cache_->Young(key, q, UsageCache::Clock::now())) {
                return *young;
            }
        }
        return *Compute(q, key, /*refresh=*/false);
    }

    // The answer of `q` (whose CacheKey is `key`) at the ledger's state
    // now: kept if the marks say it is current, else computed (and kept).
    // `refresh`: the refresher's.
    std::shared_ptr<const UsageReport> Compute(const UsageQuery& q, const std::string& key, bool refresh) {
        ledger::UsageReader& reader = Reader();
        try {
            const UsageCache::Clock::time_point marks_read_at = UsageCache::Clock::now();
            const ledger::UsageReader::Marks marks = reader.ReadMarks(q.customer, LastPeriodRead(q));
            if (cache_) {
                if (std::shared_ptr<const UsageReport> hit = cache_->Find(key, marks, marks_read_at, refresh)) {
                    return hit;
                }
            }
            if (!catalog_ || marks.catalog != catalog_version_) {
                catalog_.reset();
                subscriptions_of_.clear();
                catalog_ =
                    std::make_unique<ingest::CatalogSnapshot>(Guard(store_, [](ledger::Store& s) { return s.Load(); }));
                for (const Subscription& s : catalog_->subscriptions) subscriptions_of_[s.customer].push_back(s);
                catalog_version_ = marks.catalog;
            }
            // Only the customer's subscriptions: pricing indexes what it is given.
            static const std::vector<Subscription> kNone;
            const auto found = subscriptions_of_.find(q.customer);
            const std::vector<Subscription>& subscriptions = found != subscriptions_of_.end() ? found->second : kNone;
            // Something holding rollup_deltas locked (no longer the fold: a
            // migration): with a recent answer kept, wait for it only
            // FoldWait, then serve that answer.
            // (The refresher waits as long as it takes.)
            const std::shared_ptr<const UsageReport> recent =
                cache_ && !refresh && cache_->FoldWait().count() > 0 ? cache_->Recent(key, marks_read_at) : nullptr;
            const int64_t wait_ms = recent ? cache_->FoldWait().count() : 0;
            std::vector<RollupRecord> records;
            std::vector<RollupRecord> earlier;
            try {
                if (q.period && cache_) {
                    // The month's folded rows change only at a fold: kept,
                    // only the deltas are read again while the counter holds.
                    const std::string folded_key = q.customer + '\x1f' + std::to_string(*q.period);
                    std::shared_ptr<const UsageCache::Folded> folded = cache_->FindFolded(folded_key);
                    ledger::UsageReader::PeriodParts parts =
                        reader.ReadPeriodParts(q.customer, *q.period, folded == nullptr, wait_ms);
                    if (!parts.with_folded && parts.usage != folded->usage) {
                        parts = reader.ReadPeriodParts(q.customer, *q.period, true, wait_ms);
                    }
                    if (parts.with_folded) {
                        folded = std::make_shared<const UsageCache::Folded>(
                            UsageCache::Folded{parts.usage, std::move(parts.folded)});
                        cache_->PutFolded(folded_key, folded);
                    } else {
                        cache_->DeltaOnly();
                    }
                    TALLY_ASSERT(folded->usage == parts.usage);
                    records = ledger::UsageReader::Combine(folded->records, parts.deltas);
                } else if (q.period) {
                    records = reader.PeriodRecords(q.customer, *q.period, wait_ms);
                } else {
                    records = reader.RangeRecords(q.customer, HourOf(q.from), HourOf(q.to), wait_ms);
                }
                // Amount coupons are balances earlier periods use up: then those
                // periods are priced first, as the invoice run prices them.
                if (NeedsEarlierPeriods(subscriptions, q.customer)) {
                    std::optional<int32_t> first = q.period;
                    for (const RollupRecord& r : records) first = std::min(first.value_or(r.period), r.period);
                    if (first) earlier = reader.EarlierRecords(q.customer, *first, wait_ms);
                }
            } catch (const ledger::UsageReader::Busy&) {
                TALLY_ASSERT(recent != nullptr);
                cache_->FoldHit();
                return recent;
            }
            auto report = std::make_shared<UsageReport>(
                ComputeUsage(catalog_->catalog, subscriptions, records, q, earlier));
            if (cache_) cache_->Put(key, marks, marks_read_at, report, refresh);
            return report;
        } catch (const HttpError&) {
            throw;
        } catch (...) {
            reader_.reset();
            throw;
        }
    }

    std::vector<billing::InvoiceDocument> Invoices(const InvoiceQuery& q) override {
        ledger::ListFilter f;
        f.period_id = q.period;
        f.customer = q.customer;
        f.status = q.status;
        return Guard(invoices_, [&](ledger::InvoiceStore& s) { return s.List(f); });
    }

    std::optional<billing::InvoiceDocument> Invoice(const std::string& id) override {
        return Guard(invoices_, [&](ledger::InvoiceStore& s) -> std::optional<billing::InvoiceDocument> {
            try {
                return s.Load(id);
            } catch (const ledger::LedgerError&) {
                return std::nullopt;  // no such invoice
            }
        });
    }

    std::string Pdf(const billing::InvoiceDocument& doc) override {
        // The issuer as when the invoice was finalized (a draft: as now).
        const ledger::Issuer issuer = Guard(invoices_, [&](ledger::InvoiceStore& s) { return s.IssuerOf(doc); });
        std::string error;
        std::string pdf = render::InvoicePdfBytes(documents::PdfOf(doc, issuer), error);
        if (pdf.empty()) throw std::runtime_error("invoice PDF: " + error);
        return pdf;
    }
    std::string Csv(const billing::InvoiceDocument& doc) override { return documents::CsvOf({doc}); }

    FinanceBackend* Finance() override {
        if (!finance_) finance_ = MakeLedgerFinanceBackend(url_);
        return finance_.get();
    }
    SalesBackend* Sales() override {
        if (!sales_) sales_ = MakeLedgerSalesBackend(url_);
        return sales_.get();
    }

   private:
    ledger::UsageReader& Reader() {
        if (!reader_) reader_ = std::make_unique<ledger::UsageReader>(url_);
        return *reader_;
    }

    template <typename Handle, typename Body>
    auto Guard(std::unique_ptr<Handle>& handle, Body body) -> decltype(body(*handle)) {
        return WithHandle(handle, url_, std::move(body));
    }

    std::string url_;
    std::unique_ptr<ledger::KeyStore> keys_;
    std::unique_ptr<ledger::InvoiceStore> invoices_;
    std::unique_ptr<ledger::Store> store_;
    std::unique_ptr<ledger::UsageReader> reader_;
    std::shared_ptr<UsageCache> cache_;
    std::unique_ptr<ingest::CatalogSnapshot> catalog_;
    std::unordered_map<std::string, std::vector<Subscription>> subscriptions_of_;  // catalog_'s, by customer
    int64_t catalog_version_ = -1;
    std::unique_ptr<FinanceBackend> finance_;
    std::unique_ptr<SalesBackend> sales_;
};

}  // namespace

std::shared_ptr<UsageCache> MakeUsageCache(size_t max_entries, std::chrono::milliseconds max_age,
                                           std::chrono::milliseconds fold_wait) {
    return std::make_shared<UsageCache>(max_entries, max_age, fold_wait);
}

UsageCacheStats StatsOf(const UsageCache& cache) { return cache.Stats(); }

std::string MetricsText(const UsageCacheStats& s) {
    std::string out =
        "# HELP tally_usage_cache_answers_total GET /v1/usage answers by how they were made: hit (kept, current), "
        "older (kept, younger than --usage-max-age-ms), fold (kept, the read waited too long), computed.\n"
        "# TYPE tally_usage_cache_answers_total counter\n";
    const std::pair<const char*, int64_t> answers[] = {
        {"hit", s.hits}, {"older", s.older_hits}, {"fold", s.fold_hits}, {"computed", s.misses}};
    for (const auto& [how, n] : answers) {
        out += std::string("tally_usage_cache_answers_total{how=\"") + how + "\"} " + std::to_string(n) + "\n";
    }
    out +=
        "# HELP tally_usage_cache_refreshes_total Answers the refresher computed again, found current, or failed on.\n"
        "# TYPE tally_usage_cache_refreshes_total counter\n"
        "tally_usage_cache_refreshes_total{result=\"computed\"} " +
        std::to_string(s.refresh_computed) +
        "\n"
        "tally_usage_cache_refreshes_total{result=\"current\"} " +
        std::to_string(s.refresh_current) +
        "\n"
        "tally_usage_cache_refreshes_total{result=\"failed\"} " +
        std::to_string(s.refresh_failures) +
        "\n"
        "# HELP tally_usage_cache_entries Answers kept now.\n"
        "# TYPE tally_usage_cache_entries gauge\n"
        "tally_usage_cache_entries " +
        std::to_string(s.entries) + "\n";
    return out;
}

std::unique_ptr<Backend> MakeLedgerBackend(const std::string& database_url, std::shared_ptr<UsageCache> usage_cache) {
    return std::make_unique<LedgerBackend>(database_url, std::move(usage_cache));
}

struct UsageRefresher::Impl {
    std::shared_ptr<UsageCache> cache;
    std::vector<std::unique_ptr<LedgerBackend>> backends;  // one per thread
    std::vector<std::thread> threads;

    void Run(LedgerBackend& backend) {
        while (std::optional<UsageCache::Refresh> r = cache->NextRefresh()) {
            bool ok = false;
            try {
                backend.Compute(r->query, r->key, /*refresh=*/true);
                ok = true;
            } catch (...) {
                // The database is away or a statement timed out: the answer
                // ages out and the next request computes it (and says why).
            }
            cache->RefreshEnded(r->key, ok);
        }
    }
};

UsageRefresher::UsageRefresher(const std::string& database_url, std::shared_ptr<UsageCache> cache, int threads)
    : impl_(std::make_unique<Impl>()) {
    TALLY_ASSERT(cache != nullptr);
    TALLY_ASSERT(threads > 0);
    impl_->cache = std::move(cache);
    impl_->cache->StartRefresher();
    try {
        for (int i = 0; i < threads; ++i) {
            impl_->backends.push_back(std::make_unique<LedgerBackend>(database_url, impl_->cache));
            impl_->threads.emplace_back(
                [impl = impl_.get(), backend = impl_->backends.back().get()] { impl->Run(*backend); });
        }
    } catch (...) {
        impl_->cache->StopRefresher();
        for (std::thread& t : impl_->threads) t.join();
        throw;
    }
}

UsageRefresher::~UsageRefresher() {
    impl_->cache->StopRefresher();
    for (std::thread& t : impl_->threads) t.join();
}

}  // namespace tally::api
