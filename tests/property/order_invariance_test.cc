// The invariant of DESIGN.md: an invoice is a function of the set of events
// and the plans. The same events in any order, split into any batches, give
// the same invoices to the last digit.
//
// Each run draws a seed and prints it; TALLY_SEED=<seed> replays that run
// exactly, TALLY_PROPERTY_CASES=<n> changes the number of cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>
#include <sstream>
#include <tuple>

#include "pricing/invoice.h"
#include "pricing/rater.h"
#include "unit/pricing/test_plans.h"

namespace tally {
namespace {

const char* const kContractPlan = R"(
plan: contract
versions:
  - version: c1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    tax_percent: "6"
    minimum_commitment: "0.05"
    models:
      x: {rates: {input: "0.8", cached_input: "0.16", cached_input_explicit: "0.08", output: "8"}}
      y:
        bands:
          - {up_to: 32000, rates: {input: "1.2", output: "16"}}
          - {rates: {input: "2.4", output: "24"}}
    tiers:
      - name: g
        models: [x]
        mode: graduated
        tiers:
          - {up_to: 200000, multiplier: "1"}
          - {up_to: 400000, multiplier: "0.9"}
          - {multiplier: "0.75"}
      - name: v
        models: [y]
        aggregate: per_model
        mode: volume
        tiers:
          - {up_to: 300000, multiplier: "1"}
          - {multiplier: "0.85"}
    free_quotas:
      - {name: trial, models: [x], tokens: 100000}
  - version: c2
    effective_from: 2025-11-15T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    tax_percent: "6"
    models:
      x: {rates: {input: "0.7", cached_input: "0.14", output: "7"}, routed_calls: bill_served}
      y: {rates: {input: "1", output: "10"}}
    free_quotas:
      - {name: trial, models: [x], tokens: 100000}
)";

const char* const kSubscriptions = R"(
subscriptions:
  - customer: c-deepseek
    plan: deepseek
    coupons: [{code: OFF, percent: "15", cap: "0.2"}]
  - customer: c-feature
    plan: feature
    grants: [{name: g, amount: "0.5"}]
  - customer: c-contract
    plan: contract
    discounts: [{name: d, percent: "7.5", models: [y]}]
    coupons: [{code: AMT, amount: "0.03"}]
    grants: [{name: g, amount: "0.1", expires: 2025-12-01T00:00:00Z}]
  - customer: c-anchor
    plan: contract
    billing_anchor_day: 10
  - customer: c-anchor
    plan: contract
    from: 2025-10-20T00:00:00+08:00
    billing_anchor_day: 25
  - customer: c-anchor
    plan: contract
    from: 2025-11-08T00:00:00+08:00
)";

struct Customer {
    const char* id;
    std::vector<const char*> models;
};

const std::vector<Customer> kCustomers = {
    {"c-doubao", {"doubao-seed-1.6"}},
    {"c-deepseek", {"deepseek-chat"}},
    {"c-feature", {"grad", "uncached", "think", "stack", "own-batch"}},
    {"c-contract", {"x", "y"}},
    {"c-anchor", {"x", "y"}},  // billing anchor day 10, then 25, then calendar months
};

int64_t Tokens(std::mt19937_64& rng) {
    // Values near the band bounds of the plans in use, and plain random ones.
    static const int64_t kEdges[] = {0,    1,    200,   201,   1000,   1001,   2000,
                                     2001, 5000, 32000, 32001, 128000, 128001, 256000};
    std::uniform_int_distribution<int> pick(0, 3);
    if (pick(rng) == 0) {
        std::uniform_int_distribution<size_t> e(0, std::size(kEdges) - 1);
        return kEdges[e(rng)];
    }
    std::uniform_int_distribution<int64_t> n(0, 300000);
    return n(rng);
}

