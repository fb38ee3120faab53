// The ledger's catalog side: published plan versions, customers and
// subscriptions in PostgreSQL, and loading them back as pricing values.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "ledger/migrations.h"
#include "pricing/diagnostic.h"
#include "pricing/plan.h"
#include "pricing/subscription.h"

namespace tally::ledger {

struct PublishResult {
    std::string plan;
    std::vector<std::string> published;  // versions stored by this call
    std::vector<std::string> unchanged;  // versions already stored with the same body
};

// Everything rating needs from the database.
struct StoredCatalog {
    Catalog catalog;
    std::vector<Subscription> subscriptions;  // the latest of each customer
    std::unordered_set<std::string> customers;
};

class Store {
   public:
    explicit Store(const std::string& database_url);  // connects; throws on failure
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Validates a plan file and stores each of its versions. A version
    // already stored with the same body is left alone; one stored with a
    // different body is refused (LedgerError): versions are immutable.
    // Returns nullopt with diagnostics when the plan is invalid.
    std::optional<PublishResult> PublishPlan(std::string_view yaml, std::string_view file_name,
                                             Diagnostics* diagnostics);

    // Adds a customer, or renames an existing one.
    void AddCustomer(const std::string& customer_id, const std::string& name);

    // Puts a customer on a published plan from `valid_from` on, with contract
    // terms written as the body of a subscription (docs/plan-format.md):
    // discounts, coupons, minimum_commitment, grants, free_quotas.
    // Throws LedgerError for an unknown customer or plan, or invalid terms.
    void Subscribe(const std::string& customer_id, const std::string& plan, const std::string& valid_from_rfc3339,
                   const std::string& terms_yaml);

    // Adds every customer of a subscriptions file (docs/plan-format.md) with
    // its name, plan and contract terms, valid from `valid_from`. All or
    // nothing: the file is validated against the published plans first.
    // Returns the number of customers; nullopt with diagnostics if invalid.
    std::optional<size_t> ImportSubscriptions(std::string_view yaml, std::string_view file_name,
                                              const std::string& valid_from, Diagnostics* diagnostics);

    // Loads every published plan, each customer's latest subscription and
    // the set of customers.
    StoredCatalog Load();

    // Stored rollup rows (one per unit), optionally of one customer and one
    // billing period (month id; -1 for all).
    struct RollupRecord {
        std::string customer;
        int32_t period = 0, hour = 0;
        std::string plan, version, model;
        int16_t band = 0, condition = -1, time_window = -1, flags = 0;
        std::string unit;
        int64_t quantity = 0, calls = 0;
    };
    std::vector<RollupRecord> LoadRollups(const std::string& customer, int32_t period);

   private:
    StoredCatalog LoadOnce();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ledger
