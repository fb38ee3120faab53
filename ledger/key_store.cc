#include "ledger/key_store.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <chrono>
#include <pqxx/pqxx>
#include <stdexcept>

#include "base/assert.h"
#include "base/identifier.h"
#include "ledger/audit_rows.h"
#include "ledger/connect.h"
#include "ledger/migrations.h"

namespace tally::ledger {

namespace {

constexpr std::string_view kSecretPrefix = "tly_";
constexpr size_t kKeyIdBytes = 6;    // 12 hex digits
constexpr size_t kRandomBytes = 32;  // 64 hex digits
constexpr size_t kKeyIdLength = 2 * kKeyIdBytes;
constexpr size_t kRandomLength = 2 * kRandomBytes;
// "tly_" + key id + "_" + random part.
constexpr size_t kSecretLength = kSecretPrefix.size() + kKeyIdLength + 1 + kRandomLength;
constexpr size_t kLabelMax = 200;
constexpr int kAuditLimitMax = 100000;
static_assert(kSecretLength == 81);

std::string Hex(const unsigned char* bytes, size_t n) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out(2 * n, '0');
    for (size_t i = 0; i < n; ++i) {
        out[2 * i] = kDigits[bytes[i] >> 4];
        out[2 * i + 1] = kDigits[bytes[i] & 0xF];
    }
    return out;
}

std::string RandomHex(size_t n) {
    std::array<unsigned char, kRandomBytes> buf{};
    TALLY_ASSERT(n <= buf.size());
    if (RAND_bytes(buf.data(), static_cast<int>(n)) != 1) {
        throw std::runtime_error("the system's random number generator failed (OpenSSL RAND_bytes)");
    }
    std::string out = Hex(buf.data(), n);
    OPENSSL_cleanse(buf.data(), buf.size());
    return out;
}

// Lowercase hex of SHA-256 over the secret's bytes: 64 characters.
std::string Sha256Hex(std::string_view secret) {
    std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
    SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), digest.data());
    return Hex(digest.data(), digest.size());
}

bool IsLowerHex(std::string_view s) {
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

bool IsKeyId(std::string_view s) {
    return s.size() == kKeyIdLength && IsLowerHex(s);
}

// The key id of a well-formed secret, else "" (looked at byte by byte
// before anything else: any bytes may arrive here).
std::string_view KeyIdOf(std::string_view secret) {
    if (secret.size() != kSecretLength) return {};
    if (secret.substr(0, kSecretPrefix.size()) != kSecretPrefix) return {};
    const std::string_view id = secret.substr(kSecretPrefix.size(), kKeyIdLength);
    if (secret[kSecretPrefix.size() + kKeyIdLength] != '_') return {};
    const std::string_view random = secret.substr(kSecretPrefix.size() + kKeyIdLength + 1);
    if (!IsKeyId(id) || random.size() != kRandomLength || !IsLowerHex(random)) return {};
    return id;
}

// Timestamps cross the wire as integer milliseconds since the epoch, so
// their text is FormatRfc3339's whatever the session's settings.
std::string Ms(const std::string& column) {
    return "(extract(epoch FROM " + column + ") * 1000)::bigint";
}
std::string MsText(const pqxx::field& f) {
    if (f.is_null()) return "";
    return FormatRfc3339(Instant{std::chrono::milliseconds(f.as<int64_t>())});
}

// Text that becomes a column: an identifier (base/identifier.h: UTF-8,
// no control characters; a NUL would be cut off by libpq, and a customer id
// cut short could name another customer).
void CheckText(std::string_view what, const std::string& value) {
    if (std::optional<std::string> error = IdentifierError(what, value)) throw LedgerError(*error);
}

bool IsAuditRole(std::string_view role) {
    return RoleOf(role).has_value() || role == "operator";
}

void CheckActor(const std::string& actor, std::string_view actor_role) {
    CheckText("the actor", actor);
    if (!IsAuditRole(actor_role)) {
        throw LedgerError("unknown actor role '" + Printable(actor_role) +
                          "': customer, finance, sales, admin or operator");
    }
}

const std::string kKeyColumns = "key_id, role, COALESCE(customer_id, ''), label, " + Ms("created_at") + ", " +
                                Ms("expires_at") + ", " + Ms("revoked_at") + ", " + Ms("last_used_at") + ", created_by";

KeyInfo KeyOf(const pqxx::row& r) {
    KeyInfo k;
    k.key_id = r[0].as<std::string>();
    std::optional<Role> role = RoleOf(r[1].as<std::string>());
    TALLY_ASSERT(role.has_value());  // the table's CHECK
    k.role = *role;
    k.customer = r[2].as<std::string>();
    k.label = r[3].as<std::string>();
    k.created_at = MsText(r[4]);
    k.expires_at = MsText(r[5]);
    k.revoked_at = MsText(r[6]);
    k.last_used_at = MsText(r[7]);
    k.created_by = r[8].as<std::string>();
    return k;
}

}  // namespace

