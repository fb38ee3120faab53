#include "api/request.h"

#include <gtest/gtest.h>

namespace tally::api {
namespace {

// The HttpError a parse throws: status and message; {0, ""} when none.
std::pair<int, std::string> ErrorOf(std::string_view target) {
    try {
        ParseTarget(target);
    } catch (const HttpError& e) {
        return {e.status, e.what()};
    }
    return {0, ""};
}

TEST(ParseTarget, SplitsAndDecodesPathAndQuery) {
    const Target t = ParseTarget("/v1/invoices/INV%2D2026%2D000001?period=2025-11&customer=a+b%20c");
    ASSERT_EQ(t.segments.size(), 3u);
    EXPECT_EQ(t.segments[0], "v1");
    EXPECT_EQ(t.segments[2], "INV-2026-000001");
    ASSERT_EQ(t.query.size(), 2u);
    EXPECT_EQ(t.query[0].first, "period");
    EXPECT_EQ(t.query[0].second, "2025-11");
    EXPECT_EQ(t.query[1].second, "a b c");
    EXPECT_EQ(t.path, "/v1/invoices/INV%2D2026%2D000001");
    EXPECT_TRUE(ParseTarget("/").segments.empty());
    EXPECT_TRUE(ParseTarget("/healthz?").query.empty());
    EXPECT_EQ(ParseTarget("/x?flag").query.at(0).second, "");
    EXPECT_EQ(ParseTarget("/v1/usage?customer=%E5%8D%8E").query.at(0).second, "\xE5\x8D\x8E");
}

TEST(ParseTarget, RefusesWhatItMustWithAClearMessage) {
    EXPECT_EQ(ErrorOf("v1/usage").second, "the request target must start with '/'");
    EXPECT_EQ(ErrorOf("/v1/usage?customer=a%00b").second, "the query contains a NUL byte");
    EXPECT_EQ(ErrorOf("/v1/usage?customer=a%0Ab").second, "the query contains a control character");
    EXPECT_EQ(ErrorOf("/v1/usage?customer=%C3%28").second, "the query is not valid UTF-8");
    EXPECT_EQ(ErrorOf("/v1/usage?customer=%ED%A0%80").second, "the query is not valid UTF-8");  // a surrogate
    EXPECT_EQ(ErrorOf("/v1/usage?customer=%C0%AF").second, "the query is not valid UTF-8");     // overlong '/'
    EXPECT_EQ(ErrorOf("/v1/usage?a=1&a=2").second, "query parameter 'a' is given more than once");
    EXPECT_EQ(ErrorOf("/v1/usage?a=%4").second, "bad percent escape in the query (% needs two hex digits)");
    EXPECT_EQ(ErrorOf("/v1/usage?a=%zz").second, "bad percent escape in the query (% needs two hex digits)");
    EXPECT_EQ(ErrorOf("/v1/invoices/a%2Fb").second, "a path segment must not contain an encoded '/'");
    EXPECT_EQ(ErrorOf("/v1/../x").second, "the path must not contain '.' or '..' segments");
    EXPECT_EQ(ErrorOf("/v1/%2E%2E/x").second, "the path must not contain '.' or '..' segments");
    EXPECT_EQ(ErrorOf("/v1//usage").second, "the path has an empty segment ('//')");
    EXPECT_EQ(ErrorOf("/v1/usage/").second, "the path must not end with '/'");
    EXPECT_EQ(ErrorOf("/v1/usage?a=1&&b=2").second, "the query has an empty parameter ('&&' or a trailing '&')");
    EXPECT_EQ(ErrorOf("/v1/usage?=1").second, "a query parameter has no name");
    EXPECT_EQ(ErrorOf("/v1/usage#x").second, "the request target must not have a fragment");
    EXPECT_EQ(ErrorOf("/v1/us age").second, "the request target holds a character that must be percent-encoded");
    EXPECT_EQ(ErrorOf("/v1/usage?customer=\xE5\x8D\x8E").first, 400);  // raw non-ASCII must be encoded
    EXPECT_EQ(ErrorOf("/v1/usage?customer=" + std::string(kValueMax + 1, 'x')).second,
              "a query is longer than 256 bytes");
    EXPECT_EQ(ErrorOf("/" + std::string(kTargetMax, 'x')).first, 414);
    std::string many = "/v1/usage?";
    for (size_t i = 0; i <= kParametersMax; ++i) many += (i == 0 ? "p" : "&p") + std::to_string(i) + "=1";
    EXPECT_EQ(ErrorOf(many).second, "more than 16 query parameters");
    EXPECT_EQ(ErrorOf("/v1/usage?customer=" + std::string(kValueMax, 'x')).first, 0);  // exactly the bound is fine
}

TEST(ValidUtf8, AcceptsWellFormedAndRefusesTheRest) {
    EXPECT_TRUE(ValidUtf8("plain"));
    EXPECT_TRUE(ValidUtf8("\xE5\x8D\x8E\xE4\xB8\x9C"));  // 华东
    EXPECT_TRUE(ValidUtf8("\xF0\x9F\x98\x80"));          // U+1F600
    EXPECT_FALSE(ValidUtf8("\x80"));
    EXPECT_FALSE(ValidUtf8("\xE5\x8D"));          // truncated
    EXPECT_FALSE(ValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_FALSE(ValidUtf8("\xE0\x80\x80"));      // overlong
    EXPECT_FALSE(ValidUtf8("\xFF"));
}

TEST(ErrorBody, IsTheDocumentedJsonWithEscapes) {
    EXPECT_EQ(
        ErrorBody("bad_request", "period must be a month like 2025-11, not 'x\"y'"),
        "{\"error\":{\"code\":\"bad_request\",\"message\":\"period must be a month like 2025-11, not 'x\\\"y'\"}}");
    EXPECT_EQ(ErrorBody(NotFound().code, NotFound().what()),
              "{\"error\":{\"code\":\"not_found\",\"message\":\"no such resource\"}}");
}

}  // namespace
}  // namespace tally::api

namespace tally::api {
namespace {

TEST(MaskPasswords, HidesEveryUrlPasswordAndNothingElse) {
    EXPECT_EQ(MaskPasswords("connect to postgresql://tally:hunter2@db:5432/x failed; postgres://a:b@c too"),
              "connect to postgresql://tally:***@db:5432/x failed; postgres://a:***@c too");
    EXPECT_EQ(MaskPasswords("postgresql://tally@db/x: no password"), "postgresql://tally@db/x: no password");
    EXPECT_EQ(MaskPasswords("http://host:80/path then a@b"), "http://host:80/path then a@b");
}

}  // namespace
}  // namespace tally::api
