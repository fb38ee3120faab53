// Instants, RFC 3339 text, and local time in named zones.
//
// An Instant is UTC milliseconds since the Unix epoch. Local time is only
// ever derived from an Instant and a zone (IANA name, OS tz database), never
// stored on its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace tally {

using Instant = std::chrono::sys_time<std::chrono::milliseconds>;

// "2026-11-03T14:22:05.123Z", "2026-11-03T22:22:05+08:00", "...t...z" too.
// Fractions beyond milliseconds are truncated. nullopt if not RFC 3339.
std::optional<Instant> ParseRfc3339(std::string_view text);
// Always "YYYY-MM-DDTHH:MM:SS.mmmZ" or without millis when they are 0.
std::string FormatRfc3339(Instant t);

// Looks up an IANA zone name; nullptr when unknown.
const date::time_zone* FindZone(std::string_view name);

// Fields of a local time that rating needs.
struct LocalTime {
    int64_t local_seconds = 0;  // seconds since 1970-01-01T00:00 local
    int minute_of_day = 0;      // 0..1439
    int weekday = 0;            // 0 = Monday .. 6 = Sunday
    int year = 0;
    int month = 0;  // 1..12
    int day = 0;    // 1..31
};

// Converts instants to local time in one zone, caching the current UTC-offset
// interval so consecutive instants cost a comparison. Not thread-safe: each
// thread keeps its own.
class ZoneClock {
   public:
    ZoneClock() = default;
    explicit ZoneClock(const date::time_zone* zone) : zone_(zone) {}
    LocalTime Local(Instant t);
    // MonthId of the local calendar month of `t`; cheaper than Local().
    int32_t Month(Instant t);
    // MonthId of the billing period of `t` when periods start at 00:00 local
    // of day `anchor_day` (1..28) of each month: the month in which that
    // period starts. Month(t) when anchor_day is 1.
    int32_t AnchoredMonth(Instant t, int anchor_day);
    const date::time_zone* zone() const { return zone_; }

   private:
    const date::time_zone* zone_ = nullptr;
    int64_t begin_s_ = 1;  // empty cache: begin > end
    int64_t end_s_ = 0;
    int64_t offset_s_ = 0;
    int64_t cached_day_ = INT64_MIN;  // local day of the cached calendar date
    int year_ = 0, month_ = 0, day_ = 0;
    int64_t month_begin_ms_ = 1;  // UTC range of the cached month; empty at first
    int64_t month_end_ms_ = 0;
    int32_t month_id_ = 0;
};

// The first instant of local day `y-m-d` at 00:00 in `zone` (the earliest
// instant if a transition repeats it, the transition if one skips it).
Instant LocalMidnight(const date::time_zone* zone, int year, int month, int day);

// "YYYY-MM" month ids used as billing period keys.
inline int32_t MonthId(int year, int month) {
    return year * 12 + (month - 1);
}
inline int MonthIdYear(int32_t id) {
    return id / 12;
}
inline int MonthIdMonth(int32_t id) {
    return id % 12 + 1;
}
// "2025-11".
std::string MonthIdLabel(int32_t id);

// The instants of the billing period `month_id` in `zone`: from 00:00 local
// of day `anchor_day` (1..28; 1 is the calendar month) of that month to the
// same of the next. ZoneClock::AnchoredMonth assigns instants to them.
struct PeriodBounds {
    Instant start;  // inclusive
    Instant end;    // exclusive
};
PeriodBounds MonthPeriod(const date::time_zone* zone, int32_t month_id, int anchor_day);

// "36h", "2d", "90m", "0s": a whole non-negative number and one unit (s, m,
// h, d); nullopt if malformed or above 10^6 days.
std::optional<std::chrono::seconds> ParseDuration(std::string_view text);
// "0h", "24h", "36h", "2d", "90m", "45s": days from two days on, else the
// largest of h, m, s that divides it. ParseDuration reads it back.
std::string FormatDuration(std::chrono::seconds d);

// The longest finalize_grace a plan or subscription may set.
inline constexpr std::chrono::seconds kMaxFinalizeGrace = std::chrono::days(31);

// "HH:MM" (00:00..24:00) to minutes; nullopt if malformed.
std::optional<int> ParseClockMinutes(std::string_view text);

}  // namespace tally
