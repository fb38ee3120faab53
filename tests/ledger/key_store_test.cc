// API keys and the audit log against a real PostgreSQL (sql/0006): a
// created key authenticates and nothing else does (wrong, cut, altered,
// foreign, NUL-laden, huge or empty secrets), revoked and expired keys are
// refused, what the operator asks wrongly is a LedgerError that writes
// nothing, the stored row holds no secret, creations and revocations are
// audited, and the database itself refuses to edit the audit log or a key.
#include "ledger/key_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <pqxx/pqxx>
#include <regex>
#include <set>

#include "ledger/migrations.h"
#include "tests/ledger/ledger_db.h"

namespace tally::ledger {
namespace {

Instant Now() {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

class KeyStoreTest : public LedgerDb {
   protected:
    void SetUp() override {
        LedgerDb::SetUp();
        Migrate(url_);
        Exec("INSERT INTO customers (customer_id, name) VALUES ('cust_a', 'A'), ('cust_b', 'B')");
    }
    void Exec(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        tx.exec0(sql);
        tx.commit();
    }
    std::string Text(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        return tx.exec1(sql)[0].as<std::string>();
    }
    // The message of the error `sql` fails with, or "" when it succeeds.
    std::string Refusal(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        try {
            tx.exec0(sql);
            tx.commit();
        } catch (const pqxx::sql_error& e) {
            return e.what();
        }
        return "";
    }
    CreatedKey Create(KeyStore& store, Role role, const std::string& customer = "") {
        return store.Create(role, customer, std::nullopt, "", "cli:test", "operator");
    }
};

TEST_F(KeyStoreTest, ACreatedKeyAuthenticatesAsItsRoleAndCustomer) {
    KeyStore store(url_);
    const CreatedKey c = store.Create(Role::kCustomer, "cust_a", std::nullopt, "dashboard", "cli:test", "operator");
    EXPECT_TRUE(std::regex_match(c.secret, std::regex("tly_[0-9a-f]{12}_[0-9a-f]{64}"))) << c.secret;
    EXPECT_EQ(c.secret.substr(4, 12), c.info.key_id);
    EXPECT_EQ(c.info.role, Role::kCustomer);
    EXPECT_EQ(c.info.customer, "cust_a");
    EXPECT_EQ(c.info.label, "dashboard");
    EXPECT_EQ(c.info.created_by, "cli:test");
    EXPECT_FALSE(c.info.created_at.empty());
    EXPECT_TRUE(c.info.expires_at.empty());

    std::optional<Principal> p = store.Authenticate(c.secret);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->key_id, c.info.key_id);
    EXPECT_EQ(p->role, Role::kCustomer);
    EXPECT_EQ(p->customer, "cust_a");

    const CreatedKey f = Create(store, Role::kFinance);
    p = store.Authenticate(f.secret);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->role, Role::kFinance);
    EXPECT_EQ(p->customer, "");
    EXPECT_NE(f.info.key_id, c.info.key_id);
    EXPECT_NE(f.secret.substr(17), c.secret.substr(17));

