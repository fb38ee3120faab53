#include "pricing/time.h"

#include <gtest/gtest.h>

#include "pricing/plan.h"

namespace tally {
namespace {

Instant T(const char* text) {
    auto t = ParseRfc3339(text);
    EXPECT_TRUE(t.has_value()) << text;
    return t.value_or(Instant{});
}

TEST(Time, ParsesRfc3339WithOffsetsAndFractions) {
    EXPECT_EQ(T("1970-01-01T00:00:00Z").time_since_epoch().count(), 0);
    EXPECT_EQ(T("2026-11-03T14:22:05.123Z"), T("2026-11-03T22:22:05.123+08:00"));
    EXPECT_EQ(T("2025-09-05T16:00:00Z").time_since_epoch().count(), 1757088000000);
    EXPECT_EQ(T("2025-09-05T16:00:00.9999Z").time_since_epoch().count(), 1757088000999);
    EXPECT_EQ(FormatRfc3339(T("2025-09-05T16:00:00+00:00")), "2025-09-05T16:00:00Z");
    EXPECT_EQ(FormatRfc3339(T("2025-09-05T16:00:00.5Z")), "2025-09-05T16:00:00.500Z");
}

TEST(Time, RejectsWhatIsNotRfc3339) {
    for (const char* bad : {"", "2025-09-05", "2025-09-05 16:00:00Z", "2025-09-05T16:00:00", "2025-02-30T00:00:00Z",
                            "2025-13-01T00:00:00Z", "2025-09-05T24:00:00Z", "2025-09-05T16:00:00+8:00",
                            "2025-09-05T16:00:00.Z", "2025-09-05T16:00:00Zjunk", "yesterday"}) {
        EXPECT_FALSE(ParseRfc3339(bad).has_value()) << bad;
    }
}

TEST(Time, LocalTimeInAZoneAcrossDaylightSaving) {
    ZoneClock la(FindZone("America/Los_Angeles"));
    // 2025-11-02 09:30Z is 01:30 PST after the fall-back at 09:00Z.
    LocalTime before = la.Local(T("2025-11-02T08:30:00Z"));  // 01:30 PDT
    LocalTime after = la.Local(T("2025-11-02T09:30:00Z"));   // 01:30 PST
    EXPECT_EQ(before.minute_of_day, 90);
    EXPECT_EQ(after.minute_of_day, 90);
    EXPECT_EQ(after.weekday, 6);  // Sunday
    EXPECT_EQ(LocalMidnight(FindZone("America/Los_Angeles"), 2025, 11, 1), T("2025-11-01T07:00:00Z"));
    EXPECT_EQ(LocalMidnight(FindZone("America/Los_Angeles"), 2025, 12, 1), T("2025-12-01T08:00:00Z"));
    ZoneClock sh(FindZone("Asia/Shanghai"));
    LocalTime lt = sh.Local(T("2025-10-31T16:00:00Z"));
    EXPECT_EQ(lt.month, 11);
    EXPECT_EQ(lt.day, 1);
    EXPECT_EQ(lt.minute_of_day, 0);
    EXPECT_EQ(FindZone("Mars/Olympus"), nullptr);
}

TEST(Window, StartInclusiveEndExclusiveAcrossMidnight) {
    Window w;
    w.start_minute = 16 * 60 + 30;
    w.end_minute = 30;
    ZoneClock utc(FindZone("UTC"));
    EXPECT_FALSE(w.Contains(utc.Local(T("2025-09-01T16:29:59Z"))));
    EXPECT_TRUE(w.Contains(utc.Local(T("2025-09-01T16:30:00Z"))));
    EXPECT_TRUE(w.Contains(utc.Local(T("2025-09-01T23:59:59Z"))));
    EXPECT_TRUE(w.Contains(utc.Local(T("2025-09-02T00:29:59.999Z"))));
    EXPECT_FALSE(w.Contains(utc.Local(T("2025-09-02T00:30:00Z"))));
}

TEST(Window, WeekdaysBelongToTheDayTheWindowStarts) {
    Window w;
    w.start_minute = 22 * 60;
    w.end_minute = 2 * 60;
    w.weekdays = 1u << 4;  // Friday nights only
    ZoneClock utc(FindZone("UTC"));
    EXPECT_TRUE(w.Contains(utc.Local(T("2025-09-05T23:00:00Z"))));   // Friday 23:00
    EXPECT_TRUE(w.Contains(utc.Local(T("2025-09-06T01:59:00Z"))));   // Saturday 01:59, Friday's window
    EXPECT_FALSE(w.Contains(utc.Local(T("2025-09-06T23:00:00Z"))));  // Saturday night
    EXPECT_FALSE(w.Contains(utc.Local(T("2025-09-05T01:00:00Z"))));  // Friday 01:00 is Thursday's window
}

TEST(Time, AMonthThatStepsBackAtMidnightIsNotACrash) {
    // St. John's fell back at 00:01 NDT on 2009-11-01, to 23:01 NST on
    // October 31: 02:45Z is local October again, after local November began.
    ZoneClock sj(FindZone("America/St_Johns"));
    EXPECT_EQ(sj.Month(T("2009-11-01T02:30:30Z")), MonthId(2009, 11));  // 00:00:30 NDT
    EXPECT_EQ(sj.Month(T("2009-11-01T02:45:00Z")), MonthId(2009, 10));  // 23:15 NST
    EXPECT_EQ(sj.Month(T("2009-11-01T03:45:00Z")), MonthId(2009, 11));  // 00:15 NST
    EXPECT_EQ(sj.Month(T("2009-10-15T12:00:00Z")), MonthId(2009, 10));
    EXPECT_EQ(sj.Month(T("2009-11-01T02:45:00Z")), MonthId(2009, 10));  // from a cached October
    // After 2038 a day count times 86400 no longer fits an int (found by fuzz_event).
    ZoneClock utc(FindZone("UTC"));
    EXPECT_EQ(utc.Month(T("2101-11-03T12:00:00Z")), MonthId(2101, 11));
    EXPECT_EQ(sj.Month(T("2199-12-31T23:59:59Z")), MonthId(2199, 12));
}

TEST(Time, AnchoredPeriodsStartAtLocalMidnightOfTheAnchorDay) {
    ZoneClock sh(FindZone("Asia/Shanghai"));
    // Day 15 00:00 in Beijing is 16:00Z on the 14th.
    EXPECT_EQ(sh.AnchoredMonth(T("2025-11-14T15:59:59.999Z"), 15), MonthId(2025, 10));
    EXPECT_EQ(sh.AnchoredMonth(T("2025-11-14T16:00:00Z"), 15), MonthId(2025, 11));
    EXPECT_EQ(sh.AnchoredMonth(T("2026-01-10T00:00:00Z"), 15), MonthId(2025, 12));  // across the year
    EXPECT_EQ(sh.AnchoredMonth(T("2025-10-31T16:00:00Z"), 1), MonthId(2025, 11));   // 1: calendar month
    PeriodBounds dec = MonthPeriod(FindZone("Asia/Shanghai"), MonthId(2025, 12), 15);
    EXPECT_EQ(dec.start, T("2025-12-15T00:00:00+08:00"));
    EXPECT_EQ(dec.end, T("2026-01-15T00:00:00+08:00"));
    PeriodBounds feb = MonthPeriod(FindZone("UTC"), MonthId(2024, 2), 1);
    EXPECT_EQ(feb.start, T("2024-02-01T00:00:00Z"));
    EXPECT_EQ(feb.end, T("2024-03-01T00:00:00Z"));
    EXPECT_EQ(MonthIdLabel(MonthId(2025, 1)), "2025-01");
    // Sao Paulo skipped 00:00-01:00 on 2018-11-04: the period starts at the
    // transition (03:00Z), and the instant before it is still October's.
    ZoneClock sp(FindZone("America/Sao_Paulo"));
    EXPECT_EQ(MonthPeriod(FindZone("America/Sao_Paulo"), MonthId(2018, 11), 4).start, T("2018-11-04T03:00:00Z"));
    EXPECT_EQ(sp.AnchoredMonth(T("2018-11-04T02:59:59Z"), 4), MonthId(2018, 10));
    EXPECT_EQ(sp.AnchoredMonth(T("2018-11-04T03:00:00Z"), 4), MonthId(2018, 11));
}

TEST(Time, Durations) {
    EXPECT_EQ(ParseDuration("24h"), std::chrono::hours(24));
    EXPECT_EQ(ParseDuration("36h"), std::chrono::hours(36));
    EXPECT_EQ(ParseDuration("2d"), std::chrono::hours(48));
    EXPECT_EQ(ParseDuration("0h"), std::chrono::seconds(0));
    EXPECT_EQ(ParseDuration("90m"), std::chrono::minutes(90));
    EXPECT_EQ(ParseDuration("45s"), std::chrono::seconds(45));
    for (const char* bad : {"", "h", "24", "-1h", "1.5h", "24H", "1w", " 24h", "24h ", "1000000001d", "9999999999h"}) {
        EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
    }
    EXPECT_EQ(FormatDuration(std::chrono::hours(24)), "24h");
    EXPECT_EQ(FormatDuration(std::chrono::hours(48)), "2d");
    EXPECT_EQ(FormatDuration(std::chrono::hours(36)), "36h");
    EXPECT_EQ(FormatDuration(std::chrono::seconds(0)), "0h");
    EXPECT_EQ(FormatDuration(std::chrono::minutes(90)), "90m");
    EXPECT_EQ(FormatDuration(std::chrono::seconds(45)), "45s");
}

TEST(Time, ClockMinutes) {
    EXPECT_EQ(ParseClockMinutes("00:30"), 30);
    EXPECT_EQ(ParseClockMinutes("24:00"), 1440);
    EXPECT_FALSE(ParseClockMinutes("24:01").has_value());
    EXPECT_FALSE(ParseClockMinutes("7:30").has_value());
    EXPECT_FALSE(ParseClockMinutes("07:60").has_value());
}

}  // namespace
}  // namespace tally
