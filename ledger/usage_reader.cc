#include "ledger/usage_reader.h"

#include <pqxx/pqxx>
#include <set>

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

}  // namespace

std::vector<RollupRecord> UsageReader::PeriodRecords(const std::string& customer, int32_t period) {
    std::vector<RollupRecord> out;
    pqxx::read_transaction tx(impl_->conn.Get());
    for (const auto& row : tx.exec_params("SELECT " + std::string(kRollupColumns) +
                                              " FROM usage_rollups WHERE customer_id = $1 AND period = $2" + kOrder,
                                          customer, period)) {
        out.push_back(RollupRecordOf(row));
    }
    tx.commit();
    return out;
}

std::vector<RollupRecord> UsageReader::EarlierRecords(const std::string& customer, int32_t period) {
    std::vector<RollupRecord> out;
    pqxx::read_transaction tx(impl_->conn.Get());
    for (const auto& row : tx.exec_params("SELECT " + std::string(kRollupColumns) +
                                              " FROM usage_rollups WHERE customer_id = $1 AND period < $2" + kOrder,
                                          customer, period)) {
        out.push_back(RollupRecordOf(row));
    }
    tx.commit();
    return out;
}

std::vector<RollupRecord> UsageReader::RangeRecords(const std::string& customer, int32_t from_hour, int32_t to_hour) {
    std::vector<RollupRecord> out;
    pqxx::read_transaction tx(impl_->conn.Get());
    for (const auto& row : tx.exec_params(
             "SELECT " + std::string(kRollupColumns) +
                 " FROM usage_rollups WHERE customer_id = $1 AND hour < $3 AND period IN "
                 "(SELECT DISTINCT period FROM usage_rollups WHERE customer_id = $1 AND hour >= $2 AND hour < $3)" +
                 kOrder,
             customer, from_hour, to_hour)) {
        out.push_back(RollupRecordOf(row));
    }
    tx.commit();
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
