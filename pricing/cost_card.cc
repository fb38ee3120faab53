#include "pricing/cost_card.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <set>

#include "base/assert.h"
#include "pricing/internal/yaml_reader.h"

namespace tally {

namespace {

using internal::YamlReader;

constexpr int kMaxRateDecimals = 9;  // as plans (plan_yaml.cc)

// The standard units by id (plan.h's StdUnit), for the fallbacks; checked
// against UnitTable's names by the tests (CostCatalog fallbacks).
constexpr std::array<std::string_view, kNumStdUnits> kStdUnitNames = {
    "input", "cached_input", "cached_input_explicit", "cache_write", "cache_write_1h", "output", "reasoning"};

std::optional<UnitId> StdUnitId(std::string_view name) {
    for (size_t i = 0; i < kStdUnitNames.size(); ++i) {
        if (kStdUnitNames[i] == name) return static_cast<UnitId>(i);
    }
    return std::nullopt;
}

bool IsPowerOfTen(int64_t n) {
    if (n <= 0) return false;
    while (n % 10 == 0) n /= 10;
    return n == 1;
}

std::string Quote(std::string_view s) {
    return "'" + std::string(s) + "'";
}

class CostCardParser {
   public:
    CostCardParser(std::string_view file, Diagnostics* diagnostics) : r_(std::string(file), diagnostics) {}

    std::optional<CostCard> Parse(const YAML::Node& root) {
        CostCard card;
        card.source_file = r_.file();
        if (!r_.ExpectMap(root, "a cost card file")) return std::nullopt;
        r_.CheckKeys(root, "the cost card", {"cost_card", "name", "versions"});
        if (auto name = r_.Identifier(r_.Required(root, "cost_card", "the cost card"), "cost card name")) {
            card.name = *name;
        }
        if (auto display = r_.PrintableText(YamlReader::Optional(root, "name"), "name")) card.display_name = *display;
        if (card.display_name.empty()) card.display_name = card.name;
        YAML::Node versions = r_.Required(root, "versions", "the cost card");
        if (versions.IsDefined()) {
            if (!versions.IsSequence() || versions.size() == 0) {
                r_.Error(versions, "versions must be a list with at least one version");
            } else {
                for (const auto& v : versions) ParseVersion(v, &card);
                CheckVersionOrder(versions, card);
            }
        }
        if (r_.errors() > 0) return std::nullopt;
        TALLY_ASSERT(!card.versions.empty());
        return card;
    }

   private:
    void ParseVersion(const YAML::Node& node, CostCard* card) {
        CostCardVersion v;
        if (!r_.ExpectMap(node, "a version")) return;
        r_.CheckKeys(node, "a version",
                     {"version", "effective_from", "currency", "rates_per", "custom_units", "models"});
        if (auto id = r_.Identifier(r_.Required(node, "version", "a version"), "version id")) v.id = *id;
        if (auto t = r_.Time(r_.Required(node, "effective_from", "version " + v.id), "effective_from")) {
            v.effective_from = *t;
        }
        if (auto c = ParseCurrency(r_.Required(node, "currency", "version " + v.id))) v.currency = *c;
        rates_per_ = Rate::kPerDefault;
        YAML::Node per = YamlReader::Optional(node, "rates_per");
        if (auto n = r_.Integer(per, "rates_per", 1)) {
            if (IsPowerOfTen(*n)) {
                rates_per_ = *n;
            } else {
                r_.Error(per, "rates_per must be a power of ten such as 1000 or 1000000");
            }
        }
        custom_units_.clear();
        r_.IdentifierList(YamlReader::Optional(node, "custom_units"), "custom unit", &custom_units_);
        YAML::Node models = r_.Required(node, "models", "version " + v.id);
        if (models.IsDefined()) {
            if (!models.IsMap() || models.size() == 0) {
                r_.Error(models, "models must map each model name to its serving cost");
            } else {
                for (auto it = models.begin(); it != models.end(); ++it) {
                    auto name = r_.Identifier(it->first, "model name");
                    if (!name) continue;
                    ModelCost m;
                    m.model = *name;
                    m.currency = v.currency;
                    ParseModel(it->second, &m);
                    if (v.FindModel(m.model) != nullptr) {
                        r_.ErrorAt(it->first.Mark(), "model " + Quote(m.model) + " is costed twice in version " + v.id);
                        continue;
                    }
                    v.models.push_back(std::move(m));
                }
            }
        }
        card->versions.push_back(std::move(v));
    }

