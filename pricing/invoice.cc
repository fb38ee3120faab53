#include "pricing/invoice.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

#include <date/date.h>

#include "base/assert.h"
#include "base/int128.h"
#include "pricing/price_table.h"

namespace tally {

namespace {

constexpr int kNoTier = -1;

// Identifies one usage or free-quota line of an invoice; ordered for output.
struct LineKey {
    uint16_t version = 0;
    uint16_t model_rank = 0;  // the model's place by name among its version's models (PeriodPricer::ModelRanks)
    UnitId unit = 0;
    int unit_rank = 0;  // the unit's place in PeriodPricer's canonical order
    CellKey cell;
    int free_quota = -1;  // index into PeriodPricer::free_names_, or -1
    int tier_rule = -1;   // index into the version's tier rules, or -1
    int tier = kNoTier;
    bool unpriced = false;  // a unit the model does not price

    // The line order, (version, model name, unit rank, band, condition,
    // window, flags, free quota, tier rule, tier, unpriced), as one number:
    // each field in a bit range of its own, the first ones highest, so
    // numbers compare as the fields do one after the other. Within a
    // version the model rank orders as the model's name does.
    uint128 Order() const {
        TALLY_ASSERT(unit_rank >= 0);
        TALLY_ASSERT(unit_rank <= 0xff);
        TALLY_ASSERT(free_quota >= -1);
        TALLY_ASSERT(free_quota < 0xffff);
        TALLY_ASSERT(tier_rule >= -1);
        TALLY_ASSERT(tier_rule < 0xffff);
        TALLY_ASSERT(tier >= -1);
        TALLY_ASSERT(tier < 0xffff);
        const uint64_t high = uint64_t{version} << 48 | uint64_t{model_rank} << 32 |
                              static_cast<uint64_t>(unit_rank) << 24 | uint64_t{cell.band} << 16 |
                              uint64_t{cell.condition} << 8 | uint64_t{cell.window};
        const uint64_t low = uint64_t{cell.flags} << 49 | static_cast<uint64_t>(free_quota + 1) << 33 |
                             static_cast<uint64_t>(tier_rule + 1) << 17 | static_cast<uint64_t>(tier + 1) << 1 |
                             uint64_t{unpriced};
        return uint128{high} << 64 | low;
    }
};

struct OrderHash {
    size_t operator()(uint128 v) const noexcept {
        const auto high = static_cast<uint64_t>(v >> 64);
        const auto low = static_cast<uint64_t>(v);
        return static_cast<size_t>((high * 0x9e3779b97f4a7c15ULL) ^ low ^ (low >> 29));
    }
};

struct Segment {
    LineKey key;
    int64_t quantity = 0;
    int32_t hour = 0;  // of the rollup it comes from
};

// What the segments of one line add up to.
struct LineSum {
    int64_t quantity = 0;
    int32_t first_hour = std::numeric_limits<int32_t>::max();
    int32_t last_hour = std::numeric_limits<int32_t>::min();
};

const TierRule* FindTierRule(const PlanVersion& v, const std::string& model, UnitId unit, int* index) {
    for (size_t i = 0; i < v.tiers.size(); ++i) {
        if (v.tiers[i].Applies(model, unit)) {
            *index = static_cast<int>(i);
            return &v.tiers[i];
        }
    }
    *index = -1;
    return nullptr;
}

// Tiers count per group: the rule's name and the model (and the unit when
// the rule aggregates per unit), so a group spans the plan's versions.
std::string TierGroup(const TierRule& rule, const std::string& model, UnitId unit) {
    return rule.name + "\x1f" + model +
           (rule.aggregate == TierAggregate::kPerModelUnit ? "\x1f" + std::to_string(unit) : std::string());
}

bool ModelListed(const std::vector<std::string>& models, const std::string& model) {
    return models.empty() || std::find(models.begin(), models.end(), model) != models.end();
}

// Lines whose exact amounts make up Invoice::exact_subtotal: every kind
// that comes before the commitment true-up.
bool BeforeCommitment(LineKind kind) {
    switch (kind) {
        case LineKind::kUsage:
        case LineKind::kFreeQuota:
        case LineKind::kDiscount:
        case LineKind::kCoupon:
        case LineKind::kUnpriced: return true;
        case LineKind::kRounding:
        case LineKind::kCommitment:
        case LineKind::kAdjustment: return false;
    }
    TALLY_UNREACHABLE();
}

Amount GrantsUsed(const Invoice& inv) {
    Amount granted = Amount::Zero(inv.currency);
    for (const GrantUse& g : inv.grants) granted += g.amount;
    return granted;
}

// The invariants of a priced invoice, checked every time (TALLY_ASSERT is
// always on): a violation is a bug in the pricing code, never input.
void AssertFinished(const Invoice& inv) {
    Amount subtotal = Amount::Zero(inv.currency);
    Amount exact = Amount::Zero(inv.currency);
    Amount rounded_before_commitment = Amount::Zero(inv.currency);
    size_t rounding_lines = 0;
    for (const InvoiceLine& line : inv.lines) {
        TALLY_ASSERT(line.amount.currency() == inv.currency);
        TALLY_ASSERT(line.amount_rounded.currency() == inv.currency);
        TALLY_ASSERT(line.amount_rounded == line.amount_rounded.RoundToMinor(inv.rounding));
        // Rates and percents are validated non-negative (percents at most
        // 100), so charges are never negative and reductions never positive.
        switch (line.kind) {
            case LineKind::kUsage:
            case LineKind::kCommitment: TALLY_ASSERT(!line.amount.is_negative()); break;
            case LineKind::kFreeQuota:
            case LineKind::kUnpriced: TALLY_ASSERT(line.amount.is_zero()); break;
            case LineKind::kDiscount:
            case LineKind::kCoupon: TALLY_ASSERT(line.amount.is_zero() || line.amount.is_negative()); break;
            case LineKind::kRounding:  // either sign, never zero, already in the minor unit
                TALLY_ASSERT(inv.rounding_place == RoundingPlace::kInvoice);
                TALLY_ASSERT(!line.amount.is_zero());
                TALLY_ASSERT(line.amount == line.amount_rounded);
                ++rounding_lines;
                break;
            case LineKind::kAdjustment: TALLY_ASSERT(line.amount == line.amount_rounded); break;
        }
        const bool sourced =
            line.kind == LineKind::kUsage || line.kind == LineKind::kFreeQuota || line.kind == LineKind::kUnpriced;
        TALLY_ASSERT(sourced || (line.first_hour == 0 && line.last_hour == 0));
        TALLY_ASSERT(line.first_hour <= line.last_hour);
        if (BeforeCommitment(line.kind)) exact += line.amount;
        if (BeforeCommitment(line.kind) || line.kind == LineKind::kRounding) {
            rounded_before_commitment += line.amount_rounded;
        }
        subtotal += line.amount_rounded;
    }
    TALLY_ASSERT(rounding_lines <= 1);
    TALLY_ASSERT(exact == inv.exact_subtotal);
    if (inv.rounding_place == RoundingPlace::kInvoice) {
        // The rounded lines add up to the exact sum rounded once.
        TALLY_ASSERT(rounded_before_commitment == inv.exact_subtotal.RoundToMinor(inv.rounding));
    }
    TALLY_ASSERT(subtotal == inv.subtotal);
    TALLY_ASSERT(inv.tax == (inv.subtotal * inv.tax_percent).RoundToMinor(inv.rounding));
    TALLY_ASSERT(inv.total == inv.subtotal + inv.tax);
    for (const GrantUse& g : inv.grants) TALLY_ASSERT(!g.amount.is_negative());
    TALLY_ASSERT(inv.amount_due == inv.total - GrantsUsed(inv));
}

void SetZeroAmounts(Invoice* inv) {
    const Amount zero = Amount::Zero(inv->currency);
    inv->usage_exact = zero;
    inv->exact_subtotal = zero;
    inv->subtotal = zero;
    inv->tax = zero;
    inv->total = zero;
    inv->amount_due = zero;
}

// Period terms (currency, rounding, tax, commitment) come from the version
// in force at the period's end, or, if the plan ended before that, from
// `fallback` (the latest version used).
const PlanVersion& TermsVersion(const Plan& plan, const Invoice& inv, const PlanVersion& fallback) {
    const PlanVersion* terms = plan.VersionAt(inv.period_end - std::chrono::milliseconds(1));
    return terms != nullptr ? *terms : fallback;
}

void ApplyTerms(const PlanVersion& terms, const Subscription* subscription, Invoice* inv) {
    inv->currency = terms.currency;
    inv->rounding = terms.rounding;
    inv->rounding_place = terms.rounding_place;
    inv->tax_percent = terms.tax_percent;
    inv->finalize_grace = terms.finalize_grace;
    if (subscription != nullptr && subscription->finalize_grace) inv->finalize_grace = *subscription->finalize_grace;
}

int AnchorDay(const Subscription* subscription) {
    if (subscription == nullptr) return 1;
    const int day = subscription->billing_anchor_day.value_or(1);
    TALLY_ASSERT(day >= 1);
    TALLY_ASSERT(day <= kMaxBillingAnchorDay);
    return day;
}

// The version whose zone bounds monthly period `period`: the latest begun
// before the period (in that version's zone) ends, as the period's last call
// would have had; the first version if none had.
const PlanVersion& PeriodZoneVersion(const Plan& plan, int32_t period, const std::vector<AnchorTerm>& anchors) {
    TALLY_ASSERT(!plan.versions.empty());
    for (auto v = plan.versions.rbegin(); v != plan.versions.rend(); ++v) {
        if (v->effective_from < AnchoredPeriodBounds(anchors, v->zone, period).end) return *v;
    }
    return plan.versions.front();
}

// Whether `s` may bill a minimum commitment in some period.
bool MayCommit(const Plan& plan, const Subscription& s) {
    if (s.minimum_commitment) return true;
    return std::any_of(plan.versions.begin(), plan.versions.end(),
                       [](const PlanVersion& v) { return v.minimum_commitment.has_value(); });
}

// Everything that stays the same while one customer's periods are priced.
struct CustomerContext {
    const Plan* plan = nullptr;
    const Subscription* subscription = nullptr;
    std::vector<Amount> grant_balances;
    std::vector<std::optional<Amount>> coupon_balances;  // of amount coupons, used up across periods
};

// Graduated tiers: `q` more units after `*done` already counted in the
// period, split at the tiers' bounds; `emit(tier, quantity)` for each slice,
// in tier order. Adds q to *done. The one rule both the period's pricing and
// its day-by-day snapshots (Feed) slice by.
template <typename Emit>
void SliceGraduated(const TierRule& rule, int64_t* done, int64_t q, Emit emit) {
    int64_t lower = 0;
    for (size_t t = 0; t < rule.tiers.size() && q > 0; ++t) {
        const int64_t upper = rule.tiers[t].up_to;
        if (*done >= upper) {
            lower = upper;
            continue;
        }
        const int64_t take = std::min(q, upper - std::max(*done, lower));
        emit(static_cast<int>(t), take);
        *done += take;
        q -= take;
        lower = upper;
    }
    TALLY_ASSERT(q == 0);
}

class PeriodPricer {
   public:
    PeriodPricer(const Catalog& catalog, const PeriodRule& rule, CustomerContext* ctx)
        : catalog_(catalog), rule_(rule), ctx_(ctx), made_subscription_(ctx->subscription), made_plan_(ctx->plan) {
        // Units in one order whatever the catalog: the standard units as
        // numbered, then extra units by name. A unit's id depends on the
        // order plans were loaded in; free quotas and tiers used up across
        // units, and the order of lines, must not.
        for (int u = 0; u < catalog_.units.size(); ++u) units_in_order_.push_back(static_cast<UnitId>(u));
        std::stable_sort(units_in_order_.begin(), units_in_order_.end(), [&](UnitId a, UnitId b) {
            if (a < kNumStdUnits || b < kNumStdUnits) return a < b;
            return catalog_.units.Name(a) < catalog_.units.Name(b);
        });
        unit_rank_.fill(kMaxUnits);
        for (size_t i = 0; i < units_in_order_.size(); ++i) unit_rank_[units_in_order_[i]] = static_cast<int>(i);
    }

