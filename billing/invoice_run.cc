#include "billing/invoice_run.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "base/assert.h"

namespace tally::billing {

namespace {

using Key = std::tuple<std::string, std::string, int32_t>;  // customer, plan, period id

// The subscription that puts `customer` on `plan` latest (for an invoice
// that has only adjustments: its terms give the tax and the grace).
const Subscription* LatestSubscription(const std::vector<Subscription>& subs, const std::string& customer,
                                       const std::string& plan) {
    const Subscription* best = nullptr;
    for (const Subscription& s : subs) {
        if (s.customer != customer || s.plan != plan) continue;
        if (best == nullptr || s.from.value_or(Instant::min()) > best->from.value_or(Instant::min())) best = &s;
    }
    return best;
}

}  // namespace

std::optional<int32_t> PeriodIdOf(std::string_view label) {
    if (label.size() != 7 || label[4] != '-') return std::nullopt;
    int y = 0, m = 0;
    for (size_t i = 0; i < 7; ++i) {
        if (i == 4) continue;
        if (label[i] < '0' || label[i] > '9') return std::nullopt;
        int digit = label[i] - '0';
        if (i < 4) {
            y = y * 10 + digit;
        } else {
            m = m * 10 + digit;
        }
    }
    if (y < 1970 || m < 1 || m > 12) return std::nullopt;
    return MonthId(y, m);
}

std::string PeriodLabel(int32_t period_id) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02d", MonthIdYear(period_id), MonthIdMonth(period_id));
    return buf;
}

RunDecision DecideRun(const Catalog& catalog, const std::vector<Subscription>& subscriptions, int32_t period_id,
                      const std::vector<Invoice>& priced, const std::vector<InvoicedPeriod>& invoiced) {
    RunDecision out;
    std::map<Key, const Invoice*> by_key;
    for (const Invoice& inv : priced) {
        std::optional<int32_t> p = PeriodIdOf(inv.period);
        TALLY_ASSERT(p.has_value());  // monthly periods only
        by_key[{inv.customer, inv.plan, *p}] = &inv;
    }
    std::map<Key, const InvoicedPeriod*> finalized;
    for (const InvoicedPeriod& f : invoiced) finalized[{f.customer, f.plan, f.period_id}] = &f;

    std::map<std::pair<std::string, std::string>, Draft> drafts;  // (customer, plan)
    for (const auto& [key, inv] : by_key) {
        const auto& [customer, plan, p] = key;
        if (p != period_id) continue;
        if (finalized.count(key) > 0) {
            ++out.left_finalized;
            continue;
        }
        Draft d;
        d.invoice = *inv;
        d.period_id = period_id;
        drafts.emplace(std::make_pair(customer, plan), std::move(d));
    }
    for (const auto& [key, f] : finalized) {
        const auto& [customer, plan, p] = key;
        if (p >= period_id) continue;
        if (finalized.count({customer, plan, period_id}) > 0) continue;  // next run carries it
        auto it = by_key.find(key);
        Amount now = Amount::Zero(f->invoiced.currency());
        int64_t calls = 0;
        if (it != by_key.end()) {
            const Invoice& inv = *it->second;
            if (!inv.error.empty()) {
                out.problems.push_back(customer + " " + PeriodLabel(p) + " (" + plan +
                                       "): not re-priced for late usage: " + inv.error);
                continue;
            }
            if (!(inv.currency == f->invoiced.currency())) {
                out.problems.push_back(customer + " " + PeriodLabel(p) + " (" + plan + "): priced now in " +
                                       std::string(inv.currency.code()) + ", invoiced in " +
                                       std::string(f->invoiced.currency().code()) + ": no adjustment made");
                continue;
            }
            now = inv.subtotal;
            calls = inv.calls;
        }
        const Amount diff = now - f->invoiced;
        if (diff.is_zero()) continue;
        auto dit = drafts.find({customer, plan});
        if (dit == drafts.end()) {
            const Plan* pl = catalog.FindPlan(plan);
            if (pl == nullptr) {
                out.problems.push_back(customer + " " + PeriodLabel(p) + ": plan " + plan + " is not published any more");
                continue;
            }
            Draft d;
            d.invoice = EmptyInvoice(catalog, *pl, LatestSubscription(subscriptions, customer, plan), customer, period_id);
            d.period_id = period_id;
            dit = drafts.emplace(std::make_pair(customer, plan), std::move(d)).first;
        }
        Draft& d = dit->second;
        if (!d.invoice.error.empty()) continue;  // a draft that could not be priced carries nothing
        if (!(d.invoice.currency == diff.currency())) {
            out.problems.push_back(customer + " " + PeriodLabel(p) + " (" + plan + "): adjustment in " +
                                   std::string(diff.currency().code()) + " cannot go on an invoice in " +
                                   std::string(d.invoice.currency.code()));
            continue;
        }
        const int digits = d.invoice.currency.minor_digits();
        InvoiceLine line;
        line.kind = LineKind::kAdjustment;
        line.description = "adjustment for " + PeriodLabel(p) + " (invoice " + f->invoice_number + "): usage priced now " +
                           now.ToString(digits) + ", invoiced " + f->invoiced.ToString(digits);
        line.amount = diff;
        line.amount_rounded = diff;
        AddAdjustments(&d.invoice, {line});
        d.adjustments.push_back({PeriodLabel(p), f->invoice_number, calls, now});
    }
    for (auto& [key, d] : drafts) out.drafts.push_back(std::move(d));
    return out;
}

}  // namespace tally::billing
