// GET /v1/usage's cache (api/ledger_backend.h) against a real PostgreSQL
// while a writer adds deltas and folds them as `tally consume` does: every
// answer, cached or not, is exactly the answer computed from the records of
// one committed state, never one older than the state committed before the
// request began; after the writes stop, a repeated request is a cache hit.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "api/ledger_backend.h"
#include "ledger/batch_writer.h"
#include "ledger/migrations.h"
#include "ledger/store.h"
#include "ledger/usage_reader.h"
#include "pricing/diagnostic.h"
#include "pricing/time.h"
#include "tests/ledger/ledger_db.h"

namespace tally::api {
namespace {

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
    tiers:
      - name: a-graduated
        models: [a]
        units: [input]
        aggregate: per_model_and_unit
        mode: graduated
        tiers:
          - {up_to: 30000, multiplier: "1"}
          - {multiplier: "0.5"}
    free_quotas:
      - {name: trial, models: [b], tokens: 5000}
)";

constexpr int32_t kNovember = 2025 * 12 + 10;
constexpr int32_t kFirstHour = 489424;  // 2025-10-31T16:00Z, the period's first hour in Asia/Shanghai

std::string Describe(const UsageReport& r) {
    std::ostringstream out;
    for (const UsageRow& row : r.rows) {
        out << row.period << ' ' << row.group << ' ' << row.kind << ' ' << row.calls << ' ' << row.cost.ToString()
            << '\n';
    }
    for (const Amount& t : r.totals) out << "total " << t.ToString() << '\n';
    for (const PeriodSubtotal& p : r.periods) {
        out << "period " << p.period << ' ' << p.plan << ' ' << p.subtotal.ToString() << ' ' << p.calls << ' '
            << p.error << '\n';
    }
    out << "unresolved " << r.unresolved << '\n';
    return out.str();
}

int64_t CallsOf(const UsageReport& r) {
    int64_t calls = 0;
    for (const PeriodSubtotal& p : r.periods) calls += p.calls;
    return calls;
}

// One call of `customer`: its calls record and its input record.
std::vector<RollupRecord> Call(const std::string& customer, int32_t period, int32_t hour, const std::string& model,
                               int64_t input) {
    RollupRecord calls;
    calls.customer = customer;
    calls.period = period;
    calls.hour = hour;
    calls.plan = "tiers";
    calls.version = "t1";
    calls.model = model;
    calls.calls = 1;
    RollupRecord unit = calls;
    unit.unit = "input";
    unit.calls = 0;
    unit.quantity = input;
    return {calls, unit};
}

// `records` as rows of rollup_deltas, as a batch of the consumer adds them.
void InsertDeltas(pqxx::work& tx, const std::vector<RollupRecord>& records) {
    for (const RollupRecord& r : records) {
        tx.exec_params0(
            "INSERT INTO rollup_deltas (customer_id, period, hour, plan, version, model, served_model, band, "
            "condition, time_window, flags, unit, quantity, calls) "
            "VALUES ($1, $2, $3, $4, $5, $6, '', 0, -1, -1, 0, $7, $8, $9)",
            r.customer, r.period, r.hour, r.plan, r.version, r.model, r.unit, r.quantity, r.calls);
    }
}

class UsageCacheTest : public ledger::LedgerDb {
   protected:
    // The ledger migrated, the plan published and customer acme added.
    void PublishWithAcme() {
        ledger::Migrate(url_);
        ledger::Store store(url_);
        Diagnostics d;
        ASSERT_TRUE(store.PublishPlan(kPlan, "tiers.yaml", &d).has_value());
        store.AddCustomer("acme", "Acme");
    }
    // One call of acme in November (model `model`, `input` tokens), as a
    // batch of deltas.
    void InsertCallOfAcme(int64_t input, int32_t hour = kFirstHour + 5, const std::string& model = "a") {
        pqxx::connection conn(url_);
        pqxx::work tx(conn);
        InsertDeltas(tx, Call("acme", kNovember, hour, model, input));
        tx.commit();
    }
};

TEST_F(UsageCacheTest, AnswersAreExactAtACommittedStateUnderConcurrentWrites) {
    ledger::Migrate(url_);
    {
        ledger::Store store(url_);
        Diagnostics d;
        ASSERT_TRUE(store.PublishPlan(kPlan, "tiers.yaml", &d).has_value());
        store.AddCustomer("acme", "Acme");
        store.AddCustomer("beta", "Beta");
        store.Subscribe("acme", "tiers", "2025-01-01T00:00:00Z",
                        "discounts: [{name: contract, percent: \"10\", models: [b]}]\nminimum_commitment: \"90\"\n");
    }
    const uint32_t seed = std::random_device{}();
    std::printf("usage cache test seed %u\n", seed);
    std::mt19937 rng(seed);
    // The writer's changes, decided first: acme's calls of November (the
    // scope asked for), and calls of December and of another customer (out
    // of scope: they must not change an answer, and may be cache hits).
    constexpr int kChanges = 240;
    struct Change {
        std::vector<RollupRecord> records;
        bool in_scope = false;
    };
    std::vector<Change> changes;
    for (int i = 0; i < kChanges; ++i) {
        const int kind = static_cast<int>(rng() % 4);
        const auto hour = static_cast<int32_t>(kFirstHour + static_cast<int32_t>(rng() % 720));
        const std::string model = rng() % 2 == 0 ? "a" : "b";
        const auto input = static_cast<int64_t>(1 + rng() % 4000);
        if (kind <= 1) {
            changes.push_back({Call("acme", kNovember, hour, model, input), true});
        } else if (kind == 2) {
            changes.push_back({Call("acme", kNovember + 1, kFirstHour + 720 + hour % 700, model, input), false});
        } else {
            changes.push_back({Call("beta", kNovember, hour, model, input), false});
        }
    }
    std::vector<std::vector<RollupRecord>> in_scope;  // acme's November records after each in-scope change
    in_scope.emplace_back();
    for (const Change& c : changes) {
        if (!c.in_scope) continue;
        in_scope.push_back(in_scope.back());
        in_scope.back().insert(in_scope.back().end(), c.records.begin(), c.records.end());
    }

    std::atomic<int64_t> committed{0};  // in-scope calls committed so far
    std::atomic<bool> done{false};
    std::thread writer([&] {
        ledger::BatchWriter folder(url_, "test", "test");
        pqxx::connection conn(url_);
        int64_t calls = 0;
        for (size_t i = 0; i < changes.size(); ++i) {
            pqxx::work tx(conn);
            InsertDeltas(tx, changes[i].records);
            tx.commit();
            if (changes[i].in_scope) committed = ++calls;
            if (i % 17 == 16) folder.FoldDeltas();  // moves rows the readers may not have read yet
        }
        done = true;
    });

    auto cache = MakeUsageCache(16);
    struct Sample {
        GroupBy group_by;
        int64_t calls;
        std::string answer;
    };
    std::mutex mu;
    std::vector<Sample> samples;
    std::vector<std::thread> readers;
    std::atomic<int> stale{0};
    for (int t = 0; t < 3; ++t) {
        readers.emplace_back([&, t] {
            std::unique_ptr<Backend> backend = MakeLedgerBackend(url_, cache);
            UsageQuery q;
            q.customer = "acme";
            q.period = kNovember;
            for (int n = 0; !done || n < 5; ++n) {
                q.group_by = (n + t) % 2 == 0 ? GroupBy::kDay : GroupBy::kModel;
                const int64_t before = committed;
                const UsageReport r = backend->Usage(q);
                const int64_t calls = CallsOf(r);
                if (calls < before) ++stale;
                std::lock_guard<std::mutex> lock(mu);
                samples.push_back({q.group_by, calls, Describe(r)});
            }
        });
    }
    writer.join();
    for (std::thread& r : readers) r.join();
    EXPECT_EQ(stale, 0) << "an answer older than the state committed before its request";
    const UsageCacheStats during = StatsOf(*cache);
    std::printf("%zu answers while writing: %lld from the cache, %lld computed\n", samples.size(),
                static_cast<long long>(during.hits), static_cast<long long>(during.misses));

    // Each answer is the uncached computation of the state with its calls.
    ledger::Store store(url_);
    const ingest::CatalogSnapshot snapshot = store.Load();
    ASSERT_FALSE(samples.empty());
    std::set<int64_t> states;
    for (const Sample& s : samples) {
        ASSERT_GE(s.calls, 0);
        ASSERT_LT(static_cast<size_t>(s.calls), in_scope.size());
        UsageQuery q;
        q.customer = "acme";
        q.period = kNovember;
        q.group_by = s.group_by;
        const UsageReport expected =
            ComputeUsage(snapshot.catalog, snapshot.subscriptions, in_scope[static_cast<size_t>(s.calls)], q);
        EXPECT_EQ(s.answer, Describe(expected)) << "state with " << s.calls << " calls";
        states.insert(s.calls);
    }
    EXPECT_GT(states.size(), 1u) << "the readers saw only one state: the writes were not concurrent";

    // Once the writes stop: the same answer as without a cache, then a hit.
    UsageQuery q;
    q.customer = "acme";
    q.period = kNovember;
    q.group_by = GroupBy::kDay;
    const std::string uncached = Describe(MakeLedgerBackend(url_)->Usage(q));
    EXPECT_EQ(CallsOf(MakeLedgerBackend(url_)->Usage(q)), static_cast<int64_t>(in_scope.size() - 1));
    std::unique_ptr<Backend> backend = MakeLedgerBackend(url_, cache);
    EXPECT_EQ(Describe(backend->Usage(q)), uncached);
    const int64_t hits = StatsOf(*cache).hits;
    EXPECT_EQ(Describe(backend->Usage(q)), uncached);
    EXPECT_EQ(StatsOf(*cache).hits, hits + 1);
    // A change out of scope keeps the hit; one in scope does not.
    {
        pqxx::connection conn(url_);
        pqxx::work tx(conn);
        tx.exec0(
            "INSERT INTO rollup_deltas (customer_id, period, hour, plan, version, model, served_model, band, "
            "condition, time_window, flags, unit, quantity, calls) "
            "VALUES ('beta', " + std::to_string(kNovember) + ", " + std::to_string(kFirstHour) +
            ", 'tiers', 't1', 'a', '', 0, -1, -1, 0, '', 0, 1)");
        tx.commit();
    }
    EXPECT_EQ(Describe(backend->Usage(q)), uncached);
    EXPECT_EQ(StatsOf(*cache).hits, hits + 2);
    {
        pqxx::connection conn(url_);
        pqxx::work tx(conn);
        tx.exec0("UPDATE rollups SET quantity = quantity + 1000 WHERE customer_id = 'acme' AND unit = 'input'");
        tx.commit();
    }
    const std::string changed = Describe(backend->Usage(q));
    EXPECT_NE(changed, uncached);
    EXPECT_EQ(changed, Describe(MakeLedgerBackend(url_)->Usage(q)));
    EXPECT_EQ(StatsOf(*cache).hits, hits + 2);
    // A catalog change (a renamed customer) is seen too.
    store.AddCustomer("acme", "Acme Renamed");
    backend->Usage(q);
    EXPECT_EQ(StatsOf(*cache).hits, hits + 2);
}

TEST_F(UsageCacheTest, AMaxAgeServesTheAnswerOfAnOlderSnapshotUpToThatAgeOnly) {
    PublishWithAcme();
    UsageQuery q;
    q.customer = "acme";
    q.period = kNovember;
    InsertCallOfAcme(100);
    auto old = MakeUsageCache(16, std::chrono::minutes(1));
    std::unique_ptr<Backend> lenient = MakeLedgerBackend(url_, old);
    EXPECT_EQ(CallsOf(lenient->Usage(q)), 1);
    InsertCallOfAcme(200);
    EXPECT_EQ(CallsOf(lenient->Usage(q)), 1) << "within a minute: the kept answer of the older snapshot";
    EXPECT_EQ(StatsOf(*old).older_hits, 1);
    EXPECT_EQ(CallsOf(MakeLedgerBackend(url_)->Usage(q)), 2);

    auto young = MakeUsageCache(16, std::chrono::milliseconds(1));
    std::unique_ptr<Backend> strict = MakeLedgerBackend(url_, young);
    EXPECT_EQ(CallsOf(strict->Usage(q)), 2);
    InsertCallOfAcme(300);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(CallsOf(strict->Usage(q)), 3) << "older than 1 ms: computed again";
    EXPECT_EQ(StatsOf(*young).older_hits, 0);
    EXPECT_EQ(StatsOf(*young).misses, 2);
}

// With a max age and a refresher: an answer served older than half the max
// age is computed again in the background, and the next request gets the
// new answer without computing it; a refresh that finds the answer current
// computes nothing.
TEST_F(UsageCacheTest, TheRefresherComputesAnswersServedPastHalfTheMaxAge) {
    PublishWithAcme();
    // Waits (5 s at most) until the refresher has ended `n` refreshes.
    auto ended = [](const UsageCache& cache) {
        const UsageCacheStats s = StatsOf(cache);
        return s.refresh_current + s.refresh_computed + s.refresh_failures;
    };
    auto refreshes_reach = [&](const UsageCache& cache, int64_t n) {
        for (int i = 0; i < 500 && ended(cache) < n; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return ended(cache) >= n;
    };
    UsageQuery q;
    q.customer = "acme";
    q.period = kNovember;
    q.group_by = GroupBy::kModel;
    InsertCallOfAcme(100);
    // Wide margins: each step must fit in half the max age on a loaded
    // machine under ASan.
    constexpr auto kMaxAge = std::chrono::milliseconds(8000);
    auto cache = MakeUsageCache(16, kMaxAge);
    UsageRefresher refresher(url_, cache);
    std::unique_ptr<Backend> backend = MakeLedgerBackend(url_, cache);
    EXPECT_EQ(CallsOf(backend->Usage(q)), 1);
    InsertCallOfAcme(200);
    EXPECT_EQ(CallsOf(backend->Usage(q)), 1) << "younger than the max age: kept, the ledger not read";
    EXPECT_EQ(ended(*cache), 0) << "younger than half the max age: no refresh";

    std::this_thread::sleep_for(kMaxAge / 2 + std::chrono::milliseconds(200));
    EXPECT_EQ(CallsOf(backend->Usage(q)), 1) << "past half the max age: still served, and refreshed";
    ASSERT_TRUE(refreshes_reach(*cache, 1));
    EXPECT_EQ(StatsOf(*cache).refresh_failures, 0);
    const int64_t misses = StatsOf(*cache).misses;
    EXPECT_EQ(misses, 1) << "the first request's";
    EXPECT_EQ(StatsOf(*cache).refresh_computed, 1);
    EXPECT_EQ(CallsOf(backend->Usage(q)), 2) << "the refreshed answer";
    EXPECT_EQ(StatsOf(*cache).misses, misses) << "served without computing";
    EXPECT_EQ(Describe(backend->Usage(q)), Describe(MakeLedgerBackend(url_)->Usage(q)))
        << "the refreshed answer is the one computed without a cache";

    // Nothing changed: the refresh finds the answer current.
    std::this_thread::sleep_for(kMaxAge / 2 + std::chrono::milliseconds(200));
    EXPECT_EQ(CallsOf(backend->Usage(q)), 2);
    ASSERT_TRUE(refreshes_reach(*cache, 2));
    EXPECT_EQ(StatsOf(*cache).misses, misses) << "current: not computed again";
    EXPECT_EQ(StatsOf(*cache).refresh_computed, 1);
    EXPECT_EQ(StatsOf(*cache).refresh_current, 1);
    const std::string metrics = MetricsText(StatsOf(*cache));
    EXPECT_NE(metrics.find("tally_usage_cache_refreshes_total{result=\"current\"} 1\n"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("tally_usage_cache_answers_total{how=\"computed\"} 1\n"), std::string::npos) << metrics;
}

// A miss of a period reads the month's rollups rows once: while the
// 'usage' counter holds (no fold, no change to rollups), it reads only the
// customer's deltas and adds them to the kept rows; after a fold or any
// change to rollups it reads the month again. Every answer equals the
// uncached one.
TEST_F(UsageCacheTest, AMissAddsTheNewDeltasToTheKeptRollupsRowsUntilTheyChange) {
    ledger::Migrate(url_);
    {
        ledger::Store store(url_);
        Diagnostics d;
        ASSERT_TRUE(store.PublishPlan(kPlan, "tiers.yaml", &d).has_value());
        store.AddCustomer("acme", "Acme");
        store.Subscribe("acme", "tiers", "2025-01-01T00:00:00Z", "minimum_commitment: \"90\"\n");
    }
    auto insert_call = [&](int32_t hour, const std::string& model, int64_t input) {
        InsertCallOfAcme(input, hour, model);
    };
    ledger::BatchWriter folder(url_, "test", "test");
    auto cache = MakeUsageCache(16);
    std::unique_ptr<Backend> backend = MakeLedgerBackend(url_, cache);
    UsageQuery q;
    q.customer = "acme";
    q.period = kNovember;
    q.group_by = GroupBy::kDay;
    auto uncached = [&] { return Describe(MakeLedgerBackend(url_)->Usage(q)); };
    insert_call(kFirstHour + 3, "a", 20000);
    insert_call(kFirstHour + 30, "b", 7000);
    folder.FoldDeltas();
    EXPECT_EQ(Describe(backend->Usage(q)), uncached());  // reads the month
    EXPECT_EQ(StatsOf(*cache).delta_only, 0);
    EXPECT_EQ(StatsOf(*cache).folded_parts, 1u);
    // New deltas: of a key the rollups have (summed with it) and of new keys.
    insert_call(kFirstHour + 3, "a", 15000);
    insert_call(kFirstHour + 200, "a", 4000);
    const std::string with_deltas = Describe(backend->Usage(q));
    EXPECT_EQ(with_deltas, uncached());
    EXPECT_EQ(StatsOf(*cache).delta_only, 1);
    insert_call(kFirstHour + 3, "a", 1);
    EXPECT_EQ(Describe(backend->Usage(q)), uncached());
    EXPECT_EQ(StatsOf(*cache).delta_only, 2);
    // The fold moves the deltas into rollups: the month is read again.
    folder.FoldDeltas();
    insert_call(kFirstHour + 400, "b", 9000);
    EXPECT_EQ(Describe(backend->Usage(q)), uncached());
    EXPECT_EQ(StatsOf(*cache).delta_only, 2);
    // So is any change to rollups (a rebuild).
    {
        pqxx::connection conn(url_);
        pqxx::work tx(conn);
        tx.exec0("UPDATE rollups SET quantity = quantity + 1000 WHERE customer_id = 'acme' AND unit = 'input'");
        tx.commit();
    }
    insert_call(kFirstHour + 401, "b", 1);
    const std::string rebuilt = Describe(backend->Usage(q));
    EXPECT_EQ(rebuilt, uncached());
    EXPECT_EQ(StatsOf(*cache).delta_only, 2);
    // Another grouping of the same month reuses the kept rows.
    q.group_by = GroupBy::kModel;
    EXPECT_EQ(Describe(backend->Usage(q)), uncached());
    EXPECT_EQ(StatsOf(*cache).delta_only, 3);
    // Combine is the view's sum per key, saturating at 2^63-1.
    RollupRecord big = Call("acme", kNovember, kFirstHour, "a", INT64_MAX - 5)[1];
    RollupRecord more = big;
    more.quantity = 10;
    const std::vector<RollupRecord> sum = ledger::UsageReader::Combine({big}, {more});
    ASSERT_EQ(sum.size(), 1u);
    EXPECT_EQ(sum[0].quantity, INT64_MAX);
}

// The consumer's fold holds rollup_deltas in ACCESS EXCLUSIVE mode for
// seconds. With a fold wait (opt-in), a miss whose read waits longer than it
// serves the answer kept for the query (of the snapshot before the last
// change), and only then; a miss without a kept answer, or with no fold
// wait, waits for the fold and is current.
TEST_F(UsageCacheTest, DuringAFoldAMissWaitsAtMostTheFoldWaitThenServesTheKeptAnswer) {
    PublishWithAcme();
    using Clock = std::chrono::steady_clock;
    // Usage(q) while a fold holds the deltas for `hold`: the answer's calls
    // and how long it took.
    auto during_fold = [&](Backend* backend, const UsageQuery& q, std::chrono::milliseconds hold) {
        pqxx::connection folder(url_);
        pqxx::work fold(folder);
        // As BatchWriter::FoldDeltas did until 2026-11-30; a migration still may.
        fold.exec0("LOCK TABLE rollup_deltas IN ACCESS EXCLUSIVE MODE");
        int64_t calls = -1;
        Clock::duration took{};
        std::thread reader([&] {
            const Clock::time_point t0 = Clock::now();
            calls = CallsOf(backend->Usage(q));
            took = Clock::now() - t0;
        });
        std::this_thread::sleep_for(hold);
        fold.commit();
        reader.join();
        return std::make_pair(calls, took);
    };
    UsageQuery q;
    q.customer = "acme";
    q.period = kNovember;
    q.group_by = GroupBy::kDay;
    InsertCallOfAcme(100);
    auto cache = MakeUsageCache(16, std::chrono::milliseconds(0), std::chrono::milliseconds(200));
    std::unique_ptr<Backend> backend = MakeLedgerBackend(url_, cache);
    EXPECT_EQ(CallsOf(backend->Usage(q)), 1);
    InsertCallOfAcme(200);  // the kept answer is no longer current
    const auto [kept_calls, kept_took] = during_fold(backend.get(), q, std::chrono::milliseconds(3000));
    EXPECT_EQ(kept_calls, 1) << "the kept answer, of the snapshot before the second call";
    EXPECT_GE(kept_took, std::chrono::milliseconds(200)) << "it waited for the fold first";
    EXPECT_LT(kept_took, std::chrono::milliseconds(2500)) << "not for the whole fold";
    EXPECT_EQ(StatsOf(*cache).fold_hits, 1);
    // Nothing kept for this query (by model): it waits for the fold, current.
    UsageQuery by_model = q;
    by_model.group_by = GroupBy::kModel;
    const auto [model_calls, model_took] = during_fold(backend.get(), by_model, std::chrono::milliseconds(1000));
    EXPECT_EQ(model_calls, 2);
    EXPECT_GE(model_took, std::chrono::milliseconds(900));
    EXPECT_EQ(StatsOf(*cache).fold_hits, 1);
    // After the fold, the day answer is computed again: current.
    EXPECT_EQ(CallsOf(backend->Usage(q)), 2);
    EXPECT_EQ(StatsOf(*cache).fold_hits, 1);

    // No fold wait (the default): the miss waits for the whole fold.
    auto strict = MakeUsageCache(16);
    std::unique_ptr<Backend> current = MakeLedgerBackend(url_, strict);
    EXPECT_EQ(CallsOf(current->Usage(q)), 2);
    InsertCallOfAcme(300);
    const auto [strict_calls, strict_took] = during_fold(current.get(), q, std::chrono::milliseconds(1000));
    EXPECT_EQ(strict_calls, 3);
    EXPECT_GE(strict_took, std::chrono::milliseconds(900));
    EXPECT_EQ(StatsOf(*strict).fold_hits, 0);
}

TEST_F(UsageCacheTest, KeepsAtMostItsEntriesAndForgetsTheLeastRecentlyUsed) {
    ledger::Migrate(url_);
    {
        ledger::Store store(url_);
        Diagnostics d;
        ASSERT_TRUE(store.PublishPlan(kPlan, "tiers.yaml", &d).has_value());
        for (const char* c : {"c1", "c2", "c3"}) store.AddCustomer(c, c);
    }
    auto cache = MakeUsageCache(2);
    std::unique_ptr<Backend> backend = MakeLedgerBackend(url_, cache);
    UsageQuery q;
    q.period = kNovember;
    for (const char* c : {"c1", "c2", "c1", "c3", "c1", "c2"}) {
        q.customer = c;
        backend->Usage(q);
    }
    // c1 miss, c2 miss, c1 hit, c3 miss (c2 goes), c1 hit, c2 miss.
    const UsageCacheStats s = StatsOf(*cache);
    EXPECT_EQ(s.hits, 2);
    EXPECT_EQ(s.misses, 4);
    EXPECT_EQ(s.entries, 2u);
}

}  // namespace
}  // namespace tally::api
