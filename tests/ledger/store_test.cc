// Customer ids and plan names at the ledger's edge, against a real
// PostgreSQL: libpq ends a text parameter at a NUL, so an id with one must
// be refused before any statement runs, never cut short.
#include "ledger/store.h"

#include <gtest/gtest.h>

#include <functional>

#include <pqxx/pqxx>

#include "tests/ledger/ledger_db.h"

namespace tally::ledger {
namespace {

const char* const kPlan = R"(plan: p
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      m: {bands: [{up_to: 1000, rates: {input: "1", cached_input: {same_as: input}, output: "2"}}]}
)";

class StoreIds : public LedgerDb {
   protected:
    void SetUp() override {
        LedgerDb::SetUp();
        if (HasFatalFailure()) return;
        Migrate(url_);
        store_ = std::make_unique<Store>(url_);
        Diagnostics d;
        ASSERT_TRUE(store_->PublishPlan(kPlan, "p.yaml", &d).has_value()) << (d.empty() ? "" : d[0].ToString());
        store_->AddCustomer("a", "Alice");
        store_->Subscribe("a", "p", "2025-01-01T00:00:00Z", "");
    }
    void TearDown() override {
        store_.reset();
        LedgerDb::TearDown();
    }
    // Every customer and subscription, one a line.
    std::string Contents() {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        std::string out;
        for (const auto& row : tx.exec("SELECT customer_id, name FROM customers ORDER BY customer_id")) {
            out += "customer " + row[0].as<std::string>() + " " + row[1].as<std::string>() + "\n";
        }
        for (const auto& row : tx.exec("SELECT customer_id, plan, valid_from AT TIME ZONE 'UTC' FROM subscriptions "
                                       "ORDER BY customer_id, valid_from")) {
            out += "subscription " + row[0].as<std::string>() + " " + row[1].as<std::string>() + " " +
                   row[2].as<std::string>() + "\n";
        }
        return out;
    }
    std::unique_ptr<Store> store_;
};

const char* const kBefore = "customer a Alice\nsubscription a p 2025-01-01 00:00:00\n";

TEST_F(StoreIds, ImportOfACustomerIdWithANulIsRefusedAndCustomerAIsUnchanged) {
    ASSERT_EQ(Contents(), kBefore);
    Diagnostics d;
    auto n = store_->ImportSubscriptions(R"(subscriptions:
  - customer: "a\u0000evil"
    name: Mallory
    plan: p
)",
                                         "evil.yaml", "2025-06-01T00:00:00Z", &d);
    EXPECT_FALSE(n.has_value());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].ToString(),
              "evil.yaml:2:15: error: customer id 'a\\u0000evil' holds a control character (U+0000 at offset 1); "
              "identifiers are printable text");
    EXPECT_EQ(Contents(), kBefore);
}

TEST_F(StoreIds, ImportOfAnEmptyCustomerIdIsRefused) {
    Diagnostics d;
    EXPECT_FALSE(store_
                     ->ImportSubscriptions("subscriptions:\n  - {customer: \"\", plan: p}\n", "empty.yaml",
                                           "2025-06-01T00:00:00Z", &d)
                     .has_value());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].ToString(), "empty.yaml:2:16: error: customer id is empty");
    EXPECT_EQ(Contents(), kBefore);
}

// The list is read as written to store each entry's terms: one reached
// through a merge key is refused with a sentence, never an abort.
TEST_F(StoreIds, ImportThroughATopLevelMergeKeyIsRefused) {
    Diagnostics d;
    EXPECT_FALSE(store_
                     ->ImportSubscriptions("{<<: {subscriptions: [{customer: b, plan: p}]}}\n", "merged.yaml",
                                           "2025-06-01T00:00:00Z", &d)
                     .has_value());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].ToString(),
              "merged.yaml: error: write subscriptions: as a list at the top of the file to import it, not through a "
              "merge key (<<)");
    EXPECT_EQ(Contents(), kBefore);
    // A merge key inside an entry is fine: the entry's terms are kept as written.
    d.clear();
    ASSERT_EQ(store_->ImportSubscriptions("subscriptions:\n  - &t {customer: b, plan: p}\n  - {<<: *t, customer: c}\n",
                                          "entries.yaml", "2025-06-01T00:00:00Z", &d),
              std::optional<size_t>(2))
        << (d.empty() ? "" : d[0].ToString());
    const ingest::CatalogSnapshot loaded = store_->Load();
    EXPECT_EQ(loaded.subscriptions.size(), 3u);
}

