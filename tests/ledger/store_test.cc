// Customer ids and plan names at the ledger's edge, against a real
// PostgreSQL: libpq ends a text parameter at a NUL, so an id with one must
// be refused before any statement runs, never cut short.
#include "ledger/store.h"

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "tests/ledger/ledger_db.h"

namespace tally::ledger {
namespace {

const char* const kPlan = R"(plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      m: {bands: [{up_to: 1000, rates: {input: "1", output: "2"}}]}
)";

class StoreIds : public LedgerDb {
   protected:
    void SetUp() override {
        LedgerDb::SetUp();
        if (HasFatalFailure()) return;
        Migrate(url_);
        store_ = std::make_unique<Store>(url_);
        Diagnostics d;
        ASSERT_TRUE(store_->PublishPlan(kPlan, "p.yaml", &d).has_value()) << (d.empty() ? "" : d[0].ToString());
        store_->AddCustomer("a", "Alice");
        store_->Subscribe("a", "p", "2025-01-01T00:00:00Z", "");
    }
    void TearDown() override {
        store_.reset();
        LedgerDb::TearDown();
    }
    // Every customer and subscription, one a line.
    std::string Contents() {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        std::string out;
        for (const auto& row : tx.exec("SELECT customer_id, name FROM customers ORDER BY customer_id")) {
            out += "customer " + row[0].as<std::string>() + " " + row[1].as<std::string>() + "\n";
        }
        for (const auto& row : tx.exec("SELECT customer_id, plan, valid_from AT TIME ZONE 'UTC' FROM subscriptions "
                                       "ORDER BY customer_id, valid_from")) {
            out += "subscription " + row[0].as<std::string>() + " " + row[1].as<std::string>() + " " +
                   row[2].as<std::string>() + "\n";
        }
        return out;
    }
    std::unique_ptr<Store> store_;
};

const char* const kBefore = "customer a Alice\nsubscription a p 2025-01-01 00:00:00\n";

TEST_F(StoreIds, ImportOfACustomerIdWithANulIsRefusedAndCustomerAIsUnchanged) {
    ASSERT_EQ(Contents(), kBefore);
    Diagnostics d;
    auto n = store_->ImportSubscriptions(R"(subscriptions:
  - customer: "a\u0000evil"
    name: Mallory
    plan: p
)",
                                         "evil.yaml", "2025-06-01T00:00:00Z", &d);
    EXPECT_FALSE(n.has_value());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].ToString(),
              "evil.yaml:2:15: error: customer id 'a\\u0000evil' holds a control character (U+0000 at offset 1); "
              "identifiers are printable text");
    EXPECT_EQ(Contents(), kBefore);
}

TEST_F(StoreIds, ImportOfAnEmptyCustomerIdIsRefused) {
    Diagnostics d;
    EXPECT_FALSE(store_
                     ->ImportSubscriptions("subscriptions:\n  - {customer: \"\", plan: p}\n", "empty.yaml",
                                           "2025-06-01T00:00:00Z", &d)
                     .has_value());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].ToString(), "empty.yaml:2:16: error: customer id is empty");
    EXPECT_EQ(Contents(), kBefore);
}

TEST_F(StoreIds, AddCustomerAndSubscribeRefuseBadIdsWithALedgerError) {
    auto message = [](auto&& call) {
        try {
            call();
        } catch (const LedgerError& e) {
            return std::string(e.what());
        }
        return std::string("no LedgerError");
    };
    const std::string nul("a\0evil", 6);
    EXPECT_EQ(
        message([&] { store_->AddCustomer(nul, "Mallory"); }),
        "customer id 'a\\u0000evil' holds a control character (U+0000 at offset 1); identifiers are printable text");
    EXPECT_EQ(message([&] { store_->AddCustomer("", "Nobody"); }), "customer id is empty");
    EXPECT_NE(message([&] { store_->AddCustomer(std::string(257, 'x'), "Long"); }).find("257 bytes long"),
              std::string::npos);
    EXPECT_EQ(
        message([&] { store_->Subscribe(nul, "p", "2025-06-01T00:00:00Z", ""); }),
        "customer id 'a\\u0000evil' holds a control character (U+0000 at offset 1); identifiers are printable text");
    EXPECT_EQ(message([&] { store_->Subscribe("a", std::string("p\0x", 3), "2025-06-01T00:00:00Z", ""); }),
              "plan name 'p\\u0000x' holds a control character (U+0000 at offset 1); identifiers are printable text");
    EXPECT_EQ(Contents(), kBefore);
}

}  // namespace
}  // namespace tally::ledger
