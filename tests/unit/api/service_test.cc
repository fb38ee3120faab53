// Authentication, roles, the customer scope, rate limits and errors of
// `tally serve`, against a Backend held in memory (the ledger's is tested
// end to end by tests/e2e/serve_e2e.sh).
#include "api/service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <thread>

#include "api/ledger_backend.h"
#include "ingest/sink.h"

#include <pqxx/pqxx>

namespace tally::api {
namespace {

using ledger::Role;

billing::InvoiceDocument Doc(int64_t id, const std::string& number, const std::string& customer,
                             const std::string& status) {
    billing::InvoiceDocument d;
    d.invoice_id = id;
    d.number = number;
    d.customer = customer;
    d.customer_name = customer + " Ltd";
    d.status = status;
    d.period = "2025-11";
    d.currency = "CNY";
    d.subtotal = d.total = d.amount_due = "12.34";
    d.tax = "0.00";
    return d;
}

class FakeBackend : public Backend {
   public:
    FakeBackend() {
        keys["tly_a"] = {"ka", Role::kCustomer, "cust_a"};
        keys["tly_b"] = {"kb", Role::kCustomer, "cust_b"};
        keys["tly_f"] = {"kf", Role::kFinance, ""};
        keys["tly_s"] = {"ks", Role::kSales, ""};
        docs = {Doc(1, "INV-2026-000001", "cust_a", "finalized"), Doc(2, "INV-2026-000002", "cust_b", "finalized"),
                Doc(3, "", "cust_a", "draft"), Doc(4, "", "cust_b", "draft")};
    }
    std::optional<ledger::Principal> Authenticate(std::string_view secret) override {
        ++lookups;
        auto it = keys.find(std::string(secret));
        if (it == keys.end()) return std::nullopt;
        return it->second;
    }
    std::string NotReady() override { return not_ready; }
    UsageReport Usage(const UsageQuery& q) override {
        if (q.customer == "cust_a" && block_a) block_a();
        if (!fail.empty()) throw std::runtime_error(fail);
        if (statement_timeout) {
            throw pqxx::sql_error("ERROR:  canceling statement due to statement timeout", "SELECT", "57014");
        }
        if (lost_connections > 0) {
            --lost_connections;
            throw ingest::SinkError(ingest::SinkErrorKind::kRetry, "server closed the connection unexpectedly");
        }
        usage_customers.push_back(q.customer);
        return {};
    }
    std::vector<billing::InvoiceDocument> Invoices(const InvoiceQuery& q) override {
        std::vector<billing::InvoiceDocument> out;
        for (const auto& d : docs) {
            if ((q.customer.empty() || d.customer == q.customer) && (q.status.empty() || d.status == q.status)) {
                out.push_back(d);
            }
        }
        return out;
    }
    std::optional<billing::InvoiceDocument> Invoice(const std::string& id) override {
        for (const auto& d : docs) {
            if (std::to_string(d.invoice_id) == id || (!d.number.empty() && d.number == id)) return d;
        }
        return std::nullopt;
    }
    std::string Pdf(const billing::InvoiceDocument& d) override { return "%PDF-1.5 " + d.customer; }
    std::string Csv(const billing::InvoiceDocument& d) override { return "number\r\n" + d.number + "\r\n"; }

