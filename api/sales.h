// The sales routes of `tally serve` (docs/api.md, "Sales routes"): plans
// validated, published, listed with their resolved price tables, and
// quotes. HandleSales parses and answers; SalesBackend is the ledger behind
// them (one per worker thread, like Backend).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/routes.h"
#include "api/service.h"
#include "ingest/sink.h"
#include "pricing/diagnostic.h"
#include "quoting/quote_run.h"

namespace tally::api {

// What a publish did: stored versions, versions already stored with the same
// body, or why it was refused.
struct PublishOutcome {
    std::string plan;
    std::vector<std::string> published;
    std::vector<std::string> unchanged;
    Diagnostics problems;  // the plan does not validate (alone or with the versions already published): 400
    std::string conflict;  // a version already published with another body: 409, this message
};

// Each method may throw (the request becomes a 500).
class SalesBackend {
   public:
    virtual ~SalesBackend() = default;
    // ledger::Store::PublishPlan of `yaml` (`file_name` names it in problems).
    virtual PublishOutcome Publish(std::string_view yaml, std::string_view file_name) = 0;
    // One audit row (ledger::KeyStore::Audit).
    virtual void Audit(const std::string& actor, std::string_view role, const std::string& action,
                       const std::string& target, const std::string& detail_json) = 0;
    // The published plans, every subscription and the customers.
    virtual ingest::CatalogSnapshot Catalog() = 0;
    // quoting::ComputeQuote on this backend's ledger (input.database_url is set here).
    virtual quoting::QuoteStatus Quote(quoting::QuoteInput input, quoting::QuoteResult* result) = 0;
};

// On the PostgreSQL ledger (api/sales_ledger.cc).
std::unique_ptr<SalesBackend> MakeLedgerSalesBackend(const std::string& database_url);

// Answers a sales route (IsSalesRoute). `who` is a key the route's roles
// allow (checked again here: 403 otherwise).
void HandleSales(const Matched& m, const Target& target, const ledger::Principal& who, const Request& request,
                 SalesBackend& backend, Response* response);

// The JSON of POST /v1/plans:validate for a plan text: ok, the plan's name
// and versions when valid, and every problem ParsePlan finds (those `tally
// plan validate` prints), with line and column. With `published` (the
// ledger's plans), a version may extend a published version, as a publish
// parses it. Pure.
std::string ValidationJson(std::string_view yaml, const Catalog* published = nullptr);

// The number of customers whose subscription in force at `now` is on each
// plan, by plan name.
std::map<std::string, int64_t> SubscribedNow(const std::vector<Subscription>& subscriptions, Instant now);

}  // namespace tally::api
