// Request bodies of the POST routes (api/json_body.h): one JSON object of
// string fields, anything else a 400 naming what is wrong.
#include "api/json_body.h"

#include <gtest/gtest.h>

#include "api/request.h"

namespace tally::api {
namespace {

const std::vector<BodyField> kFields = {{"period", true}, {"reason", false}};

std::string ErrorOf(std::string_view body) {
    try {
        ParseJsonBody(body, kFields);
    } catch (const HttpError& e) {
        EXPECT_EQ(e.status, 400);
        return e.what();
    }
    return "no error";
}

TEST(JsonBody, StringFieldsByName) {
    const auto f = ParseJsonBody(R"( {"period":"2025-11", "reason":"dup\u00e9 \"x\""} )", kFields);
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f.at("period"), "2025-11");
    EXPECT_EQ(f.at("reason"), "dup\xC3\xA9 \"x\"");
    EXPECT_EQ(ParseJsonBody(R"({"period":"2025-11"})", kFields).count("reason"), 0u);
    EXPECT_TRUE(ParseJsonBody("", {{"customer", false}}).empty());  // nothing required: no body is {}
    EXPECT_TRUE(ParseJsonBody(" \r\n", {{"customer", false}}).empty());
}

TEST(JsonBody, EveryMistakeIsA400ThatSaysWhich) {
    EXPECT_EQ(ErrorOf(""), "the body needs field 'period'");
    EXPECT_EQ(ErrorOf("{}"), "the body needs field 'period'");
    EXPECT_EQ(ErrorOf(R"({"period":"2025-11")"),
              "the body is not valid JSON (send one JSON object: {\"field\": \"value\"})");
    EXPECT_EQ(ErrorOf(R"(["2025-11"])"), "the body must be a JSON object");
    EXPECT_EQ(ErrorOf(R"("2025-11")"), "the body must be a JSON object");
    EXPECT_EQ(ErrorOf(R"({"period":"2025-11","colour":"red"})"),
              "unknown field 'colour' in the body (this route takes period, reason)");
    EXPECT_EQ(ErrorOf(R"({"period":202511})"), "field 'period' must be a string");
    EXPECT_EQ(ErrorOf(R"({"period":null})"), "field 'period' must be a string");
    EXPECT_EQ(ErrorOf(R"({"period":{"y":"2025"}})"), "field 'period' must be a string");
    EXPECT_EQ(ErrorOf(R"({"period":"2025-11","period":"2025-12"})"), "field 'period' is given twice in the body");
    EXPECT_EQ(ErrorOf(R"({"period":"a\u0000b"})"), "field 'period' holds a NUL byte");
    EXPECT_EQ(ErrorOf("{\"period\":\"\xFF\"}"),
              "the body is not valid JSON (send one JSON object: {\"field\": \"value\"})");
    EXPECT_EQ(ErrorOf(R"({"period":"2025-11"} {"period":"2025-12"})"),
              "the body is not valid JSON (send one JSON object: {\"field\": \"value\"})");
    EXPECT_EQ(ErrorOf(std::string(100000, '[')),
              "the body is not valid JSON (send one JSON object: {\"field\": \"value\"})");
}

}  // namespace
}  // namespace tally::api