    std::map<std::string, ledger::Principal> keys;
    std::vector<billing::InvoiceDocument> docs;
    std::vector<std::string> usage_customers;
    std::string not_ready, fail;
    std::function<void()> block_a;  // runs inside cust_a's usage queries
    bool statement_timeout = false;  // usage queries fail as PostgreSQL's statement_timeout
    int lost_connections = 0;        // usage queries that fail as a dropped connection first
    int lookups = 0;                 // Authenticate calls
};

class ServiceTest : public ::testing::Test {
   protected:
    Response Get(std::string_view target, std::string_view authorization = "") {
        Request r;
        r.method = "GET";
        r.target = target;
        r.authorization = authorization;
        internal_.clear();
        return service_.Handle(r, backend_, "r42", &internal_);
    }
    static std::string Header(const Response& r, const std::string& name) {
        for (const auto& [n, v] : r.headers) {
            if (n == name) return v;
        }
        return "";
    }
    Service service_{ServiceOptions{50, 100}};
    FakeBackend backend_;
    std::string internal_;
};

TEST_F(ServiceTest, HealthNeedsNoKeyAndReadinessAsksTheDatabase) {
    EXPECT_EQ(Get("/healthz").status, 200);
    EXPECT_EQ(Get("/readyz").status, 200);
    backend_.not_ready = "the database does not answer";
    const Response r = Get("/readyz");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, ErrorBody("not_ready", "the database does not answer"));
}

TEST_F(ServiceTest, EveryV1RouteNeedsAValidBearerKey) {
    for (const char* target :
         {"/v1/usage", "/v1/invoices", "/v1/invoices/1", "/v1/invoices/1.pdf", "/v1/invoices/1.csv", "/metrics"}) {
        SCOPED_TRACE(target);
        Response r = Get(target);
        EXPECT_EQ(r.status, 401);
        EXPECT_EQ(Header(r, "WWW-Authenticate"), "Bearer realm=\"tally\"");
        r = Get(target, "Bearer tly_nope");
        EXPECT_EQ(r.status, 401);
        EXPECT_EQ(Header(r, "WWW-Authenticate"), "Bearer realm=\"tally\", error=\"invalid_token\"");
        EXPECT_EQ(r.body.find("tly_nope"), std::string::npos);
        EXPECT_EQ(Get(target, "Basic dGx5X2E6").status, 401);
        EXPECT_EQ(Get(target, "tly_a").status, 401);
    }
    EXPECT_EQ(Get("/v1/invoices", "Bearer tly_a").status, 200);
    EXPECT_EQ(Get("/v1/invoices", "bearer  tly_a ").status, 200);
}

TEST_F(ServiceTest, RolesPerRoute) {
    EXPECT_EQ(Get("/metrics", "Bearer tly_a").status, 403);
    EXPECT_EQ(Get("/metrics", "Bearer tly_s").status, 403);
    const Response r = Get("/metrics", "Bearer tly_f");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("tally_http_requests_total"), std::string::npos);
    const Response s = Get("/v1/usage", "Bearer tly_s");
    EXPECT_EQ(s.status, 403);
    EXPECT_EQ(s.body, ErrorBody("forbidden", "a sales key may not use this route"));
}

// A customer key walks every customer route with the other customer's ids:
// each answer is the 404 of an id that names nothing, byte for byte.
TEST_F(ServiceTest, ACustomerSeesNothingOfAnotherCustomer) {
    const std::string missing = Get("/v1/invoices/999", "Bearer tly_a").body;
    EXPECT_EQ(missing, ErrorBody("not_found", "no such resource"));
    for (const char* target :
         {"/v1/invoices/2", "/v1/invoices/INV-2026-000002", "/v1/invoices/2.pdf", "/v1/invoices/2.csv",
          "/v1/invoices/INV-2026-000002.pdf", "/v1/invoices/4", "/v1/invoices/3", "/v1/invoices/3.pdf",
          "/v1/invoices?customer=cust_b", "/v1/usage?customer=cust_b", "/v1/usage?customer=cust_b&period=2025-11",
          "/v1/invoices/999.csv"}) {
        SCOPED_TRACE(target);
        const Response r = Get(target, "Bearer tly_a");
        EXPECT_EQ(r.status, 404);
        EXPECT_EQ(r.body, missing);
        EXPECT_EQ(r.body.find("cust_b"), std::string::npos);
    }
    EXPECT_TRUE(backend_.usage_customers.empty());
    // Its own: the finalized invoice, and only that in the list.
    Response own = Get("/v1/invoices/INV-2026-000001.pdf", "Bearer tly_a");
    EXPECT_EQ(own.status, 200);
    EXPECT_EQ(own.content_type, "application/pdf");
    EXPECT_EQ(own.body.substr(0, 4), "%PDF");
    EXPECT_EQ(Header(own, "Content-Disposition"), "attachment; filename=\"INV-2026-000001.pdf\"");
    own = Get("/v1/invoices", "Bearer tly_a");
    EXPECT_NE(own.body.find("INV-2026-000001"), std::string::npos);
    EXPECT_EQ(own.body.find("cust_b"), std::string::npos);
    EXPECT_EQ(own.body.find("draft"), std::string::npos);
    EXPECT_EQ(Get("/v1/invoices?status=draft", "Bearer tly_a").body, "{\"invoices\":[]}");
    EXPECT_EQ(Get("/v1/usage", "Bearer tly_a").status, 200);
    EXPECT_EQ(backend_.usage_customers, std::vector<std::string>{"cust_a"});
    // Finance sees every customer's, drafts too.
    EXPECT_EQ(Get("/v1/invoices/4", "Bearer tly_f").status, 200);
    EXPECT_NE(Get("/v1/invoices", "Bearer tly_f").body.find("cust_b"), std::string::npos);
}