    // `anchors`: the customer's (AnchorTerms), which bound monthly periods.
    Invoice Price(const std::vector<const Rollup*>& rows, const std::vector<AnchorTerm>& anchors) {
        TALLY_ASSERT(!rows.empty());
        const Plan& plan = *ctx_->plan;
        Invoice inv;
        inv.customer = rows.front()->customer;
        inv.plan = plan.name;
        if (ctx_->subscription != nullptr) inv.customer_name = ctx_->subscription->customer_name;
        uint16_t last_version = 0;
        for (const Rollup* r : rows) {
            last_version = std::max(last_version, r->cell.version);
            inv.calls = SaturatingAdd(inv.calls, r->calls);
        }
        SetPeriod(rows.front()->period, plan.versions[last_version], anchors, &inv);
        ApplyTerms(TermsVersion(plan, inv, plan.versions[last_version]), ctx_->subscription, &inv);
        SetZeroAmounts(&inv);
        try {
            PriceLines(rows, last_version, &inv);
            AssertFinished(inv);
        } catch (const std::exception& e) {  // PricingError, OverflowError: this invoice only
            return Failed(inv, e.what());
        }
        return inv;
    }

    // The cumulative pricer (PriceRollupsThrough): Feed gives it one
    // period's rows of the context's plan one at a time, in the order Price
    // takes them (hour order); Snapshot then answers what Price would for
    // every row fed so far, without pricing them again: free quotas and
    // graduated tiers are consumed as rows come, volume tiers are chosen at
    // the snapshot from the totals so far, and the discounts, rounding,
    // commitment, tax and grants run on the snapshot's lines with the
    // balances of the context given to Use (a copy per snapshot, so each
    // starts from what the earlier periods left).
    void Feed(const Rollup& r) {
        if (fed_ == 0) {
            fed_customer_ = r.customer;
            fed_period_ = r.period;
        }
        TALLY_ASSERT(r.customer == fed_customer_);
        TALLY_ASSERT(r.period == fed_period_);
        ++fed_;
        fed_last_version_ = std::max(fed_last_version_, r.cell.version);
        fed_calls_ = SaturatingAdd(fed_calls_, r.calls);
        // Price checks every row for saturation before it sums anything, so
        // that error wins over an overflow of the sums.
        if (fed_saturated_.empty()) fed_saturated_ = SaturationError(r);
        if (!fed_saturated_.empty() || !fed_overflow_.empty()) return;  // every later snapshot fails
        try {
            FeedSegments(r);
        } catch (const std::exception& e) {  // OverflowError of a sum, as Price's
            fed_overflow_ = e.what();
        }
    }

    size_t Fed() const { return fed_; }

    // The context of the next Feed and Snapshot: the same subscription and
    // plan as the one the pricer was made with, with its own balances.
    void Use(CustomerContext* ctx) {
        TALLY_ASSERT(ctx->subscription == made_subscription_);
        TALLY_ASSERT(ctx->plan == made_plan_);
        ctx_ = ctx;
    }

