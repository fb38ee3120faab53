#include "pricing/plan_yaml.h"

#include <date/tz.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <set>

#include "base/assert.h"
#include "pricing/internal/yaml_reader.h"
#include "pricing/invoice.h"
#include "pricing/plan_extends.h"
#include "pricing/rater.h"

namespace tally {

namespace internal {
// Shared with the subscription parser: `finalize_grace: 36h`.
std::optional<std::chrono::seconds> ParseFinalizeGrace(YamlReader& r, const YAML::Node& node);
}  // namespace internal

namespace {

using internal::ParseFinalizeGrace;
using internal::YamlReader;

constexpr int kMaxRateDecimals = 9;
// A cell key holds a condition and a window as uint8, kNone (0xff) meaning
// none, and the ledger reads back only indices below it (rollup_records.cc).
constexpr size_t kMaxOutputConditions = kNone;
constexpr size_t kMaxWindows = kNone;
// Price cells (model x band x output condition x window x batch x thinking)
// of a plan, over all its versions: validating a plan, and its price table
// (GET /v1/plans/{id}), grow with them, and YAML aliases can make a small
// file name millions. The richest real sheet has a few thousand.
constexpr size_t kMaxPlanCells = 100'000;

// The cells a call of `m` can fall in.
size_t CellsOf(const ModelPricing& m) {
    size_t per_window = 0;
    for (const Band& b : m.bands) per_window += b.output_conditions.size() + 1;
    return per_window * (m.windows.size() + 1) * (m.batch.priced ? 2 : 1) * (m.prices_thinking ? 2 : 1);
}
static_assert(kMaxOutputConditions <= 0xff && kMaxWindows <= 0xff);
static_assert(kMaxBands <= 0xff);

bool IsPowerOfTen(int64_t n) {
    if (n <= 0) return false;
    while (n % 10 == 0) n /= 10;
    return n == 1;
}

std::string Quote(std::string_view s) {
    return "'" + std::string(s) + "'";
}

// The units of priced_units that some cell of band `b` has no rate for. A
// call lands in one cell: its band, the first output condition it meets (or
// none), the window it falls in (or none), batch or online when the model
// prices batch, thinking or not when it prices thinking. CellRate takes a
// unit's rate from the first of the cell's tables (CellTables, plan.h:
// batch_rates, window_rates, thinking_rates, rates; a condition's before its
// band's) that prices the unit or a unit it falls back to, so a cell prices
// a unit when any of its tables does (a share of input counts: every band
// prices input).
uint32_t UnpricedUnits(const ModelPricing& m, size_t b) {
    TALLY_ASSERT(b < m.bands.size());
    const Band& band = m.bands[b];
    const size_t conditions = band.output_conditions.size();
    const size_t windows = m.windows.size();
    uint32_t unpriced = 0;
    // Index `conditions` is "no condition met", `windows` "outside every window".
    for (size_t c = 0; c <= conditions; ++c) {
        for (size_t w = 0; w <= windows; ++w) {
            for (int batch = 0; batch <= (m.batch.priced ? 1 : 0); ++batch) {
                for (int thinking = 0; thinking <= (m.prices_thinking ? 1 : 0); ++thinking) {
                    CellPlace cell;
                    cell.band = b;
                    if (c < conditions) cell.condition = c;
                    if (w < windows) cell.window = w;
                    cell.batch = batch != 0;
                    cell.thinking = thinking != 0;
                    const auto tables = CellTables(m, cell);
                    for (UnitId u = 0; u < kMaxUnits; ++u) {
                        if ((m.priced_units & (1u << u)) == 0) continue;
                        bool priced = std::any_of(tables.begin(), tables.end(), [u](const CellTable& t) {
                            return t.table != nullptr && PricesWithFallback(*t.table, u);
                        });
                        if (!priced) unpriced |= 1u << u;
                    }
                }
            }
        }
    }
    return unpriced;
}

// For a diagnostic: where `m` prices `unit` although band `b`'s own rates do
// not, and which calls of band `b` therefore lack it. Prefers the band's own
// conditions, batch and thinking rates (they name the calls that have it),
// then another band, a window, another band's conditions, batch or thinking.
struct PricedElsewhere {
    std::string where;    // "in band 0-32000", "for batch calls", ...
    std::string lacking;  // "", "for online calls", ... (then "in band b")
};

std::optional<PricedElsewhere> FindWherePriced(const ModelPricing& m, size_t b, UnitId unit) {
    const bool banded = m.bands.size() > 1;
    auto in_band = [&](size_t k) { return banded ? " in band " + m.BandLabel(k) : std::string(); };
    // Tables of band k that add to its rates, with the calls they price.
    auto features = [&](size_t k, bool same_band) -> std::optional<PricedElsewhere> {
        const Band& band = m.bands[k];
        std::string where = same_band ? std::string() : in_band(k);
        for (const auto& c : band.output_conditions) {
            if (c.rates.Has(unit)) {
                return PricedElsewhere{"for outputs up to " + std::to_string(c.up_to) + " tokens" + where,
                                       "for longer outputs"};
            }
            if (c.batch_rates.Has(unit)) {
                return PricedElsewhere{
                    "for batch calls with outputs up to " + std::to_string(c.up_to) + " tokens" + where,
                    "for other calls"};
            }
            if (c.thinking_rates.Has(unit)) {
                return PricedElsewhere{
                    "for thinking calls with outputs up to " + std::to_string(c.up_to) + " tokens" + where,
                    "for other calls"};
            }
            for (const OutputCondition::WindowTable& t : c.window_rates) {
                TALLY_ASSERT(t.window < m.windows.size());
                if (t.rates.Has(unit)) {
                    return PricedElsewhere{"for outputs up to " + std::to_string(c.up_to) + " tokens in window " +
                                               Quote(m.windows[t.window].name) + where,
                                           "for other calls"};
                }
            }
        }
        if (band.batch_rates.Has(unit)) return PricedElsewhere{"for batch calls" + where, "for online calls"};
        if (band.thinking_rates.Has(unit)) {
            return PricedElsewhere{"for thinking calls" + where, "for calls without thinking"};
        }
        return std::nullopt;
    };
    if (auto own = features(b, /*same_band=*/true)) return own;
    for (size_t k = 0; k < m.bands.size(); ++k) {
        if (k != b && m.bands[k].rates.Has(unit)) return PricedElsewhere{"in band " + m.BandLabel(k), ""};
    }
    for (const Window& w : m.windows) {
        if (w.RatesFor(b).Has(unit)) return PricedElsewhere{"in window " + Quote(w.name), "outside it"};
    }
    for (const Window& w : m.windows) {
        for (size_t k = 0; k < w.band_rates.size(); ++k) {
            if (k != b && w.band_rates[k].Has(unit)) {
                return PricedElsewhere{"in window " + Quote(w.name) + " in band " + m.BandLabel(k), ""};
            }
        }
    }
    for (size_t k = 0; k < m.bands.size(); ++k) {
        if (k == b) continue;
        if (auto other = features(k, /*same_band=*/false)) {
            other->lacking.clear();  // all of band b lacks it
            return other;
        }
    }
    return std::nullopt;
}

class PlanParser {
   public:
    PlanParser(std::string_view file, UnitTable* units, Diagnostics* diagnostics)
        : r_(std::string(file), diagnostics), units_(units) {}

    // `published`: the plans already published, whose versions a version of
    // this file may extend (nullptr: only the versions of this file).
    std::optional<Plan> Parse(const YAML::Node& root, const Catalog* published) {
        Plan plan;
        plan.source_file = r_.file();
        if (!r_.ExpectMap(root, "a plan file")) return std::nullopt;
        r_.CheckKeys(root, "the plan", {"plan", "name", "versions"});
        // Plan names and version ids become URL path segments and file names.
        if (auto name = r_.PathSafeName(r_.Required(root, "plan", "the plan"), "plan name")) plan.name = *name;
        if (published != nullptr && !plan.name.empty()) published_ = published->FindPlan(plan.name);
        if (auto display = r_.Text(YamlReader::Optional(root, "name"), "name")) plan.display_name = *display;
        if (plan.display_name.empty()) plan.display_name = plan.name;
        YAML::Node versions = r_.Required(root, "versions", "the plan");
        if (versions.IsDefined()) {
            if (!versions.IsSequence() || versions.size() == 0) {
                r_.Error(versions, "versions must be a list with at least one version");
            } else {
                ListExtends(versions);
                for (size_t i = 0; i < versions.size(); ++i) {
                    if (cells_ > kMaxPlanCells) break;  // said once, at the model that crossed it
                    version_index_ = i;
                    ParseVersion(versions[i], &plan);
                }
                CheckVersionOrder(versions, plan);
            }
        }
        if (r_.errors() > 0) return std::nullopt;
        TALLY_ASSERT(!plan.versions.empty());
        return plan;
    }

