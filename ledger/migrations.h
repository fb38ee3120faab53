// The ledger's schema: numbered SQL files in sql/, embedded in the binary,
// applied in order by `tally migrate`. Applying twice changes nothing; a
// migration changed after it was applied is refused.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tally::ledger {

struct Migration {
    int version = 0;        // from the file name: 0001_ledger.sql -> 1
    std::string_view name;  // "0001_ledger"
    std::string_view sql;
};

// Every migration, by version.
const std::vector<Migration>& Migrations();

struct LedgerError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct MigrateResult {
    std::vector<std::string> applied;  // names applied by this call
    std::vector<std::string> present;  // names found already applied
};

// Applies the pending migrations to the database at `database_url`, each in
// its own transaction, under an advisory lock so that concurrent migrators
// wait for each other. Throws LedgerError when an applied migration's text
// differs from the embedded one, or when the database has a migration this
// binary does not know (it is newer than this tally).
MigrateResult Migrate(const std::string& database_url);

}  // namespace tally::ledger
