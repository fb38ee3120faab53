// What an invoice run decides, as a pure function: the drafts of one
// billing period, each carrying adjustments for earlier periods whose
// finalized invoices no longer match their usage (late events, re-rating).
// The ledger reads the inputs and writes the outputs (ledger/invoice_store).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pricing/invoice.h"

namespace tally::billing {

// What has been invoiced for one customer, plan and period: the subtotal of
// its finalized invoice plus the adjustments for it already carried by
// other (finalized or draft) invoices that this run does not replace.
struct InvoicedPeriod {
    std::string customer, plan;
    int32_t period_id = 0;
    std::string invoice_number;  // the finalized invoice of that period
    Amount invoiced;             // pre-tax, in the invoice's currency
};

// An adjustment line's provenance (billing/invoice_document.h DocumentLine).
struct AdjustmentSource {
    std::string period;          // "YYYY-MM" it corrects
    std::string invoice_number;  // that period's finalized invoice
    int64_t calls = 0;           // calls of that period as priced now
    Amount priced_now;           // that period's subtotal as priced now
};

struct Draft {
    Invoice invoice;
    int32_t period_id = 0;
    std::vector<AdjustmentSource> adjustments;  // one per kAdjustment line, in line order
};

struct RunDecision {
    std::vector<Draft> drafts;         // in (customer, plan) order
    int left_finalized = 0;            // invoices of the period already finalized: left alone
    std::vector<std::string> problems;  // periods that could not be re-priced for adjustments
};

// `priced` holds PriceRollups' invoices of every period up to `period_id`
// for the customers of the run (earlier periods are needed for balances and
// for adjustments); `invoiced` every finalized period of those customers up
// to `period_id` (one for `period_id` itself means: no draft).
// Each difference price(all of a finalized period's usage) - invoiced, when
// not zero, becomes a kAdjustment line on the draft of `period_id` for the
// same customer and plan (an invoice with only adjustments if there is no
// usage now). Never throws on data.
RunDecision DecideRun(const Catalog& catalog, const std::vector<Subscription>& subscriptions, int32_t period_id,
                      const std::vector<Invoice>& priced, const std::vector<InvoicedPeriod>& invoiced);

// "YYYY-MM" <-> billing month id; nullopt for any other text.
std::optional<int32_t> PeriodIdOf(std::string_view label);
std::string PeriodLabel(int32_t period_id);

}  // namespace tally::billing