   private:
    void ParseVersion(const YAML::Node& node, Plan* plan) {
        PlanVersion v;
        if (!r_.ExpectMap(node, "a version")) return;
        r_.CheckKeys(node, "a version",
                     {"version", "extends", "changes", "effective_from", "effective_until", "currency", "time_zone",
                      "rounding", "round_at", "finalize_grace", "rates_per", "tax_percent", "minimum_commitment",
                      "custom_units", "models", "tiers", "free_quotas"});
        std::string id;
        if (auto text = r_.PathSafeName(r_.Required(node, "version", "a version"), "version id")) id = *text;
        // A version that extends another starts as a copy of it and states
        // only what changes; its base is said to be missing once, and the
        // terms it would inherit are then not asked for.
        const YAML::Node extends = YamlReader::Optional(node, "extends");
        const bool extending = extends.IsDefined();
        base_published_ = false;
        const PlanVersion* base = extending ? FindBase(extends, id, *plan) : nullptr;
        if (base != nullptr) {
            v = *base;
            v.effective_until.reset();
            v.extends = base->id;
        }
        v.id = id;
        auto term = [&](const char* key) {
            return extending ? YamlReader::Optional(node, key) : r_.Required(node, key, "version " + v.id);
        };
        if (auto t = r_.Time(r_.Required(node, "effective_from", "version " + v.id), "effective_from")) {
            v.effective_from = *t;
            // A base listed before it in the file: CheckVersionOrder says so.
            if (base != nullptr && base_published_ && base->effective_from >= *t) {
                r_.Error(extends, "version " + v.id + " extends " + base->id + ", which takes effect at " +
                                      FormatRfc3339(base->effective_from) +
                                      ", not before it; a version extends one that takes effect earlier");
            }
        }
        YAML::Node until = YamlReader::Optional(node, "effective_until");
        if (auto t = r_.Time(until, "effective_until")) {
            v.effective_until = *t;
            if (*t <= v.effective_from) {
                r_.Error(until, "effective_until must be after effective_from in version " + v.id);
            }
        }
        YAML::Node currency = term("currency");
        if (auto code = r_.Text(currency, "currency")) {
            if (auto c = Currency::FromCode(*code)) {
                if (base != nullptr && !(*c == base->currency)) {
                    r_.Error(currency, "version " + v.id + " changes the currency of version " + base->id + " (" +
                                           std::string(base->currency.code()) + ") that it extends to " + *code +
                                           "; a plan keeps one currency (make a new plan instead)");
                }
                v.currency = *c;
            } else {
                r_.Error(currency, "currency " + Quote(*code) + " is not an ISO 4217 code Tally knows (CNY, USD, ...)");
            }
        }
        YAML::Node zone = term("time_zone");
        if (auto name = r_.Text(zone, "time_zone")) {
            v.zone_name = *name;
            v.zone = FindZone(*name);
            if (v.zone == nullptr) {
                r_.Error(zone, "time zone " + Quote(*name) + " is not an IANA zone name like Asia/Shanghai or UTC");
            }
        }
        YAML::Node rounding = YamlReader::Optional(node, "rounding");
        if (auto i = r_.Choice(rounding, "rounding", {"half_even", "half_up", "down", "up"})) {
            v.rounding = static_cast<RoundingMode>(*i);
        }
        if (auto i = r_.Choice(YamlReader::Optional(node, "round_at"), "round_at", {"line", "invoice"})) {
            v.rounding_place = static_cast<RoundingPlace>(*i);
        }
        if (auto grace = ParseFinalizeGrace(r_, YamlReader::Optional(node, "finalize_grace"))) {
            v.finalize_grace = *grace;
        }
        rates_per_ = base != nullptr ? base->rates_per : 1'000'000;
        YAML::Node per = YamlReader::Optional(node, "rates_per");
        if (auto n = r_.Integer(per, "rates_per", 1)) {
            if (IsPowerOfTen(*n)) {
                rates_per_ = *n;
            } else {
                r_.Error(per, "rates_per must be a power of ten such as 1000 or 1000000");
            }
        }
        v.rates_per = rates_per_;
        YAML::Node tax = YamlReader::Optional(node, "tax_percent");
        if (auto d = r_.NonNegative(tax, "tax_percent")) {
            if (*d > Decimal::FromInt(100)) r_.Error(tax, "tax_percent must be between 0 and 100");
            v.tax_percent = Percent(*d);
        }
        YAML::Node commitment = YamlReader::Optional(node, "minimum_commitment");
        if (auto d = r_.NonNegative(commitment, "minimum_commitment")) v.minimum_commitment = Amount(v.currency, *d);
        custom_units_ = v.custom_units;  // a base's, or none
        YAML::Node custom = YamlReader::Optional(node, "custom_units");
        if (custom.IsDefined()) custom_units_.clear();
        // Unit names become keys of the ledger's usage rows; "" is the calls record's.
        r_.IdentifierList(custom, "custom unit", &custom_units_);
        v.custom_units = custom_units_;
        version_zone_ = v.zone;
        version_zone_name_ = v.zone_name;
        version_from_ = v.effective_from;
        window_zone_warned_ = false;
        YAML::Node models = term("models");
        std::set<std::string> written;  // the models this version writes out in full
        if (models.IsDefined()) {
            if (!models.IsMap() || models.size() == 0) {
                r_.Error(models, "models must map each model name to its prices");
            } else {
                for (auto it = models.begin(); it != models.end(); ++it) {
                    ModelPricing m;
                    // Model names become keys of the ledger's usage rows.
                    auto model_name = r_.Identifier(it->first, "model name");
                    if (!model_name) continue;
                    m.name = *model_name;
                    const int errors_before = r_.errors();
                    ParseModel(it->second, &m);
                    cells_ += CellsOf(m);
                    if (cells_ > kMaxPlanCells) {
                        r_.ErrorAt(it->first.Mark(), "the plan has more than " + std::to_string(kMaxPlanCells) +
                                                         " price cells (model x band x output condition x window x "
                                                         "batch x thinking, over all its versions) by model " +
                                                         Quote(m.name) + "; split it into several plans");
                        break;
                    }
                    // A model with problems already has its diagnostics; its
                    // cells are checked once it parses.
                    if (r_.errors() == errors_before) CheckEveryCellPrices(it->first, it->second, m);
                    if (!written.insert(m.name).second) {
                        r_.ErrorAt(it->first.Mark(), "model " + Quote(m.name) + " is priced twice in version " + v.id);
                        continue;
                    }
                    PutModel(&v, std::move(m));  // replaces the base's entry whole, or adds one
                }
            }
        }
        YAML::Node tiers = YamlReader::Optional(node, "tiers");
        if (tiers.IsDefined()) {
            v.tiers.clear();
            if (!tiers.IsSequence()) {
                r_.Error(tiers, "tiers must be a list of tier rules");
            } else {
                for (const auto& t : tiers) ParseTierRule(t, &v);
            }
        }
        YAML::Node quotas = YamlReader::Optional(node, "free_quotas");
        if (quotas.IsDefined()) {
            v.free_quotas.clear();
            ParseFreeQuotas(quotas, r_, *units_, custom_units_, &v.free_quotas);
        }
        YAML::Node changes = YamlReader::Optional(node, "changes");
        if (changes.IsDefined() && !extending) {
            r_.Error(changes, "changes are made to the version this one extends; add extends: <an earlier version>");
        }
        if (base != nullptr) {
            if (changes.IsDefined()) ApplyChanges(changes, *base, written, tiers.IsDefined(), &v);
            CheckInherited(node, zone, *base, written, v);
        }
        plan->versions.push_back(std::move(v));
    }

    void CheckVersionOrder(const YAML::Node& versions, const Plan& plan) {
        for (size_t i = 1; i < plan.versions.size(); ++i) {
            const auto& prev = plan.versions[i - 1];
            const auto& cur = plan.versions[i];
            YAML::Node node = versions[i];
            if (cur.effective_from <= prev.effective_from) {
                r_.Error(node, "version " + cur.id + " takes effect at " + FormatRfc3339(cur.effective_from) +
                                   ", not after version " + prev.id + " (" + FormatRfc3339(prev.effective_from) +
                                   "); list versions in the order they take effect");
            }
            if (prev.effective_until && *prev.effective_until > cur.effective_from) {
                r_.Error(node, "version " + prev.id + " is still in force (effective_until " +
                                   FormatRfc3339(*prev.effective_until) + ") when version " + cur.id + " starts");
            }
            if (prev.currency.valid() && cur.currency.valid() && !(prev.currency == cur.currency)) {
                r_.Error(node, "version " + cur.id + " changes the currency from " + std::string(prev.currency.code()) +
                                   " to " + std::string(cur.currency.code()) +
                                   "; a plan keeps one currency (make a new plan instead)");
            }
            if (prev.id == cur.id) r_.Error(node, "two versions are both called " + Quote(cur.id));
        }
    }

    // Versions written as changes (docs/plan-format.md): the `version` and
    // `extends` text of every version of the file, in order, read before
    // any is parsed, to tell a later version and a cycle from an unknown one.
    void ListExtends(const YAML::Node& versions) {
        listed_.clear();
        for (const auto& v : versions) {
            const YAML::Node id = YamlReader::Optional(v, "version");
            const YAML::Node base = YamlReader::Optional(v, "extends");
            listed_.emplace_back(id.IsScalar() ? id.Scalar() : "", base.IsScalar() ? base.Scalar() : "");
        }
    }

