#include "test_plans.h"

#include <gtest/gtest.h>

#include "pricing/plan_yaml.h"

namespace tally::testing {

Catalog MustCatalog(const std::vector<std::string_view>& plan_texts) {
    Catalog catalog;
    for (auto text : plan_texts) {
        Diagnostics diagnostics;
        auto plan = ParsePlan(text, "test.yaml", &catalog.units, &diagnostics);
        // Warnings (e.g. a model without a cached_input price) leave a plan usable.
        for (const auto& d : diagnostics) {
            if (d.is_error()) ADD_FAILURE() << d.ToString();
        }
        if (plan) catalog.plans.push_back(std::move(*plan));
    }
    return catalog;
}

std::vector<std::string> PlanDiagnostics(const std::string& text, Severity severity) {
    UnitTable units;
    Diagnostics d;
    auto plan = ParsePlan(text, "p.yaml", &units, &d);
    EXPECT_EQ(plan.has_value(), CountErrors(d) == 0);
    std::vector<std::string> out;
    for (const auto& x : d) {
        if (x.severity != severity) continue;
        out.push_back(std::to_string(x.line) + ":" + std::to_string(x.column) + ": " + x.message);
    }
    return out;
}

std::string Dump(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
}

std::vector<Subscription> MustSubscriptions(std::string_view text, Catalog* catalog) {
    Diagnostics diagnostics;
    auto subs = ParseSubscriptions(text, "subs.yaml", catalog, &diagnostics);
    for (const auto& d : diagnostics) ADD_FAILURE() << d.ToString();
    return subs.value_or(std::vector<Subscription>{});
}

Instant At(const char* rfc3339) {
    auto t = ParseRfc3339(rfc3339);
    EXPECT_TRUE(t.has_value()) << rfc3339;
    return t.value_or(Instant{});
}

Decimal Dec(const char* text) {
    auto d = Decimal::Parse(text);
    EXPECT_TRUE(d.has_value()) << text;
    return d.value_or(Decimal());
}

Event MakeEvent(const EventSpec& s) {
    Event e;
    static int64_t counter = 0;
    e.id = "ev-" + std::to_string(++counter);
    e.source = "test";
    e.subject = s.customer;
    e.time = At(s.time);
    e.model = s.model;
    e.input_tokens = s.input;
    e.output_tokens = s.output;
    e.cached_input_tokens = s.cached;
    e.cached_input_explicit_tokens = s.cached_explicit;
    e.reasoning_tokens = s.reasoning;
    e.batch = s.batch;
    e.thinking = s.thinking;
    e.cache_write_tokens = s.cache_write;
    e.cache_write_1h_tokens = s.cache_write_1h;
    e.served_model = s.served_model;
    return e;
}

const char* const kDoubaoPlan = R"(
plan: doubao
versions:
  - version: "2025-06"
    effective_from: 2025-06-11T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      doubao-seed-1.6:
        bands:
          - up_to: 32000
            rates: {input: "0.80", cached_input: "0.16", output: "8.00"}
            output_conditions:
              - up_to: 200
                rates: {output: "2.00"}
          - up_to: 128000
            rates: {input: "1.20", cached_input: "0.16", output: "16.00"}
          - up_to: 256000
            rates: {input: "2.40", cached_input: "0.16", output: "24.00"}
        batch: {multiplier: "0.5", cache_hits: full_cache_rate}
)";

const char* const kDeepseekPlan = R"(
plan: deepseek
versions:
  - version: v1
    effective_from: 2025-02-26T16:30:00Z
    currency: USD
    time_zone: UTC
    models:
      deepseek-chat:
        rates: {input: "0.27", cached_input: "0.07", output: "1.10"}
        windows:
          - {name: off-peak, start: "16:30", end: "00:30", rates: {input: "0.135", cached_input: "0.035", output: "0.550"}}
  - version: v2
    effective_from: 2025-09-05T16:00:00Z
    currency: USD
    time_zone: UTC
    models:
      deepseek-chat:
        rates: {input: "0.56", cached_input: "0.07", output: "1.68"}
)";

const char* const kFeaturePlan = R"(
plan: feature
versions:
  - version: f1
    effective_from: 2025-01-01T00:00:00Z
    currency: USD
    time_zone: UTC
    rates_per: 1000
    models:
      grad:
        band_by: prompt
        band_pricing: graduated
        above_top_band: bill_at_top_band
        bands:
          - up_to: 1000
            rates: {input: "1", cached_input: "0.1", output: "2"}
          - up_to: 2000
            rates: {input: "3", cached_input: "0.3", output: "4"}
      uncached:
        band_by: uncached_input
        bands:
          - up_to: 1000
            rates: {input: "1", cached_input: "0.5", output: "1"}
          - up_to: 5000
            rates: {input: "2", cached_input: "0.5", output: "2"}
      think:
        rates: {input: "1", output: "2", reasoning: "3"}
        thinking_rates: {output: "8"}
        windows:
          - name: weekday-night
            start: "22:00"
            end: "06:00"
            weekdays: [mon, tue, wed, thu, fri]
            multiplier: "0.5"
        batch: {multiplier: "0.5", cache_hits: not_combined}
      stack:
        rates: {input: "10", cached_input: "1", cache_write: "12.5", cache_write_1h: "20", output: "50"}
        batch: {multiplier: "0.5", cache_hits: discounted}
      own-batch:
        bands:
          - up_to: 100
            rates: {input: "1", output: "2"}
            batch_rates: {input: "0.3"}
        batch: {cache_hits: discounted}
)";

}  // namespace tally::testing
