#include "ledger/errors.h"

#include <map>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "base/assert.h"
#include "ledger/connect.h"
#include "ledger/migrations.h"

namespace tally::ledger {

namespace {

using ingest::SinkError;
using ingest::SinkErrorKind;

constexpr std::string_view kRunMigrate = "the database has no Tally schema or an older one: run tally migrate";

bool Contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

// The first line of a libpq message (the rest is the statement and a
// caret), without the severity that starts a server's message.
std::string FirstLine(std::string_view text) {
    std::string line(text.substr(0, text.find('\n')));
    for (std::string_view severity : {"ERROR:  ", "FATAL:  "}) {
        if (StartsWith(line, severity)) line.erase(0, severity.size());
    }
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
    return line.empty() ? std::string("(no message)") : line;
}

// The name in `... violates check constraint "rollups_band_check"`: the
// server's message carries it, libpqxx 6.4's exception does not.
std::string ConstraintOf(std::string_view text) {
    constexpr std::string_view kMarker = "constraint \"";
    const size_t at = text.find(kMarker);
    if (at == std::string_view::npos) return {};
    const size_t begin = at + kMarker.size();
    const size_t end = text.find('"', begin);
    if (end == std::string_view::npos) return {};
    return std::string(text.substr(begin, end - begin));
}

SinkError Make(SinkErrorKind kind, std::string_view what, std::string_view detail, std::string_view todo) {
    TALLY_ASSERT(!what.empty());
    std::string message(what);
    message += ": ";
    message += detail;
    if (!todo.empty()) {
        message += "; ";
        message += todo;
    }
    return SinkError(kind, message);
}

constexpr std::string_view kLoginRefused =
    "the server refused the login: check the user and password of the database URL (TALLY_DATABASE_URL or "
    "--database-url) and the server's pg_hba.conf";
constexpr std::string_view kNoDatabase =
    "fix the database name in the URL, or create the database (createdb NAME) and run tally migrate";
constexpr std::string_view kNoPrivilege =
    "grant the database user CONNECT on the database and the privileges on the ledger's tables (the user that ran "
    "tally migrate owns them)";

// libpq reports a failed connection (and a lost one) as text, without a
// SQLSTATE. Failures that waiting does not cure are known by their words;
// anything else (refused, unreachable, starting up, too many clients) is
// worth trying again.
SinkError OfConnection(std::string_view what, std::string_view text) {
    const std::string line = FirstLine(text);
    if (Contains(text, "password authentication failed") || Contains(text, "authentication failed") ||
        Contains(text, "no pg_hba.conf entry") || Contains(text, "no password supplied") ||
        (Contains(text, "role \"") && Contains(text, "does not exist"))) {
        return Make(SinkErrorKind::kFatal, what, line + " (SQLSTATE class 28)", kLoginRefused);
    }
    if (Contains(text, "database \"") && Contains(text, "does not exist")) {
        return Make(SinkErrorKind::kFatal, what, line + " (SQLSTATE 3D000)", kNoDatabase);
    }
    if (Contains(text, "permission denied")) {
        return Make(SinkErrorKind::kFatal, what, line + " (SQLSTATE 42501)", kNoPrivilege);
    }
    if (Contains(text, "invalid connection option") || Contains(text, "invalid URI") ||
        Contains(text, "missing \"=\"") || Contains(text, "invalid integer value") ||
        Contains(text, "invalid port number") || Contains(text, "invalid sslmode")) {
        return Make(SinkErrorKind::kFatal, what, line, "the database URL is not valid: fix it");
    }
    return Make(SinkErrorKind::kRetry, what, line, "the database is not reachable now: connect again and retry");
}

SinkError OfSqlState(std::string_view what, const std::string& state, std::string_view text) {
    const std::string detail = FirstLine(text) + " (SQLSTATE " + state + ")";
    if (state == "57P01" || state == "57P02" || state == "57P03" || StartsWith(state, "08")) {
        return Make(SinkErrorKind::kRetry, what, detail,
                    "the server is shutting down, restarting or dropped the connection: connect again and retry");
    }
    if (StartsWith(state, "53")) {
        return Make(SinkErrorKind::kRetry, what, detail,
                    "the server is short of disk, memory or connections: retry; tell the database's operator if "
                    "it lasts");
    }
    if (state == "40000" || state == "40001" || state == "40P01") {
        return Make(SinkErrorKind::kRetry, what, detail, "the transaction was rolled back: retry");
    }
    if (state == "40003") {
        return Make(SinkErrorKind::kInDoubt, what, detail,
                    "whether the transaction committed is unknown: connect again and store the batch again");
    }
    if (state == "42P01" || state == "42703" || state == "42883") {
        return Make(SinkErrorKind::kFatal, what, detail, kRunMigrate);
    }
    if (state == "3D000") return Make(SinkErrorKind::kFatal, what, detail, kNoDatabase);
    if (StartsWith(state, "28")) return Make(SinkErrorKind::kFatal, what, detail, kLoginRefused);
    if (state == "42501") return Make(SinkErrorKind::kFatal, what, detail, kNoPrivilege);
    if (StartsWith(state, "23") || StartsWith(state, "22")) {
        const std::string constraint = ConstraintOf(text);
        const std::string by = constraint.empty() ? std::string("the database refused a value")
                                                  : "the database refused the data by its constraint " + constraint;
        return Make(SinkErrorKind::kFatal, what, detail,
                    by + ": nothing of this transaction was stored; tally does not write such rows, so this is a "
                         "bug in tally or a row written by hand: report it with this message");
    }
    return Make(SinkErrorKind::kFatal, what, detail, "");
}

}  // namespace

bool IsStatementCancelled(const std::exception& e) {
    const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
    return sql != nullptr && sql->sqlstate() == "57014";
}

SinkError Classify(const std::exception& e, std::string_view what) {
    if (const auto* sink = dynamic_cast<const SinkError*>(&e)) return *sink;
    const std::string_view text = e.what();
    // libpqxx 6.4 throws these without their SQLSTATE: the type is the code.
    if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr ||
        dynamic_cast<const pqxx::statement_completion_unknown*>(&e) != nullptr) {
        return Make(SinkErrorKind::kInDoubt, what, FirstLine(text),
                    "whether the transaction committed is unknown: connect again and store the batch again (a "
                    "stored batch is recognised by its offsets)");
    }
    if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) return OfConnection(what, text);  // 08, 53300
    if (dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr) return OfSqlState(what, "40001", text);
    if (dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr) return OfSqlState(what, "40P01", text);
    if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) return OfSqlState(what, "40000", text);
    if (dynamic_cast<const pqxx::insufficient_privilege*>(&e) != nullptr) {
        return Make(SinkErrorKind::kFatal, what, FirstLine(text) + " (SQLSTATE 42501)", kNoPrivilege);
    }
    if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
        if (!sql->sqlstate().empty()) return OfSqlState(what, sql->sqlstate(), text);
    }
    return Make(SinkErrorKind::kFatal, what, FirstLine(text), "");
}