    // Another store (another connection, as each server thread has) too.
    KeyStore other(url_);
    EXPECT_TRUE(other.Authenticate(c.secret).has_value());
}

TEST_F(KeyStoreTest, EveryOtherSecretIsRefusedWithoutThrowing) {
    KeyStore store(url_);
    const CreatedKey a = Create(store, Role::kAdmin);
    const CreatedKey b = Create(store, Role::kCustomer, "cust_b");
    ASSERT_TRUE(store.Authenticate(a.secret).has_value());
    const std::string random_a = a.secret.substr(17);
    std::vector<std::pair<std::string, std::string>> bad = {
        {"empty", ""},
        {"prefix only", "tly_"},
        {"truncated by one", a.secret.substr(0, a.secret.size() - 1)},
        {"truncated to the id", a.secret.substr(0, 17)},
        {"one byte longer", a.secret + "0"},
        {"another key's id with this key's random part", "tly_" + b.info.key_id + "_" + random_a},
        {"an unknown id with this key's random part", "tly_000000000000_" + random_a},
        {"uppercase", "tly_" + a.info.key_id + "_" + std::string(64, 'A')},
        {"a trailing newline", a.secret + "\n"},
        {"a leading space", " " + a.secret},
        {"Bearer prefix left on", "Bearer " + a.secret},
        {"4 MB of junk", std::string(4 << 20, 'x')},
        {"4 MB of secrets",
         [&] {
             std::string s;
             while (s.size() < (4u << 20)) s += a.secret;
             return s;
         }()},
        {"non-UTF-8", "tly_" + a.info.key_id + "_" + std::string(64, '\xff')},
    };
    // Each byte of the secret changed once, to a hex digit and to a NUL.
    for (size_t i = 0; i < a.secret.size(); ++i) {
        std::string changed = a.secret;
        changed[i] = changed[i] == '0' ? '1' : '0';
        bad.emplace_back("byte " + std::to_string(i) + " changed", changed);
        changed[i] = '\0';
        bad.emplace_back("byte " + std::to_string(i) + " NUL", changed);
    }
    std::string nul_inside = a.secret;
    nul_inside.insert(40, 1, '\0');
    bad.emplace_back("a NUL inserted", nul_inside);
    bad.emplace_back("a NUL appended", a.secret + std::string(1, '\0'));
    for (const auto& [what, secret] : bad) {
        std::optional<Principal> p;
        EXPECT_NO_THROW(p = store.Authenticate(secret)) << what;
        EXPECT_FALSE(p.has_value()) << what;
    }
    // Secrets of the right length made of one byte value, for each of the 256.
    for (int v = 0; v < 256; ++v) {
        EXPECT_FALSE(store.Authenticate(std::string(a.secret.size(), static_cast<char>(v))).has_value()) << v;
    }
    // The key still works after all that.
    EXPECT_TRUE(store.Authenticate(a.secret).has_value());
    EXPECT_TRUE(store.Authenticate(b.secret).has_value());
}

TEST_F(KeyStoreTest, RevokedAndExpiredKeysAreRefused) {
    KeyStore store(url_);
    const CreatedKey k = Create(store, Role::kSales);
    ASSERT_TRUE(store.Authenticate(k.secret).has_value());
    store.Revoke(k.info.key_id, "cli:test", "operator");
    EXPECT_FALSE(store.Authenticate(k.secret).has_value());
    EXPECT_THROW(store.Revoke(k.info.key_id, "cli:test", "operator"), LedgerError);
    EXPECT_THROW(store.Revoke("000000000000", "cli:test", "operator"), LedgerError);
    EXPECT_THROW(store.Revoke("not a key id", "cli:test", "operator"), LedgerError);
    const std::vector<KeyInfo> keys = store.List();
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_FALSE(keys[0].revoked_at.empty());

    // A key with an expiry in the future works until then.
    const CreatedKey later =
        store.Create(Role::kFinance, "", Now() + std::chrono::hours(1), "", "cli:test", "operator");
    EXPECT_FALSE(later.info.expires_at.empty());
    EXPECT_TRUE(store.Authenticate(later.secret).has_value());

    // Keys whose expiry has passed (written directly: Create refuses a past
    // expiry, and the database an edit of one), beside the same row unexpired.
    const std::string expired = "tly_0000000000aa_" + std::string(64, '1');
    const std::string current = "tly_0000000000bb_" + std::string(64, '2');
    Exec(
        "INSERT INTO api_keys (key_id, role, secret_sha256, created_at, created_by, expires_at) VALUES "
        "('0000000000aa', 'admin', sha256(convert_to('" +
        expired +
        "', 'UTF8')), now() - interval '2 days', 't', "
        "now() - interval '1 second'), "
        "('0000000000bb', 'admin', sha256(convert_to('" +
        current +
        "', 'UTF8')), now() - interval '2 days', 't', "
        "now() + interval '1 day')");
    EXPECT_FALSE(store.Authenticate(expired).has_value());
    EXPECT_TRUE(store.Authenticate(current).has_value());
}

TEST_F(KeyStoreTest, WhatTheOperatorAsksWronglyIsALedgerErrorAndWritesNothing) {
    KeyStore store(url_);
    auto create = [&](Role role, const std::string& customer, std::optional<Instant> expires) {
        return store.Create(role, customer, expires, "", "cli:test", "operator");
    };
    EXPECT_THROW(create(Role::kCustomer, "cust_nobody", std::nullopt), LedgerError);
    EXPECT_THROW(create(Role::kCustomer, "", std::nullopt), LedgerError);
    EXPECT_THROW(create(Role::kFinance, "cust_a", std::nullopt), LedgerError);
    EXPECT_THROW(create(Role::kAdmin, "cust_a", std::nullopt), LedgerError);
    EXPECT_THROW(create(Role::kFinance, "", Now() - std::chrono::minutes(1)), LedgerError);
    EXPECT_THROW(create(Role::kCustomer, std::string("cust_a\0x", 8), std::nullopt), LedgerError);
    EXPECT_THROW(store.Create(Role::kSales, "", std::nullopt, std::string(201, 'l'), "cli:test", "operator"),
                 LedgerError);
    EXPECT_THROW(store.Create(Role::kSales, "", std::nullopt, "\x1b[31mred", "cli:test", "operator"), LedgerError);
    EXPECT_THROW(store.Create(Role::kSales, "", std::nullopt, "\xff\xfe", "cli:test", "operator"), LedgerError);
    EXPECT_THROW(create(Role::kCustomer, "cust_a\n", std::nullopt), LedgerError);
    EXPECT_THROW(store.Create(Role::kSales, "", std::nullopt, "", "", "operator"), LedgerError);
    EXPECT_THROW(store.Create(Role::kSales, "", std::nullopt, "", "cli:test", "root"), LedgerError);
    EXPECT_EQ(Text("SELECT count(*) FROM api_keys"), "0");
    EXPECT_EQ(Text("SELECT count(*) FROM audit_log"), "0");
    // Free text in any script is fine.
    EXPECT_EQ(store.Create(Role::kSales, "", std::nullopt, "销售部 · Q4", "cli:test", "operator").info.label,
              "销售部 · Q4");
    // And the database refuses such rows itself.
    const std::string hash = "sha256('x')";
    EXPECT_NE(Refusal("INSERT INTO api_keys (key_id, role, secret_sha256, created_by) VALUES "
                      "('0000000000cc', 'customer', " +
                      hash + ", 't')"),
              "");
    EXPECT_NE(Refusal("INSERT INTO api_keys (key_id, role, customer_id, secret_sha256, created_by) VALUES "
                      "('0000000000cc', 'finance', 'cust_a', " +
                      hash + ", 't')"),
              "");
    EXPECT_NE(Refusal("INSERT INTO api_keys (key_id, role, customer_id, secret_sha256, created_by) VALUES "
                      "('0000000000cc', 'customer', 'cust_nobody', " +
                      hash + ", 't')"),
              "");
    EXPECT_NE(Refusal("INSERT INTO api_keys (key_id, role, secret_sha256, created_by) VALUES "
                      "('0000000000cc', 'root', " +
                      hash + ", 't')"),
              "");
    EXPECT_EQ(Refusal("INSERT INTO api_keys (key_id, role, secret_sha256, created_by) VALUES "
                      "('0000000000cc', 'admin', " +
                      hash + ", 't')"),
              "");
}

TEST_F(KeyStoreTest, TheStoredRowsHoldNoSecretOnlyItsHash) {
    KeyStore store(url_);
    const CreatedKey k =
        store.Create(Role::kCustomer, "cust_a", Now() + std::chrono::hours(24 * 30), "ops", "cli:test", "operator");
    ASSERT_TRUE(store.Authenticate(k.secret).has_value());  // also writes last_used_at
    store.Revoke(k.info.key_id, "cli:test", "operator");
    const std::string random = k.secret.substr(17);
    for (const char* sql :
         {"SELECT string_agg(t::text, '|') FROM api_keys t", "SELECT string_agg(t::text, '|') FROM audit_log t",
          "SELECT string_agg(encode(secret_sha256, 'escape'), '|') FROM api_keys"}) {
        const std::string rows = Text(sql);
        EXPECT_EQ(rows.find(k.secret), std::string::npos) << sql << ": " << rows;
        EXPECT_EQ(rows.find(random), std::string::npos) << sql << ": " << rows;
        EXPECT_EQ(rows.find(random.substr(0, 16)), std::string::npos) << sql << ": " << rows;
    }
    EXPECT_EQ(
        Text("SELECT count(*) FROM api_keys WHERE secret_sha256 = sha256(convert_to('" + k.secret + "', 'UTF8'))"),
        "1");
    // Listing shows no secret either.
    for (const KeyInfo& info : store.List()) {
        for (const std::string* field : {&info.key_id, &info.customer, &info.label, &info.created_by}) {
            EXPECT_EQ(field->find(random.substr(0, 16)), std::string::npos);
        }
    }
}

TEST_F(KeyStoreTest, CreateAndRevokeAreAudited) {
    KeyStore store(url_);
    const CreatedKey k = store.Create(Role::kCustomer, "cust_b", std::nullopt, "portal", "cli:alice", "operator");
    store.Revoke(k.info.key_id, "key:0123456789ab", "admin");
    const std::vector<AuditEntry> log = store.AuditLog(10);
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[0].action, "key.revoke");  // newest first
    EXPECT_EQ(log[0].actor, "key:0123456789ab");
    EXPECT_EQ(log[0].role, "admin");
    EXPECT_EQ(log[0].target, k.info.key_id);
    EXPECT_EQ(log[1].action, "key.create");
    EXPECT_EQ(log[1].actor, "cli:alice");
    EXPECT_EQ(log[1].role, "operator");
    EXPECT_EQ(log[1].target, k.info.key_id);
    EXPECT_NE(log[1].detail.find("\"role\": \"customer\""), std::string::npos) << log[1].detail;
    EXPECT_NE(log[1].detail.find("\"customer\": \"cust_b\""), std::string::npos) << log[1].detail;
    EXPECT_NE(log[1].detail.find("\"label\": \"portal\""), std::string::npos) << log[1].detail;
    EXPECT_GT(log[0].audit_id, log[1].audit_id);
    EXPECT_FALSE(log[0].at.empty());
    EXPECT_EQ(store.AuditLog(1).size(), 1u);
    EXPECT_THROW(store.AuditLog(0), LedgerError);

