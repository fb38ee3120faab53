#include "pricing/rater.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "base/assert.h"
#include "pricing/project_cap.h"

namespace tally {

namespace {

uint64_t Mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

int32_t HourOf(Instant t) {
    int64_t ms = t.time_since_epoch().count();
    int64_t h = ms >= 0 ? ms / 3'600'000 : -((-ms + 3'599'999) / 3'600'000);
    return static_cast<int32_t>(h);
}

RateOutcome Reject(RejectReason code, std::string reason) {
    return {RateStatus::kRejected, code, std::move(reason)};
}

// The index of model `name` in `v`, or -1. A version prices a handful of
// models: a scan comparing lengths first beats hashing the name; large
// versions use the map.
int FindModel(const PlanVersion& v, const std::string& name) {
    if (v.models.size() <= 16) {
        for (size_t i = 0; i < v.models.size(); ++i) {
            const std::string& candidate = v.models[i].name;
            if (candidate.size() == name.size() && std::memcmp(candidate.data(), name.data(), name.size()) == 0) {
                return static_cast<int>(i);
            }
        }
        return -1;
    }
    auto mi = v.model_index.find(name);
    return mi == v.model_index.end() ? -1 : mi->second;
}

}  // namespace

std::vector<AnchorTerm> AnchorTerms(const std::vector<const Subscription*>& subscriptions) {
    std::vector<AnchorTerm> terms;
    for (const Subscription* s : subscriptions) {
        const int day = s->billing_anchor_day.value_or(1);
        TALLY_ASSERT(day >= 1);
        TALLY_ASSERT(day <= kMaxBillingAnchorDay);
        terms.push_back({s->from.value_or(Instant::min()), day});
    }
    std::sort(terms.begin(), terms.end(), [](const AnchorTerm& a, const AnchorTerm& b) { return a.from < b.from; });
    if (terms.empty()) terms.push_back({Instant::min(), 1});
    return terms;
}

bool HasAnchor(const std::vector<AnchorTerm>& terms) {
    return std::any_of(terms.begin(), terms.end(), [](const AnchorTerm& t) { return t.anchor_day != 1; });
}

int32_t AnchoredPeriod(const std::vector<AnchorTerm>& terms, ZoneClock* clock, Instant t) {
    TALLY_ASSERT(!terms.empty());
    TALLY_ASSERT(clock != nullptr);
    // floor: the period in progress (under the earlier terms) when term j began.
    int32_t floor = std::numeric_limits<int32_t>::min();
    size_t j = 0;
    for (; j + 1 < terms.size() && terms[j + 1].from <= t; ++j) {
        floor = std::max(floor, clock->AnchoredMonth(terms[j + 1].from, terms[j].anchor_day));
    }
    return std::max(floor, clock->AnchoredMonth(t, terms[j].anchor_day));
}

namespace {

// The first instant whose AnchoredPeriod is at least `period`.
Instant AnchoredPeriodStart(const std::vector<AnchorTerm>& terms, ZoneClock* clock, int32_t period) {
    int32_t floor = std::numeric_limits<int32_t>::min();
    for (size_t j = 0; j < terms.size(); ++j) {
        // Term j covers [from_j, from_j+1); the first term reaches back to the beginning of time.
        if (j > 0) {
            floor = std::max(floor, clock->AnchoredMonth(terms[j].from, terms[j - 1].anchor_day));
            if (floor >= period) return terms[j].from;
        }
        Instant start = MonthPeriod(clock->zone(), period, terms[j].anchor_day).start;
        if (j > 0) start = std::max(start, terms[j].from);
        if (j + 1 == terms.size() || start < terms[j + 1].from) return start;
    }
    TALLY_UNREACHABLE();
}

}  // namespace

PeriodBounds AnchoredPeriodBounds(const std::vector<AnchorTerm>& terms, const date::time_zone* zone, int32_t period) {
    TALLY_ASSERT(!terms.empty());
    TALLY_ASSERT(zone != nullptr);
    if (!HasAnchor(terms)) return MonthPeriod(zone, period, 1);
    ZoneClock clock(zone);
    PeriodBounds b{AnchoredPeriodStart(terms, &clock, period), AnchoredPeriodStart(terms, &clock, period + 1)};
    TALLY_ASSERT(b.start < b.end);
    return b;
}

size_t RollupKeyHash::operator()(const RollupKey& k) const noexcept {
    uint64_t words[2];
    std::memcpy(words, &k.cell, sizeof words);
    uint64_t third = (static_cast<uint64_t>(static_cast<uint32_t>(k.period)) << 32) | static_cast<uint32_t>(k.hour);
    // One multiply per word, then one finalizing mix.
    uint64_t h = words[0] * 0x9e3779b97f4a7c15ULL ^ words[1] * 0xc2b2ae3d27d4eb4fULL ^ third * 0x165667b19e3779f9ULL ^
                 static_cast<uint64_t>(k.project) * 0x27d4eb2f165667c5ULL;
    return static_cast<size_t>(Mix(h));
}

RollupTable::RollupTable() : slots_(1024), mask_(1023) {}

RollupRow& RollupTable::FindOrInsert(const RollupKey& key) {
    const size_t hash = RollupKeyHash{}(key);
    const auto tag = static_cast<uint32_t>(hash >> 32);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
        Slot& slot = slots_[i];
        if (slot.index_plus_one == 0) {
            if ((rows_.size() + 1) * 2 > slots_.size()) {
                Grow();
                return FindOrInsert(key);
            }
            rows_.emplace_back();
            rows_.back().key = key;
            slot.index_plus_one = static_cast<uint32_t>(rows_.size());
            slot.tag = tag;
            return rows_.back();
        }
        if (slot.tag == tag) {
            RollupRow& row = rows_[slot.index_plus_one - 1];
            if (row.key == key) return row;
        }
    }
}