    // The version `extends` names: one listed before this one in the file,
    // or else one already published; nullptr, said at `extends`, otherwise.
    const PlanVersion* FindBase(const YAML::Node& extends, const std::string& id, const Plan& plan) {
        auto name = r_.Text(extends, "extends");
        if (!name) return nullptr;
        if (*name == id) {
            r_.Error(extends, "version " + id + " extends itself; name the earlier version it changes");
            return nullptr;
        }
        for (const PlanVersion& v : plan.versions) {
            if (v.id == *name) return &v;
        }
        TALLY_ASSERT(version_index_ < listed_.size());
        for (size_t k = version_index_ + 1; k < listed_.size(); ++k) {
            if (listed_[k].first != *name) continue;
            // Follow the later version's chain: back to this one is a cycle.
            std::string chain = id + " -> " + *name;
            std::string at = *name;
            for (size_t steps = 0; steps < listed_.size(); ++steps) {
                auto next = std::find_if(listed_.begin(), listed_.end(), [&](const auto& l) { return l.first == at; });
                if (next == listed_.end() || next->second.empty()) break;
                chain += " -> " + next->second;
                if (next->second == id) {
                    r_.Error(extends, "versions extend each other in a cycle (" + chain +
                                          "); a version extends one listed before it");
                    return nullptr;
                }
                at = next->second;
            }
            r_.Error(extends, "version " + id + " extends " + Quote(*name) +
                                  ", which is listed after it; a version extends one listed (and taking effect) "
                                  "before it");
            return nullptr;
        }
        if (published_ != nullptr) {
            for (const PlanVersion& v : published_->versions) {
                if (v.id != *name) continue;
                base_published_ = true;
                return &v;
            }
        }
        std::string known;
        for (const PlanVersion& v : plan.versions) known += (known.empty() ? "" : ", ") + v.id;
        if (published_ != nullptr) {
            for (const PlanVersion& v : published_->versions) known += (known.empty() ? "" : ", ") + v.id;
        }
        r_.Error(extends,
                 "version " + id + " extends " + Quote(*name) + ", which is not a version listed before it" +
                     (published_ != nullptr ? " nor a published version of plan " + published_->name : std::string()) +
                     (known.empty() ? std::string(" (there is none)") : " (known: " + known + ")"));
        return nullptr;
    }

    // The models a change names (a list), each one the base has and this
    // version neither writes out nor has removed; `what` names the change.
    std::vector<std::string> ChangedModels(const YAML::Node& list, const PlanVersion& base,
                                           const std::set<std::string>& written, const PlanVersion& v,
                                           std::string_view what) {
        std::vector<std::string> names;
        if (!list.IsSequence() || list.size() == 0) {
            r_.Error(list, std::string(what) + " takes a list of model names, e.g. [deepseek-chat]");
            return names;
        }
        for (const auto& item : list) {
            auto name = r_.Text(item, "model name");
            if (!name) continue;
            if (base.FindModel(*name) == nullptr) {
                r_.Error(item, std::string(what) + " names model " + Quote(*name) + ", which version " + base.id +
                                   " does not price; add a new model under models: instead");
            } else if (written.count(*name) != 0) {
                r_.Error(item, std::string(what) + " names model " + Quote(*name) +
                                   ", which this version writes out under models: (that replaces it whole); "
                                   "change its prices there");
            } else if (v.FindModel(*name) == nullptr) {
                r_.Error(item, std::string(what) + " names model " + Quote(*name) +
                                   ", which an earlier change of this version removes");
            } else {
                names.push_back(*name);
            }
        }
        return names;
    }

    // `changes:` of a version that extends `base`, applied in order to the
    // models it inherits:
    //   {multiplier: "0.3", models: [...], units: [...]}  every rate (of
    //       those models, default all it inherits; of those units, default
    //       all) times the factor, exact: a product with more than 9
    //       decimal places is refused, never rounded;
    //   {remove: [...]}  the models are no longer priced;
    //   {free: [...]}    every rate of the models becomes 0.
    void ApplyChanges(const YAML::Node& changes, const PlanVersion& base, const std::set<std::string>& written,
                      bool own_tiers, PlanVersion* v) {
        if (!changes.IsSequence()) {
            r_.Error(changes, "changes must be a list, e.g. - {multiplier: \"0.3\", models: [hunyuan-pro]}");
            return;
        }
        for (const auto& c : changes) {
            if (!r_.ExpectMap(c, "a change")) continue;
            r_.CheckKeys(c, "a change", {"multiplier", "models", "units", "remove", "free"});
            const YAML::Node mult = YamlReader::Optional(c, "multiplier");
            const YAML::Node remove = YamlReader::Optional(c, "remove");
            const YAML::Node free = YamlReader::Optional(c, "free");
            const YAML::Node models = YamlReader::Optional(c, "models");
            const YAML::Node units = YamlReader::Optional(c, "units");
            const int kinds = (mult.IsDefined() ? 1 : 0) + (remove.IsDefined() ? 1 : 0) + (free.IsDefined() ? 1 : 0);
            if (kinds != 1) {
                r_.Error(c, std::string("a change is one of multiplier (with models and units), remove or free, not ") +
                                (kinds == 0 ? "none" : "several"));
                continue;
            }
            if (!mult.IsDefined() && (models.IsDefined() || units.IsDefined())) {
                r_.Error(models.IsDefined() ? models : units,
                         "models and units go with a multiplier; remove and free list the models themselves");
                continue;
            }
            if (remove.IsDefined()) {
                for (const auto& name : ChangedModels(remove, base, written, *v, "remove")) RemoveModel(v, name);
                if (v->models.empty()) r_.Error(remove, "version " + v->id + " removes every model it had");
                continue;
            }
            std::vector<std::string> names;
            if (free.IsDefined()) {
                names = ChangedModels(free, base, written, *v, "free");
            } else if (models.IsDefined()) {
                names = ChangedModels(models, base, written, *v, "a multiplier");
            } else {
                for (const ModelPricing& m : v->models) {
                    if (written.count(m.name) == 0) names.push_back(m.name);
                }
            }
            uint32_t mask = 0;  // 0: every unit
            std::vector<UnitId> unit_ids;
            ParseUnitList(units, &unit_ids);
            for (UnitId u : unit_ids) mask |= 1u << u;
            std::optional<Decimal> factor;
            if (mult.IsDefined()) {
                factor = r_.NonNegative(mult, "multiplier");
                if (!factor) continue;
            }
            for (const std::string& name : names) {
                ModelPricing& m = v->models[v->model_index.at(name)];
                if (!own_tiers) CheckTierRates(free.IsDefined() ? free : mult, *v, m.name, mask);
                if (free.IsDefined()) {
                    MakeFree(&m);
                } else if (auto bad = ScaleRates(&m, mask, Multiplier(*factor), kMaxRateDecimals)) {
                    const std::string& unit = units_->Name(bad->unit);
                    r_.Error(mult, "multiplier " + factor->ToString() + " makes the " + unit + " rate " +
                                       bad->price.ToString() + " of model " + Quote(m.name) +
                                       (bad->product ? " " + bad->product->ToString() + ", more than 9 decimal places"
                                                     : " too large or too precise to keep exactly") +
                                       "; a multiplied rate is never rounded: write the model's rates under models: "
                                       "instead");
                }
            }
        }
    }

    // A tier rule with rates of its own, inherited unchanged, keeps billing
    // a multiplied or freed model at those rates: refused at the change.
    void CheckTierRates(const YAML::Node& change, const PlanVersion& v, const std::string& model, uint32_t units) {
        for (const TierRule& rule : v.tiers) {
            const bool has_rate =
                std::any_of(rule.tiers.begin(), rule.tiers.end(), [](const Tier& t) { return t.rate.has_value(); });
            if (!has_rate) continue;
            for (UnitId u = 0; u < kMaxUnits; ++u) {
                if (units != 0 && (units & (1u << u)) == 0) continue;
                if (!rule.Applies(model, u)) continue;
                r_.Error(change, "tier rule " + Quote(rule.name) + " gives model " + Quote(model) +
                                     " rates of its own, which this change does not touch; write tiers: anew in "
                                     "this version");
                return;
            }
        }
    }

    // What a version inherits and does not write out again: its cells count
    // against kMaxPlanCells, and its windows without a time_zone of their
    // own move with a changed time_zone (a warning).
    void CheckInherited(const YAML::Node& node, const YAML::Node& zone, const PlanVersion& base,
                        const std::set<std::string>& written, const PlanVersion& v) {
        bool warned = false;
        for (const ModelPricing& m : v.models) {
            if (written.count(m.name) != 0) continue;
            cells_ += CellsOf(m);
            if (warned || !zone.IsDefined() || v.zone == nullptr || v.zone == base.zone) continue;
            for (const Window& w : m.windows) {
                if (w.zone != nullptr) continue;
                r_.Warn(zone, "version " + v.id + " reads window " + Quote(w.name) + " of model " + Quote(m.name) +
                                  ", inherited from version " + base.id + " without a time_zone of its own, in " +
                                  v.zone_name + " instead of " + base.zone_name +
                                  "; give the window its time_zone if its hours should stay");
                warned = true;
                break;
            }
        }
        if (cells_ > kMaxPlanCells) {
            r_.Error(node, "the plan has more than " + std::to_string(kMaxPlanCells) +
                               " price cells (model x band x output condition x window x batch x thinking, over all "
                               "its versions) by version " +
                               v.id + "; split it into several plans");
        }
    }

