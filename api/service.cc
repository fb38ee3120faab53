#include "api/service.h"

#include <algorithm>
#include <cstdio>

#include "api/finance.h"
#include "api/sales.h"
#include "api/static_files.h"
#include "base/assert.h"
#include "ledger/errors.h"

namespace tally::api {

namespace {

using billing::JsonQuote;

std::string MoneyText(const Amount& a) {
    return a.ToString(a.currency().minor_digits());
}

std::string CurrencyCode(const Amount& a) {
    return a.currency().valid() ? std::string(a.currency().code()) : std::string();
}

std::string UsageJson(const UsageQuery& q, const UsageReport& r) {
    std::string out = "{\"customer\":" + JsonQuote(q.customer);
    if (q.period) {
        out += ",\"period\":" + JsonQuote(MonthIdLabel(*q.period));
    } else {
        out += ",\"from\":" + JsonQuote(FormatRfc3339(q.from)) + ",\"to\":" + JsonQuote(FormatRfc3339(q.to));
    }
    out += ",\"group_by\":" + JsonQuote(GroupByName(q.group_by)) + ",\"rows\":[";
    for (size_t i = 0; i < r.rows.size(); ++i) {
        const UsageRow& row = r.rows[i];
        out += (i == 0 ? "" : ",");
        out += "{\"period\":" + JsonQuote(row.period) + ",\"group\":" + JsonQuote(row.group) +
               ",\"kind\":" + JsonQuote(row.kind) + ",\"calls\":" + std::to_string(row.calls) +
               ",\"cost\":" + JsonQuote(MoneyText(row.cost)) + ",\"currency\":" + JsonQuote(CurrencyCode(row.cost)) +
               "}";
    }
    out += "],\"totals\":[";
    for (size_t i = 0; i < r.totals.size(); ++i) {
        out += (i == 0 ? "" : ",");
        out += "{\"currency\":" + JsonQuote(CurrencyCode(r.totals[i])) +
               ",\"cost\":" + JsonQuote(MoneyText(r.totals[i])) + "}";
    }
    out += "],\"periods\":[";
    for (size_t i = 0; i < r.periods.size(); ++i) {
        const PeriodSubtotal& p = r.periods[i];
        out += (i == 0 ? "" : ",");
        out += "{\"period\":" + JsonQuote(p.period) + ",\"plan\":" + JsonQuote(p.plan) +
               ",\"calls\":" + std::to_string(p.calls);
        if (p.error.empty()) {
            out += ",\"subtotal\":" + JsonQuote(MoneyText(p.subtotal)) +
                   ",\"currency\":" + JsonQuote(CurrencyCode(p.subtotal));
        } else {
            out += ",\"subtotal\":null,\"error\":" + JsonQuote(p.error);
        }
        out += "}";
    }
    out += "],\"unresolved_records\":" + std::to_string(r.unresolved) + "}";
    return out;
}

std::string InvoiceSummaryJson(const billing::InvoiceDocument& d) {
    return "{\"invoice_id\":" + std::to_string(d.invoice_id) + ",\"number\":" + JsonQuote(d.number) +
           ",\"status\":" + JsonQuote(d.status) + ",\"customer\":" + JsonQuote(d.customer) +
           ",\"customer_name\":" + JsonQuote(d.customer_name) + ",\"plan\":" + JsonQuote(d.plan) +
           ",\"period\":" + JsonQuote(d.period) + ",\"currency\":" + JsonQuote(d.currency) +
           ",\"subtotal\":" + JsonQuote(d.subtotal) + ",\"tax\":" + JsonQuote(d.tax) +
           ",\"total\":" + JsonQuote(d.total) + ",\"amount_due\":" + JsonQuote(d.amount_due) +
           ",\"finalized_at\":" + JsonQuote(d.finalized_at) + "}";
}

// The secret of "Bearer <secret>" (scheme case-insensitive), or "".
std::string_view BearerSecret(std::string_view header) {
    constexpr std::string_view kScheme = "bearer ";
    if (header.size() <= kScheme.size()) return {};
    for (size_t i = 0; i < kScheme.size(); ++i) {
        const char c = header[i];
        if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kScheme[i]) return {};
    }
    std::string_view secret = header.substr(kScheme.size());
    while (!secret.empty() && secret.front() == ' ') secret.remove_prefix(1);
    while (!secret.empty() && secret.back() == ' ') secret.remove_suffix(1);
    if (secret.find_first_of(" \t") != std::string_view::npos) return {};
    return secret;
}

Response Unauthorized(bool key_given) {
    Response r = ErrorResponse(HttpError(401, "unauthorized",
                                         key_given ? "the API key is not valid (unknown, revoked or expired)"
                                                   : "an API key is required: Authorization: Bearer <key>"));
    r.headers.emplace_back("WWW-Authenticate",
                           key_given ? "Bearer realm=\"tally\", error=\"invalid_token\"" : "Bearer realm=\"tally\"");
    return r;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> CommonHeaders(std::string_view path) {
    std::vector<std::pair<std::string, std::string>> h = {
        {"Content-Security-Policy",
         "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"},
    };
    if (path.substr(0, 4) == "/v1/" || path == "/v1" || path == "/metrics") h.emplace_back("Cache-Control", "no-store");
    return h;
}

Response ErrorResponse(const HttpError& error) {
    Response r;
    r.status = error.status;
    r.body = ErrorBody(error.code, error.what());
    return r;
}

RateLimiter::RateLimiter(int64_t rate, int64_t burst) : rate_(rate), burst_(burst) {
    TALLY_ASSERT(rate > 0);
    TALLY_ASSERT(burst > 0);
}

void RateLimiter::Refill(Bucket& b, std::chrono::steady_clock::time_point now) const {
    constexpr int64_t kMicro = 1000000;
    const int64_t elapsed_us =
        std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(now - b.at).count());
    // elapsed_us * rate_ micro-tokens, capped before it can overflow.
    const int64_t cap = burst_ * kMicro;
    const int64_t added = elapsed_us >= cap / rate_ + 1 ? cap : elapsed_us * rate_;
    b.micro_tokens = std::min(cap, b.micro_tokens + added);
    b.at = now;
}

int64_t RateLimiter::WaitFor(const Bucket& b) const {
    constexpr int64_t kMicro = 1000000;
    if (b.micro_tokens >= kMicro) return 0;
    const int64_t missing = kMicro - b.micro_tokens;                       // micro-tokens
    return std::max<int64_t>(1, (missing / rate_ + kMicro - 1) / kMicro);  // whole seconds, at least 1
}

int64_t RateLimiter::Take(const std::string& key, std::chrono::steady_clock::time_point now) {
    constexpr int64_t kMicro = 1000000;
    std::lock_guard<std::mutex> lock(mutex_);
    if (buckets_.size() >= kMaxBuckets && buckets_.find(key) == buckets_.end()) {
        for (auto it = buckets_.begin(); it != buckets_.end();) {
            Refill(it->second, now);
            it = it->second.micro_tokens == burst_ * kMicro ? buckets_.erase(it) : std::next(it);
        }
    }
    auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_ * kMicro, now});
    Bucket& b = it->second;
    if (!inserted) Refill(b, now);
    const int64_t wait = WaitFor(b);
    if (wait == 0) b.micro_tokens -= kMicro;
    return wait;
}

