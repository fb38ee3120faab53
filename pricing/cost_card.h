// Cost cards: what serving a model costs us, per unit, as validated
// in-memory values (docs/margin.md describes the YAML). A card has
// immutable versions, each in force from its effective_from until the next
// one's, like a plan's; per model the cost of each unit (the unit names
// plans use), optionally by prompt-length band, or, with `upstream: true`,
// the price a third party charges for a model routed to it.
//
// Nothing here does I/O. A cost that the cards do not know is reported as
// unknown, never as zero.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pricing/currency.h"
#include "pricing/diagnostic.h"
#include "pricing/money.h"
#include "pricing/plan.h"
#include "pricing/time.h"

namespace tally {

struct CostBand {
    int64_t up_to = std::numeric_limits<int64_t>::max();  // inclusive bound on the prompt; max = open
    std::map<std::string, Rate, std::less<>> rates;       // by unit name
    bool unbounded() const { return up_to == std::numeric_limits<int64_t>::max(); }
};

struct ModelCost {
    std::string model;
    Currency currency;            // the version's unless the model names its own
    bool upstream = false;        // the rates are a third party's price for a routed model
    std::vector<CostBand> bands;  // at least one, contiguous from 0
};

struct CostCardVersion {
    std::string id;
    Instant effective_from;
    Currency currency;
    std::vector<ModelCost> models;

    const ModelCost* FindModel(std::string_view model) const;
};

struct CostCard {
    std::string name;          // the id the ledger stores it under
    std::string display_name;  // for people
    std::string source_file;
    std::vector<CostCardVersion> versions;  // strictly increasing effective_from

    // The version in force at `t` (the last one whose effective_from <= t),
    // or nullptr before the first.
    const CostCardVersion* VersionAt(Instant t) const;
};

// Parses the text of one cost card file. On success returns the card;
// otherwise nullopt, with every problem appended to `diagnostics` as
// file:line:column and a sentence.
std::optional<CostCard> ParseCostCard(std::string_view text, std::string_view file_name, Diagnostics* diagnostics,
                                      TextOrigin origin = TextOrigin::kWritten);

// The lower bound, in prompt tokens, of band `band` of a plan's model: 0 for
// the first band, the previous band's up_to + 1 otherwise.
int64_t PlanBandLowerBound(const ModelPricing& model, size_t band);

// The answer to "what did serving this cost?".
struct CostQuote {
    std::optional<Amount> amount;  // nullopt: no cost known (see `reason`)
    bool upstream = false;
    std::string_view card, version;  // the card version that priced it (the catalog's own strings)
    std::string reason;              // why no cost is known; empty when known
};

// Every cost card one margin run knows. A model is costed by one card only.
class CostCatalog {
   public:
    // Adds a card; false (with a diagnostic on `card.source_file`) when one
    // of its models is already costed by another card, or a card of that
    // name is already there.
    bool Add(CostCard card, Diagnostics* diagnostics);
    const std::vector<CostCard>& cards() const { return cards_; }
    bool empty() const { return cards_.empty(); }

    // The cost of `quantity` units of `unit` (a unit name) of `model` served
    // at `t`, in the plan band whose lowest prompt length is `band_from`
    // tokens: the cost band that contains `band_from` applies. The unit's
    // rate falls back as a plan's does (UnitFallback: cached_input and
    // cache_write to input, cached_input_explicit to cached_input,
    // cache_write_1h to cache_write, reasoning to output). Exact: quantity *
    // price / per at Decimal's 18 places.
    CostQuote Cost(std::string_view model, std::string_view unit, int64_t band_from, Instant t, int64_t quantity) const;

   private:
    std::vector<CostCard> cards_;
    std::map<std::string, size_t, std::less<>> card_of_model_;  // model -> index into cards_
};

}  // namespace tally
