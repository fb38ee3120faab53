// Pricing a period's rollups into invoices, in the order declared in
// docs/pricing.md:
//   sum per rate cell -> free quotas -> price each cell (band, output
//   condition, thinking, window, batch) -> period tiers -> contract percent
//   discounts -> percent coupons -> amount coupons -> round (each line, and
//   with round_at: invoice a rounding line to the rounded exact sum) ->
//   minimum commitment true-up -> tax -> money grants; later, adjustments
//   (AddAdjustments) -> tax and total again.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pricing/plan.h"
#include "pricing/rater.h"
#include "pricing/subscription.h"

namespace tally {

// kUnpriced: quantity of a unit the model's plan does not price at all
// (shown, never billed, never dropped silently).
// kRounding: with RoundingPlace::kInvoice, round(exact sum) - sum(rounded
// lines), after the usage, discount and coupon lines; omitted when zero.
// kAdjustment: an amount in the minor unit, either sign, added after the
// commitment line by AddAdjustments (late events of a finalized period).
enum class LineKind : uint8_t {
    kUsage,
    kFreeQuota,
    kDiscount,
    kCoupon,
    kCommitment,
    kUnpriced,
    kRounding,
    kAdjustment,
};
std::string_view LineKindName(LineKind kind);

struct InvoiceLine {
    LineKind kind = LineKind::kUsage;
    std::string plan_version;
    std::string model;
    std::string unit;
    std::string band;
    std::string output_condition;  // "output<=200" or ""
    std::string window;            // window name or ""
    bool batch = false;
    bool thinking = false;
    std::string tier;         // "<rule> #2" or ""
    std::string description;  // free quota, discount, coupon, commitment, rounding or adjustment
    int64_t quantity = 0;
    // UTC hours since the epoch of the first and last rollup a usage, free
    // quota or unpriced line was summed from; 0 and 0 on other lines.
    int32_t first_hour = 0;
    int32_t last_hour = 0;
    std::optional<Rate> rate;  // the rate that priced the line
    Amount amount;             // exact, in the invoice's currency
    Amount amount_rounded;     // to the currency's minor unit
};

struct GrantUse {
    std::string name;
    Amount amount;
};

struct Invoice {
    std::string customer;
    std::string customer_name;
    std::string plan;
    std::string period;  // "2025-09" or "<from>/<to>"
    Instant period_start;
    Instant period_end;
    std::string time_zone;
    Currency currency;
    RoundingMode rounding = RoundingMode::kHalfEven;
    RoundingPlace rounding_place = RoundingPlace::kInvoice;  // of the period's terms version
    // From the subscription if it sets one, else the period's terms version.
    std::chrono::seconds finalize_grace = kDefaultFinalizeGrace;
    std::vector<std::string> plan_versions;  // every version that priced a line
    std::vector<InvoiceLine> lines;
    int64_t calls = 0;
    // Every Amount of an invoice, lines included, is in `currency` (which
    // a failed invoice may not know: then they are zero of no currency).
    Amount usage_exact;     // sum of usage lines, unrounded
    Amount exact_subtotal;  // sum of the exact amounts of the lines before the commitment line
    Amount subtotal;        // sum of rounded lines (rounding, commitment and adjustments included)
    Percent tax_percent;
    Amount tax;
    Amount total;  // subtotal + tax
    std::vector<GrantUse> grants;
    Amount amount_due;  // total - grants
    // Not empty when this invoice could not be priced (a plan with no rate
    // for a unit in some cell, quantities that overflowed): the reason. Its
    // lines and amounts are then empty. One invoice's problem never stops
    // the others from being priced.
    std::string error;
};

struct PricingError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Which monthly periods bill a minimum commitment without usage. A
// subscription with a commitment (its own or its plan's terms for the
// period) bills it in every period it is in force at some instant of, from
// the period of its `from` (without one: the customer's first period with
// usage in the rollups or in `first_billed`, else `through`) to `through`,
// whether or not it has calls: with none, the invoice has the commitment
// line only (then tax, then grants, which carry on as for any period).
struct CommitmentHorizon {
    int32_t through = 0;           // MonthId: the last period billed
    // The customers priced without rollups; sorted. Empty: every subscribed one.
    std::vector<std::string> customers;
    // Per customer, the first period it has an invoice of (the ledger's).
    std::map<std::string, int32_t> first_billed;
};

// Whether `subscription` (on a plan of `catalog`) may bill a minimum
// commitment in some period: the customers a CommitmentHorizon prices.
bool MayCommit(const Catalog& catalog, const Subscription& subscription);

// Prices canonical rollups (CanonicalizeRollups) into one invoice per
// customer, period and plan, in (customer, period, plan name) order. Grants
// carry their remaining balance from one period of a customer to the next.
// With `horizon` (monthly periods only), commitments bill periods without
// usage too. Never throws on data: an invoice that cannot be priced carries
// its `error`. Rollups' projects are summed away first: no price depends on
// them (pricing/project_cap.h).
std::vector<Invoice> PriceRollups(const Catalog& catalog, const std::vector<Subscription>& subscriptions,
                                  const std::string& default_plan, const PeriodRule& period,
                                  const std::vector<Rollup>& rollups, const CommitmentHorizon* horizon = nullptr);

// PriceRollups of each prefix of `rollups` that ends inside `last_period`:
// out[k] is what PriceRollups(catalog, subscriptions, default_plan, period,
// P_k, horizon) returns, to the last digit (errors included), for P_k the
// rollups of periods before `last_period` and those of `last_period` with an
// hour before `until_hours[k]`. `rollups`: canonical, every period at most
// `last_period`. For one customer with rollups in `last_period` the periods
// before it are priced once and `last_period` in one pass in hour order
// (PeriodPricer::Feed), taking each cut's invoice from the running state:
// free quotas and graduated tiers are consumed in hour order, volume tiers
// take the tier of the prefix's total, the subscription in force is that of
// the prefix's last hour, and amount coupons and grants start from what the
// earlier periods left. Otherwise (several customers, a cut before the
// period's first rollup, periods billed after it) each prefix is priced on
// its own. GET /v1/usage?group_by=day prices a month's days this way.
std::vector<std::vector<Invoice>> PriceRollupsThrough(const Catalog& catalog,
                                                      const std::vector<Subscription>& subscriptions,
                                                      const std::string& default_plan, const PeriodRule& period,
                                                      const std::vector<Rollup>& rollups, int32_t last_period,
                                                      const std::vector<int32_t>& until_hours,
                                                      const CommitmentHorizon* horizon = nullptr);

// Appends `adjustments` (kind kAdjustment, amount == amount_rounded in the
// invoice's currency and minor unit, either sign, first_hour and last_hour
// 0; a violation is a programming error and aborts) after the invoice's other
// lines, then recomputes subtotal, tax (on the new subtotal, with the
// invoice's rounding mode), total and amount_due (total minus the grants
// already used on this invoice; grants are not applied again). Used for
// late events of a finalized period; the caller computes amounts and
// descriptions. The invoice must be priced (no error).
void AddAdjustments(Invoice* invoice, const std::vector<InvoiceLine>& adjustments);

// An invoice with no lines and zero amounts for `customer` on `plan` in the
// billing period `period_month_id` (a MonthId; the billing_anchor_day of
// `subscription`, which must be on `plan`, applies to the whole period),
// with zone, currency, rounding, tax and
// finalize_grace from the plan's terms for that period: the base for an
// invoice that carries only adjustments. `subscription` may be null.
Invoice EmptyInvoice(const Catalog& catalog, const Plan& plan, const Subscription* subscription,
                     const std::string& customer, int32_t period_month_id);

// The rate of `unit` in a cell, before period tiers; nullopt when the cell
// prices no such unit. Exposed for tests and previews.
std::optional<Rate> CellRate(const ModelPricing& model, const CellKey& cell, UnitId unit);

}  // namespace tally