    Invoice Snapshot(const std::vector<AnchorTerm>& anchors) {
        TALLY_ASSERT(fed_ > 0);
        const Plan& plan = *ctx_->plan;
        Invoice inv;
        inv.customer = fed_customer_;
        inv.plan = plan.name;
        if (ctx_->subscription != nullptr) inv.customer_name = ctx_->subscription->customer_name;
        inv.calls = fed_calls_;
        SetPeriod(fed_period_, plan.versions[fed_last_version_], anchors, &inv);
        const PlanVersion& terms = TermsVersion(plan, inv, plan.versions[fed_last_version_]);
        ApplyTerms(terms, ctx_->subscription, &inv);
        SetZeroAmounts(&inv);
        try {
            if (!fed_saturated_.empty()) throw PricingError(fed_saturated_);
            if (!fed_overflow_.empty()) throw PricingError(fed_overflow_);
            // The lines so far; a volume line takes the tier of its group's
            // total so far, as Segments gives every row of the group.
            std::vector<std::pair<LineKey, LineSum>> lines = fed_lines_.sums;
            for (size_t i = 0; i < fed_volume_.sums.size(); ++i) {
                std::pair<LineKey, LineSum> line = fed_volume_.sums[i];
                const TierRule& rule =
                    plan.versions[line.first.version].tiers[static_cast<size_t>(line.first.tier_rule)];
                const int64_t total = fed_totals_[fed_volume_.group[i]];
                size_t t = 0;
                while (total > rule.tiers[t].up_to) ++t;
                line.first.tier = static_cast<int>(t);
                lines.push_back(std::move(line));
            }
            std::vector<std::pair<uint128, size_t>> order;
            order.reserve(lines.size());
            for (size_t i = 0; i < lines.size(); ++i) order.emplace_back(lines[i].first.Order(), i);
            std::sort(order.begin(), order.end());
            std::vector<std::pair<LineKey, LineSum>> merged;  // one per line order, as PriceLines sums them
            std::vector<const std::pair<LineKey, LineSum>*> ordered;
            merged.reserve(order.size());
            for (size_t k = 0; k < order.size(); ++k) {
                const auto& [key, sum] = lines[order[k].second];
                if (k > 0 && order[k].first == order[k - 1].first) {
                    LineSum& m = merged.back().second;
                    m.quantity = CheckedAdd(m.quantity, sum.quantity);
                    m.first_hour = std::min(m.first_hour, sum.first_hour);
                    m.last_hour = std::max(m.last_hour, sum.last_hour);
                    continue;
                }
                merged.emplace_back(key, sum);
            }
            for (const auto& line : merged) ordered.push_back(&line);
            LinesToInvoice(ordered, terms, &inv);
            AssertFinished(inv);
        } catch (const std::exception& e) {  // PricingError, OverflowError: this invoice only
            return Failed(inv, e.what());
        }
        return inv;
    }

    // A period of `customer` under the context's subscription without any
    // usage: the commitment true-up (then tax and grants), or nullopt when
    // no commitment applies to the period.
    std::optional<Invoice> PriceWithoutUsage(const std::string& customer, int32_t period,
                                             const std::vector<AnchorTerm>& anchors) {
        TALLY_ASSERT(rule_.monthly());
        const Plan& plan = *ctx_->plan;
        const PlanVersion& zone_version = PeriodZoneVersion(plan, period, anchors);
        Invoice inv;
        inv.customer = customer;
        inv.plan = plan.name;
        if (ctx_->subscription != nullptr) inv.customer_name = ctx_->subscription->customer_name;
        SetPeriod(period, zone_version, anchors, &inv);
        const PlanVersion& terms = TermsVersion(plan, inv, zone_version);
        ApplyTerms(terms, ctx_->subscription, &inv);
        SetZeroAmounts(&inv);
        const bool committed = terms.minimum_commitment.has_value() ||
                               (ctx_->subscription != nullptr && ctx_->subscription->minimum_commitment.has_value());
        if (!committed) return std::nullopt;
        Finish(terms, &inv);
        AssertFinished(inv);
        if (inv.lines.empty()) return std::nullopt;  // a commitment of 0.00
        return inv;
    }

   private:
    // An invoice that could not be priced: `inv`'s period and terms, zero
    // amounts, its calls and the reason.
    static Invoice Failed(const Invoice& inv, const std::string& why) {
        Invoice failed;
        failed.customer = inv.customer;
        failed.customer_name = inv.customer_name;
        failed.plan = inv.plan;
        failed.period = inv.period;
        failed.period_start = inv.period_start;
        failed.period_end = inv.period_end;
        failed.time_zone = inv.time_zone;
        failed.currency = inv.currency;
        failed.rounding = inv.rounding;
        failed.rounding_place = inv.rounding_place;
        failed.finalize_grace = inv.finalize_grace;
        failed.tax_percent = inv.tax_percent;
        SetZeroAmounts(&failed);
        failed.calls = inv.calls;
        failed.error = why;
        return failed;
    }

    // Why a row cannot be priced (a saturated count), or "".
    std::string SaturationError(const Rollup& r) const {
        if (r.calls == kQuantitySaturated) return "the number of calls overflowed (2^63-1)";
        for (const UnitId unit_id : units_in_order_) {
            const size_t u = unit_id;
            if (r.quantities[u] != kQuantitySaturated) continue;
            return "the quantity of " + catalog_.units.Name(static_cast<UnitId>(u)) + " of model " +
                   ctx_->plan->versions[r.cell.version].models[r.cell.model].name + " in hour " +
                   FormatRfc3339(Instant{std::chrono::hours(r.hour)}) + " overflowed (2^63-1)";
        }
        return "";
    }

    void PriceLines(const std::vector<const Rollup*>& rows, uint16_t last_version, Invoice* out) {
        const Plan& plan = *ctx_->plan;
        Invoice& inv = *out;
        for (const Rollup* r : rows) {
            if (std::string why = SaturationError(*r); !why.empty()) throw PricingError(why);
        }
        const PlanVersion& terms = TermsVersion(plan, inv, plan.versions[last_version]);
        TALLY_ASSERT(inv.currency == terms.currency);  // ApplyTerms

        std::vector<Segment> segments = Segments(rows);
        // Segments add up per line in their own order (so an overflow is
        // found where it always was); the lines then go in LineKey::Order.
        // A line keeps the key of its first segment.
        std::vector<std::pair<LineKey, LineSum>> sums;
        std::unordered_map<uint128, size_t, OrderHash> slots;
        slots.reserve(64);
        for (const Segment& s : segments) {
            auto [slot, fresh] = slots.try_emplace(s.key.Order(), sums.size());
            if (fresh) sums.push_back({s.key, LineSum{}});
            LineSum& sum = sums[slot->second].second;
            sum.quantity = CheckedAdd(sum.quantity, s.quantity);
            sum.first_hour = std::min(sum.first_hour, s.hour);
            sum.last_hour = std::max(sum.last_hour, s.hour);
        }
        std::vector<std::pair<uint128, size_t>> order;
        order.reserve(slots.size());
        for (const auto& [line_order, index] : slots) order.emplace_back(line_order, index);
        std::sort(order.begin(), order.end());  // orders are distinct: no tie to break
        std::vector<const std::pair<LineKey, LineSum>*> ordered;
        ordered.reserve(order.size());
        for (const auto& [line_order, index] : order) ordered.push_back(&sums[index]);
        LinesToInvoice(ordered, terms, &inv);
    }

    // The usage lines of `ordered` (in line order; quantity 0 makes none),
    // then discounts, coupons, rounding, commitment, tax and grants.
    void LinesToInvoice(const std::vector<const std::pair<LineKey, LineSum>*>& ordered, const PlanVersion& terms,
                        Invoice* out) {
        const Plan& plan = *ctx_->plan;
        Invoice& inv = *out;
        std::vector<Amount> net;  // usage line amounts after percent discounts
        for (const std::pair<LineKey, LineSum>* line : ordered) {
            const auto& [key, sum] = *line;
            if (sum.quantity == 0) continue;
            inv.lines.push_back(UsageLine(key, sum.quantity, inv.currency));
            inv.lines.back().first_hour = sum.first_hour;
            inv.lines.back().last_hour = sum.last_hour;
            inv.usage_exact += inv.lines.back().amount;
            net.push_back(inv.lines.back().amount);
            const std::string& vid = plan.versions[key.version].id;
            if (std::find(inv.plan_versions.begin(), inv.plan_versions.end(), vid) == inv.plan_versions.end()) {
                inv.plan_versions.push_back(vid);
            }
        }
        ApplyDiscounts(&inv, &net);
        Finish(terms, &inv);
    }

    void SetPeriod(int32_t period, const PlanVersion& v, const std::vector<AnchorTerm>& anchors, Invoice* inv) {
        if (!rule_.monthly()) {
            inv->period_start = *rule_.from;
            inv->period_end = *rule_.to;
            inv->period = FormatRfc3339(inv->period_start) + "/" + FormatRfc3339(inv->period_end);
            inv->time_zone = v.zone_name;
            return;
        }
        // The instants the rater assigns to this period (AnchoredPeriod).
        inv->period = MonthIdLabel(period);
        inv->time_zone = v.zone_name;
        const PeriodBounds bounds = AnchoredPeriodBounds(anchors, v.zone, period);
        inv->period_start = bounds.start;
        inv->period_end = bounds.end;
    }

