#include "ledger/rollup_projects.h"

#include <algorithm>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "base/assert.h"
#include "ledger/copy_rows.h"
#include "pricing/project_cap.h"

namespace tally::ledger {

namespace {

using CustomerPeriod = std::pair<std::string, int32_t>;

// PostgreSQL array literals of the customers and periods, element by element.
std::pair<std::string, std::string> Arrays(const std::set<CustomerPeriod>& keys) {
    std::string customers = "{", periods = "{";
    for (const auto& [customer, period] : keys) {
        if (customers.size() > 1) {
            customers += ',';
            periods += ',';
        }
        // Quoted and escaped for an array literal: ids are identifiers, but
        // the literal must not depend on it.
        customers += '"';
        for (const char c : customer) {
            if (c == '"' || c == '\\') customers += '\\';
            customers += c;
        }
        customers += '"';
        periods += std::to_string(period);
    }
    return {customers + "}", periods + "}"};
}

// The projects admitted for `keys`, as a ProjectCap.
ProjectCap Admitted(pqxx::transaction_base& tx, const std::set<CustomerPeriod>& keys) {
    ProjectCap cap;
    const auto [customers, periods] = Arrays(keys);
    for (const auto& row : tx.exec_params(
             "SELECT p.customer_id, p.period, p.project FROM rollup_projects p "
             "JOIN unnest($1::text[], $2::integer[]) AS k (customer_id, period) USING (customer_id, period)",
             customers, periods)) {
        cap.Seed(row[0].as<std::string>(), row[1].as<int32_t>(), row[2].as<std::string>());
    }
    return cap;
}

}  // namespace

void CapProjects(pqxx::transaction_base& tx, std::vector<RollupRecord>* records) {
    std::vector<ProjectUse> uses = ProjectUses(*records);
    std::set<CustomerPeriod> keys;
    for (const ProjectUse& u : uses) keys.emplace(u.customer, u.period);
    ProjectCap cap = keys.empty() ? ProjectCap() : Admitted(tx, keys);
    // The periods with a project to admit and room for it.
    std::set<CustomerPeriod> admitting;
    for (const ProjectUse& u : uses) {
        if (cap.StoredName(u.customer, u.period, u.project) != u.project && cap.HasRoom(u.customer, u.period)) {
            admitting.emplace(u.customer, u.period);
        }
    }
    if (!admitting.empty()) {
        // Lock each period's admission, in the order of the lock keys (the
        // same for every transaction, so two never wait for each other),
        // then read what is admitted again: a transaction that held a lock
        // committed its admissions before releasing it, and each statement
        // of this one sees what was committed before it began.
        const auto [customers, periods] = Arrays(admitting);
        std::vector<std::pair<int32_t, int32_t>> locks;
        for (const auto& row : tx.exec_params("SELECT hashtext(c), p FROM unnest($1::text[], $2::integer[]) AS k (c, p)",
                                              customers, periods)) {
            locks.emplace_back(row[0].as<int32_t>(), row[1].as<int32_t>());
        }
        std::sort(locks.begin(), locks.end());
        locks.erase(std::unique(locks.begin(), locks.end()), locks.end());
        for (const auto& [hash, period] : locks) {
            tx.exec_params("SELECT pg_advisory_xact_lock($1, $2)", hash, period);
        }
        cap = Admitted(tx, keys);
        const std::vector<ProjectUse> now = cap.Admit(uses);
        if (!now.empty()) {
            CopyRows rows(tx, "rollup_projects", {"customer_id", "period", "project"});
            for (const ProjectUse& u : now) rows.Text(u.customer).Int(u.period).Text(u.project).EndRow();
            rows.Complete();
        }
    }
    ApplyProjectCap(cap, records);
    for (const RollupRecord& r : *records) {
        TALLY_ASSERT(r.project.empty() || r.project == kOtherProject || Admissible(r.project));
    }
}

}  // namespace tally::ledger
