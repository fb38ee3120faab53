#include <fstream>
#include <iostream>

#include "app/commands.h"
#include "app/report.h"
#include "ingest/event_decoder.h"
#include "pricing/invoice.h"
#include "pricing/rater.h"
#include "pricing/subscription.h"

namespace tally {

int RunRate(const RateOptions& o, std::ostream& out, std::ostream& err) {
    if (o.format != "table" && o.format != "json") {
        err << "tally rate: --format must be table or json, not '" << o.format << "'\n";
        return kExitUsage;
    }
    if (o.from.empty() != o.to.empty()) {
        err << "tally rate: give both --from and --to, or neither (then each calendar month is a period)\n";
        return kExitUsage;
    }
    PeriodRule period;
    if (!o.from.empty()) {
        period.from = ParseRfc3339(o.from);
        period.to = ParseRfc3339(o.to);
        if (!period.from || !period.to || *period.to <= *period.from) {
            err << "tally rate: --from and --to must be RFC 3339 instants (2025-09-01T00:00:00+08:00) with "
                   "--from before --to\n";
            return kExitUsage;
        }
    }
    auto catalog = LoadCatalog(o.plans, err);
    if (!catalog) return kExitFailure;
    std::vector<Subscription> subscriptions;
    if (!o.subscriptions.empty()) {
        std::string text, error;
        if (!ReadFile(o.subscriptions, &text, &error)) {
            err << "tally: " << error << "\n";
            return kExitFailure;
        }
        Diagnostics diagnostics;
        auto subs = ParseSubscriptions(text, o.subscriptions, &*catalog, &diagnostics);
        for (const auto& d : diagnostics) err << d.ToString() << "\n";
        if (!subs) return kExitFailure;
        subscriptions = std::move(*subs);
    }
    const std::string default_plan = catalog->plans.front().name;
    Rater rater(*catalog, subscriptions, default_plan, period);
    EventDecoder decoder;
    Event event;
    std::string line, reason;
    std::vector<RejectedLine> rejected;
    RateRunStats stats;
    for (const std::string& file : o.events) {
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            err << "tally: " << file << ": cannot open the event file\n";
            return kExitFailure;
        }
        int64_t line_no = 0;
        while (std::getline(in, line)) {
            ++line_no;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.find_first_not_of(" \t") == std::string::npos) continue;
            ++stats.lines;
            if (!decoder.Decode(line, &event, &reason)) {
                rejected.push_back({file, line_no, reason});
                continue;
            }
            if (!o.customer.empty() && event.subject != o.customer) {
                ++stats.other_customers;
                continue;
            }
            RateOutcome outcome = rater.Add(event);
            switch (outcome.status) {
                case RateStatus::kRated: ++stats.rated; break;
                case RateStatus::kOutsidePeriod: ++stats.outside_period; break;
                case RateStatus::kRejected: rejected.push_back({file, line_no, outcome.reason}); break;
            }
        }
        if (in.bad()) {
            err << "tally: " << file << ": read error at line " << line_no << "\n";
            return kExitFailure;
        }
    }
    stats.rejected = static_cast<int64_t>(rejected.size());
    std::vector<Invoice> invoices;
    try {
        invoices = PriceRollups(*catalog, subscriptions, default_plan, period, rater.Rollups());
    } catch (const std::exception& e) {
        err << "tally rate: " << e.what() << "\n";
        return kExitFailure;
    }
    if (o.format == "json") {
        WriteInvoicesJson(out, invoices, rejected, stats);
    } else {
        WriteInvoicesTable(out, invoices, rejected, stats);
    }
    if (!rejected.empty()) {
        err << "tally rate: " << rejected.size() << " of " << stats.lines
            << " event lines were rejected (listed in the output); the rest were priced\n";
        return kExitPartial;
    }
    return kExitOk;
}

}  // namespace tally
