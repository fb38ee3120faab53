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

// Calls `f(unit, rate)` for every rate of `m`: each band's rates,
// thinking_rates, batch_rates and output-condition rates, and each window's
// own rates. Multipliers (window, batch) are not rates and are not visited.
template <typename F>
void ForEachRate(ModelPricing* m, F&& f) {
    auto table = [&](RateTable& t) {
        for (size_t u = 0; u < t.size(); ++u) {
            if (t[u]) f(static_cast<UnitId>(u), &*t[u]);
        }
    };
    for (Band& b : m->bands) {
        table(b.rates);
        table(b.thinking_rates);
        table(b.batch_rates);
        for (OutputCondition& c : b.output_conditions) table(c.rates);
    }
    for (Window& w : m->windows) table(w.rates);
}

// A rate that a multiplier would make too precise: its unit, its price, and
// the exact product (or nullopt when the product overflows).
struct InexactRate {
    UnitId unit = 0;
    Decimal price;
    std::optional<Decimal> product;
};

// Multiplies every rate of `m` whose unit is in `units` (a bit per UnitId;
// 0 means every unit) by `factor`, exactly. When some product needs more
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
