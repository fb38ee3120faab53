// `tally rate` on the bundled example plans and events (deploy/), checked
// against amounts computed by hand from the published sheets
// (../shared/price-sheets.md). The arithmetic is in the comments.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <string>

namespace {

struct Result {
    int exit_code = -1;
    std::string out;
};

Result RunTally(const std::string& args) {
    std::string cmd = std::string(TALLY_BINARY) + " " + args + " 2>/dev/null";
    Result r;
    FILE* pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
    int status = pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::string S(simdjson::dom::element e) {
    return std::string(std::string_view(e));
}

std::string Path(const std::string& rel) {
    return std::string(TALLY_SOURCE_DIR) + "/" + rel;
}

std::string RateJson(const std::string& plan, const std::string& events, int expected_exit,
                     const std::string& extra = "") {
    Result r = RunTally("rate --format json --plan " + Path("deploy/plans/" + plan) + " --events " +
                        Path("deploy/events/" + events) + " " + extra);
    EXPECT_EQ(r.exit_code, expected_exit) << r.out;
    return r.out;
}

// One invoice as maps from a line's identity to its exact amount.
struct Parsed {
    std::string subtotal, tax, total, amount_due, period, currency, round_at, exact_subtotal;
    std::map<std::string, std::string> lines;  // "model unit band cond window batch thinking" -> amount
    std::map<std::string, std::string> hours;  // usage lines: the same key -> "first_hour last_hour"
    std::vector<int64_t> rejected_lines;
};

std::vector<Parsed> Parse(const std::string& json) {
    std::vector<Parsed> out;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    EXPECT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
    std::vector<int64_t> rejected;
    for (auto r : doc["rejected"].get_array()) rejected.push_back(int64_t(r["line"]));
    for (auto inv : doc["invoices"].get_array()) {
        Parsed p;
        p.subtotal = S(inv["subtotal"]);
        p.tax = S(inv["tax"]);
        p.total = S(inv["total"]);
        p.amount_due = S(inv["amount_due"]);
        p.period = S(inv["period"]);
        p.currency = S(inv["currency"]);
        p.round_at = S(inv["round_at"]);
        p.exact_subtotal = S(inv["exact_subtotal"]);
        for (auto l : inv["lines"].get_array()) {
            std::string kind = S(l["kind"]);
            std::string key;
            if (kind == "usage") {
                key = S(l["model"]) + " " + S(l["unit"]) + " " + S(l["band"]);
                std::string cond = S(l["output_condition"]);
                std::string window = S(l["window"]);
                if (!cond.empty()) key += " " + cond;
                if (!window.empty()) key += " " + window;
                if (bool(l["batch"])) key += " batch";
                if (bool(l["thinking"])) key += " thinking";
                std::string version = S(l["plan_version"]);
                key += " @" + version;
                p.hours[key] = S(l["first_hour"]) + " " + S(l["last_hour"]);
            } else {
                key = kind + " " + S(l["description"]);
            }
            p.lines[key] = S(l["amount"]);
        }
        p.rejected_lines = rejected;
        out.push_back(p);
    }
    return out;
}

TEST(RateExamples, DoubaoSeed16) {
    auto invoices = Parse(RateJson("doubao-seed-1.6.yaml", "doubao.jsonl", 3));
    ASSERT_EQ(invoices.size(), 2u);
    const Parsed& a = invoices[0];
    EXPECT_EQ(a.currency, "CNY");
    EXPECT_EQ(a.period, "2025-11");
    std::map<std::string, std::string> expected = {
        // line 1: 30500 prompt (12000 cache hits), 812 output > 200: band [0,32000], output 8.00
        {"doubao-seed-1.6 input 0-32000 @2025-06", "0.0148"},          // 18500 x 0.80 / 1M
        {"doubao-seed-1.6 cached_input 0-32000 @2025-06", "0.00192"},  // 12000 x 0.16 / 1M
        {"doubao-seed-1.6 output 0-32000 @2025-06", "0.006496"},       // 812 x 8.00 / 1M
        // lines 2 and 11: 32000 and 1000 prompt, 200 and 50 output <= 200: output 2.00
        {"doubao-seed-1.6 input 0-32000 output<=200 @2025-06", "0.0264"},                     // 33000 x 0.80 / 1M
        {"doubao-seed-1.6 output 0-32000 output<=200 @2025-06", "0.0005"},                    // 250 x 2.00 / 1M
        {"doubao-seed-1.6 cache_storage_token_hours 0-32000 output<=200 @2025-06", "0.017"},  // 1M x 0.017 / 1M
        // lines 3 and 4: 32001 prompt; 128000 prompt with 100000 cache hits: band (32000,128000]
        {"doubao-seed-1.6 input 32001-128000 @2025-06", "0.0720012"},     // (32001 + 28000) x 1.20 / 1M
        {"doubao-seed-1.6 cached_input 32001-128000 @2025-06", "0.016"},  // 100000 x 0.16 / 1M
        {"doubao-seed-1.6 output 32001-128000 @2025-06", "0.019216"},     // 1201 x 16.00 / 1M
        // line 5: batch, 200000 prompt: band (128000,256000], batch input 1.20, output 12.00
        {"doubao-seed-1.6 input 128001-256000 batch @2025-06", "0.24"},
        {"doubao-seed-1.6 output 128001-256000 batch @2025-06", "0.06"},
        // line 6: batch, 10000 prompt with 4000 hits, 100 output: 0.40, hits stay 0.16, output 1.00
        {"doubao-seed-1.6 input 0-32000 output<=200 batch @2025-06", "0.0024"},
        {"doubao-seed-1.6 cached_input 0-32000 output<=200 batch @2025-06", "0.00064"},
        {"doubao-seed-1.6 output 0-32000 output<=200 batch @2025-06", "0.0001"},
        // line 10: flash, 40000 prompt: 0.30 and 3.00
        {"doubao-seed-1.6-flash input 32001-128000 @2025-06", "0.012"},
        {"doubao-seed-1.6-flash output 32001-128000 @2025-06", "0.009"},
    };
    EXPECT_EQ(a.lines, expected);
    // Rounded half-even per line: .01+.00+.01+.03+.00+.02+.07+.02+.02+.24+.06+0+0+0+.01+.01
    EXPECT_EQ(a.subtotal, "0.50");
    EXPECT_EQ(a.total, "0.50");
    // 256001 prompt above the top band; a truncated line; cache hits above the prompt.
    EXPECT_EQ(a.rejected_lines, (std::vector<int64_t>{7, 8, 9}));
    // cust_volc_b, thinking model, 64000 prompt: 64000 x 1.20 + 2000 x 16.00 per 1M.
    EXPECT_EQ(invoices[1].lines.at("doubao-seed-1.6-thinking input 32001-128000 @2025-06"), "0.0768");
    EXPECT_EQ(invoices[1].lines.at("doubao-seed-1.6-thinking output 32001-128000 @2025-06"), "0.032");
    EXPECT_EQ(invoices[1].total, "0.11");
}

TEST(RateExamples, DeepseekOffPeakTableAndCutOver) {
    auto invoices = Parse(RateJson("deepseek.yaml", "deepseek.jsonl", 0));
    ASSERT_EQ(invoices.size(), 1u);
    const Parsed& d = invoices[0];
    EXPECT_EQ(d.currency, "USD");
    std::map<std::string, std::string> expected = {
        // 16:29:59 standard (800000 miss, 200000 hit, 100000 out) and 00:30:00 standard (1M miss)
        {"deepseek-chat input all @2025-02-off-peak", "0.486"},  // 1.8M x 0.27
        {"deepseek-chat cached_input all @2025-02-off-peak", "0.014"},
        {"deepseek-chat output all @2025-02-off-peak", "0.11"},
        // 16:30:00 and 00:29:59.999 are off-peak: the table's 0.135 / 0.550
        {"deepseek-chat input all off-peak @2025-02-off-peak", "0.405"},  // 3M x 0.135
        {"deepseek-chat output all off-peak @2025-02-off-peak", "0.055"},
        // reasoner 18:00 off-peak: 500000 miss, 500000 hit, 200000 out (reasoning included)
        {"deepseek-reasoner input all off-peak @2025-02-off-peak", "0.0675"},
        {"deepseek-reasoner cached_input all off-peak @2025-02-off-peak", "0.0175"},
        {"deepseek-reasoner output all off-peak @2025-02-off-peak", "0.11"},
        // reasoner 15:59:59 on the cut-over day: old standard list
        {"deepseek-reasoner input all @2025-02-off-peak", "0.55"},
        {"deepseek-reasoner output all @2025-02-off-peak", "2.19"},
        // from 16:00:00: V3.1 list, no night discount (20:00 is not off-peak any more)
        {"deepseek-chat input all @2025-09-v3.1", "0.56"},
        {"deepseek-chat output all @2025-09-v3.1", "0.84"},
        {"deepseek-reasoner input all @2025-09-v3.1", "0.504"},
        {"deepseek-reasoner cached_input all @2025-09-v3.1", "0.007"},
        {"deepseek-reasoner output all @2025-09-v3.1", "1.68"},
    };
    EXPECT_EQ(d.lines, expected);
    // round_at: invoice (the default): the exact sum 0.486 + 0.014 + 0.11 + 0.405 + 0.055 + 0.0675 + 0.0175 +
    // 0.11 + 0.55 + 2.19 + 0.56 + 0.84 + 0.504 + 0.007 + 1.68 = 7.596 rounds to 7.60, as the lines rounded
    // half-even do (0.405 -> 0.40, 0.055 -> 0.06, 0.0675 -> 0.07, 0.0175 -> 0.02): no rounding line.
    EXPECT_EQ(d.round_at, "invoice");
    EXPECT_EQ(d.exact_subtotal, "7.596");
    EXPECT_EQ(d.subtotal, "7.60");
    // The standard-price input line sums the calls of 16:29:59 on Sep 1 and 00:30:00 on Sep 2 (UTC).
    EXPECT_EQ(d.hours.at("deepseek-chat input all @2025-02-off-peak"), "2025-09-01T16:00:00Z 2025-09-02T00:00:00Z");
    EXPECT_EQ(d.hours.at("deepseek-chat input all @2025-09-v3.1"), "2025-09-20T20:00:00Z 2025-09-20T20:00:00Z");
    EXPECT_EQ(d.total, "7.60");
}

TEST(RateExamples, Gemini25ProAtAndAbove200K) {
    auto invoices = Parse(RateJson("gemini-2.5-pro.yaml", "gemini.jsonl", 0));
    ASSERT_EQ(invoices.size(), 2u);
    // 2025-11-01T06:30Z is still October in America/Los_Angeles.
    EXPECT_EQ(invoices[0].period, "2025-10");
    EXPECT_EQ(invoices[0].total, "0.03");  // flash 100000 x 0.30
    const Parsed& nov = invoices[1];
    std::map<std::string, std::string> expected = {
        {"gemini-2.5-pro input 0-200000 @2025-10", "0.1875"},                // 150000 x 1.25
        {"gemini-2.5-pro cached_input 0-200000 @2025-10", "0.00625"},        // 50000 x 0.125
        {"gemini-2.5-pro output 0-200000 @2025-10", "0.1"},                  // 10000 x 10
        {"gemini-2.5-pro input 200001+ @2025-10", "4.2500025"},              // (200001 + 1500000) x 2.50
        {"gemini-2.5-pro output 200001+ @2025-10", "0.15"},                  // 10000 x 15
        {"gemini-2.5-pro input 0-200000 batch @2025-10", "0.05"},            // 80000 x 0.625
        {"gemini-2.5-pro cached_input 0-200000 batch @2025-10", "0.00125"},  // 20000 x 0.0625
        {"gemini-2.5-pro output 0-200000 batch @2025-10", "0.02"},           // 4000 x 5
        // 1000000 x 0.30, and g-0007's 100000 x 0.30: a call asking for
        // flash that the Model Router sent to pro bills at flash's price.
        {"gemini-2.5-flash input all @2025-10", "0.33"},
        {"gemini-2.5-flash output all @2025-10", "2.5"},
    };
    EXPECT_EQ(nov.lines, expected);
    EXPECT_EQ(nov.total, "7.60");
}

TEST(RateExamples, QwenPlusBandsThinkingBatchAndTax) {
    auto invoices = Parse(RateJson("qwen-plus.yaml", "qwen.jsonl", 3));
    ASSERT_EQ(invoices.size(), 1u);
    const Parsed& q = invoices[0];
    std::map<std::string, std::string> expected = {
        {"qwen-plus input 0-128000 @2025-07", "0.1024"},                   // 128000 x 0.8
        {"qwen-plus output 0-128000 @2025-07", "0.004"},                   // 2000 x 2
        {"qwen-plus input 128001-256000 thinking @2025-07", "0.3072024"},  // 128001 x 2.4
        {"qwen-plus output 128001-256000 thinking @2025-07", "0.072"},     // 3000 x 24
        {"qwen-plus input 0-128000 thinking @2025-07", "0.024"},           // 30000 x 0.8
        {"qwen-plus cached_input 0-128000 thinking @2025-07", "0.0032"},   // 20000 x 0.16
        {"qwen-plus output 0-128000 thinking @2025-07", "0.008"},          // 1000 x 8
        // batch never combines with cache: all 100000 prompt tokens at 0.4
        {"qwen-plus input 0-128000 batch @2025-07", "0.04"},
        {"qwen-plus output 0-128000 batch @2025-07", "0.005"},  // 5000 x 1
        {"qwen-flash input 256001-1000000 @2025-07", "0.36"},   // 300000 x 1.2
        {"qwen-flash output 256001-1000000 @2025-07", "0.12"},  // 10000 x 12
        // round_at: invoice (the default). Exact sum 0.1024 + 0.004 + 0.3072024 + 0.072 + 0.024 + 0.0032 +
        // 0.008 + 0.04 + 0.005 + 0.36 + 0.12 = 1.0458024 -> 1.05; the lines rounded half-even add up to
        // 0.10 + 0.00 + 0.31 + 0.07 + 0.02 + 0.00 + 0.01 + 0.04 + 0.00 + 0.36 + 0.12 = 1.03.
        {"rounding rounding to the invoice's exact sum", "0.02"},  // 1.05 - 1.03
    };
    EXPECT_EQ(q.lines, expected);
    EXPECT_EQ(q.exact_subtotal, "1.0458024");
    EXPECT_EQ(q.subtotal, "1.05");
    EXPECT_EQ(q.tax, "0.06");  // 6 % of 1.05 = 0.063
    EXPECT_EQ(q.total, "1.11");
    EXPECT_EQ(q.rejected_lines, (std::vector<int64_t>{5, 7}));
}

TEST(RateExamples, ContractTermsFromTheExampleSubscriptions) {
    Result r = RunTally("rate --format json --plan " + Path("deploy/plans/doubao-seed-1.6.yaml") + " --plan " +
                        Path("deploy/plans/deepseek.yaml") + " --plan " + Path("deploy/plans/gemini-2.5-pro.yaml") +
                        " --plan " + Path("deploy/plans/qwen-plus.yaml") + " --subscriptions " +
                        Path("deploy/subscriptions.yaml") + " --events " + Path("deploy/events/deepseek.jsonl") +
                        " --customer cust_ds");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto invoices = Parse(r.out);
    ASSERT_EQ(invoices.size(), 1u);
    // 7.596 exact; contract 10 % -> -0.7596; coupon 20 % of 6.8364 capped at 1.00; grant 5.00.
    EXPECT_EQ(invoices[0].lines.at("discount enterprise contract (10%)"), "-0.7596");
    EXPECT_EQ(invoices[0].lines.at("coupon coupon LAUNCH20 (20%)"), "-1");
    EXPECT_EQ(invoices[0].subtotal, "5.84");  // 7.60 - 0.76 - 1.00
    EXPECT_EQ(invoices[0].total, "5.84");
    EXPECT_EQ(invoices[0].amount_due, "0.84");
}

TEST(RateExamples, ExplicitPeriodKeepsOnlyItsEvents) {
    // From the cut-over to the end of September: ds-0007 and ds-0008 only.
    std::string out =
        RateJson("deepseek.yaml", "deepseek.jsonl", 0, "--from 2025-09-05T16:00:00Z --to 2025-10-01T00:00:00Z");
    auto invoices = Parse(out);
    ASSERT_EQ(invoices.size(), 1u);
    EXPECT_EQ(invoices[0].period, "2025-09-05T16:00:00Z/2025-10-01T00:00:00Z");
    for (const auto& [key, amount] : invoices[0].lines) {
        EXPECT_NE(key.find("@2025-09-v3.1"), std::string::npos) << key;
    }
    EXPECT_EQ(invoices[0].total, "3.59");  // 0.56 + 0.84 + 0.50 + 0.01 + 1.68
    EXPECT_NE(out.find("\"outside_period\":6"), std::string::npos) << out;
}

TEST(RateExamples, TableOutputAndUsageErrors) {
    Result table = RunTally("rate --plan " + Path("deploy/plans/deepseek.yaml") + " --events " +
                            Path("deploy/events/deepseek.jsonl"));
    EXPECT_EQ(table.exit_code, 0);
    EXPECT_NE(table.out.find("7.60 USD"), std::string::npos) << table.out;
    // The reconciliation of the exact sum and the subtotal.
    EXPECT_NE(table.out.find("exact sum              7.596 USD"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("rounding (at invoice)  0.004 USD"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("subtotal                7.60 USD"), std::string::npos) << table.out;
    EXPECT_EQ(RunTally("rate --plan " + Path("deploy/plans/deepseek.yaml")).exit_code, 2);
    EXPECT_EQ(RunTally("rate --plan " + Path("deploy/plans/deepseek.yaml") + " --events " +
                       Path("deploy/events/deepseek.jsonl") + " --format xml")
                  .exit_code,
              2);
    EXPECT_EQ(RunTally("frobnicate").exit_code, 2);
    EXPECT_EQ(RunTally("--help").exit_code, 0);
}

// The success line counts each model once over all versions, says which
// version extends which, and counts warnings.
TEST(PlanValidate, SuccessLineCountsDistinctModelsAndSaysWhichVersionsExtend) {
    Result r = RunTally("plan validate " + Path("deploy/plans/deepseek.yaml"));
    EXPECT_EQ(r.exit_code, 0);
    const std::string ok_line = Path("deploy/plans/deepseek.yaml") +
                                ": ok: plan deepseek, 3 versions (2025-02-off-peak from 2025-02-26T16:30:00Z, "
                                "2025-09-v3.1 from 2025-09-05T16:00:00Z, 2025-09-v3.2-exp from 2025-09-28T16:00:00Z "
                                "extends 2025-09-v3.1), 2 models\n";
    EXPECT_EQ(r.out.substr(0, ok_line.size()), ok_line);
    // Then the version written as changes, resolved: the cells that differ
    // from its base (0.56 / 0.07 / 1.68 -> 0.28 / 0.028 / 0.42).
    const std::string resolved = "\nversion 2025-09-v3.2-exp resolves to version 2025-09-v3.1 with these changes "
                                 "(every cell: tally plan show " +
                                 Path("deploy/plans/deepseek.yaml") +
                                 " --version 2025-09-v3.2-exp):\n10 rate(s) changed, in USD";
    EXPECT_EQ(r.out.substr(ok_line.size(), resolved.size()), resolved) << r.out;
    EXPECT_NE(r.out.find("deepseek-chat      all   -       -       -      -         output          1.68/1M   "
                         "0.42/1M  -75.00%\n"),
              std::string::npos)
        << r.out;
    std::string night = testing::TempDir() + "/night-plan.yaml";
    FILE* f = std::fopen(night.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(
        "plan: x\nversions:\n  - version: a\n    effective_from: 2025-01-01T00:00:00Z\n"
        "    currency: CNY\n    time_zone: Asia/Shanghai\n    models:\n      m:\n"
        "        rates: {input: \"1\", cached_input: {same_as: input}, output: \"2\"}\n"
        "        windows: [{name: night, start: \"00:30\", end: \"08:30\", multiplier: \"0.5\"}]\n",
        f);
    std::fclose(f);
    r = RunTally("plan validate " + night);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, night + ": ok: plan x, 1 version (a from 2025-01-01T00:00:00Z), 1 model, 1 warning\n");
}

TEST(PlanValidate, ExamplePlansPassAndABrokenPlanFails) {
    Result ok = RunTally("plan validate " + Path("deploy/plans/doubao-seed-1.6.yaml") + " " +
                         Path("deploy/plans/deepseek.yaml") + " " + Path("deploy/plans/gemini-2.5-pro.yaml") + " " +
                         Path("deploy/plans/qwen-plus.yaml"));
    EXPECT_EQ(ok.exit_code, 0) << ok.out;
    std::string bad = testing::TempDir() + "/bad-plan.yaml";
    FILE* f = std::fopen(bad.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(
        "plan: x\nversions:\n  - version: a\n    effective_from: 2025-01-01T00:00:00Z\n"
        "    currency: CNY\n    time_zone: UTC\n    models: {m: {rates: {input: \"-1\", output: \"1\"}}}\n",
        f);
    std::fclose(f);
    Result r = RunTally("plan validate " + bad + " 2>&1");
    EXPECT_EQ(r.exit_code, 1);
}

}  // namespace
