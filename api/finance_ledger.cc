#include "api/finance.h"

namespace tally::api {

std::unique_ptr<FinanceBackend> MakeLedgerFinanceBackend(const std::string&) { return std::make_unique<FinanceBackend>(); }

}  // namespace tally::api