void RollupTable::Grow() {
    TALLY_ASSERT(rows_.size() < UINT32_MAX / 4);
    std::vector<Slot> bigger(slots_.size() * 2);
    size_t mask = bigger.size() - 1;
    for (size_t r = 0; r < rows_.size(); ++r) {
        const size_t hash = RollupKeyHash{}(rows_[r].key);
        size_t i = hash & mask;
        while (bigger[i].index_plus_one != 0) i = (i + 1) & mask;
        bigger[i] = {static_cast<uint32_t>(r + 1), static_cast<uint32_t>(hash >> 32)};
    }
    slots_ = std::move(bigger);
    mask_ = mask;
}

Rater::Rater(const Catalog& catalog, const std::vector<Subscription>& subscriptions, std::string default_plan,
             PeriodRule period)
    : catalog_(catalog), default_plan_name_(std::move(default_plan)), period_(period) {
    default_plan_ = catalog_.PlanIndex(default_plan_name_);
    TALLY_ASSERT(default_plan_ >= 0);
    for (const auto& s : subscriptions) {
        TALLY_ASSERT(catalog_.PlanIndex(s.plan) >= 0);
        subscriptions_[s.customer].push_back(&s);
    }
    scratch_.reserve(kMaxBands);
}

uint32_t Rater::CustomerIndex(const std::string& subject) {
    const uint32_t index = customers_.Intern(subject);
    if (index == customer_terms_.size()) {  // first seen
        std::vector<Term> terms;
        auto sub = subscriptions_.find(subject);
        if (sub == subscriptions_.end()) {
            terms.push_back({Instant::min(), static_cast<uint16_t>(default_plan_)});
        } else {
            for (const Subscription* s : sub->second) {
                terms.push_back({s->from.value_or(Instant::min()), static_cast<uint16_t>(catalog_.PlanIndex(s->plan))});
            }
            std::sort(terms.begin(), terms.end(), [](const Term& a, const Term& b) { return a.from > b.from; });
        }
        customer_terms_.push_back(std::move(terms));
        std::vector<AnchorTerm> anchors;
        if (sub != subscriptions_.end()) anchors = AnchorTerms(sub->second);
        if (!HasAnchor(anchors)) anchors.clear();
        customer_anchors_.push_back(std::move(anchors));
    }
    TALLY_ASSERT(customer_anchors_.size() == customer_terms_.size());
    TALLY_ASSERT(index < customer_terms_.size());
    return index;
}

ZoneClock& Rater::Clock(const date::time_zone* zone) {
    for (auto& [z, clock] : clocks_) {
        if (z == zone) return clock;
    }
    clocks_.emplace_back(zone, ZoneClock(zone));
    return clocks_.back().second;
}

