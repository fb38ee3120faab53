// `tally key create|list|revoke` and `tally audit`: API keys for `tally
// serve` and the audit log, through the ledger's KeyStore (docs/api.md,
// "Keys and roles"). A secret is printed once, by create, and never again.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "app/commands.h"
#include "app/report.h"
#include "app/text_table.h"
#include "app/with_database.h"
#include "base/identifier.h"
#include "ledger/key_store.h"

namespace tally {

namespace {

std::string OrDash(const std::string& s) {
    return s.empty() ? "-" : SafeText(s);
}

std::string JsonOrNull(const std::string& s) {
    return s.empty() ? "null" : JsonString(s);
}

// "active", "revoked" or "expired", as Authenticate would answer now.
std::string KeyStatus(const ledger::KeyInfo& k, Instant now) {
    if (!k.revoked_at.empty()) return "revoked";
    if (!k.expires_at.empty()) {
        std::optional<Instant> expires = ParseRfc3339(k.expires_at);
        if (expires && *expires <= now) return "expired";
    }
    return "active";
}

Instant Now() {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

bool CheckFormat(const char* command, const std::string& format, std::ostream& err) {
    if (format == "table" || format == "json") return true;
    err << "tally " << command << ": --format must be table or json, not '" << format << "'\n";
    return false;
}

}  // namespace

std::string CliActor() {
    const char* user = std::getenv("USER");
    if (user == nullptr || *user == '\0') return "cli:unknown";
    std::string name(user);
    if (name.size() > 64) name.resize(64);
    return "cli:" + name;
}

int RunKeyCreate(const KeyOptions& o, std::ostream& out, std::ostream& err) {
    const std::optional<ledger::Role> role = ledger::RoleOf(o.role);
    if (!role) {
        err << "tally key create: --role must be customer, finance, sales or admin, not '" << o.role << "'\n";
        return kExitUsage;
    }
    if (*role == ledger::Role::kCustomer && o.customer.empty()) {
        err << "tally key create: a customer key needs --customer ID (the customer whose data it may read)\n";
        return kExitUsage;
    }
    if (*role != ledger::Role::kCustomer && !o.customer.empty()) {
        err << "tally key create: --customer is only for --role customer; a " << o.role
            << " key is not tied to a customer\n";
        return kExitUsage;
    }
    std::optional<Instant> expires;
    if (!o.expires.empty()) {
        expires = ParseRfc3339(o.expires);
        if (!expires) {
            err << "tally key create: --expires must be an RFC 3339 time like 2026-12-31T00:00:00Z, not '" << o.expires
                << "'\n";
            return kExitUsage;
        }
        if (*expires <= Now()) {
            err << "tally key create: --expires " << o.expires << " is in the past; a key must expire later\n";
            return kExitUsage;
        }
    }
    return WithDatabase("key create", o.database_url, err, [&](const std::string& url) {
        ledger::KeyStore store(url);
        const ledger::CreatedKey key = store.Create(*role, o.customer, expires, o.label, CliActor(), "operator");
        out << "Created API key " << key.info.key_id << " (role " << ledger::RoleName(key.info.role);
        if (!key.info.customer.empty()) out << ", customer " << SafeText(key.info.customer);
        if (!key.info.expires_at.empty()) out << ", expires " << key.info.expires_at;
        out << ").\n";
        out << "Its secret follows. It is shown only this once and cannot be shown again (only its SHA-256 is "
               "stored); keep it now:\n";
        out << key.secret << "\n";
        return kExitOk;
    });
}

int RunKeyList(const KeyOptions& o, std::ostream& out, std::ostream& err) {
    if (!CheckFormat("key list", o.format, err)) return kExitUsage;
    return WithDatabase("key list", o.database_url, err, [&](const std::string& url) {
        ledger::KeyStore store(url);
        const std::vector<ledger::KeyInfo> keys = store.List();
        const Instant now = Now();
        if (o.format == "json") {
            out << "{\"keys\":[";
            for (size_t i = 0; i < keys.size(); ++i) {
                const ledger::KeyInfo& k = keys[i];
                out << (i > 0 ? "," : "") << "{\"key_id\":" << JsonString(k.key_id)
                    << ",\"role\":" << JsonString(ledger::RoleName(k.role))
                    << ",\"customer\":" << JsonOrNull(k.customer) << ",\"label\":" << JsonString(k.label)
                    << ",\"status\":" << JsonString(KeyStatus(k, now)) << ",\"created_at\":" << JsonString(k.created_at)
                    << ",\"created_by\":" << JsonString(k.created_by) << ",\"expires_at\":" << JsonOrNull(k.expires_at)
                    << ",\"revoked_at\":" << JsonOrNull(k.revoked_at)
                    << ",\"last_used_at\":" << JsonOrNull(k.last_used_at) << "}";
            }
            out << "]}\n";
            return kExitOk;
        }
        if (keys.empty()) {
            out << "no API keys yet (tally key create)\n";
            return kExitOk;
        }
        std::vector<std::vector<std::string>> rows = {
            {"key", "role", "customer", "status", "label", "created", "by", "expires", "last used"}};
        for (const auto& k : keys) {
            rows.push_back({k.key_id, std::string(ledger::RoleName(k.role)), OrDash(k.customer), KeyStatus(k, now),
                            OrDash(k.label), k.created_at, SafeText(k.created_by), OrDash(k.expires_at),
                            OrDash(k.last_used_at)});
        }
        WriteTextTable(out, rows, {false, false, false, false, false, false, false, false, false});
        return kExitOk;
    });
}

int RunKeyRevoke(const KeyOptions& o, std::ostream& out, std::ostream& err) {
    return WithDatabase("key revoke", o.database_url, err, [&](const std::string& url) {
        ledger::KeyStore store(url);
        store.Revoke(o.key_id, CliActor(), "operator");
        out << "Revoked API key " << o.key_id << ": requests with it are refused from now on.\n";
        return kExitOk;
    });
}

int RunAudit(const KeyOptions& o, std::ostream& out, std::ostream& err) {
    if (!CheckFormat("audit", o.format, err)) return kExitUsage;
    if (o.limit < 1 || o.limit > 100000) {
        err << "tally audit: --limit must be between 1 and 100000, not " << o.limit << "\n";
        return kExitUsage;
    }
    return WithDatabase("audit", o.database_url, err, [&](const std::string& url) {
        ledger::KeyStore store(url);
        const std::vector<ledger::AuditEntry> entries = store.AuditLog(o.limit);
        if (o.format == "json") {
            out << "{\"audit\":[";
            for (size_t i = 0; i < entries.size(); ++i) {
                const ledger::AuditEntry& e = entries[i];
                // detail is a JSON object (the table's CHECK), written as it is.
                out << (i > 0 ? "," : "") << "{\"audit_id\":" << e.audit_id << ",\"at\":" << JsonString(e.at)
                    << ",\"actor\":" << JsonString(e.actor) << ",\"role\":" << JsonString(e.role)
                    << ",\"action\":" << JsonString(e.action) << ",\"target\":" << JsonString(e.target)
                    << ",\"detail\":" << e.detail << "}";
            }
            out << "]}\n";
            return kExitOk;
        }
        if (entries.empty()) {
            out << "the audit log is empty\n";
            return kExitOk;
        }
        std::vector<std::vector<std::string>> rows = {{"#", "at", "actor", "role", "action", "target", "detail"}};
        for (const auto& e : entries) {
            rows.push_back({std::to_string(e.audit_id), e.at, SafeText(e.actor), e.role, SafeText(e.action),
                            OrDash(e.target), SafeText(e.detail)});
        }
        WriteTextTable(out, rows, {true, false, false, false, false, false, false});
        return kExitOk;
    });
}

void AddKeyCommands(CLI::App& app, std::function<int()>* action) {
    auto o = std::make_shared<KeyOptions>();
    auto bind = [action](CLI::App* cmd, std::function<int()> run) { cmd->callback([action, run] { *action = run; }); };
    auto db = [o](CLI::App* cmd) {
        cmd->add_option("--database-url", o->database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    };

    auto* key_cmd = app.add_subcommand("key", "API keys for tally serve: create, list, revoke");
    key_cmd->require_subcommand(1);
    auto* create_cmd = key_cmd->add_subcommand("create", "Create a key and print its secret (shown only once)");
    create_cmd->add_option("--role", o->role, "customer, finance, sales or admin")->required();
    create_cmd->add_option("--customer", o->customer, "With --role customer: the customer whose data the key reads");
    create_cmd->add_option("--expires", o->expires, "Expiry, RFC 3339 (default: never)");
    create_cmd->add_option("--label", o->label, "What the key is for (shown by key list)");
    db(create_cmd);
    create_cmd->footer(R"(
Examples:
  tally key create --role customer --customer cust_42 --label "cust_42 dashboard"
  tally key create --role finance --expires 2026-12-31T00:00:00Z

The secret (tly_<key id>_<64 hex digits>) is printed once on its own line;
the ledger keeps only its SHA-256, so it cannot be shown again: revoke the
key and create another if it is lost. Every key creation is audited.)");
    bind(create_cmd, [o] { return RunKeyCreate(*o, std::cout, std::cerr); });

    auto* list_cmd = key_cmd->add_subcommand("list", "Every key with its role, customer and status (never a secret)");
    list_cmd->add_option("--format", o->format, "table (default) or json");
    db(list_cmd);
    bind(list_cmd, [o] { return RunKeyList(*o, std::cout, std::cerr); });

    auto* revoke_cmd = key_cmd->add_subcommand("revoke", "Refuse a key's requests from now on");
    revoke_cmd->add_option("key_id", o->key_id, "The key id (tally key list)")->required();
    db(revoke_cmd);
    bind(revoke_cmd, [o] { return RunKeyRevoke(*o, std::cout, std::cerr); });

    auto* audit_cmd = app.add_subcommand("audit", "The audit log: who did what when, newest first");
    audit_cmd->add_option("--limit", o->limit, "Rows to show (default 50)");
    audit_cmd->add_option("--format", o->format, "table (default) or json");
    db(audit_cmd);
    bind(audit_cmd, [o] { return RunAudit(*o, std::cout, std::cerr); });
}

}  // namespace tally