int64_t RateLimiter::Peek(const std::string& key, std::chrono::steady_clock::time_point now) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = buckets_.find(key);
    if (it == buckets_.end()) return 0;
    Bucket b = it->second;
    Refill(b, now);
    return WaitFor(b);
}

void Metrics::Record(const std::string& route, int status, std::chrono::microseconds latency) {
    const int64_t us = latency.count();
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_[{route, status}];
    size_t b = 0;
    while (b < kBuckets && us > kBucketsUs[b]) ++b;
    ++histogram_[b];
    ++count_;
    sum_us_ += us;
}

std::string Metrics::Text() {
    auto seconds = [](int64_t us) {
        char text[32];
        std::snprintf(text, sizeof text, "%lld.%06lld", static_cast<long long>(us / 1000000),
                      static_cast<long long>(us % 1000000));
        return std::string(text);
    };
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out =
        "# HELP tally_http_requests_total HTTP requests answered, by route pattern and status.\n"
        "# TYPE tally_http_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
        out += "tally_http_requests_total{route=" + JsonQuote(key.first) + ",status=\"" + std::to_string(key.second) +
               "\"} " + std::to_string(n) + "\n";
    }
    out +=
        "# HELP tally_http_request_duration_seconds Time from a request read to its response handed to the socket.\n"
        "# TYPE tally_http_request_duration_seconds histogram\n";
    int64_t cumulative = 0;
    for (size_t b = 0; b < kBuckets; ++b) {
        cumulative += histogram_[b];
        out += "tally_http_request_duration_seconds_bucket{le=\"" + seconds(kBucketsUs[b]) + "\"} " +
               std::to_string(cumulative) + "\n";
    }
    cumulative += histogram_[kBuckets];
    out += "tally_http_request_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
    out += "tally_http_request_duration_seconds_sum " + seconds(sum_us_) + "\n";
    out += "tally_http_request_duration_seconds_count " + std::to_string(count_) + "\n";
    out +=
        "# HELP tally_http_requests_in_flight Requests being handled now.\n"
        "# TYPE tally_http_requests_in_flight gauge\n"
        "tally_http_requests_in_flight " +
        std::to_string(in_flight_.load()) + "\n";
    out +=
        "# HELP tally_http_connections_refused_total Connections refused (503) beyond --max-connections.\n"
        "# TYPE tally_http_connections_refused_total counter\n"
        "tally_http_connections_refused_total " +
        std::to_string(refused_.load()) + "\n";
    return out;
}