TEST_F(ServiceTest, BadInputIsA400WithAClearMessage) {
    Response r = Get("/v1/usage?from=yesterday&to=2025-11-02", "Bearer tly_a");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, ErrorBody("bad_request",
                                "from must be a date (2025-11-03) or an RFC 3339 instant "
                                "(2025-11-03T00:00:00Z), not 'yesterday'"));
    r = Get("/v1/invoices/1?verbose=1", "Bearer tly_a");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(Get("/v1/usage?period=2025-11&period=2025-10", "Bearer tly_a").status, 400);
    EXPECT_EQ(Get("/v1/usage?customer=%00", "Bearer tly_a").status, 400);
    EXPECT_EQ(Get("/v1/nowhere", "Bearer tly_a").status, 404);
}

TEST_F(ServiceTest, AHandlerFailureIsA500NamingTheRequestNeverItsCause) {
    backend_.fail = "connection to postgresql://tally:hunter2@db failed";
    const Response r = Get("/v1/usage", "Bearer tly_a");
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.body.find("hunter2"), std::string::npos);
    EXPECT_NE(r.body.find("r42"), std::string::npos);
    EXPECT_EQ(internal_, backend_.fail);
    EXPECT_EQ(r.key_id, "ka");
}

TEST_F(ServiceTest, AReadOnALostConnectionIsTriedOnceMoreOnANewOne) {
    backend_.lost_connections = 1;  // PostgreSQL restarted: the worker's connection is gone
    EXPECT_EQ(Get("/v1/usage?period=2025-11", "Bearer tly_a").status, 200);
    EXPECT_EQ(backend_.usage_customers.size(), 1u);
    backend_.lost_connections = 4;  // one per connection of the worker: each try mends one
    EXPECT_EQ(Get("/v1/usage?period=2025-11", "Bearer tly_a").status, 200);
    EXPECT_EQ(backend_.usage_customers.size(), 2u);
    backend_.lost_connections = 6;  // still down: a 503 to try later, after 5 tries
    const Response r = Get("/v1/usage?period=2025-11", "Bearer tly_a");
    EXPECT_EQ(r.status, 503);
    EXPECT_NE(r.body.find("\"busy\""), std::string::npos);
    EXPECT_EQ(Header(r, "Retry-After"), "1");
    EXPECT_EQ(internal_, "server closed the connection unexpectedly");
    EXPECT_EQ(backend_.lost_connections, 1);
    backend_.lost_connections = 0;
    backend_.fail = "some other failure";  // not a lost connection: not tried again
    EXPECT_EQ(Get("/v1/usage?period=2025-11", "Bearer tly_a").status, 500);
    EXPECT_EQ(backend_.usage_customers.size(), 2u);
}

TEST_F(ServiceTest, AStatementTimeoutIsA503ToTryAgain) {
    backend_.statement_timeout = true;
    const Response r = Get("/v1/usage?period=2025-11", "Bearer tly_a");
    EXPECT_EQ(r.status, 503);
    EXPECT_NE(r.body.find("\"timeout\""), std::string::npos);
    EXPECT_EQ(Header(r, "Retry-After"), "1");
}