RateOutcome Rater::Classify(const Event& e, std::vector<RatedPart>* parts) {
    parts->clear();
    // The decoder guarantees these; a caller that builds events by hand may not.
    if (e.input_tokens < 0 || e.output_tokens < 0 || e.cached_input_tokens < 0 ||
        e.cached_input_explicit_tokens < 0 || e.cache_write_tokens < 0 || e.cache_write_1h_tokens < 0 ||
        e.reasoning_tokens < 0) {
        return Reject(RejectReason::kInvalid, "a token count is negative");
    }
    // The uncached prompt: the whole prompt less both kinds of cache hit and
    // the cache writes. Subtracted one by one, so that counts a caller built
    // by hand above kCountMax cannot overflow.
    int64_t uncached = e.input_tokens;
    for (int64_t part : {e.cached_input_tokens, e.cached_input_explicit_tokens, e.cache_write_tokens,
                         e.cache_write_1h_tokens}) {
        if (uncached >= 0) uncached -= part;
    }
    if (uncached < 0) {
        return Reject(RejectReason::kInvalid,
                      "cached_input_tokens + cached_input_explicit_tokens + cache_write_tokens + "
                      "cache_write_1h_tokens exceed input_tokens (" +
                          std::to_string(e.input_tokens) + ")");
    }
    if (e.reasoning_tokens > e.output_tokens) {
        return Reject(RejectReason::kInvalid, "reasoning_tokens (" + std::to_string(e.reasoning_tokens) + ") exceed output_tokens (" +
                      std::to_string(e.output_tokens) + ")");
    }

    if (!period_.monthly() && (e.time < *period_.from || (period_.to && e.time >= *period_.to))) {
        return {RateStatus::kOutsidePeriod, RejectReason::kInvalid, {}};
    }
    uint32_t customer = CustomerIndex(e.subject);
    const std::vector<Term>& terms = customer_terms_[customer];
    const Term* term = nullptr;
    for (const Term& t : terms) {  // latest first
        if (t.from <= e.time) {
            term = &t;
            break;
        }
    }
    if (term == nullptr) {
        return Reject(RejectReason::kNoSubscription, "customer " + e.subject + " has no subscription in force at " + FormatRfc3339(e.time) +
                      " (the first is from " + FormatRfc3339(terms.back().from) + ")");
    }
    const uint16_t plan_index = term->plan;
    const Plan& plan = catalog_.plans[plan_index];
    int version_index = plan.VersionIndexAt(e.time);
    if (version_index < 0) {
        return Reject(RejectReason::kNoPlanVersion, "plan " + plan.name + " has no version in force at " + FormatRfc3339(e.time));
    }
    const PlanVersion& v = plan.versions[static_cast<size_t>(version_index)];
    int found = FindModel(v, e.model);
    if (found < 0) {
        return Reject(RejectReason::kUnknownModel, "model '" + e.model + "' has no price in plan " + plan.name + " version " + v.id);
    }
    uint16_t served = 0;
    if (!e.served_model.empty() && e.served_model != e.model) {  // a routed call
        if (v.models[static_cast<size_t>(found)].routed_calls == RoutedCalls::kBillServed) {
            const int served_found = FindModel(v, e.served_model);
            if (served_found < 0) {
                return Reject(RejectReason::kServedModelUnpriced,
                              "model '" + e.model + "' bills routed calls at the served model's price " +
                                  "(routed_calls: bill_served), and served_model '" + e.served_model +
                                  "' has no price in plan " + plan.name + " version " + v.id);
            }
            found = served_found;
        }
        const uint32_t index = served_models_.Intern(e.served_model);
        if (index >= UINT16_MAX) {
            return Reject(RejectReason::kInvalid, "served_model '" + e.served_model + "' is one more than the " +
                                                      std::to_string(UINT16_MAX - 1) +
                                                      " distinct served models a rater keeps");
        }
        served = static_cast<uint16_t>(index + 1);
    }
    const auto model_index = static_cast<uint16_t>(found);
    const ModelPricing& m = v.models[model_index];

    RollupKey base;
    base.cell.customer = customer;
    base.cell.plan = plan_index;
    base.cell.version = static_cast<uint16_t>(version_index);
    base.cell.model = model_index;
    base.cell.served = served;
    base.hour = HourOf(e.time);
    if (period_.monthly()) {
        // The subscription in force at the call's time decides the period.
        const std::vector<AnchorTerm>& anchors = customer_anchors_[customer];
        base.period = anchors.empty() ? Clock(v.zone).Month(e.time) : AnchoredPeriod(anchors, &Clock(v.zone), e.time);
    }
    if (!m.windows.empty()) {
        for (size_t i = 0; i < m.windows.size(); ++i) {
            const Window& w = m.windows[i];
            LocalTime lt = Clock(w.zone != nullptr ? w.zone : v.zone).Local(e.time);
            if (w.Contains(lt)) {
                base.cell.window = static_cast<uint8_t>(i);
                break;
            }
        }
    }
    bool batch = e.batch && m.batch.priced;
    if (batch) base.cell.flags |= kFlagBatch;
    if (e.thinking && m.prices_thinking) base.cell.flags |= kFlagThinking;

    // Quantities per unit.
    Quantities q{};
    q[kUnitInput] = uncached;
    q[kUnitCachedInput] = e.cached_input_tokens;
    q[kUnitCachedInputExplicit] = e.cached_input_explicit_tokens;
    q[kUnitCacheWrite] = e.cache_write_tokens;
    q[kUnitCacheWrite1h] = e.cache_write_1h_tokens;
    if (batch && m.batch.cache_hits == BatchCache::kNotCombined) {
        q[kUnitInput] = e.input_tokens;  // no cache price for batch calls: both kinds of hit bill as input
        q[kUnitCachedInput] = q[kUnitCachedInputExplicit] = q[kUnitCacheWrite] = q[kUnitCacheWrite1h] = 0;
    }
    if (m.prices_reasoning) {
        q[kUnitOutput] = e.output_tokens - e.reasoning_tokens;
        q[kUnitReasoning] = e.reasoning_tokens;
    } else {
        q[kUnitOutput] = e.output_tokens;
    }
    // Extra units the catalog knows are kept even where this model does
    // not price them: the invoice shows them as unpriced quantity. Other
    // numeric fields (ttft_ms, ...) describe the call and are not units.
    for (const auto& extra : e.extras) {
        auto id = catalog_.units.Find(extra.name);
        if (id && *id >= kNumStdUnits) {
            if (extra.value < 0) return Reject(RejectReason::kInvalid, extra.name + " is negative");
            if (__builtin_add_overflow(q[*id], extra.value, &q[*id])) {
                return Reject(RejectReason::kOverflow, "the counts of " + extra.name + " exceed 2^63-1");
            }
        }
    }

    // Band selection.
    int64_t selector = m.band_by == BandBy::kPrompt ? e.input_tokens : uncached;
    size_t band = 0;
    while (band < m.bands.size() && selector > m.bands[band].up_to) ++band;
    if (band == m.bands.size()) {
        if (m.above_top == AboveTop::kReject) {
            return Reject(RejectReason::kAboveTopBand, "the prompt has " + std::to_string(selector) +
                          (m.band_by == BandBy::kPrompt ? "" : " uncached") +
                          " input tokens, above the top band of model " + m.name + " (" +
                          std::to_string(m.bands.back().up_to) + ")");
        }
        band = m.bands.size() - 1;
    }

    auto condition_for = [&](size_t b) -> uint8_t {
        const Band& bd = m.bands[b];
        for (size_t c = 0; c < bd.output_conditions.size(); ++c) {
            const OutputCondition& oc = bd.output_conditions[c];
            int64_t out = oc.reasoning_counts ? e.output_tokens : e.output_tokens - e.reasoning_tokens;
            if (out <= oc.up_to) return static_cast<uint8_t>(c);
        }
        return kNone;
    };

    if (m.band_mode == BandMode::kWholeCall || m.bands.size() == 1) {
        RatedPart& part = parts->emplace_back();
        part.key = base;
        part.quantities = q;
        part.key.cell.band = static_cast<uint8_t>(band);
        part.key.cell.condition = condition_for(band);
        return {};
    }

    // Graduated: slice the band-selecting tokens over the bands, in prompt
    // order (cache hits are a prefix, so they come first: implicit hits,
    // then explicit ones); everything else prices at the band the call
    // reaches.
    static constexpr std::array<UnitId, 5> kPromptOrder = {kUnitCachedInput, kUnitCachedInputExplicit,
                                                           kUnitCacheWrite, kUnitCacheWrite1h, kUnitInput};
    Quantities rest = q;
    int64_t lower = 0;
    for (size_t b = 0; b <= band; ++b) {
        int64_t capacity = b == band ? INT64_MAX : m.bands[b].up_to - lower;
        lower = m.bands[b].up_to;
        RatedPart part{base, {}};
        part.key.cell.band = static_cast<uint8_t>(b);
        for (UnitId u : kPromptOrder) {
            if (m.band_by == BandBy::kUncached && u != kUnitInput) continue;
            int64_t take = std::min(rest[u], capacity);
            part.quantities[u] = take;
            rest[u] -= take;
            capacity -= take;
        }
        if (b == band) {
            for (int u = 0; u < kMaxUnits; ++u) part.quantities[static_cast<size_t>(u)] += rest[static_cast<size_t>(u)];
            part.key.cell.condition = condition_for(b);
        }
        parts->push_back(part);
    }
    return {};
}