Service::Service(ServiceOptions options, std::shared_ptr<const StaticFiles> pages)
    : options_(options),
      pages_(std::move(pages)),
      limiter_(options.rate_limit, options.rate_burst),
      auth_failures_(options.auth_failure_rate, options.auth_failure_burst) {}

Response Service::Handle(const Request& request, Backend& backend, const std::string& request_id,
                         std::string* internal_error) {
    const bool safe = request.method == "GET" || request.method == "HEAD";
    for (int attempt = 1;; ++attempt) {
        Response response;
        try {
            Dispatch(request, backend, &response);
            return response;
        } catch (const HttpError& e) {
            Response error = ErrorResponse(e);
            error.route = response.route;
            error.key_id = response.key_id;
            error.headers = std::move(response.headers);
            for (const auto& header : e.headers) error.headers.push_back(header);
            return error;
        } catch (const std::exception& e) {
            // The backend dropped its broken connection; a read may go again.
            // A worker holds a few connections (keys, usage, invoices): each
            // attempt finds at most one more of them broken.
            constexpr int kAttempts = 5;
            if (safe && attempt < kAttempts &&
                ledger::Classify(e, "answering a request").kind == ingest::SinkErrorKind::kRetry) {
                continue;
            }
            *internal_error = e.what();
            // A write that met a concurrent one (a serialization failure, a
            // deadlock) or lost its connection before it committed was rolled
            // back: it may go again (an outcome in doubt is not kRetry).
            const bool retry = ledger::Classify(e, "answering a request").kind == ingest::SinkErrorKind::kRetry;
            if (retry || ledger::IsStatementCancelled(e)) {  // the statement bound passed, often waiting for a lock
                Response busy = ErrorResponse(
                    retry ? HttpError(503, "busy",
                                      "the ledger could not do this now (a concurrent change, or the database was "
                                      "unreachable) and nothing of it was kept; try again")
                          : HttpError(503, "timeout",
                                      "the ledger did not answer within the statement bound (busy, or another writer "
                                      "holds what this needs); try again"));
                busy.route = response.route;
                busy.key_id = response.key_id;
                busy.headers.emplace_back("Retry-After", "1");
                return busy;
            }
            Response error = ErrorResponse(
                HttpError(500, "internal", "the request failed inside tally; the log names request " + request_id));
            error.route = response.route;
            error.key_id = response.key_id;
            return error;
        }
    }
}