    // A window with no time_zone of its own is read in the version's zone:
    // when that is not UTC, a window copied from a sheet that states its
    // hours in UTC would shift, so say so (the plan stays usable).
    void WarnWindowZone(const YAML::Node& node, const Window& w) {
        if (!w.zone_name.empty() || version_zone_ == nullptr || window_zone_warned_) return;
        if (version_zone_name_ == "UTC" || version_zone_name_ == "Etc/UTC") return;
        window_zone_warned_ = true;  // once a version: its other windows read the same
        const auto offset = std::chrono::duration_cast<std::chrono::minutes>(
            version_zone_->get_info(std::chrono::time_point_cast<std::chrono::seconds>(version_from_)).offset);
        const int64_t minutes = offset.count();
        const int64_t magnitude = minutes < 0 ? -minutes : minutes;
        std::string shift = std::to_string(magnitude / 60) + (magnitude / 60 == 1 ? " hour" : " hours");
        if (magnitude % 60 != 0) shift += " " + std::to_string(magnitude % 60) + " minutes";
        r_.Warn(node, "window " + Quote(w.name) + " has no time_zone of its own, so its hours are read in the plan's " +
                          version_zone_name_ + " (UTC" + (minutes < 0 ? "-" : "+") + FormatOffset(magnitude) + " at " +
                          FormatRfc3339(version_from_) + "); a window from a sheet stated in UTC would shift by " +
                          shift +
                          ": write time_zone: UTC on the window if the sheet is in UTC, or the plan's zone to keep "
                          "this reading and silence this warning (the same holds for the version's other windows "
                          "without a time_zone)");
    }

    static std::string FormatOffset(int64_t minutes) {
        std::string hh = std::to_string(minutes / 60), mm = std::to_string(minutes % 60);
        return (hh.size() < 2 ? "0" : "") + hh + ":" + (mm.size() < 2 ? "0" : "") + mm;
    }

    std::optional<UnitId> Unit(const YAML::Node& node) {
        std::string name = node.Scalar();
        if (auto id = units_->Find(name)) {
            if (*id < kNumStdUnits || UnitTable::IsKnownExtra(name) ||
                std::find(custom_units_.begin(), custom_units_.end(), name) != custom_units_.end()) {
                return id;
            }
        }
        if (UnitTable::IsKnownExtra(name) ||
            std::find(custom_units_.begin(), custom_units_.end(), name) != custom_units_.end()) {
            auto id = units_->Intern(name);
            if (!id) {
                r_.Error(node, "too many different units across the plans (at most " + std::to_string(kMaxUnits) + ")");
            }
            return id;
        }
        r_.Error(node, "unknown unit " + Quote(name) +
                           "; token units are input, cached_input, cached_input_explicit, cache_write, "
                           "cache_write_1h, output, reasoning; other units are images, video_seconds, tool_calls, "
                           "cache_storage_token_hours, web_searches, audio_seconds, or one listed in custom_units");
        return std::nullopt;
    }

    std::optional<Rate> ParseRate(const YAML::Node& node, std::string_view what) {
        int64_t rate_per = rates_per_;
        if (node.IsMap()) {
            r_.CheckKeys(node, what, {"price", "per"});
            const YAML::Node per = YamlReader::Optional(node, "per");
            if (auto n = r_.Integer(per, "per", 1)) {
                if (!IsPowerOfTen(*n)) r_.Error(per, "per must be a power of ten such as 1, 1000 or 1000000");
                rate_per = *n;
            }
            // A fresh handle: assigning to a YAML::Node that shares `node`
            // would overwrite `node` itself (and lose its `per`).
            const YAML::Node price = r_.Required(node, "price", what);
            return RateOf(price, what, rate_per);
        }
        return RateOf(node, what, rate_per);
    }

    std::optional<Rate> RateOf(const YAML::Node& price, std::string_view what, int64_t rate_per) {
        auto d = r_.NonNegative(price, std::string(what));
        if (!d) return std::nullopt;
        if (d->fraction_digits() > kMaxRateDecimals) {
            r_.Error(price, std::string(what) + " " + d->ToString() + " has more than 9 decimal places");
            return std::nullopt;
        }
        return Rate(*d, rate_per);
    }

    void ParseRates(const YAML::Node& node, std::string_view what, RateTable* table, ModelPricing* m) {
        if (!node.IsDefined()) return;
        if (!node.IsMap()) {
            r_.Error(node,
                     std::string(what) + " must map unit names to prices, e.g. {input: \"0.80\", output: \"8.00\"}");
            return;
        }
        for (auto it = node.begin(); it != node.end(); ++it) {
            auto unit = Unit(it->first);
            if (!unit) continue;
            const YAML::Node value = it->second;  // a copy: it-> is a proxy that dies with the statement
            if (value.IsMap() && (value["of_input"].IsDefined() || value["same_as"].IsDefined())) {
                auto share = ParseShareOfInput(value, *unit, it->first.Scalar());
                if (!share) continue;
                table->of_input[*unit] = share;
                (*table)[*unit].reset();
            } else {
                auto rate = ParseRate(value, "the " + it->first.Scalar() + " rate");
                if (!rate) continue;
                (*table)[*unit] = rate;
                table->of_input[*unit].reset();
            }
            m->priced_units |= 1u << *unit;
            if (*unit == kUnitReasoning) m->prices_reasoning = true;
        }
    }

    // `cached_input: {of_input: "0.2"}` (20 % of the cell's input rate) or
    // `{same_as: input}` (the input rate itself, said explicitly).
    std::optional<Multiplier> ParseShareOfInput(const YAML::Node& node, UnitId unit, const std::string& name) {
        r_.CheckKeys(node, "the " + name + " rate", {"of_input", "same_as"});
        const YAML::Node share = YamlReader::Optional(node, "of_input");
        const YAML::Node same = YamlReader::Optional(node, "same_as");
        if (share.IsDefined() && same.IsDefined()) {
            r_.Error(node,
                     "the " + name + " rate takes of_input (a share of the input rate) or same_as: input, not both");
            return std::nullopt;
        }
        if (!MayBeShareOfInput(unit)) {
            std::string allowed;
            for (UnitId u = 0; u < kNumStdUnits; ++u) {
                if (MayBeShareOfInput(u)) allowed += (allowed.empty() ? "" : ", ") + units_->Name(u);
            }
            r_.Error(node, "the " + name + " rate cannot be a share of input; only the parts of the prompt (" +
                               allowed + ") may be priced with of_input or same_as");
            return std::nullopt;
        }
        if (same.IsDefined()) {
            auto text = r_.Text(same, "same_as");
            if (!text) return std::nullopt;
            if (*text != "input") {
                r_.Error(same, "same_as takes input (the rate of the cell's uncached input), not " + Quote(*text));
                return std::nullopt;
            }
            return Multiplier(Decimal::FromInt(1));
        }
        auto d = r_.NonNegative(share, "of_input");
        if (!d) return std::nullopt;
        if (d->fraction_digits() > kMaxRateDecimals) {
            r_.Error(share, "of_input " + d->ToString() + " has more than 9 decimal places");
            return std::nullopt;
        }
        return Multiplier(*d);
    }

    void ParseBand(const YAML::Node& node, ModelPricing* m, const std::string& where, bool shorthand) {
        Band band;
        if (!shorthand) {
            r_.CheckKeys(node, "a band",
                         {"from", "above", "up_to", "rates", "thinking_rates", "batch_rates", "window_rates",
                          "output_conditions"});
            // Read once the model's windows are known (ParseWindowRates).
            YAML::Node window_rates = YamlReader::Optional(node, "window_rates");
            if (window_rates.IsDefined()) pending_window_rates_.emplace_back(m->bands.size(), window_rates);
        }
        const YAML::Node up_to = YamlReader::Optional(node, "up_to");
        if (auto n = r_.Integer(up_to, "up_to", 1)) {
            band.up_to = *n;
        } else if (up_to.IsDefined()) {
            bound_unreadable_ = true;  // reported; checks of the bands' order would only cascade
        }
        YAML::Node rates =
            shorthand ? YamlReader::Optional(node, "rates") : r_.Required(node, "rates", "a band of " + where);
        ParseRates(rates, "rates", &band.rates, m);
        if (rates.IsDefined() && rates.IsMap()) {
            if (!band.rates[kUnitInput]) r_.Error(rates, "the rates of " + where + " have no input price");
            if (!band.rates[kUnitOutput]) r_.Error(rates, "the rates of " + where + " have no output price");
        }
        YAML::Node thinking = YamlReader::Optional(node, "thinking_rates");
        ParseRates(thinking, "thinking_rates", &band.thinking_rates, m);
        if (thinking.IsDefined()) m->prices_thinking = true;
        ParseRates(YamlReader::Optional(node, "batch_rates"), "batch_rates", &band.batch_rates, m);
        YAML::Node conditions = YamlReader::Optional(node, "output_conditions");
        if (conditions.IsDefined()) {
            if (!conditions.IsSequence()) {
                r_.Error(conditions, "output_conditions must be a list");
            } else if (conditions.size() > kMaxOutputConditions) {
                r_.Error(conditions, "a band of " + where + " has " + std::to_string(conditions.size()) +
                                         " output conditions, more than the " + std::to_string(kMaxOutputConditions) +
                                         " a band may have");
            } else {
                int64_t prev = -1;
                for (const auto& c : conditions) {
                    OutputCondition oc;
                    if (!r_.ExpectMap(c, "an output condition")) continue;
                    r_.CheckKeys(c, "an output condition",
                                 {"up_to", "reasoning_counts", "rates", "thinking_rates", "batch_rates",
                                  "window_rates"});
                    YAML::Node up = r_.Required(c, "up_to", "an output condition");
                    if (auto n = r_.Integer(up, "up_to", 0)) {
                        oc.up_to = *n;
                        if (oc.up_to <= prev) {
                            r_.Error(up, "output conditions must have increasing up_to values");
                        }
                        prev = oc.up_to;
                    }
                    if (auto b = r_.Bool(YamlReader::Optional(c, "reasoning_counts"), "reasoning_counts")) {
                        oc.reasoning_counts = *b;
                    }
                    // A condition states at least one of its tables; `rates` alone as before.
                    YAML::Node oc_thinking = YamlReader::Optional(c, "thinking_rates");
                    YAML::Node oc_batch = YamlReader::Optional(c, "batch_rates");
                    YAML::Node oc_window = YamlReader::Optional(c, "window_rates");
                    YAML::Node oc_rates = oc_thinking.IsDefined() || oc_batch.IsDefined() || oc_window.IsDefined()
                                              ? YamlReader::Optional(c, "rates")
                                              : r_.Required(c, "rates", "an output condition");
                    // Read once the model's windows are known (ParseWindowRates).
                    if (oc_window.IsDefined()) {
                        pending_condition_window_rates_.push_back(
                            {m->bands.size(), band.output_conditions.size(), oc_window});
                    }
                    ParseRates(oc_rates, "rates", &oc.rates, m);
                    ParseRates(oc_thinking, "thinking_rates", &oc.thinking_rates, m);
                    if (oc_thinking.IsDefined()) m->prices_thinking = true;
                    ParseRates(oc_batch, "batch_rates", &oc.batch_rates, m);
                    band.output_conditions.push_back(std::move(oc));
                }
            }
        }
        m->bands.push_back(std::move(band));
    }