// Terms stored before a key given twice was refused keep loading (the
// first wins, as it did then): the whole catalog depends on them.
TEST_F(StoreIds, StoredTermsWithAKeyGivenTwiceStillLoad) {
    {
        pqxx::connection c(url_);
        pqxx::work tx(c);
        tx.exec0("INSERT INTO subscriptions (customer_id, valid_from, plan, terms) VALUES ('a', "
                 "'2025-03-01T00:00:00Z', 'p', E'discounts: []\\ndiscounts: []\\n')");
        tx.commit();
    }
    const ingest::CatalogSnapshot loaded = store_->Load();
    EXPECT_EQ(loaded.subscriptions.size(), 2u);
}

TEST_F(StoreIds, AddCustomerAndSubscribeRefuseBadIdsWithALedgerError) {
    auto message = [](auto&& call) {
        try {
            call();
        } catch (const LedgerError& e) {
            return std::string(e.what());
        }
        return std::string("no LedgerError");
    };
    const std::string nul("a\0evil", 6);
    EXPECT_EQ(
        message([&] { store_->AddCustomer(nul, "Mallory"); }),
        "customer id 'a\\u0000evil' holds a control character (U+0000 at offset 1); identifiers are printable text");
    EXPECT_EQ(message([&] { store_->AddCustomer("", "Nobody"); }), "customer id is empty");
    EXPECT_NE(message([&] { store_->AddCustomer(std::string(257, 'x'), "Long"); }).find("257 bytes long"),
              std::string::npos);
    EXPECT_EQ(
        message([&] { store_->Subscribe(nul, "p", "2025-06-01T00:00:00Z", ""); }),
        "customer id 'a\\u0000evil' holds a control character (U+0000 at offset 1); identifiers are printable text");
    EXPECT_EQ(message([&] { store_->Subscribe("a", std::string("p\0x", 3), "2025-06-01T00:00:00Z", ""); }),
              "plan name 'p\\u0000x' holds a control character (U+0000 at offset 1); identifiers are printable text");
    EXPECT_EQ(Contents(), kBefore);
}

// Admin commands that used to exit 0 and leave a ledger Load refuses (and,
// versions and subscriptions being immutable, that only SQL could repair).
class StoreCatalog : public StoreIds {
   protected:
    // Load must still work after every refused command.
    void ExpectLoads() {
        try {
            ingest::CatalogSnapshot snapshot = store_->Load();
            EXPECT_EQ(snapshot.customers.count("a"), 1u);
        } catch (const std::exception& e) {
            ADD_FAILURE() << "Load failed: " << e.what();
        }
    }
    std::vector<std::string> Publish(const std::string& yaml, bool* published) {
        Diagnostics d;
        *published = store_->PublishPlan(yaml, "p.yaml", &d).has_value();
        std::vector<std::string> out;
        for (const auto& x : d) out.push_back(x.ToString());
        return out;
    }
    static std::string Message(const std::function<void()>& call) {
        try {
            call();
        } catch (const LedgerError& e) {
            return e.what();
        }
        return "no LedgerError";
    }
};

const char* const kV2 = R"(plan: p
versions:
  - version: v2
    effective_from: %FROM%
    currency: %CURRENCY%
    time_zone: Asia/Shanghai
    models:
      m: {bands: [{up_to: 1000, rates: {input: "1", cached_input: {same_as: input}, output: "3"}}]}
)";

std::string V2(const std::string& from, const std::string& currency) {
    std::string text = kV2;
    text.replace(text.find("%FROM%"), 6, from);
    text.replace(text.find("%CURRENCY%"), 10, currency);
    return text;
}

