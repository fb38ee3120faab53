#include "api/queries.h"

#include "api/routes.h"
#include "base/assert.h"

namespace tally::api {

namespace {

bool AllDigits(std::string_view s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

int Number(std::string_view s) {
    int v = 0;
    for (const char c : s) v = v * 10 + (c - '0');
    return v;
}

// An instant from "YYYY-MM-DD" (00:00 UTC) or RFC 3339; 400 naming `name`.
Instant ParseInstant(const std::string& text, std::string_view name) {
    if (text.size() == 10 && text[4] == '-' && text[7] == '-' && AllDigits(text.substr(0, 4)) &&
        AllDigits(text.substr(5, 2)) && AllDigits(text.substr(8, 2))) {
        std::optional<Instant> t = ParseRfc3339(text + "T00:00:00Z");
        if (t) return *t;
    } else if (std::optional<Instant> t = ParseRfc3339(text)) {
        return *t;
    }
    throw BadRequest(std::string(name) + " must be a date (2025-11-03) or an RFC 3339 instant " +
                     "(2025-11-03T00:00:00Z), not '" + text + "'");
}

// The customer a request is about: a customer key's own (another id is a
// 404: it does not exist for this key); finance and admin must name one
// when `required`.
std::string ScopedCustomer(const Target& target, const ledger::Principal& who, bool required) {
    const std::string* given = Parameter(target, "customer");
    if (who.role == ledger::Role::kCustomer) {
        TALLY_ASSERT(!who.customer.empty());
        if (given != nullptr && *given != who.customer) throw NotFound();
        return who.customer;
    }
    if (given == nullptr || given->empty()) {
        if (required)
            throw BadRequest("customer is required with a " + std::string(ledger::RoleName(who.role)) + " key");
        return "";
    }
    return *given;
}

}  // namespace

std::string_view GroupByName(GroupBy g) {
    switch (g) {
        case GroupBy::kHour: return "hour";
        case GroupBy::kDay: return "day";
        case GroupBy::kModel: return "model";
        case GroupBy::kProject: return "project";
    }
    TALLY_UNREACHABLE();
}

std::optional<int32_t> ParsePeriod(std::string_view text) {
    if (text.size() != 7 || text[4] != '-' || !AllDigits(text.substr(0, 4)) || !AllDigits(text.substr(5, 2))) {
        return std::nullopt;
    }
    const int year = Number(text.substr(0, 4)), month = Number(text.substr(5, 2));
    if (year < 1970 || month < 1 || month > 12) return std::nullopt;
    return MonthId(year, month);
}

UsageQuery ParseUsageQuery(const Target& target, const ledger::Principal& who, Instant now) {
    UsageQuery q;
    q.customer = ScopedCustomer(target, who, true);
    if (const std::string* g = Parameter(target, "group_by")) {
        if (*g == "hour") {
            q.group_by = GroupBy::kHour;
        } else if (*g == "day") {
            q.group_by = GroupBy::kDay;
        } else if (*g == "model") {
            q.group_by = GroupBy::kModel;
        } else if (*g == "project") {
            q.group_by = GroupBy::kProject;
        } else {
            throw BadRequest("group_by must be hour, day, model or project, not '" + *g + "'");
        }
    }
    const std::string* period = Parameter(target, "period");
    const std::string* from = Parameter(target, "from");
    const std::string* to = Parameter(target, "to");
    if (period != nullptr && (from != nullptr || to != nullptr)) {
        throw BadRequest("give either period or from and to, not both");
    }
    if ((from == nullptr) != (to == nullptr)) throw BadRequest("from and to go together: give both or neither");
    if (from == nullptr) {
        if (period != nullptr) {
            q.period = ParsePeriod(*period);
            if (!q.period) throw BadRequest("period must be a month like 2025-11, not '" + *period + "'");
            // Nothing is billed ahead of next month; a far future would only
            // make commitments price every month up to it.
            const std::chrono::year_month_day today{std::chrono::floor<std::chrono::days>(now)};
            const int32_t this_month =
                MonthId(static_cast<int>(today.year()), static_cast<int>(static_cast<unsigned>(today.month())));
            if (*q.period > this_month + 1) {
                throw BadRequest("period " + *period + " is after next month: nothing is billed there yet");
            }
        } else {
            const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(now)};
            q.period = MonthId(static_cast<int>(ymd.year()), static_cast<int>(static_cast<unsigned>(ymd.month())));
        }
        if (q.group_by == GroupBy::kHour) {
            throw BadRequest("group_by=hour needs from and to (at most 7 days), not a whole period");
        }
        return q;
    }
    q.from = ParseInstant(*from, "from");
    q.to = ParseInstant(*to, "to");
    if (q.to <= q.from) throw BadRequest("to must be after from");
    if (q.from.time_since_epoch() % std::chrono::hours(1) != std::chrono::milliseconds(0) ||
        q.to.time_since_epoch() % std::chrono::hours(1) != std::chrono::milliseconds(0)) {
        throw BadRequest("from and to must be whole hours (usage is stored per hour)");
    }
    if (q.from < Instant{}) throw BadRequest("from must not be before 1970");
    if (q.to - q.from > kRangeMax) throw BadRequest("from and to must be at most 92 days apart");
    if (q.group_by == GroupBy::kHour && q.to - q.from > kHourRangeMax) {
        throw BadRequest("with group_by=hour, from and to must be at most 7 days apart");
    }
    return q;
}

InvoiceQuery ParseInvoiceQuery(const Target& target, const ledger::Principal& who) {
    InvoiceQuery q;
    q.customer = ScopedCustomer(target, who, false);
    if (const std::string* p = Parameter(target, "period")) {
        q.period = ParsePeriod(*p);
        if (!q.period) throw BadRequest("period must be a month like 2025-11, not '" + *p + "'");
    }
    if (const std::string* s = Parameter(target, "status")) {
        if (*s != "draft" && *s != "finalized" && *s != "void") {
            throw BadRequest("status must be draft, finalized or void, not '" + *s + "'");
        }
        q.status = *s;
    }
    if (who.role == ledger::Role::kCustomer) {
        if (!q.status.empty() && q.status != "finalized") q.none = true;
        q.status = "finalized";
    }
    return q;
}

}  // namespace tally::api
