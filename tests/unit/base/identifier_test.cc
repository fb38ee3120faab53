#include "base/identifier.h"

#include <gtest/gtest.h>

#include <string>

namespace tally {
namespace {

std::string Error(std::string_view value) {
    return IdentifierError("customer id", value).value_or("");
}

TEST(IdentifierError, AcceptsPrintableUtf8UpToTheMaximumLength) {
    for (std::string_view fine : {"cust_42", "a", "gw-cn-north-1", "客户 华东", "doubao-seed-1.6", "a b", "😀", "é"}) {
        EXPECT_EQ(IdentifierError("customer id", fine), std::nullopt) << fine;
    }
    EXPECT_EQ(IdentifierError("customer id", std::string(kIdentifierBytesMax, 'a')), std::nullopt);
    EXPECT_EQ(IdentifierError("customer id", std::string(kIdentifierBytesMax - 3, 'a') + "客"), std::nullopt);
}

TEST(IdentifierError, RefusesAnEmptyValue) {
    EXPECT_EQ(Error(""), "customer id is empty");
}

TEST(IdentifierError, RefusesAValueLongerThanTheMaximum) {
    static_assert(kIdentifierBytesMax == 256);
    EXPECT_EQ(Error(std::string(257, 'a')), "customer id '" + std::string(64, 'a') +
                                                "...' is 257 bytes long, more than the 256 an identifier may have");
    // Bytes count, not characters: 255 + a 2-byte character is 257 bytes.
    EXPECT_NE(Error(std::string(255, 'a') + "é").find("257 bytes long"), std::string::npos);
}

TEST(IdentifierError, RefusesControlCharactersC0DelAndC1) {
    EXPECT_EQ(
        Error(std::string("a\0evil", 6)),
        R"(customer id 'a\u0000evil' holds a control character (U+0000 at offset 1); identifiers are printable text)");
    EXPECT_EQ(Error("\x1f"),
              R"(customer id '\u001f' holds a control character (U+001F at offset 0); identifiers are printable text)");
    EXPECT_NE(Error("tab\there").find("U+0009 at offset 3"), std::string::npos);
    EXPECT_NE(Error("new\nline").find("U+000A"), std::string::npos);
    EXPECT_NE(Error("del\x7f").find("U+007F at offset 3"), std::string::npos);
    EXPECT_NE(Error("c1\xc2\x80").find("U+0080 at offset 2"), std::string::npos);
    EXPECT_NE(Error("c1\xc2\x9f").find("U+009F"), std::string::npos);
    EXPECT_EQ(Error("after c1 \xc2\xa0"), "");  // U+00A0 (no-break space) is not a control character
}

TEST(IdentifierError, RefusesBytesThatAreNotUtf8) {
    EXPECT_EQ(Error("a\xff"), R"(customer id 'a\xff' is not valid UTF-8 (byte 0xff at offset 1))");
    for (std::string bad : {"\xc0\x80",          // overlong NUL
                            "\xe0\x80\xaf",      // overlong '/'
                            "\xed\xa0\x80",      // surrogate U+D800
                            "\xf4\x90\x80\x80",  // above U+10FFFF
                            "\xe5\xae",          // cut short
                            "\x80",              // a lone continuation byte
                            "\xe5"
                            "a"
                            "\xa2"}) {  // a lead byte without its continuation
        EXPECT_NE(Error(bad).find("is not valid UTF-8"), std::string::npos) << Error(bad);
    }
}

TEST(IdentifierError, NamesWhatWasChecked) {
    EXPECT_EQ(IdentifierError("field 'subject'", "").value_or(""), "field 'subject' is empty");
    EXPECT_EQ(IdentifierError("plan name", "p\x01").value_or("").substr(0, 15), "plan name 'p\\u0");
}

TEST(Printable, EscapesControlsAndBadBytesAndCutsLongValues) {
    EXPECT_EQ(Printable("cust_42 华东"), "cust_42 华东");
    EXPECT_EQ(Printable(std::string("a\0b\x7f\xc2\x85\xff", 7)), R"(a\u0000b\u007f\u0085\xff)");
    EXPECT_EQ(Printable(std::string(100, 'x')), std::string(kPrintableBytesMax, 'x') + "...");
    EXPECT_EQ(Printable(std::string(kPrintableBytesMax, 'x')), std::string(kPrintableBytesMax, 'x'));
    // A character is never cut in half.
    std::string text = std::string(kPrintableBytesMax - 1, 'x') + "华";
    EXPECT_EQ(Printable(text + "tail"), text + "...");
}

TEST(Utf8Error, AcceptsAnyValidUtf8TextWithControls) {
    for (std::string_view fine : {"", "billing address was wrong", "客户要求\n重开", "tab\there", "😀 é \x7f"}) {
        EXPECT_EQ(Utf8Error("reason", fine), std::nullopt) << fine;
    }
}

TEST(Utf8Error, RefusesBadBytesAndNulWithWhere) {
    EXPECT_EQ(Utf8Error("reason", "ok\xff"), R"(reason 'ok\xff' is not valid UTF-8 (byte 0xff at offset 2))");
    EXPECT_EQ(Utf8Error("--name", "\xc0\xaf"), R"(--name '\xc0\xaf' is not valid UTF-8 (byte 0xc0 at offset 0))");
    EXPECT_NE(Utf8Error("reason", "\xed\xa0\x80").value_or("").find("byte 0xed at offset 0"), std::string::npos);
    EXPECT_NE(Utf8Error("reason", "\xe5\xae").value_or("").find("not valid UTF-8"), std::string::npos);  // cut short
    EXPECT_EQ(Utf8Error("reason", std::string("a\0b", 3)), R"(reason 'a\u0000b' holds a NUL byte at offset 1)");
}

TEST(FindAsciiControl, FindsC0AndDelOnly) {
    EXPECT_EQ(FindAsciiControl("search-bot 搜索"), std::string_view::npos);
    EXPECT_EQ(FindAsciiControl(std::string("ab\0", 3)), 2u);
    EXPECT_EQ(FindAsciiControl("x\x7f"), 1u);
    EXPECT_EQ(FindAsciiControl("\xc2\x85"), std::string_view::npos);
}

}  // namespace
}  // namespace tally