    std::optional<Currency> ParseCurrency(const YAML::Node& node) {
        auto code = r_.Text(node, "currency");
        if (!code) return std::nullopt;
        auto c = Currency::FromCode(*code);
        if (!c) r_.Error(node, "currency " + Quote(*code) + " is not an ISO 4217 code Tally knows (CNY, USD, ...)");
        return c;
    }

    // Versions in the order they take effect, with distinct ids.
    void CheckVersionOrder(const YAML::Node& versions, const CostCard& card) {
        std::set<std::string> ids;
        for (size_t i = 0; i < card.versions.size(); ++i) {
            const CostCardVersion& cur = card.versions[i];
            const YAML::Node node = versions[i];
            if (!cur.id.empty() && !ids.insert(cur.id).second) {
                r_.Error(node, "two versions are both called " + Quote(cur.id));
            }
            if (i == 0) continue;
            const CostCardVersion& prev = card.versions[i - 1];
            if (cur.effective_from <= prev.effective_from) {
                r_.Error(node, "version " + cur.id + " takes effect at " + FormatRfc3339(cur.effective_from) +
                                   ", not after version " + prev.id + " (" + FormatRfc3339(prev.effective_from) +
                                   "); list versions in the order they take effect");
            }
        }
    }

    void ParseModel(const YAML::Node& node, ModelCost* m) {
        const std::string where = "model " + Quote(m->model);
        if (!r_.ExpectMap(node, where)) return;
        r_.CheckKeys(node, where, {"upstream", "currency", "rates", "bands"});
        if (auto b = r_.Bool(YamlReader::Optional(node, "upstream"), "upstream")) m->upstream = *b;
        YAML::Node currency = YamlReader::Optional(node, "currency");
        if (currency.IsDefined()) {
            if (auto c = ParseCurrency(currency)) m->currency = *c;
        }
        YAML::Node bands = YamlReader::Optional(node, "bands");
        YAML::Node rates = YamlReader::Optional(node, "rates");
        if (bands.IsDefined() == rates.IsDefined()) {
            r_.Error(node, where + " needs either 'rates' (one cost for every call) or 'bands', not " +
                               (bands.IsDefined() ? "both" : "neither"));
            return;
        }
        if (rates.IsDefined()) {
            CostBand band;
            ParseRates(rates, where, &band);
            m->bands.push_back(std::move(band));
            return;
        }
        if (!bands.IsSequence() || bands.size() == 0) {
            r_.Error(bands, "bands must be a list with at least one band");
            return;
        }
        for (size_t i = 0; i < bands.size(); ++i) {
            const YAML::Node& b = bands[i];
            if (!r_.ExpectMap(b, "a band")) continue;
            r_.CheckKeys(b, "a band", {"up_to", "rates"});
            CostBand band;
            YAML::Node up = YamlReader::Optional(b, "up_to");
            if (auto n = r_.Integer(up, "up_to", 0)) {
                band.up_to = *n;
                if (!m->bands.empty() && band.up_to <= m->bands.back().up_to) {
                    r_.Error(up, "band " + std::to_string(i + 1) + " of " + where + " ends at " +
                                     std::to_string(band.up_to) + ", not above the band before it (" +
                                     std::to_string(m->bands.back().up_to) + "); list bands from the smallest up");
                }
            } else if (!up.IsDefined() && i + 1 < bands.size()) {
                r_.Error(b, "band " + std::to_string(i + 1) + " of " + where +
                                " has no up_to; only the last band may be open-ended");
            }
            ParseRates(r_.Required(b, "rates", "a band of " + where), where + " band " + std::to_string(i + 1), &band);
            m->bands.push_back(std::move(band));
        }
    }

