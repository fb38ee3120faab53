// Quotes (`tally quote`, `POST /v1/quotes`): one customer's period, or every
// customer's, as billed today next to the archived calls re-rated under a
// candidate plan that is not published. Reads the ledger (the published
// catalog, the rollups, the archive); compares with billing/quote.h. The
// app prints it as a table or JSON, the API answers the same JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "billing/quote.h"
#include "pricing/diagnostic.h"
#include "pricing/invoice.h"

namespace tally::quoting {

// A message of the period the candidate could not price (never dropped).
struct QuoteRejected {
    std::string customer, topic;
    int32_t partition = 0;
    int64_t offset = 0;
    std::string code, reason;
};

struct QuoteCustomerResult {
    billing::CustomerQuote quote;
    std::vector<Invoice> current, candidate;  // the customer's invoices of the period on each side
    std::vector<QuoteRejected> rejected;
    bool archive_incomplete = false;  // refused: the archive lacks calls the rollups bill (quote.errors says)
    int64_t archived = 0;             // archived messages read (the period and a day around it)
};

struct QuoteResult {
    std::string candidate_plan;  // its name; a published plan of that name is replaced
    bool replaces_published = false;
    std::vector<QuoteCustomerResult> customers;
    billing::BookQuote book;
};

struct QuoteInput {
    std::string database_url;
    std::string customer;        // one customer, or:
    bool all_customers = false;  // every customer billed or archived in the period
    std::string period;          // YYYY-MM
    std::string plan_text;       // the candidate plan's YAML
    std::string plan_file;       // the name its problems carry ("candidate.yaml")
    // A customer that is not in the ledger is kUnknownCustomer (the API's
    // 404); without it, it is quoted like any other (no usage).
    bool known_customer_only = false;
    // Optional: told the number of customers (all_customers only), then
    // once per customer quoted; and warnings that do not stop the quote.
    std::function<void(int64_t customers)> on_customers;
    std::function<void()> on_quoted;
    std::function<void(const std::string& message)> warn;
};

enum class QuoteFailure : uint8_t {
    kNone,
    kBadInput,         // the period or customer choice (message says)
    kNoPlans,          // nothing published: nothing is billed to compare with
    kUnknownCustomer,  // with known_customer_only
    kInvalidPlan,      // the candidate does not validate: problems, with file:line:column
    kCurrency,         // the candidate bills in another currency than the customers' plans
    kFailed,           // the database or anything else (message is what())
};

struct QuoteStatus {
    QuoteFailure failure = QuoteFailure::kNone;
    std::string message;  // a sentence, without a "tally quote: " prefix
    Diagnostics problems;  // kInvalidPlan
    bool ok() const { return failure == QuoteFailure::kNone; }
};

// Computes a quote into *result. Refusals of single customers (an
// incomplete archive) are in their quote's errors, not a failure.
QuoteStatus ComputeQuote(const QuoteInput& input, QuoteResult* result);

// The JSON of `tally quote --format json` (and of POST /v1/quotes), with
// its final newline.
std::string QuoteJson(const QuoteResult& result, const std::string& period);

}  // namespace tally::quoting
