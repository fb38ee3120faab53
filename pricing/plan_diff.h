// What changes from one plan version to another, cell by cell, as
// `tally plan diff` and `tally plan publish --dry-run` show it.
//
// Cells are ResolvePriceTable's (pricing/price_table.h): the rate of every
// unit in every cell (model x band x output condition x window x batch x
// thinking) by CellRate, the one rule invoices are priced by. Two cells are
// the same cell when their model, band label, condition label, window name,
// batch and thinking flags are; two rates are equal when they price every
// quantity the same (0.8 per 1M equals 0.0008 per 1K). The terms that are not
// cell rates (currency, zone, rounding, tax, commitment, tiers, free quotas,
// and each model's bands, windows and batch rules) are compared as text.
// Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pricing/decimal.h"
#include "pricing/money.h"
#include "pricing/plan.h"

namespace tally {

struct RateChange {
    std::string model;
    std::string band;              // "0-32000", "all", ...
    std::string output_condition;  // "output<=200", or ""
    std::string window;            // the window's name, or ""
    bool batch = false;
    bool thinking = false;
    std::string unit;              // "input", "cached_input", ...
    std::optional<Rate> old_rate;  // nullopt: the old version has no such cell, or no rate for the unit in it
    std::optional<Rate> new_rate;  // nullopt: likewise in the new version
    std::string change;            // RateChangeText(old_rate, new_rate)
};

struct TermChange {
    // "currency", "time_zone", "rounding", "round_at", "tax_percent",
    // "minimum_commitment", "finalize_grace", "tiers", "free_quotas", or a
    // model's term: "model qwen-plus: bands", "... batch", "... window off-peak".
    std::string term;
    std::string old_value;  // "" when the old version does not have it
    std::string new_value;  // "" when the new version does not have it
};

struct PlanVersionDiff {
    std::vector<std::string> models_added;    // in the new version's order
    std::vector<std::string> models_removed;  // in the old version's order
    std::vector<TermChange> terms;
    // The cells of models in both versions whose rate changed, appeared or
    // went away: in the new version's table order, then the cells only the
    // old version has in its order. Cells of models added or removed are
    // not listed (ResolvePriceTable of that version has them).
    std::vector<RateChange> rates;

    bool empty() const { return models_added.empty() && models_removed.empty() && terms.empty() && rates.empty(); }
};

// `old_units` and `new_units` are the unit tables each version was parsed
// into (units are matched by name, so the two may differ).
PlanVersionDiff DiffPlanVersions(const PlanVersion& old_version, const UnitTable& old_units,
                                 const PlanVersion& new_version, const UnitTable& new_units);

// Whether two rates price every quantity the same: a / a.per == b / b.per.
bool SameRate(const Rate& a, const Rate& b);

// The change from `old_rate` to `new_rate` in percent, (new - old) / old x
// 100 on the price of one unit, rounded half-even to 2 places: -70.00 for a
// 70 % cut. nullopt when the old price is 0 (no percentage of nothing).
// Throws OverflowError only for rates far outside any price sheet.
std::optional<Decimal> RateChangePercent(const Rate& old_rate, const Rate& new_rate);

// "+12.50%", "-70.00%", "0.00%" (same price per unit), "new" (no old rate),
// "removed" (no new rate), "from 0" (the old price is 0).
// REQUIRES: at least one rate.
std::string RateChangeText(const std::optional<Rate>& old_rate, const std::optional<Rate>& new_rate);

}  // namespace tally