    // Free quotas, then tiers, over the rows in time order.
    std::vector<Segment> Segments(const std::vector<const Rollup*>& rows) {
        const Plan& plan = *ctx_->plan;
        std::vector<Segment> out;
        std::vector<Quantities> paid(rows.size());
        std::map<std::pair<std::string, std::string>, int64_t> free_used;  // (quota, model)
        for (size_t i = 0; i < rows.size(); ++i) {
            const Rollup& r = *rows[i];
            const PlanVersion& v = plan.versions[r.cell.version];
            const ModelPricing& m = v.models[r.cell.model];
            const std::vector<const FreeQuota*>& quotas = Quotas(r.cell.version);
            for (const UnitId unit_id : units_in_order_) {
                const size_t u = unit_id;
                int64_t q = r.quantities[u];
                if (q > 0 && u >= kNumStdUnits && (m.priced_units & (1u << u)) == 0) {
                    LineKey key = BaseKey(r, m, static_cast<UnitId>(u));
                    key.unpriced = true;
                    out.push_back({key, q, r.hour});
                    continue;  // paid[i][u] stays 0: no quota, no tier, no amount
                }
                for (size_t qi = 0; qi < quotas.size() && q > 0; ++qi) {
                    const FreeQuota& quota = *quotas[qi];
                    if (!quota.Applies(m.name, static_cast<UnitId>(u))) continue;
                    int64_t& used = free_used[{quota.name, m.name}];
                    int64_t take = std::min(q, std::max<int64_t>(0, quota.tokens - used));
                    if (take == 0) continue;
                    used += take;
                    q -= take;
                    LineKey key = BaseKey(r, m, static_cast<UnitId>(u));
                    key.free_quota = InternFreeQuota(quota.name);
                    out.push_back({key, take, r.hour});
                }
                paid[i][u] = q;
            }
        }
        // Volume tiers need the period's total of each group first.
        std::vector<int64_t> totals;  // by tier group id (TierOf)
        for (size_t i = 0; i < rows.size(); ++i) {
            const Rollup& r = *rows[i];
            const PlanVersion& v = plan.versions[r.cell.version];
            for (const UnitId unit_id : units_in_order_) {
                const size_t u = unit_id;
                if (paid[i][u] == 0) continue;
                const TierOfCell tier = TierOf(r, static_cast<UnitId>(u));
                if (tier.rule < 0) continue;
                const TierRule& rule = v.tiers[static_cast<size_t>(tier.rule)];
                if (rule.mode == TierMode::kVolume) {
                    if (totals.size() <= tier.group) totals.resize(tier.group + 1, 0);
                    int64_t& t = totals[tier.group];
                    t = CheckedAdd(t, paid[i][u]);
                }
            }
        }
        std::vector<int64_t> running;  // by tier group id
        for (size_t i = 0; i < rows.size(); ++i) {
            const Rollup& r = *rows[i];
            const PlanVersion& v = plan.versions[r.cell.version];
            const ModelPricing& m = v.models[r.cell.model];
            for (const UnitId unit_id : units_in_order_) {
                const size_t u = unit_id;
                int64_t q = paid[i][u];
                if (q == 0) continue;
                LineKey key = BaseKey(r, m, static_cast<UnitId>(u));
                const TierOfCell tier = TierOf(r, static_cast<UnitId>(u));
                key.tier_rule = tier.rule;
                if (tier.rule < 0) {
                    out.push_back({key, q, r.hour});
                    continue;
                }
                const TierRule* rule = &v.tiers[static_cast<size_t>(tier.rule)];
                if (rule->mode == TierMode::kVolume) {
                    TALLY_ASSERT(tier.group < totals.size());  // the pass above saw this row
                    int64_t total = totals[tier.group];
                    size_t t = 0;
                    while (total > rule->tiers[t].up_to) ++t;
                    key.tier = static_cast<int>(t);
                    out.push_back({key, q, r.hour});
                    continue;
                }
                if (running.size() <= tier.group) running.resize(tier.group + 1, 0);
                SliceGraduated(*rule, &running[tier.group], q, [&](int t, int64_t take) {
                    key.tier = t;
                    out.push_back({key, take, r.hour});
                });
            }
        }
        return out;
    }

    // Lines summed as Feed adds segments to them, by line order.
    struct FedLines {
        std::unordered_map<uint128, size_t, OrderHash> slots;
        std::vector<std::pair<LineKey, LineSum>> sums;
        std::vector<size_t> group;  // volume lines: the tier group of each

        size_t Add(const LineKey& key, int64_t quantity, int32_t hour) {
            auto [slot, fresh] = slots.try_emplace(key.Order(), sums.size());
            if (fresh) sums.push_back({key, LineSum{}});
            LineSum& sum = sums[slot->second].second;
            sum.quantity = CheckedAdd(sum.quantity, quantity);
            sum.first_hour = std::min(sum.first_hour, hour);
            sum.last_hour = std::max(sum.last_hour, hour);
            return slot->second;
        }
    };

    // One row's segments as Segments makes them (free quotas, then tiers),
    // added to the running lines; a volume-tiered quantity goes to its line
    // without a tier (Snapshot picks it) and to its group's total.
    void FeedSegments(const Rollup& r) {
        const Plan& plan = *ctx_->plan;
        const PlanVersion& v = plan.versions[r.cell.version];
        const ModelPricing& m = v.models[r.cell.model];
        const std::vector<const FreeQuota*>& quotas = Quotas(r.cell.version);
        for (const UnitId unit_id : units_in_order_) {
            const size_t u = unit_id;
            int64_t q = r.quantities[u];
            if (q > 0 && u >= kNumStdUnits && (m.priced_units & (1u << u)) == 0) {
                LineKey key = BaseKey(r, m, unit_id);
                key.unpriced = true;
                fed_lines_.Add(key, q, r.hour);
                continue;  // no quota, no tier, no amount
            }
            for (size_t qi = 0; qi < quotas.size() && q > 0; ++qi) {
                const FreeQuota& quota = *quotas[qi];
                if (!quota.Applies(m.name, unit_id)) continue;
                int64_t& used = fed_free_used_[{quota.name, m.name}];
                int64_t take = std::min(q, std::max<int64_t>(0, quota.tokens - used));
                if (take == 0) continue;
                used += take;
                q -= take;
                LineKey key = BaseKey(r, m, unit_id);
                key.free_quota = InternFreeQuota(quota.name);
                fed_lines_.Add(key, take, r.hour);
            }
            if (q == 0) continue;
            LineKey key = BaseKey(r, m, unit_id);
            const TierOfCell tier = TierOf(r, unit_id);
            key.tier_rule = tier.rule;
            if (tier.rule < 0) {
                fed_lines_.Add(key, q, r.hour);
                continue;
            }
            const TierRule* rule = &v.tiers[static_cast<size_t>(tier.rule)];
            if (rule->mode == TierMode::kVolume) {
                if (fed_totals_.size() <= tier.group) fed_totals_.resize(tier.group + 1, 0);
                fed_totals_[tier.group] = CheckedAdd(fed_totals_[tier.group], q);
                const size_t line = fed_volume_.Add(key, q, r.hour);
                if (fed_volume_.group.size() <= line) fed_volume_.group.resize(line + 1);
                fed_volume_.group[line] = tier.group;
                continue;
            }
            if (fed_running_.size() <= tier.group) fed_running_.resize(tier.group + 1, 0);
            SliceGraduated(*rule, &fed_running_[tier.group], q, [&](int t, int64_t take) {
                key.tier = t;
                fed_lines_.Add(key, take, r.hour);
            });
        }
    }

    int InternFreeQuota(const std::string& name) {
        for (size_t i = 0; i < free_names_.size(); ++i) {
            if (free_names_[i] == name) return static_cast<int>(i);
        }
        free_names_.push_back(name);
        return static_cast<int>(free_names_.size() - 1);
    }