    bool KnownUnit(const std::string& name) const {
        return StdUnitId(name).has_value() || UnitTable::IsKnownExtra(name) ||
               std::find(custom_units_.begin(), custom_units_.end(), name) != custom_units_.end();
    }

    void ParseRates(const YAML::Node& node, const std::string& where, CostBand* band) {
        if (!node.IsDefined()) return;
        if (!node.IsMap() || node.size() == 0) {
            r_.Error(node, "the rates of " + where +
                               " must map unit names to costs, e.g. {input: \"0.30\", output: "
                               "\"2.00\"}");
            return;
        }
        for (auto it = node.begin(); it != node.end(); ++it) {
            const std::string unit = it->first.IsScalar() ? it->first.Scalar() : std::string();
            if (!KnownUnit(unit)) {
                r_.ErrorAt(it->first.Mark(),
                           "unknown unit " + Quote(unit) +
                               "; token units are input, cached_input, cached_input_explicit, cache_write, "
                               "cache_write_1h, output, reasoning; other units are images, video_seconds, tool_calls, "
                               "cache_storage_token_hours, web_searches, audio_seconds, or one listed in custom_units");
                continue;
            }
            auto rate = ParseRate(it->second, "the " + unit + " cost");
            if (!rate) continue;
            if (!band->rates.emplace(unit, *rate).second) {
                r_.ErrorAt(it->first.Mark(), "unit " + Quote(unit) + " is costed twice in " + where);
            }
        }
    }

    // `0.8` (per rates_per units) or `{price: 0.8, per: 1000000}`, as plans.
    std::optional<Rate> ParseRate(const YAML::Node& node, const std::string& what) {
        int64_t per_units = rates_per_;
        // Never assign one YAML::Node to another: yaml-cpp's operator=
        // rebinds the node both handles share, so `node` itself would become
        // the price. Each value gets its own handle.
        const bool long_form = node.IsMap();
        if (long_form) {
            r_.CheckKeys(node, what, {"price", "per"});
            const YAML::Node per = YamlReader::Optional(node, "per");
            if (auto n = r_.Integer(per, "per", 1)) {
                if (!IsPowerOfTen(*n)) r_.Error(per, "per must be a power of ten such as 1, 1000 or 1000000");
                per_units = *n;
            }
        }
        const YAML::Node price = long_form ? r_.Required(node, "price", what) : node;
        auto d = r_.NonNegative(price, what);
        if (!d) return std::nullopt;
        if (d->fraction_digits() > kMaxRateDecimals) {
            r_.Error(price, what + " " + d->ToString() + " has more than 9 decimal places");
            return std::nullopt;
        }
        return Rate(*d, per_units);
    }

