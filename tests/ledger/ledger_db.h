// A database of its own for each test, in the real PostgreSQL that the pg
// fixture started (tests/CMakeLists.txt), dropped afterwards.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <pqxx/pqxx>
#include <random>
#include <string>

namespace tally::ledger {

inline std::string ServerUrl() {
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

}  // namespace tally::ledger
