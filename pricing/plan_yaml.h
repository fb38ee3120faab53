// Plans from YAML (docs/plan-format.md). Parsing and validation are one step:
// a plan that has any problem is not returned, so it can never be used.
#pragma once

#include <optional>
#include <string_view>

#include "pricing/diagnostic.h"
#include "pricing/plan.h"

namespace tally {

// Parses the text of one plan file. On success returns the plan; otherwise
// nullopt, with every problem found appended to `diagnostics` (file, line,
// column, and a sentence a salesperson understands). Extra units named by the
// plan are added to `units`.
std::optional<Plan> ParsePlan(std::string_view text, std::string_view file_name, UnitTable* units,
                              Diagnostics* diagnostics);

// ParsePlan where a version may also extend (docs/plan-format.md, "Versions
// written as changes") a version of the plan of the same name in
// `published` (the ledger's published plans, parsed with `units`), when no
// version listed before it in the file has that id. nullptr: the file alone.
std::optional<Plan> ParsePlan(std::string_view text, std::string_view file_name, UnitTable* units,
                              Diagnostics* diagnostics, const Catalog* published);

}  // namespace tally
