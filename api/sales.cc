#include "api/sales.h"

#include <algorithm>
#include <chrono>

#include "api/json_body.h"
#include "base/assert.h"
#include "billing/invoice_document.h"
#include "billing/invoice_run.h"
#include "pricing/plan_yaml.h"
#include "pricing/price_table.h"

namespace tally::api {

namespace {

using billing::JsonQuote;

// The name problems of a plan sent in a body carry (as a file name would).
constexpr std::string_view kBodyFile = "plan.yaml";

std::string ProblemsJson(const Diagnostics& problems) {
    std::string out = "[";
    for (size_t i = 0; i < problems.size(); ++i) {
        const Diagnostic& d = problems[i];
        out += (i == 0 ? "" : ",");
        out += "{\"line\":" + std::to_string(d.line) + ",\"column\":" + std::to_string(d.column) +
               ",\"severity\":\"" + std::string(d.severity_name()) + "\",\"message\":" + JsonQuote(d.message) + "}";
    }
    return out + "]";
}

// A 400 whose error body also lists the problems.
void InvalidPlan(const std::string& message, const Diagnostics& problems, Response* response) {
    TALLY_ASSERT(!problems.empty());
    std::string body = ErrorBody("invalid_plan", message);
    TALLY_ASSERT(body.back() == '}');
    body.pop_back();
    response->status = 400;
    response->body = body + ",\"problems\":" + ProblemsJson(problems) + "}";
}

std::string OptionalInstant(const std::optional<Instant>& t) {
    return t ? JsonQuote(FormatRfc3339(*t)) : std::string("null");
}

std::string StringsJson(const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) out += (i == 0 ? "" : ",") + JsonQuote(items[i]);
    return out + "]";
}

// A plan sent as a body: text, valid UTF-8, no NUL (the YAML parser's
// input is text; a 400 says which rule the body breaks).
void CheckPlanBody(std::string_view body) {
    if (body.find('\0') != std::string_view::npos) throw BadRequest("the plan holds a NUL byte: send its YAML text");
    if (!ValidUtf8(body)) throw BadRequest("the plan is not valid UTF-8: send its YAML text");
}

std::string VersionSummaryJson(const PlanVersion& v) {
    return "{\"id\":" + JsonQuote(v.id) + ",\"effective_from\":" + JsonQuote(FormatRfc3339(v.effective_from)) +
           ",\"effective_until\":" + OptionalInstant(v.effective_until) +
           ",\"currency\":" + JsonQuote(v.currency.code()) + ",\"zone\":" + JsonQuote(v.zone_name) +
           ",\"models\":" + std::to_string(v.models.size()) + "}";
}

std::string PriceTableJson(const PlanVersion& v, const UnitTable& units) {
    std::string out = "{\"id\":" + JsonQuote(v.id) + ",\"effective_from\":" +
                      JsonQuote(FormatRfc3339(v.effective_from)) +
                      ",\"effective_until\":" + OptionalInstant(v.effective_until) +
                      ",\"currency\":" + JsonQuote(v.currency.code()) + ",\"zone\":" + JsonQuote(v.zone_name) +
                      ",\"rounding\":" + JsonQuote(RoundingModeName(v.rounding)) +
                      ",\"round_at\":" + JsonQuote(RoundingPlaceName(v.rounding_place)) +
                      ",\"tax_percent\":" + JsonQuote(v.tax_percent.ToString()) + ",\"minimum_commitment\":" +
                      (v.minimum_commitment ? JsonQuote(v.minimum_commitment->ToString(v.currency.minor_digits()))
                                            : std::string("null")) +
                      ",\"tiers\":" + std::to_string(v.tiers.size()) +
                      ",\"free_quotas\":" + std::to_string(v.free_quotas.size()) + ",\"cells\":[";
    const std::vector<PriceCell> table = ResolvePriceTable(v, units);
    for (size_t i = 0; i < table.size(); ++i) {
        const PriceCell& c = table[i];
        out += (i == 0 ? "" : ",");
        out += "{\"model\":" + JsonQuote(c.model) + ",\"band\":" + JsonQuote(c.band) +
               ",\"output_condition\":" + JsonQuote(c.output_condition) + ",\"window\":" + JsonQuote(c.window) +
               ",\"batch\":" + (c.batch ? "true" : "false") + ",\"thinking\":" + (c.thinking ? "true" : "false") +
               ",\"rates\":[";
        for (size_t r = 0; r < c.rates.size(); ++r) {
            const PriceCellRate& rate = c.rates[r];
            out += (r == 0 ? "" : ",");
            out += "{\"unit\":" + JsonQuote(rate.unit_name);
            if (rate.rate) {
                out += ",\"rate\":" + JsonQuote(rate.rate->price().ToString()) +
                       ",\"per\":" + std::to_string(rate.rate->per()) + "}";
            } else {
                out += ",\"rate\":null,\"per\":null}";
            }
        }
        out += "]}";
    }
    return out + "]}";
}

// Against the published catalog, as a publish would parse it: a version may
// extend a published version of its plan.
void Validate(const Request& request, SalesBackend& backend, Response* response) {
    CheckPlanBody(request.body);
    const ingest::CatalogSnapshot published = backend.Catalog();
    response->body = ValidationJson(request.body, &published.catalog);
}

void Publish(const ledger::Principal& who, const Request& request, SalesBackend& backend, Response* response) {
    CheckPlanBody(request.body);
    const PublishOutcome outcome = backend.Publish(request.body, kBodyFile);
    if (const size_t errors = CountErrors(outcome.problems); errors > 0) {
        InvalidPlan("the plan is not valid (" + std::to_string(errors) + (errors == 1 ? " problem" : " problems") +
                        "): nothing was published",
                    outcome.problems, response);
        return;
    }
    if (!outcome.conflict.empty()) throw HttpError(409, "conflict", outcome.conflict);
    if (!outcome.published.empty()) {
        // After the publish committed: a failure here must not read as "try again".
        try {
            backend.Audit("key:" + who.key_id, ledger::RoleName(who.role), "plan.publish", outcome.plan,
                          "{\"published\":" + StringsJson(outcome.published) + "}");
        } catch (const std::exception&) {
            throw HttpError(500, "audit_failed",
                            "plan " + outcome.plan + " was published (" + StringsJson(outcome.published) +
                                "), but its audit row could not be written: do not publish it again; tell the "
                                "operator");
        }
    }
    response->body = "{\"plan\":" + JsonQuote(outcome.plan) + ",\"published\":" + StringsJson(outcome.published) +
                     ",\"unchanged\":" + StringsJson(outcome.unchanged) +
                     ",\"warnings\":" + ProblemsJson(outcome.problems) + "}";
}

void ListPlans(SalesBackend& backend, Response* response) {
    const ingest::CatalogSnapshot snapshot = backend.Catalog();
    const Instant now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    const std::map<std::string, int64_t> subscribed = SubscribedNow(snapshot.subscriptions, now);
    std::vector<const Plan*> plans;
    for (const Plan& p : snapshot.catalog.plans) plans.push_back(&p);
    std::sort(plans.begin(), plans.end(), [](const Plan* a, const Plan* b) { return a->name < b->name; });
    std::string out = "{\"plans\":[";
    for (size_t i = 0; i < plans.size(); ++i) {
        const Plan& p = *plans[i];
        const auto n = subscribed.find(p.name);
        out += (i == 0 ? "" : ",");
        out += "{\"plan\":" + JsonQuote(p.name) + ",\"name\":" + JsonQuote(p.display_name) +
               ",\"customers_subscribed\":" + std::to_string(n == subscribed.end() ? 0 : n->second) + ",\"versions\":[";
        for (size_t v = 0; v < p.versions.size(); ++v) out += (v == 0 ? "" : ",") + VersionSummaryJson(p.versions[v]);
        out += "]}";
    }
    response->body = out + "]}";
}

void ShowPlan(const Matched& m, const Target& target, SalesBackend& backend, Response* response) {
    const std::string* version = Parameter(target, "version");
    const std::string* at = Parameter(target, "at");
    if (version != nullptr && at != nullptr) throw BadRequest("give version= or at=, not both");
    std::optional<Instant> instant;
    if (at != nullptr) {
        instant = ParseRfc3339(*at);
        if (!instant) throw BadRequest("at must be an RFC 3339 instant (2025-11-01T00:00:00+08:00), not '" + *at + "'");
    }
    const ingest::CatalogSnapshot snapshot = backend.Catalog();
    const Plan* plan = snapshot.catalog.FindPlan(m.id);
    if (plan == nullptr) throw NotFound();
    std::vector<const PlanVersion*> versions;
    if (version != nullptr) {
        for (const PlanVersion& v : plan->versions) {
            if (v.id == *version) versions.push_back(&v);
        }
    } else if (instant) {
        if (const PlanVersion* v = plan->VersionAt(*instant)) versions.push_back(v);
    } else {
        for (const PlanVersion& v : plan->versions) versions.push_back(&v);
    }
    if (versions.empty()) throw NotFound();
    std::string out = "{\"plan\":" + JsonQuote(plan->name) + ",\"name\":" + JsonQuote(plan->display_name) +
                      ",\"versions\":[";
    for (size_t i = 0; i < versions.size(); ++i) {
        out += (i == 0 ? "" : ",") + PriceTableJson(*versions[i], snapshot.catalog.units);
    }
    response->body = out + "]}";
}

void Quote(const Request& request, SalesBackend& backend, Response* response) {
    const std::map<std::string, std::string> body =
        ParseJsonBody(request.body, {{"plan", true}, {"customer", true}, {"period", true}});
    quoting::QuoteInput in;
    in.plan_text = body.at("plan");
    in.plan_file = std::string(kBodyFile);
    in.customer = body.at("customer");
    in.period = body.at("period");
    in.known_customer_only = true;
    if (in.customer.empty()) throw BadRequest("field 'customer' is empty");
    if (!billing::PeriodIdOf(in.period)) throw BadRequest("period is a month like 2025-11, not '" + in.period + "'");
    quoting::QuoteResult result;
    const quoting::QuoteStatus status = backend.Quote(in, &result);
    switch (status.failure) {
        case quoting::QuoteFailure::kNone: break;
        case quoting::QuoteFailure::kBadInput:
        case quoting::QuoteFailure::kCurrency: throw BadRequest(status.message);
        case quoting::QuoteFailure::kNoPlans: throw HttpError(409, "conflict", status.message);
        case quoting::QuoteFailure::kUnknownCustomer: throw NotFound();
        case quoting::QuoteFailure::kInvalidPlan:
            InvalidPlan("the candidate plan is not valid (" + std::to_string(status.problems.size()) +
                            (status.problems.size() == 1 ? " problem" : " problems") + "): no quote",
                        status.problems, response);
            return;
        case quoting::QuoteFailure::kFailed: throw std::runtime_error("quote: " + status.message);
    }
    response->body = quoting::QuoteJson(result, in.period);
}

}  // namespace

