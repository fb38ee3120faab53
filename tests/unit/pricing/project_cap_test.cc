#include "pricing/project_cap.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include "pricing/rater.h"
#include "test_plans.h"

namespace tally {
namespace {

using testing::EventSpec;
using testing::MakeEvent;

TEST(ProjectCap, AdmitsInOrderOfFirstHourThenNameUpToTheCap) {
    ProjectCap cap(2);
    const std::vector<ProjectUse> now = cap.Admit({{"c", 7, "zeta", 10}, {"c", 7, "beta", 12}, {"c", 7, "alpha", 10}});
    ASSERT_EQ(now.size(), 2u);
    EXPECT_EQ(now[0].project, "alpha");  // hour 10, before zeta by name
    EXPECT_EQ(now[1].project, "zeta");
    EXPECT_EQ(cap.StoredName("c", 7, "alpha"), "alpha");
    EXPECT_EQ(cap.StoredName("c", 7, "zeta"), "zeta");
    EXPECT_EQ(cap.StoredName("c", 7, "beta"), "other");  // beyond the cap
    EXPECT_FALSE(cap.HasRoom("c", 7));
    // Per customer and per period: another period has its own places.
    EXPECT_EQ(cap.StoredName("c", 8, "alpha"), "other");
    EXPECT_EQ(cap.Admit({{"c", 8, "beta", 0}}).size(), 1u);
    EXPECT_EQ(cap.StoredName("c", 8, "beta"), "beta");
    EXPECT_EQ(cap.StoredName("d", 7, "alpha"), "other");
}

TEST(ProjectCap, AdmittedProjectsStayAndTakeTheirPlaces) {
    ProjectCap cap(2);
    cap.Seed("c", 7, "old");
    // "old" again takes no new place; one place is left for the first new one.
    const std::vector<ProjectUse> now = cap.Admit({{"c", 7, "old", 0}, {"c", 7, "b", 5}, {"c", 7, "a", 6}});
    ASSERT_EQ(now.size(), 1u);
    EXPECT_EQ(now[0].project, "b");
    EXPECT_EQ(cap.StoredName("c", 7, "old"), "old");
    EXPECT_EQ(cap.StoredName("c", 7, "a"), "other");
    EXPECT_EQ(cap.Admitted("c", 7), 2u);
}

TEST(ProjectCap, NoneOtherAndLongNamesTakeNoPlace) {
    ProjectCap cap(1);
    const std::string long_name(kProjectBytesMax + 1, 'x');
    EXPECT_FALSE(Admissible(""));
    EXPECT_FALSE(Admissible("other"));
    EXPECT_FALSE(Admissible(long_name));
    EXPECT_TRUE(Admissible(std::string(kProjectBytesMax, 'x')));
    EXPECT_TRUE(cap.Admit({{"c", 7, "", 0}, {"c", 7, "other", 0}, {"c", 7, long_name, 0}}).empty());
    EXPECT_TRUE(cap.HasRoom("c", 7));
    EXPECT_EQ(cap.StoredName("c", 7, ""), "");
    EXPECT_EQ(cap.StoredName("c", 7, "other"), "other");
    EXPECT_EQ(cap.StoredName("c", 7, long_name), "other");
}

TEST(ProjectCap, UsesAreOnePerProjectWithTheEarliestHour) {
    struct Item {
        std::string customer;
        int32_t period;
        int32_t hour;
        std::string project;
    };
    const std::vector<Item> items = {{"c", 7, 30, "p"}, {"c", 7, 20, "p"}, {"c", 7, 5, ""}, {"c", 8, 40, "p"}};
    const std::vector<ProjectUse> uses = ProjectUses(items);
    ASSERT_EQ(uses.size(), 2u);
    EXPECT_EQ(uses[0].period, 7);
    EXPECT_EQ(uses[0].first_hour, 20);
    EXPECT_EQ(uses[1].period, 8);
}

class ProjectRaterTest : public ::testing::Test {
   protected:
    ProjectRaterTest() : catalog_(testing::MustCatalog({testing::kDoubaoPlan})) {}
    Event Call(const char* project, const char* time = "2025-11-03T12:10:00Z") {
        Event e = MakeEvent({.model = "doubao-seed-1.6", .time = time, .input = 100, .output = 300});
        e.project = project;
        return e;
    }
    Catalog catalog_;
};

TEST_F(ProjectRaterTest, TheProjectIsPartOfTheRollupKey) {
    Rater rater(catalog_, {}, "doubao", {});
    rater.Add(Call("alpha"));
    rater.Add(Call("beta"));
    rater.Add(Call("alpha"));
    rater.Add(Call(""));
    const std::vector<Rollup> rows = rater.Rollups();
    ASSERT_EQ(rows.size(), 3u);  // one cell and hour, three projects
    EXPECT_EQ(rows[0].project, "");
    EXPECT_EQ(rows[0].calls, 1);
    EXPECT_EQ(rows[1].project, "alpha");
    EXPECT_EQ(rows[1].calls, 2);
    EXPECT_EQ(rows[1].quantities[kUnitInput], 200);
    EXPECT_EQ(rows[2].project, "beta");
    EXPECT_EQ(rows[0].cell, rows[1].cell);
}

TEST_F(ProjectRaterTest, ProjectsBeyondTheCapAreOtherWhateverTheOrder) {
    std::vector<Event> events;
    // kProjectsPerPeriodMax + 5 projects, p000 first in the month.
    for (size_t i = 0; i < kProjectsPerPeriodMax + 5; ++i) {
        char name[16];
        std::snprintf(name, sizeof name, "p%03zu", i);
        events.push_back(Call(name, "2025-11-03T12:10:00Z"));
    }
    events.push_back(Call("p000", "2025-11-01T00:10:00Z"));  // earliest: admitted first
    std::vector<std::string> seen[2];
    for (int order = 0; order < 2; ++order) {
        Rater rater(catalog_, {}, "doubao", {});
        if (order == 0) {
            for (const Event& e : events) rater.Add(e);
        } else {
            for (auto it = events.rbegin(); it != events.rend(); ++it) rater.Add(*it);
        }
        int64_t calls = 0, other = 0;
        for (const Rollup& r : rater.Rollups()) {
            calls += r.calls;
            if (r.project == "other") other += r.calls;
            seen[order].push_back(r.project + "@" + std::to_string(r.hour) + "#" + std::to_string(r.calls));
        }
        EXPECT_EQ(calls, static_cast<int64_t>(events.size()));
        EXPECT_EQ(other, 5);  // p100..p104 (same hour as the rest, last by name)
    }
    EXPECT_EQ(seen[0], seen[1]);
    // Named: p000 (first hour) and p001..p099 (same hour, by name).
    Rater rater(catalog_, {}, "doubao", {});
    for (const Event& e : events) rater.Add(e);
    std::set<std::string> named;
    for (const Rollup& r : rater.Rollups()) {
        if (r.project != "other") named.insert(r.project);
    }
    EXPECT_EQ(named.size(), kProjectsPerPeriodMax);
    EXPECT_EQ(*named.begin(), "p000");
    EXPECT_EQ(*named.rbegin(), "p099");
}

}  // namespace
}  // namespace tally
