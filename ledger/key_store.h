// API keys and the audit log in PostgreSQL (sql/0006_api_keys.sql). A key
// has one role; a customer key belongs to one customer. Its secret
// ("tly_<key_id>_<random>") is shown once, when created, and stored only as
// a SHA-256; Authenticate compares hashes in constant time. Every change a
// key or an operator makes (publish, finalize, void, credit, key create and
// revoke) is a row of the append-only audit log.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pricing/time.h"

namespace tally::ledger {

enum class Role : uint8_t { kCustomer, kFinance, kSales, kAdmin };
std::string_view RoleName(Role role);                   // "customer", "finance", "sales", "admin"
std::optional<Role> RoleOf(std::string_view name);      // nullopt for anything else

// Who made a request.
struct Principal {
    std::string key_id;
    Role role = Role::kCustomer;
    std::string customer;  // the customer of a kCustomer key, else ""
};

struct KeyInfo {
    std::string key_id;
    Role role = Role::kCustomer;
    std::string customer;  // kCustomer keys only
    std::string label;
    // RFC 3339 UTC; "" when absent.
    std::string created_at, expires_at, revoked_at, last_used_at;
    std::string created_by;  // the actor that created it
};

struct CreatedKey {
    KeyInfo info;
    std::string secret;  // shown once; never stored, never logged
};

struct AuditEntry {
    int64_t audit_id = 0;
    std::string at;      // RFC 3339 UTC
    std::string actor;   // "key:<key_id>" or "cli:<user>"
    std::string role;    // the key's role, or "operator" for the CLI
    std::string action;  // "invoice.finalize", "key.create", ...
    std::string target;  // what it acted on ("INV-2026-000001", a key id, a plan)
    std::string detail;  // JSON object text
};

// Throws LedgerError for what the operator asked wrongly (unknown customer
// or key, a customer given with a non-customer role or missing with one, an
// expiry in the past) and libpqxx's exceptions for the database. One
// connection: one KeyStore per thread.
class KeyStore {
   public:
    explicit KeyStore(const std::string& database_url);
    ~KeyStore();
    KeyStore(const KeyStore&) = delete;
    KeyStore& operator=(const KeyStore&) = delete;

    // Creates a key and audits it (action "key.create") as `actor`.
    CreatedKey Create(Role role, const std::string& customer, std::optional<Instant> expires,
                      const std::string& label, const std::string& actor, std::string_view actor_role);
    std::vector<KeyInfo> List();
    // Revokes a key from now on and audits it ("key.revoke"); revoking a
    // revoked key is a LedgerError.
    void Revoke(const std::string& key_id, const std::string& actor, std::string_view actor_role);

    // The key's principal, or nullopt for a secret that is malformed,
    // unknown, revoked or expired (the caller answers 401 to all alike).
    // Never throws for any secret bytes; database errors do throw.
    std::optional<Principal> Authenticate(std::string_view secret);

    // Appends one audit row; `detail_json` must be a JSON object.
    void Audit(const std::string& actor, std::string_view role, const std::string& action,
               const std::string& target, const std::string& detail_json);
    // The newest `limit` rows, newest first.
    std::vector<AuditEntry> AuditLog(int limit);

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ledger
