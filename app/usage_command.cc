#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "api/usage_report.h"

#include "app/commands.h"
#include "app/report.h"
#include "app/text_table.h"
#include "billing/invoice_document.h"
#include "ledger/store.h"
#include "pricing/invoice.h"
#include "pricing/rollup_records.h"

namespace tally {

namespace {

std::string MonthLabel(int32_t period) {
    char month[16];
    std::snprintf(month, sizeof month, "%04d-%02d", MonthIdYear(period), MonthIdMonth(period));
    return month;
}

// "(none)" for calls that named no project.
std::string ProjectLabel(const std::string& group, const std::string& kind) {
    return kind == "usage" && group.empty() ? "(none)" : group;
}

// --group-by project: per customer and billing period, the rows of GET
// /v1/usage?group_by=project&period= (api::ComputeUsage: one computation,
// the same numbers), each period priced after the customer's earlier ones.
int UsageByProject(const ingest::CatalogSnapshot& cat, const std::vector<RollupRecord>& records, int32_t period,
                   const std::string& format, std::ostream& out, std::ostream& err) {
    std::map<std::string, std::map<int32_t, std::vector<RollupRecord>>> by_customer;
    for (const RollupRecord& r : records) by_customer[r.customer][r.period].push_back(r);
    std::vector<std::vector<std::string>> table = {{"customer", "period", "project", "kind", "calls", "cost", "currency"}};
    std::string json = "[";
    int64_t unresolved = 0;
    for (const auto& [customer, periods] : by_customer) {
        std::vector<int32_t> shown;
        for (const auto& [p, rs] : periods) {
            if (period < 0 || p == period) shown.push_back(p);
        }
        for (const int32_t p : shown) {
            std::vector<RollupRecord> earlier;
            for (const auto& [q, rs] : periods) {
                if (q < p) earlier.insert(earlier.end(), rs.begin(), rs.end());
            }
            api::UsageQuery query;
            query.customer = customer;
            query.period = p;
            query.group_by = api::GroupBy::kProject;
            const api::UsageReport report = api::ComputeUsage(cat.catalog, cat.subscriptions, periods.at(p), query, earlier);
            unresolved += report.unresolved;
            for (const api::UsageRow& row : report.rows) {
                const std::string cost = row.cost.ToString(row.cost.currency().minor_digits());
                const std::string code(row.cost.currency().code());
                table.push_back({customer, row.period, ProjectLabel(row.group, row.kind), row.kind,
                                 std::to_string(row.calls), cost, code});
                json += std::string(json.size() > 1 ? "," : "") + "{\"customer\":" + billing::JsonQuote(customer) +
                        ",\"period\":" + billing::JsonQuote(row.period) + ",\"group\":" + billing::JsonQuote(row.group) +
                        ",\"kind\":" + billing::JsonQuote(row.kind) + ",\"calls\":" + std::to_string(row.calls) +
                        ",\"cost\":" + billing::JsonQuote(cost) + ",\"currency\":" + billing::JsonQuote(code) + "}";
            }
        }
    }
    if (format == "json") {
        out << "{\"group_by\":\"project\",\"rows\":" << json << "]}\n";
    } else if (table.size() == 1) {
        out << (period < 0 ? std::string("no usage\n") : "no usage in " + MonthLabel(period) + "\n");
    } else {
        WriteTextTable(out, table, {false, false, false, false, true, true, false});
    }
    if (unresolved > 0) {
        err << "tally usage: " << unresolved << " rollup rows name a plan, version, model or unit that is not "
            << "published any more and were left out\n";
        return kExitPartial;
    }
    return kExitOk;
}

}  // namespace

int RunUsage(const UsageOptions& o, std::ostream& out, std::ostream& err) {
    const std::string url = DatabaseUrl(o.database_url);
    if (url.empty()) {
        err << "tally usage: no database: give --database-url or set TALLY_DATABASE_URL\n";
        return kExitUsage;
    }
    if (o.format != "table" && o.format != "json") {
        err << "tally usage: --format must be table or json\n";
        return kExitUsage;
    }
    if (!o.group_by.empty() && o.group_by != "project") {
        err << "tally usage: --group-by must be project (or left out for the invoices)\n";
        return kExitUsage;
    }
    int32_t period = -1;
    if (o.period != "all") {
        int y = 0, m = 0;
        if (o.period.empty()) {
            auto now = std::chrono::system_clock::now();
            auto days = std::chrono::floor<std::chrono::days>(now);
            std::chrono::year_month_day ymd{days};
            y = static_cast<int>(ymd.year());
            m = static_cast<int>(static_cast<unsigned>(ymd.month()));
        } else if (o.period.size() != 7 || o.period[4] != '-' ||
                   o.period.find_first_not_of("0123456789", 0) != 4 ||
                   o.period.find_first_not_of("0123456789", 5) != std::string::npos ||
                   std::sscanf(o.period.c_str(), "%4d-%2d", &y, &m) != 2 || y < 1970 || m < 1 || m > 12) {
            err << "tally usage: --period is a month like 2025-11, or all\n";
            return kExitUsage;
        }
        period = MonthId(y, m);
    }
    try {
        ledger::Store store(url);
        ingest::CatalogSnapshot cat = store.Load();
        if (cat.catalog.plans.empty()) {
            out << "no plans published yet\n";
            return kExitOk;
        }
        if (o.group_by == "project") {
            return UsageByProject(cat, store.LoadRollups(o.customer, -1), period, o.format, out, err);
        }
        // The one conversion from stored records back to rollups
        // (pricing/rollup_records.h). Every period is priced, then the one
        // asked for is shown: amount coupons and grants are balances that
        // earlier periods use up, so a period priced alone would spend them again.
        RecordsRead read = FromRecords(cat.catalog, store.LoadRollups(o.customer, -1));
        // A period asked for shows a minimum commitment also without usage,
        // as its invoice will.
        CommitmentHorizon horizon;
        horizon.through = period;
        if (!o.customer.empty()) horizon.customers.push_back(o.customer);
        std::vector<Invoice> invoices = PriceRollups(cat.catalog, cat.subscriptions, cat.catalog.plans.front().name, {},
                                                     read.rollups, period >= 0 ? &horizon : nullptr);
        if (period >= 0) {
            std::erase_if(invoices, [&](const Invoice& inv) { return inv.period != MonthLabel(period); });
        }
        RunReport report;
        for (const auto& inv : invoices) report.stats.rated += inv.calls;
        if (o.format == "json") {
            WriteInvoicesJson(out, invoices, report);
        } else {
            if (invoices.empty() && period < 0) out << "no usage\n";
            if (invoices.empty() && period >= 0) out << "no usage in " << MonthLabel(period) << "\n";
            WriteInvoicesTable(out, invoices, report);
        }
        int exit = kExitOk;
        if (const size_t unpriced = InvoiceErrors(invoices); unpriced > 0) {
            err << "tally usage: " << unpriced << " invoice(s) could not be priced (see their error); the rest were priced\n";
            exit = kExitPartial;
        }
        if (read.unresolved > 0) {
            err << "tally usage: " << read.unresolved << " rollup rows name a plan, version, model or unit that is not "
                << "published any more and were left out\n";
            exit = kExitPartial;
        }
        return exit;
    } catch (const std::exception& e) {
        err << "tally usage: " << e.what() << "\n";
        return kExitFailure;
    }
}

}  // namespace tally