Event RandomEvent(std::mt19937_64& rng, int serial) {
    std::uniform_int_distribution<size_t> c(0, kCustomers.size() - 1);
    const Customer& cust = kCustomers[c(rng)];
    std::uniform_int_distribution<size_t> m(0, cust.models.size() - 1);
    Event e;
    e.id = "e" + std::to_string(serial);
    e.source = "prop";
    e.subject = cust.id;
    e.model = cust.models[m(rng)];
    if (std::uniform_int_distribution<int>(0, 40)(rng) == 0) e.model = "unknown-model";
    // Between 2025-08-25 and 2025-12-05, which crosses months and plan versions.
    std::uniform_int_distribution<int64_t> t(1756080000000, 1764892800000);
    e.time = Instant(std::chrono::milliseconds(t(rng)));
    e.input_tokens = Tokens(rng);
    e.cached_input_tokens = std::uniform_int_distribution<int64_t>(0, e.input_tokens)(rng) / 2;
    e.cache_write_tokens =
        std::uniform_int_distribution<int>(0, 3)(rng) == 0 ? (e.input_tokens - e.cached_input_tokens) / 3 : 0;
    e.cached_input_explicit_tokens = std::uniform_int_distribution<int>(0, 3)(rng) == 0
                                         ? (e.input_tokens - e.cached_input_tokens - e.cache_write_tokens) / 4
                                         : 0;
    e.output_tokens = std::uniform_int_distribution<int>(0, 1)(rng)
                          ? Tokens(rng) / 20
                          : std::uniform_int_distribution<int64_t>(0, 400)(rng);
    e.reasoning_tokens = std::uniform_int_distribution<int64_t>(0, e.output_tokens)(rng) / 2;
    e.batch = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
    e.thinking = std::uniform_int_distribution<int>(0, 2)(rng) == 0;
    // A quarter of the calls routed by the Model Router: to a model the plan
    // prices (under c2's bill_served x, priced as y) or to one it does not.
    static const char* const kServed[] = {"x", "y", "grad", "upstream-z"};
    if (std::uniform_int_distribution<int>(0, 3)(rng) == 0) {
        e.served_model = kServed[std::uniform_int_distribution<size_t>(0, std::size(kServed) - 1)(rng)];
        if (e.served_model == e.model) e.served_model.clear();  // as the decoder does
    }
    // Projects, fewer than the cap (pricing/project_cap.h): "" is none, and
    // "other" is reserved for the calls beyond the cap.
    static const char* const kProjects[] = {"", "", "alpha", "beta", "gamma", "other"};
    e.project = kProjects[std::uniform_int_distribution<size_t>(0, std::size(kProjects) - 1)(rng)];
    return e;
}

std::string Render(const std::vector<Rollup>& rollups, const std::vector<Invoice>& invoices, int64_t rejected) {
    std::ostringstream out;
    out << "rejected " << rejected << "\n";
    // The rollups themselves, served model included (invoices bill the
    // model billed and do not show it).
    for (const Rollup& r : rollups) {
        out << "rollup " << r.customer << " " << r.period << " " << r.hour << " " << r.cell.plan << "/"
            << r.cell.version << "/" << r.cell.model << "/" << int{r.cell.band} << "/" << int{r.cell.condition} << "/"
            << int{r.cell.window} << "/" << int{r.cell.flags} << "/" << r.cell.served << " served '" << r.served_model
            << "' project '" << r.project << "' calls " << r.calls;
        for (int64_t q : r.quantities) out << " " << q;
        out << "\n";
    }
    for (const auto& inv : invoices) {
        out << inv.customer << " " << inv.period << " " << FormatRfc3339(inv.period_start) << " "
            << FormatRfc3339(inv.period_end) << " " << inv.calls << " " << inv.exact_subtotal.ToString() << "\n";
        for (const auto& l : inv.lines) {
            out << "  " << LineKindName(l.kind) << " " << l.plan_version << " " << l.model << " " << l.unit << " "
                << l.band << " " << l.output_condition << " " << l.window << " " << l.batch << l.thinking << " "
                << l.tier << " " << l.description << " " << l.quantity << " " << l.amount.ToString() << " "
                << l.amount_rounded.ToString() << " " << l.first_hour << "-" << l.last_hour << "\n";
        }
        out << "  " << inv.subtotal.ToString() << " " << inv.tax.ToString() << " " << inv.total.ToString() << " "
            << inv.amount_due.ToString() << "\n";
    }
    return out.str();
}

class OrderInvariance : public ::testing::Test {
   protected:
    OrderInvariance()
        : catalog_(testing::MustCatalog(
              {testing::kDoubaoPlan, testing::kDeepseekPlan, testing::kFeaturePlan, kContractPlan})) {
        subscriptions_ = testing::MustSubscriptions(kSubscriptions, &catalog_);
    }

