// tally cost validate|publish and tally margin: flags in, text, JSON and
// CSV out. The margin itself (allocation, cost, grouping, percentages) is
// billing/margin.h's.
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "app/commands.h"
#include "app/with_database.h"
#include "app/report.h"
#include "billing/invoice_run.h"
#include "billing/margin.h"
#include "billing/margin_json.h"
#include "ledger/cost_store.h"
#include "ledger/migrations.h"
#include "ledger/period_margin.h"
#include "ledger/store.h"
#include "pricing/cost_card.h"
#include "pricing/invoice.h"
#include "pricing/rollup_records.h"

namespace tally {

namespace {


// "2025-11" -> month id; nullopt when malformed.
// The one reading of "YYYY-MM" (billing/invoice_run.h).
std::optional<int32_t> ParseMonth(const std::string& text) {
    return billing::PeriodIdOf(text);
}

// Amounts in the table: rounded half-even to the currency's minor unit, for
// reading only (JSON and CSV carry them exact).
std::string Shown(const Amount& a) {
    return a.RoundToMinor(RoundingMode::kHalfEven).ToString(a.currency().minor_digits());
}
std::string Shown(const std::optional<Amount>& a) {
    return a ? Shown(*a) : "unknown";
}
std::string Exact(const std::optional<Amount>& a) {
    return a ? a->ToString() : std::string();
}
std::string CsvField(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

void WriteTable(std::ostream& out, billing::MarginGroup by, const std::vector<billing::MarginGroupRow>& groups) {
    std::vector<std::vector<std::string>> cells;
    std::string key_header(billing::MarginGroupName(by));
    for (auto& c : key_header) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    cells.push_back({key_header, "CUR", "CALLS", "REVENUE", "COST", "MARGIN", "MARGIN %", ""});
    for (const auto& g : groups) {
        const billing::MarginFigures& f = g.figures;
        std::string flag = f.negative ? "NEGATIVE" : "";
        if (!f.error.empty()) flag = "ERROR";
        cells.push_back({g.key, std::string(f.currency.code()), std::to_string(f.calls), Shown(f.revenue),
                         f.error.empty() ? Shown(f.cost) : "-", f.error.empty() ? Shown(f.margin) : "-",
                         f.error.empty() ? f.MarginPercentText() : "-", flag});
    }
    std::vector<size_t> width(cells.front().size(), 0);
    for (const auto& row : cells) {
        for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], DisplayWidth(row[i]));
    }
    for (const auto& row : cells) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            const size_t pad = width[i] - DisplayWidth(row[i]);
            const bool right = i >= 2 && i <= 6;  // numbers
            if (i > 0) line += "  ";
            line += right ? std::string(pad, ' ') + row[i] : row[i] + std::string(pad, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out << line << "\n";
    }
    for (const auto& g : groups) {
        if (!g.figures.error.empty()) out << "error: " << g.key << ": " << g.figures.error << "\n";
    }
    for (const auto& g : groups) {
        if (g.figures.error.empty() && !g.figures.cost_known()) {
            out << "cost unknown: " << g.key << ": " << g.figures.cost_unknown << "\n";
        }
    }
    out << "(amounts rounded to the minor unit for display; --format json or csv gives them exact)\n";
}

void WriteJson(std::ostream& out, int64_t report_id, const std::string& period, billing::MarginGroup by,
               const std::vector<billing::MarginGroupRow>& groups) {
    out << "{\"report_id\":" << report_id << ",\"period\":" << JsonString(period)
        << ",\"by\":" << JsonString(billing::MarginGroupName(by)) << ",\"rows\":[";
    for (size_t i = 0; i < groups.size(); ++i) out << (i > 0 ? "," : "") << billing::MarginGroupRowJson(by, groups[i]);
    out << "]}\n";
}

void WriteCsv(std::ostream& out, billing::MarginGroup by, const std::vector<billing::MarginGroupRow>& groups) {
    out << billing::MarginGroupName(by) << ",currency,calls,revenue,cost,margin,margin_percent,negative,error\n";
    for (const auto& g : groups) {
        const billing::MarginFigures& f = g.figures;
        out << CsvField(g.key) << "," << f.currency.code() << "," << f.calls << "," << f.revenue.ToString() << ","
            << Exact(f.cost) << "," << Exact(f.margin) << "," << f.MarginPercentText() << ","
            << (f.negative ? "true" : "false") << "," << CsvField(f.error) << "\n";
    }
}

}  // namespace

