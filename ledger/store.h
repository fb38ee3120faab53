// The ledger's catalog side: published plan versions, customers and
// subscriptions in PostgreSQL, and loading them back as pricing values
// (ingest::CatalogSource, for the consumer), and the stored usage as
// pricing's RollupRecord.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/sink.h"
#include "ledger/migrations.h"
#include "pricing/diagnostic.h"
#include "pricing/plan.h"
#include "pricing/rollup_records.h"
#include "pricing/subscription.h"

namespace tally::ledger {

struct PublishResult {
    std::string plan;
    std::vector<std::string> published;  // versions stored by this call
    std::vector<std::string> unchanged;  // versions already stored with the same body
};

// The CLI commands' methods (PublishPlan, AddCustomer, Subscribe,
// ImportSubscriptions, LoadRollups) throw LedgerError for what the operator
// asked wrongly, and libpqxx's exceptions (std::exception) for the database;
// Load, the consumer's, throws ingest::SinkError only (ledger/errors.h).
class Store final : public ingest::CatalogSource {
   public:
    // Connects and checks the schema's version; throws ingest::SinkError
    // (kRetry: not reachable now; kFatal: no database, login refused, schema
    // missing, older or newer than this binary).
    explicit Store(const std::string& database_url);
    ~Store() override;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Validates a plan file and stores each of its versions. A version
    // already stored with the same body is left alone; one stored with a
    // different body is refused (LedgerError): versions are immutable.
    // Returns nullopt with diagnostics when the plan is invalid. With
    // `dry_run`, everything is checked the same way (and refused the same
    // way) but nothing is stored: `published` lists what would be.
    std::optional<PublishResult> PublishPlan(std::string_view yaml, std::string_view file_name,
                                             Diagnostics* diagnostics, bool dry_run = false);

    // Adds a customer, or renames an existing one.
    void AddCustomer(const std::string& customer_id, const std::string& name);

    // Puts a customer on a published plan from `valid_from` on, with contract
    // terms written as the body of a subscription (docs/plan-format.md):
    // discounts, coupons, minimum_commitment, grants, free_quotas.
    // Subscriptions are append-only: the same subscription again changes
    // nothing; another plan or terms from an instant that already has one
    // is refused (subscribe again from a later instant).
    // Throws LedgerError for an unknown customer or plan, or invalid terms.
    void Subscribe(const std::string& customer_id, const std::string& plan, const std::string& valid_from_rfc3339,
                   const std::string& terms_yaml);

    // Adds every customer of a subscriptions file (docs/plan-format.md) with
    // its name, plan and contract terms, valid from `valid_from`. All or
    // nothing: the file is validated against the published plans first.
    // A subscription already stored from the same instant must be the same
    // (append-only, as Subscribe). Returns the number of customers; nullopt
    // with diagnostics if invalid.
    std::optional<size_t> ImportSubscriptions(std::string_view yaml, std::string_view file_name,
                                              const std::string& valid_from, Diagnostics* diagnostics);

    // Loads every published plan, every subscription of every customer and
    // the set of customers. Throws ingest::SinkError only.
    ingest::CatalogSnapshot Load() override;

    // Stored usage (rollups and deltas, from the view usage_rollups):
    // per cell and hour a calls record (unit "") and a record per unit,
    // optionally of one customer ("" for all) and one billing period (month
    // id; -1 for all), ordered by customer, period and hour.
    std::vector<RollupRecord> LoadRollups(const std::string& customer, int32_t period);

   private:
    ingest::CatalogSnapshot LoadOnce();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ledger
