// Customer ids and plan names in subscriptions files: they become keys in
// the ledger, so they are checked where they enter (base/identifier.h).
#include "pricing/subscription.h"

#include <gtest/gtest.h>

#include "test_plans.h"

namespace tally {
namespace {

// Parses `text` under the Doubao plan; returns every diagnostic, one a line.
std::string Problems(const std::string& text, bool* parsed = nullptr) {
    Catalog catalog = testing::MustCatalog({testing::kDoubaoPlan});
    Diagnostics d;
    auto subs = ParseSubscriptions(text, "s.yaml", &catalog, &d);
    EXPECT_EQ(subs.has_value(), d.empty());
    if (parsed != nullptr) *parsed = subs.has_value();
    std::string all;
    for (const auto& x : d) all += x.ToString() + "\n";
    return all;
}

TEST(Subscriptions, RefuseACustomerIdWithANulInsteadOfCuttingItShort) {
    // YAML's "\u0000" in a double-quoted scalar is a NUL; libpq would end the
    // id there and update customer 'a'.
    std::string all = Problems(R"(subscriptions:
  - customer: "a\u0000evil"
    name: Mallory
    plan: doubao
)");
    EXPECT_EQ(all,
              "s.yaml:2:15: error: customer id 'a\\u0000evil' holds a control character (U+0000 at offset 1); "
              "identifiers are printable text\n");
}

// Read as plan files are: a customer given twice in one entry would keep
// only the second; a merge key copies shared terms.
TEST(Subscriptions, RefuseRepeatedKeysAndReadMergeKeys) {
    EXPECT_EQ(Problems("subscriptions:\n  - customer: a\n    customer: b\n    plan: doubao\n"),
              "s.yaml:3:5: error: key 'customer' is given twice in one mapping (first at 2:5); YAML keeps only one "
              "of them: say it once\n");
    Catalog catalog = testing::MustCatalog({testing::kDoubaoPlan});
    Diagnostics d;
    auto subs = ParseSubscriptions("subscriptions:\n  - &t {customer: a, plan: doubao}\n  - {<<: *t, customer: b}\n",
                                   "s.yaml", &catalog, &d);
    ASSERT_TRUE(subs.has_value()) << (d.empty() ? "" : d[0].ToString());
    ASSERT_EQ(subs->size(), 2u);
    EXPECT_EQ((*subs)[1].customer, "b");
    EXPECT_EQ((*subs)[1].plan, "doubao");
}

TEST(Subscriptions, RefuseAnEmptyCustomerId) {
    EXPECT_EQ(Problems("subscriptions:\n  - {customer: \"\", plan: doubao}\n"),
              "s.yaml:2:16: error: customer id is empty\n");
}

TEST(Subscriptions, RefuseControlCharactersLongIdsAndBadPlanNames) {
    std::string all = Problems(R"(subscriptions:
  - {customer: "tab\there", plan: doubao}
  - {customer: "c1\u0085", plan: doubao}
  - {customer: )" + std::string(257, 'x') +
                               R"(, plan: doubao}
  - {customer: b, plan: "doubao\u0000x"}
  - {customer: c, plan: ""}
)");
    EXPECT_NE(all.find("s.yaml:2:16: error: customer id 'tab\\u0009here' holds a control character"), std::string::npos)
        << all;
    EXPECT_NE(all.find("s.yaml:3:16: error: customer id 'c1\\u0085' holds a control character (U+0085"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("s.yaml:4:16: error: customer id '"), std::string::npos) << all;
    EXPECT_NE(all.find("is 257 bytes long, more than the 256"), std::string::npos) << all;
    EXPECT_NE(all.find("s.yaml:5:25: error: plan name 'doubao\\u0000x' holds a control character"), std::string::npos)
        << all;
    EXPECT_NE(all.find("s.yaml:6:25: error: plan name is empty"), std::string::npos) << all;
    EXPECT_EQ(all.find("no plan called"), std::string::npos) << all;  // one message per problem
    EXPECT_EQ(all.find('\0'), std::string::npos);
}

TEST(Subscriptions, AcceptUnicodeCustomerIds) {
    bool parsed = false;
    EXPECT_EQ(Problems("subscriptions:\n  - {customer: \"客户-华东\", plan: doubao}\n", &parsed), "");
    EXPECT_TRUE(parsed);
}

TEST(Subscriptions, RefuseACustomerNameWithAControlCharacter) {
    // libpq would store "Acme" only.
    EXPECT_EQ(Problems(R"(subscriptions:
  - customer: acme
    name: "Acme\u0000 Evil Corp"
    plan: doubao
)"),
              "s.yaml:3:11: error: customer name 'Acme\\u0000 Evil Corp' holds a control character (U+0000 at offset "
              "4); names are printable text\n");
    bool parsed = false;
    EXPECT_EQ(Problems("subscriptions:\n  - {customer: acme, name: \"Acme Corp 华东\", plan: doubao}\n", &parsed), "");
    EXPECT_TRUE(parsed);
}

TEST(Subscriptions, FromMustBeInsideTheEventTimeRange) {
    // -14:00 makes this year 10000, which RFC 3339 (and Load) cannot write.
    EXPECT_EQ(Problems(R"(subscriptions:
  - {customer: a, plan: doubao, from: "9999-12-31T23:00:00-14:00"}
  - {customer: b, plan: doubao, from: "1969-12-31T23:59:59Z"}
  - {customer: c, plan: doubao, from: "2199-12-31T23:59:59.999Z"}
  - {customer: d, plan: doubao, from: "1970-01-01T00:00:00Z"}
)"),
              "s.yaml:2:39: error: from '9999-12-31T23:00:00-14:00' is outside the event time range "
              "[1970-01-01T00:00:00Z, 2200-01-01T00:00:00Z)\n"
              "s.yaml:3:39: error: from '1969-12-31T23:59:59Z' is outside the event time range "
              "[1970-01-01T00:00:00Z, 2200-01-01T00:00:00Z)\n");
}

}  // namespace
}  // namespace tally
