// The margin of one billing period, computed from the ledger as `tally
// margin` prints it and `GET /v1/margin` serves it (one computation for
// both: docs/margin.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "billing/margin.h"
#include "ledger/cost_store.h"
#include "ledger/store.h"

namespace tally::ledger {

struct PeriodMargin {
    bool no_plans = false;       // nothing published: no rows, nothing else read
    bool no_cost_cards = false;  // every row's cost is unknown
    std::vector<billing::MarginRow> rows;  // billing::ComputeMarginRows' order
    int64_t unresolved = 0;  // rollup rows naming a plan, version, model or unit no longer published (left out)
};

// The published catalog (Store::Load) and cost cards, every period of the
// stored usage priced (amount coupons and grants are balances earlier
// periods use up; commitments without usage are revenue through
// `period_id`), then the rows of the invoices of `period_id` only.
// `customer` "" : every customer. Throws as Store and CostStore do.
PeriodMargin ComputePeriodMargin(Store& store, CostStore& costs, int32_t period_id, const std::string& customer);

}  // namespace tally::ledger
