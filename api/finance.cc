#include "api/finance.h"

namespace tally::api {

// Placeholder until the finance routes land: each answers 404.
void HandleFinance(const Matched&, const Target&, const ledger::Principal&, const Request&, FinanceBackend&, Response*) {
    throw NotFound();
}

}  // namespace tally::api