std::string_view RoleName(Role role) {
    switch (role) {
        case Role::kCustomer: return "customer";
        case Role::kFinance: return "finance";
        case Role::kSales: return "sales";
        case Role::kAdmin: return "admin";
    }
    TALLY_UNREACHABLE();
}

std::optional<Role> RoleOf(std::string_view name) {
    for (Role r : {Role::kCustomer, Role::kFinance, Role::kSales, Role::kAdmin}) {
        if (RoleName(r) == name) return r;
    }
    return std::nullopt;
}

struct KeyStore::Impl {
    explicit Impl(std::string url) : connection(std::move(url)) {}
    pqxx::connection& Conn() { return connection.Get(); }
    Reconnecting connection;
    // Compared against when a secret names no key, so that an unknown id
    // costs what a known one does.
    const std::string dummy_digest = Sha256Hex("tly_000000000000_" + std::string(kRandomLength, '0'));
};

KeyStore::KeyStore(const std::string& database_url) : impl_(std::make_unique<Impl>(database_url)) {}
KeyStore::~KeyStore() = default;

CreatedKey KeyStore::Create(Role role, const std::string& customer, std::optional<Instant> expires,
                            const std::string& label, const std::string& actor, std::string_view actor_role) {
    CheckActor(actor, actor_role);
    if (!customer.empty()) CheckText("the customer id", customer);
    if (!label.empty()) CheckText("the label", label);
    if (role == Role::kCustomer && customer.empty()) {
        throw LedgerError("a customer key needs the customer it belongs to");
    }
    if (role != Role::kCustomer && !customer.empty()) {
        throw LedgerError("a " + std::string(RoleName(role)) + " key belongs to no customer; give a customer (" +
                          customer + ") only with the role customer");
    }
    if (label.size() > kLabelMax) {
        throw LedgerError("a key's label is at most " + std::to_string(kLabelMax) + " bytes, not " +
                          std::to_string(label.size()));
    }
    const Instant now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    if (expires && *expires <= now) {
        throw LedgerError("the expiry " + FormatRfc3339(*expires) + " is not in the future (now " + FormatRfc3339(now) +
                          ")");
    }
    pqxx::work tx(impl_->Conn());
    if (role == Role::kCustomer && tx.exec_params("SELECT 1 FROM customers WHERE customer_id = $1", customer).empty()) {
        throw LedgerError("no customer '" + customer + "' in the ledger (tally customer add or import first)");
    }
    // "" stands for NULL in the parameters below (NULLIF).
    const std::string customer_param = role == Role::kCustomer ? customer : "";
    const std::string expires_param = expires ? FormatRfc3339(*expires) : "";
    CreatedKey created;
    // 48 random bits: a clash is rare, and a retry takes another id.
    for (int attempt = 0;; ++attempt) {
        TALLY_ASSERT(attempt < 16);
        const std::string key_id = RandomHex(kKeyIdBytes);
        std::string secret = std::string(kSecretPrefix) + key_id + "_" + RandomHex(kRandomBytes);
        TALLY_ASSERT(KeyIdOf(secret) == key_id);
        const pqxx::result inserted = tx.exec_params(
            "INSERT INTO api_keys (key_id, role, customer_id, secret_sha256, label, created_by, expires_at) "
            "VALUES ($1, $2, NULLIF($3, ''), decode($4, 'hex'), $5, $6, NULLIF($7, '')::timestamptz) ON CONFLICT "
            "(key_id) DO NOTHING "
            "RETURNING " +
                kKeyColumns,
            key_id, std::string(RoleName(role)), customer_param, Sha256Hex(secret), label, actor, expires_param);
        if (inserted.empty()) continue;
        created.info = KeyOf(inserted[0]);
        created.secret = std::move(secret);
        break;
    }
    const std::string detail =
        tx.exec_params1(
              "SELECT jsonb_strip_nulls(jsonb_build_object('role', $1::text, 'customer', NULLIF($2::text, ''), "
              "'label', NULLIF($3::text, ''), 'expires_at', NULLIF($4::text, '')))::text",
              std::string(RoleName(role)), customer_param, label, expires_param)[0]
            .as<std::string>();
    InsertAudit(tx, actor, actor_role, "key.create", created.info.key_id, detail);
    tx.commit();
    TALLY_ASSERT(created.secret.size() == kSecretLength);
    return created;
}

std::vector<KeyInfo> KeyStore::List() {
    pqxx::work tx(impl_->Conn());
    std::vector<KeyInfo> keys;
    for (const auto& row : tx.exec("SELECT " + kKeyColumns + " FROM api_keys ORDER BY created_at, key_id")) {
        keys.push_back(KeyOf(row));
    }
    return keys;
}

