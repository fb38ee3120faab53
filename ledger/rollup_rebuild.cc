#include "ledger/rollup_rebuild.h"

#include <pqxx/pqxx>

#include "base/assert.h"
#include "ledger/connect.h"
#include "ledger/copy_rows.h"
#include "ledger/rollup_projects.h"

namespace tally::ledger {

std::vector<RebuildOutcome> RebuildRollups(const std::string& database_url, int32_t period_id, Instant from, Instant to,
                                           const std::string& customer, const Rerate& rerate) {
    TALLY_ASSERT(from < to);
    std::unique_ptr<pqxx::connection> conn = Connect(database_url);
    pqxx::work tx(*conn);
    // Batches of the consumer (and its fold) wait until this commits.
    tx.exec0("LOCK TABLE rollups, rollup_deltas IN SHARE ROW EXCLUSIVE MODE");
    const std::string from_text = FormatRfc3339(from), to_text = FormatRfc3339(to);
    std::vector<std::string> customers;
    for (const auto& r : tx.exec_params(
             "SELECT customer_id FROM rollups WHERE period = $1 AND ($2 = '' OR customer_id = $2) "
             "UNION SELECT customer_id FROM rollup_deltas WHERE period = $1 AND ($2 = '' OR customer_id = $2) "
             "UNION SELECT customer_id FROM event_archive WHERE last_event_time >= $3::timestamptz "
             "  AND first_event_time < $4::timestamptz AND ($2 = '' OR customer_id = $2) ORDER BY 1",
             period_id, customer, from_text, to_text)) {
        customers.push_back(r[0].as<std::string>());
    }
    std::vector<RebuildOutcome> out;
    for (const std::string& c : customers) {
        RebuildOutcome o;
        o.customer = c;
        o.calls_before = tx.exec_params1("SELECT COALESCE(sum(calls), 0)::bigint FROM (SELECT calls FROM rollups "
                                         "WHERE customer_id = $1 AND period = $2 AND unit = '' UNION ALL SELECT calls "
                                         "FROM rollup_deltas WHERE customer_id = $1 AND period = $2 AND unit = '') r",
                                         c, period_id)[0]
                             .as<int64_t>();
        std::vector<std::string> payloads;
        for (const auto& r : tx.exec_params("SELECT e.payload FROM event_archive a CROSS JOIN LATERAL "
                                            "unnest(string_to_array(a.payloads, E'\\x1e')) AS e (payload) "
                                            "WHERE a.customer_id = $1 AND a.last_event_time >= $2::timestamptz "
                                            "AND a.first_event_time < $3::timestamptz",
                                            c, from_text, to_text)) {
            payloads.push_back(r[0].as<std::string>());
        }
        std::vector<RollupRecord> records = rerate(c, payloads, &o.refused);
        std::erase_if(records, [&](const RollupRecord& r) { return r.customer != c || r.period != period_id; });
        for (const RollupRecord& r : records) o.calls_after += r.calls;
        // The projects the ledger admitted stay named; the rest are `other`
        // (pricing/project_cap.h), as when the calls were first stored.
        CapProjects(tx, &records);
        if (o.refused.empty() && o.calls_after != o.calls_before) {
            o.refused = "the archive holds " + std::to_string(o.calls_after) + " calls of the period and the rollups " +
                        std::to_string(o.calls_before) +
                        " (archive turned off, or past its retention, when they were billed): kept as billed";
        }
        if (!o.refused.empty()) {
            out.push_back(std::move(o));
            continue;
        }
        tx.exec_params0("DELETE FROM rollups WHERE customer_id = $1 AND period = $2", c, period_id);
        tx.exec_params0("DELETE FROM rollup_deltas WHERE customer_id = $1 AND period = $2", c, period_id);
        CopyRows rows(tx, "rollups",
                      {"customer_id", "period", "hour", "plan", "version", "model", "band", "condition", "time_window",
                       "flags", "unit", "quantity", "calls", "served_model", "project"});
        for (const RollupRecord& r : records) {
            rows.Text(r.customer).Int(r.period).Int(r.hour).Text(r.plan).Text(r.version).Text(r.model).Int(r.band);
            rows.Int(r.condition).Int(r.time_window).Int(r.flags).Text(r.unit).Int(r.quantity).Int(r.calls);
            rows.Text(r.served_model).Text(r.project).EndRow();
        }
        rows.Complete();
        o.replaced = true;
        out.push_back(std::move(o));
    }
    tx.commit();
    return out;
}

}  // namespace tally::ledger