    // The free quotas of a version of the plan, then the subscription's;
    // made once per version.
    const std::vector<const FreeQuota*>& Quotas(uint16_t version) {
        if (quotas_.size() <= version) quotas_.resize(size_t{version} + 1);
        std::optional<std::vector<const FreeQuota*>>& cached = quotas_[version];
        if (cached) return *cached;
        const PlanVersion& v = ctx_->plan->versions[version];
        std::vector<const FreeQuota*> out;
        for (const auto& q : v.free_quotas) out.push_back(&q);
        if (ctx_->subscription != nullptr) {
            for (const auto& q : ctx_->subscription->free_quotas) out.push_back(&q);
        }
        cached = std::move(out);
        return *cached;
    }

    // Each model's place when a version's models are ordered by name (the
    // line order compares names); made once per version.
    const std::vector<uint16_t>& ModelRanks(uint16_t version) {
        if (model_ranks_.size() <= version) model_ranks_.resize(size_t{version} + 1);
        std::vector<uint16_t>& ranks = model_ranks_[version];
        const std::vector<ModelPricing>& models = ctx_->plan->versions[version].models;
        if (!ranks.empty() || models.empty()) return ranks;
        TALLY_ASSERT(models.size() <= 0xffff);
        std::vector<uint16_t> by_name(models.size());
        for (size_t i = 0; i < by_name.size(); ++i) by_name[i] = static_cast<uint16_t>(i);
        std::sort(by_name.begin(), by_name.end(), [&](uint16_t a, uint16_t b) { return models[a].name < models[b].name; });
        ranks.resize(models.size());
        for (size_t i = 0; i < by_name.size(); ++i) {
            // Names are a version's keys: two equal ones would need one rank.
            TALLY_ASSERT(i == 0 || models[by_name[i - 1]].name < models[by_name[i]].name);
            ranks[by_name[i]] = static_cast<uint16_t>(i);
        }
        return ranks;
    }

    // The tier rule of a cell's unit (FindTierRule) and its tier group,
    // numbered in the order first seen (TierGroup names it); looked up once
    // per version, model and unit.
    struct TierOfCell {
        int rule = -1;     // index into the version's tier rules, or -1
        size_t group = 0;  // meaningful when rule >= 0
    };
    TierOfCell TierOf(const Rollup& r, UnitId unit) {
        const uint64_t cell = uint64_t{r.cell.version} << 32 | uint64_t{r.cell.model} << 16 | uint64_t{unit};
        auto [it, fresh] = tier_of_.try_emplace(cell);
        if (!fresh) return it->second;
        const PlanVersion& v = ctx_->plan->versions[r.cell.version];
        const std::string& model = v.models[r.cell.model].name;
        TierOfCell& t = it->second;
        const TierRule* rule = FindTierRule(v, model, unit, &t.rule);
        if (rule != nullptr) {
            auto [group, added] = tier_groups_.try_emplace(TierGroup(*rule, model, unit), tier_groups_.size());
            t.group = group->second;
        }
        return t;
    }

    LineKey BaseKey(const Rollup& r, const ModelPricing& m, UnitId unit) {
        TALLY_ASSERT(&ctx_->plan->versions[r.cell.version].models[r.cell.model] == &m);
        LineKey key;
        key.version = r.cell.version;
        key.model_rank = ModelRanks(r.cell.version)[r.cell.model];
        key.unit = unit;
        key.unit_rank = unit_rank_[unit];
        key.cell = r.cell;
        return key;
    }

    InvoiceLine UsageLine(const LineKey& key, int64_t qty, Currency currency) {
        const PlanVersion& v = ctx_->plan->versions[key.version];
        const ModelPricing& m = v.models[key.cell.model];
        InvoiceLine line;
        line.kind = key.free_quota >= 0 ? LineKind::kFreeQuota : LineKind::kUsage;
        line.plan_version = v.id;
        line.model = m.name;
        line.unit = catalog_.units.Name(key.unit);
        line.band = m.BandLabel(key.cell.band);
        if (key.cell.condition != kNone) {
            const auto& oc = m.bands[key.cell.band].output_conditions[key.cell.condition];
            line.output_condition = OutputConditionLabel(oc);
        }
        if (key.cell.window != kNone) line.window = m.windows[key.cell.window].name;
        line.batch = (key.cell.flags & kFlagBatch) != 0;
        line.thinking = (key.cell.flags & kFlagThinking) != 0;
        line.quantity = qty;
        line.amount = Amount::Zero(currency);
        if (key.unpriced) {
            line.kind = LineKind::kUnpriced;
            line.description = "not priced by plan " + ctx_->plan->name;
            return line;  // no rate, amount 0
        }
        std::optional<Rate> rate = CellRate(m, key.cell, key.unit);
        if (!rate) {
            throw PricingError("plan " + ctx_->plan->name + " version " + v.id + " has no rate for " + line.unit +
                               " of model " + m.name + " in band " + line.band);
        }
        if (key.free_quota >= 0) {
            line.description = free_names_[static_cast<size_t>(key.free_quota)];
            line.rate = Rate(Decimal(), rate->per());
            return line;  // amount 0
        }
        if (key.tier_rule >= 0) {
            const TierRule& rule = v.tiers[static_cast<size_t>(key.tier_rule)];
            const Tier& tier = rule.tiers[static_cast<size_t>(key.tier)];
            line.tier = rule.name + " #" + std::to_string(key.tier + 1);
            if (tier.rate) {
                rate = tier.rate;
            } else {
                rate = *rate * *tier.multiplier;
            }
        }
        line.rate = rate;
        line.amount = rate->AmountFor(qty, currency, RoundingMode::kHalfEven);
        return line;
    }

    // Contract discounts compound per line; each percent coupon then takes
    // its share of what the contract discounts left; amount coupons last.
    void ApplyDiscounts(Invoice* inv, std::vector<Amount>* net) {
        const Subscription* sub = ctx_->subscription;
        if (sub == nullptr) return;
        size_t usage_lines = net->size();
        auto eligible = [&](size_t i, const std::vector<std::string>& models) {
            return inv->lines[i].kind == LineKind::kUsage && ModelListed(models, inv->lines[i].model);
        };
        for (const PercentDiscount& d : sub->discounts) {
            Amount total = Amount::Zero(inv->currency);
            for (size_t i = 0; i < usage_lines; ++i) {
                if (!eligible(i, d.models)) continue;
                const Amount off = (*net)[i] * d.percent;
                (*net)[i] -= off;
                total += off;
            }
            if (total.is_zero()) continue;
            InvoiceLine line;
            line.kind = LineKind::kDiscount;
            line.description = d.name + " (" + d.percent.ToString() + "%)";
            line.amount = -total;
            inv->lines.push_back(line);
        }
        Amount remaining = Amount::Zero(inv->currency);
        for (const Amount& n : *net) remaining += n;
        for (size_t ci = 0; ci < sub->coupons.size(); ++ci) {
            const Coupon& c = sub->coupons[ci];
            if (c.expires && inv->period_start >= *c.expires) continue;
            Amount off = Amount::Zero(inv->currency);
            std::string what;
            if (c.percent) {
                for (size_t i = 0; i < usage_lines; ++i) {
                    if (eligible(i, c.models)) off += (*net)[i] * *c.percent;
                }
                if (c.cap) off = Amount::Min(off, *c.cap);
                what = c.percent->ToString() + "%";
            } else {
                TALLY_ASSERT(ctx_->coupon_balances[ci].has_value());  // an amount coupon has a balance
                off = *ctx_->coupon_balances[ci];
                what = c.amount->ToString() + " " + std::string(inv->currency.code());
            }
            off = Amount::Min(off, Amount::Max(remaining, Amount::Zero(inv->currency)));
            if (off.is_zero()) continue;
            if (c.amount) *ctx_->coupon_balances[ci] -= off;
            remaining -= off;
            InvoiceLine line;
            line.kind = LineKind::kCoupon;
            line.description = "coupon " + c.code + " (" + what + ")";
            line.amount = -off;
            inv->lines.push_back(line);
        }
    }