TEST_F(StoreCatalog, PublishValidatesThePlanWithItsPublishedVersions) {
    bool published = true;
    auto d = Publish(V2("2025-06-01T00:00:00Z", "USD"), &published);
    EXPECT_FALSE(published);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0],
              "p.yaml: error: plan p with the versions already published: version v2 changes the currency from CNY "
              "to USD; a plan keeps one currency (make a new plan instead)");
    d = Publish(V2("2025-01-01T00:00:00Z", "CNY"), &published);  // same instant as v1
    EXPECT_FALSE(published);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_NE(d[0].find("version v2 takes effect at 2025-01-01T00:00:00Z, not after version v1"), std::string::npos)
        << d[0];
    EXPECT_EQ(Contents(), kBefore);
    ExpectLoads();
    d = Publish(V2("2025-06-01T00:00:00Z", "CNY"), &published);
    EXPECT_TRUE(published);
    EXPECT_TRUE(d.empty());
    ExpectLoads();
}

// A file whose only version extends the published v1 (docs/plan-format.md,
// "Versions written as changes"): it resolves against the published plan
// when published, and Load rebuilds it from the stored bodies. hunyuan-pro's
// 2024 cut: input -70 %, so 1 -> 0.3; output stays 2.
TEST_F(StoreCatalog, PublishesAVersionThatExtendsAPublishedOneAndLoadResolvesIt) {
    const std::string v2 =
        "plan: p\nversions:\n  - version: v2\n    extends: v1\n    effective_from: 2025-06-01T00:00:00Z\n"
        "    changes:\n      - {multiplier: \"0.3\", units: [input]}\n";
    bool published = false;
    auto d = Publish(v2, &published);
    EXPECT_TRUE(published);
    EXPECT_TRUE(d.empty()) << d[0];
    ingest::CatalogSnapshot snapshot = store_->Load();
    const Plan* plan = snapshot.catalog.FindPlan("p");
    ASSERT_NE(plan, nullptr);
    ASSERT_EQ(plan->versions.size(), 2u);
    const PlanVersion& v = plan->versions[1];
    EXPECT_EQ(v.extends, "v1");
    EXPECT_EQ(v.currency.code(), "CNY");
    EXPECT_EQ(v.zone_name, "Asia/Shanghai");
    ASSERT_EQ(v.models.size(), 1u);
    EXPECT_EQ(v.models[0].bands[0].up_to, 1000);
    EXPECT_EQ(v.models[0].bands[0].rates[kUnitInput]->price().ToString(), "0.3");
    EXPECT_EQ(v.models[0].bands[0].rates[kUnitOutput]->price().ToString(), "2");
    // The same file again: nothing new. One that extends a version the plan
    // does not have: refused with its place.
    EXPECT_TRUE(Publish(v2, &published).empty());
    EXPECT_TRUE(published);
    std::string v3 = v2;
    v3.replace(v3.find("version: v2"), 11, "version: v3").replace(v3.find("extends: v1"), 11, "extends: v9");
    v3.replace(v3.find("2025-06-01"), 10, "2025-07-01");
    d = Publish(v3, &published);
    EXPECT_FALSE(published);
    // (model m prices no cache hits: a warning, tested on its own)
    std::erase_if(d, [](const std::string& x) { return x.find(": warning: ") != std::string::npos; });
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0],
              "p.yaml:4:14: error: version v3 extends 'v9', which is not a version listed before it nor a published "
              "version of plan p (known: v1, v2)");
    // The parser expands a merge key at the top, but the ledger stores the
    // versions as written: refused, not a crash.
    d = Publish("plan: q\n<<: {versions: [{version: v1, effective_from: 2025-01-01T00:00:00Z, currency: CNY, "
                "time_zone: UTC, models: {m: {rates: {input: \"1\", output: \"2\"}}}}]}\n",
                &published);
    EXPECT_FALSE(published);
    std::erase_if(d, [](const std::string& x) { return x.find(": warning: ") != std::string::npos; });
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0], "p.yaml: error: write versions: as a list at the top of the file to publish it, not through a "
                    "merge key (<<)");
    ExpectLoads();
}

