// The finance routes of `tally serve` (docs/api.md, "Finance"): invoice
// runs, finalize, void, credit notes, margin, exports and dead letters.
// HandleFinance parses and answers; FinanceBackend is the ledger behind
// them (one per worker thread, like Backend).
#pragma once

#include <memory>
#include <string>

#include "api/routes.h"
#include "api/service.h"

namespace tally::api {

class FinanceBackend {
   public:
    virtual ~FinanceBackend() = default;
};

// On the PostgreSQL ledger (api/finance_ledger.cc).
std::unique_ptr<FinanceBackend> MakeLedgerFinanceBackend(const std::string& database_url);

// Answers a finance route (IsFinanceRoute). `who` is a finance or admin key
// (the route table's roles are checked before).
void HandleFinance(const Matched& m, const Target& target, const ledger::Principal& who, const Request& request,
                   FinanceBackend& backend, Response* response);

}  // namespace tally::api