TEST_F(ServiceTest, KeysThatAreNotValidAreLimitedPerAddressWithoutALookup) {
    ServiceOptions o;
    o.auth_failure_rate = 1;
    o.auth_failure_burst = 3;
    Service service(o);
    Request req;
    req.method = "GET";
    req.target = "/v1/invoices";
    req.remote = "203.0.113.7";
    std::string internal;
    req.authorization = "Bearer tly_guess";
    for (int i = 0; i < 3; ++i) EXPECT_EQ(service.Handle(req, backend_, "1", &internal).status, 401);
    EXPECT_EQ(backend_.lookups, 3);
    const Response limited = service.Handle(req, backend_, "2", &internal);
    EXPECT_EQ(limited.status, 429);
    EXPECT_EQ(Header(limited, "Retry-After"), "1");
    EXPECT_EQ(backend_.lookups, 3);  // no lookup for it
    req.authorization = "Bearer tly_a";  // a good key from that address waits too (it cannot be told apart unlooked)
    EXPECT_EQ(service.Handle(req, backend_, "3", &internal).status, 429);
    req.remote = "203.0.113.8";  // another address is not held up
    EXPECT_EQ(service.Handle(req, backend_, "4", &internal).status, 200);
    req.authorization = "";  // no key at all is a 401 and costs no lookup: not counted
    req.remote = "203.0.113.9";
    for (int i = 0; i < 5; ++i) EXPECT_EQ(service.Handle(req, backend_, "5", &internal).status, 401);
}

TEST_F(ServiceTest, RateLimitPerKeyAnswers429WithRetryAfter) {
    Service tight(ServiceOptions{1, 2});
    Request req;
    req.method = "GET";
    req.target = "/v1/invoices";
    req.authorization = "Bearer tly_a";
    std::string internal;
    EXPECT_EQ(tight.Handle(req, backend_, "1", &internal).status, 200);
    EXPECT_EQ(tight.Handle(req, backend_, "2", &internal).status, 200);
    const Response r = tight.Handle(req, backend_, "3", &internal);
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(Header(r, "Retry-After"), "1");
    req.authorization = "Bearer tly_b";  // another key has its own bucket
    EXPECT_EQ(tight.Handle(req, backend_, "4", &internal).status, 200);
}

TEST_F(ServiceTest, OneKeyHasAtMostItsShareOfRequestsInFlight) {
    ServiceOptions o;
    o.in_flight_per_key = 1;
    Service service(o);
    std::promise<void> entered, release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<bool> first{true};
    backend_.block_a = [&] {  // the first request of cust_a waits until released
        if (!first.exchange(false)) return;
        entered.set_value();
        released.wait();
    };
    Request req;
    req.method = "GET";
    req.target = "/v1/usage?period=2025-11";
    req.authorization = "Bearer tly_a";
    std::thread slow([&] {
        std::string internal;
        EXPECT_EQ(service.Handle(req, backend_, "1", &internal).status, 200);
    });
    entered.get_future().wait();
    std::string internal;
    const Response busy = service.Handle(req, backend_, "2", &internal);
    EXPECT_EQ(busy.status, 429);
    EXPECT_NE(busy.body.find("too_many_at_once"), std::string::npos);
    EXPECT_EQ(Header(busy, "Retry-After"), "1");
    Request other = req;
    other.authorization = "Bearer tly_f";  // another key is not held up
    other.target = "/v1/usage?period=2025-11&customer=cust_b";
    EXPECT_EQ(service.Handle(other, backend_, "3", &internal).status, 200);
    release.set_value();
    slow.join();
    EXPECT_EQ(service.Handle(req, backend_, "4", &internal).status, 200);  // its slot is free again
}

