// The sales routes of `tally serve` (api/sales.h) through Service, against
// a SalesBackend held in memory: bodies, statuses, JSON and roles. The
// ledger's backend is tested end to end by tests/e2e/serve_sales_e2e.sh.
#include "api/sales.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>

#include "pricing/plan_yaml.h"
#include "test_plans.h"

namespace tally::api {
namespace {

using ledger::Role;

class FakeSales : public SalesBackend {
   public:
    PublishOutcome Publish(std::string_view yaml, std::string_view file_name) override {
        published_yaml = std::string(yaml);
        PublishOutcome out = publish;
        if (CountErrors(out.problems) == 0 && out.conflict.empty()) {
            UnitTable units;
            Diagnostics d;
            auto plan = ParsePlan(yaml, file_name, &units, &d);
            if (!plan) {
                out.problems = d;
            } else {
                out.plan = plan->name;
            }
        }
        return out;
    }
    void Audit(const std::string& actor, std::string_view role, const std::string& action, const std::string& target,
               const std::string& detail) override {
        audits.push_back(actor + "|" + std::string(role) + "|" + action + "|" + target + "|" + detail);
    }
    ingest::CatalogSnapshot Catalog() override {
        ingest::CatalogSnapshot s;
        s.catalog = testing::MustCatalog({testing::kDoubaoPlan, testing::kDeepseekPlan});
        auto sub = [](const char* customer, const char* plan, const char* from) {
            Subscription x;
            x.customer = customer;
            x.plan = plan;
            if (from[0] != '\0') x.from = testing::At(from);
            return x;
        };
        // c1 moved from doubao to deepseek; c2 on doubao; c3 only from 2999 on.
        s.subscriptions = {sub("c1", "doubao", "2025-01-01T00:00:00Z"), sub("c1", "deepseek", "2025-06-01T00:00:00Z"),
                           sub("c2", "doubao", ""), sub("c3", "doubao", "2999-01-01T00:00:00Z")};
        s.customers = {"c1", "c2", "c3"};
        return s;
    }
    quoting::QuoteStatus Quote(quoting::QuoteInput in, quoting::QuoteResult* result) override {
        quote_inputs.push_back(in);
        if (quote.ok()) {
            result->candidate_plan = "cand";
            billing::CustomerQuote q;
            q.customer = in.customer;
            q.period = in.period;
            q.errors = {"no usage"};
            q.no_usage = true;
            result->customers.push_back({q, {}, {}, {}, false, 7});
        }
        return quote;
    }