int RunCostValidate(const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
    CostCatalog all;
    const int failures = ForEachFile(files, err, [&](const std::string& file, const std::string& text) {
        Diagnostics diagnostics;
        auto card = ParseCostCard(text, file, &diagnostics);
        if (card) {
            size_t models = 0;
            for (const auto& v : card->versions) models += v.models.size();
            const std::string name = card->name;
            const size_t versions = card->versions.size();
            if (all.Add(std::move(*card), &diagnostics)) {
                out << file << ": ok: cost card " << name << ", " << versions
                    << (versions == 1 ? " version, " : " versions, ") << models << " model costs\n";
            }
        }
        for (const auto& d : diagnostics) err << d.ToString() << "\n";
        if (!diagnostics.empty()) {
            err << file << ": " << diagnostics.size() << (diagnostics.size() == 1 ? " problem" : " problems")
                << "; the cost card cannot be used until they are fixed\n";
        }
        return diagnostics.empty();
    });
    return failures == 0 ? kExitOk : kExitFailure;
}

int RunCostPublish(const std::vector<std::string>& files, const std::string& database_url, std::ostream& out,
                   std::ostream& err) {
    return WithDatabase("cost publish", database_url, err, [&](const std::string& url) {
        ledger::CostStore store(url);
        const int failures = ForEachFile(files, err, [&](const std::string& file, const std::string& text) {
            Diagnostics diagnostics;
            auto r = store.PublishCostCard(text, file, &diagnostics);
            for (const auto& d : diagnostics) err << d.ToString() << "\n";
            if (!r) return false;
            out << file << ": cost card " << r->card << ": " << r->published.size() << " published, "
                << r->unchanged.size() << " already published\n";
            return true;
        });
        return failures == 0 ? kExitOk : kExitFailure;
    });
}

int RunMargin(const MarginOptions& o, std::ostream& out, std::ostream& err) {
    const std::optional<int32_t> month = ParseMonth(o.period);
    if (!month) {
        err << "tally margin: --period is a month like 2025-11\n";
        return kExitUsage;
    }
    const std::optional<billing::MarginGroup> by = billing::ParseMarginGroup(o.by);
    if (!by) {
        err << "tally margin: --by must be customer, model, served_model, plan or day\n";
        return kExitUsage;
    }
    if (o.format != "table" && o.format != "json" && o.format != "csv") {
        err << "tally margin: --format must be table, json or csv\n";
        return kExitUsage;
    }
    return WithDatabase("margin", o.database_url, err, [&](const std::string& url) {
        ledger::Store store(url);
        ledger::CostStore costs(url);
        const ledger::PeriodMargin margin = ledger::ComputePeriodMargin(store, costs, *month, o.customer);
        if (margin.no_plans) {
            out << "no plans published yet\n";
            return kExitOk;
        }
        const std::vector<billing::MarginRow>& rows = margin.rows;
        const std::string source = o.customer.empty() ? "tally margin" : "tally margin --customer " + o.customer;
        const int64_t report_id = costs.WriteMarginReport(o.period, source, std::nullopt, rows);
        const std::vector<billing::MarginGroupRow> groups = billing::GroupMarginRows(rows, *by);
        if (o.format == "json") {
            WriteJson(out, report_id, o.period, *by, groups);
        } else if (o.format == "csv") {
            WriteCsv(out, *by, groups);
        } else {
            out << "margin report " << report_id << ", period " << o.period << ", by " << o.by << " (" << rows.size()
                << " rows stored in margin_rows)\n";
            if (groups.empty()) out << "no usage in " << o.period << "\n";
            if (!groups.empty()) WriteTable(out, *by, groups);
        }
        int exit = kExitOk;
        size_t errors = 0, unknown = 0;
        for (const auto& r : rows) {
            if (!r.figures.error.empty()) {
                ++errors;
            } else if (!r.figures.cost_known()) {
                ++unknown;
            }
        }
        if (margin.no_cost_cards)
            err << "tally margin: no cost cards published; publish them with: tally cost publish FILE\n";
        if (unknown > 0) err << "tally margin: " << unknown << " row(s) have no known cost (shown as unknown)\n";
        if (errors > 0) {
            err << "tally margin: " << errors << " row(s) could not be valued (see their error)\n";
            exit = kExitPartial;
        }
        if (margin.unresolved > 0) {
            err << "tally margin: " << margin.unresolved << " rollup rows name a plan, version, model or unit that is "
                << "not published any more and were left out\n";
            exit = kExitPartial;
        }
        return exit;
    });
}

}  // namespace tally