    void Finish(const PlanVersion& terms, Invoice* inv) {
        const int digits = inv->currency.minor_digits();
        for (auto& line : inv->lines) {
            TALLY_ASSERT(line.amount.currency() == inv->currency);
            TALLY_ASSERT(BeforeCommitment(line.kind));
            line.amount_rounded = line.amount.RoundToMinor(inv->rounding);
            inv->exact_subtotal += line.amount;
            inv->subtotal += line.amount_rounded;
        }
        if (inv->rounding_place == RoundingPlace::kInvoice) {
            // Each line shows its rounded amount; this line makes them add up
            // to the exact sum rounded once (docs/pricing.md, rounding place).
            const Amount difference = inv->exact_subtotal.RoundToMinor(inv->rounding) - inv->subtotal;
            if (!difference.is_zero()) {
                InvoiceLine line;
                line.kind = LineKind::kRounding;
                line.description = "rounding to the invoice's exact sum";
                line.amount = difference;
                line.amount_rounded = difference;
                inv->subtotal += difference;
                inv->lines.push_back(line);
            }
        }
        std::optional<Amount> commitment = terms.minimum_commitment;
        if (ctx_->subscription != nullptr && ctx_->subscription->minimum_commitment) {
            commitment = ctx_->subscription->minimum_commitment;
        }
        if (commitment) {
            const Amount floor = commitment->RoundToMinor(inv->rounding);
            if (inv->subtotal < floor) {
                InvoiceLine line;
                line.kind = LineKind::kCommitment;
                line.description =
                    "minimum commitment " + floor.ToString(digits) + " " + std::string(inv->currency.code());
                line.amount = floor - inv->subtotal;
                line.amount_rounded = line.amount;
                inv->subtotal = floor;
                inv->lines.push_back(line);
            }
        }
        inv->tax = (inv->subtotal * inv->tax_percent).RoundToMinor(inv->rounding);
        inv->total = inv->subtotal + inv->tax;
        inv->amount_due = inv->total;
        if (ctx_->subscription == nullptr) return;
        // Grants pay in order of expiry (earliest first, no expiry last).
        const auto& grants = ctx_->subscription->grants;
        std::vector<size_t> order(grants.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            const auto& ea = grants[a].expires;
            const auto& eb = grants[b].expires;
            if (ea.has_value() != eb.has_value()) return ea.has_value();
            return ea.has_value() && *ea < *eb;
        });
        for (size_t i : order) {
            const Grant& g = grants[i];
            if (g.expires && inv->period_start >= *g.expires) continue;
            Amount& balance = ctx_->grant_balances[i];
            const Amount use = Amount::Min(balance, Amount::Max(inv->amount_due, Amount::Zero(inv->currency)));
            if (use.is_zero()) continue;
            balance -= use;
            inv->amount_due -= use;
            inv->grants.push_back({g.name, use});
        }
    }

    const Catalog& catalog_;
    const PeriodRule& rule_;
    CustomerContext* ctx_;
    const Subscription* made_subscription_;  // ctx_'s when made: Use checks a new context has them
    const Plan* made_plan_;
    std::vector<std::string> free_names_;  // free quota names, by line key index
    std::vector<UnitId> units_in_order_;   // every unit of the catalog, in canonical order
    std::array<int, kMaxUnits> unit_rank_{};
    std::vector<std::optional<std::vector<const FreeQuota*>>> quotas_;  // by version (Quotas)
    std::vector<std::vector<uint16_t>> model_ranks_;                     // by version (ModelRanks)
    std::unordered_map<uint64_t, TierOfCell> tier_of_;                   // by version, model, unit (TierOf)
    std::unordered_map<std::string, size_t> tier_groups_;                // TierGroup -> group id
    // The cumulative pricer's state (Feed, Snapshot).
    size_t fed_ = 0;
    std::string fed_customer_;
    int32_t fed_period_ = 0;
    uint16_t fed_last_version_ = 0;
    int64_t fed_calls_ = 0;
    std::string fed_saturated_;  // the first fed row's saturation error
    std::string fed_overflow_;   // a sum overflowed
    std::map<std::pair<std::string, std::string>, int64_t> fed_free_used_;  // (quota, model), as Segments
    std::vector<int64_t> fed_running_;                                       // graduated: by tier group
    std::vector<int64_t> fed_totals_;                                        // volume: by tier group
    FedLines fed_lines_;   // every line but volume-tiered ones
    FedLines fed_volume_;  // volume-tiered lines, without their tier
};

}  // namespace

std::string_view LineKindName(LineKind kind) {
    switch (kind) {
        case LineKind::kUsage: return "usage";
        case LineKind::kFreeQuota: return "free_quota";
        case LineKind::kDiscount: return "discount";
        case LineKind::kCoupon: return "coupon";
        case LineKind::kCommitment: return "commitment";
        case LineKind::kUnpriced: return "unpriced";
        case LineKind::kRounding: return "rounding";
        case LineKind::kAdjustment: return "adjustment";
    }
    TALLY_UNREACHABLE();
}

std::optional<Rate> CellRate(const ModelPricing& m, const CellKey& cell, UnitId unit) {
    TALLY_ASSERT(cell.band < m.bands.size());
    const bool batch = (cell.flags & kFlagBatch) != 0;
    CellPlace place;
    place.band = cell.band;
    if (cell.condition != kNone) place.condition = cell.condition;
    if (cell.window != kNone) place.window = cell.window;
    place.batch = batch;
    place.thinking = (cell.flags & kFlagThinking) != 0;
    std::optional<StatedRate> stated = FindStatedRate(m, place, unit);
    if (!stated) return std::nullopt;
    Rate rate = stated->rate;
    // Multipliers apply only to rates not taken from a table of their own kind.
    const Window* window = place.window ? &m.windows[*place.window] : nullptr;
    if (window != nullptr && window->multiplier && !stated->from_window_table) {
        rate = rate * *window->multiplier;
    }
    if (batch && m.batch.multiplier && !stated->from_batch_table) {
        bool keep_cache_rate = (unit == kUnitCachedInput || unit == kUnitCachedInputExplicit) &&
                               m.batch.cache_hits == BatchCache::kFullCacheRate && !stated->share_in_batch_table;
        if (!keep_cache_rate) rate = rate * *m.batch.multiplier;
    }
    return rate;
}

namespace {

// The periods in which `customer`'s subscriptions (earliest `from` first)
// bill a commitment whether or not they have usage (CommitmentHorizon), and
// which subscription does in each, by plan name: the latest in force.
std::map<int32_t, std::map<std::string_view, const Subscription*>> CommitmentPeriods(
    const Catalog& catalog, const std::vector<const Subscription*>& subs, const std::vector<AnchorTerm>& anchors,
    const CommitmentHorizon& horizon, const std::string& customer, std::optional<int32_t> first_usage) {
    std::vector<const Subscription*> sorted = subs;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Subscription* a, const Subscription* b) {
        return a->from.value_or(Instant::min()) < b->from.value_or(Instant::min());
    });
    std::map<int32_t, std::map<std::string_view, const Subscription*>> out;
    for (size_t k = 0; k < sorted.size(); ++k) {
        const Subscription& s = *sorted[k];
        const Plan* plan = catalog.FindPlan(s.plan);
        if (plan == nullptr || plan->versions.empty() || !MayCommit(*plan, s)) continue;
        int32_t start = horizon.through;
        if (s.from) {
            const PlanVersion* v = plan->VersionAt(*s.from);
            ZoneClock clock(v != nullptr ? v->zone : plan->versions.front().zone);
            start = AnchoredPeriod(anchors, &clock, *s.from);
        } else {
            if (first_usage) start = std::min(start, *first_usage);
            auto f = horizon.first_billed.find(customer);
            if (f != horizon.first_billed.end()) start = std::min(start, f->second);
        }
        const Instant from = s.from.value_or(Instant::min());
        const Instant next = k + 1 < sorted.size() ? sorted[k + 1]->from.value_or(Instant::min()) : Instant::max();
        for (int32_t p = start; p <= horizon.through; ++p) {
            const PeriodBounds bounds = AnchoredPeriodBounds(anchors, PeriodZoneVersion(*plan, p, anchors).zone, p);
            if (next <= bounds.start) break;  // replaced before this period began
            if (from >= bounds.end) continue;
            out[p][plan->name] = &s;  // a later subscription on the same plan replaces an earlier one
        }
    }
    return out;
}

