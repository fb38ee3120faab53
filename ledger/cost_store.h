// The ledger's margin side: published cost card versions, and margin
// reports written for finance to query with SQL (sql/0004).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "billing/margin.h"
#include "pricing/cost_card.h"
#include "pricing/diagnostic.h"

namespace tally::ledger {

struct CostPublishResult {
    std::string card;
    std::vector<std::string> published;  // versions stored by this call
    std::vector<std::string> unchanged;  // versions already stored with the same body
};

struct StoredMarginReport {
    int64_t report_id = 0;
    std::string period;
    std::string source;
    std::optional<int64_t> invoice_run_id;
    std::string created_at;                // RFC 3339
    std::vector<billing::MarginRow> rows;  // in (customer, plan, model, day, currency) order
};

// Throws LedgerError (ledger/migrations.h) for what the operator asked
// wrongly, libpqxx's exceptions (std::exception) for the database.
class CostStore {
   public:
    // Connects and checks the schema's version (ledger/connect.h).
    explicit CostStore(const std::string& database_url);
    ~CostStore();
    CostStore(const CostStore&) = delete;
    CostStore& operator=(const CostStore&) = delete;

    // Validates a cost card file and stores each of its versions. A version
    // already stored with the same body is left alone; one stored with a
    // different body is refused (LedgerError): versions are immutable. The
    // card with the versions already stored, and with every other stored
    // card (a model is costed by one card), must validate. Returns nullopt
    // with diagnostics when it does not.
    std::optional<CostPublishResult> PublishCostCard(std::string_view yaml, std::string_view file_name,
                                                     Diagnostics* diagnostics);

    // Every published cost card. Throws LedgerError when a stored card no
    // longer validates.
    CostCatalog LoadCostCards();

    // Writes a report and its rows in one transaction; returns its id.
    int64_t WriteMarginReport(const std::string& period, const std::string& source,
                              std::optional<int64_t> invoice_run_id, const std::vector<billing::MarginRow>& rows);

    // The latest report of `period` (highest id), or nullopt when none.
    std::optional<StoredMarginReport> LatestMarginReport(const std::string& period);

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ledger
