#include "api/routes.h"

#include <algorithm>

#include "base/assert.h"

namespace tally::api {

namespace {

using ledger::Role;

constexpr uint8_t kCustomerFinanceAdmin = RoleBit(Role::kCustomer) | RoleBit(Role::kFinance) | RoleBit(Role::kAdmin);
constexpr uint8_t kFinanceAdmin = RoleBit(Role::kFinance) | RoleBit(Role::kAdmin);
constexpr uint8_t kSalesAdmin = RoleBit(Role::kSales) | RoleBit(Role::kAdmin);
constexpr uint8_t kSalesFinanceAdmin = RoleBit(Role::kSales) | RoleBit(Role::kFinance) | RoleBit(Role::kAdmin);

// Splits a pattern into segments ("/v1/usage" -> {"v1", "usage"}).
std::vector<std::string_view> PatternSegments(std::string_view pattern) {
    TALLY_ASSERT(!pattern.empty() && pattern.front() == '/');
    std::vector<std::string_view> out;
    size_t begin = 1;
    while (begin < pattern.size()) {
        size_t end = pattern.find('/', begin);
        if (end == std::string_view::npos) end = pattern.size();
        out.push_back(pattern.substr(begin, end - begin));
        begin = end + 1;
    }
    return out;
}

// Matches one segment; fills *id for a "{id}<suffix>" pattern segment.
bool SegmentMatches(std::string_view pattern, const std::string& segment, std::string* id) {
    constexpr std::string_view kId = "{id}";
    if (pattern.substr(0, kId.size()) != kId) return pattern == segment;
    const std::string_view suffix = pattern.substr(kId.size());
    if (segment.size() <= suffix.size()) return false;  // the id is never empty
    if (std::string_view(segment).substr(segment.size() - suffix.size()) != suffix) return false;
    *id = segment.substr(0, segment.size() - suffix.size());
    return true;
}

}  // namespace

const std::vector<Route>& Routes() {
    static const std::vector<Route> routes = {
        {"GET", "/healthz", RouteId::kHealthz, 0, {}},
        {"GET", "/readyz", RouteId::kReadyz, 0, {}},
        {"GET", "/metrics", RouteId::kMetrics, kFinanceAdmin, {}},
        {"GET", "/v1/usage", RouteId::kUsage, kCustomerFinanceAdmin, {"customer", "period", "from", "to", "group_by"}},
        {"GET", "/v1/invoices", RouteId::kInvoices, kCustomerFinanceAdmin, {"customer", "period", "status"}},
        {"GET", "/v1/invoices/{id}.pdf", RouteId::kInvoicePdf, kCustomerFinanceAdmin, {}},
        {"GET", "/v1/invoices/{id}.csv", RouteId::kInvoiceCsv, kCustomerFinanceAdmin, {}},
        {"GET", "/v1/invoices/{id}", RouteId::kInvoice, kCustomerFinanceAdmin, {}},
        // Finance.
        {"POST", "/v1/invoice-runs", RouteId::kInvoiceRuns, kFinanceAdmin, {}},
        {"POST", "/v1/invoices:finalize", RouteId::kInvoicesFinalize, kFinanceAdmin, {}},
        {"POST", "/v1/invoices/{id}/finalize", RouteId::kInvoiceFinalize, kFinanceAdmin, {}},
        {"POST", "/v1/invoices/{id}/void", RouteId::kInvoiceVoid, kFinanceAdmin, {}},
        {"GET", "/v1/invoices/{id}/credit-notes", RouteId::kInvoiceCreditNotes, kFinanceAdmin, {}},
        {"POST", "/v1/invoices/{id}/credit-notes", RouteId::kInvoiceCreditNoteCreate, kFinanceAdmin, {}},
        {"GET", "/v1/credit-notes/{id}.pdf", RouteId::kCreditNotePdf, kFinanceAdmin, {}},
        {"GET", "/v1/credit-notes/{id}.csv", RouteId::kCreditNoteCsv, kFinanceAdmin, {}},
        {"GET", "/v1/credit-notes/{id}", RouteId::kCreditNote, kFinanceAdmin, {}},
        {"GET", "/v1/exports/invoices.csv", RouteId::kInvoicesExport, kFinanceAdmin, {"period", "customer", "status"}},
        {"GET", "/v1/margin", RouteId::kMargin, kFinanceAdmin, {"period", "by"}},
        {"GET", "/v1/dead-letters", RouteId::kDeadLetters, kFinanceAdmin, {"reason", "before", "limit"}},
        {"GET", "/v1/dead-letters/{id}.raw", RouteId::kDeadLetterRaw, kFinanceAdmin, {}},
        // Sales.
        {"POST", "/v1/plans:validate", RouteId::kPlanValidate, kSalesAdmin, {}},
        {"POST", "/v1/plans", RouteId::kPlanPublish, kSalesAdmin, {}},
        {"GET", "/v1/plans", RouteId::kPlans, kSalesFinanceAdmin, {}},
        {"GET", "/v1/plans/{id}", RouteId::kPlan, kSalesFinanceAdmin, {"version", "at"}},
        {"POST", "/v1/quotes", RouteId::kQuotes, kSalesAdmin, {}},
    };
    return routes;
}

Matched MatchRoute(std::string_view method, const Target& target) {
    std::string allow;  // the methods of the routes with this path
    for (const Route& route : Routes()) {
        const std::vector<std::string_view> pattern = PatternSegments(route.pattern);
        if (pattern.size() != target.segments.size()) continue;
        std::string id;
        bool ok = true;
        for (size_t i = 0; i < pattern.size() && ok; ++i) ok = SegmentMatches(pattern[i], target.segments[i], &id);
        if (!ok) continue;
        // HEAD is GET without the body (the server drops it).
        if (route.method != method && !(method == "HEAD" && route.method == "GET")) {
            if (allow.find(route.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + std::string(route.method);
            continue;
        }
        return Matched{&route, std::move(id)};
    }
    if (!allow.empty()) {
        // HEAD is answered wherever GET is (the server sends no body).
        if (allow.find("GET") != std::string::npos) allow += ", HEAD";
        HttpError e(405, "method_not_allowed", "this path takes " + allow + ", not " + std::string(method));
        e.headers.emplace_back("Allow", allow);
        throw e;
    }
    throw NotFound();
}

void CheckParameters(const Route& route, const Target& target) {
    for (const auto& [name, value] : target.query) {
        if (std::find(route.parameters.begin(), route.parameters.end(), name) != route.parameters.end()) continue;
        std::string allowed;
        for (std::string_view p : route.parameters) allowed += (allowed.empty() ? "" : ", ") + std::string(p);
        throw BadRequest("unknown query parameter '" + name + "' (" + std::string(route.pattern) +
                         (allowed.empty() ? " takes none)" : " takes " + allowed + ")"));
    }
}

bool Allows(const Route& route, ledger::Role role) {
    return route.roles == 0 || (route.roles & RoleBit(role)) != 0;
}

const std::string* Parameter(const Target& target, std::string_view name) {
    for (const auto& [n, v] : target.query) {
        if (n == name) return &v;
    }
    return nullptr;
}

}  // namespace tally::api