    // Rates `events` split into batches at `cuts`, each batch in its own
    // Rater (as separate consumer batches would be), then sums the rollups.
    std::string Run(const std::vector<Event>& events, const std::vector<size_t>& cuts) {
        std::vector<Rollup> all;
        int64_t rejected = 0;
        size_t begin = 0;
        for (size_t b = 0; b <= cuts.size(); ++b) {
            size_t end = b < cuts.size() ? cuts[b] : events.size();
            Rater rater(catalog_, subscriptions_, "doubao", {});
            for (size_t i = begin; i < end; ++i) {
                if (rater.Add(events[i]).status == RateStatus::kRejected) ++rejected;
            }
            std::vector<Rollup> part = rater.Rollups();
            all.insert(all.end(), part.begin(), part.end());
            begin = end;
        }
        CanonicalizeRollups(&all);
        auto invoices = PriceRollups(catalog_, subscriptions_, "doubao", {}, all);
        // The rater and PriceRollups agree on periods: every rollup's hour
        // lies in its invoice's [period_start, period_end), and a customer's
        // consecutive periods on a plan meet.
        std::map<std::tuple<std::string, std::string, std::string>, const Invoice*> by_key;
        for (const auto& inv : invoices) by_key[{inv.customer, inv.plan, inv.period}] = &inv;
        for (const Rollup& r : all) {
            auto it = by_key.find({r.customer, catalog_.plans[r.cell.plan].name, MonthIdLabel(r.period)});
            if (it == by_key.end()) {
                ADD_FAILURE() << "no invoice for a rollup of " << r.customer << " " << MonthIdLabel(r.period);
                continue;
            }
            const Instant hour{std::chrono::hours(r.hour)};
            EXPECT_GE(hour, it->second->period_start) << r.customer << " " << it->second->period;
            EXPECT_LT(hour, it->second->period_end) << r.customer << " " << it->second->period;
        }
        std::map<std::pair<std::string, std::string>, const Invoice*> previous;  // (customer, plan)
        for (const auto& inv : invoices) {
            const Invoice*& prev = previous[{inv.customer, inv.plan}];
            if (prev != nullptr) {
                EXPECT_LE(prev->period_end, inv.period_start) << inv.customer << " " << prev->period << " overlaps";
                const int32_t id = MonthId(std::stoi(prev->period.substr(0, 4)), std::stoi(prev->period.substr(5, 2)));
                if (MonthIdLabel(id + 1) == inv.period) {
                    EXPECT_EQ(prev->period_end, inv.period_start) << inv.customer << " " << prev->period << " gap";
                }
            }
            prev = &inv;
        }
        for (const auto& inv : invoices) {
            Amount sum = Amount::Zero(inv.currency);
            for (const auto& l : inv.lines) sum += l.amount_rounded;
            EXPECT_EQ(sum, inv.subtotal) << inv.customer << " " << inv.period;
            EXPECT_EQ(inv.subtotal + inv.tax, inv.total);
        }
        return Render(all, invoices, rejected);
    }

    Catalog catalog_;
    std::vector<Subscription> subscriptions_;
};

TEST_F(OrderInvariance, AnyOrderAnyBatchingSameInvoices) {
    uint64_t seed = std::random_device{}();
    if (const char* s = std::getenv("TALLY_SEED")) seed = std::strtoull(s, nullptr, 10);
    int cases = 5000;
    if (const char* c = std::getenv("TALLY_PROPERTY_CASES")) cases = std::atoi(c);
    std::cout << "order invariance: seed " << seed << " (replay with TALLY_SEED=" << seed << "), " << cases
              << " cases\n";
    RecordProperty("seed", std::to_string(seed));
    std::mt19937_64 rng(seed);
    int64_t nonempty = 0;
    for (int k = 0; k < cases; ++k) {
        int n = std::uniform_int_distribution<int>(1, 60)(rng);
        std::vector<Event> events;
        for (int i = 0; i < n; ++i) events.push_back(RandomEvent(rng, i));
        std::string expected = Run(events, {});
        if (expected.find("usage") != std::string::npos) ++nonempty;
        std::vector<Event> shuffled = events;
        std::shuffle(shuffled.begin(), shuffled.end(), rng);
        std::vector<size_t> cuts;
        int batches = std::uniform_int_distribution<int>(0, 5)(rng);
        for (int b = 0; b < batches; ++b) cuts.push_back(std::uniform_int_distribution<size_t>(0, events.size())(rng));
        std::sort(cuts.begin(), cuts.end());
        std::string actual = Run(shuffled, cuts);
        ASSERT_EQ(expected, actual) << "case " << k << " differs; replay with TALLY_SEED=" << seed;
    }
    // The generator must produce priced usage, or the comparison proves nothing.
    EXPECT_GT(nonempty, cases * 9 / 10);
}

