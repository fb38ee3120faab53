// `tally plan show`, `diff` and `try` (app/plan_tools.cc) on the example
// plans: a tried call's amounts equal `tally rate`'s for the same events and
// plan, line by line; windows in their zone and in UTC (with daylight
// saving); CSV formula safety; errors that say what is expected.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "app/commands.h"

namespace tally {
namespace {

const std::string kSource = TALLY_SOURCE_DIR;

// A file in a fresh temporary directory, removed with the test.
class TempFile {
   public:
    TempFile(const std::string& name, const std::string& text) {
        dir_ = std::filesystem::temp_directory_path() /
               ("tally-plan-tools-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
                std::to_string(counter_++));
        std::filesystem::create_directories(dir_);
        path_ = (dir_ / name).string();
        std::ofstream(path_) << text;
    }
    ~TempFile() { std::filesystem::remove_all(dir_); }
    const std::string& path() const { return path_; }

   private:
    static inline int counter_ = 0;
    std::filesystem::path dir_;
    std::string path_;
};

std::vector<EventText> ReadEvents(const std::string& file) {
    std::ifstream in(file);
    EXPECT_TRUE(in) << file;
    std::vector<EventText> out;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        out.push_back({file + ":" + std::to_string(n), line});
    }
    return out;
}

Decimal Dec(const std::string& text) {
    auto d = Decimal::Parse(text);
    EXPECT_TRUE(d.has_value()) << text;
    return d.value_or(Decimal());
}

struct ExamplePair {
    const char* plan;
    const char* events;
};
constexpr ExamplePair kExamples[] = {
    {"deploy/plans/doubao-seed-1.6.yaml", "deploy/events/doubao.jsonl"},
    {"deploy/plans/deepseek.yaml", "deploy/events/deepseek.jsonl"},
    {"deploy/plans/qwen-plus.yaml", "deploy/events/qwen.jsonl"},
    {"deploy/plans/gemini-2.5-pro.yaml", "deploy/events/gemini.jsonl"},
};

// For every example plan and its events: the sum of the tried calls' line
// amounts per (model, cell, unit) equals `tally rate --format json`'s usage
// line of that cell, and the rejected calls are the same with the same
// reasons. The example plans have no period tiers or free quotas, so a
// call's list amounts are exactly what its invoice lines add.
TEST(PlanTry, AmountsEqualTallyRateOnEveryExamplePlan) {
    for (const ExamplePair& ex : kExamples) {
        SCOPED_TRACE(ex.plan);
        const std::string plan = kSource + "/" + ex.plan, events = kSource + "/" + ex.events;
        RateOptions rate;
        rate.plans = {plan};
        rate.events = {events};
        rate.format = "json";
        std::ostringstream rate_out, rate_err;
        const int rate_code = RunRate(rate, rate_out, rate_err);
        ASSERT_TRUE(rate_code == kExitOk || rate_code == kExitPartial) << rate_err.str();
        const std::string json = rate_out.str();
        std::map<std::string, Decimal> rated;
        static const std::regex kUsage(
            R"re(\{"kind":"usage","plan_version":"[^"]*","model":"([^"]*)","unit":"([^"]*)","band":"([^"]*)",)re"
            R"re("output_condition":"([^"]*)","window":"([^"]*)","batch":(true|false),"thinking":(true|false),)re"
            R"re("tier":"","quantity":"(\d+)"[^}]*"amount":"([^"]*)")re");
        for (auto m = std::sregex_iterator(json.begin(), json.end(), kUsage); m != std::sregex_iterator(); ++m) {
            const std::string key = (*m)[1].str() + "|" + (*m)[3].str() + "|" + (*m)[4].str() + "|" + (*m)[5].str() +
                                    "|" + (*m)[6].str() + "|" + (*m)[7].str() + "|" + (*m)[2].str();
            rated[key] += Dec((*m)[9].str());
        }
        ASSERT_FALSE(rated.empty()) << json;
        std::set<std::string> rate_rejected;
        static const std::regex kRejected(
            R"re(\{"file":"[^"]*","line":(\d+),"code":"([^"]*)","reason":"((?:[^"\\]|\\.)*)"\})re");
        for (auto m = std::sregex_iterator(json.begin(), json.end(), kRejected); m != std::sregex_iterator(); ++m) {
            rate_rejected.insert((*m)[1].str() + " " + (*m)[2].str());
        }

        std::ostringstream load_err;
        auto catalog = LoadCatalog({plan}, load_err);
        ASSERT_TRUE(catalog.has_value()) << load_err.str();
        const std::vector<EventText> texts = ReadEvents(events);
        const std::vector<TriedCall> calls = TryCalls(*catalog, texts);
        ASSERT_EQ(calls.size(), texts.size());
        std::map<std::string, Decimal> tried;
        std::set<std::string> try_rejected;
        for (size_t i = 0; i < calls.size(); ++i) {
            const TriedCall& c = calls[i];
            if (c.rejected) {
                try_rejected.insert(c.where.substr(c.where.rfind(':') + 1) + " " + c.reason_code);
                continue;
            }
            Decimal sum;
            for (const TriedLine& l : c.lines) {
                ASSERT_TRUE(l.rate.has_value()) << c.where << " " << l.unit;
                // amount = quantity x rate / per, written out.
                EXPECT_EQ(l.amount.value(), l.rate->price().PriceOf(l.quantity, l.rate->per())) << c.where;
                const std::string key = l.model + "|" + l.band + "|" + l.output_condition + "|" + l.window + "|" +
                                        (l.batch ? "true" : "false") + "|" + (l.thinking ? "true" : "false") + "|" +
                                        l.unit;
                tried[key] += l.amount.value();
                sum += l.amount.value();
            }
            EXPECT_EQ(c.total.value(), sum) << c.where;
        }
        EXPECT_EQ(tried, rated);
        EXPECT_EQ(try_rejected, rate_rejected);
    }
}

// qwen-plus q-0003 (price-sheets.md section 2, CNY per 1M): 50,000 prompt
// tokens of which 20,000 cache hits, 1,000 output, thinking; band 0-128000:
// input 30,000 x 0.8 / 1M = 0.024; cached 20,000 x 0.16 / 1M = 0.0032;
// output 1,000 x 8 (thinking) / 1M = 0.008; total 0.0352.
TEST(PlanTry, QwenPlusThinkingCallByHand) {
    std::ostringstream err;
    auto catalog = LoadCatalog({kSource + "/deploy/plans/qwen-plus.yaml"}, err);
    ASSERT_TRUE(catalog.has_value()) << err.str();
    const std::vector<TriedCall> calls = TryCalls(
        *catalog,
        {{"event 1",
          R"({"specversion":"1.0","id":"t-1","source":"try","type":"llm.call","time":"2025-11-02T12:00:00+08:00",)"
          R"("subject":"c","data":{"model":"qwen-plus","input_tokens":50000,"output_tokens":1000,)"
          R"("cached_input_tokens":20000,"thinking":true}})"},
         {"event 2",
          R"({"specversion":"1.0","id":"t-2","source":"try","type":"llm.call","time":"2025-11-02T12:00:00+08:00",)"
          R"("subject":"c","data":{"model":"qwen-max","input_tokens":5,"output_tokens":1}})"},
         {"event 3",
          R"({"specversion":"1.0","id":"t-1","source":"try","type":"llm.call","time":"2025-11-02T12:00:00+08:00",)"
          R"("subject":"c","data":{"model":"qwen-plus","input_tokens":50000,"output_tokens":1000,)"
          R"("cached_input_tokens":20000,"thinking":true}})"}});
    ASSERT_EQ(calls.size(), 3u);
    const TriedCall& c = calls[0];
    ASSERT_FALSE(c.rejected) << c.reason;
    ASSERT_EQ(c.lines.size(), 3u);
    EXPECT_EQ(c.lines[0].unit, "input");
    EXPECT_EQ(c.lines[0].amount.ToString(), "0.024");
    EXPECT_EQ(c.lines[1].unit, "cached_input");
    EXPECT_EQ(c.lines[1].amount.ToString(), "0.0032");
    EXPECT_EQ(c.lines[2].unit, "output");
    EXPECT_TRUE(c.lines[2].thinking);
    EXPECT_EQ(c.lines[2].band, "0-128000");
    EXPECT_EQ(c.lines[2].amount.ToString(), "0.008");
    EXPECT_EQ(c.total.ToString(), "0.0352");
    EXPECT_EQ(c.version, "2025-07");
    EXPECT_TRUE(calls[1].rejected);
    EXPECT_EQ(calls[1].reason_code, "unknown_model");
    EXPECT_NE(calls[1].reason.find("qwen-max"), std::string::npos) << calls[1].reason;
    EXPECT_EQ(calls[2].duplicate_of, "event 1");
    EXPECT_TRUE(calls[2].lines.empty());
}

// A repeat of a call (same source and id) with another payload: `tally rate`
// and the consumer reject it as a conflict; so does try.
TEST(PlanTry, AConflictingRepeatIsRejectedAsTallyRateRejectsIt) {
    std::ostringstream err;
    auto catalog = LoadCatalog({kSource + "/deploy/plans/qwen-plus.yaml"}, err);
    ASSERT_TRUE(catalog.has_value()) << err.str();
    const std::string head =
        R"({"specversion":"1.0","id":"t-1","source":"try","type":"llm.call","time":"2025-11-02T12:00:00+08:00",)"
        R"("subject":"c","data":{"model":"qwen-plus","input_tokens":)";
    const std::vector<TriedCall> calls =
        TryCalls(*catalog, {{"event 1", head + R"(50000,"output_tokens":1000}})"},
                            {"event 2", head + R"(60000,"output_tokens":1000}})"}});
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_FALSE(calls[0].rejected) << calls[0].reason;
    EXPECT_TRUE(calls[1].rejected);
    EXPECT_EQ(calls[1].reason_code, "conflict") << calls[1].reason;
    EXPECT_TRUE(calls[1].lines.empty());
}

constexpr const char* kWindowsPlan = R"(
plan: windows
versions:
  - version: "v1"
    effective_from: 2025-10-01T00:00:00Z
    currency: USD
    time_zone: Asia/Shanghai
    models:
      m:
        rates: {input: "1", output: "2"}
        windows:
          - name: off-peak
            start: "00:30"
            end: "08:30"
            multiplier: "0.5"
          - name: "=1+1"
            time_zone: America/New_York
            start: "09:00"
            end: "17:00"
            weekdays: [mon, tue, wed, thu, fri]
            rates: {input: "0.0009", output: "0.0018"}
)";

TEST(PlanShow, WindowsInTheirZoneAndInUtcAcrossDaylightSaving) {
    TempFile plan("windows.yaml", kWindowsPlan);
    std::ostringstream out, err;
    ASSERT_EQ(RunPlanShowFile(plan.path(), "", "", "table", out, err), kExitOk) << err.str();
    const std::string text = out.str();
    // Shanghai is UTC+8 all year: 00:30-08:30 local is 16:30-00:30 UTC.
    EXPECT_NE(text.find("window off-peak: 00:30-08:30 Asia/Shanghai (the plan's zone) = 16:30-00:30 UTC (UTC+08:00 "
                        "all year from 2025-10-01)"),
              std::string::npos)
        << text;
    // New York from 2025-10-01: EDT (UTC-4) until 2025-11-02, EST (UTC-5)
    // until 2026-03-08, then EDT again: 09:00-17:00 is 13:00-21:00 or
    // 14:00-22:00 UTC.
    EXPECT_NE(text.find("09:00-17:00 America/New_York = 13:00-21:00 UTC (UTC-04:00 from 2025-10-01); 14:00-22:00 UTC "
                        "(UTC-05:00 from 2025-11-02); 13:00-21:00 UTC (UTC-04:00 from 2026-03-08)"),
              std::string::npos)
        << text;
    // The off-peak cell: input 1 x 0.5, output 2 x 0.5, per 1M.
    EXPECT_NE(text.find("rates in USD per 1,000,000 units"), std::string::npos) << text;
    std::ostringstream csv, csv_err;
    ASSERT_EQ(RunPlanShowFile(plan.path(), "v1", "", "csv", csv, csv_err), kExitOk) << csv_err.str();
    // A window named like a formula is text in a spreadsheet; rates stay numbers.
    EXPECT_NE(csv.str().find(",all,,\"'=1+1\",false,false,input,0.0009,1000000\n"), std::string::npos) << csv.str();
    EXPECT_NE(csv.str().find(",all,,off-peak,false,false,output,1,1000000\n"), std::string::npos) << csv.str();
    std::ostringstream json, json_err;
    ASSERT_EQ(RunPlanShowFile(plan.path(), "", "2025-12-01T00:00:00Z", "json", json, json_err), kExitOk);
    EXPECT_NE(json.str().find(R"({"unit":"input","rate":"0.5","per":1000000})"), std::string::npos) << json.str();
}

TEST(PlanShow, ExamplePlansAndErrors) {
    for (const ExamplePair& ex : kExamples) {
        for (const char* format : {"table", "json", "csv"}) {
            std::ostringstream out, err;
            EXPECT_EQ(RunPlanShowFile(kSource + "/" + ex.plan, "", "", format, out, err), kExitOk) << err.str();
            EXPECT_FALSE(out.str().empty());
        }
    }
    std::ostringstream out, err;
    // qwen-plus band 2 as the sheet writes it: 2.4 / 0.48 / 20, explicit hits 0.24 and creation 3 (10 % and
    // 125 %; the 1-hour write falls back to it), thinking output 24; batch half, no cache price.
    ASSERT_EQ(RunPlanShowFile(kSource + "/deploy/plans/qwen-plus.yaml", "", "", "table", out, err), kExitOk);
    EXPECT_NE(out.str().find("version 2025-07: from 2025-07-27T16:00:00Z (2025-07-28T00:00:00+08:00), no end"),
              std::string::npos)
        << out.str();
    const std::regex band2("\n  128001-256000 +- +- +- +- +2\\.4 +0\\.48 +0\\.24 +3 +3 +20\n");
    EXPECT_TRUE(std::regex_search(out.str(), band2)) << out.str();
    // Batch thinking in band 1: input 0.8 x 0.5, output 8 x 0.5; hits bill as input.
    const std::regex batch("\n  0-128000 +- +- +batch +thinking +0\\.4 +n/a +n/a +n/a +n/a +4\n");
    EXPECT_TRUE(std::regex_search(out.str(), batch)) << out.str();
    EXPECT_EQ(RunPlanShowFile(kSource + "/deploy/plans/qwen-plus.yaml", "", "", "xml", out, err), kExitUsage);
    EXPECT_NE(err.str().find("--format must be table, json or csv, not 'xml'"), std::string::npos) << err.str();
    err.str("");
    EXPECT_EQ(RunPlanShowFile(kSource + "/deploy/plans/deepseek.yaml", "v9", "", "table", out, err), kExitUsage);
    EXPECT_NE(err.str().find("has no version 'v9' (its versions: 2025-02-off-peak, 2025-09-v3.1, 2025-09-v3.2-exp)"), std::string::npos)
        << err.str();
    // A version written as changes says so; its cells are the resolved rates (0.56 x 0.5, 1.68 x 0.25).
    std::ostringstream cut, cut_json;
    ASSERT_EQ(RunPlanShowFile(kSource + "/deploy/plans/deepseek.yaml", "2025-09-v3.2-exp", "", "table", cut, err),
              kExitOk);
    EXPECT_NE(cut.str().find("version 2025-09-v3.2-exp: from 2025-09-28T16:00:00Z, no end; written as changes to "
                             "version 2025-09-v3.1 (resolved below)\n"),
              std::string::npos)
        << cut.str();
    EXPECT_TRUE(std::regex_search(cut.str(), std::regex("\n  all +- +- +- +- +0\\.28 +0\\.028 .* 0\\.42\n")))
        << cut.str();
    ASSERT_EQ(RunPlanShowFile(kSource + "/deploy/plans/deepseek.yaml", "", "", "json", cut_json, err), kExitOk);
    EXPECT_NE(cut_json.str().find(R"({"id":"2025-09-v3.2-exp","extends":"2025-09-v3.1",)"), std::string::npos);
    EXPECT_NE(cut_json.str().find(R"({"id":"2025-09-v3.1","extends":null,)"), std::string::npos);
    err.str("");
    EXPECT_EQ(RunPlanShowFile(kSource + "/deploy/plans/deepseek.yaml", "", "2024-01-01T00:00:00Z", "table", out, err),
              kExitUsage);
    EXPECT_NE(err.str().find("no version of"), std::string::npos) << err.str();
    TempFile bad("bad.yaml", "plan: x\nversions:\n  - version: v1\n    effective_from: soon\n");
    err.str("");
    EXPECT_EQ(RunPlanShowFile(bad.path(), "", "", "table", out, err), kExitFailure);
    EXPECT_NE(err.str().find(bad.path() + ":4:"), std::string::npos) << err.str();
}

TEST(PlanDiffCommand, DeepseekFileAndErrors) {
    std::ostringstream out, err, last;
    // Its last two versions: the 2025-09-29 cut, written as changes (output
    // x 0.25): 1.68 -> 0.42, -75 %.
    ASSERT_EQ(RunPlanDiffFiles({kSource + "/deploy/plans/deepseek.yaml"}, "", "", "table", last, err), kExitOk)
        << err.str();
    EXPECT_TRUE(
        std::regex_search(last.str(), std::regex("deepseek-reasoner .* output +1\\.68/1M +0\\.42/1M +-75\\.00%")))
        << last.str();
    // The V3.1 cut-over.
    ASSERT_EQ(RunPlanDiffFiles({kSource + "/deploy/plans/deepseek.yaml"}, "2025-02-off-peak", "2025-09-v3.1", "table",
                               out, err),
              kExitOk)
        << err.str();
    EXPECT_NE(out.str().find("version 2025-02-off-peak"), std::string::npos) << out.str();
    // deepseek-reasoner output 2.19 -> 1.68: -23.2876...% -> -23.29.
    const std::regex cut("deepseek-reasoner .* output +2\\.19/1M +1\\.68/1M +-23\\.29%");
    EXPECT_TRUE(std::regex_search(out.str(), cut)) << out.str();
    EXPECT_NE(out.str().find("model deepseek-chat: window off-peak"), std::string::npos) << out.str();
    std::ostringstream json;
    ASSERT_EQ(RunPlanDiffFiles({kSource + "/deploy/plans/deepseek.yaml"}, "2025-02-off-peak", "2025-09-v3.1", "json",
                               json, err),
              kExitOk);
    EXPECT_NE(json.str().find(R"("unit":"input","old":{"rate":"0.27","per":1000000},)"
                              R"("new":{"rate":"0.56","per":1000000},"change":"+107.41%")"),
              std::string::npos)
        << json.str();
    // A plan against itself.
    for (const ExamplePair& ex : kExamples) {
        std::ostringstream same;
        const std::string f = kSource + "/" + ex.plan;
        ASSERT_EQ(RunPlanDiffFiles({f, f}, "", "", "table", same, err), kExitOk) << err.str();
        EXPECT_NE(same.str().find("no changes"), std::string::npos) << same.str();
    }
    err.str("");
    EXPECT_EQ(RunPlanDiffFiles({kSource + "/deploy/plans/qwen-plus.yaml"}, "", "", "table", out, err), kExitUsage);
    EXPECT_NE(err.str().find("has one version"), std::string::npos) << err.str();
    err.str("");
    EXPECT_EQ(RunPlanDiffFiles({kSource + "/deploy/plans/deepseek.yaml"}, "nope", "", "table", out, err), kExitUsage);
    EXPECT_NE(err.str().find("has no version 'nope'"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace tally
