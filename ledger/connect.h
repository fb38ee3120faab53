// Connecting to the ledger, for BatchWriter and Store. Internal to ledger/
// (it names libpqxx, which stays out of ledger's public headers).
#pragma once

#include <memory>
#include <pqxx/pqxx>
#include <string>

namespace tally::ledger {

// Connects and checks that the database's applied migrations are exactly
// this binary's (schema_migrations, written by Migrate). Throws
// ingest::SinkError: kRetry when the server is not reachable now, kFatal
// for a missing database, a refused login, a bad URL, a schema that is
// missing or older ("run tally migrate") or newer than this tally.
std::unique_ptr<pqxx::connection> Connect(const std::string& database_url);

// A connection that connects again when it was lost (PostgreSQL
// restarted): the CLI stores' one connection. Connects at construction.
class Reconnecting {
   public:
    explicit Reconnecting(std::string database_url) : url_(std::move(database_url)) { Get(); }
    // Throws ingest::SinkError (as Connect) when it has to connect and cannot.
    pqxx::connection& Get() {
        if (!conn_ || !conn_->is_open()) {
            conn_.reset();
            conn_ = Connect(url_);
        }
        return *conn_;
    }
    void Reset() { conn_.reset(); }

   private:
    std::string url_;
    std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace tally::ledger