// Projects change no price: the same events with their projects, without
// any, and all in one project give the same invoices (Run's lines after the
// rollups), and the same rollups summed over projects.
TEST_F(OrderInvariance, ProjectsChangeNoPrice) {
    uint64_t seed = std::random_device{}();
    if (const char* s = std::getenv("TALLY_SEED")) seed = std::strtoull(s, nullptr, 10);
    int cases = 1000;
    if (const char* c = std::getenv("TALLY_PROPERTY_CASES")) cases = std::atoi(c);
    std::cout << "projects change no price: seed " << seed << " (replay with TALLY_SEED=" << seed << "), " << cases
              << " cases\n";
    RecordProperty("seed", std::to_string(seed));
    std::mt19937_64 rng(seed);
    // The invoices of a Render: every line but the rollups'.
    auto invoices_of = [](const std::string& rendered) {
        std::istringstream in(rendered);
        std::string out, line;
        while (std::getline(in, line)) {
            if (line.rfind("rollup ", 0) != 0) out += line + "\n";
        }
        return out;
    };
    int64_t with_projects = 0;
    for (int k = 0; k < cases; ++k) {
        const int n = std::uniform_int_distribution<int>(1, 60)(rng);
        std::vector<Event> events, none, one;
        for (int i = 0; i < n; ++i) events.push_back(RandomEvent(rng, i));
        for (Event e : events) {
            if (!e.project.empty()) ++with_projects;
            e.project.clear();
            none.push_back(e);
            e.project = "solo";
            one.push_back(e);
        }
        const std::string expected = invoices_of(Run(events, {}));
        ASSERT_EQ(expected, invoices_of(Run(none, {}))) << "case " << k << "; replay with TALLY_SEED=" << seed;
        ASSERT_EQ(expected, invoices_of(Run(one, {}))) << "case " << k << "; replay with TALLY_SEED=" << seed;
    }
    EXPECT_GT(with_projects, 0);
}

// The comparison above must see a difference: a changed quantity changes
// the invoices it compares.
TEST_F(OrderInvariance, ProjectComparisonDetectsAChangedCall) {
    std::mt19937_64 rng(7);
    std::vector<Event> events;
    for (int i = 0; i < 20; ++i) events.push_back(RandomEvent(rng, i));
    events[0].subject = "c-doubao";
    events[0].model = "doubao-seed-1.6";
    events[0].input_tokens = 1000;
    events[0].output_tokens = 300;
    // The drawn parts of the prompt and the completion may exceed these: none, so the call rates.
    events[0].cached_input_tokens = events[0].cached_input_explicit_tokens = 0;
    events[0].cache_write_tokens = events[0].cache_write_1h_tokens = events[0].reasoning_tokens = 0;
    std::vector<Event> changed = events;
    changed[0].project = "another";
    changed[0].input_tokens = 1001;
    EXPECT_NE(Run(events, {}).substr(Run(events, {}).find('\n')), Run(changed, {}).substr(Run(changed, {}).find('\n')));
}

// The same comparison must fail when the invariant is broken: dropping one
// event from the shuffled copy changes the invoices.
TEST_F(OrderInvariance, DetectsALostEvent) {
    std::mt19937_64 rng(42);
    std::vector<Event> events;
    for (int i = 0; i < 30; ++i) {
        Event e = RandomEvent(rng, i);
        e.model = e.subject == std::string("c-feature") ? "think" : e.model == "unknown-model" ? "x" : e.model;
        if (e.subject == std::string("c-contract")) e.model = "y";
        events.push_back(e);
    }
    events[0].subject = "c-doubao";
    events[0].model = "doubao-seed-1.6";
    events[0].input_tokens = 1000;
    events[0].output_tokens = 300;
    std::string expected = Run(events, {});
    std::vector<Event> fewer(events.begin() + 1, events.end());
    EXPECT_NE(expected, Run(fewer, {10}));
}

}  // namespace
}  // namespace tally
