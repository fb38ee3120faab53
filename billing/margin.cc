#include "billing/margin.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <tuple>
#include <utility>

#include "base/assert.h"
#include "base/int128.h"

namespace tally::billing {

namespace {

constexpr int128 kInt128Max = static_cast<int128>(~static_cast<uint128>(0) >> 1);

// An unsigned 256-bit number as two halves, for one product and one division.
struct U256 {
    uint128 hi = 0;
    uint128 lo = 0;
};

U256 MulWide(uint128 a, uint128 b) {
    const uint128 mask = static_cast<uint128>(UINT64_MAX);
    const uint128 a0 = a & mask, a1 = a >> 64, b0 = b & mask, b1 = b >> 64;
    const uint128 p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint128 mid = (p00 >> 64) + (p01 & mask) + (p10 & mask);
    U256 out;
    out.lo = (mid << 64) | (p00 & mask);
    out.hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    return out;
}

// a * b / c with c > 0, the product at 256 bits, the quotient rounded toward
// zero (kDown) or half-even; throws OverflowError when it does not fit.
// `remainder`, when given, receives |a * b| mod c.
int128 MulDiv(int128 a, int128 b, int128 c, RoundingMode mode, uint128* remainder = nullptr) {
    TALLY_ASSERT(c > 0);
    TALLY_ASSERT(mode == RoundingMode::kDown || mode == RoundingMode::kHalfEven);
    const bool negative = (a < 0) != (b < 0);
    const uint128 ua = a < 0 ? -static_cast<uint128>(a) : static_cast<uint128>(a);
    const uint128 ub = b < 0 ? -static_cast<uint128>(b) : static_cast<uint128>(b);
    const uint128 d = static_cast<uint128>(c);
    const U256 n = MulWide(ua, ub);
    // Long division, one bit at a time: the remainder stays below d < 2^127,
    // so shifting it left by one never loses a bit.
    U256 q;
    uint128 rem = 0;
    for (int i = 255; i >= 0; --i) {
        const uint128 bit = i >= 128 ? (n.hi >> (i - 128)) & 1 : (n.lo >> i) & 1;
        rem = (rem << 1) | bit;
        const bool take = rem >= d;
        if (take) rem -= d;
        if (i >= 128) {
            q.hi = (q.hi << 1) | (take ? 1 : 0);
        } else {
            q.lo = (q.lo << 1) | (take ? 1 : 0);
        }
    }
    if (q.hi != 0) throw OverflowError("margin arithmetic overflowed");
    if (remainder != nullptr) *remainder = rem;
    uint128 quotient = q.lo;
    if (mode == RoundingMode::kHalfEven) {
        const uint128 twice = rem << 1;
        if (twice > d || (twice == d && (quotient & 1) != 0)) ++quotient;
    }
    if (quotient > static_cast<uint128>(kInt128Max)) throw OverflowError("margin arithmetic overflowed");
    const auto magnitude = static_cast<int128>(quotient);
    return negative ? -magnitude : magnitude;
}

int128 CheckedAdd128(int128 a, int128 b) {
    int128 sum = 0;
    if (__builtin_add_overflow(a, b, &sum)) throw OverflowError("margin arithmetic overflowed");
    return sum;
}

std::string PeriodLabel(const PeriodRule& rule, int32_t period) {
    if (!rule.monthly()) return FormatRfc3339(*rule.from) + "/" + FormatRfc3339(*rule.to);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02d", MonthIdYear(period), MonthIdMonth(period));
    return buf;
}

std::string DayLabel(const LocalTime& t) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", t.year, t.month, t.day);
    return buf;
}

// One invoice's usage of one model billed, served by one model, on one local day.
struct Cell {
    int128 list_value = 0;  // sum of quantity x cell rate, at 10^-18
    int64_t calls = 0;
    std::optional<Amount> cost;  // sum of the known costs
    bool cost_missing = false;
    std::string cost_unknown;
    std::string error;
};

using CellKey2 = std::tuple<std::string, std::string, std::string>;  // (model, served model, day)

void AddCost(const CostQuote& quote, Cell* cell) {
    if (!quote.amount) {
        if (!cell->cost_missing) cell->cost_unknown = quote.reason;
        cell->cost_missing = true;
        return;
    }
    if (!cell->cost) {
        cell->cost = *quote.amount;
    } else if (cell->cost->currency() == quote.amount->currency()) {
        *cell->cost += *quote.amount;
    } else if (cell->error.empty()) {
        cell->error = "the cost cards give costs in " + std::string(cell->cost->currency().code()) + " and " +
                      std::string(quote.amount->currency().code()) + " for one row; they are never added (no FX)";
    }
}

// Adds one rollup's list value, calls and cost to its cell. The cost is the
// served model's when the calls were routed.
void AddRollup(const Catalog& catalog, const Rollup& r, const PlanVersion& version, const ModelPricing& model,
               const CostCatalog& costs, Cell* cell) {
    const std::string& costed = r.served_model.empty() ? model.name : r.served_model;
    cell->calls = SaturatingAdd(cell->calls, r.calls);
    const Instant at{std::chrono::hours(r.hour)};
    const int64_t band_from = PlanBandLowerBound(model, r.cell.band);
    for (int u = 0; u < catalog.units.size(); ++u) {
        const auto unit = static_cast<UnitId>(u);
        const int64_t q = r.quantities[unit];
        if (q == 0) continue;
        if (q == kQuantitySaturated) {
            if (cell->error.empty()) cell->error = "the quantity of " + catalog.units.Name(unit) + " overflowed";
            continue;
        }
        if (std::optional<Rate> rate = CellRate(model, r.cell, unit)) {
            const Amount list = rate->AmountFor(q, version.currency, RoundingMode::kHalfEven);
            cell->list_value = CheckedAdd128(cell->list_value, list.value().raw());
        }
        AddCost(costs.Cost(costed, catalog.units.Name(unit), band_from, at, q), cell);
    }
}

// The rows of one invoice from its cells, in (model, served model, day) order.
std::vector<MarginRow> InvoiceRows(const Invoice& inv, const std::map<CellKey2, Cell>& cells) {
    std::vector<MarginRow> rows;
    std::vector<int128> by_value, by_calls;
    bool any_value = false, any_calls = false;
    for (const auto& [key, cell] : cells) {
        MarginRow row;
        row.customer = inv.customer;
        row.plan = inv.plan;
        row.model = std::get<0>(key);
        row.served_model = std::get<1>(key);
        row.day = std::get<2>(key);
        MarginFigures& f = row.figures;
        f.currency = inv.currency;
        f.revenue = Amount::Zero(inv.currency);
        f.calls = cell.calls;
        f.error = cell.error;
        if (!inv.error.empty() && f.error.empty()) f.error = "the invoice could not be priced: " + inv.error;
        if (cell.cost_missing) {
            f.cost_unknown = cell.cost_unknown;
        } else if (cell.cost && !(cell.cost->currency() == inv.currency)) {
            if (f.error.empty()) {
                f.error = "cost in " + std::string(cell.cost->currency().code()) + ", revenue in " +
                          std::string(inv.currency.code()) + ": the two are never mixed (no FX)";
            }
        } else {
            f.cost = cell.cost.value_or(Amount::Zero(inv.currency));
        }
        by_value.push_back(cell.list_value);
        by_calls.push_back(cell.calls);
        any_value = any_value || cell.list_value > 0;
        any_calls = any_calls || cell.calls > 0;
        rows.push_back(std::move(row));
    }
    if (rows.empty() || !inv.error.empty()) return rows;
    std::vector<int128> weights = any_value ? by_value : by_calls;
    if (!any_value && !any_calls) std::fill(weights.begin(), weights.end(), 1);
    const std::vector<int128> shares = AllocateExactly(inv.subtotal.value().raw(), weights, 1);
    for (size_t i = 0; i < rows.size(); ++i) {
        rows[i].figures.revenue = Amount(inv.currency, Decimal::FromRaw(shares[i]));
    }
    return rows;
}

// Adds `b` into `a` (same key and currency).
void Merge(MarginFigures* a, const MarginFigures& b) {
    TALLY_ASSERT(a->currency == b.currency);
    a->revenue += b.revenue;
    a->calls = SaturatingAdd(a->calls, b.calls);
    if (a->error.empty()) a->error = b.error;
    if (a->cost_unknown.empty()) a->cost_unknown = b.cost_unknown;
    if (a->cost && b.cost) {
        *a->cost += *b.cost;
    } else {
        a->cost.reset();
    }
}

}  // namespace