TEST(RateLimiter, RefillsAtTheRateUpToTheBurst) {
    RateLimiter limiter(10, 3);
    const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Take("k", t0), 0);
    EXPECT_EQ(limiter.Take("k", t0), 1);
    EXPECT_EQ(limiter.Take("k", t0 + std::chrono::milliseconds(99)), 1);
    EXPECT_EQ(limiter.Take("k", t0 + std::chrono::milliseconds(101)), 0);  // 0.1 s is one token at 10/s
    EXPECT_EQ(limiter.Take("k", t0 + std::chrono::milliseconds(101)), 1);
    const auto later = t0 + std::chrono::hours(24 * 365);  // no overflow, capped at the burst
    for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Take("k", later), 0);
    EXPECT_EQ(limiter.Take("k", later), 1);
}

TEST(RateLimiter, PeekTakesNothingAndFullBucketsAreForgottenBeyondTheBound) {
    RateLimiter limiter(1, 2);
    const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    EXPECT_EQ(limiter.Peek("k", t0), 0);
    EXPECT_EQ(limiter.Take("k", t0), 0);
    EXPECT_EQ(limiter.Take("k", t0), 0);
    EXPECT_EQ(limiter.Peek("k", t0), 1);
    EXPECT_EQ(limiter.Peek("k", t0), 1);
    EXPECT_EQ(limiter.Take("k", t0 + std::chrono::seconds(1)), 0);
    // Many addresses: the map stays bounded, and an empty bucket is kept.
    EXPECT_EQ(limiter.Take("k", t0 + std::chrono::seconds(1)), 1);
    for (size_t i = 0; i < RateLimiter::kMaxBuckets + 10; ++i) limiter.Take("a" + std::to_string(i), t0 + std::chrono::seconds(1));
    EXPECT_EQ(limiter.Peek("k", t0 + std::chrono::seconds(1)), 1);
    // Once they have filled up again they are forgotten, and new ones fit.
    const auto t1 = t0 + std::chrono::seconds(10);
    EXPECT_EQ(limiter.Take("new", t1), 0);
    EXPECT_EQ(limiter.Take("k", t1), 0);
}

TEST(CommonHeaders, ForbidInlineScriptAndSniffingAndCachingOfV1) {
    std::map<std::string, std::string> h;
    for (const auto& [n, v] : CommonHeaders("/v1/usage")) h[n] = v;
    EXPECT_EQ(h["X-Content-Type-Options"], "nosniff");
    EXPECT_EQ(h["Cache-Control"], "no-store");
    EXPECT_NE(h["Content-Security-Policy"].find("script-src 'self'"), std::string::npos);
    EXPECT_EQ(h["Content-Security-Policy"].find("unsafe-inline"), std::string::npos);
    for (const auto& [n, v] : CommonHeaders("/healthz")) {
        EXPECT_NE(n, "Access-Control-Allow-Origin");
        EXPECT_NE(n, "Cache-Control");
    }
}

TEST(Metrics, CountsByRouteAndStatusWithAHistogram) {
    Metrics m;
    m.Record("/v1/usage", 200, std::chrono::microseconds(3000));
    m.Record("/v1/usage", 200, std::chrono::microseconds(70000));
    m.Record("/v1/usage", 404, std::chrono::microseconds(10));
    const std::string text = m.Text();
    EXPECT_NE(text.find("tally_http_requests_total{route=\"/v1/usage\",status=\"200\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("tally_http_requests_total{route=\"/v1/usage\",status=\"404\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("tally_http_request_duration_seconds_bucket{le=\"0.005000\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("tally_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("tally_http_request_duration_seconds_sum 0.073010\n"), std::string::npos);
}

}  // namespace
}  // namespace tally::api

namespace tally::api {
namespace {

TEST(WithStatementTimeout, AddsTheOptionToBothUrlForms) {
    EXPECT_EQ(WithStatementTimeout("postgresql://u@h:5432/db", 5000),
              "postgresql://u@h:5432/db?options=-c%20statement_timeout%3D5000");
    EXPECT_EQ(WithStatementTimeout("postgres://u@h/db?sslmode=disable", 250),
              "postgres://u@h/db?sslmode=disable&options=-c%20statement_timeout%3D250");
    EXPECT_EQ(WithStatementTimeout("host=h dbname=db", 5000), "host=h dbname=db options='-c statement_timeout=5000'");
}

}  // namespace
}  // namespace tally::api