RateOutcome Rater::Add(const Event& e) {
    RateOutcome outcome = Classify(e, &scratch_);
    if (outcome.status == RateStatus::kRated) AddParts(scratch_, 1, e.project);
    return outcome;
}

void Rater::AddParts(const std::vector<RatedPart>& parts, int64_t calls, std::string_view project) {
    uint32_t project_key = 0;
    if (!project.empty()) {
        const uint32_t index = projects_.Intern(project);
        TALLY_ASSERT(index < UINT32_MAX);
        project_key = index + 1;
    }
    for (size_t i = 0; i < parts.size(); ++i) {
        const RatedPart& p = parts[i];
        TALLY_ASSERT(p.key.project == 0);  // Classify's parts name no project
        RollupKey key = p.key;
        key.project = project_key;
        RollupRow& row = rollups_.FindOrInsert(key);
        // A call has quantities in a few units only: add those.
        Quantities& q = row.quantities;
        uint32_t units = 0;
        for (size_t u = 0; u < kMaxUnits; ++u) units |= (p.quantities[u] != 0 ? 1u : 0u) << u;
        for (uint32_t m = units; m != 0; m &= m - 1) {
            const auto u = static_cast<size_t>(__builtin_ctz(m));
            q[u] = SaturatingAdd(q[u], p.quantities[u]);
        }
        if (i == parts.size() - 1) row.calls = SaturatingAdd(row.calls, calls);  // a call counts once
    }
}

