// What `tally serve` does with one request once the server has read it:
// target parsing, routing, authentication (Authorization: Bearer), the
// per-key rate limit, roles, the customer scope, the handlers and the
// response headers every answer carries. The database is behind Backend
// (one per worker thread); the server (api/server.h) owns the sockets.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "api/queries.h"
#include "api/routes.h"
#include "api/usage_report.h"
#include "billing/invoice_document.h"
#include "ledger/key_store.h"

namespace tally::api {

class StaticFiles;     // api/static_files.h
class FinanceBackend;  // api/finance.h
class SalesBackend;    // api/sales.h

// The database side of the routes, one per worker thread (not thread-safe).
// Each method may throw (the request becomes a 500).
class Backend {
   public:
    virtual ~Backend() = default;
    // nullopt for any secret that is not a live key.
    virtual std::optional<ledger::Principal> Authenticate(std::string_view secret) = 0;
    // "" when ready; else why not (GET /readyz).
    virtual std::string NotReady() = 0;
    virtual UsageReport Usage(const UsageQuery& query) = 0;
    virtual std::vector<billing::InvoiceDocument> Invoices(const InvoiceQuery& query) = 0;
    // By id ("17") or number; nullopt when there is none.
    virtual std::optional<billing::InvoiceDocument> Invoice(const std::string& id_or_number) = 0;
    virtual std::string Pdf(const billing::InvoiceDocument& doc) = 0;
    virtual std::string Csv(const billing::InvoiceDocument& doc) = 0;
    // The finance and sales routes' backends; nullptr: those routes are 404s.
    virtual FinanceBackend* Finance() { return nullptr; }
    virtual SalesBackend* Sales() { return nullptr; }
};

struct Request {
    std::string_view method;
    std::string_view target;
    std::string_view authorization;  // the Authorization header, "" when absent
    std::string_view body;
    std::string_view remote;  // the client's address ("" when not known): failed keys are limited by it
};

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // besides the common ones
    // For the access log and metrics: the route's pattern ("unmatched" when
    // none), the key id when a key was accepted; never the secret or query.
    std::string route = "unmatched";
    std::string key_id;
};

// Headers on every response: Content-Security-Policy, nosniff, no referrer,
// and Cache-Control no-store under /v1 (and on errors).
std::vector<std::pair<std::string, std::string>> CommonHeaders(std::string_view path);

// A token bucket per key: `rate` requests per second, up to `burst` at once.
// Integer arithmetic (micro-tokens). Thread-safe.
class RateLimiter {
   public:
    RateLimiter(int64_t rate, int64_t burst);
    // 0 when the request may go; else the seconds to wait (Retry-After).
    int64_t Take(const std::string& key, std::chrono::steady_clock::time_point now);
    // What Take would answer, taking nothing.
    int64_t Peek(const std::string& key, std::chrono::steady_clock::time_point now);
    // Buckets kept at most (keys and client addresses); beyond it, the
    // buckets that have filled up again are forgotten (a full bucket is the
    // same as none).
    static constexpr size_t kMaxBuckets = 65536;

   private:
    struct Bucket {
        int64_t micro_tokens = 0;
        std::chrono::steady_clock::time_point at;
    };
    // The bucket refilled up to `now` (REQUIRES: mutex_ held).
    void Refill(Bucket& b, std::chrono::steady_clock::time_point now) const;
    int64_t WaitFor(const Bucket& b) const;
    int64_t rate_, burst_;
    std::mutex mutex_;
    std::map<std::string, Bucket> buckets_;
};

// Prometheus counters: requests by route and status, a latency histogram,
// requests in flight, connections refused for the bound. Thread-safe.
class Metrics {
   public:
    void Record(const std::string& route, int status, std::chrono::microseconds latency);
    void Refused() { refused_.fetch_add(1); }
    std::atomic<int64_t>& in_flight() { return in_flight_; }
    std::string Text();

   private:
    static constexpr int64_t kBucketsUs[] = {1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000};
    static constexpr size_t kBuckets = sizeof kBucketsUs / sizeof kBucketsUs[0];
    std::mutex mutex_;
    std::map<std::pair<std::string, int>, int64_t> requests_;
    int64_t histogram_[kBuckets + 1] = {};
    int64_t count_ = 0, sum_us_ = 0;
    std::atomic<int64_t> in_flight_{0};
    std::atomic<int64_t> refused_{0};
};

struct ServiceOptions {
    int64_t rate_limit = 50;   // requests per second per key
    int64_t rate_burst = 100;  // at once
    // Requests of one key being answered at the same time; more are a 429
    // (one key's heavy queries must not take every worker thread).
    int64_t in_flight_per_key = 2;
    // Requests with a key that is not valid, per client address: each costs
    // a lookup, so beyond this rate they are a 429 without one.
    int64_t auth_failure_rate = 5;    // per second
    int64_t auth_failure_burst = 20;  // at once
    // More lines of Prometheus text for GET /metrics (the usage cache's).
    std::function<std::string()> more_metrics = nullptr;
};

// Thread-safe: one Service for the process, one Backend per thread.
class Service {
   public:
    // `pages`: GET / and /static/ (api/static_files.h); none: those are 404s.
    explicit Service(ServiceOptions options, std::shared_ptr<const StaticFiles> pages = nullptr);
    // Never throws: a handler's exception is a 500 naming `request_id`,
    // with what() in *internal_error for the log (never in the response).
    // A GET or HEAD that fails because a database connection was lost
    // (PostgreSQL restarted) is tried again on a new one (at most 5 tries).
    Response Handle(const Request& request, Backend& backend, const std::string& request_id,
                    std::string* internal_error);
    Metrics& metrics() { return metrics_; }

   private:
    void Dispatch(const Request& request, Backend& backend, Response* response);
    ServiceOptions options_;
    std::shared_ptr<const StaticFiles> pages_;
    RateLimiter limiter_;
    RateLimiter auth_failures_;  // by client address
    Metrics metrics_;
    std::mutex in_flight_mu_;
    std::unordered_map<std::string, int64_t> in_flight_;  // by key id
};

// The response of an HttpError.
Response ErrorResponse(const HttpError& error);

}  // namespace tally::api