// PriceRollupsThrough's cuts of one customer's last period, which
// PriceRollupsImpl prices in one pass (PeriodPricer::Feed) instead of once.
struct Cumulative {
    std::string customer;
    int32_t period = 0;
    const std::vector<int32_t>* until_hours = nullptr;
    std::vector<std::vector<Invoice>> out;  // per cut: the period's invoices
    std::vector<bool> priced;               // per cut: in `out` (it has rows of the period)
    bool done = false;                      // the period was priced
    bool unusable = false;                  // invoices of other customers or of later periods were made
};

// PriceRollups; with `cum`, the invoices of cum->period (of cum->customer)
// are made per cut into cum->out instead of the returned ones.
std::vector<Invoice> PriceRollupsImpl(const Catalog& catalog, const std::vector<Subscription>& subscriptions,
                                      const std::string& default_plan, const PeriodRule& period,
                                      const std::vector<Rollup>& rollups, const CommitmentHorizon* horizon,
                                      Cumulative* cum) {
    std::unordered_map<std::string, std::vector<const Subscription*>> subs;
    for (const auto& s : subscriptions) subs[s.customer].push_back(&s);
    // Customers without a subscription were rated on default_plan: their
    // rollups carry it, as every rollup carries its own plan.
    TALLY_ASSERT(catalog.FindPlan(default_plan) != nullptr);
    // With a horizon, customers whose subscriptions may bill a commitment
    // are priced even without rollups.
    std::vector<std::string> committed;
    if (horizon != nullptr) {
        for (const Subscription& s : subscriptions) {
            if (!horizon->customers.empty() &&
                !std::binary_search(horizon->customers.begin(), horizon->customers.end(), s.customer)) {
                continue;
            }
            if (MayCommit(catalog, s)) committed.push_back(s.customer);
        }
        std::sort(committed.begin(), committed.end());
        committed.erase(std::unique(committed.begin(), committed.end()), committed.end());
    }

    std::vector<Invoice> invoices;
    size_t i = 0;
    size_t next_committed = 0;
    while (i < rollups.size() || next_committed < committed.size()) {
        const std::string customer =
            next_committed == committed.size() ||
                    (i < rollups.size() && rollups[i].customer <= committed[next_committed])
                ? rollups[i].customer
                : committed[next_committed];
        if (next_committed < committed.size() && committed[next_committed] == customer) ++next_committed;
        const size_t begin = i;
        while (i < rollups.size() && rollups[i].customer == customer) ++i;
        const size_t end = i;

        auto it = subs.find(customer);
        // The subscription that put the customer on `plan` for calls up to
        // `until`: the latest such one in force by then (else the first).
        auto subscription_for = [&](const Plan& plan, Instant until) -> const Subscription* {
            if (it == subs.end()) return nullptr;
            const Subscription* best = nullptr;
            const Subscription* first = nullptr;
            for (const Subscription* s : it->second) {
                if (s->plan != plan.name) continue;
                const Instant from = s->from.value_or(Instant::min());
                if (first == nullptr || from < first->from.value_or(Instant::min())) first = s;
                if (from < until && (best == nullptr || from > best->from.value_or(Instant::min()))) best = s;
            }
            return best != nullptr ? best : first;
        };
        const std::vector<AnchorTerm> anchors =
            AnchorTerms(it != subs.end() ? it->second : std::vector<const Subscription*>{});
        if (cum != nullptr && customer != cum->customer) cum->unusable = true;
        // Coupon and grant balances run on per subscription, across periods.
        std::map<const Subscription*, CustomerContext> contexts;
        auto context_in = [&](std::map<const Subscription*, CustomerContext>& in, const Subscription* sub,
                              const Plan& plan) -> CustomerContext& {
            auto [ctx_it, fresh] = in.try_emplace(sub);
            CustomerContext& ctx = ctx_it->second;
            if (fresh) {
                ctx.subscription = sub;
                ctx.plan = sub != nullptr ? catalog.FindPlan(sub->plan) : &plan;
                TALLY_ASSERT(ctx.plan != nullptr);
                if (sub != nullptr) {
                    for (const auto& g : sub->grants) ctx.grant_balances.push_back(g.amount);
                    for (const auto& c : sub->coupons) ctx.coupon_balances.push_back(c.amount);
                }
            }
            return ctx;
        };
        auto context_for = [&](const Subscription* sub, const Plan& plan) -> CustomerContext& {
            return context_in(contexts, sub, plan);
        };
        std::map<int32_t, std::map<std::string_view, const Subscription*>> without_usage;
        if (horizon != nullptr && it != subs.end()) {
            std::optional<int32_t> first_usage;
            for (size_t r = begin; r < end; ++r) {
                first_usage = std::min(first_usage.value_or(rollups[r].period), rollups[r].period);
            }
            without_usage = CommitmentPeriods(catalog, it->second, anchors, *horizon, customer, first_usage);
        }
        size_t r = begin;
        auto empty = without_usage.begin();
        while (r < end || empty != without_usage.end()) {
            const int32_t p = empty == without_usage.end() || (r < end && rollups[r].period <= empty->first)
                                  ? rollups[r].period
                                  : empty->first;
            // A period's calls under each plan the customer was on in it, by
            // plan name (a plan's index depends on the catalog's load order).
            std::map<std::string_view, std::vector<const Rollup*>> by_plan;
            for (; r < end && rollups[r].period == p; ++r) {
                TALLY_ASSERT(rollups[r].cell.plan < catalog.plans.size());
                auto& rows = by_plan[catalog.plans[rollups[r].cell.plan].name];
                TALLY_ASSERT(rows.empty() || rows.back()->hour <= rollups[r].hour);
                rows.push_back(&rollups[r]);
            }
            std::map<std::string_view, const Subscription*> idle;  // plans with a commitment and no usage
            std::map<std::string_view, const Subscription*> commits;  // every plan billing one without usage
            if (empty != without_usage.end() && empty->first == p) {
                commits = empty->second;
                for (const auto& [plan_name, sub] : empty->second) {
                    if (by_plan.try_emplace(plan_name).second) idle[plan_name] = sub;
                }
                ++empty;
            }
            if (cum != nullptr && cum->done) cum->unusable = true;  // a period after the cumulative one
            if (cum != nullptr && customer == cum->customer && p == cum->period) {
                // Each cut as PriceRollups would price its prefix: the plans
                // with rows before the cut, and those billing a commitment
                // without usage; each from the balances the earlier periods
                // left. One running pricer per plan, made again when the
                // cut's subscription (in force at its last hour) changes.
                struct Running {
                    const Subscription* subscription = nullptr;
                    const Plan* plan = nullptr;
                    std::unique_ptr<PeriodPricer> pricer;
                };
                std::map<std::string_view, Running> running;
                const size_t cuts = cum->until_hours->size();
                cum->out.assign(cuts, {});
                cum->priced.assign(cuts, false);
                cum->done = true;
                for (size_t k = 0; k < cuts; ++k) {
                    const int32_t until_hour = (*cum->until_hours)[k];
                    bool any = false;
                    for (const auto& [plan_name, rows] : by_plan) {
                        any = any || (!rows.empty() && rows.front()->hour < until_hour);
                    }
                    if (!any) continue;  // no row of the period: PriceRollupsThrough prices the prefix alone
                    cum->priced[k] = true;
                    std::map<const Subscription*, CustomerContext> cut_contexts = contexts;
                    for (const auto& [plan_name, rows] : by_plan) {
                        const size_t n = static_cast<size_t>(
                            std::partition_point(rows.begin(), rows.end(),
                                                 [&](const Rollup* x) { return x->hour < until_hour; }) -
                            rows.begin());
                        if (n == 0) {
                            auto c = commits.find(plan_name);
                            if (c == commits.end()) continue;
                            const Plan& plan = *catalog.FindPlan(c->second->plan);
                            PeriodPricer pricer(catalog, period, &context_in(cut_contexts, c->second, plan));
                            if (std::optional<Invoice> inv = pricer.PriceWithoutUsage(customer, p, anchors)) {
                                cum->out[k].push_back(std::move(*inv));
                            }
                            continue;
                        }
                        const Plan& plan = catalog.plans[rows.front()->cell.plan];
                        const Instant until{std::chrono::hours(rows[n - 1]->hour + 1)};
                        CustomerContext& ctx = context_in(cut_contexts, subscription_for(plan, until), plan);
                        Running& run = running[plan_name];
                        if (run.pricer == nullptr || run.subscription != ctx.subscription || run.plan != ctx.plan ||
                            run.pricer->Fed() > n) {
                            run.subscription = ctx.subscription;
                            run.plan = ctx.plan;
                            run.pricer = std::make_unique<PeriodPricer>(catalog, period, &ctx);
                        } else {
                            run.pricer->Use(&ctx);
                        }
                        for (size_t x = run.pricer->Fed(); x < n; ++x) run.pricer->Feed(*rows[x]);
                        cum->out[k].push_back(run.pricer->Snapshot(anchors));
                    }
                }
                continue;
            }
            for (const auto& [plan_name, rows] : by_plan) {
                if (rows.empty()) {
                    const Subscription* sub = idle.at(plan_name);
                    const Plan& plan = *catalog.FindPlan(sub->plan);
                    PeriodPricer pricer(catalog, period, &context_for(sub, plan));
                    if (std::optional<Invoice> inv = pricer.PriceWithoutUsage(customer, p, anchors)) {
                        invoices.push_back(std::move(*inv));
                    }
                    continue;
                }
                const Plan& plan = catalog.plans[rows.front()->cell.plan];
                const Instant until{std::chrono::hours(rows.back()->hour + 1)};
                PeriodPricer pricer(catalog, period, &context_for(subscription_for(plan, until), plan));
                invoices.push_back(pricer.Price(rows, anchors));
            }
        }
    }
    return invoices;
}

}  // namespace