    // Other actions the server audits.
    store.Audit("key:0123456789ab", "finance", "invoice.finalize", "INV-2026-000001", R"({"period": "2026-10"})");
    EXPECT_EQ(store.AuditLog(1)[0].action, "invoice.finalize");
    EXPECT_EQ(store.AuditLog(1)[0].detail, R"({"period": "2026-10"})");
    for (const char* detail : {"[1]", "\"text\"", "null", "{", "not json", ""}) {
        EXPECT_THROW(store.Audit("key:0123456789ab", "finance", "x", "", detail), LedgerError) << detail;
    }
    EXPECT_THROW(store.Audit("key:0123456789ab", "nobody", "x", "", "{}"), LedgerError);
    EXPECT_THROW(store.Audit("key:0123456789ab", "finance", "", "", "{}"), LedgerError);
    EXPECT_EQ(store.AuditLog(100).size(), 3u);
}

TEST_F(KeyStoreTest, TheDatabaseRefusesToEditTheAuditLogOrAKey) {
    KeyStore store(url_);
    const CreatedKey k = Create(store, Role::kFinance);
    ASSERT_EQ(Text("SELECT count(*) FROM audit_log"), "1");
    for (const char* change : {"UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log",
                               "TRUNCATE audit_log", "TRUNCATE api_keys", "DELETE FROM api_keys",
                               "UPDATE api_keys SET role = 'admin'", "UPDATE api_keys SET secret_sha256 = sha256('x')",
                               "UPDATE api_keys SET expires_at = now() + interval '10 years'"}) {
        const std::string refusal = Refusal(change);
        EXPECT_NE(refusal.find("not allowed"), std::string::npos) << change << ": " << refusal;
    }
    EXPECT_EQ(Text("SELECT count(*) FROM audit_log WHERE actor = 'cli:test'"), "1");
    EXPECT_EQ(Text("SELECT role FROM api_keys"), "finance");
    // Revoking is allowed once; un-revoking is not.
    store.Revoke(k.info.key_id, "cli:test", "operator");
    EXPECT_NE(Refusal("UPDATE api_keys SET revoked_at = NULL").find("not allowed"), std::string::npos);
    EXPECT_NE(Refusal("UPDATE api_keys SET revoked_at = now() + interval '1 day'").find("not allowed"),
              std::string::npos);
    EXPECT_FALSE(store.Authenticate(k.secret).has_value());
}

