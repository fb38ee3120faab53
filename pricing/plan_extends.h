// Versions written as changes (docs/plan-format.md, "Versions written as
// changes"): the edits a version that `extends` another makes to a copy of
// it. The YAML side (which edits, where they are written) is plan_yaml.cc;
// these work on resolved values only, so the result is an ordinary
// PlanVersion and nothing downstream knows it was written as changes.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "pricing/plan.h"

namespace tally {

// Calls `f(table)` for every rate table of `m`: each band's rates,
// thinking_rates, batch_rates, its output conditions' tables (their window
// tables too) and its window tables, and each window's own rates. Multipliers (window, batch)
// are not rate tables and are not visited.
template <typename F>
void ForEachTable(ModelPricing* m, F&& f) {
    for (Band& b : m->bands) {
        f(b.rates);
        f(b.thinking_rates);
        f(b.batch_rates);
        for (OutputCondition& c : b.output_conditions) {
            f(c.rates);
            f(c.thinking_rates);
            f(c.batch_rates);
            for (OutputCondition::WindowTable& t : c.window_rates) f(t.rates);
        }
    }
    for (Window& w : m->windows) {
        f(w.rates);
        for (RateTable& t : w.band_rates) f(t);
    }
}

// Calls `f(unit, rate)` for every written rate of `m` (not shares of input).
template <typename F>
void ForEachRate(ModelPricing* m, F&& f) {
    ForEachTable(m, [&](RateTable& t) {
        for (size_t u = 0; u < t.rates.size(); ++u) {
            if (t.rates[u]) f(static_cast<UnitId>(u), &*t.rates[u]);
        }
    });
}

// A rate that a multiplier would make too precise: its unit, its price, and
// the exact product (or nullopt when the product overflows).
struct InexactRate {
    UnitId unit = 0;
    Decimal price;
    std::optional<Decimal> product;
};

// Multiplies every rate of `m` whose unit is in `units` (a bit per UnitId;
// 0 means every unit) by `factor`, exactly. A unit priced as a share of
// input follows its cell's input: its share is multiplied only when the
// change leaves input alone (otherwise the share would take `factor` twice). When some product needs more
// than `max_decimals` fractional digits (or does not fit), returns the first
// such rate and leaves `m` unchanged: a multiplied rate is never rounded.
std::optional<InexactRate> ScaleRates(ModelPricing* m, uint32_t units, Multiplier factor, int max_decimals);

// Sets every rate of `m` to 0 (same `per`): the model is still priced, and
// its calls bill 0 in every cell.
void MakeFree(ModelPricing* m);

// Removes the model called `name` from `v` and renumbers model_index.
// Returns false when `v` has no such model.
bool RemoveModel(PlanVersion* v, std::string_view name);

// Replaces the model of the same name in `v`, or appends `m` when `v` has
// none, keeping model_index in step.
void PutModel(PlanVersion* v, ModelPricing m);

}  // namespace tally
