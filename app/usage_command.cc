#include <chrono>
#include <iostream>
#include <map>
#include <tuple>

#include "app/commands.h"
#include "app/report.h"
#include "ledger/store.h"
#include "pricing/invoice.h"

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
        ledger::StoredCatalog cat = store.Load();
        if (cat.catalog.plans.empty()) {
            out << "no plans published yet\n";
            return kExitOk;
        }
        // Names back to the catalog's indices; units of a cell merge into one rollup.
        std::map<
            std::tuple<std::string, int32_t, int32_t, uint16_t, uint16_t, uint16_t, int16_t, int16_t, int16_t, int16_t>,
            Rollup>
            cells;
        int64_t skipped = 0;
        for (const auto& r : store.LoadRollups(o.customer, period)) {
            int plan = cat.catalog.PlanIndex(r.plan);
            int version = -1, model = -1;
            if (plan >= 0) {
                const Plan& p = cat.catalog.plans[static_cast<size_t>(plan)];
                for (size_t i = 0; i < p.versions.size(); ++i) {
                    if (p.versions[i].id == r.version) version = static_cast<int>(i);
                }
                if (version >= 0) {
                    const PlanVersion& v = p.versions[static_cast<size_t>(version)];
                    auto it = v.model_index.find(r.model);
                    if (it != v.model_index.end()) model = it->second;
                }
            }
            auto unit = cat.catalog.units.Find(r.unit);
            if (plan < 0 || version < 0 || model < 0 || !unit) {
                ++skipped;
                continue;
            }
            auto key = std::make_tuple(r.customer, r.period, r.hour, static_cast<uint16_t>(plan),
                                       static_cast<uint16_t>(version), static_cast<uint16_t>(model), r.band,
                                       r.condition, r.time_window, r.flags);
            Rollup& roll = cells[key];
            roll.customer = r.customer;
            roll.period = r.period;
            roll.hour = r.hour;
            roll.cell.plan = static_cast<uint16_t>(plan);
            roll.cell.version = static_cast<uint16_t>(version);
            roll.cell.model = static_cast<uint16_t>(model);
            roll.cell.band = static_cast<uint8_t>(r.band);
            roll.cell.condition = r.condition < 0 ? kNone : static_cast<uint8_t>(r.condition);
            roll.cell.window = r.time_window < 0 ? kNone : static_cast<uint8_t>(r.time_window);
            roll.cell.flags = static_cast<uint8_t>(r.flags);
            roll.quantities[*unit] += r.quantity;
            roll.calls = std::max(roll.calls, r.calls);  // every unit row of a cell carries the cell's calls
        }
        std::vector<Rollup> rollups;
        for (auto& [key, r] : cells) rollups.push_back(std::move(r));
        CanonicalizeRollups(&rollups);
        auto invoices = PriceRollups(cat.catalog, cat.subscriptions, cat.catalog.plans.front().name, {}, rollups);
        RateRunStats stats;
        for (const auto& inv : invoices) stats.rated += inv.calls;
        if (o.format == "json") {
            WriteInvoicesJson(out, invoices, {}, stats);
        } else {
            if (invoices.empty() && period < 0) out << "no usage\n";
            if (invoices.empty() && period >= 0) {
                char month[16];
                std::snprintf(month, sizeof month, "%04d-%02d", MonthIdYear(period), MonthIdMonth(period));
                out << "no usage in " << month << "\n";
            }
            WriteInvoicesTable(out, invoices, {}, stats);
        }
        if (skipped > 0) {
            err << "tally usage: " << skipped << " rollup rows name a plan, version, model or unit that is not "
                << "published any more and were left out\n";
            return kExitPartial;
        }
        return kExitOk;
    } catch (const std::exception& e) {
        err << "tally usage: " << MaskSecret(url) << ": " << e.what() << "\n";
        return kExitFailure;
    }
}

}  // namespace tally
