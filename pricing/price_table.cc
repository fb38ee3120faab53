#include "pricing/price_table.h"

#include "base/assert.h"
#include "pricing/invoice.h"

namespace tally {

namespace {

// The units a call of `m` in a cell with `batch` can have quantities in
// (Rater::Classify), in table order.
std::vector<UnitId> BilledUnits(const ModelPricing& m, bool batch) {
    std::vector<UnitId> units = {kUnitInput};
    // A batch call of a model whose batch does not combine with the cache
    // bills its whole prompt as input.
    if (!(batch && m.batch.cache_hits == BatchCache::kNotCombined)) {
        units.push_back(kUnitCachedInput);
        // Explicit hits of a model that does not price them bill at the
        // cached_input rate (UnitFallback): a row of their own only when priced.
        if ((m.priced_units & (1u << kUnitCachedInputExplicit)) != 0) units.push_back(kUnitCachedInputExplicit);
        units.insert(units.end(), {kUnitCacheWrite, kUnitCacheWrite1h});
    }
    units.push_back(kUnitOutput);
    if (m.prices_reasoning) units.push_back(kUnitReasoning);
    for (UnitId u = kNumStdUnits; u < kMaxUnits; ++u) {
        if ((m.priced_units & (1u << u)) != 0) units.push_back(u);
    }
    return units;
}

}  // namespace

std::string OutputConditionLabel(const OutputCondition& oc) {
    return std::string(oc.reasoning_counts ? "output" : "output_excl_reasoning") + "<=" + std::to_string(oc.up_to);
}

std::vector<PriceCell> ResolvePriceTable(const PlanVersion& version, const UnitTable& units) {
    std::vector<PriceCell> out;
    for (size_t mi = 0; mi < version.models.size(); ++mi) {
        const ModelPricing& m = version.models[mi];
        TALLY_ASSERT(!m.bands.empty());
        TALLY_ASSERT(m.bands.size() <= kMaxBands);
        for (size_t b = 0; b < m.bands.size(); ++b) {
            const Band& band = m.bands[b];
            // Index `conditions` is "no condition met", `windows` "outside every window".
            const size_t conditions = band.output_conditions.size();
            const size_t windows = m.windows.size();
            for (size_t c = 0; c <= conditions; ++c) {
                for (size_t w = 0; w <= windows; ++w) {
                    for (int batch = 0; batch <= (m.batch.priced ? 1 : 0); ++batch) {
                        for (int thinking = 0; thinking <= (m.prices_thinking ? 1 : 0); ++thinking) {
                            PriceCell cell;
                            cell.cell.model = static_cast<uint16_t>(mi);
                            cell.cell.band = static_cast<uint8_t>(b);
                            cell.cell.condition = c < conditions ? static_cast<uint8_t>(c) : kNone;
                            cell.cell.window = w < windows ? static_cast<uint8_t>(w) : kNone;
                            cell.cell.flags = static_cast<uint8_t>((batch != 0 ? kFlagBatch : 0) |
                                                                   (thinking != 0 ? kFlagThinking : 0));
                            cell.model = m.name;
                            cell.band = m.BandLabel(b);
                            if (c < conditions) cell.output_condition = OutputConditionLabel(band.output_conditions[c]);
                            if (w < windows) cell.window = m.windows[w].name;
                            cell.batch = batch != 0;
                            cell.thinking = thinking != 0;
                            for (UnitId u : BilledUnits(m, cell.batch)) {
                                TALLY_ASSERT(u < units.size());
                                cell.rates.push_back({u, units.Name(u), CellRate(m, cell.cell, u)});
                            }
                            out.push_back(std::move(cell));
                        }
                    }
                }
            }
        }
    }
    return out;
}

const PriceCell* FindPriceCell(const std::vector<PriceCell>& table, const CellKey& cell) {
    for (const PriceCell& c : table) {
        if (c.cell.model == cell.model && c.cell.band == cell.band && c.cell.condition == cell.condition &&
            c.cell.window == cell.window && c.cell.flags == cell.flags) {
            return &c;
        }
    }
    return nullptr;
}

}  // namespace tally
