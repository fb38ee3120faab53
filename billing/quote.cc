#include "billing/quote.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "base/assert.h"
#include "base/int128.h"

namespace tally::billing {

QuoteLineKey KeyOf(const InvoiceLine& line) {
    QuoteLineKey key;
    key.kind = line.kind;
    key.model = line.model;
    key.unit = line.unit;
    key.description = line.description;
    if (line.kind == LineKind::kUsage || line.kind == LineKind::kUnpriced) {
        key.band = line.band;
        key.output_condition = line.output_condition;
        key.window = line.window;
        key.batch = line.batch;
        key.thinking = line.thinking;
        key.tier = line.tier;
    }
    return key;
}

std::optional<Percent> PercentChange(const Amount& from, const Amount& to) {
    TALLY_ASSERT(from.currency() == to.currency());
    const int128 a = from.value().raw();
    const int128 b = to.value().raw();
    if (a == 0) return std::nullopt;
    int128 diff = 0;
    if (__builtin_sub_overflow(b, a, &diff)) return std::nullopt;
    const bool negative = (diff < 0) != (a < 0) && diff != 0;
    const uint128 n = diff < 0 ? static_cast<uint128>(0) - static_cast<uint128>(diff) : static_cast<uint128>(diff);
    const uint128 d = a < 0 ? static_cast<uint128>(0) - static_cast<uint128>(a) : static_cast<uint128>(a);
    if (d > std::numeric_limits<uint128>::max() / 10) return std::nullopt;
    // n / d * 100 with 2 places is n * 10^4 / d, in hundredths of a percent:
    // long division, 4 digits after the integer quotient, then half-even.
    uint128 q = n / d;
    uint128 r = n % d;
    constexpr uint128 kHundredthsMax = static_cast<uint128>(std::numeric_limits<int128>::max()) / Decimal::kOne;
    for (int digit = 0; digit < 4; ++digit) {
        if (q > kHundredthsMax / 10) return std::nullopt;
        r *= 10;
        q = q * 10 + r / d;
        r %= d;
    }
    const uint128 twice = r * 2;  // r < d <= max / 10: no overflow
    if (twice > d || (twice == d && q % 2 == 1)) ++q;
    if (q > kHundredthsMax) return std::nullopt;
    // q hundredths of a percent = q * 10^16 at Decimal's 10^-18.
    const int128 raw = static_cast<int128>(q) * (Decimal::kOne / 100);
    return Percent(Decimal::FromRaw(negative ? -raw : raw));
}

Comparison Compare(const Amount& current, const Amount& candidate) {
    TALLY_ASSERT(current.currency() == candidate.currency());
    Comparison c;
    c.current = current;
    c.candidate = candidate;
    c.difference = candidate - current;
    c.change = PercentChange(current, candidate);
    return c;
}

namespace {

struct Side {
    bool present = false;
    int64_t quantity = 0;
    Amount amount;
};

// Adds without wrapping; a line's quantities are each at most 2^63-1.
int64_t AddQuantity(int64_t a, int64_t b) {
    int64_t sum = 0;
    return __builtin_add_overflow(a, b, &sum) ? (b < 0 ? std::numeric_limits<int64_t>::min() : kQuantitySaturated)
                                              : sum;
}

std::vector<std::string> PlansOf(const std::vector<Invoice>& invoices) {
    std::set<std::string> plans;
    for (const Invoice& inv : invoices) plans.insert(inv.plan);
    return {plans.begin(), plans.end()};
}

// The currency of a side's invoices, with a reason when they cannot be
// added up (not priced, or in two currencies).
std::optional<Currency> SideCurrency(const char* side, const std::vector<Invoice>& invoices,
                                     std::vector<std::string>* errors) {
    std::optional<Currency> currency;
    bool ok = true;
    for (const Invoice& inv : invoices) {
        if (!inv.error.empty()) {
            errors->push_back(std::string(side) + " invoice of plan " + inv.plan + " not priced: " + inv.error);
            ok = false;
            continue;
        }
        if (currency && !(*currency == inv.currency)) {
            errors->push_back(std::string(side) + " invoices are in two currencies (" + std::string(currency->code()) +
                              ", " + std::string(inv.currency.code()) + ")");
            ok = false;
        }
        if (!currency) currency = inv.currency;
    }
    if (!ok) return std::nullopt;
    return currency;
}

}  // namespace

CustomerQuote CompareInvoices(const std::string& customer, const std::string& period,
                              const std::vector<Invoice>& current, const std::vector<Invoice>& candidate) {
    CustomerQuote q;
    q.customer = customer;
    q.period = period;
    for (const std::vector<Invoice>* side : {&current, &candidate}) {
        for (const Invoice& inv : *side) {
            TALLY_ASSERT(inv.customer == customer);
            TALLY_ASSERT(inv.period == period);
            if (q.customer_name.empty()) q.customer_name = inv.customer_name;
        }
    }
    q.plans_current = PlansOf(current);
    q.plans_candidate = PlansOf(candidate);
    for (const Invoice& inv : current) q.calls_current = AddQuantity(q.calls_current, inv.calls);
    for (const Invoice& inv : candidate) q.calls_candidate = AddQuantity(q.calls_candidate, inv.calls);

    const std::optional<Currency> cur = SideCurrency("current", current, &q.errors);
    const std::optional<Currency> cand = SideCurrency("candidate", candidate, &q.errors);
    if (!q.errors.empty()) return q;
    if (!cur && !cand) {
        q.errors.push_back("no invoice on either side (no usage in " + period + ")");
        q.no_usage = true;
        return q;
    }
    if (cur && cand && !(*cur == *cand)) {
        q.errors.push_back("the current invoices are in " + std::string(cur->code()) + ", the candidate's in " +
                           std::string(cand->code()) + ": amounts of two currencies are not compared");
        return q;
    }
    q.currency = cur ? *cur : *cand;
    const Amount zero = Amount::Zero(q.currency);

    std::map<QuoteLineKey, std::pair<Side, Side>> lines;
    Amount sums[2][4] = {{zero, zero, zero, zero}, {zero, zero, zero, zero}};
    for (int s = 0; s < 2; ++s) {
        for (const Invoice& inv : s == 0 ? current : candidate) {
            for (const InvoiceLine& line : inv.lines) {
                auto& pair = lines[KeyOf(line)];
                Side& side = s == 0 ? pair.first : pair.second;
                if (!side.present) side.amount = zero;
                side.present = true;
                side.quantity = AddQuantity(side.quantity, line.quantity);
                side.amount += line.amount_rounded;
            }
            sums[s][0] += inv.subtotal;
            sums[s][1] += inv.tax;
            sums[s][2] += inv.total;
            sums[s][3] += inv.amount_due;
        }
    }
    for (auto& [key, sides] : lines) {
        QuoteLine line;
        line.key = key;
        line.in_current = sides.first.present;
        line.in_candidate = sides.second.present;
        line.quantity_current = sides.first.quantity;
        line.quantity_candidate = sides.second.quantity;
        line.amount =
            Compare(line.in_current ? sides.first.amount : zero, line.in_candidate ? sides.second.amount : zero);
        q.lines.push_back(std::move(line));
    }
    q.subtotal = Compare(sums[0][0], sums[1][0]);
    q.tax = Compare(sums[0][1], sums[1][1]);
    q.total = Compare(sums[0][2], sums[1][2]);
    q.amount_due = Compare(sums[0][3], sums[1][3]);
    return q;
}

BookQuote SumBook(std::vector<CustomerQuote> customers) {
    BookQuote book;
    std::map<std::string, BookTotal> totals;
    for (const CustomerQuote& q : customers) {
        if (!q.errors.empty()) {
            if (!q.no_usage) ++book.customers_not_compared;
            continue;
        }
        auto [it, fresh] = totals.try_emplace(std::string(q.currency.code()));
        BookTotal& t = it->second;
        if (fresh) {
            const Amount zero = Amount::Zero(q.currency);
            t.currency = q.currency;
            t.subtotal = t.tax = t.total = t.amount_due = Comparison{zero, zero, zero, std::nullopt};
        }
        ++t.customers;
        for (auto [sum, add] : {std::pair{&t.subtotal, &q.subtotal}, std::pair{&t.tax, &q.tax},
                                std::pair{&t.total, &q.total}, std::pair{&t.amount_due, &q.amount_due}}) {
            *sum = Compare(sum->current + add->current, sum->candidate + add->candidate);
        }
    }
    for (auto& [code, total] : totals) book.totals.push_back(total);
    book.customers = std::move(customers);
    return book;
}

std::optional<std::string> ArchiveGap(const std::string& customer, const std::string& period, int64_t calls_in_rollups,
                                      int64_t calls_in_archive) {
    TALLY_ASSERT(calls_in_rollups >= 0);
    TALLY_ASSERT(calls_in_archive >= 0);
    if (calls_in_rollups == calls_in_archive) return std::nullopt;
    std::string why = "customer " + customer + ", " + period + ": the ledger bills " +
                      std::to_string(calls_in_rollups) + " calls but the archive holds " +
                      std::to_string(calls_in_archive) + "; ";
    if (calls_in_archive < calls_in_rollups) {
        why +=
            "the archive is incomplete (consumed with --no-archive, or days dropped by archive retention), so a "
            "re-rating would leave calls out: no quote is made";
    } else {
        why +=
            "the archive holds calls the rollups do not count (usage stored by another path?), so the two sides "
            "would not describe the same calls: no quote is made";
    }
    return why;
}

namespace {

// The subscription of `subs` that priced an invoice of `plan` for a period
// ending at `end`, as PriceRollups picks it: the latest of that plan in
// force before the end, else the first of that plan.
size_t SubscriptionOf(const std::vector<Subscription>& subs, const std::vector<size_t>& mine, const std::string& plan,
                      Instant end) {
    size_t best = subs.size();
    size_t first = subs.size();
    for (size_t i : mine) {
        const Subscription& s = subs[i];
        if (s.plan != plan) continue;
        const Instant from = s.from.value_or(Instant::min());
        if (first == subs.size() || from < subs[first].from.value_or(Instant::min())) first = i;
        if (from < end && (best == subs.size() || from > subs[best].from.value_or(Instant::min()))) best = i;
    }
    return best != subs.size() ? best : first;
}

void SpendBalances(const Invoice& inv, Subscription* sub) {
    for (const GrantUse& use : inv.grants) {
        for (Grant& g : sub->grants) {
            if (g.name == use.name && g.amount.currency() == use.amount.currency()) {
                g.amount = Amount::Max(g.amount - use.amount, Amount::Zero(g.amount.currency()));
                break;
            }
        }
    }
    for (const InvoiceLine& line : inv.lines) {
        if (line.kind != LineKind::kCoupon) continue;
        for (Coupon& c : sub->coupons) {
            if (!c.amount || !(c.amount->currency() == line.amount.currency())) continue;
            // PriceRollups names an amount coupon "coupon CODE (AMOUNT CUR)"
            // with the coupon's full amount, and its line is minus what it took.
            const std::string name =
                "coupon " + c.code + " (" + c.amount->ToString() + " " + std::string(inv.currency.code()) + ")";
            if (line.description != name) continue;
            c.amount = Amount::Max(*c.amount + line.amount, Amount::Zero(c.amount->currency()));
            break;
        }
    }
}

}  // namespace

std::vector<Subscription> MoveOntoCandidate(const std::vector<Subscription>& subscriptions,
                                            const std::vector<std::string>& customers,
                                            const std::string& candidate_plan, const std::vector<Invoice>& earlier) {
    const std::set<std::string> moved(customers.begin(), customers.end());
    std::map<std::string, std::vector<size_t>> by_customer;
    for (size_t i = 0; i < subscriptions.size(); ++i) by_customer[subscriptions[i].customer].push_back(i);
    // Balances first, against the subscriptions as they were (the plan
    // names pick the subscription), then the move.
    std::vector<Subscription> out = subscriptions;
    std::vector<Subscription> spent = subscriptions;
    for (const Invoice& inv : earlier) {
        if (moved.count(inv.customer) == 0 || !inv.error.empty()) continue;
        auto it = by_customer.find(inv.customer);
        if (it == by_customer.end()) continue;
        const size_t i = SubscriptionOf(subscriptions, it->second, inv.plan, inv.period_end);
        if (i == subscriptions.size()) continue;
        SpendBalances(inv, &spent[i]);
    }
    for (size_t i = 0; i < out.size(); ++i) {
        if (moved.count(out[i].customer) == 0) continue;
        out[i] = std::move(spent[i]);
        out[i].plan = candidate_plan;
    }
    return out;
}

}  // namespace tally::billing
