#include "pricing/plan_extends.h"

#include <string>
#include <utility>

#include "base/assert.h"

namespace tally {

std::optional<InexactRate> ScaleRates(ModelPricing* m, uint32_t units, Multiplier factor, int max_decimals) {
    TALLY_ASSERT(m != nullptr);
    TALLY_ASSERT(max_decimals >= 0 && max_decimals <= Decimal::kScale);
    const Decimal f = factor.value();
    std::optional<InexactRate> inexact;
    auto selected = [units](UnitId u) { return units == 0 || (units & (1u << u)) != 0; };
    // First pass: every product, checked; nothing is written until all fit.
    ForEachRate(m, [&](UnitId u, Rate* r) {
        if (inexact || !selected(u)) return;
        // Exact whenever the digits of the two add up to at most 18 (Mul).
        if (r->price().fraction_digits() + f.fraction_digits() > Decimal::kScale) {
            inexact = InexactRate{u, r->price(), std::nullopt};
            return;
        }
        try {
            const Decimal product = r->price().Mul(f);
            if (product.fraction_digits() > max_decimals) inexact = InexactRate{u, r->price(), product};
        } catch (const OverflowError&) {
            inexact = InexactRate{u, r->price(), std::nullopt};
        }
    });
    // Shares of input: only when input itself is not scaled.
    const bool scale_shares = !selected(kUnitInput);
    if (scale_shares) {
        ForEachTable(m, [&](RateTable& t) {
            for (size_t u = 0; u < t.of_input.size(); ++u) {
                if (inexact || !t.of_input[u] || !selected(static_cast<UnitId>(u))) continue;
                const Decimal share = t.of_input[u]->value();
                if (share.fraction_digits() + f.fraction_digits() > Decimal::kScale) {
                    inexact = InexactRate{static_cast<UnitId>(u), share, std::nullopt};
                    continue;
                }
                try {
                    const Decimal product = share.Mul(f);
                    if (product.fraction_digits() > max_decimals) {
                        inexact = InexactRate{static_cast<UnitId>(u), share, product};
                    }
                } catch (const OverflowError&) {
                    inexact = InexactRate{static_cast<UnitId>(u), share, std::nullopt};
                }
            }
        });
    }
    if (inexact) return inexact;
    ForEachRate(m, [&](UnitId u, Rate* r) {
        if (!selected(u)) return;
        const Rate scaled = *r * factor;
        TALLY_ASSERT(scaled.price() == r->price().Mul(f));
        *r = scaled;
    });
    if (scale_shares) {
        ForEachTable(m, [&](RateTable& t) {
            for (size_t u = 0; u < t.of_input.size(); ++u) {
                if (t.of_input[u] && selected(static_cast<UnitId>(u))) {
                    t.of_input[u] = Multiplier(t.of_input[u]->value().Mul(f));
                }
            }
        });
    }
    return std::nullopt;
}

void MakeFree(ModelPricing* m) {
    TALLY_ASSERT(m != nullptr);
    ForEachRate(m, [](UnitId, Rate* r) { *r = Rate(Decimal(), r->per()); });
}

bool RemoveModel(PlanVersion* v, std::string_view name) {
    TALLY_ASSERT(v != nullptr);
    auto it = v->model_index.find(std::string(name));
    if (it == v->model_index.end()) return false;
    v->models.erase(v->models.begin() + it->second);
    v->model_index.clear();
    for (size_t i = 0; i < v->models.size(); ++i) v->model_index.emplace(v->models[i].name, static_cast<uint16_t>(i));
    TALLY_ASSERT(v->model_index.size() == v->models.size());
    return true;
}

void PutModel(PlanVersion* v, ModelPricing m) {
    TALLY_ASSERT(v != nullptr);
    auto it = v->model_index.find(m.name);
    if (it != v->model_index.end()) {
        TALLY_ASSERT(v->models[it->second].name == m.name);
        v->models[it->second] = std::move(m);
        return;
    }
    v->model_index.emplace(m.name, static_cast<uint16_t>(v->models.size()));
    v->models.push_back(std::move(m));
}

}  // namespace tally
