// The route table of `tally serve`: every route it serves, with its method,
// path pattern, the roles that may call it and the query parameters it
// takes. docs/openapi.yaml lists exactly these (tests/unit/api/openapi_test.cc).
// Routes not in this table are not served.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/request.h"
#include "ledger/key_store.h"

namespace tally::api {

enum class RouteId : uint8_t {
    kHealthz,
    kReadyz,
    kMetrics,
    kUsage,
    kInvoices,
    kInvoice,
    kInvoicePdf,
    kInvoiceCsv,
    // Finance (api/finance.h): from kInvoiceRuns to kDeadLetterRaw.
    kInvoiceRuns,
    kInvoicesFinalize,
    kInvoiceFinalize,
    kInvoiceVoid,
    kInvoiceCreditNotes,
    kInvoiceCreditNoteCreate,
    kCreditNote,
    kCreditNotePdf,
    kCreditNoteCsv,
    kInvoicesExport,
    kMargin,
    kDeadLetters,
    kDeadLetterRaw,
    // Sales (api/sales.h): from kPlanValidate to kQuotes.
    kPlanValidate,
    kPlanPublish,
    kPlans,
    kPlan,
    kQuotes,
};

constexpr bool IsFinanceRoute(RouteId id) { return id >= RouteId::kInvoiceRuns && id <= RouteId::kDeadLetterRaw; }
constexpr bool IsSalesRoute(RouteId id) { return id >= RouteId::kPlanValidate && id <= RouteId::kQuotes; }

// Bit of a role in Route::roles.
constexpr uint8_t RoleBit(ledger::Role role) {
    return static_cast<uint8_t>(1u << static_cast<unsigned>(role));
}

struct Route {
    std::string_view method;   // "GET"
    std::string_view pattern;  // "/v1/invoices/{id}.pdf": at most one {id}, a whole segment with an optional suffix
                               // ("/v1/plans:validate": ':' is part of a literal segment)
    RouteId id;
    uint8_t roles;                             // 0: no key needed; else the RoleBits that may call it
    std::vector<std::string_view> parameters;  // the query parameters it accepts; any other is a 400
};

// Every served route, more specific patterns first.
const std::vector<Route>& Routes();

struct Matched {
    const Route* route = nullptr;
    std::string id;  // the {id} segment, without the pattern's suffix
};

// The route for a method and target (HEAD finds the GET route). Throws
// HttpError 404 (no route has the path) and 405 method_not_allowed (one has,
// with another method; its Allow header lists the path's methods).
Matched MatchRoute(std::string_view method, const Target& target);

// Throws HttpError 400 for a query parameter the route does not take.
void CheckParameters(const Route& route, const Target& target);

// Whether `role` may call `route` (routes without a key: everyone).
bool Allows(const Route& route, ledger::Role role);

// The value of query parameter `name`, or nullptr.
const std::string* Parameter(const Target& target, std::string_view name);

}  // namespace tally::api