    PublishOutcome publish;
    std::string published_yaml;
    std::vector<std::string> audits;
    quoting::QuoteStatus quote;
    std::vector<quoting::QuoteInput> quote_inputs;
};

class FakeBackend : public Backend {
   public:
    std::optional<ledger::Principal> Authenticate(std::string_view secret) override {
        if (secret == "tly_c") return ledger::Principal{"kc", Role::kCustomer, "c1"};
        if (secret == "tly_f") return ledger::Principal{"kf", Role::kFinance, ""};
        if (secret == "tly_s") return ledger::Principal{"ks", Role::kSales, ""};
        if (secret == "tly_admin") return ledger::Principal{"kadm", Role::kAdmin, ""};
        return std::nullopt;
    }
    std::string NotReady() override { return ""; }
    UsageReport Usage(const UsageQuery&) override { return {}; }
    std::vector<billing::InvoiceDocument> Invoices(const InvoiceQuery&) override { return {}; }
    std::optional<billing::InvoiceDocument> Invoice(const std::string&) override { return std::nullopt; }
    std::string Pdf(const billing::InvoiceDocument&) override { return ""; }
    std::string Csv(const billing::InvoiceDocument&) override { return ""; }
    SalesBackend* Sales() override { return &sales; }
    FakeSales sales;
};

const char* const kBroken = R"(plan: broken
versions:
  - version: v1
    effective_from: 2025-01-01T00:00:00Z
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      m:
        bands:
          - up_to: 1000
            rates: {input: "1", output: "2"}
          - up_to: 500
            rates: {input: "x", output: "2"}
)";

class SalesTest : public ::testing::Test {
   protected:
    Response Call(const char* method, const std::string& target, const std::string& key, std::string body = "") {
        bodies_.push_back(std::move(body));
        targets_.push_back(target);
        Request r;
        r.method = method;
        r.target = targets_.back();
        r.authorization = key.empty() ? std::string_view() : (keys_.push_back("Bearer " + key), keys_.back());
        r.body = bodies_.back();
        std::string internal;
        Response out = service_.Handle(r, backend_, "r1", &internal);
        internal_ = internal;
        return out;
    }
    Service service_{ServiceOptions{1000, 1000}};
    FakeBackend backend_;
    std::deque<std::string> bodies_, targets_, keys_;
    std::string internal_;
};

std::string QuoteBody(const std::string& plan, const std::string& customer = "c1",
                      const std::string& period = "2025-11") {
    return "{\"plan\":" + billing::JsonQuote(plan) + ",\"customer\":" + billing::JsonQuote(customer) +
           ",\"period\":" + billing::JsonQuote(period) + "}";
}

TEST_F(SalesTest, RolesPerSalesRoute) {
    const std::string plan = testing::kDoubaoPlan;
    struct Case {
        const char* method;
        const char* target;
        std::string body;
        bool finance;
    };
    const std::vector<Case> cases = {{"POST", "/v1/plans:validate", plan, false},
                                     {"POST", "/v1/plans", plan, false},
                                     {"GET", "/v1/plans", "", true},
                                     {"GET", "/v1/plans/doubao", "", true},
                                     {"POST", "/v1/quotes", QuoteBody(plan), false}};
    for (const Case& c : cases) {
        SCOPED_TRACE(c.target);
        EXPECT_EQ(Call(c.method, c.target, "").status, 401);
        const Response customer = Call(c.method, c.target, "tly_c", c.body);
        EXPECT_EQ(customer.status, 403);
        EXPECT_EQ(customer.body, ErrorBody("forbidden", "a customer key may not use this route"));
        EXPECT_EQ(Call(c.method, c.target, "tly_f", c.body).status, c.finance ? 200 : 403);
        EXPECT_EQ(Call(c.method, c.target, "tly_s", c.body).status, 200) << internal_;
        EXPECT_EQ(Call(c.method, c.target, "tly_admin", c.body).status, 200);
    }
    // Neither a customer's nor finance's refused publish reached the ledger or the audit log.
    EXPECT_EQ(backend_.sales.audits.size(), 0u);  // the fake publishes nothing new
}

// HandleSales checks the route's roles itself too: a customer or finance
// key that reached it is refused before the backend is asked anything.
TEST_F(SalesTest, HandleSalesRefusesARoleTheRouteDoesNotAllow) {
    const Target target = ParseTarget("/v1/plans");
    const Matched publish = MatchRoute("POST", target);
    const Matched list = MatchRoute("GET", target);
    Request r;
    r.method = "POST";
    r.target = "/v1/plans";
    r.body = testing::kDoubaoPlan;
    for (const ledger::Principal& who :
         {ledger::Principal{"kc", Role::kCustomer, "c1"}, ledger::Principal{"kf", Role::kFinance, ""}}) {
        Response response;
        try {
            HandleSales(publish, target, who, r, backend_.sales, &response);
            ADD_FAILURE() << "no 403 for " << ledger::RoleName(who.role);
        } catch (const HttpError& e) {
            EXPECT_EQ(e.status, 403);
        }
    }
    EXPECT_TRUE(backend_.sales.published_yaml.empty());
    Response response;
    EXPECT_THROW(HandleSales(list, target, {"kc", Role::kCustomer, "c1"}, r, backend_.sales, &response), HttpError);
    HandleSales(list, target, {"kf", Role::kFinance, ""}, r, backend_.sales, &response);
    EXPECT_EQ(response.status, 200);
}

TEST_F(SalesTest, ValidateAnswersEveryProblemWithLineAndColumnAsTheCliPrintsThem) {
    const Response ok = Call("POST", "/v1/plans:validate", "tly_s", testing::kDoubaoPlan);
    ASSERT_EQ(ok.status, 200);
    EXPECT_EQ(ok.body.rfind("{\"ok\":true,\"plan\":\"doubao\",\"versions\":[{\"id\":\"2025-06\",", 0), 0u) << ok.body;
    EXPECT_NE(ok.body.find("\"problems\":[]"), std::string::npos);

    UnitTable units;
    Diagnostics expected;
    ASSERT_FALSE(ParsePlan(kBroken, "plan.yaml", &units, &expected).has_value());
    ASSERT_GE(expected.size(), 2u);
    const Response bad = Call("POST", "/v1/plans:validate", "tly_s", kBroken);
    ASSERT_EQ(bad.status, 200);
    EXPECT_EQ(bad.body.rfind("{\"ok\":false,\"plan\":null,\"versions\":[],\"problems\":[", 0), 0u) << bad.body;
    for (const Diagnostic& d : expected) {
        const std::string want = "{\"line\":" + std::to_string(d.line) + ",\"column\":" + std::to_string(d.column) +
                                 ",\"severity\":\"error\",\"message\":" + billing::JsonQuote(d.message) + "}";
        EXPECT_NE(bad.body.find(want), std::string::npos) << want << "\n" << bad.body;
    }
    EXPECT_EQ(bad.body, ValidationJson(kBroken));
}

// A version that extends a published version validates as the publish would
// parse it: against the published catalog (the file alone does not know it).
TEST_F(SalesTest, ValidateKnowsThePublishedVersionsAVersionMayExtend) {
    const std::string cut =
        "plan: doubao\nversions:\n  - version: \"2025-07\"\n    extends: \"2025-06\"\n"
        "    effective_from: 2025-07-01T00:00:00+08:00\n    changes:\n      - {multiplier: \"0.5\"}\n";
    const Response r = Call("POST", "/v1/plans:validate", "tly_s", cut);
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body.rfind("{\"ok\":true,\"plan\":\"doubao\"", 0), 0u) << r.body;
    EXPECT_EQ(ValidationJson(cut).rfind("{\"ok\":false", 0), 0u) << ValidationJson(cut);
}

