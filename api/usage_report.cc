#include "api/usage_report.h"

#include <algorithm>
#include <climits>
#include <map>
#include <set>
#include <tuple>

#include "base/assert.h"
#include "base/int128.h"
#include "billing/margin.h"
#include "pricing/invoice.h"

namespace tally::api {

namespace {

// A row's identity: rank (0 usage, 1 invoice-level, 2 commitment), kind,
// group, currency code. The map's order is the rows' order.
using RowKey = std::tuple<int, std::string, std::string, std::string>;
struct Cell {
    Amount cost;
    int64_t calls = 0;
};
using Snapshot = std::map<RowKey, Cell>;

void Add(Snapshot* s, RowKey key, const Amount& amount, int64_t calls) {
    auto [it, inserted] = s->try_emplace(std::move(key), Cell{amount, calls});
    if (!inserted) {
        it->second.cost += amount;
        it->second.calls += calls;
    }
}

// The priced invoices' lines as rows: by model, or (by_model false) one
// usage row; invoice-level lines by kind and description. Invoices that
// could not be priced are left out.
Snapshot SnapshotOf(const std::vector<Invoice>& invoices, bool by_model) {
    Snapshot s;
    for (const Invoice& inv : invoices) {
        if (!inv.error.empty()) continue;
        const std::string currency(inv.currency.code());
        if (!by_model) Add(&s, {0, "usage", "", currency}, Amount::Zero(inv.currency), inv.calls);
        for (const InvoiceLine& l : inv.lines) {
            const bool model_line =
                l.kind == LineKind::kUsage || l.kind == LineKind::kFreeQuota || l.kind == LineKind::kUnpriced;
            if (l.kind == LineKind::kCommitment) {
                Add(&s, {2, "commitment", l.description, currency}, l.amount_rounded, 0);
            } else if (!by_model) {
                Add(&s, {0, "usage", "", currency}, l.amount_rounded, 0);
            } else if (model_line) {
                Add(&s, {0, "usage", l.model, currency}, l.amount_rounded, 0);
            } else {
                Add(&s, {1, std::string(LineKindName(l.kind)), l.description, currency}, l.amount_rounded, 0);
            }
        }
    }
    return s;
}

// cur - prev per key, for keys with `rank` in [rank_lo, rank_hi].
std::vector<std::pair<RowKey, Cell>> Difference(const Snapshot& cur, const Snapshot& prev, int rank_lo, int rank_hi) {
    std::vector<std::pair<RowKey, Cell>> out;
    for (const auto& [key, cell] : cur) {
        if (std::get<0>(key) < rank_lo || std::get<0>(key) > rank_hi) continue;
        Cell d = cell;
        if (auto it = prev.find(key); it != prev.end()) {
            d.cost -= it->second.cost;
            d.calls -= it->second.calls;
        }
        out.emplace_back(key, d);
    }
    for (const auto& [key, cell] : prev) {
        if (std::get<0>(key) < rank_lo || std::get<0>(key) > rank_hi || cur.count(key) != 0) continue;
        out.emplace_back(key, Cell{-cell.cost, -cell.calls});
    }
    return out;
}

struct PeriodPricer {
    const Catalog& catalog;
    const std::vector<Subscription>& subscriptions;
    const std::vector<Rollup>& history;  // the customer's earlier periods
    const std::vector<Rollup>& rollups;  // one customer's, one period's, by hour
    int32_t period = 0;
    const CommitmentHorizon* horizon = nullptr;  // a `period` query: commitments bill without usage
    // The period's invoices priced from its first `end` rollups, after
    // every earlier period (amount coupons they used up stay used).
    std::vector<Invoice> Price(size_t end) const {
        std::vector<Rollup> prefix = history;
        prefix.insert(prefix.end(), rollups.begin(), rollups.begin() + static_cast<std::ptrdiff_t>(end));
        if (prefix.empty() && horizon == nullptr) return {};
        std::vector<Invoice> out = PriceRollups(catalog, subscriptions, catalog.plans.front().name, {}, prefix, horizon);
        const std::string label = MonthIdLabel(period);
        std::erase_if(out, [&](const Invoice& inv) { return inv.period != label; });
        return out;
    }
    // Price(ends[k]) for every k (each at least 1), with the period priced
    // once in hour order (PriceRollupsThrough); each end must fall between
    // hours (the first rollup it leaves out is of a later hour than the last
    // it keeps).
    std::vector<std::vector<Invoice>> PriceEach(const std::vector<size_t>& ends) const {
        std::vector<int32_t> until_hours;
        for (const size_t end : ends) {
            TALLY_ASSERT(end >= 1);
            TALLY_ASSERT(end <= rollups.size());
            TALLY_ASSERT(end == rollups.size() || rollups[end - 1].hour < rollups[end].hour);
            until_hours.push_back(end == rollups.size() ? INT32_MAX : rollups[end].hour);
        }
        std::vector<Rollup> all = history;
        all.insert(all.end(), rollups.begin(), rollups.end());
        std::vector<std::vector<Invoice>> out = PriceRollupsThrough(
            catalog, subscriptions, catalog.plans.front().name, {}, all, period, until_hours, horizon);
        const std::string label = MonthIdLabel(period);
        for (std::vector<Invoice>& invoices : out) {
            std::erase_if(invoices, [&](const Invoice& inv) { return inv.period != label; });
        }
        return out;
    }
};

void Emit(UsageReport* report, const std::string& period, const std::string& group_label,
          const std::vector<std::pair<RowKey, Cell>>& cells, bool keep_zero_usage) {
    for (const auto& [key, cell] : cells) {
        const bool usage = std::get<1>(key) == "usage";
        if (!(usage && keep_zero_usage) && cell.cost.value() == Decimal() && cell.calls == 0) continue;
        UsageRow row;
        row.period = period;
        row.kind = std::get<1>(key);
        row.group = usage && !group_label.empty() ? group_label : std::get<2>(key);
        row.calls = cell.calls;
        row.cost = cell.cost;
        report->rows.push_back(std::move(row));
    }
}

// A rollup's list value (quantity x its cell's rate, each unit half-even at
// Decimal's scale), as margin weighs revenue (billing/margin.cc).
int128 ListValue(const Catalog& catalog, const Rollup& r) {
    const PlanVersion& version = catalog.plans[r.cell.plan].versions[r.cell.version];
    const ModelPricing& model = version.models[r.cell.model];
    int128 value = 0;
    for (int u = 0; u < catalog.units.size(); ++u) {
        const auto unit = static_cast<UnitId>(u);
        const int64_t q = r.quantities[unit];
        if (q == 0 || q == kQuantitySaturated) continue;
        if (std::optional<Rate> rate = CellRate(model, r.cell, unit)) {
            value += rate->AmountFor(q, version.currency, RoundingMode::kHalfEven).value().raw();
        }
    }
    return value;
}

// group_by=project: the usage lines' cost (usage, free quota, unpriced, as
// the model grouping's rows) of each currency, through `to` less before
// `from`, allocated over the projects of the rollups in [from, to) in
// proportion to their list value (by calls when it is zero everywhere, else
// evenly), in the currency's minor unit by the largest-remainder rule
// (billing::AllocateExactly), so the rows add up to it exactly;
// invoice-level rows (discount, coupon, rounding, commitment) as the model
// grouping shows them.
void ProjectRows(const PeriodPricer& pricer, const std::vector<Invoice>& full, size_t first, UsageReport* report) {
    const std::vector<Rollup>& r = pricer.rollups;
    const std::string period = MonthIdLabel(pricer.period);
    const Snapshot before = first == 0 ? Snapshot() : SnapshotOf(pricer.Price(first), true);
    std::map<std::string, Amount> usage;  // by currency code
    std::vector<std::pair<RowKey, Cell>> invoice_level;
    for (auto& [key, cell] : Difference(SnapshotOf(full, true), before, 0, 2)) {
        if (std::get<0>(key) != 0) {
            invoice_level.emplace_back(key, cell);
            continue;
        }
        auto [it, inserted] = usage.try_emplace(std::get<3>(key), cell.cost);
        if (!inserted) it->second += cell.cost;
    }
    // Rollups of a plan whose invoice could not be priced weigh nothing (its
    // lines are left out, as in the other groupings).
    std::set<std::string> unpriced;
    for (const Invoice& inv : full) {
        if (!inv.error.empty()) unpriced.insert(inv.plan);
    }
    struct Weight {
        int128 list = 0;
        int64_t calls = 0;
    };
    std::map<std::string, std::map<std::string, Weight>> weights;  // currency -> project -> weight
    for (size_t i = first; i < r.size(); ++i) {
        const Plan& plan = pricer.catalog.plans[r[i].cell.plan];
        if (unpriced.count(plan.name) != 0) continue;
        const std::string currency(plan.versions[r[i].cell.version].currency.code());
        Weight& w = weights[currency][r[i].project];
        w.list += ListValue(pricer.catalog, r[i]);
        w.calls = SaturatingAdd(w.calls, r[i].calls);
    }
    for (const auto& [code, amount] : usage) {
        std::map<std::string, Weight>& projects = weights[code];
        if (projects.empty()) projects[""] = Weight{};  // cost without usage in range: one row, so the sum holds
        std::vector<int128> by_list, by_calls;
        bool any_list = false, any_calls = false;
        for (const auto& [project, w] : projects) {
            by_list.push_back(w.list);
            by_calls.push_back(w.calls);
            any_list = any_list || w.list > 0;
            any_calls = any_calls || w.calls > 0;
        }
        std::vector<int128> shares_of = any_list ? by_list : by_calls;
        if (!any_list && !any_calls) std::fill(shares_of.begin(), shares_of.end(), 1);
        int128 minor = 1;
        for (int d = amount.currency().minor_digits(); d < Decimal::kScale; ++d) minor *= 10;
        // Lines are rounded to the minor unit, so their sum is whole units;
        // were it not, shares at Decimal's scale still add up exactly.
        const int128 unit = amount.value().raw() % minor == 0 ? minor : 1;
        const std::vector<int128> shares = billing::AllocateExactly(amount.value().raw(), shares_of, unit);
        size_t k = 0;
        for (const auto& [project, w] : projects) {
            UsageRow row;
            row.period = period;
            row.group = project;
            row.kind = "usage";
            row.calls = w.calls;
            row.cost = Amount(amount.currency(), Decimal::FromRaw(shares[k++]));
            report->rows.push_back(std::move(row));
        }
    }
    Emit(report, period, "", invoice_level, false);
}

// The rows of one billing period.
void PeriodRows(const PeriodPricer& pricer, const UsageQuery& q, UsageReport* report) {
    const std::vector<Rollup>& r = pricer.rollups;
    const std::string period = MonthIdLabel(pricer.period);
    const std::vector<Invoice> full = pricer.Price(r.size());
    for (const Invoice& inv : full) {
        report->periods.push_back({period, inv.plan, inv.subtotal, inv.calls, inv.error});
    }
    const int32_t from_hour =
        q.period ? INT32_MIN
                 : static_cast<int32_t>(std::chrono::floor<std::chrono::hours>(q.from.time_since_epoch()).count());
    size_t first = 0;
    while (first < r.size() && r[first].hour < from_hour) ++first;
    if (q.group_by == GroupBy::kProject) {
        ProjectRows(pricer, full, first, report);
        return;
    }
    const bool by_model = q.group_by == GroupBy::kModel;
    const Snapshot before = first == 0 ? Snapshot() : SnapshotOf(pricer.Price(first), by_model);
    if (by_model) {
        // Invoice lines carry no calls: a model's are its rollups' in the range.
        std::map<std::pair<std::string, std::string>, int64_t> calls;  // by (model, currency code)
        for (size_t k = first; k < r.size(); ++k) {
            const PlanVersion& v = pricer.catalog.plans[r[k].cell.plan].versions[r[k].cell.version];
            int64_t& n = calls[{v.models[r[k].cell.model].name, std::string(v.currency.code())}];
            n = SaturatingAdd(n, r[k].calls);
        }
        std::vector<std::pair<RowKey, Cell>> rows = Difference(SnapshotOf(full, true), before, 0, 2);
        for (auto& [key, cell] : rows) {
            if (std::get<1>(key) != "usage") continue;
            if (auto it = calls.find({std::get<2>(key), std::get<3>(key)}); it != calls.end()) cell.calls = it->second;
        }
        Emit(report, period, "", rows, false);
        return;
    }
    const date::time_zone* zone = full.empty() ? nullptr : FindZone(full.front().time_zone);
    if (zone == nullptr) zone = FindZone("UTC");
    ZoneClock clock(zone);
    auto bucket_of = [&](int32_t hour, std::string* label) -> int64_t {
        const Instant t{std::chrono::hours(hour)};
        if (q.group_by == GroupBy::kHour) {
            if (label != nullptr) *label = FormatRfc3339(t);
            return hour;
        }
        const LocalTime lt = clock.Local(t);
        if (label != nullptr) {
            char text[16];
            std::snprintf(text, sizeof text, "%04d-%02d-%02d", lt.year, lt.month, lt.day);
            *label = text;
        }
        return lt.local_seconds >= 0 ? lt.local_seconds / 86400 : (lt.local_seconds - 86399) / 86400;
    };
    const Snapshot through_to = SnapshotOf(full, false);
    // Each bucket's row is the subtotal through its end less the subtotal
    // before it: the period priced once in hour order, with a snapshot at
    // each bucket's end (PriceRollupsThrough), not once per bucket.
    std::vector<std::string> labels;
    std::vector<size_t> ends;
    for (size_t i = first; i < r.size();) {
        std::string label;
        const int64_t bucket = bucket_of(r[i].hour, &label);
        size_t j = i;
        while (j < r.size() && bucket_of(r[j].hour, nullptr) == bucket) ++j;
        labels.push_back(std::move(label));
        ends.push_back(j);
        i = j;
    }
    std::vector<size_t> inner(ends.begin(), ends.end() - (ends.empty() ? 0 : 1));  // the last one is `full`
    const std::vector<std::vector<Invoice>> snapshots = inner.empty() ? std::vector<std::vector<Invoice>>()
                                                                      : pricer.PriceEach(inner);
    Snapshot prev = before;
    for (size_t b = 0; b < ends.size(); ++b) {
        Snapshot cur = b + 1 == ends.size() ? through_to : SnapshotOf(snapshots[b], false);
        Emit(report, period, labels[b], Difference(cur, prev, 0, 1), true);
        prev = std::move(cur);
    }
    // The commitment's true-up: what it adds through `to`, less before `from`.
    Emit(report, period, "", Difference(through_to, before, 2, 2), false);
}

}  // namespace

bool NeedsEarlierPeriods(const std::vector<Subscription>& subscriptions, const std::string& customer) {
    for (const Subscription& s : subscriptions) {
        if (s.customer != customer) continue;
        for (const Coupon& c : s.coupons) {
            if (c.amount) return true;
        }
    }
    return false;
}

UsageReport ComputeUsage(const Catalog& catalog, const std::vector<Subscription>& subscriptions,
                         const std::vector<RollupRecord>& records, const UsageQuery& query,
                         const std::vector<RollupRecord>& earlier) {
    if (catalog.plans.empty()) throw BadRequest("no plans are published yet");
    UsageReport report;
    std::vector<RollupRecord> all = earlier;
    all.insert(all.end(), records.begin(), records.end());
    RecordsRead read = FromRecords(catalog, all);
    report.unresolved = read.unresolved;
    for (const Rollup& r : read.rollups) TALLY_ASSERT(r.customer == query.customer);
    // The periods shown: the one asked for, or those of the range's records.
    std::vector<int32_t> periods;
    if (query.period) {
        periods.push_back(*query.period);
    } else {
        for (const RollupRecord& r : records) periods.push_back(r.period);
        std::sort(periods.begin(), periods.end());
        periods.erase(std::unique(periods.begin(), periods.end()), periods.end());
    }
    // PriceRollups indexes every subscription it is given, on every call
    // (one per day with group_by=day): give it only the customer's, which
    // are all it looks at (the horizon names this customer alone).
    std::vector<Subscription> own;
    for (const Subscription& s : subscriptions) {
        if (s.customer == query.customer) own.push_back(s);
    }
    CommitmentHorizon horizon;
    if (query.period) {
        horizon.through = *query.period;
        horizon.customers.push_back(query.customer);
    }
    // Canonical order is (customer, period, hour, ...): each period's
    // rollups are one run, in hour order, after the earlier periods'.
    for (const int32_t p : periods) {
        std::vector<Rollup> history, one;
        for (const Rollup& r : read.rollups) {
            if (r.period < p) history.push_back(r);
            if (r.period == p) one.push_back(r);
        }
        PeriodRows(PeriodPricer{catalog, own, history, one, p, query.period ? &horizon : nullptr}, query, &report);
    }
    std::map<std::string, Amount> totals;
    for (const UsageRow& row : report.rows) {
        auto [it, inserted] = totals.try_emplace(std::string(row.cost.currency().code()), row.cost);
        if (!inserted) it->second += row.cost;
    }
    for (const auto& [code, amount] : totals) report.totals.push_back(amount);
    return report;
}

}  // namespace tally::api
