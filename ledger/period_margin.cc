#include "ledger/period_margin.h"

#include "billing/invoice_run.h"
#include "pricing/invoice.h"
#include "pricing/rollup_records.h"

namespace tally::ledger {

PeriodMargin ComputePeriodMargin(Store& store, CostStore& costs, int32_t period_id, const std::string& customer) {
    PeriodMargin out;
    const ingest::CatalogSnapshot cat = store.Load();
    if (cat.catalog.plans.empty()) {
        out.no_plans = true;
        return out;
    }
    const CostCatalog cost_cards = costs.LoadCostCards();
    out.no_cost_cards = cost_cards.empty();
    const std::string period = billing::PeriodLabel(period_id);
    RecordsRead read = FromRecords(cat.catalog, store.LoadRollups(customer, -1));
    out.unresolved = read.unresolved;
    CommitmentHorizon horizon;  // commitments without usage are revenue too, as their invoices say
    horizon.through = period_id;
    if (!customer.empty()) horizon.customers.push_back(customer);
    std::vector<Invoice> invoices =
        PriceRollups(cat.catalog, cat.subscriptions, cat.catalog.plans.front().name, {}, read.rollups, &horizon);
    std::erase_if(invoices, [&](const Invoice& inv) { return inv.period != period; });
    out.rows = billing::ComputeMarginRows(cat.catalog, {}, read.rollups, invoices, cost_cards);
    return out;
}

}  // namespace tally::ledger
