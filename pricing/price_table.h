// A plan version's resolved price table: every cell a call can fall in
// (model x band x output condition x window x batch x thinking) with the
// rate of each unit the rater can bill in it, as a salesperson checks it
// against the published sheet (`GET /v1/plans/{id}`, `tally plan show`).
//
// The rates are CellRate's (pricing/invoice.h), the one rule invoices are
// priced by: fallbacks (cache hits and writes to input, reasoning to
// output), own batch, window, thinking and condition tables (FindStatedRate,
// plan.h), shares of input resolved to the cell's rate, window and batch
// multipliers. Period tiers and free quotas are not per cell and are
// not in the table. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pricing/money.h"
#include "pricing/plan.h"
#include "pricing/rater.h"

namespace tally {

struct PriceCellRate {
    UnitId unit = kUnitInput;
    std::string unit_name;     // "input", "cache_storage_token_hours", ...
    std::optional<Rate> rate;  // price per Rate::per() units; nullopt: no table of the cell prices the unit
};

struct PriceCell {
    // cell.model, band, condition, window and flags say where the cell is,
    // as the rater's CellKey does (customer, plan, version, served: 0).
    CellKey cell;
    std::string model;
    std::string band;              // ModelPricing::BandLabel: "0-32000", "128001+", "all"
    std::string output_condition;  // "output<=200", "output_excl_reasoning<=200", or "" (no condition met)
    std::string window;            // the window's name, or "" (outside every window)
    bool batch = false;
    bool thinking = false;
    // Every unit a call of this cell can bill: input, cached_input,
    // cached_input_explicit (only when the model prices it; otherwise its
    // hits bill at the cached_input rate), cache_write, cache_write_1h (these
    // not on a batch cell whose cache hits bill as input), output, reasoning
    // (when the model prices it), and the extra units the model prices; in
    // that order.
    std::vector<PriceCellRate> rates;
};

// The cells of `version` in model order, then band, output condition (none
// last), window (none last), online before batch, plain before thinking.
// A cell is listed when the model could put a call in it: batch cells only
// when the model prices batch, thinking cells only when it prices thinking.
// `units` is the catalog's unit table the version was parsed into.
std::vector<PriceCell> ResolvePriceTable(const PlanVersion& version, const UnitTable& units);

// The cell of `table` that `cell` (a RatedPart's key) names, or nullptr.
const PriceCell* FindPriceCell(const std::vector<PriceCell>& table, const CellKey& cell);

// "output<=200" or "output_excl_reasoning<=200": an output condition as
// invoice lines name it.
std::string OutputConditionLabel(const OutputCondition& condition);

}  // namespace tally
