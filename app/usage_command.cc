#include <chrono>
#include <iostream>

#include "app/commands.h"
#include "app/report.h"
#include "ledger/store.h"
#include "pricing/invoice.h"
#include "pricing/rollup_records.h"

namespace tally {

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
    int32_t period = -1;
    if (o.period != "all") {
        int y = 0, m = 0;
        if (o.period.empty()) {
            auto now = std::chrono::system_clock::now();
            auto days = std::chrono::floor<std::chrono::days>(now);
            std::chrono::year_month_day ymd{days};
            y = static_cast<int>(ymd.year());
            m = static_cast<int>(static_cast<unsigned>(ymd.month()));
        } else if (std::sscanf(o.period.c_str(), "%4d-%2d", &y, &m) != 2 || m < 1 || m > 12 || o.period.size() != 7) {
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
        // The one conversion from stored records back to rollups (pricing/rollup_records.h).
        RecordsRead read = FromRecords(cat.catalog, store.LoadRollups(o.customer, period));
        auto invoices = PriceRollups(cat.catalog, cat.subscriptions, cat.catalog.plans.front().name, {}, read.rollups);
        RunReport report;
        for (const auto& inv : invoices) report.stats.rated += inv.calls;
        if (o.format == "json") {
            WriteInvoicesJson(out, invoices, report);
        } else {
            if (invoices.empty() && period < 0) out << "no usage\n";
            if (invoices.empty() && period >= 0) {
                char month[16];
                std::snprintf(month, sizeof month, "%04d-%02d", MonthIdYear(period), MonthIdMonth(period));
                out << "no usage in " << month << "\n";
            }
            WriteInvoicesTable(out, invoices, report);
        }
        int exit = kExitOk;
        if (const size_t unpriced = InvoiceErrors(invoices); unpriced > 0) {
            err << "tally usage: " << unpriced << " invoice(s) could not be priced (see their error); the rest were\n";
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
