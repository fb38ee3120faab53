#include "ledger/migrations.h"

#include <pqxx/pqxx>

#include <set>

#include "base/assert.h"

namespace tally::ledger {

namespace {
// Any constant; all tally migrators take the same transaction-level lock.
constexpr long long kMigrationLock = 0x7a11e0001LL;
}  // namespace

MigrateResult Migrate(const std::string& database_url) {
    const auto& migrations = Migrations();
    TALLY_ASSERT(!migrations.empty());
    for (size_t i = 1; i < migrations.size(); ++i) TALLY_ASSERT(migrations[i - 1].version < migrations[i].version);

    pqxx::connection conn(database_url);
    {
        pqxx::work tx(conn);
        tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ")");
        tx.exec0(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())");
        std::set<int> known;
        for (const auto& m : migrations) known.insert(m.version);
        for (const auto& row : tx.exec("SELECT version, name FROM schema_migrations ORDER BY version")) {
            if (known.count(row[0].as<int>()) == 0) {
                throw LedgerError("the database has migration " + row[1].as<std::string>() +
                                  ", which this tally does not know: the database is newer than this binary");
            }
        }
        tx.commit();
    }
    MigrateResult result;
    for (const auto& m : migrations) {
        pqxx::work tx(conn);
        tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ")");
        const std::string sql(m.sql);
        const std::string sha =
            tx.exec_params1("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", sql)[0].as<std::string>();
        pqxx::result applied = tx.exec_params("SELECT sha256 FROM schema_migrations WHERE version = $1", m.version);
        if (!applied.empty()) {
            if (applied[0][0].as<std::string>() != sha) {
                throw LedgerError("migration " + std::string(m.name) +
                                  " was changed after it was applied; add a new migration instead of editing one");
            }
            result.present.emplace_back(m.name);
            continue;  // the transaction aborts; nothing was written
        }
        tx.exec(sql);
        tx.exec_params0("INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)", m.version,
                        std::string(m.name), sha);
        tx.commit();
        result.applied.emplace_back(m.name);
    }
    TALLY_ASSERT(result.applied.size() + result.present.size() == migrations.size());
    return result;
}

}  // namespace tally::ledger
