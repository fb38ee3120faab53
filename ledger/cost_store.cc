#include "ledger/cost_store.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <pqxx/pqxx>

#include "base/assert.h"
#include "base/identifier.h"
#include "ledger/connect.h"
#include "ledger/copy_rows.h"
#include "ledger/migrations.h"

namespace tally::ledger {

namespace {

// PublishCostCard's transaction-scoped advisory lock ("tallyc").
constexpr int64_t kCostPublishLock = 0x74616c6c7963;

std::string YamlText(const YAML::Node& node) {
    YAML::Emitter out;
    out << node;
    return out.c_str();
}

// Rebuilds a cost card file from its stored version bodies.
std::string CardText(const std::string& card, const std::string& display_name,
                     const std::vector<std::string>& version_bodies) {
    YAML::Node root;
    root["cost_card"] = card;
    root["name"] = display_name;
    for (const auto& body : version_bodies) root["versions"].push_back(YAML::Load(body));
    return YamlText(root);
}

struct StoredCard {
    std::string display_name;                             // of its latest version
    std::vector<std::pair<Instant, std::string>> bodies;  // in the order they take effect
};

std::map<std::string, StoredCard> ReadCards(pqxx::work& tx) {
    std::map<std::string, StoredCard> out;
    for (const auto& row :
         tx.exec("SELECT card, card_name, body, to_char(effective_from AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM cost_card_versions ORDER BY card, effective_from")) {
        StoredCard& card = out[row[0].as<std::string>()];
        card.display_name = row[1].as<std::string>();
        auto from = ParseRfc3339(row[3].as<std::string>());
        TALLY_ASSERT(from.has_value());
        card.bodies.emplace_back(*from, row[2].as<std::string>());
    }
    return out;
}

std::vector<std::string> Bodies(const StoredCard& card) {
    std::vector<std::string> out;
    for (const auto& [from, body] : card.bodies) out.push_back(body);
    return out;
}

// Parses one stored card; throws LedgerError when it no longer validates.
CostCard ParseStored(const std::string& name, const StoredCard& stored) {
    Diagnostics d;
    auto card = ParseCostCard(CardText(name, stored.display_name, Bodies(stored)), "stored cost card " + name, &d,
                              TextOrigin::kStored);
    if (!card) {
        throw LedgerError("stored cost card " + name +
                          " no longer validates: " + (d.empty() ? std::string("?") : d.front().message));
    }
    return std::move(*card);
}

std::string Optional(const std::optional<Amount>& amount) {
    return amount ? amount->value().ToString() : std::string();
}

std::optional<Amount> ReadAmount(Currency currency, const pqxx::field& field) {
    if (field.is_null()) return std::nullopt;
    auto d = Decimal::Parse(field.as<std::string>());
    if (!d) throw LedgerError("margin_rows holds an amount tally cannot read: " + field.as<std::string>());
    return Amount(currency, *d);
}

}  // namespace

struct CostStore::Impl {
    explicit Impl(std::string url) : connection(std::move(url)) {}
    pqxx::connection& Conn() { return connection.Get(); }
    Reconnecting connection;
};

CostStore::CostStore(const std::string& database_url) : impl_(std::make_unique<Impl>(database_url)) {}
CostStore::~CostStore() = default;

std::optional<CostPublishResult> CostStore::PublishCostCard(std::string_view yaml, std::string_view file_name,
                                                            Diagnostics* diagnostics) {
    TALLY_ASSERT(diagnostics != nullptr);
    auto card = ParseCostCard(yaml, file_name, diagnostics);
    if (!card) return std::nullopt;
    pqxx::work tx(impl_->Conn());
    // One publisher at a time: the checks below read what the others store.
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kCostPublishLock);
    std::map<std::string, StoredCard> stored = ReadCards(tx);
    const YAML::Node versions = YAML::Load(std::string(yaml))["versions"];
    // The parser expands merge keys (`<<`); the bodies stored are the
    // versions as written, so the list must be written out at the top.
    if (!versions.IsSequence() || versions.size() != card->versions.size()) {
        diagnostics->push_back({std::string(file_name), 0, 0,
                                "write versions: as a list at the top of the file to publish it, not through a merge "
                                "key (<<)"});
        return std::nullopt;
    }
    StoredCard combined;
    if (auto it = stored.find(card->name); it != stored.end()) combined = it->second;
    combined.display_name = card->display_name;
    CostPublishResult result;
    result.card = card->name;
    std::vector<size_t> fresh;
    for (size_t i = 0; i < card->versions.size(); ++i) {
        const CostCardVersion& v = card->versions[i];
        const std::string body = YamlText(versions[i]);
        const pqxx::result existing = tx.exec_params(
            "SELECT body_sha256 = encode(sha256(convert_to($3, 'UTF8')), 'hex') FROM cost_card_versions "
            "WHERE card = $1 AND version = $2",
            card->name, v.id, body);
        if (!existing.empty()) {
            if (!existing[0][0].as<bool>()) {
                throw LedgerError("cost card " + card->name + " version " + v.id +
                                  " is already published with different costs; versions are immutable, so publish "
                                  "the change as a new version with a later effective_from");
            }
            result.unchanged.push_back(v.id);
            continue;
        }
        combined.bodies.emplace_back(v.effective_from, body);
        fresh.push_back(i);
    }
    std::stable_sort(combined.bodies.begin(), combined.bodies.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    // The card as LoadCostCards will rebuild it, beside every other stored card.
    Diagnostics whole;
    auto rebuilt =
        ParseCostCard(CardText(card->name, combined.display_name, Bodies(combined)), "cost card " + card->name, &whole,
                      TextOrigin::kStored);
    CostCatalog catalog;
    if (rebuilt) {
        for (const auto& [name, other] : stored) {
            if (name != card->name) catalog.Add(ParseStored(name, other), &whole);
        }
        catalog.Add(std::move(*rebuilt), &whole);
    }
    if (!whole.empty()) {
        for (auto& d : whole) {
            diagnostics->push_back({std::string(file_name), 0, 0,
                                    "cost card " + card->name + " with what is already published: " + d.message});
        }
        return std::nullopt;
    }
    for (size_t i : fresh) {
        const CostCardVersion& v = card->versions[i];
        tx.exec_params0(
            "INSERT INTO cost_card_versions (card, version, card_name, effective_from, body, body_sha256) "
            "VALUES ($1, $2, $3, $4, $5, encode(sha256(convert_to($5, 'UTF8')), 'hex'))",
            card->name, v.id, card->display_name, FormatRfc3339(v.effective_from), YamlText(versions[i]));
        result.published.push_back(v.id);
    }
    tx.commit();
    return result;
}

CostCatalog CostStore::LoadCostCards() {
    pqxx::work tx(impl_->Conn());
    const std::map<std::string, StoredCard> stored = ReadCards(tx);
    tx.commit();
    CostCatalog catalog;
    Diagnostics d;
    for (const auto& [name, card] : stored) {
        if (!catalog.Add(ParseStored(name, card), &d)) {
            throw LedgerError("stored cost cards conflict: " + (d.empty() ? std::string("?") : d.front().message));
        }
    }
    return catalog;
}

int64_t CostStore::WriteMarginReport(const std::string& period, const std::string& source,
                                     std::optional<int64_t> invoice_run_id,
                                     const std::vector<billing::MarginRow>& rows) {
    if (FindAsciiControl(period) != std::string_view::npos || FindAsciiControl(source) != std::string_view::npos) {
        throw LedgerError("a margin report's period and source are printable text, not '" + Printable(period) +
                          "' and '" + Printable(source) + "'");
    }
    pqxx::work tx(impl_->Conn());
    const std::string run = invoice_run_id ? std::to_string(*invoice_run_id) : std::string();
    const auto id = tx.exec_params1(
                          "INSERT INTO margin_reports (period, source, invoice_run_id) "
                          "VALUES ($1, $2, NULLIF($3, '')::bigint) RETURNING report_id",
                          period, source, run)[0]
                        .as<int64_t>();
    // COPY into a scratch table of text ('' for NULL), then one INSERT that
    // converts, so that the CHECKs of margin_rows see every row.
    tx.exec0(
        "CREATE TEMP TABLE margin_rows_in (customer_id text, plan text, model text, day text, currency text, "
        "revenue text, cost text, margin text, margin_pct text, negative text, calls bigint, error text, "
        "cost_unknown text, served_model text) ON COMMIT DROP");
    {
        CopyRows copy(tx, "margin_rows_in",
                      {"customer_id", "plan", "model", "day", "currency", "revenue", "cost", "margin", "margin_pct",
                       "negative", "calls", "error", "cost_unknown", "served_model"});
        for (const billing::MarginRow& row : rows) {
            const billing::MarginFigures& f = row.figures;
            copy.Text(row.customer)
                .Text(row.plan)
                .Text(row.model)
                .Text(row.day)
                .Text(f.currency.code())
                .Text(f.revenue.value().ToString())
                .Text(Optional(f.cost))
                .Text(Optional(f.margin))
                .Text(f.margin_percent ? f.margin_percent->ToString(2) : std::string())
                .Text(f.negative ? "t" : "f")
                .Int(f.calls)
                .Text(SafeText(f.error))
                .Text(SafeText(f.cost_unknown))
                .Text(row.served_model);
            copy.EndRow();
        }
        copy.Complete();
    }
    const pqxx::result inserted = tx.exec_params(
        "INSERT INTO margin_rows (report_id, customer_id, plan, model, day, currency, revenue, cost, margin, "
        "margin_pct, negative, calls, error, cost_unknown, served_model) "
        "SELECT $1, customer_id, plan, model, day::date, currency, revenue::numeric, NULLIF(cost, '')::numeric, "
        "NULLIF(margin, '')::numeric, NULLIF(margin_pct, '')::numeric, negative::boolean, calls, "
        "NULLIF(error, ''), NULLIF(cost_unknown, ''), served_model FROM margin_rows_in",
        id);
    TALLY_ASSERT(inserted.affected_rows() == rows.size());
    tx.commit();
    return id;
}

std::optional<StoredMarginReport> CostStore::LatestMarginReport(const std::string& period) {
    pqxx::work tx(impl_->Conn());
    const pqxx::result head = tx.exec_params(
        "SELECT report_id, period, source, invoice_run_id, "
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM margin_reports "
        "WHERE period = $1 ORDER BY report_id DESC LIMIT 1",
        period);
    if (head.empty()) return std::nullopt;
    StoredMarginReport report;
    report.report_id = head[0][0].as<int64_t>();
    report.period = head[0][1].as<std::string>();
    report.source = head[0][2].as<std::string>();
    if (!head[0][3].is_null()) report.invoice_run_id = head[0][3].as<int64_t>();
    report.created_at = head[0][4].as<std::string>();
    for (const auto& row : tx.exec_params(
             "SELECT customer_id, plan, model, to_char(day, 'YYYY-MM-DD'), currency, revenue::text, cost::text, "
             "margin::text, margin_pct::text, negative, calls, coalesce(error, ''), coalesce(cost_unknown, ''), "
             "served_model FROM margin_rows WHERE report_id = $1 "
             "ORDER BY customer_id, plan, model, served_model, day, currency",
             report.report_id)) {
        billing::MarginRow r;
        r.customer = row[0].as<std::string>();
        r.plan = row[1].as<std::string>();
        r.model = row[2].as<std::string>();
        r.day = row[3].as<std::string>();
        billing::MarginFigures& f = r.figures;
        auto currency = Currency::FromCode(row[4].as<std::string>());
        if (!currency) throw LedgerError("margin_rows holds an unknown currency " + row[4].as<std::string>());
        f.currency = *currency;
        f.revenue = *ReadAmount(f.currency, row[5]);
        f.cost = ReadAmount(f.currency, row[6]);
        f.margin = ReadAmount(f.currency, row[7]);
        if (!row[8].is_null()) {
            auto pct = Decimal::Parse(row[8].as<std::string>());
            if (!pct) throw LedgerError("margin_rows holds a percent tally cannot read: " + row[8].as<std::string>());
            f.margin_percent = *pct;
        }
        f.negative = row[9].as<bool>();
        f.calls = row[10].as<int64_t>();
        f.error = row[11].as<std::string>();
        f.cost_unknown = row[12].as<std::string>();
        r.served_model = row[13].as<std::string>();
        report.rows.push_back(std::move(r));
    }
    tx.commit();
    return report;
}

}  // namespace tally::ledger
