#include "ledger/usage_reader.h"

#include <algorithm>
#include <climits>
#include <pqxx/pqxx>
#include <set>
#include <tuple>

#include "base/assert.h"
#include "ledger/connect.h"
#include "ledger/migrations.h"
#include "ledger/rollup_rows.h"

namespace tally::ledger {

struct UsageReader::Impl {
    explicit Impl(const std::string& url) : conn(url) {}
    Reconnecting conn;
};

UsageReader::UsageReader(const std::string& database_url) : impl_(std::make_unique<Impl>(database_url)) {}
UsageReader::~UsageReader() = default;

namespace {

constexpr const char* kOrder =
    " ORDER BY customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags, "
    "unit, project";

// The records a read of usage_rollups answers, in one read-only
// transaction; with lock_timeout_ms > 0 a lock not granted within it is
// UsageReader::Busy (SQLSTATE 55P03, lock_not_available).
template <typename... Args>
std::vector<RollupRecord> ReadRecords(pqxx::connection& conn, int64_t lock_timeout_ms, const std::string& sql,
                                      Args&&... args) {
    TALLY_ASSERT(lock_timeout_ms >= 0);
    std::vector<RollupRecord> out;
    try {
        pqxx::read_transaction tx(conn);
        if (lock_timeout_ms > 0) tx.exec("SET LOCAL lock_timeout = " + std::to_string(lock_timeout_ms));
        for (const auto& row : tx.exec_params(sql, std::forward<Args>(args)...)) out.push_back(RollupRecordOf(row));
        tx.commit();
    } catch (const pqxx::sql_error& e) {
        if (lock_timeout_ms > 0 && e.sqlstate() == "55P03") {
            throw UsageReader::Busy("usage_rollups: a lock was not granted within " + std::to_string(lock_timeout_ms) +
                                    " ms");
        }
        throw;
    }
    return out;
}

}  // namespace

std::vector<RollupRecord> UsageReader::PeriodRecords(const std::string& customer, int32_t period,
                                                     int64_t lock_timeout_ms) {
    return ReadRecords(impl_->conn.Get(), lock_timeout_ms,
                       "SELECT " + std::string(kRollupColumns) +
                           " FROM usage_rollups WHERE customer_id = $1 AND period = $2" + kOrder,
                       customer, period);
}

std::vector<RollupRecord> UsageReader::EarlierRecords(const std::string& customer, int32_t period,
                                                      int64_t lock_timeout_ms) {
    return ReadRecords(impl_->conn.Get(), lock_timeout_ms,
                       "SELECT " + std::string(kRollupColumns) +
                           " FROM usage_rollups WHERE customer_id = $1 AND period < $2" + kOrder,
                       customer, period);
}

std::vector<RollupRecord> UsageReader::RangeRecords(const std::string& customer, int32_t from_hour, int32_t to_hour,
                                                    int64_t lock_timeout_ms) {
    return ReadRecords(
        impl_->conn.Get(), lock_timeout_ms,
        "SELECT " + std::string(kRollupColumns) +
            " FROM usage_rollups WHERE customer_id = $1 AND hour < $3 AND period IN "
            "(SELECT DISTINCT period FROM usage_rollups WHERE customer_id = $1 AND hour >= $2 AND hour < $3)" + kOrder,
        customer, from_hour, to_hour);
}

namespace {

auto KeyOf(const RollupRecord& r) {
    return std::tie(r.customer, r.period, r.hour, r.plan, r.version, r.model, r.served_model, r.band, r.condition,
                    r.time_window, r.flags, r.unit, r.project);
}

int64_t SaturatingSum(int64_t a, int64_t b) {
    TALLY_ASSERT(a >= 0);
    TALLY_ASSERT(b >= 0);
    int64_t sum = 0;
    return __builtin_add_overflow(a, b, &sum) ? INT64_MAX : sum;
}

}  // namespace

void UsageReader::SortRecords(std::vector<RollupRecord>* records) {
    std::sort(records->begin(), records->end(),
              [](const RollupRecord& a, const RollupRecord& b) { return KeyOf(a) < KeyOf(b); });
}

std::vector<RollupRecord> UsageReader::Combine(const std::vector<RollupRecord>& folded,
                                               const std::vector<RollupRecord>& deltas) {
    std::vector<RollupRecord> out;
    out.reserve(folded.size() + deltas.size());
    size_t i = 0, j = 0;
    while (i < folded.size() || j < deltas.size()) {
        if (j == deltas.size() || (i < folded.size() && KeyOf(folded[i]) < KeyOf(deltas[j]))) {
            out.push_back(folded[i++]);
        } else if (i == folded.size() || KeyOf(deltas[j]) < KeyOf(folded[i])) {
            out.push_back(deltas[j++]);
        } else {
            out.push_back(folded[i]);
            out.back().quantity = SaturatingSum(folded[i].quantity, deltas[j].quantity);
            out.back().calls = SaturatingSum(folded[i].calls, deltas[j].calls);
            ++i;
            ++j;
        }
        TALLY_ASSERT(out.size() < 2 || KeyOf(out[out.size() - 2]) < KeyOf(out.back()));  // one per key, in order
    }
    return out;
}

UsageReader::PeriodParts UsageReader::ReadPeriodParts(const std::string& customer, int32_t period, bool with_folded,
                                                      int64_t lock_timeout_ms) {
    TALLY_ASSERT(lock_timeout_ms >= 0);
    // One statement: the counter and both parts at one snapshot (taken once
    // the fold's lock is granted, as for usage_rollups). The counter's row
    // comes once, with the records or alone (part NULL).
    const std::string sql =
        "SELECT d.*, c.counter FROM (SELECT counter FROM change_counters WHERE name = 'usage') c LEFT JOIN ("
        "SELECT " + std::string(kRollupColumns) + ", 1 AS part FROM rollups "
        "WHERE customer_id = $1 AND period = $2 AND $3 "
        "UNION ALL "
        "SELECT customer_id, period, hour, plan, version, model, band, condition, time_window, flags, unit, "
        "LEAST(sum(quantity), 9223372036854775807)::bigint, LEAST(sum(calls), 9223372036854775807)::bigint, "
        "served_model, project, 2 FROM rollup_deltas WHERE customer_id = $1 AND period = $2 "
        "GROUP BY customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, "
        "flags, unit, project) d ON true";
    PeriodParts out;
    out.with_folded = with_folded;
    bool counted = false;
    try {
        pqxx::read_transaction tx(impl_->conn.Get());
        if (lock_timeout_ms > 0) tx.exec("SET LOCAL lock_timeout = " + std::to_string(lock_timeout_ms));
        for (const auto& row : tx.exec_params(sql, customer, period, with_folded)) {
            const int64_t usage = row[16].as<int64_t>();
            TALLY_ASSERT(!counted || usage == out.usage);
            out.usage = usage;
            counted = true;
            if (row[15].is_null()) continue;  // no records
            const int part = row[15].as<int>();
            TALLY_ASSERT(part == 1 || part == 2);
            (part == 1 ? out.folded : out.deltas).push_back(RollupRecordOf(row));
        }
        tx.commit();
    } catch (const pqxx::sql_error& e) {
        if (lock_timeout_ms > 0 && e.sqlstate() == "55P03") {
            throw Busy("rollup_deltas: a lock was not granted within " + std::to_string(lock_timeout_ms) + " ms");
        }
        throw;
    }
    TALLY_ASSERT(counted);  // the counter's row is always there (sql/0009)
    SortRecords(&out.folded);
    SortRecords(&out.deltas);
    return out;
}

std::string UsageReader::CatalogVersion() {
    pqxx::read_transaction tx(impl_->conn.Get());
    const pqxx::row r = tx.exec1("SELECT counter FROM change_counters WHERE name = 'catalog'");
    tx.commit();
    return r[0].as<std::string>();
}

UsageReader::Marks UsageReader::ReadMarks(const std::string& customer, int32_t period_max) {
    pqxx::read_transaction tx(impl_->conn.Get());
    const pqxx::row r = tx.exec_params1(
        "SELECT (SELECT counter FROM change_counters WHERE name = 'catalog'), "
        "(SELECT counter FROM change_counters WHERE name = 'usage'), "
        "(SELECT COALESCE(sum(inserts), 0)::bigint FROM usage_marks WHERE customer_id = $1 AND period <= $2)",
        customer, period_max);
    tx.commit();
    Marks m;
    m.catalog = r[0].as<int64_t>();
    m.usage = r[1].as<int64_t>();
    m.deltas = r[2].as<int64_t>();
    TALLY_ASSERT(m.catalog >= 0);
    TALLY_ASSERT(m.deltas >= 0);
    return m;
}

std::string UsageReader::NotReady() {
    try {
        pqxx::read_transaction tx(impl_->conn.Get());
        std::set<int> applied;
        for (const auto& row : tx.exec("SELECT version FROM schema_migrations")) applied.insert(row[0].as<int>());
        tx.commit();
        std::set<int> known;
        for (const Migration& m : Migrations()) known.insert(m.version);
        if (applied != known) return "the database's migrations are not this tally's (run tally migrate)";
        return "";
    } catch (const std::exception&) {
        impl_->conn.Reset();
        return "the database does not answer";
    }
}

}  // namespace tally::ledger
