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

TEST(EventDecoder, ValuesTallyDoesNotReadMustBeValidJsonToo) {
    // On-demand parsing skips unread values; the archive keeps the bytes for
    // readers that parse them whole, so they are checked all the same.
    EXPECT_NE(Reason(Replace(kGood, R"("note":"x")", R"("note":tru)")).find("not valid JSON in field 'data.note'"),
              std::string::npos);
    EXPECT_NE(Reason(Replace(kGood, R"("note":"x")", R"("note":[1,{"a":nul}])")).find("not valid JSON"),
              std::string::npos);
    EXPECT_NE(Reason(Replace(kGood, R"("specversion":"1.0",)", R"("specversion":"1.0","ext":{"a":-},)"))
                  .find("not valid JSON in field 'ext'"),
              std::string::npos);
    EventDecoder decoder;
    Event e;
    std::string reason;
    EXPECT_TRUE(decoder.Decode(Replace(kGood, R"("note":"x")", R"("note":{"a":[1,2.5e3,"x",null,true,{}]})"), &e,
                               &reason))
        << reason;
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
    EXPECT_EQ(Reason(Replace(kGood, "812", "99999999999999999999")),
              "field 'data.output_tokens' is 99999999999999999999, above the per-call maximum 1000000000000");
    EXPECT_EQ(Reason(Replace(kGood, "812", "-99999999999999999999")),
              "field 'data.output_tokens' is negative (-99999999999999999999)");
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

// The event with `from` (a key and its value, as written) put first inside
// `data` or first at the top level.
std::string WithData(const std::string& from) {
    return Replace(kGood, R"("data":{)", R"("data":{)" + from + ",");
}
std::string WithTop(const std::string& from) {
    return "{" + from + "," + kGood.substr(1);
}

TEST(EventDecoder, RejectsADuplicateKeyNamingIt) {
    // The first images alone would overflow a later sum; the repeat is refused before.
    EXPECT_FALSE(Reason(Replace(kGood, R"("images":2)", R"("images":9223372036854775807,"images":1)")).empty());
    EXPECT_EQ(Reason(Replace(kGood, R"("images":2)", R"("images":5,"images":1)")), "duplicate key 'data.images'");
    EXPECT_EQ(Reason(WithData(R"("input_tokens":5)")), "duplicate key 'data.input_tokens'");
    EXPECT_EQ(Reason(WithData(R"("batch":true)")), "duplicate key 'data.batch'");
    EXPECT_EQ(Reason(WithData(R"("project":"x")")), "duplicate key 'data.project'");
    EXPECT_EQ(Reason(WithData(R"("note":{"y":1})")), "duplicate key 'data.note'");  // descriptive fields too
    EXPECT_EQ(Reason(WithTop(R"("id":"other")")), "duplicate key 'id'");
    EXPECT_EQ(Reason(WithTop(R"("subject":"cust_42")")), "duplicate key 'subject'");  // even with the same value
    EXPECT_EQ(Reason(WithTop(R"("data":{})")), "duplicate key 'data'");
    EXPECT_EQ(Reason(WithTop(R"("ext":1,"ext":2)")), "duplicate key 'ext'");
    // Keys are compared after unescaping.
    EXPECT_EQ(Reason(WithData(R"("\u006dodel":"m2")")), "duplicate key 'data.model'");
    EXPECT_EQ(Reason(WithData(R"("imag\u0065s":3)")), "duplicate key 'data.images'");
    EXPECT_EQ(Reason(WithTop(R"("\u0069d":"x")")), "duplicate key 'id'");
}

TEST(EventDecoder, FindsARepeatAmongManyKeysAndAcceptsManyDistinctOnes) {
    std::string many;
    for (int i = 0; i < 200; ++i) many += (i > 0 ? "," : "") + ("\"u" + std::to_string(i) + "\":1");
    EventDecoder decoder;
    Event e;
    std::string reason;
    ASSERT_TRUE(decoder.Decode(WithData(many), &e, &reason)) << reason;
    EXPECT_EQ(e.extras.size(), 203u);
    EXPECT_FALSE(decoder.Decode(WithData(many + R"(,"u17":2)"), &e, &reason));
    EXPECT_EQ(reason, "duplicate key 'data.u17'");
    EXPECT_FALSE(decoder.Decode(WithTop(many + R"(,"u170":2)"), &e, &reason));
    EXPECT_EQ(reason, "duplicate key 'u170'");
    ASSERT_TRUE(decoder.Decode(kGood, &e, &reason)) << reason;  // nothing is left over from before
}

TEST(EventDecoder, RecognisesKeysWrittenWithEscapes) {
    std::string escaped = kGood;
    for (const auto& [from, to] :
         std::vector<std::pair<std::string, std::string>>{{R"("subject")", R"("\u0073ubject")"},
                                                          {R"("model")", R"("\u006dodel")"},
                                                          {R"("input_tokens")", R"("input\u005ftokens")"},
                                                          {R"("cached_input_tokens")", R"("cached_input_token\u0073")"},
                                                          {R"("specversion")", R"("spec\u0076ersion")"},
                                                          {R"("images")", R"("\u0069mages")"}}) {
        escaped = Replace(escaped, from, to);
    }
    EventDecoder decoder;
    Event e;
    std::string reason;
    ASSERT_TRUE(decoder.Decode(escaped, &e, &reason)) << reason;
    EXPECT_EQ(e.subject, "cust_42");
    EXPECT_EQ(e.model, "doubao-seed-1.6");
    EXPECT_EQ(e.input_tokens, 30500);
    EXPECT_EQ(e.cached_input_tokens, 12000);
    ASSERT_EQ(e.extras.size(), 3u);
    EXPECT_EQ(e.extras[2].name, "images");
    // An escaped known key gets the known key's checks.
    EXPECT_EQ(Reason(Replace(kGood, R"("output_tokens":812)", R"("output\u005ftokens":-1)")),
              "field 'data.output_tokens' is negative (-1)");
}

TEST(EventDecoder, ReadsKeysOfEveryLengthWithAndWithoutEscapes) {
    EventDecoder decoder;
    Event e;
    std::string reason;
    for (size_t length = 1; length <= 20; ++length) {
        const std::string name(length, 'k');
        ASSERT_TRUE(decoder.Decode(WithData("\"" + name + "\":7"), &e, &reason)) << reason;
        ASSERT_EQ(e.extras.size(), 4u);
        EXPECT_EQ(e.extras[0].name, name);
        for (size_t at = 0; at < length; ++at) {
            // The same key once more, with one character escaped at `at`.
            std::string escaped = name;
            escaped.replace(at, 1, "\\u006b");
            EXPECT_FALSE(decoder.Decode(WithData("\"" + name + "\":7,\"" + escaped + "\":8"), &e, &reason));
            EXPECT_EQ(reason, "duplicate key 'data." + name + "'") << escaped;
        }
    }
    ASSERT_TRUE(decoder.Decode(WithData(R"("生成图片数":2)"), &e, &reason)) << reason;
    EXPECT_EQ(e.extras[0].name, "生成图片数");
}

TEST(EventDecoder, RejectsControlCharactersInEveryKeptStringNamingTheField) {
    const std::vector<std::pair<std::string, std::string>> fields = {{R"("subject":"cust_42")", "subject"},
                                                                     {R"("model":"doubao-seed-1.6")", "data.model"},
                                                                     {R"("source":"gw-cn-north-1")", "source"},
                                                                     {R"("id":"req-01J")", "id"},
                                                                     {R"("project":"search-bot")", "data.project"}};
    for (const auto& [field, name] : fields) {
        for (const char* control : {R"(\u0000)", R"(\u001f)", R"(\n)", R"(\u007f)"}) {
            // Insert the control character inside the value: before its closing quote.
            std::string bad = field.substr(0, field.size() - 1) + control + "\"";
            std::string reason = Reason(Replace(kGood, field, bad));
            EXPECT_NE(reason.find("field '" + name + "'"), std::string::npos) << bad << ": " << reason;
            EXPECT_NE(reason.find("control character"), std::string::npos) << bad << ": " << reason;
            EXPECT_EQ(reason.find('\0'), std::string::npos) << bad;
        }
    }
    // C1 controls (U+0080..U+009F) are refused in identifiers, not in free text.
    EXPECT_NE(Reason(Replace(kGood, "cust_42", R"(cust\u0085)")).find("field 'subject'"), std::string::npos);
    EventDecoder decoder;
    Event e;
    std::string reason;
    ASSERT_TRUE(decoder.Decode(Replace(kGood, "search-bot", R"(search\u0085bot \u641c\u7d22)"), &e, &reason)) << reason;
    EXPECT_EQ(e.project,
              "search\xc2\x85"
              "bot 搜索");
    // Values echoed in a reason are escaped, never raw.
    reason = Reason(Replace(kGood, "llm.call", R"(llm\u0000call)"));
    EXPECT_EQ(reason, R"(type 'llm\u0000call' is not llm.call)");
}

TEST(EventDecoder, ChecksIdentifiersForEmptinessLengthAndUtf8) {
    EXPECT_EQ(Reason(Replace(kGood, R"("subject":"cust_42")", R"("subject":"")")), "field 'subject' is empty");
    EXPECT_EQ(Reason(Replace(kGood, R"("source":"gw-cn-north-1")", R"("source":"")")), "field 'source' is empty");
    EXPECT_EQ(Reason(Replace(kGood, R"("model":"doubao-seed-1.6")", R"("model":"")")), "field 'data.model' is empty");
    EventDecoder decoder;
    Event e;
    std::string reason;
    EXPECT_TRUE(decoder.Decode(Replace(kGood, "req-01J", std::string(256, 'r')), &e, &reason)) << reason;
    EXPECT_NE(Reason(Replace(kGood, "req-01J", std::string(257, 'r'))).find("field 'id'"), std::string::npos);
    EXPECT_NE(Reason(Replace(kGood, "req-01J", std::string(257, 'r'))).find("257 bytes"), std::string::npos);
    // A lone surrogate unescapes to bytes that are not UTF-8.
    EXPECT_FALSE(Reason(Replace(kGood, "cust_42", R"(cust\udc00)")).empty());
}

TEST(EventDecoder, BoundsEveryCountAtTheDocumentedMaximum) {
    EXPECT_EQ(Reason(Replace(kGood, "812", "1000000000001")),
              "field 'data.output_tokens' is 1000000000001, above the per-call maximum 1000000000000");
    EXPECT_EQ(Reason(Replace(kGood, R"("images":2)", R"("images":9223372036854775807)")),
              "field 'data.images' is 9223372036854775807, above the per-call maximum 1000000000000");
    EXPECT_EQ(Reason(Replace(kGood, "12000", "1000000000001")),
              "field 'data.cached_input_tokens' is 1000000000001, above the per-call maximum 1000000000000");
    EventDecoder decoder;
    Event e;
    std::string reason;
    std::string at_max = Replace(Replace(kGood, "30500", "1000000000000"), "812", "1000000000000");
    at_max = Replace(at_max, R"("images":2)", R"("images":1000000000000)");
    ASSERT_TRUE(decoder.Decode(at_max, &e, &reason)) << reason;
    EXPECT_EQ(e.input_tokens, 1'000'000'000'000);
    EXPECT_EQ(e.extras[2].value, 1'000'000'000'000);
}

TEST(EventDecoder, AcceptsOnlyTimesFrom1970To2200) {
    const std::string bounds = ", outside the accepted range [1970-01-01T00:00:00Z, 2200-01-01T00:00:00Z)";
    auto at = [](const std::string& time) { return Replace(kGood, "2026-11-03T14:22:05.123Z", time); };
    EXPECT_EQ(Reason(at("9999-12-31T23:00:00Z")), "field 'time' is 9999-12-31T23:00:00Z" + bounds);
    EXPECT_EQ(Reason(at("2200-01-01T00:00:00Z")), "field 'time' is 2200-01-01T00:00:00Z" + bounds);
    EXPECT_EQ(Reason(at("2200-01-01T08:00:00+08:00")), "field 'time' is 2200-01-01T08:00:00+08:00" + bounds);
    EXPECT_EQ(Reason(at("1969-12-31T23:59:59.999Z")), "field 'time' is 1969-12-31T23:59:59.999Z" + bounds);
    EXPECT_EQ(Reason(at("0000-01-01T00:00:00Z")), "field 'time' is 0000-01-01T00:00:00Z" + bounds);
    EventDecoder decoder;
    Event e;
    std::string reason;
    for (const char* fine : {"1970-01-01T00:00:00Z", "1970-01-01T08:00:00+08:00", "2199-12-31T23:59:59.999Z",
                             "2200-01-01T07:59:59+08:00"}) {
        EXPECT_TRUE(decoder.Decode(at(fine), &e, &reason)) << fine << ": " << reason;
    }
}

TEST(EventDecoder, ReadsTheServedModelOfARoutedCall) {
    EventDecoder decoder;
    Event e;
    std::string reason;
    ASSERT_TRUE(decoder.Decode(kGood, &e, &reason)) << reason;
    EXPECT_EQ(e.served_model, "");  // absent: not routed
    const std::string routed =
        Replace(kGood, R"("model":"doubao-seed-1.6",)", R"("model":"doubao-seed-1.6","served_model":"qwen-flash",)");
    ASSERT_TRUE(decoder.Decode(routed, &e, &reason)) << reason;
    EXPECT_EQ(e.model, "doubao-seed-1.6");
    EXPECT_EQ(e.served_model, "qwen-flash");
    // Served by the model it asked for: not routed.
    ASSERT_TRUE(decoder.Decode(Replace(routed, R"("served_model":"qwen-flash")", R"("served_model":"doubao-seed-1.6")"),
                               &e, &reason))
        << reason;
    EXPECT_EQ(e.served_model, "");
    // The decoder is reused: the next event without it is not routed.
    ASSERT_TRUE(decoder.Decode(routed, &e, &reason)) << reason;
    ASSERT_TRUE(decoder.Decode(kGood, &e, &reason)) << reason;
    EXPECT_EQ(e.served_model, "");
}

TEST(EventDecoder, RejectsABadServedModelNamingTheField) {
    const std::string routed =
        Replace(kGood, R"("model":"doubao-seed-1.6",)", R"("model":"doubao-seed-1.6","served_model":"qwen-flash",)");
    EXPECT_EQ(Reason(Replace(routed, R"("served_model":"qwen-flash")", R"("served_model":"")")),
              "field 'data.served_model' is empty");
    EXPECT_EQ(Reason(Replace(routed, R"("served_model":"qwen-flash")", R"("served_model":7)")),
              "field 'data.served_model' must be a string");
    EXPECT_EQ(Reason(Replace(routed, R"("served_model":"qwen-flash")", R"("served_model":null)")),
              "field 'data.served_model' must be a string");
    EXPECT_NE(Reason(Replace(routed, "qwen-flash", std::string(257, 'q'))).find("field 'data.served_model'"),
              std::string::npos);
    EXPECT_NE(Reason(Replace(routed, "qwen-flash", R"(qwen\u0007)")).find("data.served_model"), std::string::npos);
    EXPECT_EQ(Reason(Replace(routed, R"("served_model":"qwen-flash")",
                             R"("served_model":"qwen-flash","served_model":"qwen-max")")),
              "duplicate key 'data.served_model'");
}

TEST(EventDecoder, ReadsExplicitCacheHitsAsAPartOfTheWholePrompt) {
    // Alibaba's explicit cache: a 100,000-token prompt with 20,000 implicit
    // and 30,000 explicit hits.
    const std::string call = Replace(Replace(kGood, "30500", "100000"), R"("cached_input_tokens":12000)",
                                     R"("cached_input_tokens":20000,"cached_input_explicit_tokens":30000)");
    EventDecoder decoder;
    Event e;
    std::string reason;
    ASSERT_TRUE(decoder.Decode(call, &e, &reason)) << reason;
    EXPECT_EQ(e.input_tokens, 100000);
    EXPECT_EQ(e.cached_input_tokens, 20000);
    EXPECT_EQ(e.cached_input_explicit_tokens, 30000);
    // A known field, not an extra unit.
    for (const auto& x : e.extras) EXPECT_NE(x.name, "cached_input_explicit_tokens");
    // The decoder is reused: the next event without the field has none.
    ASSERT_TRUE(decoder.Decode(kGood, &e, &reason)) << reason;
    EXPECT_EQ(e.cached_input_explicit_tokens, 0);

    // Both kinds and the writes together may not exceed the whole prompt:
    // 20,000 + 30,000 + 50,001 > 100,000, though each alone fits.
    const std::string over = Replace(call, R"("cached_input_explicit_tokens":30000)",
                                     R"("cached_input_explicit_tokens":30000,"cache_write_tokens":50001)");
    EXPECT_EQ(Reason(over),
              "cached_input_tokens + cached_input_explicit_tokens + cache_write_tokens + cache_write_1h_tokens "
              "(100001) exceed input_tokens (100000); input_tokens is the whole prompt, both kinds of cache hit "
              "and the cache writes are parts of it");
    ASSERT_TRUE(decoder.Decode(Replace(over, "50001", "50000"), &e, &reason)) << reason;
    EXPECT_EQ(Reason(Replace(call, "30000", "-1")), "field 'data.cached_input_explicit_tokens' is negative (-1)");
    EXPECT_EQ(Reason(Replace(call, "30000", "1000000000001")),
              "field 'data.cached_input_explicit_tokens' is 1000000000001, above the per-call maximum 1000000000000");
    EXPECT_EQ(Reason(Replace(call, R"("cached_input_explicit_tokens":30000)",
                             R"("cached_input_explicit_tokens":30000,"cached_input_explicit_tokens":1)")),
              "duplicate key 'data.cached_input_explicit_tokens'");
}

}  // namespace
}  // namespace tally
