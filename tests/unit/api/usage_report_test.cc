// GET /v1/usage's rows add up exactly to what the invoice says (the same
// rollups priced by PriceRollups), whatever the grouping: tiers, free
// quotas, discounts, coupons and a commitment included.
#include "api/usage_report.h"

#include <gtest/gtest.h>

#include <map>

#include "pricing/invoice.h"
#include "pricing/rater.h"
#include "test_plans.h"

namespace tally::api {
namespace {

using testing::EventSpec;
using testing::MakeEvent;

const char* const kPlan = R"(
plan: tiers
versions:
  - version: t1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    rates_per: 1000
    models:
      a: {rates: {input: "1.3", output: "2.7"}}
      b: {rates: {input: "10", output: "20"}}
      c: {rates: {input: "1", output: "1"}}
    tiers:
      - name: a-graduated
        models: [a]
        units: [input]
        aggregate: per_model_and_unit
        mode: graduated
        tiers:
          - {up_to: 3000, multiplier: "1"}
          - {multiplier: "0.5"}
    free_quotas:
      - {name: trial, models: [c], tokens: 5000}
)";

const char* const kSubscriptions = R"(
subscriptions:
  - customer: acme
    plan: tiers
    discounts: [{name: contract, percent: "10", models: [b]}]
    coupons:
      - {code: FIVE, amount: "0.05"}
    minimum_commitment: "500"
)";

const char* const kProjects[] = {"", "web", "batch-jobs", "mobile"};

class UsageReportTest : public ::testing::Test {
   protected:
    UsageReportTest() : catalog_(testing::MustCatalog({kPlan})) {
        subscriptions_ = testing::MustSubscriptions(kSubscriptions, &catalog_);
        Rater rater(catalog_, subscriptions_, "tiers", {});
        const char* models[] = {"a", "b", "c"};
        // Calls over five local days of November (and one in December),
        // at hours that cross UTC and Shanghai day boundaries.
        for (int i = 0; i < 60; ++i) {
            char time[32];
            std::snprintf(time, sizeof time, "2025-11-%02dT%02d:17:00Z", 3 + i % 5, (i * 7) % 24);
            std::string t = time;
            EventSpec s{
                .customer = "acme", .model = models[i % 3], .time = t.c_str(), .input = 700 + i * 13, .output = 90 + i};
            // Projects change no price: every other test here holds with them.
            Event e = MakeEvent(s);
            e.project = kProjects[i % 4];
            EXPECT_EQ(rater.Add(e).status, RateStatus::kRated);
        }
        EXPECT_EQ(
            rater.Add(MakeEvent({.customer = "acme", .model = "a", .time = "2025-12-02T01:00:00Z", .input = 5})).status,
            RateStatus::kRated);
        records_ = ToRecords(catalog_, rater.Rollups());
    }

    // The invoices of the records with hour < `to_hour`, of one month id.
    std::vector<Invoice> Invoices(int32_t period, int32_t to_hour) {
        std::vector<RollupRecord> some;
        for (const RollupRecord& r : records_) {
            if (r.period == period && r.hour < to_hour) some.push_back(r);
        }
        return PriceRollups(catalog_, subscriptions_, "tiers", {}, FromRecords(catalog_, some).rollups);
    }

    static std::string Sum(const UsageReport& r) {
        EXPECT_EQ(r.totals.size(), 1u);
        return r.totals.empty() ? "" : r.totals[0].ToString(2);
    }
    static std::string RowSum(const UsageReport& r) {
        Amount sum = Amount::Zero(*Currency::FromCode("CNY"));
        for (const UsageRow& row : r.rows) sum += row.cost;
        return sum.ToString(2);
    }

    Catalog catalog_;
    std::vector<Subscription> subscriptions_;
    std::vector<RollupRecord> records_;
};

TEST_F(UsageReportTest, RowsOfAPeriodAddUpToTheInvoiceSubtotalInEveryGrouping) {
    const int32_t nov = MonthId(2025, 11);
    const std::vector<Invoice> invoices = Invoices(nov, INT32_MAX);
    ASSERT_EQ(invoices.size(), 1u);
    ASSERT_TRUE(invoices[0].error.empty()) << invoices[0].error;
    const std::string subtotal = invoices[0].subtotal.ToString(2);
    std::vector<RollupRecord> nov_records;
    for (const RollupRecord& r : records_) {
        if (r.period == nov) nov_records.push_back(r);
    }
    for (GroupBy g : {GroupBy::kDay, GroupBy::kModel, GroupBy::kProject}) {
        UsageQuery q{.customer = "acme", .period = nov, .group_by = g};
        const UsageReport r = ComputeUsage(catalog_, subscriptions_, nov_records, q);
        SCOPED_TRACE(std::string(GroupByName(g)));
        EXPECT_EQ(Sum(r), subtotal);
        EXPECT_EQ(RowSum(r), subtotal);
        ASSERT_EQ(r.periods.size(), 1u);
        EXPECT_EQ(r.periods[0].subtotal.ToString(2), subtotal);
        EXPECT_EQ(r.periods[0].period, "2025-11");
    }
}

