// Running a command against the ledger, with its failures as exit codes.
#pragma once

#include <ostream>
#include <string>

#include "app/commands.h"
#include "ledger/migrations.h"

namespace tally {

// Runs `body(url)` with the database URL (flag, else $TALLY_DATABASE_URL):
// a missing URL is a usage error; what the operator asked wrongly
// (LedgerError) and database errors (with the URL's password masked) are
// failures, each said on `err` as "tally COMMAND: ...".
template <typename Body>
int WithDatabase(const char* command, const std::string& url_flag, std::ostream& err, Body body) {
    const std::string url = DatabaseUrl(url_flag);
    if (url.empty()) {
        err << "tally " << command << ": no database: give --database-url or set TALLY_DATABASE_URL\n";
        return kExitUsage;
    }
    try {
        return body(url);
    } catch (const ledger::LedgerError& e) {
        err << "tally " << command << ": " << e.what() << "\n";
    } catch (const std::exception& e) {
        std::string what = e.what();
        while (!what.empty() && what.back() == '\n') what.pop_back();
        err << "tally " << command << ": " << MaskSecret(url) << ": " << what << "\n";
    }
    return kExitFailure;
}

}  // namespace tally
