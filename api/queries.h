// Query parameters validated into typed requests, with the principal's
// scope applied: a customer key only ever names its own customer (any other
// customer is a 404, as if it did not exist). Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "api/request.h"
#include "ledger/key_store.h"
#include "pricing/time.h"

namespace tally::api {

// kProject: the rollups' project (pricing/project_cap.h), the usage's cost
// allocated over projects (docs/api.md, "GET /v1/usage").
enum class GroupBy : uint8_t { kHour, kDay, kModel, kProject };
std::string_view GroupByName(GroupBy g);

// Longest ranges: any grouping 92 days; by hour 7 days (each hour is priced).
inline constexpr std::chrono::hours kRangeMax{92 * 24};
inline constexpr std::chrono::hours kHourRangeMax{7 * 24};

// GET /v1/usage. Either a billing period (period=YYYY-MM; the default is
// the current UTC month) or a range from=&to= (both; RFC 3339 instants or
// YYYY-MM-DD dates meaning 00:00 UTC), to > from, whole UTC hours.
struct UsageQuery {
    std::string customer;
    std::optional<int32_t> period;  // month id, or:
    Instant from{}, to{};           // with !period
    GroupBy group_by = GroupBy::kDay;
};
UsageQuery ParseUsageQuery(const Target& target, const ledger::Principal& who, Instant now);

// GET /v1/invoices: customer keys see their own finalized invoices only.
struct InvoiceQuery {
    std::string customer;           // "" : all (finance, admin)
    std::optional<int32_t> period;  // month id
    std::string status;             // "" : all; draft, finalized, void
    bool none = false;              // a customer key asked for drafts or voided ones: an empty list
};
InvoiceQuery ParseInvoiceQuery(const Target& target, const ledger::Principal& who);

// "2025-11" to a month id; nullopt unless exactly YYYY-MM with a month 1..12
// and a year 1970..9999.
std::optional<int32_t> ParsePeriod(std::string_view text);

}  // namespace tally::api
