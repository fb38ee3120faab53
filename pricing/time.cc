#include "pricing/time.h"

#include <date/date.h>
#include <date/tz.h>

#include <cstdio>

#include "base/assert.h"

namespace tally {

namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
        char c = s[i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
}

}  // namespace

std::optional<Instant> ParseRfc3339(std::string_view s) {
    int y, mo, d, h, mi, sec;
    if (!Digits(s, 0, 4, &y) || s.size() < 20 || s[4] != '-' || !Digits(s, 5, 2, &mo) || s[7] != '-' ||
        !Digits(s, 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !Digits(s, 11, 2, &h) || s[13] != ':' ||
        !Digits(s, 14, 2, &mi) || s[16] != ':' || !Digits(s, 17, 2, &sec)) {
        return std::nullopt;
    }
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
    date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(mo)},
                             date::day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return std::nullopt;
    if (sec == 60) sec = 59;  // a leap second bills as the second before it
    size_t pos = 19;
    int64_t millis = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        size_t start = pos;
        int scale = 100;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            millis += (s[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos == start || pos - start > 9) return std::nullopt;
    }
    if (pos >= s.size()) return std::nullopt;
    int64_t offset_s = 0;
    if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
        int oh, om;
        if (!Digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !Digits(s, pos + 4, 2, &om) ||
            oh > 23 || om > 59) {
            return std::nullopt;
        }
        offset_s = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
    auto days = date::sys_days(ymd).time_since_epoch().count();
    int64_t seconds = static_cast<int64_t>(days) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    return Instant(std::chrono::milliseconds(seconds * 1000 + millis));
}

std::string FormatRfc3339(Instant t) {
    // By hand: date::format goes through iostreams and locales, which is
    // far too slow for the consumer's per-event path.
    const int64_t total_ms = t.time_since_epoch().count();
    int64_t ms = total_ms % 1000;
    int64_t secs = total_ms / 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    const int64_t sod = secs - days * 86400;
    date::year_month_day ymd{date::sys_days(date::days(days))};
    char buf[32];
    int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
                          static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                          static_cast<int>(sod / 3600), static_cast<int>(sod / 60 % 60), static_cast<int>(sod % 60));
    std::string out(buf, static_cast<size_t>(n));
    if (ms != 0) {
        char frac[8];
        std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms));
        out += frac;
    }
    return out + "Z";
}

const date::time_zone* FindZone(std::string_view name) {
    try {
        return date::locate_zone(name);
    } catch (const std::exception&) {
        return nullptr;
    }
}

LocalTime ZoneClock::Local(Instant t) {
    TALLY_ASSERT(zone_ != nullptr);
    int64_t ms = t.time_since_epoch().count();
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    if (s < begin_s_ || s >= end_s_) {
        auto info = zone_->get_info(date::sys_seconds(std::chrono::seconds(s)));
        begin_s_ = info.begin.time_since_epoch().count();
        end_s_ = info.end.time_since_epoch().count();
        offset_s_ = info.offset.count();
        TALLY_ASSERT(s >= begin_s_);
        TALLY_ASSERT(s < end_s_);
    }
    LocalTime lt;
    lt.local_seconds = s + offset_s_;
    int64_t days = lt.local_seconds >= 0 ? lt.local_seconds / 86400 : -((-lt.local_seconds + 86399) / 86400);
    int64_t second_of_day = lt.local_seconds - days * 86400;
    lt.minute_of_day = static_cast<int>(second_of_day / 60);
    // 1970-01-01 was a Thursday (weekday 3 with Monday = 0).
    lt.weekday = static_cast<int>(((days % 7) + 7 + 3) % 7);
    if (days != cached_day_) {
        date::year_month_day ymd{date::sys_days(date::days(days))};
        cached_day_ = days;
        year_ = static_cast<int>(ymd.year());
        month_ = static_cast<int>(static_cast<unsigned>(ymd.month()));
        day_ = static_cast<int>(static_cast<unsigned>(ymd.day()));
    }
    lt.year = year_;
    lt.month = month_;
    lt.day = day_;
    return lt;
}