std::string MarginFigures::MarginPercentText() const {
    return margin_percent ? margin_percent->ToString(2) : "n/a";
}

std::optional<Decimal> MarginPercent(const Amount& margin, const Amount& revenue) {
    TALLY_ASSERT(margin.currency() == revenue.currency());
    if (revenue.is_zero()) return std::nullopt;
    int128 m = margin.value().raw();
    int128 r = revenue.value().raw();
    if (r < 0) {
        m = -m;
        r = -r;
    }
    // Hundredths of a percent: margin / revenue x 100 x 100.
    // A percent too large for a Decimal (a margin of 10^16 times a tiny
    // revenue share) is shown as n/a rather than failing the report.
    int128 raw = 0;
    try {
        const int128 hundredths = MulDiv(m, 10'000, r, RoundingMode::kHalfEven);
        if (__builtin_mul_overflow(hundredths, Decimal::kOne / 100, &raw)) return std::nullopt;
    } catch (const OverflowError&) {
        return std::nullopt;
    }
    return Decimal::FromRaw(raw);
}

void FinishFigures(MarginFigures* f) {
    f->margin.reset();
    f->margin_percent.reset();
    f->negative = false;
    if (!f->error.empty()) f->cost.reset();
    if (!f->cost) return;
    TALLY_ASSERT(f->cost->currency() == f->revenue.currency());
    f->margin = f->revenue - *f->cost;
    f->margin_percent = MarginPercent(*f->margin, f->revenue);
    f->negative = f->margin->is_negative();
}

std::vector<int128> AllocateExactly(int128 total, const std::vector<int128>& weights, int128 unit) {
    TALLY_ASSERT(!weights.empty());
    TALLY_ASSERT(unit > 0);
    TALLY_ASSERT(total % unit == 0);
    TALLY_ASSERT(total > -kInt128Max);
    int128 sum = 0;
    for (const int128 w : weights) {
        TALLY_ASSERT(w >= 0);
        sum = CheckedAdd128(sum, w);
    }
    TALLY_ASSERT(sum > 0);
    const bool negative = total < 0;
    const int128 units = (negative ? -total : total) / unit;
    std::vector<int128> shares(weights.size());
    std::vector<uint128> remainders(weights.size());
    int128 given = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
        shares[i] = MulDiv(units, weights[i], sum, RoundingMode::kDown, &remainders[i]);
        given = CheckedAdd128(given, shares[i]);
    }
    // Each share lost less than one unit, so fewer units than rows are left.
    const int128 left = units - given;
    TALLY_ASSERT(left >= 0);
    TALLY_ASSERT(left < static_cast<int128>(weights.size()));
    std::vector<size_t> order(weights.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return remainders[a] > remainders[b]; });
    for (size_t k = 0; static_cast<int128>(k) < left; ++k) shares[order[k]] += 1;
    for (int128& share : shares) {
        share *= unit;  // |share| <= |total|: no overflow
        if (negative) share = -share;
    }
    return shares;
}

