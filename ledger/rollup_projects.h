// The ledger's side of the project cap (pricing/project_cap.h): which
// projects of a customer's billing period are named in its rollups. Internal
// to ledger/ (it names libpqxx).
#pragma once

#include <pqxx/pqxx>
#include <vector>

#include "pricing/rollup_records.h"

namespace tally::ledger {

// Sets every record's project to the name it is kept under, admitting the
// records' new projects into rollup_projects in `tx` (the transaction that
// stores the records: admitted exactly when they are stored) while their
// customer's period has room, in ProjectCap::Admit's order. Admission of a
// customer's period is serialized across transactions (an advisory lock per
// customer and period, taken in one order by all), so two consumers on
// different partitions of one customer never admit more than the cap
// between them, and never name differently a project the other admitted.
void CapProjects(pqxx::transaction_base& tx, std::vector<RollupRecord>* records);

}  // namespace tally::ledger
