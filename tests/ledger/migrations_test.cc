// Against a real PostgreSQL started by the pg fixture (tests/CMakeLists.txt).
#include "ledger/migrations.h"

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "tests/ledger/ledger_db.h"

namespace tally::ledger {
namespace {

TEST_F(LedgerDb, MigrateAppliesEverythingOnceAndThenNothing) {
    MigrateResult first = Migrate(url_);
    EXPECT_EQ(first.applied.size(), Migrations().size());
    EXPECT_TRUE(first.present.empty());
    MigrateResult second = Migrate(url_);
    EXPECT_TRUE(second.applied.empty());
    EXPECT_EQ(second.present.size(), Migrations().size());
    pqxx::connection c(url_);
    pqxx::work tx(c);
    for (const char* table : {"customers", "plan_versions", "subscriptions", "event_keys", "event_archive", "rollups",
                              "consumer_offsets", "dead_letters", "offset_gaps"}) {
        EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM pg_tables WHERE tablename = $1", table)[0].as<int>(), 1)
            << table;
    }
}

TEST_F(LedgerDb, PublishedPlanVersionsAreImmutableInTheDatabase) {
    Migrate(url_);
    pqxx::connection c(url_);
    {
        pqxx::work tx(c);
        tx.exec0(
            "INSERT INTO plan_versions (plan, version, effective_from, currency, body, body_sha256) "
            "VALUES ('p', 'v1', '2025-01-01Z', 'CNY', 'plan: p', 'x')");
        tx.commit();
    }
    for (const char* change : {"UPDATE plan_versions SET body = 'plan: q'", "DELETE FROM plan_versions"}) {
        pqxx::work tx(c);
        try {
            tx.exec0(change);
            ADD_FAILURE() << change << " was allowed";
        } catch (const pqxx::sql_error& e) {
            EXPECT_NE(std::string(e.what()).find("immutable"), std::string::npos) << e.what();
        }
    }
}

TEST_F(LedgerDb, AChangedMigrationIsRefused) {
    Migrate(url_);
    {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        tx.exec0("UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 1");
        tx.commit();
    }
    try {
        Migrate(url_);
        ADD_FAILURE() << "an edited migration was accepted";
    } catch (const LedgerError& e) {
        EXPECT_NE(std::string(e.what()).find("was changed after it was applied"), std::string::npos) << e.what();
    }
}

TEST_F(LedgerDb, ADatabaseNewerThanTheBinaryIsRefused) {
    Migrate(url_);
    {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        tx.exec0("INSERT INTO schema_migrations (version, name, sha256) VALUES (9999, '9999_future', 'x')");
        tx.commit();
    }
    EXPECT_THROW(Migrate(url_), LedgerError);
}

TEST(Migrations, AreNumberedFromOneWithoutGaps) {
    const auto& all = Migrations();
    ASSERT_FALSE(all.empty());
    for (size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(all[i].version, static_cast<int>(i + 1)) << all[i].name;
        EXPECT_FALSE(all[i].sql.empty());
    }
}

}  // namespace
}  // namespace tally::ledger