std::string ValidationJson(std::string_view yaml, const Catalog* published) {
    UnitTable units = published != nullptr ? published->units : UnitTable();
    Diagnostics problems;
    const std::optional<Plan> plan = ParsePlan(yaml, kBodyFile, &units, &problems, published);
    std::string out = std::string("{\"ok\":") + (plan ? "true" : "false");
    out += ",\"plan\":" + (plan ? JsonQuote(plan->name) : std::string("null")) + ",\"versions\":[";
    if (plan) {
        for (size_t i = 0; i < plan->versions.size(); ++i) {
            const PlanVersion& v = plan->versions[i];
            out += (i == 0 ? "" : ",");
            out += "{\"id\":" + JsonQuote(v.id) + ",\"effective_from\":" + JsonQuote(FormatRfc3339(v.effective_from)) +
                   ",\"effective_until\":" + OptionalInstant(v.effective_until) +
                   ",\"models\":" + std::to_string(v.models.size()) + "}";
        }
    }
    return out + "],\"problems\":" + ProblemsJson(problems) + "}";
}

std::map<std::string, int64_t> SubscribedNow(const std::vector<Subscription>& subscriptions, Instant now) {
    // Per customer, the subscription in force at `now`: the latest `from` not after it.
    std::map<std::string, const Subscription*> current;
    for (const Subscription& s : subscriptions) {
        const Instant from = s.from.value_or(Instant::min());
        if (from > now) continue;
        const Subscription*& c = current[s.customer];
        if (c == nullptr || c->from.value_or(Instant::min()) <= from) c = &s;
    }
    std::map<std::string, int64_t> out;
    for (const auto& [customer, s] : current) ++out[s->plan];
    return out;
}

void HandleSales(const Matched& m, const Target& target, const ledger::Principal& who, const Request& request,
                 SalesBackend& backend, Response* response) {
    TALLY_ASSERT(IsSalesRoute(m.route->id));
    if (!Allows(*m.route, who.role)) {
        throw HttpError(403, "forbidden", "a " + std::string(ledger::RoleName(who.role)) + " key may not use this route");
    }
    switch (m.route->id) {
        case RouteId::kPlanValidate: Validate(request, backend, response); return;
        case RouteId::kPlanPublish: Publish(who, request, backend, response); return;
        case RouteId::kPlans: ListPlans(backend, response); return;
        case RouteId::kPlan: ShowPlan(m, target, backend, response); return;
        case RouteId::kQuotes: Quote(request, backend, response); return;
        default: break;
    }
    TALLY_UNREACHABLE();
}

}  // namespace tally::api
