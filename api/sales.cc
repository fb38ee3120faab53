#include "api/sales.h"

namespace tally::api {

// Placeholder until the sales routes land: each answers 404.
void HandleSales(const Matched&, const Target&, const ledger::Principal&, const Request&, SalesBackend&, Response*) {
    throw NotFound();
}

}  // namespace tally::api
