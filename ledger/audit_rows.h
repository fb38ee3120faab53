// Appending audit rows (sql/0006_api_keys.sql) inside a transaction of
// ledger/: the key store's own writes and the invoice store's finalize,
// void and credit notes, so that a write and its audit row commit together.
// Internal to ledger/ (it names libpqxx).
#pragma once

#include <pqxx/pqxx>
#include <string>
#include <string_view>

namespace tally::ledger {

// `detail_json` must be a JSON object (the column is jsonb).
inline void InsertAudit(pqxx::transaction_base& tx, const std::string& actor, std::string_view role,
                        const std::string& action, const std::string& target, const std::string& detail_json) {
    tx.exec_params0("INSERT INTO audit_log (actor, role, action, target, detail) VALUES ($1, $2, $3, $4, $5::jsonb)",
                    actor, std::string(role), action, target, detail_json);
}

}  // namespace tally::ledger