std::unique_ptr<pqxx::connection> Connect(const std::string& database_url) {
    constexpr std::string_view kWhat = "connecting to the ledger";
    std::unique_ptr<pqxx::connection> conn;
    std::map<int, std::string> applied;  // version -> name
    try {
        conn = std::make_unique<pqxx::connection>(database_url);
        pqxx::nontransaction tx(*conn);
        for (const auto& row : tx.exec("SELECT version, name FROM schema_migrations ORDER BY version")) {
            applied[row[0].as<int>()] = row[1].as<std::string>();
        }
    } catch (const std::exception& e) {
        throw Classify(e, kWhat);
    }
    TALLY_ASSERT(conn != nullptr);
    // The applied migrations must be exactly this binary's: an older schema
    // lacks what this code writes, a newer one may refuse it or mean
    // something else by it.
    std::string newer, older;
    for (const auto& [version, name] : applied) {
        bool known = false;
        for (const Migration& m : Migrations()) known = known || (m.version == version && m.name == name);
        if (!known) newer += (newer.empty() ? "" : ", ") + name;
    }
    for (const Migration& m : Migrations()) {
        if (applied.count(m.version) == 0) older += (older.empty() ? "" : ", ") + std::string(m.name);
    }
    if (!newer.empty()) {
        throw SinkError(SinkErrorKind::kFatal, std::string(kWhat) + ": the database has migration " + newer +
                                                   ", which this tally does not know: the database is newer than "
                                                   "this tally; run the tally that migrated it");
    }
    if (!older.empty()) {
        throw SinkError(SinkErrorKind::kFatal, std::string(kWhat) + ": the database lacks migration " + older +
                                                   " of this tally: its schema is older; run tally migrate");
    }
    TALLY_ASSERT(applied.size() == Migrations().size());
    return conn;
}

}  // namespace tally::ledger
