#include <fstream>
#include <iostream>

#include "app/commands.h"
#include "app/report.h"
#include "ingest/file_rater.h"
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
    // The consumer's pipeline with an in-memory ledger (ingest/file_rater.h).
    // Customers need no ledger entry here: those of no subscription are on
    // the first plan.
    ingest::CatalogSnapshot snapshot{std::move(*catalog), std::move(subscriptions), {}};
    ingest::AssemblerOptions options;
    options.known_customers_only = false;
    options.only_customer = o.customer;
    options.period = period;
    ingest::FileRater rater(snapshot, default_plan, options);
    RunReport report;
    RateRunStats& stats = report.stats;
    for (size_t f = 0; f < o.events.size(); ++f) {
        const std::string& file = o.events[f];
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            err << "tally: " << file << ": cannot open the event file\n";
            return kExitFailure;
        }
        int64_t line_no = 0;
        std::string line;
        while (std::getline(in, line)) {
            ++line_no;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.find_first_not_of(" \t") == std::string::npos) continue;
            ++stats.lines;
            rater.Add(static_cast<int32_t>(f), line_no, std::move(line));
        }
        if (in.bad()) {
            err << "tally: " << file << ": read error at line " << line_no << "\n";
            return kExitFailure;
        }
    }
    ingest::FileRater::Result rated = rater.Finish();
    auto file_name = [&](int32_t f) { return o.events[static_cast<size_t>(f)]; };
    for (const ingest::RejectedAt& r : rated.rejected) {
        report.rejected.push_back({file_name(r.at.file), r.at.line, std::string(RejectReasonCode(r.code)), r.reason});
    }
    for (const ingest::DuplicateAt& d : rated.duplicates) {
        report.duplicates.push_back({file_name(d.at.file), d.at.line, file_name(d.first.file), d.first.line});
    }
    stats.rated = rated.rated;
    stats.outside_period = rated.outside_period;
    stats.other_customers = rated.other_customers;
    stats.rejected = static_cast<int64_t>(report.rejected.size());
    stats.duplicates = static_cast<int64_t>(report.duplicates.size());
    // Monthly: commitments bill through the last month with a call, with or
    // without calls of their own, as `tally invoice run` bills them.
    std::optional<CommitmentHorizon> horizon;
    if (period.monthly() && !rated.rollups.empty()) {
        horizon.emplace();
        for (const Rollup& r : rated.rollups) horizon->through = std::max(horizon->through, r.period);
        if (!o.customer.empty()) horizon->customers.push_back(o.customer);
    }
    const std::vector<Invoice> invoices = PriceRollups(snapshot.catalog, snapshot.subscriptions, default_plan, period,
                                                       rated.rollups, horizon ? &*horizon : nullptr);
    if (o.format == "json") {
        WriteInvoicesJson(out, invoices, report);
    } else {
        WriteInvoicesTable(out, invoices, report);
    }
    const size_t unpriced = InvoiceErrors(invoices);
    if (unpriced > 0) {
        err << "tally rate: " << unpriced << " invoice(s) could not be priced (see their error); the rest were priced\n";
    }
    if (!report.rejected.empty()) {
        err << "tally rate: " << report.rejected.size() << " of " << stats.lines
            << " event lines were rejected (listed in the output); the rest were priced\n";
    }
    return report.rejected.empty() && unpriced == 0 ? kExitOk : kExitPartial;
}

}  // namespace tally
