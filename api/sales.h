// The sales routes of `tally serve` (docs/api.md, "Sales"): plans
// validated, published, listed with their resolved price tables, and
// quotes. HandleSales parses and answers; SalesBackend is the ledger behind
// them (one per worker thread, like Backend).
#pragma once

#include <memory>
#include <string>

#include "api/routes.h"
#include "api/service.h"

namespace tally::api {

class SalesBackend {
   public:
    virtual ~SalesBackend() = default;
};

// On the PostgreSQL ledger (api/sales_ledger.cc).
std::unique_ptr<SalesBackend> MakeLedgerSalesBackend(const std::string& database_url);

// Answers a sales route (IsSalesRoute). `who` is a key the route's roles allow.
void HandleSales(const Matched& m, const Target& target, const ledger::Principal& who, const Request& request,
                 SalesBackend& backend, Response* response);

}  // namespace tally::api
