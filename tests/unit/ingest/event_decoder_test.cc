#include "ingest/event_decoder.h"

#include <gtest/gtest.h>

namespace tally {
namespace {

const std::string kGood = R"({"specversion":"1.0","id":"req-01J","source":"gw-cn-north-1","type":"llm.call",)"
                          R"("time":"2026-11-03T14:22:05.123Z","subject":"cust_42",)"
                          R"("data":{"model":"doubao-seed-1.6","input_tokens":30500,"output_tokens":812,)"
                          R"("cached_input_tokens":12000,"reasoning_tokens":400,"batch":false,)"
                          R"("project":"search-bot","ttft_ms":320,"tpot_ms":18,"images":2,"note":"x"}})";

std::string Reason(const std::string& json) {
    EventDecoder decoder;
    Event e;
    std::string reason;
    EXPECT_FALSE(decoder.Decode(json, &e, &reason)) << json;
    return reason;
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
    size_t pos = s.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    if (pos != std::string::npos) s.replace(pos, from.size(), to);
    return s;
}

TEST(EventDecoder, DecodesEveryField) {
    EventDecoder decoder;
    Event e;
    std::string reason;
    ASSERT_TRUE(decoder.Decode(kGood, &e, &reason)) << reason;
    EXPECT_EQ(e.id, "req-01J");
    EXPECT_EQ(e.source, "gw-cn-north-1");
    EXPECT_EQ(e.subject, "cust_42");
    EXPECT_EQ(FormatRfc3339(e.time), "2026-11-03T14:22:05.123Z");
    EXPECT_EQ(e.model, "doubao-seed-1.6");
    EXPECT_EQ(e.input_tokens, 30500);
    EXPECT_EQ(e.output_tokens, 812);
    EXPECT_EQ(e.cached_input_tokens, 12000);
    EXPECT_EQ(e.reasoning_tokens, 400);
    EXPECT_FALSE(e.batch);
    EXPECT_EQ(e.project, "search-bot");
    ASSERT_EQ(e.extras.size(), 3u);
    EXPECT_EQ(e.extras[2].name, "images");
    EXPECT_EQ(e.extras[2].value, 2);
}

TEST(EventDecoder, FieldOrderDoesNotMatterAndTheDecoderIsReusable) {
    EventDecoder decoder;
    Event e;
    std::string reason;
    std::string reordered =
        R"({"data":{"output_tokens":5,"input_tokens":7,"model":"m","thinking":true,"batch":true},)"
        R"("subject":"c","time":"2025-09-05T16:00:00+08:00","type":"llm.call","source":"s","id":"i","specversion":"1.0"})";
    ASSERT_TRUE(decoder.Decode(reordered, &e, &reason)) << reason;
    EXPECT_EQ(e.input_tokens, 7);
    EXPECT_TRUE(e.thinking);
    EXPECT_TRUE(e.batch);
    EXPECT_FALSE(decoder.Decode("{", &e, &reason));
    ASSERT_TRUE(decoder.Decode(kGood, &e, &reason)) << reason;
    EXPECT_EQ(e.subject, "cust_42");
}

TEST(EventDecoder, RejectsEachKindOfBadInputWithItsReason) {
    EXPECT_NE(Reason("not json").find("JSON"), std::string::npos);
    EXPECT_NE(Reason("{\"id\":").find("not valid JSON"), std::string::npos);
    EXPECT_NE(Reason("[1,2]").find("not a JSON object"), std::string::npos);
    EXPECT_NE(Reason(kGood + "x").find("not valid JSON"), std::string::npos);
    EXPECT_NE(Reason(kGood.substr(0, kGood.size() - 5)).find("JSON"), std::string::npos);
    EXPECT_EQ(Reason(Replace(kGood, R"("id":"req-01J",)", "")), "missing required field 'id'");
    EXPECT_EQ(Reason(Replace(kGood, R"("subject":"cust_42",)", "")), "missing required field 'subject'");
    EXPECT_EQ(Reason(Replace(kGood, R"("input_tokens":30500,)", "")), "missing required field 'data.input_tokens'");
    EXPECT_EQ(Reason(Replace(kGood, R"("model":"doubao-seed-1.6",)", "")), "missing required field 'data.model'");
    EXPECT_EQ(Reason(Replace(kGood, "30500", "-1")), "field 'data.input_tokens' is negative (-1)");
    EXPECT_EQ(Reason(Replace(kGood, "812", "8.5")), "field 'data.output_tokens' must be a whole number, got 8.5");
    EXPECT_EQ(Reason(Replace(kGood, "812", "\"812\"")),
              "field 'data.output_tokens' must be a whole number of units, not a string");
    EXPECT_NE(Reason(Replace(kGood, "812", "99999999999999999999")).find("too large"), std::string::npos);
    EXPECT_NE(Reason(Replace(kGood, "12000", "40000")).find("exceed input_tokens"), std::string::npos);
    EXPECT_NE(
        Reason(Replace(kGood, "\"reasoning_tokens\":400", "\"reasoning_tokens\":900")).find("exceed output_tokens"),
        std::string::npos);
    EXPECT_NE(Reason(Replace(kGood, "2026-11-03T14:22:05.123Z", "yesterday")).find("RFC 3339"), std::string::npos);
    EXPECT_NE(Reason(Replace(kGood, "llm.call", "llm.embed")).find("not llm.call"), std::string::npos);
    EXPECT_NE(Reason(Replace(kGood, "\"1.0\"", "\"0.3\"")).find("specversion"), std::string::npos);
    EXPECT_NE(Reason(Replace(kGood, "\"ttft_ms\":320", "\"ttft_ms\":-3")).find("data.ttft_ms"), std::string::npos);
    EXPECT_NE(Reason(Replace(kGood, "\"batch\":false", "\"batch\":1")).find("data.batch"), std::string::npos);
    EXPECT_NE(Reason("").find("not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace tally
