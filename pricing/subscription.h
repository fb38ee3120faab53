// A customer's subscription: which plan it is on and its contract terms
// (discounts, coupons, minimum commitment, money grants, extra free quotas).
// Its amounts are in its plan's currency (a plan keeps one currency).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pricing/diagnostic.h"
#include "pricing/plan.h"

namespace tally {

struct PercentDiscount {
    std::string name;
    Percent percent;                  // Percent(10) is 10 %
    std::vector<std::string> models;  // empty: every model
};

struct Coupon {
    std::string code;
    std::optional<Percent> percent;   // exactly one of percent, amount
    std::optional<Amount> amount;     // in the plan's currency, as every Amount here
    std::optional<Amount> cap;        // the most a percent coupon takes off one invoice
    std::vector<std::string> models;  // percent coupons only; empty: every model
    std::optional<Instant> expires;   // applies to periods that start before this
};

// Prepaid money that pays invoices until it is used up or expires.
struct Grant {
    std::string name;
    Amount amount;
    std::optional<Instant> expires;  // pays invoices of periods that start before this
};

// A customer may have several, each from its own instant on: a call is rated
// under the one in force at the call's time (the latest `from` at or before
// it). A customer's calls before its first subscription have no price.
struct Subscription {
    std::string customer;
    std::string customer_name;
    std::optional<Instant> from;  // absent: since always
    std::string plan;
    std::vector<PercentDiscount> discounts;
    std::vector<Coupon> coupons;
    std::optional<Amount> minimum_commitment;  // overrides the plan's
    std::vector<Grant> grants;
    std::vector<FreeQuota> free_quotas;  // in addition to the plan's
    // Overrides the plan version's finalize_grace (`finalize_grace: 36h`).
    std::optional<std::chrono::seconds> finalize_grace;
    // 1..28: billing periods run from 00:00 local of this day of month M to
    // the same of month M+1, in the plan version's zone, with M's MonthId
    // and label. Absent: calendar months. The subscription in force at a
    // call's time decides its period.
    std::optional<int> billing_anchor_day;
};

inline constexpr int kMaxBillingAnchorDay = 28;

// Parses a subscriptions file. Plans named must be in `catalog`; two
// subscriptions of one customer need different `from` instants.
std::optional<std::vector<Subscription>> ParseSubscriptions(std::string_view text, std::string_view file_name,
                                                            Catalog* catalog, Diagnostics* diagnostics,
                                                            TextOrigin origin = TextOrigin::kWritten);

}  // namespace tally