void KeyStore::Revoke(const std::string& key_id, const std::string& actor, std::string_view actor_role) {
    CheckActor(actor, actor_role);
    if (!IsKeyId(key_id))
        throw LedgerError("no API key '" + Printable(key_id) + "': a key id is 12 lowercase hex digits");
    pqxx::work tx(impl_->Conn());
    const pqxx::result found =
        tx.exec_params("SELECT " + Ms("revoked_at") + " FROM api_keys WHERE key_id = $1 FOR UPDATE", key_id);
    if (found.empty()) throw LedgerError("no API key '" + key_id + "' (tally key list shows them)");
    if (!found[0][0].is_null()) {
        throw LedgerError("API key " + key_id + " is already revoked (since " + MsText(found[0][0]) + ")");
    }
    tx.exec_params0("UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", key_id);
    InsertAudit(tx, actor, actor_role, "key.revoke", key_id, "{}");
    tx.commit();
}

std::optional<Principal> KeyStore::Authenticate(std::string_view secret) {
    const std::string_view key_id = KeyIdOf(secret);
    if (key_id.empty()) return std::nullopt;
    const std::string digest = Sha256Hex(secret);
    const std::string id(key_id);
    pqxx::nontransaction tx(impl_->Conn());
    const pqxx::result found = tx.exec_params(
        "SELECT role, COALESCE(customer_id, ''), encode(secret_sha256, 'hex'), "
        " revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()), "
        " last_used_at IS NULL OR last_used_at < now() - interval '1 minute' "
        "FROM api_keys WHERE key_id = $1",
        id);
    const std::string stored = found.empty() ? impl_->dummy_digest : found[0][2].as<std::string>();
    TALLY_ASSERT(stored.size() == digest.size());
    const bool same = CRYPTO_memcmp(stored.data(), digest.data(), digest.size()) == 0;
    if (found.empty() || !same || !found[0][3].as<bool>()) return std::nullopt;
    // Marked used at most once a minute: not a write per request.
    if (found[0][4].as<bool>()) {
        tx.exec_params0(
            "UPDATE api_keys SET last_used_at = now() WHERE key_id = $1 "
            "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            id);
    }
    std::optional<Role> role = RoleOf(found[0][0].as<std::string>());
    TALLY_ASSERT(role.has_value());
    Principal p;
    p.key_id = id;
    p.role = *role;
    p.customer = found[0][1].as<std::string>();
    TALLY_ASSERT((p.role == Role::kCustomer) == !p.customer.empty());
    return p;
}

void KeyStore::Audit(const std::string& actor, std::string_view role, const std::string& action,
                     const std::string& target, const std::string& detail_json) {
    CheckActor(actor, role);
    CheckText("the action", action);
    if (!target.empty()) CheckText("the target", target);
    if (detail_json.find('\0') != std::string::npos) throw LedgerError("the detail contains a NUL byte");
    pqxx::work tx(impl_->Conn());
    // Checked first, so a bad detail is the caller's error, not a database one.
    const pqxx::result kind = [&] {
        pqxx::subtransaction check(tx, "detail");
        try {
            pqxx::result r = check.exec_params("SELECT jsonb_typeof($1::jsonb)", detail_json);
            check.commit();
            return r;
        } catch (const pqxx::data_exception&) {
            return pqxx::result();
        }
    }();
    if (kind.empty() || kind[0][0].is_null() || kind[0][0].as<std::string>() != "object") {
        throw LedgerError("an audit row's detail must be a JSON object, not: " +
                          detail_json.substr(0, std::min<size_t>(detail_json.size(), 80)));
    }
    InsertAudit(tx, actor, role, action, target, detail_json);
    tx.commit();
}

std::vector<AuditEntry> KeyStore::AuditLog(int limit) {
    if (limit < 1 || limit > kAuditLimitMax) {
        throw LedgerError("an audit listing has 1 to " + std::to_string(kAuditLimitMax) + " rows, not " +
                          std::to_string(limit));
    }
    pqxx::work tx(impl_->Conn());
    std::vector<AuditEntry> entries;
    for (const auto& r : tx.exec_params("SELECT audit_id, " + Ms("at") +
                                            ", actor, role, action, target, detail::text FROM audit_log "
                                            "ORDER BY audit_id DESC LIMIT $1",
                                        limit)) {
        AuditEntry e;
        e.audit_id = r[0].as<int64_t>();
        e.at = MsText(r[1]);
        e.actor = r[2].as<std::string>();
        e.role = r[3].as<std::string>();
        e.action = r[4].as<std::string>();
        e.target = r[5].as<std::string>();
        e.detail = r[6].as<std::string>();
        entries.push_back(std::move(e));
    }
    return entries;
}

}  // namespace tally::ledger