    void ParseModel(const YAML::Node& node, ModelPricing* m) {
        std::string where = "model " + Quote(m->name);
        pending_window_rates_.clear();
        pending_condition_window_rates_.clear();
        bound_unreadable_ = false;
        window_nodes_.clear();
        if (!r_.ExpectMap(node, where)) return;
        r_.CheckKeys(node, where,
                     {"band_by", "band_pricing", "above_top_band", "rates", "thinking_rates", "batch_rates",
                      "output_conditions", "bands", "windows", "batch", "routed_calls"});
        if (auto i = r_.Choice(YamlReader::Optional(node, "band_by"), "band_by", {"prompt", "uncached_input"})) {
            m->band_by = static_cast<BandBy>(*i);
        }
        if (auto i =
                r_.Choice(YamlReader::Optional(node, "band_pricing"), "band_pricing", {"whole_call", "graduated"})) {
            m->band_mode = static_cast<BandMode>(*i);
        }
        if (auto i = r_.Choice(YamlReader::Optional(node, "above_top_band"), "above_top_band",
                               {"reject", "bill_at_top_band"})) {
            m->above_top = static_cast<AboveTop>(*i);
        }
        if (auto i = r_.Choice(YamlReader::Optional(node, "routed_calls"), "routed_calls",
                               {"bill_requested", "bill_served"})) {
            m->routed_calls = static_cast<RoutedCalls>(*i);
        }
        YAML::Node bands = YamlReader::Optional(node, "bands");
        YAML::Node rates = YamlReader::Optional(node, "rates");
        if (bands.IsDefined() == rates.IsDefined()) {
            r_.Error(node, where + " needs either 'rates' (one price for every call) or 'bands', not " +
                               (bands.IsDefined() ? "both" : "neither"));
            return;
        }
        if (rates.IsDefined()) {
            ParseBand(node, m, where, /*shorthand=*/true);
            m->bands.back().up_to = std::numeric_limits<int64_t>::max();
        } else if (!bands.IsSequence() || bands.size() == 0) {
            r_.Error(bands, "bands must be a list with at least one band");
        } else {
            if (bands.size() > kMaxBands) {
                r_.Error(bands, where + " has " + std::to_string(bands.size()) + " bands, more than the " +
                                    std::to_string(kMaxBands) + " a model may have");
                return;
            }
            for (size_t i = 0; i < bands.size(); ++i) {
                const YAML::Node& b = bands[i];
                if (!r_.ExpectMap(b, "a band")) continue;
                std::string band_where = where + " band " + std::to_string(i + 1);
                ParseBand(b, m, band_where, /*shorthand=*/false);
                CheckBandBounds(b, *m, i, bands.size());
            }
        }
        YAML::Node windows = YamlReader::Optional(node, "windows");
        if (windows.IsDefined()) {
            if (!windows.IsSequence()) {
                r_.Error(windows, "windows must be a list");
            } else if (windows.size() > kMaxWindows) {
                r_.Error(windows, where + " has " + std::to_string(windows.size()) + " windows, more than the " +
                                      std::to_string(kMaxWindows) + " a model may have");
            } else {
                for (const auto& w : windows) ParseWindow(w, m);
            }
        }
        ParseWindowRates(*m, where);
        YAML::Node batch = YamlReader::Optional(node, "batch");
        bool has_batch_rates = std::any_of(m->bands.begin(), m->bands.end(), [](const Band& b) {
            return !b.batch_rates.Empty() ||
                   std::any_of(b.output_conditions.begin(), b.output_conditions.end(),
                               [](const OutputCondition& c) { return !c.batch_rates.Empty(); });
        });
        if (batch.IsDefined()) {
            m->batch.priced = true;
            if (r_.ExpectMap(batch, "batch")) {
                r_.CheckKeys(batch, "batch", {"multiplier", "cache_hits"});
                YAML::Node mult = YamlReader::Optional(batch, "multiplier");
                if (auto d = r_.NonNegative(mult, "batch multiplier")) m->batch.multiplier = Multiplier(*d);
                if (auto i = r_.Choice(YamlReader::Optional(batch, "cache_hits"), "cache_hits",
                                       {"discounted", "full_cache_rate", "not_combined"})) {
                    m->batch.cache_hits = static_cast<BatchCache>(*i);
                }
                if (!mult.IsDefined() && !has_batch_rates) {
                    r_.Error(batch, where + " prices batch calls but gives neither a batch multiplier nor batch_rates");
                }
            }
        } else if (has_batch_rates) {
            m->batch.priced = true;
        }
        CheckBatchMeetsCache(node, *m, where);
        CheckNotCombinedHasNoBatchCachePrice(node, *m, where);
    }

    // Refuses a model that prices batch calls and cache hits (either kind)
    // without saying how the two meet: providers differ (Anthropic discounts
    // hits in batch, Volcano keeps their online rate, Alibaba gives batch
    // calls no cache price), so no default is safe. The diagnostic points at
    // `batch:`, or at the first batch_rates when the model has no `batch:`.
    void CheckBatchMeetsCache(const YAML::Node& node, const ModelPricing& m, const std::string& where) {
        if (!m.batch.priced) return;
        constexpr uint32_t kHits = (1u << kUnitCachedInput) | (1u << kUnitCachedInputExplicit);
        if ((m.priced_units & kHits) == 0) return;
        const YAML::Node batch = YamlReader::Optional(node, "batch");
        if (batch.IsDefined() && !batch.IsMap()) return;  // reported where batch is read
        if (YamlReader::Optional(batch, "cache_hits").IsDefined()) return;
        YAML::Node at = batch.IsDefined() ? batch : YamlReader::Optional(node, "batch_rates");
        const YAML::Node bands = YamlReader::Optional(node, "bands");
        if (!at.IsDefined() && bands.IsSequence()) {
            for (const auto& b : bands) {
                at = YamlReader::Optional(b, "batch_rates");
                if (at.IsDefined()) break;
            }
        }
        if (!at.IsDefined()) at = node;
        r_.Error(at, where + " prices batch calls and cache hits but does not say how they meet: write " +
                         (batch.IsDefined() ? std::string("cache_hits under batch") : "batch: {cache_hits: ...}") +
                         ", one of: discounted (a batch call's cache hits take the batch multiplier too, "
                         "as Anthropic's), full_cache_rate (they keep their online cache-hit rate, as Volcano's "
                         "tables), not_combined (a batch call gets no cache-hit price: its hits bill as input, "
                         "as Alibaba's)");
    }

    // Under `cache_hits: not_combined` a batch call gets no cache-hit price
    // (its hits bill as input), so a batch table's own cache-hit rate would
    // never be used: refused rather than silently ignored.
    void CheckNotCombinedHasNoBatchCachePrice(const YAML::Node& node, const ModelPricing& m, const std::string& where) {
        if (m.batch.cache_hits != BatchCache::kNotCombined) return;
        auto has_hits = [](const RateTable& t) { return t.Has(kUnitCachedInput) || t.Has(kUnitCachedInputExplicit); };
        bool found = false;
        for (const Band& b : m.bands) {
            found = found || has_hits(b.batch_rates);
            for (const OutputCondition& c : b.output_conditions) found = found || has_hits(c.batch_rates);
        }
        if (!found) return;
        YAML::Node at = YamlReader::Optional(YamlReader::Optional(node, "batch"), "cache_hits");
        if (!at.IsDefined()) at = node;
        r_.Error(at, where + " gives batch calls a cache-hit rate in batch_rates, but cache_hits: not_combined bills a "
                             "batch call's cache hits as input, so that rate would never be used: remove it, or "
                             "choose discounted or full_cache_rate");
    }

