// Against a real PostgreSQL started by the pg fixture (tests/CMakeLists.txt).
#include "ledger/migrations.h"

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <fstream>
#include <random>

namespace tally::ledger {
namespace {

std::string ServerUrl() {
    const char* state = std::getenv("TALLY_TEST_PG_STATE");
    std::ifstream in(state != nullptr ? state : "");
    std::string dir, url;
    in >> dir >> url;
    return url;
}

// A database of its own for each test, dropped afterwards.
class LedgerDb : public ::testing::Test {
   protected:
    void SetUp() override {
        server_ = ServerUrl();
        ASSERT_FALSE(server_.empty()) << "no test PostgreSQL (TALLY_TEST_PG_STATE)";
        name_ = "t_" + std::to_string(std::random_device{}());
        pqxx::connection admin(server_);
        pqxx::nontransaction(admin).exec0("CREATE DATABASE " + name_);
        url_ = server_.substr(0, server_.rfind('/') + 1) + name_;
    }
    void TearDown() override {
        if (name_.empty()) return;
        pqxx::connection admin(server_);
        pqxx::nontransaction(admin).exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    }
    std::string server_, name_, url_;
};

TEST_F(LedgerDb, MigrateAppliesEverythingOnceAndThenNothing) {
    MigrateResult first = Migrate(url_);
    EXPECT_EQ(first.applied.size(), Migrations().size());
    EXPECT_TRUE(first.present.empty());
    MigrateResult second = Migrate(url_);
    EXPECT_TRUE(second.applied.empty());
    EXPECT_EQ(second.present.size(), Migrations().size());
    pqxx::connection c(url_);
    pqxx::work tx(c);
    for (const char* table : {"customers", "plan_versions", "subscriptions", "event_keys", "events", "rollups",
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