TEST_F(StoreCatalog, PublishRefusesUnitsTheCatalogCannotHold) {
    // 7 token units + 5 here + 6 in q: each plan alone fits, together 18 > kMaxUnits (17).
    auto plan = [](const std::string& name, const std::string& prefix, int n) {
        std::string units, rates;
        for (int i = 0; i < n; ++i) {
            units += (i ? ", " : "") + prefix + std::to_string(i);
            rates += ", " + prefix + std::to_string(i) + ": \"1\"";
        }
        return "plan: " + name +
               "\nversions:\n  - version: v1\n    effective_from: 2025-01-01T00:00:00Z\n    currency: CNY\n"
               "    time_zone: UTC\n    custom_units: [" +
               units + "]\n    models:\n      m: {rates: {input: \"1\", cached_input: {same_as: input}, output: \"1\"" +
               rates + "}}\n";
    };
    bool published = false;
    EXPECT_TRUE(Publish(plan("p5", "a", 5), &published).empty());
    EXPECT_TRUE(published);
    auto d = Publish(plan("q6", "b", 6), &published);
    EXPECT_FALSE(published);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_NE(d[0].find("p.yaml:9:"), std::string::npos) << d[0];
    EXPECT_NE(d[0].find("too many different units across the plans"), std::string::npos) << d[0];
    ExpectLoads();
    // The units p5 already has are no new ones.
    EXPECT_TRUE(Publish(plan("q5", "a", 5), &published).empty());
    EXPECT_TRUE(published);
    ExpectLoads();
}

TEST_F(StoreCatalog, SubscribeStoresTheInstantTallyReads) {
    store_->AddCustomer("b", "Bob");
    store_->Subscribe("b", "p", "2025-01-01T00:00:00.0001Z", "");
    // The same millisecond: the same subscription again changes nothing ...
    store_->Subscribe("b", "p", "2025-01-01T00:00:00.0002Z", "");
    // ... and other terms from it are refused.
    EXPECT_NE(Message([&] {
                  store_->Subscribe("b", "p", "2025-01-01T00:00:00.0003Z", "discounts: []\n");
              }).find("customer b already has a subscription from 2025-01-01T00:00:00Z"),
              std::string::npos);
    EXPECT_EQ(Contents(),
              "customer a Alice\ncustomer b Bob\nsubscription a p 2025-01-01 00:00:00\n"
              "subscription b p 2025-01-01 00:00:00\n");
    ExpectLoads();
}

TEST_F(StoreCatalog, SubscribeAndImportRefuseAFromOutsideTheEventTimeRange) {
    EXPECT_EQ(Message([&] { store_->Subscribe("a", "p", "9999-12-31T23:00:00-14:00", ""); }),
              "--from '9999-12-31T23:00:00-14:00' is outside the event time range [1970-01-01T00:00:00Z, "
              "2200-01-01T00:00:00Z)");
    EXPECT_EQ(Message([&] {
                  Diagnostics d;
                  store_->ImportSubscriptions("subscriptions:\n  - {customer: a, plan: p}\n", "s.yaml",
                                              "1969-01-01T00:00:00Z", &d);
              }),
              "--from '1969-01-01T00:00:00Z' is outside the event time range [1970-01-01T00:00:00Z, "
              "2200-01-01T00:00:00Z)");
    Diagnostics d;
    EXPECT_FALSE(
        store_
            ->ImportSubscriptions("subscriptions:\n  - {customer: a, plan: p, from: \"9999-12-31T23:00:00-14:00\"}\n",
                                  "s.yaml", "2025-06-01T00:00:00Z", &d)
            .has_value());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].ToString(),
              "s.yaml:2:34: error: from '9999-12-31T23:00:00-14:00' is outside the event time range "
              "[1970-01-01T00:00:00Z, 2200-01-01T00:00:00Z)");
    EXPECT_EQ(Contents(), kBefore);
    ExpectLoads();
}

TEST_F(StoreCatalog, CustomerNamesWithControlCharactersAreRefused) {
    EXPECT_EQ(Message([&] { store_->AddCustomer("a", "Ali\tce"); }),
              "customer name 'Ali\\u0009ce' holds a control character (U+0009 at offset 3); names are printable text");
    Diagnostics d;
    EXPECT_FALSE(store_
                     ->ImportSubscriptions(R"(subscriptions:
  - customer: acme
    name: "Acme\u0000 Evil Corp"
    plan: p
)",
                                           "s.yaml", "2025-06-01T00:00:00Z", &d)
                     .has_value());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].ToString(),
              "s.yaml:3:11: error: customer name 'Acme\\u0000 Evil Corp' holds a control character (U+0000 at "
              "offset 4); names are printable text");
    EXPECT_EQ(Contents(), kBefore);
    ExpectLoads();
}

}  // namespace
}  // namespace tally::ledger