    // Refuses a model where a call could land in a cell with no rate for a
    // unit the model prices: the event would be consumed and then fail to
    // price. A unit that is free somewhere is written there with a rate of 0.
    // The diagnostic points at the band that lacks the unit, or at the
    // model's name when it has no bands list.
    void CheckEveryCellPrices(const YAML::Node& name, const YAML::Node& node, const ModelPricing& m) {
        TALLY_ASSERT(!m.bands.empty());
        YAML::Node bands = YamlReader::Optional(node, "bands");
        TALLY_ASSERT(!bands.IsDefined() || bands.size() == m.bands.size());
        for (size_t b = 0; b < m.bands.size(); ++b) {
            const uint32_t unpriced = UnpricedUnits(m, b);
            for (UnitId u = 0; u < kMaxUnits; ++u) {
                if ((unpriced & (1u << u)) == 0) continue;
                const std::string& unit = units_->Name(u);
                auto elsewhere = FindWherePriced(m, b, u);
                TALLY_ASSERT(elsewhere.has_value());  // priced_units has u: some table prices it
                std::string lacking = elsewhere->lacking;
                if (m.bands.size() > 1) {
                    lacking += (lacking.empty() ? "" : " ") + std::string("in band ") + m.BandLabel(b);
                }
                std::string message = "model " + Quote(m.name) + " prices " + unit + " " + elsewhere->where +
                                      " but not " + lacking + " (write " + unit + ": 0 " +
                                      (bands.IsDefined() ? "there" : "in its rates") + " if it is free)";
                if (bands.IsDefined()) {
                    r_.Error(bands[b], std::move(message));
                } else {
                    r_.ErrorAt(name.Mark(), std::move(message));
                }
            }
        }
        try {
            CheckSharesOfInput(name, node, m);
        } catch (const OverflowError&) {
            r_.ErrorAt(name.Mark(), "model " + Quote(m.name) +
                                        ": a share of input (of_input) times its cell's input rate is too large to "
                                        "be a rate; check the shares");
        }
        CheckCellRatesFit(name, m);
        WarnIfNoCachePrice(name, m);
    }