    YamlReader r_;
    int64_t rates_per_ = Rate::kPerDefault;
    std::vector<std::string> custom_units_;
};

}  // namespace

const ModelCost* CostCardVersion::FindModel(std::string_view model) const {
    for (const ModelCost& m : models) {
        if (m.model == model) return &m;
    }
    return nullptr;
}

const CostCardVersion* CostCard::VersionAt(Instant t) const {
    const CostCardVersion* found = nullptr;
    for (const CostCardVersion& v : versions) {
        if (v.effective_from <= t) found = &v;
    }
    return found;
}

std::optional<CostCard> ParseCostCard(std::string_view text, std::string_view file_name, Diagnostics* diagnostics,
                                      TextOrigin origin) {
    TALLY_ASSERT(diagnostics != nullptr);
    // One document; duplicate keys refused, merge keys resolved.
    std::optional<YAML::Node> root = internal::LoadDocument(text, file_name, diagnostics, origin);
    if (!root) return std::nullopt;
    CostCardParser parser(file_name, diagnostics);
    try {
        return parser.Parse(*root);
    } catch (const internal::TooManyProblems&) {
        return std::nullopt;
    } catch (const YAML::Exception& e) {
        diagnostics->push_back(
            {std::string(file_name), e.mark.line + 1, e.mark.column + 1, "unexpected structure: " + e.msg});
        return std::nullopt;
    }
}

int64_t PlanBandLowerBound(const ModelPricing& model, size_t band) {
    TALLY_ASSERT(band < model.bands.size());
    return band == 0 ? 0 : model.bands[band - 1].up_to + 1;
}

bool CostCatalog::Add(CostCard card, Diagnostics* diagnostics) {
    TALLY_ASSERT(diagnostics != nullptr);
    const size_t index = cards_.size();
    bool ok = true;
    for (const CostCard& other : cards_) {
        if (other.name == card.name) {
            diagnostics->push_back({card.source_file, 0, 0, "cost card " + Quote(card.name) + " is given twice"});
            return false;
        }
    }
    std::set<std::string> models;
    for (const CostCardVersion& v : card.versions) {
        for (const ModelCost& m : v.models) models.insert(m.model);
    }
    for (const std::string& model : models) {
        auto it = card_of_model_.find(model);
        if (it != card_of_model_.end()) {
            diagnostics->push_back({card.source_file, 0, 0,
                                    "model " + Quote(model) + " is costed by cost card " + Quote(card.name) +
                                        " and by cost card " + Quote(cards_[it->second].name) +
                                        "; a model's serving cost comes from one card"});
            ok = false;
        }
    }
    if (!ok) return false;
    for (const std::string& model : models) card_of_model_.emplace(model, index);
    cards_.push_back(std::move(card));
    return true;
}

CostQuote CostCatalog::Cost(std::string_view model, std::string_view unit, int64_t band_from, Instant t,
                            int64_t quantity) const {
    TALLY_ASSERT(quantity >= 0);
    TALLY_ASSERT(band_from >= 0);
    CostQuote quote;
    auto it = card_of_model_.find(model);
    if (it == card_of_model_.end()) {
        quote.reason = "no cost card costs model " + std::string(model);
        return quote;
    }
    const CostCard& card = cards_[it->second];
    quote.card = card.name;
    const CostCardVersion* v = card.VersionAt(t);
    const ModelCost* m = v != nullptr ? v->FindModel(model) : nullptr;
    if (m == nullptr) {
        quote.reason =
            "cost card " + card.name + " has no cost of model " + std::string(model) + " at " + FormatRfc3339(t);
        return quote;
    }
    quote.version = v->id;
    quote.upstream = m->upstream;
    const CostBand* band = nullptr;
    for (const CostBand& b : m->bands) {
        if (band_from <= b.up_to) {
            band = &b;
            break;
        }
    }
    if (band == nullptr) {
        quote.reason = "cost card " + card.name + " version " + v->id + " has no band of model " + std::string(model) +
                       " for prompts of " + std::to_string(band_from) + " tokens";
        return quote;
    }
    // Fallbacks by the standard units' ids; extra units have none.
    std::optional<UnitId> id = StdUnitId(unit);
    std::string_view name = unit;
    while (true) {
        auto rate = band->rates.find(name);
        if (rate != band->rates.end()) {
            quote.amount = rate->second.AmountFor(quantity, m->currency, RoundingMode::kHalfEven);
            return quote;
        }
        if (!id) break;
        id = UnitFallback(*id);
        if (!id) break;
        name = kStdUnitNames[*id];
    }
    quote.reason = "cost card " + card.name + " version " + v->id + " has no cost of " + std::string(unit) +
                   " of model " + std::string(model);
    return quote;
}

}  // namespace tally
