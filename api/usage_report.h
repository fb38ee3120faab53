// GET /v1/usage's numbers: one customer's stored rollups priced with the
// same code as `tally usage` and `tally invoice run` (FromRecords, then
// PriceRollups per billing period), split into rows that add up exactly to
// the priced subtotals (docs/api.md, "What usage costs"). Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/queries.h"
#include "pricing/money.h"
#include "pricing/plan.h"
#include "pricing/rollup_records.h"
#include "pricing/subscription.h"

namespace tally::api {

struct UsageRow {
    std::string period;  // billing period "2025-11"
    // group_by=day: the local date ("2025-11-03") in the invoice's zone;
    // hour: the UTC hour ("2025-11-03T05:00:00Z"); model: the model;
    // project: the project ("" for calls that named none, "other" beyond
    // the cap); an invoice-level row: the line's description.
    std::string group;
    // "usage" for a time bucket, a model or a project (its usage, free quota
    // and unpriced lines; a project's share of them); else the invoice line
    // kind of an invoice-level row: discount, coupon, rounding, commitment.
    std::string kind;
    int64_t calls = 0;  // time buckets and projects: calls in it; else 0
    Amount cost;        // rounded to the currency's minor unit
};

// What the period's invoice says when priced from the same rollups.
struct PeriodSubtotal {
    std::string period, plan;
    Amount subtotal;  // the rows of this period add up to it (period=) or
                      // to it minus the subtotal before `from` (from/to)
    int64_t calls = 0;
    std::string error;  // not empty: could not be priced (its rows are left out)
};

struct UsageReport {
    std::vector<UsageRow> rows;
    std::vector<Amount> totals;  // the rows' sum, one per currency, by code
    std::vector<PeriodSubtotal> periods;
    int64_t unresolved = 0;  // stored records naming what is no longer published (left out)
};

// `records`: the customer's stored records of every billing period the
// query touches, all hours of a `period` query, hours before `to` of a
// range query. `earlier`: its records of every period before those (only
// needed when its subscriptions have amount coupons, the one balance that
// earlier periods use up before the subtotal; NeedsEarlierPeriods).
// Each period is priced as the invoice run prices it: after every earlier
// period, and a `period` query with a minimum commitment shows it also
// without usage. Throws HttpError 400 when no plan is published.
UsageReport ComputeUsage(const Catalog& catalog, const std::vector<Subscription>& subscriptions,
                         const std::vector<RollupRecord>& records, const UsageQuery& query,
                         const std::vector<RollupRecord>& earlier = {});

// Whether `customer`'s subtotals depend on its earlier periods (an amount
// coupon on one of its subscriptions).
bool NeedsEarlierPeriods(const std::vector<Subscription>& subscriptions, const std::string& customer);

}  // namespace tally::api