TEST_F(SalesTest, ValidateSurvivesHostileBodies) {
    // Bad UTF-8 and NUL bytes: a 400 naming the rule.
    Response r = Call("POST", "/v1/plans:validate", "tly_s", std::string("plan: \xff\xfe\n"));
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("UTF-8"), std::string::npos);
    r = Call("POST", "/v1/plans:validate", "tly_s", std::string("plan: a\0b\n", 10));
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("NUL"), std::string::npos);
    // Each of these is problems (200) or a 400, never a crash, a 500 or a hang.
    std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char c = 'b'; c <= 'z'; ++c) {
        const std::string prev(1, static_cast<char>(c - 1));
        bomb += std::string(1, c) + ": &" + std::string(1, c) + " [*" + prev + ", *" + prev + ", *" + prev + ", *" +
                prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n";
    }
    std::string models_bomb = std::string(testing::kDoubaoPlan) + "\nextra: *z\n";
    std::string deep(100000, '[');
    const std::vector<std::string> hostile = {
        bomb,
        "plan: p\nversions: " + std::string("*nothing") + "\n",
        std::string(testing::kDoubaoPlan).replace(std::string(testing::kDoubaoPlan).find("\"0.80\""), 6,
                                                  "\"99999999999999999999999999999999999999999\""),
        std::string(testing::kDoubaoPlan).replace(std::string(testing::kDoubaoPlan).find("32000"), 5,
                                                  "999999999999999999999999999"),
        deep,
        "",
        "{",
        "plan: [1, 2]\n",
    };
    for (const std::string& body : hostile) {
        SCOPED_TRACE(body.substr(0, 60));
        const auto start = std::chrono::steady_clock::now();
        r = Call("POST", "/v1/plans:validate", "tly_s", body);
        EXPECT_TRUE(r.status == 200 || r.status == 400) << r.status << " " << internal_;
        if (r.status == 200) {
            EXPECT_EQ(r.body.rfind("{\"ok\":false", 0), 0u) << r.body.substr(0, 200);
        }
        EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    }
}