TEST_F(UsageReportTest, ByModelShowsEachModelAndTheInvoiceLevelRows) {
    const int32_t nov = MonthId(2025, 11);
    std::vector<RollupRecord> nov_records;
    for (const RollupRecord& r : records_) {
        if (r.period == nov) nov_records.push_back(r);
    }
    const UsageReport r = ComputeUsage(catalog_, subscriptions_, nov_records,
                                       {.customer = "acme", .period = nov, .group_by = GroupBy::kModel});
    std::map<std::string, std::string> by;
    for (const UsageRow& row : r.rows) by[row.kind + ":" + row.group] = row.cost.ToString(2);
    // The invoice's own lines per model, summed.
    const std::vector<Invoice> inv = Invoices(nov, INT32_MAX);
    std::map<std::string, Amount> model;
    for (const InvoiceLine& l : inv[0].lines) {
        if (l.kind != LineKind::kUsage && l.kind != LineKind::kFreeQuota) continue;
        auto [it, fresh] = model.try_emplace(l.model, l.amount_rounded);
        if (!fresh) it->second += l.amount_rounded;
    }
    for (const char* m : {"a", "b", "c"}) EXPECT_EQ(by["usage:" + std::string(m)], model.at(m).ToString(2)) << m;
    // Each model's row counts its calls (the calls records of its rollups); they add up to the invoice's.
    std::map<std::string, int64_t> calls;
    for (const RollupRecord& rec : nov_records) {
        if (rec.unit.empty()) calls[rec.model] += rec.calls;
    }
    int64_t row_calls = 0;
    for (const UsageRow& row : r.rows) {
        if (row.kind != "usage") continue;
        EXPECT_EQ(row.calls, calls[row.group]) << row.group;
        row_calls += row.calls;
    }
    EXPECT_GT(row_calls, 0);
    EXPECT_EQ(row_calls, inv[0].calls);
    EXPECT_EQ(by.count("discount:contract (10%)") + by.count("coupon:coupon FIVE (0.05 CNY)"), 2u)
        << ::testing::PrintToString(by);
    bool commitment = false;
    for (const InvoiceLine& l : inv[0].lines) commitment = commitment || l.kind == LineKind::kCommitment;
    size_t commitment_rows = 0;
    for (const UsageRow& row : r.rows) commitment_rows += row.kind == "commitment" ? 1u : 0u;
    EXPECT_TRUE(commitment);  // usage is below the 500 CNY minimum
    EXPECT_EQ(commitment_rows, 1u);
    // Every row kind is one the docs name.
    for (const UsageRow& row : r.rows) {
        EXPECT_TRUE(row.kind == "usage" || row.kind == "discount" || row.kind == "coupon" || row.kind == "rounding" ||
                    row.kind == "commitment")
            << row.kind;
    }
}