std::vector<MarginRow> ComputeMarginRows(const Catalog& catalog, const PeriodRule& period,
                                         const std::vector<Rollup>& rollups, const std::vector<Invoice>& invoices,
                                         const CostCatalog& costs) {
    std::map<std::tuple<std::string_view, std::string_view, std::string_view>, size_t> invoice_of;
    for (size_t i = 0; i < invoices.size(); ++i) {
        invoice_of.emplace(std::make_tuple(std::string_view(invoices[i].customer), std::string_view(invoices[i].plan),
                                           std::string_view(invoices[i].period)),
                           i);
    }
    std::vector<std::map<CellKey2, Cell>> cells(invoices.size());
    std::vector<std::pair<const date::time_zone*, ZoneClock>> clocks;
    auto clock = [&](const date::time_zone* zone) -> ZoneClock& {
        for (auto& [z, c] : clocks) {
            if (z == zone) return c;
        }
        clocks.emplace_back(zone, ZoneClock(zone));
        return clocks.back().second;
    };
    // Rollups come by customer, period and hour: the labels of the last
    // period and hour are kept rather than formatted for every row.
    std::map<int32_t, std::string> period_labels;
    const date::time_zone* last_zone = nullptr;
    int32_t last_hour = 0;
    std::string day;
    // The invoice of the last rollup, and the cells of its current day by
    // model (a std::map's elements stay where they are).
    const Rollup* last = nullptr;
    std::optional<size_t> invoice;
    std::string cells_day;
    struct DayCell {
        const std::string* model;
        const std::string* served;
        Cell* cell;
    };
    std::vector<DayCell> day_cells;
    for (const Rollup& r : rollups) {
        TALLY_ASSERT(r.cell.plan < catalog.plans.size());
        const Plan& plan = catalog.plans[r.cell.plan];
        if (last == nullptr || r.customer != last->customer || r.period != last->period ||
            r.cell.plan != last->cell.plan) {
            auto [label, fresh] = period_labels.try_emplace(r.period);
            if (fresh) label->second = PeriodLabel(period, r.period);
            auto it = invoice_of.find(std::make_tuple(std::string_view(r.customer), std::string_view(plan.name),
                                                      std::string_view(label->second)));
            invoice = it == invoice_of.end() ? std::nullopt : std::optional<size_t>(it->second);
            day_cells.clear();
        }
        last = &r;
        if (!invoice) continue;
        TALLY_ASSERT(r.cell.version < plan.versions.size());
        const PlanVersion& version = plan.versions[r.cell.version];
        TALLY_ASSERT(r.cell.model < version.models.size());
        const ModelPricing& model = version.models[r.cell.model];
        if (day.empty() || version.zone != last_zone || r.hour != last_hour) {
            day = DayLabel(clock(version.zone).Local(Instant{std::chrono::hours(r.hour)}));
            last_zone = version.zone;
            last_hour = r.hour;
        }
        if (day != cells_day) {
            cells_day = day;
            day_cells.clear();
        }
        Cell* found = nullptr;
        for (const DayCell& c : day_cells) {
            if (c.model == &model.name && *c.served == r.served_model) found = c.cell;
        }
        if (found == nullptr) {
            auto at = cells[*invoice].try_emplace({model.name, r.served_model, day}).first;
            found = &at->second;
            day_cells.push_back({&model.name, &std::get<1>(at->first), found});
        }
        Cell& cell = *found;
        try {
            AddRollup(catalog, r, version, model, costs, &cell);
        } catch (const OverflowError& e) {
            if (cell.error.empty()) cell.error = e.what();
        }
    }
    using RowKey = std::tuple<std::string, std::string, std::string, std::string, std::string, std::string>;
    std::map<RowKey, MarginRow> merged;
    for (size_t i = 0; i < invoices.size(); ++i) {
        std::vector<MarginRow> rows;
        try {
            rows = InvoiceRows(invoices[i], cells[i]);
        } catch (const OverflowError& e) {
            rows.clear();
            for (auto& [key, cell] : cells[i]) {
                MarginRow row;
                row.customer = invoices[i].customer;
                row.plan = invoices[i].plan;
                row.model = std::get<0>(key);
                row.served_model = std::get<1>(key);
                row.day = std::get<2>(key);
                row.figures.currency = invoices[i].currency;
                row.figures.revenue = Amount::Zero(invoices[i].currency);
                row.figures.calls = cell.calls;
                row.figures.error = e.what();
                rows.push_back(std::move(row));
            }
        }
        for (MarginRow& row : rows) {
            RowKey key{row.customer,     row.plan, row.model,
                       row.served_model, row.day,  std::string(row.figures.currency.code())};
            auto [at, fresh] = merged.try_emplace(key, row);
            if (!fresh) Merge(&at->second.figures, row.figures);
        }
    }
    std::vector<MarginRow> out;
    out.reserve(merged.size());
    for (auto& [key, row] : merged) {
        FinishFigures(&row.figures);
        out.push_back(std::move(row));
    }
    return out;
}

