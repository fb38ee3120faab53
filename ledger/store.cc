#include "ledger/store.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <pqxx/pqxx>

#include "base/assert.h"
#include "base/identifier.h"
#include "ledger/connect.h"
#include "ledger/errors.h"
#include "ledger/rollup_rows.h"
#include "pricing/event.h"
#include "pricing/plan_yaml.h"

namespace tally::ledger {

namespace {

std::string YamlText(const YAML::Node& node) {
    YAML::Emitter out;
    out << node;
    return out.c_str();
}

// Rebuilds a plan file from its stored version bodies.
std::string PlanText(const std::string& plan, const std::string& display_name,
                     const std::vector<std::string>& version_bodies) {
    YAML::Node root;
    root["plan"] = plan;
    root["name"] = display_name;
    for (const auto& body : version_bodies) root["versions"].push_back(YAML::Load(body));
    return YamlText(root);
}

// PublishPlan's transaction-scoped advisory lock (any fixed key: "tally").
constexpr int64_t kPublishLock = 0x74616c6c79;

// The published plans as Load rebuilds them: per plan, its version bodies
// in the order they take effect, and its display name.
struct StoredPlans {
    std::map<std::string, std::vector<std::string>> bodies;  // plan -> version bodies in order
    std::map<std::string, std::string> names;
};

StoredPlans ReadPlans(pqxx::work& tx) {
    StoredPlans out;
    for (const auto& row : tx.exec("SELECT plan, body FROM plan_versions ORDER BY plan, effective_from")) {
        out.bodies[row[0].as<std::string>()].push_back(row[1].as<std::string>());
    }
    for (const auto& row : tx.exec("SELECT plan, name FROM plan_names")) {
        out.names[row[0].as<std::string>()] = row[1].as<std::string>();
    }
    return out;
}

// Parses every stored plan into `catalog` (one unit table for all), in the
// order of `stored`; throws LedgerError when one no longer validates.
void ParseStoredPlans(const StoredPlans& stored, Catalog* catalog) {
    for (const auto& [plan, versions] : stored.bodies) {
        Diagnostics d;
        auto name = stored.names.find(plan);
        const std::string text = PlanText(plan, name != stored.names.end() ? name->second : plan, versions);
        auto parsed = ParsePlan(text, "stored plan " + plan, &catalog->units, &d);
        if (!parsed) {
            throw LedgerError("stored plan " + plan +
                              " no longer validates: " + (d.empty() ? std::string("?") : d.front().message));
        }
        TALLY_ASSERT(parsed->versions.size() == versions.size());
        catalog->plans.push_back(std::move(*parsed));
    }
}

// A subscription's start as the ledger stores it: the instant Tally reads
// (milliseconds; PostgreSQL would keep microseconds that Load rounds away),
// inside the event time range (Load reads it back as RFC 3339, whose years
// have four digits). Throws LedgerError naming `what` ("--from").
std::string SubscriptionStart(std::string_view what, const std::string& text) {
    auto instant = ParseRfc3339(text);
    if (!instant) throw LedgerError(std::string(what) + " must be an RFC 3339 instant, not '" + text + "'");
    if (*instant < kEventTimeMin || *instant >= kEventTimeEnd) {
        throw LedgerError(std::string(what) + " '" + text + "' is outside the event time range [" +
                          FormatRfc3339(kEventTimeMin) + ", " + FormatRfc3339(kEventTimeEnd) + ")");
    }
    std::string stored = FormatRfc3339(*instant);
    TALLY_ASSERT(ParseRfc3339(stored) == instant);
    return stored;
}

// Subscriptions are append-only (sql/0002 refuses UPDATE and DELETE):
// inserts one, or finds the very same one stored from that instant (a
// command run twice); another plan or terms from that instant is refused.
void InsertSubscription(pqxx::work& tx, const std::string& customer_id, const std::string& valid_from,
                        const std::string& plan, const std::string& terms) {
    const pqxx::result inserted = tx.exec_params(
        "INSERT INTO subscriptions (customer_id, valid_from, plan, terms) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (customer_id, valid_from) DO NOTHING",
        customer_id, valid_from, plan, terms);
    if (inserted.affected_rows() == 1) return;
    const pqxx::row stored = tx.exec_params1(
        "SELECT plan, terms FROM subscriptions WHERE customer_id = $1 AND valid_from = $2", customer_id, valid_from);
    if (stored[0].as<std::string>() == plan && stored[1].as<std::string>() == terms) return;
    throw LedgerError("customer " + customer_id + " already has a subscription from " + valid_from + " (plan " +
                      stored[0].as<std::string>() +
                      "), with other terms; subscriptions are never changed: subscribe again from a later instant");
}

// Refuses a customer id or plan name that would not survive as a
// PostgreSQL text key (libpq ends a parameter at a NUL, so "a\0evil"
// would arrive as "a"), before any statement runs.
void CheckIdentifier(std::string_view what, std::string_view value) {
    if (auto error = IdentifierError(what, value)) throw LedgerError(*error);
}

// Refuses a customer's name with a C0 control character or DEL (libpq
// would cut it at a NUL); the same sentence as a subscriptions file gets.
void CheckName(std::string_view what, std::string_view value) {
    const size_t at = FindAsciiControl(value);
    if (at == std::string_view::npos) return;
    static constexpr char kHex[] = "0123456789ABCDEF";
    const auto b = static_cast<unsigned char>(value[at]);
    throw LedgerError(std::string(what) + " '" + Printable(value) + "' holds a control character (U+00" + kHex[b >> 4] +
                      kHex[b & 0xF] + " at offset " + std::to_string(at) + "); names are printable text");
}

}  // namespace

struct Store::Impl {
    explicit Impl(std::string url) : connection(std::move(url)) {}
    pqxx::connection& Conn() { return connection.Get(); }
    Reconnecting connection;
};

Store::Store(const std::string& database_url) : impl_(std::make_unique<Impl>(database_url)) {}
Store::~Store() = default;

std::optional<PublishResult> Store::PublishPlan(std::string_view yaml, std::string_view file_name,
                                                Diagnostics* diagnostics, bool dry_run) {
    TALLY_ASSERT(diagnostics != nullptr);
    pqxx::work tx(impl_->Conn());
    // One publisher at a time: the checks below read what the others store.
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kPublishLock);
    const StoredPlans stored = ReadPlans(tx);
    Catalog catalog;
    ParseStoredPlans(stored, &catalog);
    // Into the unit table of every stored plan, as Load will: refused with
    // file:line:column when the catalog's units would overflow.
    // A version may extend one already published (`extends`, docs/plan-format.md).
    auto plan = ParsePlan(yaml, file_name, &catalog.units, diagnostics, &catalog);
    if (!plan) return std::nullopt;
    YAML::Node root = YAML::Load(std::string(yaml));
    YAML::Node versions = root["versions"];
    // The parser expands merge keys (`<<`); the bodies stored are the
    // versions as written, so `versions` must be written out at the top.
    if (!versions.IsSequence() || versions.size() != plan->versions.size()) {
        diagnostics->push_back({std::string(file_name), 0, 0,
                                "write versions: as a list at the top of the file to publish it, not through a merge "
                                "key (<<)"});
        return std::nullopt;
    }
    // The plan as Load will rebuild it: the stored versions and the new
    // ones, in the order they take effect.
    std::vector<std::pair<Instant, std::string>> combined;
    if (const Plan* old = catalog.FindPlan(plan->name)) {
        const std::vector<std::string>& bodies = stored.bodies.at(plan->name);
        TALLY_ASSERT(bodies.size() == old->versions.size());
        for (size_t i = 0; i < bodies.size(); ++i) combined.emplace_back(old->versions[i].effective_from, bodies[i]);
    }
    PublishResult result;
    result.plan = plan->name;
    std::vector<size_t> fresh;  // indices of the versions to store
    for (size_t i = 0; i < plan->versions.size(); ++i) {
        const PlanVersion& v = plan->versions[i];
        const std::string body = YamlText(versions[i]);
        pqxx::result existing = tx.exec_params(
            "SELECT body_sha256 = encode(sha256(convert_to($3, 'UTF8')), 'hex') FROM plan_versions "
            "WHERE plan = $1 AND version = $2",
            plan->name, v.id, body);
        if (!existing.empty()) {
            if (!existing[0][0].as<bool>()) {
                throw LedgerError("plan " + plan->name + " version " + v.id +
                                  " is already published with different prices; versions are immutable, so publish "
                                  "the change as a new version with a later effective_from");
            }
            result.unchanged.push_back(v.id);
            continue;
        }
        combined.emplace_back(v.effective_from, body);
        fresh.push_back(i);
    }
    std::stable_sort(combined.begin(), combined.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> bodies;
    for (auto& [from, body] : combined) bodies.push_back(std::move(body));
    Diagnostics whole;
    UnitTable units = catalog.units;
    if (!ParsePlan(PlanText(plan->name, plan->display_name, bodies), "plan " + plan->name, &units, &whole)) {
        TALLY_ASSERT(!whole.empty());
        for (auto& d : whole) {
            diagnostics->push_back({std::string(file_name), 0, 0,
                                    "plan " + plan->name + " with the versions already published: " + d.message});
        }
        return std::nullopt;
    }
    if (dry_run) {
        // The transaction ends without a commit: nothing was written.
        for (size_t i : fresh) result.published.push_back(plan->versions[i].id);
        return result;
    }
    for (size_t i : fresh) {
        const PlanVersion& v = plan->versions[i];
        const std::string until = v.effective_until ? FormatRfc3339(*v.effective_until) : std::string();
        tx.exec_params0(
            "INSERT INTO plan_versions (plan, version, effective_from, effective_until, currency, body, body_sha256) "
            "VALUES ($1, $2, $3, NULLIF($4, '')::timestamptz, $5, $6, encode(sha256(convert_to($6, 'UTF8')), 'hex'))",
            plan->name, v.id, FormatRfc3339(v.effective_from), until, std::string(v.currency.code()),
            YamlText(versions[i]));
        result.published.push_back(v.id);
    }
    tx.exec_params0(
        "INSERT INTO plan_names (plan, name) VALUES ($1, $2) ON CONFLICT (plan) DO UPDATE SET name = EXCLUDED.name",
        plan->name, plan->display_name);
    tx.commit();
    return result;
}

void Store::AddCustomer(const std::string& customer_id, const std::string& name) {
    CheckIdentifier("customer id", customer_id);
    CheckName("customer name", name);
    pqxx::work tx(impl_->Conn());
    tx.exec_params0(
        "INSERT INTO customers (customer_id, name) VALUES ($1, $2) "
        "ON CONFLICT (customer_id) DO UPDATE SET name = EXCLUDED.name",
        customer_id, name);
    tx.commit();
}

void Store::Subscribe(const std::string& customer_id, const std::string& plan, const std::string& valid_from,
                      const std::string& terms_yaml) {
    CheckIdentifier("customer id", customer_id);
    CheckIdentifier("plan name", plan);
    const std::string from = SubscriptionStart("--from", valid_from);
    ingest::CatalogSnapshot current = LoadOnce();
    if (current.customers.count(customer_id) == 0) {
        throw LedgerError("no customer '" + customer_id + "'; add it first with: tally customer add " + customer_id);
    }
    if (current.catalog.PlanIndex(plan) < 0) {
        throw LedgerError("no published plan '" + plan + "'; publish it first with: tally plan publish FILE");
    }
    // Validate the terms as a subscription under the stored plans.
    YAML::Node sub;
    try {
        sub = terms_yaml.empty() ? YAML::Node(YAML::NodeType::Map) : YAML::Load(terms_yaml);
    } catch (const YAML::Exception& e) {
        throw LedgerError("the contract terms are not valid YAML: " + e.msg);
    }
    if (!sub.IsMap()) throw LedgerError("the contract terms must be a mapping (discounts:, coupons:, ...)");
    for (const char* reserved : {"customer", "plan", "name", "from"}) {
        if (sub[reserved]) throw LedgerError(std::string("the contract terms cannot set '") + reserved + "'");
    }
    sub["customer"] = customer_id;
    sub["plan"] = plan;
    YAML::Node doc;
    doc["subscriptions"].push_back(sub);
    Diagnostics d;
    if (!ParseSubscriptions(YamlText(doc), "terms", &current.catalog, &d)) {
        std::string all;
        for (const auto& x : d) all += "\n  " + x.message;
        throw LedgerError("the contract terms are not valid:" + all);
    }
    pqxx::work tx(impl_->Conn());
    InsertSubscription(tx, customer_id, from, plan, terms_yaml);
    tx.commit();
}

std::optional<size_t> Store::ImportSubscriptions(std::string_view yaml, std::string_view file_name,
                                                 const std::string& valid_from, Diagnostics* diagnostics) {
    const std::string default_from = SubscriptionStart("--from", valid_from);
    ingest::CatalogSnapshot current = LoadOnce();
    auto subs = ParseSubscriptions(yaml, file_name, &current.catalog, diagnostics);
    if (!subs) return std::nullopt;
    YAML::Node root = YAML::Load(std::string(yaml));
    YAML::Node list = root["subscriptions"];
    // The parser expands merge keys (`<<`); the terms stored are the
    // entries as written, so the list must be written out at the top.
    if (!list.IsSequence() || list.size() != subs->size()) {
        diagnostics->push_back({std::string(file_name), 0, 0,
                                "write subscriptions: as a list at the top of the file to import it, not through a "
                                "merge key (<<)"});
        return std::nullopt;
    }
    pqxx::work tx(impl_->Conn());
    for (size_t i = 0; i < subs->size(); ++i) {
        const Subscription& s = (*subs)[i];
        // ParseSubscriptions has refused these already; checked again at
        // the database's edge, which must never see a NUL.
        CheckIdentifier("customer id", s.customer);
        CheckIdentifier("plan name", s.plan);
        CheckName("customer name", s.customer_name);
        YAML::Node terms = YAML::Clone(list[i]);
        terms.remove("customer");
        terms.remove("name");
        terms.remove("plan");
        terms.remove("from");
        // A subscription's own `from` wins over --from.
        const std::string from = s.from ? SubscriptionStart("from", FormatRfc3339(*s.from)) : default_from;
        tx.exec_params0(
            "INSERT INTO customers (customer_id, name) VALUES ($1, $2) "
            "ON CONFLICT (customer_id) DO UPDATE SET name = EXCLUDED.name",
            s.customer, s.customer_name);
        InsertSubscription(tx, s.customer, from, s.plan, terms.size() == 0 ? std::string() : YamlText(terms));
    }
    tx.commit();
    return subs->size();
}

ingest::CatalogSnapshot Store::Load() {
    try {
        return LoadOnce();
    } catch (const std::exception& e) {
        ingest::SinkError error = Classify(e, "loading plans, customers and subscriptions");
        if (error.kind != ingest::SinkErrorKind::kFatal) impl_->connection.Reset();  // connect again next time
        throw error;
    }
}

ingest::CatalogSnapshot Store::LoadOnce() {
    ingest::CatalogSnapshot out;
    pqxx::work tx(impl_->Conn());
    ParseStoredPlans(ReadPlans(tx), &out.catalog);
    for (const auto& row : tx.exec("SELECT customer_id FROM customers")) out.customers.insert(row[0].as<std::string>());
    // Every subscription of every customer, each from its instant on, as
    // one subscriptions document.
    YAML::Node doc;
    doc["subscriptions"] = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& row :
         tx.exec("SELECT s.customer_id, c.name, s.plan, s.terms, "
                 "to_char(s.valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM subscriptions s "
                 "JOIN customers c USING (customer_id) ORDER BY s.customer_id, s.valid_from")) {
        YAML::Node sub =
            row[3].as<std::string>().empty() ? YAML::Node(YAML::NodeType::Map) : YAML::Load(row[3].as<std::string>());
        sub["customer"] = row[0].as<std::string>();
        // Names stored before control characters were refused are shown
        // escaped rather than failing every load.
        sub["name"] = SafeText(row[1].as<std::string>());
        sub["from"] = row[4].as<std::string>();
        sub["plan"] = row[2].as<std::string>();
        doc["subscriptions"].push_back(sub);
    }
    tx.commit();
    Diagnostics d;
    auto subs = ParseSubscriptions(YamlText(doc), "stored subscriptions", &out.catalog, &d, TextOrigin::kStored);
    if (!subs) {
        throw LedgerError("stored subscriptions do not validate: " +
                          (d.empty() ? std::string("?") : d.front().message));
    }
    out.subscriptions = std::move(*subs);
    return out;
}

std::vector<RollupRecord> Store::LoadRollups(const std::string& customer, int32_t period) {
    std::vector<RollupRecord> out;
    pqxx::work tx(impl_->Conn());
    for (const auto& row : tx.exec_params(
             "SELECT " + std::string(kRollupColumns) + " FROM usage_rollups "
             "WHERE ($1 = '' OR customer_id = $1) AND ($2 < 0 OR period = $2) "
             "ORDER BY customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, "
             "flags, unit, project",
             customer, period)) {
        out.push_back(RollupRecordOf(row));
    }
    tx.commit();
    return out;
}

}  // namespace tally::ledger
