#include "pricing/plan_diff.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <tuple>
#include <utility>

#include "base/assert.h"
#include "pricing/price_table.h"

namespace tally {

namespace {

// A cell and unit, by name: what makes two versions' rates the same rate.
using RateKey = std::tuple<std::string, std::string, std::string, std::string, bool, bool, std::string>;

RateKey KeyOf(const PriceCell& c, const PriceCellRate& r) {
    return {c.model, c.band, c.output_condition, c.window, c.batch, c.thinking, r.unit_name};
}

bool SameOptionalRate(const std::optional<Rate>& a, const std::optional<Rate>& b) {
    if (a.has_value() != b.has_value()) return false;
    return !a || SameRate(*a, *b);
}

std::string Clock(int minute) {
    char text[32];
    std::snprintf(text, sizeof text, "%02d:%02d", minute / 60, minute % 60);
    return text;
}

std::string RateText(const Rate& r) {
    return r.price().ToString() + " per " + std::to_string(r.per());
}

std::string RatesText(const RateTable& table, const UnitTable& units) {
    std::string out;
    for (int i = 0; i < kMaxUnits; ++i) {
        const auto u = static_cast<UnitId>(i);
        if (table[u]) {
            out += (out.empty() ? "" : ", ") + units.Name(u) + " " + RateText(*table[u]);
        } else if (table.of_input[u]) {
            out += (out.empty() ? "" : ", ") + units.Name(u) + " " + table.of_input[u]->value().ToString() + " of input";
        }
    }
    return out;
}

std::string UnitsText(const std::vector<UnitId>& list, const UnitTable& units) {
    if (list.empty()) return "all units";
    std::string out;
    for (UnitId u : list) out += (out.empty() ? "" : ",") + units.Name(u);
    return out;
}

std::string ModelsText(const std::vector<std::string>& list) {
    if (list.empty()) return "all models";
    std::string out;
    for (const auto& m : list) out += (out.empty() ? "" : ",") + m;
    return out;
}

// "16:30-00:30 UTC mon,tue,... rates {...}": a window as the YAML states
// it; one without a zone of its own names the version's, so a changed
// time_zone shows as every such window moving.
std::string WindowText(const Window& w, const PlanVersion& v, const UnitTable& units) {
    static constexpr const char* kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    std::string out = Clock(w.start_minute) + "-" + Clock(w.end_minute) + " " +
                      (w.zone_name.empty() ? "(plan zone " + v.zone_name + ")" : w.zone_name);
    if (w.weekdays != 0x7f) {
        std::string days;
        for (int d = 0; d < 7; ++d) {
            if ((w.weekdays & (1u << d)) != 0) days += (days.empty() ? "" : ",") + std::string(kDays[d]);
        }
        out += " on " + days;
    }
    if (w.multiplier) out += ", multiplier " + w.multiplier->ToString();
    const std::string rates = RatesText(w.rates, units);
    if (!rates.empty()) out += ", rates " + rates;
    return out;
}

std::string BandsText(const ModelPricing& m) {
    static constexpr const char* kBy[] = {"prompt", "uncached_input"};
    static constexpr const char* kMode[] = {"whole_call", "graduated"};
    std::string out = std::string("by ") + kBy[static_cast<int>(m.band_by)] + ", " +
                      kMode[static_cast<int>(m.band_mode)] + ", above the top band " +
                      (m.above_top == AboveTop::kReject ? "reject" : "top band") + ":";
    for (size_t b = 0; b < m.bands.size(); ++b) out += " " + m.BandLabel(b);
    return out;
}

std::string BatchText(const BatchPricing& b) {
    if (!b.priced) return "not priced (batch calls bill as online calls)";
    static constexpr const char* kCache[] = {"discounted", "full_cache_rate", "not_combined"};
    return std::string(b.multiplier ? "multiplier " + b.multiplier->ToString() : "own rates") + ", cache_hits " +
           kCache[static_cast<int>(b.cache_hits)];
}

std::string TierRuleText(const TierRule& rule, const UnitTable& units) {
    std::string out = rule.name + ": " + ModelsText(rule.models) + "; " + UnitsText(rule.units, units) + "; " +
                      (rule.aggregate == TierAggregate::kPerModel ? "per_model" : "per_model_and_unit") + ", " +
                      (rule.mode == TierMode::kVolume ? "volume" : "graduated") + ":";
    for (const Tier& t : rule.tiers) {
        const bool open = t.up_to == std::numeric_limits<int64_t>::max();
        out += " up_to " + (open ? std::string("any") : std::to_string(t.up_to));
        if (t.multiplier) out += " x" + t.multiplier->ToString();
        if (t.rate) out += " " + RateText(*t.rate);
    }
    return out;
}

std::string QuotaText(const FreeQuota& q, const UnitTable& units) {
    return q.name + ": " + std::to_string(q.tokens) + " per model per period of " + ModelsText(q.models) + "; " +
           (q.units.empty() ? std::string("all token units") : UnitsText(q.units, units));
}

// name -> text of each term of a version that is not a cell rate.
std::map<std::string, std::string> VersionTerms(const PlanVersion& v, const UnitTable& units) {
    std::map<std::string, std::string> t;
    t["currency"] = std::string(v.currency.code());
    t["time_zone"] = v.zone_name;
    t["rounding"] = std::string(RoundingModeName(v.rounding));
    t["round_at"] = std::string(RoundingPlaceName(v.rounding_place));
    t["tax_percent"] = v.tax_percent.ToString();
    t["minimum_commitment"] = v.minimum_commitment ? v.minimum_commitment->ToString() : "none";
    t["finalize_grace"] = FormatDuration(v.finalize_grace);
    for (const TierRule& r : v.tiers) t["tier " + r.name] = TierRuleText(r, units);
    for (const FreeQuota& q : v.free_quotas) t["free quota " + q.name] = QuotaText(q, units);
    for (const ModelPricing& m : v.models) {
        const std::string model = "model " + m.name + ": ";
        t[model + "bands"] = BandsText(m);
        t[model + "batch"] = BatchText(m.batch);
        t[model + "routed_calls"] = m.routed_calls == RoutedCalls::kBillServed ? "bill_served" : "bill_requested";
        for (const Window& w : m.windows) t[model + "window " + w.name] = WindowText(w, v, units);
    }
    return t;
}

// The order terms are reported in: the version's own first, then per model.
int TermRank(const std::string& term) {
    static const std::vector<std::string> kOrder = {"currency",    "time_zone",          "rounding",      "round_at",
                                                    "tax_percent", "minimum_commitment", "finalize_grace"};
    for (size_t i = 0; i < kOrder.size(); ++i) {
        if (term == kOrder[i]) return static_cast<int>(i);
    }
    if (term.rfind("tier ", 0) == 0) return 10;
    if (term.rfind("free quota ", 0) == 0) return 11;
    return 12;
}

}  // namespace

bool SameRate(const Rate& a, const Rate& b) {
    if (a.per() == b.per()) return a.price() == b.price();
    // a.price / a.per == b.price / b.per, cross-multiplied exactly.
    return a.price().MulInt(b.per()) == b.price().MulInt(a.per());
}

std::optional<Decimal> RateChangePercent(const Rate& old_rate, const Rate& new_rate) {
    // Per unit: old = o / op, new = n / np. (new - old) / old = (n*op - o*np) / (o*np).
    const int128 o = old_rate.price().MulInt(new_rate.per()).raw();
    const int128 n = new_rate.price().MulInt(old_rate.per()).raw();
    if (o == 0) return std::nullopt;
    int128 diff = 0, scaled = 0;
    if (__builtin_sub_overflow(n, o, &diff) || __builtin_mul_overflow(diff, static_cast<int128>(10000), &scaled)) {
        throw OverflowError("rate change out of range");
    }
    // Hundredths of a percent, rounded once; the divisor must be positive.
    int128 divisor = o;
    if (divisor < 0) {
        divisor = -divisor;
        scaled = -scaled;
    }
    const int128 hundredths = DivRound(scaled, divisor, RoundingMode::kHalfEven);
    int128 raw = 0;
    if (__builtin_mul_overflow(hundredths, Pow10(Decimal::kScale - 2), &raw)) {
        throw OverflowError("rate change out of range");
    }
    return Decimal::FromRaw(raw);
}

std::string RateChangeText(const std::optional<Rate>& old_rate, const std::optional<Rate>& new_rate) {
    TALLY_ASSERT(old_rate.has_value() || new_rate.has_value());
    if (!old_rate) return "new";
    if (!new_rate) return "removed";
    const std::optional<Decimal> percent = RateChangePercent(*old_rate, *new_rate);
    if (!percent) return SameRate(*old_rate, *new_rate) ? "0.00%" : "from 0";
    if (SameRate(*old_rate, *new_rate)) return "0.00%";
    // A change too small for 2 places keeps its direction: "+0.00%", "-0.00%".
    const bool up = new_rate->price().MulInt(old_rate->per()) > old_rate->price().MulInt(new_rate->per());
    const std::string digits = percent->ToString(2);
    return (up ? "+" : (percent->is_negative() ? "" : "-")) + digits + "%";
}

PlanVersionDiff DiffPlanVersions(const PlanVersion& old_version, const UnitTable& old_units,
                                 const PlanVersion& new_version, const UnitTable& new_units) {
    PlanVersionDiff diff;
    for (const ModelPricing& m : new_version.models) {
        if (old_version.FindModel(m.name) == nullptr) diff.models_added.push_back(m.name);
    }
    for (const ModelPricing& m : old_version.models) {
        if (new_version.FindModel(m.name) == nullptr) diff.models_removed.push_back(m.name);
    }

    const std::map<std::string, std::string> old_terms = VersionTerms(old_version, old_units);
    const std::map<std::string, std::string> new_terms = VersionTerms(new_version, new_units);
    auto model_of_term = [](const std::string& term) -> std::string {
        if (term.rfind("model ", 0) != 0) return "";
        return term.substr(6, term.find(": ") - 6);
    };
    auto in_both = [&](const std::string& term) {
        const std::string model = model_of_term(term);
        return model.empty() || (old_version.FindModel(model) != nullptr && new_version.FindModel(model) != nullptr);
    };
    std::vector<TermChange> terms;
    for (const auto& [term, value] : new_terms) {
        if (!in_both(term)) continue;
        auto old = old_terms.find(term);
        if (old == old_terms.end()) {
            terms.push_back({term, "", value});
        } else if (old->second != value) {
            terms.push_back({term, old->second, value});
        }
    }
    for (const auto& [term, value] : old_terms) {
        if (in_both(term) && new_terms.count(term) == 0) terms.push_back({term, value, ""});
    }
    std::stable_sort(terms.begin(), terms.end(),
                     [](const TermChange& a, const TermChange& b) { return TermRank(a.term) < TermRank(b.term); });
    diff.terms = std::move(terms);

    const std::vector<PriceCell> old_table = ResolvePriceTable(old_version, old_units);
    const std::vector<PriceCell> new_table = ResolvePriceTable(new_version, new_units);
    std::map<RateKey, const std::optional<Rate>*> old_rates;
    for (const PriceCell& c : old_table) {
        for (const PriceCellRate& r : c.rates) old_rates.emplace(KeyOf(c, r), &r.rate);
    }
    std::map<RateKey, bool> seen;
    auto add = [&](const PriceCell& c, const PriceCellRate& r, const std::optional<Rate>& before,
                   const std::optional<Rate>& after) {
        if (!before && !after) return;
        diff.rates.push_back({c.model, c.band, c.output_condition, c.window, c.batch, c.thinking, r.unit_name, before,
                              after, RateChangeText(before, after)});
    };
    for (const PriceCell& c : new_table) {
        if (old_version.FindModel(c.model) == nullptr) continue;
        for (const PriceCellRate& r : c.rates) {
            const RateKey key = KeyOf(c, r);
            seen[key] = true;
            auto old = old_rates.find(key);
            const std::optional<Rate> before = old == old_rates.end() ? std::nullopt : *old->second;
            if (!SameOptionalRate(before, r.rate)) add(c, r, before, r.rate);
        }
    }
    for (const PriceCell& c : old_table) {
        if (new_version.FindModel(c.model) == nullptr) continue;
        for (const PriceCellRate& r : c.rates) {
            if (seen.count(KeyOf(c, r)) == 0) add(c, r, r.rate, std::nullopt);
        }
    }
    return diff;
}

}  // namespace tally