TEST_F(SalesTest, PublishAuditsWhatItPublishedAndRefusesWhatItMust) {
    FakeSales& sales = backend_.sales;
    sales.publish.published = {"2025-06"};
    Response r = Call("POST", "/v1/plans", "tly_s", testing::kDoubaoPlan);
    ASSERT_EQ(r.status, 200) << internal_;
    EXPECT_EQ(r.body, "{\"plan\":\"doubao\",\"published\":[\"2025-06\"],\"unchanged\":[],\"warnings\":[]}");
    EXPECT_EQ(sales.published_yaml, testing::kDoubaoPlan);
    ASSERT_EQ(sales.audits.size(), 1u);
    EXPECT_EQ(sales.audits[0], "key:ks|sales|plan.publish|doubao|{\"published\":[\"2025-06\"]}");

    // Unchanged: answered, not audited.
    sales.publish.published = {};
    sales.publish.unchanged = {"2025-06"};
    r = Call("POST", "/v1/plans", "tly_admin", testing::kDoubaoPlan);
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"plan\":\"doubao\",\"published\":[],\"unchanged\":[\"2025-06\"],\"warnings\":[]}");
    EXPECT_EQ(sales.audits.size(), 1u);

    // Warnings only: published, and the warnings are in the answer.
    sales.publish.unchanged = {};
    sales.publish.published = {"2025-07"};
    sales.publish.problems = {Diagnostic{"plan.yaml", 7, 5, "a window without a zone", Severity::kWarning}};
    r = Call("POST", "/v1/plans", "tly_s", testing::kDoubaoPlan);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body,
              "{\"plan\":\"doubao\",\"published\":[\"2025-07\"],\"unchanged\":[],\"warnings\":[{\"line\":7,"
              "\"column\":5,\"severity\":\"warning\",\"message\":\"a window without a zone\"}]}");
    EXPECT_EQ(sales.audits.size(), 2u);
    sales.publish.problems.clear();
    sales.publish.published = {};

    // Invalid: 400 with the same problems as validate.
    r = Call("POST", "/v1/plans", "tly_s", kBroken);
    ASSERT_EQ(r.status, 400);
    EXPECT_EQ(r.body.rfind("{\"error\":{\"code\":\"invalid_plan\"", 0), 0u) << r.body;
    const std::string validate = ValidationJson(kBroken);
    const std::string problems = validate.substr(validate.find("\"problems\":"));
    EXPECT_EQ(r.body.substr(r.body.find("\"problems\":")), problems);

    // A version already published with another body: 409 with the message.
    sales.publish.conflict = "plan doubao version 2025-06 is already published with different prices";
    r = Call("POST", "/v1/plans", "tly_s", testing::kDoubaoPlan);
    EXPECT_EQ(r.status, 409);
    EXPECT_EQ(r.body, ErrorBody("conflict", sales.publish.conflict));
    EXPECT_EQ(sales.audits.size(), 2u);

    EXPECT_EQ(Call("POST", "/v1/plans", "tly_s", "plan: \xc3\x28").status, 400);
}

TEST_F(SalesTest, PlansListVersionsAndCustomersSubscribedNow) {
    const Response r = Call("GET", "/v1/plans", "tly_f");
    ASSERT_EQ(r.status, 200) << internal_;
    // deepseek first (by name): c1 now; doubao: c2 (c3 starts in 2999).
    EXPECT_EQ(r.body.rfind("{\"plans\":[{\"plan\":\"deepseek\",", 0), 0u) << r.body;
    EXPECT_NE(r.body.find("\"plan\":\"deepseek\",\"name\":\"deepseek\",\"customers_subscribed\":1,\"versions\":[{\"id\""),
              std::string::npos)
        << r.body;
    EXPECT_NE(r.body.find("\"plan\":\"doubao\",\"name\":\"doubao\",\"customers_subscribed\":1,"), std::string::npos)
        << r.body;
    EXPECT_NE(r.body.find("{\"id\":\"2025-06\",\"effective_from\":\"2025-06-10T16:00:00Z\",\"effective_until\":null,"
                          "\"currency\":\"CNY\",\"zone\":\"Asia/Shanghai\",\"models\":"),
              std::string::npos)
        << r.body;
    EXPECT_EQ(SubscribedNow(backend_.sales.Catalog().subscriptions, testing::At("2025-03-01T00:00:00Z")),
              (std::map<std::string, int64_t>{{"doubao", 2}}));
}

TEST_F(SalesTest, PlanShowsEachVersionsPriceTable) {
    Response r = Call("GET", "/v1/plans/doubao", "tly_s");
    ASSERT_EQ(r.status, 200) << internal_;
    // Doubao 0-32K, no output condition, online: input 0.8 per million.
    EXPECT_NE(r.body.find("{\"model\":\"doubao-seed-1.6\",\"band\":\"0-32000\",\"output_condition\":\"\",\"window\":"
                          "\"\",\"batch\":false,\"thinking\":false,\"rates\":[{\"unit\":\"input\",\"rate\":\"0.8\","
                          "\"per\":1000000}"),
              std::string::npos)
        << r.body.substr(0, 2000);
    EXPECT_NE(r.body.find("\"output_condition\":\"output<=200\""), std::string::npos);
    r = Call("GET", "/v1/plans/deepseek?at=2025-10-01T00:00:00Z", "tly_s");
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("\"versions\":[{\"id\":\"v2\""), std::string::npos) << r.body.substr(0, 300);
    EXPECT_EQ(r.body.find("off-peak"), std::string::npos);
    r = Call("GET", "/v1/plans/deepseek?version=v1", "tly_s");
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("\"window\":\"off-peak\""), std::string::npos);
    EXPECT_EQ(r.body.find("\"v2\""), std::string::npos);
    EXPECT_EQ(Call("GET", "/v1/plans/deepseek?version=nope", "tly_s").status, 404);
    EXPECT_EQ(Call("GET", "/v1/plans/deepseek?at=2000-01-01T00:00:00Z", "tly_s").status, 404);
    EXPECT_EQ(Call("GET", "/v1/plans/nope", "tly_s").status, 404);
    EXPECT_EQ(Call("GET", "/v1/plans/deepseek?at=yesterday", "tly_s").status, 400);
    EXPECT_EQ(Call("GET", "/v1/plans/deepseek?at=2025-10-01T00:00:00Z&version=x", "tly_s").status, 400);
    EXPECT_EQ(Call("GET", "/v1/plans/deepseek?zone=UTC", "tly_s").status, 400);
}