void Service::Dispatch(const Request& request, Backend& backend, Response* response) {
    if (pages_ && StaticFiles::Handles(request.target)) {
        *response = pages_->Serve(request.method, request.target);
        return;
    }
    const Target target = ParseTarget(request.target);
    const Matched m = MatchRoute(request.method, target);
    response->route = std::string(m.route->pattern);
    ledger::Principal who;
    if (m.route->roles != 0) {
        const std::string_view secret = BearerSecret(request.authorization);
        // An address that keeps sending keys that are not valid gets no more lookups for a while.
        const std::string address = "address:" + std::string(request.remote);
        if (!secret.empty() && !request.remote.empty()) {
            if (const int64_t wait = auth_failures_.Peek(address, std::chrono::steady_clock::now()); wait > 0) {
                response->headers.emplace_back("Retry-After", std::to_string(wait));
                throw HttpError(429, "rate_limited", "too many requests with keys that are not valid from this address");
            }
        }
        std::optional<ledger::Principal> p;
        if (!secret.empty()) p = backend.Authenticate(secret);
        if (!p) {
            if (!secret.empty() && !request.remote.empty()) auth_failures_.Take(address, std::chrono::steady_clock::now());
            Response r = Unauthorized(!request.authorization.empty());
            r.route = response->route;
            *response = std::move(r);
            return;
        }
        who = std::move(*p);
        response->key_id = who.key_id;
        if (const int64_t wait = limiter_.Take(who.key_id, std::chrono::steady_clock::now()); wait > 0) {
            response->headers.emplace_back("Retry-After", std::to_string(wait));
            throw HttpError(429, "rate_limited",
                            "more than " + std::to_string(options_.rate_limit) + " requests per second with this key");
        }
        if (!Allows(*m.route, who.role)) {
            throw HttpError(403, "forbidden",
                            "a " + std::string(ledger::RoleName(who.role)) + " key may not use this route");
        }
    }
    // At most in_flight_per_key requests of one key at once.
    struct InFlight {
        Service* service = nullptr;
        std::string key;
        ~InFlight() {
            if (service == nullptr) return;
            std::lock_guard lock(service->in_flight_mu_);
            if (--service->in_flight_[key] == 0) service->in_flight_.erase(key);
        }
    } in_flight;
    if (!who.key_id.empty()) {
        std::lock_guard lock(in_flight_mu_);
        int64_t& n = in_flight_[who.key_id];
        if (n >= options_.in_flight_per_key) {
            if (n == 0) in_flight_.erase(who.key_id);
            response->headers.emplace_back("Retry-After", "1");
            throw HttpError(429, "too_many_at_once",
                            "more than " + std::to_string(options_.in_flight_per_key) +
                                " requests with this key at once: wait for an answer before the next");
        }
        ++n;
        in_flight.service = this;
        in_flight.key = who.key_id;
    }
    CheckParameters(*m.route, target);
    if (IsFinanceRoute(m.route->id)) {
        FinanceBackend* finance = backend.Finance();
        if (finance == nullptr) throw NotFound();
        HandleFinance(m, target, who, request, *finance, response);
        return;
    }
    if (IsSalesRoute(m.route->id)) {
        SalesBackend* sales = backend.Sales();
        if (sales == nullptr) throw NotFound();
        HandleSales(m, target, who, request, *sales, response);
        return;
    }
    switch (m.route->id) {
        case RouteId::kHealthz: response->body = "{\"status\":\"ok\"}"; return;
        case RouteId::kReadyz: {
            const std::string why = backend.NotReady();
            if (!why.empty()) throw HttpError(503, "not_ready", why);
            response->body = "{\"status\":\"ready\"}";
            return;
        }
        case RouteId::kMetrics:
            response->content_type = "text/plain; version=0.0.4";
            response->body = metrics_.Text();
            if (options_.more_metrics) response->body += options_.more_metrics();
            return;
        case RouteId::kUsage: {
            const UsageQuery q = ParseUsageQuery(
                target, who, std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()));
            response->body = UsageJson(q, backend.Usage(q));
            return;
        }
        case RouteId::kInvoices: {
            const InvoiceQuery q = ParseInvoiceQuery(target, who);
            std::string out = "{\"invoices\":[";
            if (!q.none) {
                bool first = true;
                for (const billing::InvoiceDocument& d : backend.Invoices(q)) {
                    out += (first ? "" : ",") + InvoiceSummaryJson(d);
                    first = false;
                }
            }
            response->body = out + "]}";
            return;
        }
        case RouteId::kInvoice:
        case RouteId::kInvoicePdf:
        case RouteId::kInvoiceCsv: {
            std::optional<billing::InvoiceDocument> doc = backend.Invoice(m.id);
            // Another customer's invoice, or a draft, is missing for a
            // customer key: the same 404 as an id that names nothing.
            if (!doc) throw NotFound();
            if (who.role == ledger::Role::kCustomer && (doc->customer != who.customer || doc->status != "finalized")) {
                throw NotFound();
            }
            if (m.route->id == RouteId::kInvoice) {
                response->body = billing::ExportJson(*doc);
            } else if (m.route->id == RouteId::kInvoicePdf) {
                response->content_type = "application/pdf";
                response->body = backend.Pdf(*doc);
            } else {
                response->content_type = "text/csv; charset=utf-8";
                response->body = backend.Csv(*doc);
            }
            std::string file = (doc->number.empty() ? "draft-" + std::to_string(doc->invoice_id) : doc->number) +
                               (m.route->id == RouteId::kInvoicePdf ? ".pdf" : ".csv");
            for (char& c : file) {  // a header value: no quotes, no control bytes
                const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                   c == '.' || c == '-' || c == '_';
                if (!plain) c = '_';
            }
            if (m.route->id != RouteId::kInvoice) {
                response->headers.emplace_back("Content-Disposition", "attachment; filename=\"" + file + "\"");
            }
            return;
        }
        default: break;  // finance and sales: handled above
    }
    TALLY_UNREACHABLE();
}

}  // namespace tally::api
