// Quotes (`tally quote`): one customer's invoices of one period as they are
// (current) next to the same customer's period re-rated under a candidate
// plan (candidate), line by line, with the difference. Pure: invoices in,
// a comparison out; reading the archive and re-rating it is the caller's.
//
// Lines of the two sides are matched by what they bill, not by the plan
// version that priced them: usage lines by (model, unit, band, output
// condition, window, batch, thinking, tier), every other line (free quota,
// discount, coupon, commitment, unpriced) by its kind, model, unit and
// description. A line on one side only is compared with nothing (zero).
// Lines of several invoices of the period (a customer on two plans) that
// match are added up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pricing/invoice.h"
#include "pricing/money.h"
#include "pricing/subscription.h"

namespace tally::billing {

struct QuoteLineKey {
    LineKind kind = LineKind::kUsage;
    std::string model;
    std::string unit;
    std::string band;
    std::string output_condition;
    std::string window;
    bool batch = false;
    bool thinking = false;
    std::string tier;
    std::string description;

    friend auto operator<=>(const QuoteLineKey&, const QuoteLineKey&) = default;
    friend bool operator==(const QuoteLineKey&, const QuoteLineKey&) = default;
};

// The key an invoice line is matched by (see the header comment).
QuoteLineKey KeyOf(const InvoiceLine& line);

// Money of one figure on both sides. `change` is (candidate - current) /
// current in percent, rounded half-even to 2 places; nullopt when current
// is zero (no percentage of nothing).
struct Comparison {
    Amount current;
    Amount candidate;
    Amount difference;  // candidate - current
    std::optional<Percent> change;
};

// A Comparison of two amounts of one currency. REQUIRES: same currency.
Comparison Compare(const Amount& current, const Amount& candidate);

// (to - from) / from * 100, rounded half-even to 2 places, exact decimal
// arithmetic; nullopt when `from` is zero or the quotient does not fit.
// REQUIRES: same currency.
std::optional<Percent> PercentChange(const Amount& from, const Amount& to);

struct QuoteLine {
    QuoteLineKey key;
    bool in_current = false;
    bool in_candidate = false;
    int64_t quantity_current = 0;
    int64_t quantity_candidate = 0;
    Comparison amount;  // rounded line amounts, as billed
};

struct CustomerQuote {
    std::string customer;
    std::string customer_name;
    std::string period;  // "2025-11"
    Currency currency;
    std::vector<std::string> plans_current;    // plans of the current invoices
    std::vector<std::string> plans_candidate;  // of the candidate invoices
    int64_t calls_current = 0;
    int64_t calls_candidate = 0;
    std::vector<QuoteLine> lines;  // in key order
    Comparison subtotal, tax, total;
    Comparison amount_due;  // total less money grants
    bool no_usage = false;  // no invoice on either side: nothing to compare (errors says so)
    // Not empty when the two sides cannot be compared (an invoice of either
    // side not priced, two currencies): the reasons. Lines and totals are
    // then empty and the customer stays out of the book's totals.
    std::vector<std::string> errors;
};

// Compares the invoices of one customer and period (each list: that
// customer's invoices of that period, any number, possibly none).
CustomerQuote CompareInvoices(const std::string& customer, const std::string& period,
                              const std::vector<Invoice>& current, const std::vector<Invoice>& candidate);

// The revenue effect across customers: totals per currency of the
// customers that could be compared.
struct BookTotal {
    Currency currency;
    int64_t customers = 0;
    Comparison subtotal, tax, total, amount_due;
};

struct BookQuote {
    std::vector<CustomerQuote> customers;  // as given
    std::vector<BookTotal> totals;         // by currency code
    int64_t customers_not_compared = 0;    // with errors, other than no usage at all
};

BookQuote SumBook(std::vector<CustomerQuote> customers);

// Whether the archive holds every call the rollups bill for the period:
// nullopt when the counts agree, else a sentence saying the quote cannot
// be made and why (the archive was off, or its retention dropped days).
std::optional<std::string> ArchiveGap(const std::string& customer, const std::string& period, int64_t calls_in_rollups,
                                      int64_t calls_in_archive);

// Subscriptions of the quoted customers put on `candidate_plan` (every one
// of theirs, contract terms kept), the others unchanged. Amount coupons and
// money grants are balances that periods before the quoted one used up:
// `earlier` (the customers' current invoices of those periods) gives what
// was used, and the candidate starts the quoted period with what was left,
// so a quote does not spend a balance a second time.
std::vector<Subscription> MoveOntoCandidate(const std::vector<Subscription>& subscriptions,
                                            const std::vector<std::string>& customers,
                                            const std::string& candidate_plan, const std::vector<Invoice>& earlier);

}  // namespace tally::billing