int32_t ZoneClock::Month(Instant t) {
    const int64_t ms = t.time_since_epoch().count();
    if (ms >= month_begin_ms_ && ms < month_end_ms_) return month_id_;
    const LocalTime lt = Local(t);  // sets the UTC offset interval [begin_s_, end_s_) of t
    month_id_ = MonthId(lt.year, lt.month);
    // The cached range: the instants of this offset interval whose local
    // date is in this month. Within one interval local time is UTC plus a
    // constant, so that is one range; across a transition it need not be
    // (America/St_Johns fell back at 00:01 on 2009-11-01 to 23:01 October 31).
    const date::year_month_day first{date::year{lt.year}, date::month{static_cast<unsigned>(lt.month)}, date::day{1}};
    const date::year_month_day next = first + date::months{1};
    // Days count in an int: widen before scaling to seconds (2038 and on).
    const int64_t first_s = int64_t{date::sys_days(first).time_since_epoch().count()} * 86400 - offset_s_;
    const int64_t next_s = int64_t{date::sys_days(next).time_since_epoch().count()} * 86400 - offset_s_;
    // The first and last offset intervals of a zone reach the ends of time:
    // the month bounds them before they are scaled to milliseconds.
    month_begin_ms_ = std::max(first_s, begin_s_) * 1000;
    month_end_ms_ = std::min(next_s, end_s_) * 1000;
    TALLY_ASSERT(ms >= month_begin_ms_);
    TALLY_ASSERT(ms < month_end_ms_);
    return month_id_;
}

int32_t ZoneClock::AnchoredMonth(Instant t, int anchor_day) {
    TALLY_ASSERT(anchor_day >= 1);
    TALLY_ASSERT(anchor_day <= 28);
    if (anchor_day == 1) return Month(t);
    const LocalTime lt = Local(t);
    const int32_t month = MonthId(lt.year, lt.month);
    return lt.day >= anchor_day ? month : month - 1;
}

std::string MonthIdLabel(int32_t id) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02d", MonthIdYear(id), MonthIdMonth(id));
    return buf;
}

PeriodBounds MonthPeriod(const date::time_zone* zone, int32_t month_id, int anchor_day) {
    TALLY_ASSERT(anchor_day >= 1);
    TALLY_ASSERT(anchor_day <= 28);
    const int32_t next = month_id + 1;
    PeriodBounds b;
    b.start = LocalMidnight(zone, MonthIdYear(month_id), MonthIdMonth(month_id), anchor_day);
    b.end = LocalMidnight(zone, MonthIdYear(next), MonthIdMonth(next), anchor_day);
    TALLY_ASSERT(b.start < b.end);
    return b;
}

Instant LocalMidnight(const date::time_zone* zone, int year, int month, int day) {
    TALLY_ASSERT(zone != nullptr);
    date::local_days ld{date::year_month_day{date::year{year}, date::month{static_cast<unsigned>(month)},
                                             date::day{static_cast<unsigned>(day)}}};
    auto info = zone->get_info(ld);
    date::sys_seconds sys;
    if (info.result == date::local_info::nonexistent) {
        sys = info.first.end;  // the day starts at the transition
    } else {
        sys = date::sys_seconds(ld.time_since_epoch()) - info.first.offset;
    }
    return std::chrono::time_point_cast<std::chrono::milliseconds>(sys);
}

std::optional<std::chrono::seconds> ParseDuration(std::string_view text) {
    if (text.size() < 2 || text.size() > 10) return std::nullopt;
    int64_t scale = 0;
    switch (text.back()) {
        case 's': scale = 1; break;
        case 'm': scale = 60; break;
        case 'h': scale = 3600; break;
        case 'd': scale = 86400; break;
        default: return std::nullopt;
    }
    int64_t n = 0;
    for (size_t i = 0; i + 1 < text.size(); ++i) {
        const char c = text[i];
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + (c - '0');  // at most 9 digits: no overflow
    }
    if (n * scale > int64_t{1'000'000} * 86400) return std::nullopt;
    return std::chrono::seconds(n * scale);
}

std::string FormatDuration(std::chrono::seconds d) {
    const int64_t s = d.count();
    TALLY_ASSERT(s >= 0);
    if (s % 86400 == 0 && s / 86400 >= 2) return std::to_string(s / 86400) + "d";
    if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
    if (s % 60 == 0) return std::to_string(s / 60) + "m";
    return std::to_string(s) + "s";
}

std::optional<int> ParseClockMinutes(std::string_view text) {
    int h, m;
    if (text.size() != 5 || text[2] != ':' || !Digits(text, 0, 2, &h) || !Digits(text, 3, 2, &m)) {
        return std::nullopt;
    }
    if (m > 59 || h > 24 || (h == 24 && m != 0)) return std::nullopt;
    return h * 60 + m;
}

}  // namespace tally
