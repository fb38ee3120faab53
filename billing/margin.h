// Gross margin: what invoices earn against what serving their usage cost
// (docs/margin.md). Pure: values in, values out, no I/O.
//
//   revenue of an invoice = its subtotal (after discounts and coupons,
//     commitment true-up included, before tax), allocated over the invoice's
//     (model, day) usage in proportion to its list value (quantity x the
//     cell's rate, CellRate), or by calls when the list value is zero
//     everywhere; exact, by the largest-remainder rule (AllocateExactly).
//   cost = quantity x the cost card's rate of the model, unit and band in
//     force at the usage hour (CostCatalog::Cost), exact; unknown when any
//     unit of the row has no cost. The model costed is the one that served
//     the calls: the served model of routed calls, else the model billed.
//   margin = revenue - cost; margin % = margin / revenue x 100, half-even
//     at 2 places ("n/a" when revenue is 0).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/int128.h"
#include "pricing/cost_card.h"
#include "pricing/invoice.h"
#include "pricing/plan.h"
#include "pricing/rater.h"

namespace tally::billing {

// The numbers of a margin row or of a group of rows, in one currency.
struct MarginFigures {
    Currency currency;                      // the revenue's (the invoice's)
    Amount revenue;                         // exact
    std::optional<Amount> cost;             // exact; nullopt when not known
    std::optional<Amount> margin;           // revenue - cost; nullopt when cost is not known
    std::optional<Decimal> margin_percent;  // 2 places; nullopt: n/a (revenue 0, or cost not known)
    bool negative = false;                  // margin < 0
    int64_t calls = 0;
    // Not empty when the row cannot be valued: cost in another currency
    // than revenue (there is no FX, the two are never mixed), or an invoice
    // that could not be priced. Then cost, margin and percent are nullopt.
    std::string error;
    // Why the cost is not known (first reason met), when it is not.
    std::string cost_unknown;

    bool cost_known() const { return cost.has_value(); }
    // "12.34", or "n/a".
    std::string MarginPercentText() const;
};

// The finest grain: one customer, plan, model billed, served model and
// local day.
struct MarginRow {
    std::string customer;
    std::string plan;
    std::string model;         // the model billed
    std::string served_model;  // the model that served routed calls (and is costed); "" when not routed
    std::string day;           // YYYY-MM-DD in the zone of the plan version of the usage
    MarginFigures figures;
};

// Margin rows of `invoices` (as PriceRollups made them from `rollups`,
// canonical, under `period`), ordered by (customer, plan, model,
// served_model, day, currency). Rollups belonging to no invoice in `invoices` are skipped, so
// a caller keeps only the invoices of the period it reports on.
// Revenue rows of one invoice add up to its subtotal exactly: each share is
// subtotal x weight / total weight at Decimal's 10^-18 by AllocateExactly
// (truncated, then the residue, less than 10^-18 per row, one 10^-18 each
// to the rows with the largest remainders, the first in row order among equals).
// Throws nothing on data: a problem is the row's `error`.
std::vector<MarginRow> ComputeMarginRows(const Catalog& catalog, const PeriodRule& period,
                                         const std::vector<Rollup>& rollups, const std::vector<Invoice>& invoices,
                                         const CostCatalog& costs);

// Splits `total` (a multiple of `unit` > 0) over `weights` (>= 0, not all
// 0) in whole units, by the largest-remainder rule: each share is |total| x
// weight / sum of weights truncated to a unit, then the units left (fewer
// than there are weights) go one each to the shares with the largest
// remainders, the first in order among equals; shares take total's sign.
// They add up to `total` exactly. Revenue over margin rows uses it at
// Decimal's 10^-18 (unit 1); GET /v1/usage?group_by=project over projects
// at the currency's minor unit. Throws OverflowError when a product does
// not fit.
std::vector<int128> AllocateExactly(int128 total, const std::vector<int128>& weights, int128 unit);

// kModel groups by the model billed, kServedModel by the model that served
// the calls (the model billed when they were not routed).
enum class MarginGroup : uint8_t { kCustomer, kModel, kPlan, kDay, kServedModel };
std::optional<MarginGroup> ParseMarginGroup(std::string_view text);  // customer|model|plan|day|served_model
std::string_view MarginGroupName(MarginGroup group);

struct MarginGroupRow {
    std::string key;  // the customer id, model, plan, day or serving model
    MarginFigures figures;
};

// Rows summed by `by` and currency (two currencies are never added), ordered
// by (key, currency). A group's cost is unknown when any of its rows' is;
// its error is the first error of its rows.
std::vector<MarginGroupRow> GroupMarginRows(const std::vector<MarginRow>& rows, MarginGroup by);

// Sets margin, margin_percent and negative from revenue and cost (and
// clears them when cost is unknown or there is an error).
void FinishFigures(MarginFigures* figures);

// margin / revenue x 100, half-even at 2 places; nullopt when revenue is 0
// (or when the percent is too large for a Decimal: a huge cost on a tiny share).
// REQUIRES: one currency.
std::optional<Decimal> MarginPercent(const Amount& margin, const Amount& revenue);

}  // namespace tally::billing
