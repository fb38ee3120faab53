#include <fstream>
#include <iostream>

#include "app/commands.h"
#include "app/report.h"
#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "ingest/batch_assembler.h"
#include "ingest/event_key.h"
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
    // The consumer's pipeline, with an in-memory ledger of billed calls: the
    // same dedup key, the same duplicate and conflict rule, the same reasons
    // (ingest/batch_assembler.h). Customers need no ledger entry here.
    ingest::CatalogSnapshot snapshot{std::move(*catalog), std::move(subscriptions), {}};
    ingest::AssemblerOptions options;
    options.known_customers_only = false;
    options.only_customer = o.customer;
    options.period = period;
    ingest::BatchAssembler assembler(snapshot, default_plan, options);
    struct Billed {
        Fingerprint payload_hash;
        int32_t file = 0;
        int64_t line = 0;
    };
    std::unordered_map<Fingerprint, Billed, FingerprintHash> billed;
    RunReport report;
    RateRunStats& stats = report.stats;
    std::vector<std::pair<int32_t, RejectedLine>> rejected;  // with the file's index, for ordering
    std::vector<std::pair<int32_t, DuplicateLine>> duplicates;
    // A chunk of lines is one batch: bounded memory for files of any size.
    constexpr size_t kChunkLines = 65536;
    struct Line {
        int32_t file = 0;
        int64_t number = 0;
        std::string text;
    };
    std::vector<Line> lines;
    std::vector<ingest::Message> messages;
    auto flush = [&] {
        for (const Line& l : lines) messages.push_back({l.file, l.number, l.text});
        ingest::AssembledBatch ab = assembler.Assemble(messages);
        std::vector<std::optional<Fingerprint>> stored(ab.batch.keys.size());
        for (size_t i = 0; i < ab.batch.keys.size(); ++i) {
            auto it = billed.find(ab.batch.keys[i].key);
            if (it != billed.end()) stored[i] = it->second.payload_hash;
        }
        const ingest::Resolution r = ingest::Resolve(ab.batch, stored);
        for (size_t i = 0; i < ab.batch.keys.size(); ++i) {
            const ingest::KeyRow& k = ab.batch.keys[i];
            if (r.outcomes[i] != ingest::KeyOutcome::kNew) continue;
            assembler.rater().AddParts(ab.parts[i], 1);
            billed.emplace(k.key, Billed{k.payload_hash, k.partition, k.offset});
            ++stats.rated;
        }
        for (const ingest::Duplicate& d : r.duplicates) {
            const Billed& first = billed.at(ab.batch.keys[d.key].key);
            duplicates.push_back({d.partition, {o.events[static_cast<size_t>(d.partition)], d.offset,
                                                o.events[static_cast<size_t>(first.file)], first.line}});
        }
        const std::vector<ingest::DeadLetter>* const lists[] = {&ab.batch.dead_letters, &r.conflicts};
        for (const std::vector<ingest::DeadLetter>* list : lists) {
            for (const ingest::DeadLetter& d : *list) {
                rejected.push_back({d.partition, {o.events[static_cast<size_t>(d.partition)], d.offset,
                                                  std::string(RejectReasonCode(d.reason)), d.detail}});
            }
        }
        stats.outside_period += ab.outside_period;
        stats.other_customers += ab.other_customers;
        messages.clear();
        lines.clear();
    };
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
            lines.push_back({static_cast<int32_t>(f), line_no, std::move(line)});
            if (lines.size() == kChunkLines) flush();
        }
        if (in.bad()) {
            err << "tally: " << file << ": read error at line " << line_no << "\n";
            return kExitFailure;
        }
    }
    flush();
    auto by_place = [](const auto& a, const auto& b) {
        return std::tie(a.first, a.second.line) < std::tie(b.first, b.second.line);
    };
    std::sort(rejected.begin(), rejected.end(), by_place);
    std::sort(duplicates.begin(), duplicates.end(), by_place);
    for (auto& [f, r] : rejected) report.rejected.push_back(std::move(r));
    for (auto& [f, d] : duplicates) report.duplicates.push_back(std::move(d));
    stats.rejected = static_cast<int64_t>(report.rejected.size());
    stats.duplicates = static_cast<int64_t>(report.duplicates.size());
    const std::vector<Invoice> invoices = PriceRollups(snapshot.catalog, snapshot.subscriptions, default_plan, period,
                                                       assembler.rater().Rollups());
    if (o.format == "json") {
        WriteInvoicesJson(out, invoices, report);
    } else {
        WriteInvoicesTable(out, invoices, report);
    }
    const size_t unpriced = InvoiceErrors(invoices);
    if (unpriced > 0) {
        err << "tally rate: " << unpriced << " invoice(s) could not be priced (see their error); the rest were\n";
    }
    if (!report.rejected.empty()) {
        err << "tally rate: " << report.rejected.size() << " of " << stats.lines
            << " event lines were rejected (listed in the output); the rest were priced\n";
    }
    return report.rejected.empty() && unpriced == 0 ? kExitOk : kExitPartial;
}

}  // namespace tally
