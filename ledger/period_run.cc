#include "ledger/period_run.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "billing/invoice_run.h"
#include "ledger/cost_store.h"
#include "ledger/store.h"

namespace tally::ledger {

namespace {

// `url` with its connections' statement_timeout and application_name set
// (URI or key=value form). A later `options` or `application_name` in a
// conninfo replaces an earlier one (libpq), so this wins over the URL's own.
std::string BoundUrl(const std::string& url, int64_t timeout_ms, const std::string& application_name) {
    const std::string ms = std::to_string(timeout_ms);
    if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
        return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-c%20statement_timeout%3D" + ms +
               "&application_name=" + application_name;
    }
    return url + (url.empty() ? "" : " ") + "options='-c statement_timeout=" + ms +
           "' application_name=" + application_name;
}

constexpr std::chrono::milliseconds kFallback{30000};

// Ends the connections named `application_name` once `bound` passes,
// unless Stop() came first.
class Watchdog {
   public:
    Watchdog(std::string url, std::string application_name, std::chrono::milliseconds bound)
        : url_(std::move(url)), name_(std::move(application_name)) {
        thread_ = std::thread([this, bound] { Wait(bound); });
    }
    ~Watchdog() { Stop(); }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    void Stop() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stopped_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }
    bool fired() const { return fired_.load(); }

   private:
    void Wait(std::chrono::milliseconds bound) {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, bound, [this] { return stopped_; })) return;
        fired_ = true;
        lock.unlock();
        // The run is stopped by ending its connections; until they are
        // ended (a connection may be opening), try again each second.
        for (int attempt = 0; attempt < 30; ++attempt) {
            try {
                pqxx::connection conn(url_);
                pqxx::nontransaction tx(conn);
                tx.exec_params(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    name_);
            } catch (const std::exception&) {
                // The database is not reachable: neither is the run.
            }
            lock.lock();
            if (cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopped_; })) return;
            lock.unlock();
        }
    }

    std::string url_, name_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopped_ = false;
    std::atomic<bool> fired_{false};
    std::thread thread_;
};

// *run_id: the run's id once it is committed.
PeriodRun RunUnbounded(const std::string& url, RunOptions o, int64_t* run_id) {
    PeriodRun out;
    Store catalog_store(url);
    const ingest::CatalogSnapshot cat = catalog_store.Load();
    CostStore cost_store(url);
    const CostCatalog costs = cost_store.LoadCostCards();
    o.costs = costs.empty() ? nullptr : &costs;
    InvoiceStore store(url);
    out.result = store.Run(cat.catalog, cat.subscriptions, o);
    *run_id = out.result.run_id;
    if (o.costs != nullptr) {
        out.margin_report_id = cost_store.WriteMarginReport(billing::PeriodLabel(o.period_id),
                                                            "invoice run " + std::to_string(out.result.run_id),
                                                            out.result.run_id, out.result.margin);
    }
    return out;
}

}  // namespace

PeriodRun RunPeriod(const std::string& database_url, RunOptions options, std::chrono::milliseconds bound) {
    int64_t run_id = 0;
    if (bound.count() <= 0) return RunUnbounded(database_url, std::move(options), &run_id);
    static std::atomic<int64_t> runs{0};
    const std::string name = "tally-run-" + std::to_string(::getpid()) + "-" + std::to_string(runs.fetch_add(1));
    Watchdog watchdog(database_url, name, bound);
    try {
        // The watchdog stops the run; statement_timeout is the fallback
        // should it not reach the database in time.
        PeriodRun out =
            RunUnbounded(BoundUrl(database_url, bound.count() + kFallback.count(), name), std::move(options), &run_id);
        watchdog.Stop();
        return out;
    } catch (const std::exception& e) {
        watchdog.Stop();
        const std::string seconds = std::to_string(bound.count() / 1000);
        if (run_id != 0) {
            // The run committed: whatever failed after it must not read as "nothing was kept".
            if (!watchdog.fired()) {
                throw std::runtime_error("invoice run " + std::to_string(run_id) +
                                         " was kept, but its margin report failed (tally margin computes it "
                                         "again): " + e.what());
            }
            throw RunTimedOut("invoice run " + std::to_string(run_id) + " was kept, but its margin report was " +
                              "stopped after " + seconds + " s (tally margin computes it again)");
        }
        if (watchdog.fired()) {
            throw RunTimedOut("the invoice run took longer than " + seconds +
                              " s and was stopped; nothing of it was kept");
        }
        // A statement that ran into the bound on its own.
        const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
        if (sql != nullptr && sql->sqlstate() == "57014") {
            throw RunTimedOut("a statement of the invoice run took longer than " +
                              std::to_string((bound + kFallback).count() / 1000) +
                              " s and was stopped; nothing of it was kept");
        }
        throw;
    }
}

}  // namespace tally::ledger