bool MayCommit(const Catalog& catalog, const Subscription& subscription) {
    const Plan* plan = catalog.FindPlan(subscription.plan);
    return plan != nullptr && MayCommit(*plan, subscription);
}

std::vector<Invoice> PriceRollups(const Catalog& catalog, const std::vector<Subscription>& subscriptions,
                                  const std::string& default_plan, const PeriodRule& period,
                                  const std::vector<Rollup>& rollups, const CommitmentHorizon* horizon) {
    TALLY_ASSERT(horizon == nullptr || period.monthly());
    // Projects change no price (pricing/project_cap.h): a cell's rows of one
    // hour are priced as one row, as without projects (a free quota or a
    // tier shared by the units of a row must see the same rows).
    if (std::any_of(rollups.begin(), rollups.end(), [](const Rollup& r) { return !r.project.empty(); })) {
        std::vector<Rollup> merged = rollups;
        for (Rollup& r : merged) r.project.clear();
        CanonicalizeRollups(&merged);
        return PriceRollupsImpl(catalog, subscriptions, default_plan, period, merged, horizon, nullptr);
    }
    return PriceRollupsImpl(catalog, subscriptions, default_plan, period, rollups, horizon, nullptr);
}

std::vector<std::vector<Invoice>> PriceRollupsThrough(const Catalog& catalog,
                                                      const std::vector<Subscription>& subscriptions,
                                                      const std::string& default_plan, const PeriodRule& period,
                                                      const std::vector<Rollup>& rollups, int32_t last_period,
                                                      const std::vector<int32_t>& until_hours,
                                                      const CommitmentHorizon* horizon) {
    TALLY_ASSERT(horizon == nullptr || period.monthly());
    for (const Rollup& r : rollups) TALLY_ASSERT(r.period <= last_period);
    std::vector<std::vector<Invoice>> out(until_hours.size());
    auto alone = [&](size_t k) {
        std::vector<Rollup> prefix;
        for (const Rollup& r : rollups) {
            if (r.period < last_period || r.hour < until_hours[k]) prefix.push_back(r);
        }
        out[k] = PriceRollups(catalog, subscriptions, default_plan, period, prefix, horizon);
    };
    const bool one_customer =
        !rollups.empty() && std::all_of(rollups.begin(), rollups.end(),
                                        [&](const Rollup& r) { return r.customer == rollups.front().customer; });
    if (!one_customer) {
        for (size_t k = 0; k < out.size(); ++k) alone(k);
        return out;
    }
    // As PriceRollups: projects summed away first (a prefix by hour keeps
    // whole hours, so it is the same prefix of the merged rows).
    if (std::any_of(rollups.begin(), rollups.end(), [](const Rollup& r) { return !r.project.empty(); })) {
        std::vector<Rollup> merged = rollups;
        for (Rollup& r : merged) r.project.clear();
        CanonicalizeRollups(&merged);
        return PriceRollupsThrough(catalog, subscriptions, default_plan, period, merged, last_period, until_hours,
                                   horizon);
    }
    Cumulative cum;
    cum.customer = rollups.front().customer;
    cum.period = last_period;
    cum.until_hours = &until_hours;
    const std::vector<Invoice> before =
        PriceRollupsImpl(catalog, subscriptions, default_plan, period, rollups, horizon, &cum);
    for (size_t k = 0; k < out.size(); ++k) {
        if (!cum.done || cum.unusable || !cum.priced[k]) {
            alone(k);
            continue;
        }
        out[k] = before;
        for (Invoice& inv : cum.out[k]) out[k].push_back(std::move(inv));
    }
    return out;
}

void AddAdjustments(Invoice* invoice, const std::vector<InvoiceLine>& adjustments) {
    TALLY_ASSERT(invoice != nullptr);
    TALLY_ASSERT(invoice->error.empty());
    Invoice& inv = *invoice;
    for (const InvoiceLine& line : adjustments) {
        TALLY_ASSERT(line.kind == LineKind::kAdjustment);
        TALLY_ASSERT(line.amount.currency() == inv.currency);
        TALLY_ASSERT(line.amount == line.amount_rounded);
        TALLY_ASSERT(line.amount_rounded == line.amount_rounded.RoundToMinor(inv.rounding));
        inv.lines.push_back(line);
        inv.subtotal += line.amount_rounded;
    }
    inv.tax = (inv.subtotal * inv.tax_percent).RoundToMinor(inv.rounding);
    inv.total = inv.subtotal + inv.tax;
    inv.amount_due = inv.total - GrantsUsed(inv);
    AssertFinished(inv);
}

Invoice EmptyInvoice(const Catalog& catalog, const Plan& plan, const Subscription* subscription,
                     const std::string& customer, int32_t period_month_id) {
    TALLY_ASSERT(!plan.versions.empty());
    TALLY_ASSERT(catalog.FindPlan(plan.name) != nullptr);
    TALLY_ASSERT(subscription == nullptr || subscription->plan == plan.name);
    const int anchor = AnchorDay(subscription);
    // The period's zone is that of the latest version begun before the
    // period (in that version's zone) ends, as the period's last call would
    // have had; the first version if none had.
    const PlanVersion* zone_version = &plan.versions.front();
    for (auto v = plan.versions.rbegin(); v != plan.versions.rend(); ++v) {
        if (v->effective_from < MonthPeriod(v->zone, period_month_id, anchor).end) {
            zone_version = &*v;
            break;
        }
    }
    Invoice inv;
    inv.customer = customer;
    inv.plan = plan.name;
    if (subscription != nullptr) inv.customer_name = subscription->customer_name;
    inv.period = MonthIdLabel(period_month_id);
    inv.time_zone = zone_version->zone_name;
    const PeriodBounds bounds = MonthPeriod(zone_version->zone, period_month_id, anchor);
    inv.period_start = bounds.start;
    inv.period_end = bounds.end;
    ApplyTerms(TermsVersion(plan, inv, *zone_version), subscription, &inv);
    SetZeroAmounts(&inv);
    AssertFinished(inv);
    return inv;
}

}  // namespace tally