// By project: the model grouping's usage rows, summed, split over the
// projects by list value at the fen; its invoice-level rows unchanged.
TEST_F(UsageReportTest, ByProjectSplitsTheUsageRowsAndKeepsTheInvoiceLevelRows) {
    const int32_t nov = MonthId(2025, 11);
    std::vector<RollupRecord> nov_records;
    for (const RollupRecord& r : records_) {
        if (r.period == nov) nov_records.push_back(r);
    }
    const UsageReport by_model =
        ComputeUsage(catalog_, subscriptions_, nov_records, {.customer = "acme", .period = nov, .group_by = GroupBy::kModel});
    const UsageReport by_project = ComputeUsage(catalog_, subscriptions_, nov_records,
                                                {.customer = "acme", .period = nov, .group_by = GroupBy::kProject});
    Amount model_usage = Amount::Zero(*Currency::FromCode("CNY"));
    std::vector<std::string> model_other, project_other;
    for (const UsageRow& row : by_model.rows) {
        if (row.kind == "usage") {
            model_usage += row.cost;
        } else {
            model_other.push_back(row.kind + " " + row.group + " " + row.cost.ToString(2));
        }
    }
    Amount project_usage = Amount::Zero(*Currency::FromCode("CNY"));
    std::map<std::string, int64_t> calls;
    for (const UsageRow& row : by_project.rows) {
        if (row.kind == "usage") {
            project_usage += row.cost;
            calls[row.group] += row.calls;
            // At the fen: allocated in the currency's minor unit.
            EXPECT_TRUE(row.cost.value().raw() % 10'000'000'000'000'000 == 0) << row.group;
        } else {
            project_other.push_back(row.kind + " " + row.group + " " + row.cost.ToString(2));
        }
    }
    EXPECT_EQ(project_usage, model_usage);
    EXPECT_EQ(project_other, model_other);
    EXPECT_FALSE(project_other.empty());  // the discount, coupon and commitment rows
    // 60 calls in November, 15 per project ("" is none).
    EXPECT_EQ(calls, (std::map<std::string, int64_t>{{"", 15}, {"batch-jobs", 15}, {"mobile", 15}, {"web", 15}}));
}

// One project carries all of the usage's cost.
TEST_F(UsageReportTest, ByProjectWithOneProjectItCarriesAllOfTheUsage) {
    Rater rater(catalog_, subscriptions_, "tiers", {});
    for (int i = 0; i < 3; ++i) {
        Event e = MakeEvent({.customer = "acme", .model = "a", .time = "2025-10-03T01:00:00Z", .input = 1000 + i});
        e.project = "only";
        ASSERT_EQ(rater.Add(e).status, RateStatus::kRated);
    }
    const std::vector<RollupRecord> records = ToRecords(catalog_, rater.Rollups());
    const UsageReport r = ComputeUsage(catalog_, subscriptions_, records,
                                       {.customer = "acme", .period = MonthId(2025, 10), .group_by = GroupBy::kProject});
    const UsageReport m = ComputeUsage(catalog_, subscriptions_, records,
                                       {.customer = "acme", .period = MonthId(2025, 10), .group_by = GroupBy::kModel});
    ASSERT_FALSE(r.rows.empty());
    EXPECT_EQ(r.rows[0].group, "only");
    EXPECT_EQ(r.rows[0].calls, 3);
    EXPECT_EQ(r.rows[0].cost, m.rows[0].cost);
    EXPECT_EQ(RowSum(r), RowSum(m));
}

TEST_F(UsageReportTest, ADayCostsTheSubtotalThroughItLessTheSubtotalBeforeIt) {
    const int32_t nov = MonthId(2025, 11);
    std::vector<RollupRecord> nov_records;
    for (const RollupRecord& r : records_) {
        if (r.period == nov) nov_records.push_back(r);
    }
    const UsageReport r = ComputeUsage(catalog_, subscriptions_, nov_records,
                                       {.customer = "acme", .period = nov, .group_by = GroupBy::kDay});
    // Local (Shanghai) days: 2025-11-04 00:00 +08:00 is 2025-11-03T16:00Z.
    const int32_t h_4th = static_cast<int32_t>(
        std::chrono::floor<std::chrono::hours>(ParseRfc3339("2025-11-03T16:00:00Z")->time_since_epoch()).count());
    const int32_t h_5th = h_4th + 24;
    auto no_commitment = [](const std::vector<Invoice>& inv) {
        Amount s = Amount::Zero(*Currency::FromCode("CNY"));
        for (const Invoice& i : inv) {
            for (const InvoiceLine& l : i.lines) {
                if (l.kind != LineKind::kCommitment) s += l.amount_rounded;
            }
        }
        return s;
    };
    const Amount expected = no_commitment(Invoices(nov, h_5th)) - no_commitment(Invoices(nov, h_4th));
    bool found = false;
    for (const UsageRow& row : r.rows) {
        if (row.kind == "usage" && row.group == "2025-11-04") {
            EXPECT_EQ(row.cost.ToString(2), expected.ToString(2));
            EXPECT_GT(row.calls, 0);
            found = true;
        }
    }
    EXPECT_TRUE(found);
    // The days are in order, then the commitment's true-up as the last row.
    std::string last;
    for (const UsageRow& row : r.rows) {
        if (row.kind != "usage") continue;
        EXPECT_LT(last, row.group);
        last = row.group;
    }
    ASSERT_FALSE(r.rows.empty());
    EXPECT_EQ(r.rows.back().kind, "commitment");
    EXPECT_EQ(Sum(r), "500.00");
}

TEST_F(UsageReportTest, ARangeCostsTheSubtotalThroughToLessTheSubtotalBeforeFrom) {
    const Instant from = *ParseRfc3339("2025-11-04T00:00:00Z"), to = *ParseRfc3339("2025-11-06T00:00:00Z");
    auto hour = [](Instant t) {
        return static_cast<int32_t>(std::chrono::floor<std::chrono::hours>(t.time_since_epoch()).count());
    };
    std::vector<RollupRecord> some;  // what UsageReader::RangeRecords reads
    for (const RollupRecord& r : records_) {
        if (r.period == MonthId(2025, 11) && r.hour < hour(to)) some.push_back(r);
    }
    const Amount expected =
        Invoices(MonthId(2025, 11), hour(to))[0].subtotal - Invoices(MonthId(2025, 11), hour(from))[0].subtotal;
    for (GroupBy g : {GroupBy::kHour, GroupBy::kDay, GroupBy::kModel, GroupBy::kProject}) {
        SCOPED_TRACE(std::string(GroupByName(g)));
        const UsageReport r =
            ComputeUsage(catalog_, subscriptions_, some,
                         {.customer = "acme", .period = std::nullopt, .from = from, .to = to, .group_by = g});
        EXPECT_EQ(RowSum(r), expected.ToString(2));
        for (const UsageRow& row : r.rows) {
            if (g == GroupBy::kHour && row.kind == "usage") {
                EXPECT_GE(*ParseRfc3339(row.group), from);
                EXPECT_LT(*ParseRfc3339(row.group), to);
            }
        }
    }
}

TEST_F(UsageReportTest, AMonthWithoutUsageShowsTheCommitmentItsInvoiceWillBill) {
    const UsageReport r = ComputeUsage(catalog_, subscriptions_, {}, {.customer = "acme", .period = MonthId(2025, 10)});
    ASSERT_EQ(r.rows.size(), 1u);
    EXPECT_EQ(r.rows[0].kind, "commitment");
    EXPECT_EQ(Sum(r), "500.00");
    ASSERT_EQ(r.periods.size(), 1u);
    EXPECT_EQ(r.periods[0].subtotal.ToString(2), "500.00");
    // The same month of a range query (no period asked) shows nothing.
    UsageQuery q;
    q.customer = "acme";
    q.from = testing::At("2025-10-01T00:00:00Z");
    q.to = testing::At("2025-10-05T00:00:00Z");
    const UsageReport range = ComputeUsage(catalog_, subscriptions_, {}, q);
    EXPECT_TRUE(range.rows.empty());
}

TEST_F(UsageReportTest, AnAmountCouponUsedUpInAnEarlierPeriodIsNotSpentAgain) {
    // November used the 0.05 coupon; December priced after November, as
    // the invoice run prices it, does not take it off again.
    std::vector<RollupRecord> nov, dec;
    for (const RollupRecord& r : records_) (r.period == MonthId(2025, 11) ? nov : dec).push_back(r);
    ASSERT_FALSE(dec.empty());
    EXPECT_TRUE(NeedsEarlierPeriods(subscriptions_, "acme"));
    EXPECT_FALSE(NeedsEarlierPeriods(subscriptions_, "nobody"));
    std::vector<Invoice> all =
        PriceRollups(catalog_, subscriptions_, "tiers", {}, FromRecords(catalog_, records_).rollups);
    ASSERT_EQ(all.size(), 2u);
    UsageQuery q;
    q.customer = "acme";
    q.period = MonthId(2025, 12);
    q.group_by = GroupBy::kModel;  // the coupon is a row of its own
    const UsageReport after = ComputeUsage(catalog_, subscriptions_, dec, q, nov);
    EXPECT_EQ(Sum(after), all[1].subtotal.ToString(2));
    for (const UsageRow& row : after.rows) EXPECT_NE(row.kind, "coupon");
    // Alone, December would spend the coupon again (what `earlier` is for).
    const UsageReport alone = ComputeUsage(catalog_, subscriptions_, dec, q);
    EXPECT_TRUE(std::any_of(alone.rows.begin(), alone.rows.end(), [](const UsageRow& r) { return r.kind == "coupon"; }));
}

TEST_F(UsageReportTest, NoRecordsNoRowsAndNoPlansIsABadRequest) {
    const UsageReport r = ComputeUsage(catalog_, subscriptions_, {}, {.customer = "nobody", .period = MonthId(2025, 10)});
    EXPECT_TRUE(r.rows.empty());
    EXPECT_TRUE(r.totals.empty());
    EXPECT_THROW(ComputeUsage(Catalog{}, {}, {}, {.customer = "acme", .period = MonthId(2025, 10)}), HttpError);
}

}  // namespace
}  // namespace tally::api