TEST_F(KeyStoreTest, LastUsedIsWrittenAtMostOnceAMinute) {
    KeyStore store(url_);
    const CreatedKey k = Create(store, Role::kSales);
    EXPECT_EQ(Text("SELECT count(*) FROM api_keys WHERE last_used_at IS NULL"), "1");
    ASSERT_TRUE(store.Authenticate(k.secret).has_value());
    // xmin changes with every write of the row.
    const std::string first = Text("SELECT last_used_at::text || ' ' || xmin::text FROM api_keys");
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(store.Authenticate(k.secret).has_value());
    EXPECT_EQ(Text("SELECT last_used_at::text || ' ' || xmin::text FROM api_keys"), first);
    // A minute later it is written again.
    Exec("UPDATE api_keys SET last_used_at = last_used_at - interval '61 seconds'");
    ASSERT_TRUE(store.Authenticate(k.secret).has_value());
    EXPECT_EQ(Text("SELECT last_used_at > now() - interval '10 seconds' FROM api_keys"), "t");
    EXPECT_FALSE(store.List()[0].last_used_at.empty());
    // Failed attempts write nothing.
    Exec("UPDATE api_keys SET last_used_at = NULL");
    EXPECT_FALSE(store.Authenticate(k.secret.substr(0, 17) + std::string(64, '0')).has_value());
    EXPECT_EQ(Text("SELECT count(*) FROM api_keys WHERE last_used_at IS NULL"), "1");
}

TEST(Roles, NamesRoundTrip) {
    for (Role r : {Role::kCustomer, Role::kFinance, Role::kSales, Role::kAdmin}) {
        ASSERT_TRUE(RoleOf(RoleName(r)).has_value());
        EXPECT_EQ(*RoleOf(RoleName(r)), r);
    }
    EXPECT_FALSE(RoleOf("").has_value());
    EXPECT_FALSE(RoleOf("Admin").has_value());
    EXPECT_FALSE(RoleOf("operator").has_value());
    EXPECT_FALSE(RoleOf(std::string_view("admin\0", 6)).has_value());
}

}  // namespace
}  // namespace tally::ledger
