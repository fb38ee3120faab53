// Plans and events for the pricing tests, built in memory.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pricing/diagnostic.h"
#include "pricing/event.h"
#include "pricing/plan.h"
#include "pricing/subscription.h"

namespace tally::testing {

// Parses plan texts into a catalog; fails the test on any error (warnings are fine).
Catalog MustCatalog(const std::vector<std::string_view>& plan_texts);

// The diagnostics of one plan text (file "p.yaml") of one severity, as
// "line:col: message" lines; checks that the plan parses exactly when it
// has no errors.
std::vector<std::string> PlanDiagnostics(const std::string& text, Severity severity);
// Lines of `lines`, each ended by a newline: for a failure message.
std::string Dump(const std::vector<std::string>& lines);
std::vector<Subscription> MustSubscriptions(std::string_view text, Catalog* catalog);
Instant At(const char* rfc3339);
Decimal Dec(const char* text);

struct EventSpec {
    const char* customer = "cust_1";
    const char* model = "m";
    const char* time = "2025-11-03T12:00:00Z";
    int64_t input = 0;
    int64_t output = 0;
    int64_t cached = 0;
    int64_t reasoning = 0;
    bool batch = false;
    bool thinking = false;
    int64_t cache_write = 0;
    int64_t cache_write_1h = 0;
    const char* served_model = "";  // the Model Router's served model; "" not routed
    int64_t cached_explicit = 0;    // explicit cache hits (data.cached_input_explicit_tokens)
};
Event MakeEvent(const EventSpec& spec);

// Doubao-Seed-1.6 as published (CNY, whole-call bands by prompt, output condition).
extern const char* const kDoubaoPlan;
// DeepSeek with the off-peak table and the 2025-09-05T16:00Z cut-over.
extern const char* const kDeepseekPlan;
// A constructed plan with graduated bands, thinking rates, reasoning price,
// a multiplier window on weekdays, and batch that does not combine with cache.
extern const char* const kFeaturePlan;

}  // namespace tally::testing