    // Every cell's rate of every unit the model prices must fit a rate: a
    // huge share of input or multiplier (window, batch) times a rate may not
    // (Decimal throws OverflowError), and a plan that validates must price
    // every call without an overflow of its rates. Said once per model.
    void CheckCellRatesFit(const YAML::Node& name, const ModelPricing& m) {
        if (r_.errors() > 0) return;  // the cells are not whole yet
        for (size_t b = 0; b < m.bands.size(); ++b) {
            const size_t conditions = m.bands[b].output_conditions.size();
            for (size_t c = 0; c <= conditions; ++c) {
                for (size_t w = 0; w <= m.windows.size(); ++w) {
                    for (int batch = 0; batch <= (m.batch.priced ? 1 : 0); ++batch) {
                        for (int thinking = 0; thinking <= (m.prices_thinking ? 1 : 0); ++thinking) {
                            CellKey key;
                            CellPlace place;
                            key.band = static_cast<uint8_t>(b);
                            place.band = b;
                            if (c < conditions) key.condition = static_cast<uint8_t>(c), place.condition = c;
                            if (w < m.windows.size()) key.window = static_cast<uint8_t>(w), place.window = w;
                            key.flags = static_cast<uint8_t>((batch != 0 ? kFlagBatch : 0) |
                                                             (thinking != 0 ? kFlagThinking : 0));
                            place.batch = batch != 0;
                            place.thinking = thinking != 0;
                            for (int i = 0; i < units_->size(); ++i) {
                                const auto u = static_cast<UnitId>(i);
                                if ((m.priced_units & (1u << u)) == 0) continue;
                                try {
                                    (void)CellRate(m, key, u);
                                } catch (const OverflowError&) {
                                    r_.ErrorAt(name.Mark(),
                                               "model " + Quote(m.name) + ": the " + units_->Name(u) + " rate of " +
                                                   CellText(m, place) +
                                                   " is too large to be a rate (a share of input or a window or "
                                                   "batch multiplier makes it so); check those numbers");
                                    return;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // A share of input resolves, in each cell, to share x the cell's stated
    // input rate: exact (both have at most 9 decimal places), and refused
    // when the product needs more than the 9 places a written rate may have.
    // Said once per band and unit, at the band (or the model's name).
    void CheckSharesOfInput(const YAML::Node& name, const YAML::Node& node, const ModelPricing& m) {
        YAML::Node bands = YamlReader::Optional(node, "bands");
        for (size_t b = 0; b < m.bands.size(); ++b) {
            const Band& band = m.bands[b];
            uint32_t reported = 0;
            for (size_t c = 0; c <= band.output_conditions.size(); ++c) {
                for (size_t w = 0; w <= m.windows.size(); ++w) {
                    for (int batch = 0; batch <= (m.batch.priced ? 1 : 0); ++batch) {
                        for (int thinking = 0; thinking <= (m.prices_thinking ? 1 : 0); ++thinking) {
                            CellPlace cell;
                            cell.band = b;
                            if (c < band.output_conditions.size()) cell.condition = c;
                            if (w < m.windows.size()) cell.window = w;
                            cell.batch = batch != 0;
                            cell.thinking = thinking != 0;
                            for (UnitId u = 0; u < kNumStdUnits; ++u) {
                                // A unit that only falls back to a share is checked as that unit.
                                if (!MayBeShareOfInput(u) || (m.priced_units & (1u << u)) == 0) continue;
                                if ((reported & (1u << u)) != 0) continue;
                                auto stated = FindStatedRate(m, cell, u);
                                if (!stated || !stated->of_input) continue;
                                if (stated->rate.price().fraction_digits() <= kMaxRateDecimals) continue;
                                reported |= 1u << u;
                                std::string message = "model " + Quote(m.name) + " prices " + units_->Name(u) + " at " +
                                                      stated->of_input->ToString() + " of input, which is " +
                                                      stated->rate.price().ToString() + " for the input rate " +
                                                      stated->input->price().ToString() + " of " + CellText(m, cell) +
                                                      ": more than 9 decimal places; write the rate itself there";
                                if (bands.IsDefined()) {
                                    r_.Error(bands[b], std::move(message));
                                } else {
                                    r_.ErrorAt(name.Mark(), std::move(message));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // "band 0-32000, outputs up to 200 tokens, window 'night', batch, thinking"
    static std::string CellText(const ModelPricing& m, const CellPlace& cell) {
        std::string text = m.bands.size() > 1 ? "band " + m.BandLabel(cell.band) : "the model's calls";
        if (cell.condition) {
            text += ", outputs up to " + std::to_string(m.bands[cell.band].output_conditions[*cell.condition].up_to) +
                    " tokens";
        }
        if (cell.window) text += ", window " + Quote(m.windows[*cell.window].name);
        if (cell.batch) text += ", batch";
        if (cell.thinking) text += ", thinking";
        return text;
    }

    // A model whose events may carry cache hits but that prices none bills
    // them at the input rate; say so, unless the plan says it
    // (`cached_input: {same_as: input}`).
    // Units a model's events can carry whose fallback silently changes the
    // bill: cache hits at the full input rate; and, on a model with an
    // explicit cache (it prices cached_input_explicit), the cache's creation
    // at the input rate (Alibaba's is 125 % of it). Cache writes of a model
    // without an explicit cache are not warned about: sheets that list no
    // write price (OpenAI, DeepSeek) bill them as input, which is the fallback.
    void WarnIfNoCachePrice(const YAML::Node& name, const ModelPricing& m) {
        auto prices = [&](UnitId u) { return (m.priced_units & (1u << u)) != 0; };
        if (!prices(kUnitCachedInput)) {
            r_.Warn(name, "model " + Quote(m.name) +
                              " has no cached_input price: cache hits bill at the input rate; "
                              "write cached_input: {same_as: input} if that is meant");
        }
        if (prices(kUnitCachedInputExplicit) && !prices(kUnitCacheWrite)) {
            r_.Warn(name, "model " + Quote(m.name) +
                              " prices explicit cache hits but has no cache_write price: creating an explicit cache "
                              "bills at the input rate; write cache_write: {same_as: input} if that is meant");
        }
    }

    void CheckBandBounds(const YAML::Node& node, const ModelPricing& m, size_t i, size_t count) {
        TALLY_ASSERT(!m.bands.empty());
        const Band& band = m.bands.back();
        // The band parsed before this one; a malformed band in between was
        // reported and skipped, so compare with what was actually parsed.
        const bool has_previous = m.bands.size() >= 2;
        YAML::Node up = YamlReader::Optional(node, "up_to");
        if (!up.IsDefined() && i + 1 < count) {
            r_.Error(node, "band " + std::to_string(i + 1) + " of model " + Quote(m.name) +
                               " has no up_to; only the last band may be open-ended");
        }
        int64_t expected_above = has_previous ? m.bands[m.bands.size() - 2].up_to : -1;
        YAML::Node from = YamlReader::Optional(node, "from");
        YAML::Node above = YamlReader::Optional(node, "above");
        if (from.IsDefined() && above.IsDefined()) {
            r_.Error(node, "a band takes 'from' (inclusive) or 'above' (exclusive), not both");
            return;
        }
        std::optional<int64_t> starts_above;
        if (auto f = r_.Integer(from, "from", 0)) starts_above = *f - 1;
        if (auto a = r_.Integer(above, "above", 0)) starts_above = *a;
        // A bound already reported as unreadable: comparing with it would
        // only report the same mistake again, without saying so.
        if (bound_unreadable_) return;
        if (starts_above) {
            std::string prev_end = has_previous ? std::to_string(expected_above) : "0";
            if (*starts_above > expected_above) {
                r_.Error(from.IsDefined() ? from : above,
                         "gap between bands " + prev_end + " and " + std::to_string(*starts_above) + " of model " +
                             Quote(m.name) + ": calls with " + std::to_string(expected_above + 1) + " to " +
                             std::to_string(*starts_above) + " tokens would have no price");
            } else if (*starts_above < expected_above) {
                r_.Error(from.IsDefined() ? from : above,
                         "bands overlap in model " + Quote(m.name) + ": band " + std::to_string(i + 1) + " starts at " +
                             std::to_string(*starts_above + 1) + " but the band before it ends at " + prev_end);
            }
        }
        if (has_previous && band.up_to <= expected_above) {
            r_.Error(up, "band " + std::to_string(i + 1) + " of model " + Quote(m.name) + " ends at " +
                             std::to_string(band.up_to) + ", not above the band before it (" +
                             std::to_string(expected_above) + "); list bands from the smallest up");
        }
    }

    void ParseWindow(const YAML::Node& node, ModelPricing* m) {
        Window w;
        if (!r_.ExpectMap(node, "a time window")) return;
        r_.CheckKeys(node, "a time window", {"name", "time_zone", "start", "end", "weekdays", "multiplier", "rates"});
        if (auto n = r_.Text(r_.Required(node, "name", "a time window"), "name")) w.name = *n;
        YAML::Node zone = YamlReader::Optional(node, "time_zone");
        w.zone_name = "";
        if (auto z = r_.Text(zone, "time_zone")) {
            w.zone_name = *z;
            w.zone = FindZone(*z);
            if (w.zone == nullptr) r_.Error(zone, "time zone " + Quote(*z) + " is not an IANA zone name");
        }
        YAML::Node start = r_.Required(node, "start", "window " + Quote(w.name));
        YAML::Node end = r_.Required(node, "end", "window " + Quote(w.name));
        if (auto s = r_.Text(start, "start")) {
            if (auto mins = ParseClockMinutes(*s); mins && *mins < 1440) {
                w.start_minute = *mins;
            } else {
                r_.Error(start, "window start " + Quote(*s) + " is not a time of day like 08:30");
            }
        }
        if (auto e = r_.Text(end, "end")) {
            if (auto mins = ParseClockMinutes(*e)) {
                w.end_minute = *mins % 1440;
            } else {
                r_.Error(end, "window end " + Quote(*e) + " is not a time of day like 00:30 (24:00 is allowed)");
            }
        }
        if (start.IsDefined() && end.IsDefined() && w.start_minute == w.end_minute) {
            r_.Error(end,
                     "window " + Quote(w.name) + " starts and ends at the same time; a window covers part of a day");
        }
        YAML::Node days = YamlReader::Optional(node, "weekdays");
        if (days.IsDefined()) {
            if (!days.IsSequence() || days.size() == 0) {
                r_.Error(days, "weekdays must be a list such as [mon, tue, wed, thu, fri]");
            } else {
                w.weekdays = 0;
                for (const auto& d : days) {
                    if (auto i = r_.Choice(d, "weekday", {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})) {
                        w.weekdays = static_cast<uint8_t>(w.weekdays | (1u << *i));
                    }
                }
            }
        }
        YAML::Node mult = YamlReader::Optional(node, "multiplier");
        YAML::Node rates = YamlReader::Optional(node, "rates");
        const bool banded = m->bands.size() > 1;
        if (mult.IsDefined() && rates.IsDefined()) {
            r_.Error(node, "window " + Quote(w.name) + " needs either a multiplier or its own rates, not both");
        } else if (!mult.IsDefined() && !rates.IsDefined() && !banded) {
            r_.Error(node, "window " + Quote(w.name) + " needs either a multiplier or its own rates, not neither");
        }
        // Neither, on a banded model: each band gives the window's rates (ParseWindowRates checks).
        if (rates.IsDefined() && banded) {
            r_.Error(rates, "window " + Quote(w.name) + " gives one rates table, but model " + Quote(m->name) +
                                " has " + std::to_string(m->bands.size()) +
                                " bands and a window's table would override all of them; give each band its rates "
                                "for the window (window_rates: {" +
                                w.name + ": {...}} in every band) or give the window a multiplier");
        }
        if (auto d = r_.NonNegative(mult, "window multiplier")) w.multiplier = Multiplier(*d);
        ParseRates(rates, "window rates", &w.rates, m);
        window_nodes_.push_back(node);
        WarnWindowZone(node, w);
        for (const auto& other : m->windows) {
            if (other.name == w.name) r_.Error(node, "two windows are both called " + Quote(w.name));
        }
        m->windows.push_back(std::move(w));
    }

    // The index of the window a `window_rates` key names; reported when none.
    std::optional<size_t> NamedWindow(const ModelPricing& m, const YAML::Node& key, const std::string& where) {
        const std::string name = key.IsScalar() ? key.Scalar() : std::string();
        for (size_t w = 0; w < m.windows.size(); ++w) {
            if (m.windows[w].name == name) return w;
        }
        r_.Error(key, "window_rates names " + Quote(name) + ", which is not a window of " + where);
        return std::nullopt;
    }

    // The `window_rates: {<window>: {...}}` of each band (pending_window_rates_):
    // a banded model's window without a multiplier takes its rates from every
    // band; one with a multiplier or its own rates takes none.
    void ParseWindowRates(ModelPricing& m, const std::string& where) {
        TALLY_ASSERT(window_nodes_.size() == m.windows.size());
        std::vector<std::vector<bool>> given(m.windows.size(), std::vector<bool>(m.bands.size(), false));
        for (const auto& [band, node] : pending_window_rates_) {
            TALLY_ASSERT(band < m.bands.size());
            if (!node.IsMap()) {
                r_.Error(node, "window_rates must map window names to rate tables, e.g. {night: {input: \"0.4\"}}");
                continue;
            }
            for (auto it = node.begin(); it != node.end(); ++it) {
                const std::optional<size_t> index = NamedWindow(m, it->first, where);
                if (!index) continue;
                const size_t w = *index;
                const std::string& name = m.windows[w].name;
                Window* found = &m.windows[w];
                if (found->multiplier || !found->rates.Empty() ||
                    YamlReader::Optional(window_nodes_[w], "rates").IsDefined()) {
                    r_.Error(it->first, "window " + Quote(name) + " of " + where +
                                            " has its own multiplier or rates; window_rates in a band are for a "
                                            "window that has neither");
                    continue;
                }
                if (found->band_rates.empty()) found->band_rates.resize(m.bands.size());
                given[w][band] = true;
                ParseRates(it->second, "window_rates", &found->band_rates[band], &m);
            }
        }
        // A condition's window_rates may name any window of the model: its
        // table comes before the band's table for the window (or the
        // window's own rates, or its multiplier) for the calls that meet it.
        for (const auto& p : pending_condition_window_rates_) {
            TALLY_ASSERT(p.band < m.bands.size());
            TALLY_ASSERT(p.condition < m.bands[p.band].output_conditions.size());
            OutputCondition& oc = m.bands[p.band].output_conditions[p.condition];
            if (!p.node.IsMap()) {
                r_.Error(p.node,
                         "window_rates must map window names to rate tables, e.g. {night: {output: \"1.00\"}}");
                continue;
            }
            for (auto it = p.node.begin(); it != p.node.end(); ++it) {
                const std::optional<size_t> w = NamedWindow(m, it->first, where);
                if (!w) continue;
                // A name given twice was refused when the file was read (LoadDocument).
                oc.window_rates.push_back({*w, RateTable{}});
                ParseRates(it->second, "window_rates", &oc.window_rates.back().rates, &m);
            }
        }
        if (m.bands.size() <= 1 || bound_unreadable_) return;
        for (size_t w = 0; w < m.windows.size(); ++w) {
            const Window& window = m.windows[w];
            const YAML::Node& node = window_nodes_[w];
            if (window.multiplier || YamlReader::Optional(node, "multiplier").IsDefined() ||
                YamlReader::Optional(node, "rates").IsDefined()) {
                continue;
            }
            for (size_t b = 0; b < m.bands.size(); ++b) {
                if (given[w][b]) continue;
                r_.Error(node, "window " + Quote(window.name) + " of " + where + " has no multiplier and band " +
                                   m.BandLabel(b) + " gives no rates for it; write window_rates: {" + window.name +
                                   ": {...}} in every band, or give the window a multiplier");
                break;
            }
        }
    }

    void ParseTierRule(const YAML::Node& node, PlanVersion* v) {
        TierRule rule;
        if (!r_.ExpectMap(node, "a tier rule")) return;
        r_.CheckKeys(node, "a tier rule", {"name", "models", "units", "aggregate", "mode", "tiers"});
        if (auto n = r_.Text(r_.Required(node, "name", "a tier rule"), "name")) rule.name = *n;
        r_.TextList(YamlReader::Optional(node, "models"), "models", &rule.models);
        ParseUnitList(YamlReader::Optional(node, "units"), &rule.units);
        if (auto i =
                r_.Choice(YamlReader::Optional(node, "aggregate"), "aggregate", {"per_model_and_unit", "per_model"})) {
            rule.aggregate = static_cast<TierAggregate>(*i);
        }
        if (auto i = r_.Choice(r_.Required(node, "mode", "tier rule " + Quote(rule.name)), "mode",
                               {"graduated", "volume"})) {
            rule.mode = static_cast<TierMode>(*i);
        }
        YAML::Node tiers = r_.Required(node, "tiers", "tier rule " + Quote(rule.name));
        if (tiers.IsDefined()) {
            if (!tiers.IsSequence() || tiers.size() == 0) {
                r_.Error(tiers, "tiers must be a list with at least one tier");
            } else {
                int64_t prev = 0;
                for (size_t i = 0; i < tiers.size(); ++i) {
                    const YAML::Node& t = tiers[i];
                    Tier tier;
                    if (!r_.ExpectMap(t, "a tier")) continue;
                    r_.CheckKeys(t, "a tier", {"up_to", "multiplier", "rate"});
                    YAML::Node up = YamlReader::Optional(t, "up_to");
                    if (auto n = r_.Integer(up, "up_to", 1)) {
                        tier.up_to = *n;
                        if (tier.up_to <= prev) r_.Error(up, "tier bounds must increase from one tier to the next");
                        prev = tier.up_to;
                    } else if (!up.IsDefined() && i + 1 < tiers.size()) {
                        r_.Error(t, "only the last tier may be open-ended (no up_to)");
                    }
                    if (up.IsDefined() && i + 1 == tiers.size()) {
                        r_.Error(up, "the last tier must be open-ended (no up_to), so that every quantity has a price");
                    }
                    YAML::Node mult = YamlReader::Optional(t, "multiplier");
                    YAML::Node rate = YamlReader::Optional(t, "rate");
                    if (mult.IsDefined() == rate.IsDefined()) {
                        r_.Error(t, "a tier needs either a multiplier or a rate, not " +
                                        std::string(mult.IsDefined() ? "both" : "neither"));
                    }
                    if (auto d = r_.NonNegative(mult, "tier multiplier")) tier.multiplier = Multiplier(*d);
                    if (rate.IsDefined()) {
                        tier.rate = ParseRate(rate, "the tier rate");
                        if (rule.aggregate == TierAggregate::kPerModel) {
                            r_.Error(rate,
                                     "a tier rate needs aggregate: per_model_and_unit; a per_model tier mixes "
                                     "units of different prices, so it takes multipliers");
                        }
                    }
                    rule.tiers.push_back(tier);
                }
            }
        }
        v->tiers.push_back(std::move(rule));
    }

    void ParseUnitList(const YAML::Node& node, std::vector<UnitId>* out) {
        if (!node.IsDefined()) return;
        if (!node.IsSequence()) {
            r_.Error(node, "units must be a list of unit names");
            return;
        }
        for (const auto& n : node) {
            if (!n.IsScalar()) {
                r_.Error(n, "a unit must be a name");
            } else if (auto id = Unit(n)) {
                out->push_back(*id);
            }
        }
    }

   public:
    // Shared with the subscription parser through ParseFreeQuotas below.
    static void ParseFreeQuotas(const YAML::Node& node, YamlReader& r, UnitTable& units,
                                const std::vector<std::string>& custom_units, std::vector<FreeQuota>* out);

   private:
    YamlReader r_;
    UnitTable* units_;
    int64_t rates_per_ = 1'000'000;
    std::vector<std::string> custom_units_;
    // The model being parsed: its bands' window_rates (band index, node),
    // read once its windows are, and its windows' nodes.
    std::vector<std::pair<size_t, YAML::Node>> pending_window_rates_;
    bool bound_unreadable_ = false;  // a band of the model being read has an up_to that was refused
    struct PendingConditionWindowRates {
        size_t band = 0;
        size_t condition = 0;
        YAML::Node node;
    };
    std::vector<PendingConditionWindowRates> pending_condition_window_rates_;
    std::vector<YAML::Node> window_nodes_;
    size_t cells_ = 0;                 // price cells of the versions parsed so far (kMaxPlanCells)
    const Plan* published_ = nullptr;  // the published plan of this name, for `extends`
    std::vector<std::pair<std::string, std::string>> listed_;  // (version, extends) as written (ListExtends)
    size_t version_index_ = 0;                                 // of the version being parsed
    bool base_published_ = false;                              // its base is a published version
    // The version being parsed, for its windows (WarnWindowZone).
    const date::time_zone* version_zone_ = nullptr;
    std::string version_zone_name_;
    Instant version_from_{};
    bool window_zone_warned_ = false;  // WarnWindowZone has spoken for this version
};

void PlanParser::ParseFreeQuotas(const YAML::Node& node, YamlReader& r, UnitTable& units,
                                 const std::vector<std::string>& custom_units, std::vector<FreeQuota>* out) {
    if (!node.IsSequence()) {
        r.Error(node, "free_quotas must be a list");
        return;
    }
    for (const auto& q : node) {
        FreeQuota quota;
        if (!r.ExpectMap(q, "a free quota")) continue;
        r.CheckKeys(q, "a free quota", {"name", "models", "units", "tokens"});
        if (auto n = r.Text(r.Required(q, "name", "a free quota"), "name")) quota.name = *n;
        r.TextList(YamlReader::Optional(q, "models"), "models", &quota.models);
        YAML::Node unit_list = YamlReader::Optional(q, "units");
        if (unit_list.IsDefined()) {
            if (!unit_list.IsSequence()) {
                r.Error(unit_list, "units must be a list");
            } else {
                for (const auto& u : unit_list) {
                    std::string name = u.IsScalar() ? u.Scalar() : "";
                    auto id = units.Find(name);
                    bool declared = UnitTable::IsKnownExtra(name) ||
                                    std::find(custom_units.begin(), custom_units.end(), name) != custom_units.end();
                    if (!id && declared) id = units.Intern(name);
                    if (!id) {
                        r.Error(u, "unknown unit '" + name + "' in a free quota");
                    } else {
                        quota.units.push_back(*id);
                    }
                }
            }
        }
        if (auto n = r.Integer(r.Required(q, "tokens", "free quota '" + quota.name + "'"), "tokens", 0)) {
            quota.tokens = *n;
        }
        out->push_back(std::move(quota));
    }
}

}  // namespace

namespace internal {
std::optional<std::chrono::seconds> ParseFinalizeGrace(YamlReader& r, const YAML::Node& node) {
    auto text = r.Text(node, "finalize_grace");
    if (!text) return std::nullopt;
    auto grace = ParseDuration(*text);
    if (!grace) {
        r.Error(node, "finalize_grace " + Quote(*text) +
                          " is not a duration like 24h, 36h or 2d (a whole number of s, m, h or d)");
        return std::nullopt;
    }
    if (*grace > kMaxFinalizeGrace) {
        r.Error(node, "finalize_grace " + Quote(*text) + " is longer than " +
                          std::to_string(std::chrono::duration_cast<std::chrono::days>(kMaxFinalizeGrace).count()) +
                          "d; a draft would stay open past the end of the next period");
        return std::nullopt;
    }
    return grace;
}

void ParseFreeQuotaList(const YAML::Node& node, YamlReader& r, UnitTable& units, std::vector<FreeQuota>* out) {
    PlanParser::ParseFreeQuotas(node, r, units, {}, out);
}
}  // namespace internal

std::optional<Plan> ParsePlan(std::string_view text, std::string_view file_name, UnitTable* units,
                              Diagnostics* diagnostics) {
    return ParsePlan(text, file_name, units, diagnostics, nullptr);
}

std::optional<Plan> ParsePlan(std::string_view text, std::string_view file_name, UnitTable* units,
                              Diagnostics* diagnostics, const Catalog* published) {
    TALLY_ASSERT(units != nullptr);
    TALLY_ASSERT(diagnostics != nullptr);
    std::optional<YAML::Node> root = internal::LoadDocument(text, file_name, diagnostics);
    if (!root) return std::nullopt;
    // A copy of the unit table: units interned by a plan that fails are not kept.
    UnitTable scratch = *units;
    PlanParser parser(file_name, &scratch, diagnostics);
    std::optional<Plan> plan;
    try {
        plan = parser.Parse(*root, published);
    } catch (const internal::TooManyProblems&) {
        return std::nullopt;
    } catch (const YAML::Exception& e) {
        diagnostics->push_back(
            {std::string(file_name), e.mark.line + 1, e.mark.column + 1, "unexpected structure: " + e.msg});
        return std::nullopt;
    }
    if (plan) *units = scratch;
    return plan;
}

}  // namespace tally