TEST_F(SalesTest, QuotesAnswerTheCliJsonAndRefuseWhatTheyMust) {
    FakeSales& sales = backend_.sales;
    Response r = Call("POST", "/v1/quotes", "tly_s", QuoteBody(testing::kDoubaoPlan, "c2", "2025-10"));
    ASSERT_EQ(r.status, 200) << internal_;
    ASSERT_EQ(sales.quote_inputs.size(), 1u);
    EXPECT_EQ(sales.quote_inputs[0].customer, "c2");
    EXPECT_EQ(sales.quote_inputs[0].period, "2025-10");
    EXPECT_EQ(sales.quote_inputs[0].plan_text, testing::kDoubaoPlan);
    EXPECT_TRUE(sales.quote_inputs[0].known_customer_only);
    EXPECT_FALSE(sales.quote_inputs[0].all_customers);
    quoting::QuoteResult same;
    ASSERT_TRUE(sales.Quote(sales.quote_inputs[0], &same).ok());
    EXPECT_EQ(r.body, quoting::QuoteJson(same, "2025-10"));
    EXPECT_EQ(r.body.rfind("{\"period\":\"2025-10\",\"candidate_plan\":\"cand\",", 0), 0u) << r.body;

    EXPECT_EQ(Call("POST", "/v1/quotes", "tly_s", "{\"plan\":\"x\",\"customer\":\"c1\"}").status, 400);
    EXPECT_EQ(Call("POST", "/v1/quotes", "tly_s", QuoteBody("x", "c1", "2025-13")).status, 400);
    EXPECT_EQ(Call("POST", "/v1/quotes", "tly_s", QuoteBody("x", "", "2025-11")).status, 400);
    EXPECT_EQ(Call("POST", "/v1/quotes", "tly_s", "{\"plan\":1,\"customer\":\"c1\",\"period\":\"2025-11\"}").status,
              400);
    EXPECT_EQ(Call("POST", "/v1/quotes", "tly_s", "{\"plan\":\"x\",\"customer\":\"c1\",\"period\":\"2025-11\","
                                                  "\"all\":\"yes\"}").status,
              400);

    sales.quote = {quoting::QuoteFailure::kUnknownCustomer, "no customer 'zz'", {}};
    r = Call("POST", "/v1/quotes", "tly_s", QuoteBody(testing::kDoubaoPlan, "zz"));
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.body, ErrorBody("not_found", NotFound().what()));

    sales.quote = {quoting::QuoteFailure::kInvalidPlan, "x", {{"plan.yaml", 3, 7, "no good"}}};
    r = Call("POST", "/v1/quotes", "tly_s", QuoteBody(kBroken));
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("\"problems\":[{\"line\":3,\"column\":7,\"severity\":\"error\",\"message\":\"no good\"}]"),
              std::string::npos)
        << r.body;

    sales.quote = {quoting::QuoteFailure::kCurrency, "customer c1 is on plan doubao in CNY", {}};
    r = Call("POST", "/v1/quotes", "tly_s", QuoteBody(testing::kDoubaoPlan));
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, ErrorBody("bad_request", "customer c1 is on plan doubao in CNY"));

    sales.quote = {quoting::QuoteFailure::kFailed, "connection refused", {}};
    r = Call("POST", "/v1/quotes", "tly_s", QuoteBody(testing::kDoubaoPlan));
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.body.find("connection refused"), std::string::npos);
}

}  // namespace
}  // namespace tally::api
