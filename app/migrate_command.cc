#include <cstdlib>
#include <iostream>

#include "app/commands.h"
#include "ledger/migrations.h"

namespace tally {

int RunMigrate(const std::string& database_url_flag, std::ostream& out, std::ostream& err) {
    const std::string url = DatabaseUrl(database_url_flag);
    if (url.empty()) {
        err << "tally migrate: no database: give --database-url or set TALLY_DATABASE_URL "
               "(e.g. postgresql://tally@127.0.0.1:55432/tally)\n";
        return kExitUsage;
    }
    try {
        ledger::MigrateResult r = ledger::Migrate(url);
        for (const auto& name : r.applied) out << "applied " << name << "\n";
        out << "schema up to date at " << MaskSecret(url) << ": " << r.present.size() + r.applied.size()
            << " migrations, " << r.applied.size() << " applied now\n";
        return kExitOk;
    } catch (const ledger::LedgerError& e) {
        err << "tally migrate: " << e.what() << "\n";
    } catch (const std::exception& e) {
        std::string what = e.what();
        while (!what.empty() && what.back() == '\n') what.pop_back();
        err << "tally migrate: " << MaskSecret(url) << ": " << what << "\n";
        if (what.find("connect") != std::string::npos) {
            err << "(is PostgreSQL running? deploy/pg-local.sh start DIR starts a local one)\n";
        }
    }
    return kExitFailure;
}

}  // namespace tally
