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

}  // namespace
}  // namespace tally
