// Fuzzes the plan parser, and prices a few calls under every plan it accepts.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/assert.h"
#include "pricing/invoice.h"
#include "pricing/plan_yaml.h"
#include "pricing/rater.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 64 * 1024) return 0;  // plans are small; keep iterations fast
    std::string_view text(reinterpret_cast<const char*>(data), size);
    tally::Catalog catalog;
    tally::Diagnostics diagnostics;
    auto plan = tally::ParsePlan(text, "fuzz.yaml", &catalog.units, &diagnostics);
    if (!plan) {
        TALLY_ASSERT(!diagnostics.empty());
        for (const auto& d : diagnostics) TALLY_ASSERT(!d.message.empty());
        return 0;
    }
    TALLY_ASSERT(!plan->versions.empty());
    catalog.plans.push_back(std::move(*plan));
    const tally::Plan& p = catalog.plans.front();
    std::vector<tally::Subscription> subs;
    tally::Rater rater(catalog, subs, p.name, {});
    int64_t n = 0;
    for (const auto& v : p.versions) {
        for (const auto& m : v.models) {
            for (int64_t input : {0L, 1L, 200L, 32000L, 32001L, 300000L}) {
                tally::Event e;
                e.id = "f" + std::to_string(n++);
                e.source = "fuzz";
                e.subject = "c";
                e.time = v.effective_from;
                e.model = m.name;
                e.input_tokens = input;
                e.cached_input_tokens = input / 3;
                e.output_tokens = input / 2 + 7;
                e.reasoning_tokens = input / 5;
                e.batch = (n % 2) == 0;
                e.thinking = (n % 3) == 0;
                rater.Add(e);
            }
        }
    }
    try {
        auto invoices = tally::PriceRollups(catalog, subs, p.name, {}, rater.Rollups());
        for (const auto& inv : invoices) TALLY_ASSERT(inv.subtotal + inv.tax == inv.total);
    } catch (const tally::OverflowError&) {
    } catch (const tally::PricingError&) {
    }
    return 0;
}
