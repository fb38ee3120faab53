#include "app/progress.h"

#include <gtest/gtest.h>

#include <sstream>

namespace tally {
namespace {

// A clock the test moves by hand.
struct FakeClock {
    Progress::Clock::time_point now{};
    void Forward(int64_t ms) { now += std::chrono::milliseconds(ms); }
};

Progress::Options Opts(FakeClock* clock, bool terminal, int64_t total) {
    Progress::Options o;
    o.what = "customers";
    o.total = total;
    o.terminal = terminal;
    o.now = [clock] { return clock->now; };
    return o;
}

TEST(Progress, RendersCountPercentBarRateAndTimeLeft) {
    FakeClock clock;
    std::ostringstream out;
    Progress p(out, Opts(&clock, false, 40));
    clock.Forward(3000);
    p.Advance(12);
    EXPECT_EQ(p.Render(), "12/40 customers  30% [#######                 ]  4.0/s  ETA 7s  3s elapsed");
    p.Done();
}

TEST(Progress, UnknownTotalHasNoBarAndNoTimeLeft) {
    FakeClock clock;
    std::ostringstream out;
    Progress p(out, Opts(&clock, false, -1));
    clock.Forward(2000);
    p.Advance(5);
    EXPECT_EQ(p.Render(), "5 customers  2.5/s  2s elapsed");
    p.Done();
}

TEST(Progress, NotATerminalWritesALineEveryFiveSeconds) {
    FakeClock clock;
    std::ostringstream out;
    {
        Progress p(out, Opts(&clock, false, 100));
        for (int i = 0; i < 100; ++i) {
            clock.Forward(120);  // 12 s in all
            p.Advance(1);
        }
    }  // Done() from the destructor
    const std::string text = out.str();
    EXPECT_EQ(text.find('\r'), std::string::npos);
    size_t lines = 0;
    for (char ch : text) lines += ch == '\n' ? 1 : 0;
    EXPECT_EQ(lines, 3u);  // at 5 s, at 10 s, and done
    EXPECT_NE(text.find("progress: 42/100 customers"), std::string::npos) << text;
    EXPECT_NE(text.find("done: 100/100 customers  100% [########################]"), std::string::npos) << text;
}

TEST(Progress, ATerminalRedrawsOneLineAtMostTenTimesASecond) {
    FakeClock clock;
    std::ostringstream out;
    Progress p(out, Opts(&clock, true, 1000));
    for (int i = 0; i < 1000; ++i) {
        clock.Forward(1);  // 1 s in all
        p.Advance(1);
    }
    p.Done();
    p.Done();  // once only
    const std::string text = out.str();
    size_t redraws = 0, newlines = 0;
    for (char ch : text) {
        redraws += ch == '\r' ? 1 : 0;
        newlines += ch == '\n' ? 1 : 0;
    }
    EXPECT_EQ(redraws, 11u);  // every 100 ms, and the final state
    EXPECT_EQ(newlines, 1u);  // the bar ends with one newline
    EXPECT_EQ(text.back(), '\n');
}

}  // namespace
}  // namespace tally
