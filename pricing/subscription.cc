#include "pricing/subscription.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "base/assert.h"
#include "pricing/event.h"
#include "pricing/internal/yaml_reader.h"

namespace tally {

namespace internal {
std::optional<std::chrono::seconds> ParseFinalizeGrace(YamlReader& r, const YAML::Node& node);
void ParseFreeQuotaList(const YAML::Node& node, YamlReader& r, UnitTable& units, std::vector<FreeQuota>* out);
}

namespace {

using internal::YamlReader;

std::optional<Percent> ParsePercent(YamlReader& r, const YAML::Node& node) {
    auto d = r.NonNegative(node, "percent");
    if (!d) return std::nullopt;
    if (*d > Decimal::FromInt(100)) {
        r.Error(node, "percent must be between 0 and 100, not " + d->ToString());
        return std::nullopt;
    }
    return Percent(*d);
}

// An amount of the subscription's plan's currency.
std::optional<Amount> ParseAmount(YamlReader& r, const YAML::Node& node, std::string_view what, Currency currency) {
    auto d = r.NonNegative(node, what);
    if (!d) return std::nullopt;
    return Amount(currency, *d);
}

// The currency of every amount of a subscription on `plan_name`: the plan's
// (all its versions have one, plan_yaml.cc checks). None when the plan is
// unknown, which is an error of its own.
Currency PlanCurrency(const Catalog& catalog, std::string_view plan_name) {
    const Plan* plan = catalog.FindPlan(plan_name);
    if (plan == nullptr || plan->versions.empty()) return Currency();
    return plan->versions.front().currency;
}

Subscription ParseOne(YamlReader& r, const YAML::Node& node, Catalog* catalog) {
    Subscription s;
    r.CheckKeys(node, "a subscription",
                {"customer", "name", "from", "plan", "discounts", "coupons", "minimum_commitment", "grants",
                 "free_quotas", "finalize_grace", "billing_anchor_day"});
    if (auto c = r.Identifier(r.Required(node, "customer", "a subscription"), "customer id")) s.customer = *c;
    if (auto n = r.PrintableText(YamlReader::Optional(node, "name"), "customer name")) s.customer_name = *n;
    YAML::Node from = YamlReader::Optional(node, "from");
    s.from = r.Time(from, "from");
    if (s.from && (*s.from < kEventTimeMin || *s.from >= kEventTimeEnd)) {
        // The ledger stores it and reads it back as RFC 3339, which has
        // four-digit years; events outside the range are refused anyway.
        r.Error(from, "from '" + from.Scalar() + "' is outside the event time range [" + FormatRfc3339(kEventTimeMin) +
                          ", " + FormatRfc3339(kEventTimeEnd) + ")");
        s.from.reset();
    }
    YAML::Node plan = r.Required(node, "plan", "subscription of " + s.customer);
    if (auto p = r.Identifier(plan, "plan name")) {
        s.plan = *p;
        if (catalog->PlanIndex(*p) < 0) r.Error(plan, "no plan called '" + *p + "' was loaded");
    }
    const Currency currency = PlanCurrency(*catalog, s.plan);
    YAML::Node discounts = YamlReader::Optional(node, "discounts");
    if (discounts.IsDefined()) {
        if (!discounts.IsSequence()) r.Error(discounts, "discounts must be a list");
        for (const auto& d : discounts.IsSequence() ? discounts : YAML::Node()) {
            PercentDiscount pd;
            if (!r.ExpectMap(d, "a discount")) continue;
            r.CheckKeys(d, "a discount", {"name", "percent", "models"});
            if (auto n = r.Text(r.Required(d, "name", "a discount"), "name")) pd.name = *n;
            if (auto p = ParsePercent(r, r.Required(d, "percent", "discount '" + pd.name + "'"))) pd.percent = *p;
            r.TextList(YamlReader::Optional(d, "models"), "models", &pd.models);
            s.discounts.push_back(std::move(pd));
        }
    }
    YAML::Node coupons = YamlReader::Optional(node, "coupons");
    if (coupons.IsDefined()) {
        if (!coupons.IsSequence()) r.Error(coupons, "coupons must be a list");
        for (const auto& c : coupons.IsSequence() ? coupons : YAML::Node()) {
            Coupon coupon;
            if (!r.ExpectMap(c, "a coupon")) continue;
            r.CheckKeys(c, "a coupon", {"code", "percent", "amount", "cap", "models", "expires"});
            if (auto n = r.Text(r.Required(c, "code", "a coupon"), "code")) coupon.code = *n;
            YAML::Node percent = YamlReader::Optional(c, "percent");
            YAML::Node amount = YamlReader::Optional(c, "amount");
            if (percent.IsDefined() == amount.IsDefined()) {
                r.Error(c, "coupon '" + coupon.code + "' needs either percent or amount, not " +
                               (percent.IsDefined() ? "both" : "neither"));
            }
            coupon.percent = ParsePercent(r, percent);
            coupon.amount = ParseAmount(r, amount, "coupon amount", currency);
            YAML::Node cap = YamlReader::Optional(c, "cap");
            coupon.cap = ParseAmount(r, cap, "coupon cap", currency);
            if (cap.IsDefined() && amount.IsDefined()) {
                r.Error(cap, "a cap only makes sense on a percent coupon; an amount coupon is its own cap");
            }
            YAML::Node models = YamlReader::Optional(c, "models");
            r.TextList(models, "models", &coupon.models);
            if (models.IsDefined() && amount.IsDefined()) {
                r.Error(models, "an amount coupon applies to the whole invoice; limit models on percent coupons");
            }
            coupon.expires = r.Time(YamlReader::Optional(c, "expires"), "expires");
            s.coupons.push_back(std::move(coupon));
        }
    }
    s.minimum_commitment =
        ParseAmount(r, YamlReader::Optional(node, "minimum_commitment"), "minimum_commitment", currency);
    YAML::Node grants = YamlReader::Optional(node, "grants");
    if (grants.IsDefined()) {
        if (!grants.IsSequence()) r.Error(grants, "grants must be a list");
        for (const auto& g : grants.IsSequence() ? grants : YAML::Node()) {
            Grant grant;
            if (!r.ExpectMap(g, "a grant")) continue;
            r.CheckKeys(g, "a grant", {"name", "amount", "expires"});
            if (auto n = r.Text(r.Required(g, "name", "a grant"), "name")) grant.name = *n;
            if (auto a =
                    ParseAmount(r, r.Required(g, "amount", "grant '" + grant.name + "'"), "grant amount", currency)) {
                grant.amount = *a;
            }
            grant.expires = r.Time(YamlReader::Optional(g, "expires"), "expires");
            s.grants.push_back(std::move(grant));
        }
    }
    YAML::Node quotas = YamlReader::Optional(node, "free_quotas");
    if (quotas.IsDefined()) internal::ParseFreeQuotaList(quotas, r, catalog->units, &s.free_quotas);
    s.finalize_grace = internal::ParseFinalizeGrace(r, YamlReader::Optional(node, "finalize_grace"));
    YAML::Node anchor = YamlReader::Optional(node, "billing_anchor_day");
    if (auto text = r.Text(anchor, "billing_anchor_day")) {
        auto day = Decimal::Parse(*text);
        if (!day || !day->is_integer() || *day < Decimal::FromInt(1) || *day > Decimal::FromInt(kMaxBillingAnchorDay)) {
            r.Error(anchor, "billing_anchor_day '" + *text + "' is not a day of the month from 1 to " +
                                std::to_string(kMaxBillingAnchorDay) +
                                " (29, 30 and 31 are not in every month; 1 is the calendar month)");
        } else {
            s.billing_anchor_day = static_cast<int>(day->raw() / Decimal::kOne);
        }
    }
    return s;
}

}  // namespace

std::optional<std::vector<Subscription>> ParseSubscriptions(std::string_view text, std::string_view file_name,
                                                            Catalog* catalog, Diagnostics* diagnostics,
                                                            TextOrigin origin) {
    TALLY_ASSERT(catalog != nullptr);
    TALLY_ASSERT(diagnostics != nullptr);
    // One document; duplicate keys refused, merge keys resolved.
    std::optional<YAML::Node> document = internal::LoadDocument(text, file_name, diagnostics, origin);
    if (!document) return std::nullopt;
    YamlReader r{std::string(file_name), diagnostics};
    std::vector<Subscription> out;
    try {
        YAML::Node root = *document;
        if (!r.ExpectMap(root, "a subscriptions file")) return std::nullopt;
        r.CheckKeys(root, "a subscriptions file", {"subscriptions"});
        YAML::Node list = r.Required(root, "subscriptions", "a subscriptions file");
        if (list.IsDefined() && !list.IsSequence()) r.Error(list, "subscriptions must be a list");
        std::set<std::pair<std::string, Instant>> seen;
        for (const auto& node : list.IsSequence() ? list : YAML::Node()) {
            if (!r.ExpectMap(node, "a subscription")) continue;
            Subscription s = ParseOne(r, node, catalog);
            // A customer id that was refused is empty here and already reported.
            if (!s.customer.empty() && !seen.insert({s.customer, s.from.value_or(Instant::min())}).second) {
                r.Error(node, "customer '" + s.customer + "' has two subscriptions from the same instant" +
                                  (s.from ? " (" + FormatRfc3339(*s.from) + ")" : std::string(" (always)")) +
                                  ": give each its own 'from'");
            }
            out.push_back(std::move(s));
        }
    } catch (const internal::TooManyProblems&) {
        return std::nullopt;
    } catch (const YAML::Exception& e) {
        diagnostics->push_back(
            {std::string(file_name), e.mark.line + 1, e.mark.column + 1, "not valid YAML: " + e.msg});
        return std::nullopt;
    }
    if (r.errors() > 0) return std::nullopt;
    return out;
}

}  // namespace tally