std::optional<MarginGroup> ParseMarginGroup(std::string_view text) {
    if (text == "customer") return MarginGroup::kCustomer;
    if (text == "model") return MarginGroup::kModel;
    if (text == "plan") return MarginGroup::kPlan;
    if (text == "day") return MarginGroup::kDay;
    if (text == "served_model") return MarginGroup::kServedModel;
    return std::nullopt;
}

std::string_view MarginGroupName(MarginGroup group) {
    switch (group) {
        case MarginGroup::kCustomer: return "customer";
        case MarginGroup::kModel: return "model";
        case MarginGroup::kPlan: return "plan";
        case MarginGroup::kDay: return "day";
        case MarginGroup::kServedModel: return "served_model";
    }
    TALLY_UNREACHABLE();
}

std::vector<MarginGroupRow> GroupMarginRows(const std::vector<MarginRow>& rows, MarginGroup by) {
    std::map<std::pair<std::string, std::string>, MarginGroupRow> groups;
    for (const MarginRow& row : rows) {
        const std::string* key = nullptr;
        switch (by) {
            case MarginGroup::kCustomer: key = &row.customer; break;
            case MarginGroup::kModel: key = &row.model; break;
            case MarginGroup::kPlan: key = &row.plan; break;
            case MarginGroup::kDay: key = &row.day; break;
            case MarginGroup::kServedModel: key = row.served_model.empty() ? &row.model : &row.served_model; break;
        }
        TALLY_ASSERT(key != nullptr);
        auto [it, fresh] =
            groups.try_emplace({*key, std::string(row.figures.currency.code())}, MarginGroupRow{*key, row.figures});
        if (!fresh) Merge(&it->second.figures, row.figures);
    }
    std::vector<MarginGroupRow> out;
    out.reserve(groups.size());
    for (auto& [key, group] : groups) {
        FinishFigures(&group.figures);
        out.push_back(std::move(group));
    }
    return out;
}

}  // namespace tally::billing
