// Every failure of the ledger reaches the consumer as a SinkError of the
// right kind (ledger/errors.h): first Classify on libpqxx's exceptions as
// 6.4 throws them, then against the real server: a database never
// migrated, of an older or newer schema, a wrong database name, an unknown
// user, a refused connection, a killed connection, a dropped table, a
// missing privilege and a constraint violation.
#include "ledger/errors.h"

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "ledger/batch_writer.h"
#include "ledger/migrations.h"
#include "ledger/store.h"
#include "tests/ledger/ledger_db.h"

namespace tally::ledger {
namespace {

using ingest::SinkError;
using ingest::SinkErrorKind;

bool Has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// ---- Classify, on exceptions made here (no server) ------------------------

TEST(LedgerClassify, InDoubtIsItsOwnKind) {
    EXPECT_EQ(Classify(pqxx::in_doubt_error("commit lost"), "storing").kind, SinkErrorKind::kInDoubt);
    EXPECT_EQ(Classify(pqxx::statement_completion_unknown("?"), "storing").kind, SinkErrorKind::kInDoubt);
}

TEST(LedgerClassify, WhatWaitingCuresIsRetried) {
    EXPECT_EQ(Classify(pqxx::broken_connection("server closed the connection unexpectedly"), "x").kind,
              SinkErrorKind::kRetry);
    EXPECT_EQ(Classify(pqxx::too_many_connections("FATAL:  sorry, too many clients already"), "x").kind,
              SinkErrorKind::kRetry);
    EXPECT_EQ(Classify(pqxx::serialization_failure("could not serialize access"), "x").kind, SinkErrorKind::kRetry);
    EXPECT_EQ(Classify(pqxx::deadlock_detected("deadlock detected"), "x").kind, SinkErrorKind::kRetry);
    for (const char* state : {"57P01", "57P02", "57P03", "08006"}) {
        EXPECT_EQ(Classify(pqxx::sql_error("FATAL:  terminating connection", "", state), "x").kind,
                  SinkErrorKind::kRetry)
            << state;
    }
    EXPECT_EQ(Classify(pqxx::disk_full("ERROR:  could not extend file", "", "53100"), "x").kind, SinkErrorKind::kRetry);
    EXPECT_EQ(Classify(pqxx::broken_connection("connection to server at \"127.0.0.1\", port 1 failed: Connection "
                                               "refused\n\tIs the server running on that host?"),
                       "x")
                  .kind,
              SinkErrorKind::kRetry);
}

TEST(LedgerClassify, EverythingElseIsFatalWithAnInstruction) {
    const SinkError schema = Classify(
        pqxx::undefined_table("ERROR:  relation \"rollups\" does not exist\nLINE 1: x", "SELECT", "42P01"), "folding");
    EXPECT_EQ(schema.kind, SinkErrorKind::kFatal);
    EXPECT_TRUE(Has(schema.what(), "folding: relation \"rollups\" does not exist (SQLSTATE 42P01)")) << schema.what();
    EXPECT_TRUE(Has(schema.what(), "run tally migrate")) << schema.what();
    EXPECT_FALSE(Has(schema.what(), "LINE 1")) << schema.what();
    EXPECT_TRUE(Has(Classify(pqxx::undefined_column("ERROR:  column", "", "42703"), "x").what(), "run tally migrate"));

    const SinkError check =
        Classify(pqxx::check_violation("ERROR:  new row for relation \"rollups\" violates check constraint "
                                       "\"rollups_band_check\"\nDETAIL:  Failing row contains (...).",
                                       "", "23514"),
                 "x");
    EXPECT_EQ(check.kind, SinkErrorKind::kFatal);
    EXPECT_TRUE(Has(check.what(), "by its constraint rollups_band_check")) << check.what();
    EXPECT_EQ(Classify(pqxx::data_exception("ERROR:  bigint out of range", "", "22003"), "x").kind,
              SinkErrorKind::kFatal);

    const SinkError privilege = Classify(pqxx::insufficient_privilege("ERROR:  permission denied for table x"), "x");
    EXPECT_EQ(privilege.kind, SinkErrorKind::kFatal);
    EXPECT_TRUE(Has(privilege.what(), "42501")) << privilege.what();
    EXPECT_EQ(Classify(pqxx::sql_error("FATAL:  password authentication failed", "", "28P01"), "x").kind,
              SinkErrorKind::kFatal);
    EXPECT_EQ(Classify(pqxx::sql_error("FATAL:  database \"x\" does not exist", "", "3D000"), "x").kind,
              SinkErrorKind::kFatal);
    EXPECT_EQ(Classify(pqxx::broken_connection("connection to server at \"h\", port 5 failed: FATAL:  password "
                                               "authentication failed for user \"tally\""),
                       "x")
                  .kind,
              SinkErrorKind::kFatal);
    EXPECT_EQ(Classify(pqxx::broken_connection("invalid connection option \"bogus\""), "x").kind,
              SinkErrorKind::kFatal);

    const SinkError ledger = Classify(LedgerError("stored plan p no longer validates"), "loading");
    EXPECT_EQ(ledger.kind, SinkErrorKind::kFatal);
    EXPECT_EQ(std::string(ledger.what()), "loading: stored plan p no longer validates");
}

TEST(LedgerClassify, AStatementCancelledIsToldApart) {
    EXPECT_TRUE(IsStatementCancelled(pqxx::sql_error("ERROR:  canceling statement due to statement timeout",
                                                     "SELECT pg_advisory_xact_lock(1)", "57014")));
    EXPECT_FALSE(IsStatementCancelled(pqxx::sql_error("ERROR:  relation \"x\" does not exist", "SELECT", "42P01")));
    EXPECT_FALSE(IsStatementCancelled(pqxx::broken_connection("server closed the connection unexpectedly")));
    EXPECT_FALSE(IsStatementCancelled(std::runtime_error("canceling statement due to statement timeout")));
}

TEST(LedgerClassify, ASinkErrorPassesThrough) {
    const SinkError fenced = Classify(SinkError(SinkErrorKind::kFenced, "fenced", {3, 5}), "x");
    EXPECT_EQ(fenced.kind, SinkErrorKind::kFenced);
    EXPECT_EQ(fenced.partitions, (std::vector<int32_t>{3, 5}));
    EXPECT_EQ(std::string(fenced.what()), "fenced");
}

// ---- Against the real server -----------------------------------------------

class LedgerErrors : public LedgerDb {
   protected:
    // The server's URL with another user or database.
    std::string WithDatabase(const std::string& name) const { return server_.substr(0, server_.rfind('/') + 1) + name; }
    std::string WithUser(const std::string& user) const {
        const size_t scheme = server_.find("://") + 3;
        const size_t at = server_.find('@', scheme);
        return server_.substr(0, scheme) + user + server_.substr(at, server_.rfind('/') - at + 1) + name_;
    }
    void Exec(const std::string& sql, const std::string& url = "") {
        pqxx::connection c(url.empty() ? url_ : url);
        pqxx::nontransaction(c).exec(sql);
    }
    // Kills every other connection to the test database, as an operator's
    // pg_terminate_backend or a restart of the server would.
    void KillConnections() {
        Exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()");
    }
};

template <typename Body>
SinkError Caught(Body body) {
    try {
        body();
    } catch (const SinkError& e) {
        return e;
    } catch (const std::exception& e) {
        ADD_FAILURE() << "not a SinkError: " << e.what();
        return SinkError(SinkErrorKind::kRetry, "wrong type");
    }
    ADD_FAILURE() << "nothing thrown";
    return SinkError(SinkErrorKind::kRetry, "nothing thrown");
}

TEST_F(LedgerErrors, ADatabaseNeverMigratedIsFatalRunMigrate) {
    for (const SinkError& e : {Caught([&] { BatchWriter w(url_, "g", "t"); }), Caught([&] { Store s(url_); })}) {
        EXPECT_EQ(e.kind, SinkErrorKind::kFatal);
        EXPECT_TRUE(Has(e.what(), "42P01")) << e.what();
        EXPECT_TRUE(Has(e.what(), "run tally migrate")) << e.what();
    }
}

TEST_F(LedgerErrors, AnOlderSchemaIsFatalRunMigrate) {
    Migrate(url_);
    Exec("DELETE FROM schema_migrations WHERE version = " + std::to_string(Migrations().back().version));
    const SinkError e = Caught([&] { BatchWriter w(url_, "g", "t"); });
    EXPECT_EQ(e.kind, SinkErrorKind::kFatal);
    EXPECT_TRUE(Has(e.what(), "lacks migration " + std::string(Migrations().back().name))) << e.what();
    EXPECT_TRUE(Has(e.what(), "run tally migrate")) << e.what();
}

TEST_F(LedgerErrors, ANewerSchemaIsFatal) {
    Migrate(url_);
    Exec("INSERT INTO schema_migrations (version, name, sha256) VALUES (9999, '9999_future', 'x')");
    for (const SinkError& e : {Caught([&] { BatchWriter w(url_, "g", "t"); }), Caught([&] { Store s(url_); })}) {
        EXPECT_EQ(e.kind, SinkErrorKind::kFatal);
        EXPECT_TRUE(Has(e.what(), "9999_future")) << e.what();
        EXPECT_TRUE(Has(e.what(), "the database is newer than this tally")) << e.what();
    }
}

TEST_F(LedgerErrors, AWrongDatabaseNameIsFatal) {
    const SinkError e = Caught([&] { BatchWriter w(WithDatabase(name_ + "_missing"), "g", "t"); });
    EXPECT_EQ(e.kind, SinkErrorKind::kFatal);
    EXPECT_TRUE(Has(e.what(), "3D000")) << e.what();
    EXPECT_TRUE(Has(e.what(), "does not exist")) << e.what();
}

TEST_F(LedgerErrors, AnUnknownUserIsFatal) {
    const SinkError e = Caught([&] { Store s(WithUser("nobody_" + name_)); });
    EXPECT_EQ(e.kind, SinkErrorKind::kFatal);
    EXPECT_TRUE(Has(e.what(), "class 28")) << e.what();
}

TEST_F(LedgerErrors, ARefusedConnectionIsRetried) {
    // Port 1 on the loopback: nothing listens there.
    const SinkError e = Caught([&] { BatchWriter w("postgresql://tally@127.0.0.1:1/tally", "g", "t"); });
    EXPECT_EQ(e.kind, SinkErrorKind::kRetry);
    EXPECT_TRUE(Has(e.what(), "connecting to the ledger")) << e.what();
}

TEST_F(LedgerErrors, AStatementTimeoutOfTheRealServerIsToldApart) {
    try {
        Exec("SET statement_timeout = 50; SELECT pg_sleep(5)");
        FAIL() << "nothing thrown";
    } catch (const std::exception& e) {
        EXPECT_TRUE(IsStatementCancelled(e)) << e.what();
    }
}

TEST_F(LedgerErrors, AKilledConnectionIsRetriedAndTheNextCallConnectsAgain) {
    Migrate(url_);
    BatchWriter writer(url_, "g", "t");
    Store store(url_);
    KillConnections();
    EXPECT_EQ(Caught([&] { writer.StoredOffsets({0}); }).kind, SinkErrorKind::kRetry);
    EXPECT_EQ(Caught([&] { store.Load(); }).kind, SinkErrorKind::kRetry);
    EXPECT_TRUE(writer.StoredOffsets({0}).empty());
    EXPECT_TRUE(store.Load().customers.empty());

    ingest::Batch batch;
    batch.offsets = {{0, -1, 5}};
    KillConnections();
    EXPECT_EQ(Caught([&] { writer.Store(batch, [](const auto&) { return std::vector<RollupRecord>{}; }); }).kind,
              SinkErrorKind::kRetry);
    writer.Reconnect();
    EXPECT_FALSE(writer.Store(batch, [](const auto&) { return std::vector<RollupRecord>{}; }).already_stored);
    EXPECT_EQ(writer.StoredOffsets({0}).at(0), 5);
}

TEST_F(LedgerErrors, ATableDroppedUnderTheWriterIsFatalRunMigrate) {
    Migrate(url_);
    BatchWriter writer(url_, "g", "t");
    Exec("DROP TABLE consumer_offsets");
    const SinkError e = Caught([&] { writer.StoredOffsets({0}); });
    EXPECT_EQ(e.kind, SinkErrorKind::kFatal);
    EXPECT_TRUE(Has(e.what(), "reading the stored offsets: relation \"consumer_offsets\" does not exist")) << e.what();
    EXPECT_TRUE(Has(e.what(), "run tally migrate")) << e.what();
}

TEST_F(LedgerErrors, AMissingPrivilegeIsFatal) {
    Migrate(url_);
    const std::string role = "r_" + name_;
    Exec("CREATE ROLE " + role + " LOGIN");
    const SinkError e = Caught([&] { BatchWriter w(WithUser(role), "g", "t"); });
    Exec("DROP ROLE " + role);
    EXPECT_EQ(e.kind, SinkErrorKind::kFatal);
    EXPECT_TRUE(Has(e.what(), "permission denied for table schema_migrations")) << e.what();
    EXPECT_TRUE(Has(e.what(), "42501")) << e.what();
}

TEST_F(LedgerErrors, DataRefusedByAConstraintIsFatalAndNamesIt) {
    Migrate(url_);
    BatchWriter writer(url_, "g", "t");
    ingest::Batch batch;
    batch.dead_letters = {{0, 0, RejectReason::kInvalid, "not JSON", "x"}};
    batch.offsets = {{0, -1, -5}};  // a negative next offset: a bug the table refuses
    const SinkError e = Caught([&] { writer.Store(batch, [](const auto&) { return std::vector<RollupRecord>{}; }); });
    EXPECT_EQ(e.kind, SinkErrorKind::kFatal);
    EXPECT_TRUE(Has(e.what(), "23514")) << e.what();
    EXPECT_TRUE(Has(e.what(), "by its constraint consumer_offsets_next_offset_check")) << e.what();
    pqxx::connection c(url_);
    EXPECT_EQ(pqxx::work(c).exec1("SELECT count(*) FROM dead_letters")[0].as<int>(), 0);  // all or nothing
    EXPECT_TRUE(writer.StoredOffsets({0}).empty());  // the connection is still good
}

}  // namespace
}  // namespace tally::ledger
