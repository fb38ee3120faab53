#include "api/routes.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "api/queries.h"
#include "api/static_files.h"

namespace tally::api {
namespace {

using ledger::Role;

Matched Match(std::string_view method, std::string_view target) {
    return MatchRoute(method, ParseTarget(target));
}

int StatusOf(std::string_view method, std::string_view target) {
    try {
        const Target t = ParseTarget(target);
        CheckParameters(*MatchRoute(method, t).route, t);
    } catch (const HttpError& e) {
        return e.status;
    }
    return 200;
}

TEST(Routes, MatchPatternsWithIdsAndSuffixes) {
    EXPECT_EQ(Match("GET", "/v1/usage").route->id, RouteId::kUsage);
    EXPECT_EQ(Match("GET", "/v1/invoices").route->id, RouteId::kInvoices);
    Matched m = Match("GET", "/v1/invoices/INV-2026-000001");
    EXPECT_EQ(m.route->id, RouteId::kInvoice);
    EXPECT_EQ(m.id, "INV-2026-000001");
    m = Match("GET", "/v1/invoices/17.pdf");
    EXPECT_EQ(m.route->id, RouteId::kInvoicePdf);
    EXPECT_EQ(m.id, "17");
    m = Match("GET", "/v1/invoices/17.csv");
    EXPECT_EQ(m.route->id, RouteId::kInvoiceCsv);
    EXPECT_EQ(m.id, "17");
    EXPECT_EQ(Match("GET", "/v1/invoices/x.json").id, "x.json");  // no such suffix: an id (that will not exist)
    EXPECT_EQ(Match("GET", "/healthz").route->id, RouteId::kHealthz);
}

TEST(Routes, UnknownPathsMethodsAndParameters) {
    EXPECT_EQ(StatusOf("GET", "/v1/nothing"), 404);
    EXPECT_EQ(Match("GET", "/v1/invoices/.pdf").route->id, RouteId::kInvoice);  // an empty id is no id: ".pdf" is one
    EXPECT_EQ(StatusOf("GET", "/"), 404);
    EXPECT_EQ(StatusOf("POST", "/v1/usage"), 405);
    EXPECT_EQ(StatusOf("DELETE", "/v1/invoices/17"), 405);
    EXPECT_EQ(Match("HEAD", "/v1/invoices/17").route->id, RouteId::kInvoice);  // HEAD is GET without the body
    try {
        MatchRoute("DELETE", ParseTarget("/v1/plans"));
        FAIL();
    } catch (const HttpError& e) {
        EXPECT_EQ(e.status, 405);
        ASSERT_EQ(e.headers.size(), 1u);
        EXPECT_EQ(e.headers[0].first, "Allow");
        EXPECT_EQ(e.headers[0].second, "POST, GET, HEAD");
    }
    EXPECT_EQ(StatusOf("GET", "/v1/usage?group_by=day&colour=red"), 400);
    EXPECT_EQ(StatusOf("GET", "/healthz?x=1"), 400);
    EXPECT_EQ(StatusOf("GET", "/v1/invoices?customer=a&period=2025-11&status=draft"), 200);
    try {
        const Target t = ParseTarget("/v1/usage?colour=red");
        CheckParameters(*MatchRoute("GET", t).route, t);
        FAIL();
    } catch (const HttpError& e) {
        EXPECT_STREQ(e.what(),
                     "unknown query parameter 'colour' (/v1/usage takes customer, period, from, to, group_by)");
    }
}

TEST(Routes, Roles) {
    const Route& usage = *Match("GET", "/v1/usage").route;
    EXPECT_TRUE(Allows(usage, Role::kCustomer));
    EXPECT_TRUE(Allows(usage, Role::kFinance));
    EXPECT_TRUE(Allows(usage, Role::kAdmin));
    EXPECT_FALSE(Allows(usage, Role::kSales));
    const Route& metrics = *Match("GET", "/metrics").route;
    EXPECT_FALSE(Allows(metrics, Role::kCustomer));
    EXPECT_TRUE(Allows(metrics, Role::kFinance));
    EXPECT_EQ(Match("GET", "/healthz").route->roles, 0);
    EXPECT_EQ(Match("GET", "/readyz").route->roles, 0);
    for (const Route& r : Routes()) {
        if (r.pattern.substr(0, 4) == "/v1/") {
            EXPECT_NE(r.roles, 0) << r.pattern << " must need a key";
        }
    }
}

// docs/openapi.yaml lists exactly the served routes, each with its methods,
// its query parameters, and whether it needs a key.
TEST(Routes, OpenApiFileListsExactlyTheServedRoutes) {
    const YAML::Node doc = YAML::LoadFile(std::string(TALLY_SOURCE_DIR) + "/docs/openapi.yaml");
    ASSERT_EQ(doc["openapi"].as<std::string>().substr(0, 2), "3.");
    std::set<std::string> in_file, served;
    for (const auto& path : doc["paths"]) {
        const std::string pattern = path.first.as<std::string>();
        for (const auto& op : path.second) {
            const std::string method = op.first.as<std::string>();
            if (method == "parameters") continue;
            std::string upper;
            for (const char c : method) upper.push_back(static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c));
            in_file.insert(upper + " " + pattern);
            const Route* route = nullptr;
            for (const Route& r : Routes()) {
                if (r.pattern == pattern && r.method == upper) route = &r;
            }
            if (route == nullptr) {  // a page (api/static_files.h), or reported below
                EXPECT_TRUE(op.second["security"] && op.second["security"].size() == 0)
                    << pattern << ": pages need no key";
                continue;
            }
            std::set<std::string> params;
            for (const auto& p : op.second["parameters"]) {
                if (p["in"] && p["in"].as<std::string>() == "query") params.insert(p["name"].as<std::string>());
            }
            EXPECT_EQ(params, std::set<std::string>(route->parameters.begin(), route->parameters.end())) << pattern;
            const bool open = op.second["security"] && op.second["security"].size() == 0;
            EXPECT_EQ(open, route->roles == 0) << pattern << ": security in the file must match the route's key";
        }
    }
    for (const Route& r : Routes()) served.insert(std::string(r.method) + " " + std::string(r.pattern));
    for (const auto& [method, pattern] : StaticRoutes())
        served.insert(std::string(method) + " " + std::string(pattern));
    EXPECT_EQ(in_file, served);
}

TEST(Queries, UsageScopesACustomerKeyToItsOwnCustomer) {
    const ledger::Principal a{"k1", Role::kCustomer, "cust_a"};
    const Instant now = *ParseRfc3339("2025-11-20T10:00:00Z");
    UsageQuery q = ParseUsageQuery(ParseTarget("/v1/usage"), a, now);
    EXPECT_EQ(q.customer, "cust_a");
    EXPECT_EQ(MonthIdLabel(*q.period), "2025-11");
    EXPECT_EQ(q.group_by, GroupBy::kDay);
    EXPECT_EQ(ParseUsageQuery(ParseTarget("/v1/usage?group_by=project"), a, now).group_by, GroupBy::kProject);
    EXPECT_EQ(GroupByName(GroupBy::kProject), "project");
    EXPECT_EQ(ParseUsageQuery(ParseTarget("/v1/usage?customer=cust_a"), a, now).customer, "cust_a");
    try {
        ParseUsageQuery(ParseTarget("/v1/usage?customer=cust_b"), a, now);
        FAIL() << "another customer's usage must be a 404";
    } catch (const HttpError& e) {
        EXPECT_EQ(e.status, 404);
        EXPECT_EQ(ErrorBody(e.code, e.what()), ErrorBody(NotFound().code, NotFound().what()));
    }
    const ledger::Principal f{"k2", Role::kFinance, ""};
    EXPECT_EQ(ParseUsageQuery(ParseTarget("/v1/usage?customer=cust_b"), f, now).customer, "cust_b");
}

int UsageStatus(std::string_view target, std::string* message) {
    const ledger::Principal f{"k2", Role::kFinance, ""};
    try {
        ParseUsageQuery(ParseTarget(target), f, *ParseRfc3339("2025-11-20T10:00:00Z"));
    } catch (const HttpError& e) {
        *message = e.what();
        return e.status;
    }
    return 200;
}

TEST(Queries, UsageRefusesBadInputClearly) {
    std::string m;
    EXPECT_EQ(UsageStatus("/v1/usage", &m), 400);
    EXPECT_EQ(m, "customer is required with a finance key");
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&period=2025-13", &m), 400);
    EXPECT_EQ(m, "period must be a month like 2025-11, not '2025-13'");
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&period=2025-12", &m), 200);  // next month (now is 2025-11-20)
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&period=2026-01", &m), 400);
    EXPECT_EQ(m, "period 2026-01 is after next month: nothing is billed there yet");
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&from=2025-11-01", &m), 400);
    EXPECT_EQ(m, "from and to go together: give both or neither");
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&from=2025-11-31&to=2025-12-02", &m), 400);
    EXPECT_EQ(m, "from must be a date (2025-11-03) or an RFC 3339 instant (2025-11-03T00:00:00Z), not '2025-11-31'");
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&from=2025-11-05&to=2025-11-01", &m), 400);
    EXPECT_EQ(m, "to must be after from");
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&from=2025-11-01T00:30:00Z&to=2025-11-02", &m), 400);
    EXPECT_EQ(m, "from and to must be whole hours (usage is stored per hour)");
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&from=2025-01-01&to=2025-11-01", &m), 400);
    EXPECT_EQ(m, "from and to must be at most 92 days apart");
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&group_by=week", &m), 400);
    EXPECT_EQ(m, "group_by must be hour, day, model or project, not 'week'");
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&group_by=hour", &m), 400);
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&group_by=hour&from=2025-11-01&to=2025-11-09", &m), 400);
    EXPECT_EQ(m, "with group_by=hour, from and to must be at most 7 days apart");
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&period=2025-11&from=2025-11-01&to=2025-11-02", &m), 400);
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&group_by=hour&from=2025-11-01&to=2025-11-08", &m), 200);
    EXPECT_EQ(UsageStatus("/v1/usage?customer=c&from=2025-11-01T08:00:00%2B08:00&to=2025-11-02", &m), 200);
}

TEST(Queries, InvoicesOfACustomerKeyAreItsOwnFinalizedOnes) {
    const ledger::Principal a{"k1", Role::kCustomer, "cust_a"};
    InvoiceQuery q = ParseInvoiceQuery(ParseTarget("/v1/invoices?period=2025-11"), a);
    EXPECT_EQ(q.customer, "cust_a");
    EXPECT_EQ(q.status, "finalized");
    EXPECT_FALSE(q.none);
    EXPECT_TRUE(ParseInvoiceQuery(ParseTarget("/v1/invoices?status=draft"), a).none);
    EXPECT_THROW(ParseInvoiceQuery(ParseTarget("/v1/invoices?customer=cust_b"), a), HttpError);
    const ledger::Principal f{"k2", Role::kFinance, ""};
    q = ParseInvoiceQuery(ParseTarget("/v1/invoices?status=draft"), f);
    EXPECT_EQ(q.customer, "");
    EXPECT_EQ(q.status, "draft");
    EXPECT_THROW(ParseInvoiceQuery(ParseTarget("/v1/invoices?status=paid"), f), HttpError);
}

}  // namespace
}  // namespace tally::api