std::vector<Rollup> Rater::Rollups(Projects projects) const {
    std::vector<Rollup> out;
    out.reserve(rollups_.size());
    for (const RollupRow& row : rollups_.rows()) {
        const RollupKey& key = row.key;
        Rollup r;
        r.customer = customers_.Get(key.cell.customer);
        r.cell = key.cell;
        r.cell.customer = 0;
        r.cell.served = 0;
        r.served_model = ServedModel(key.cell.served);
        r.project = Project(key.project);
        r.period = key.period;
        r.hour = key.hour;
        r.quantities = row.quantities;
        r.calls = row.calls;
        out.push_back(std::move(r));
    }
    if (projects == Projects::kCapped) {  // the one rule of pricing/project_cap.h, over all the rater's events
        ProjectCap cap;
        cap.Admit(ProjectUses(out));
        ApplyProjectCap(cap, &out);
    }
    CanonicalizeRollups(&out);
    return out;
}

const std::string& Rater::Project(uint32_t project) const {
    static const std::string kNoProject;
    if (project == 0) return kNoProject;
    TALLY_ASSERT(project <= projects_.size());
    return projects_.Get(project - 1u);
}

const std::string& Rater::ServedModel(uint16_t served) const {
    static const std::string kNotRouted;
    if (served == 0) return kNotRouted;
    TALLY_ASSERT(served <= served_models_.size());
    return served_models_.Get(served - 1u);
}

void CanonicalizeRollups(std::vector<Rollup>* rollups) {
    auto less = [](const Rollup& a, const Rollup& b) {
        if (a.customer != b.customer) return a.customer < b.customer;
        if (a.period != b.period) return a.period < b.period;
        if (a.hour != b.hour) return a.hour < b.hour;
        if (a.cell != b.cell) return a.cell < b.cell;
        if (a.served_model != b.served_model) return a.served_model < b.served_model;
        return a.project < b.project;
    };
    auto same = [](const Rollup& a, const Rollup& b) {
        return a.customer == b.customer && a.period == b.period && a.hour == b.hour && a.cell == b.cell &&
               a.served_model == b.served_model && a.project == b.project;
    };
    std::sort(rollups->begin(), rollups->end(), less);
    std::vector<Rollup> merged;
    merged.reserve(rollups->size());
    for (auto& r : *rollups) {
        if (!merged.empty() && same(merged.back(), r)) {
            for (size_t u = 0; u < kMaxUnits; ++u) {
                merged.back().quantities[u] = SaturatingAdd(merged.back().quantities[u], r.quantities[u]);
            }
            merged.back().calls = SaturatingAdd(merged.back().calls, r.calls);
        } else {
            merged.push_back(std::move(r));
        }
    }
    *rollups = std::move(merged);
}

}  // namespace tally
