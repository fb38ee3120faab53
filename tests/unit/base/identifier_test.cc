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

// Plan names and version ids: also one URL path segment and a file name.
TEST(PathSafeNameError, AcceptsNamesOfRealPlansAndVersions) {
    for (const char* ok : {"deepseek", "qwen-plus", "2025-09-v3.1", "v2.0_rc1", "豆包-seed", "a..b", "x:y"}) {
        EXPECT_EQ(PathSafeNameError("plan name", ok), std::nullopt) << ok;
    }
}

TEST(PathSafeNameError, RefusesPathsDotsSeparatorsAndInvisibleCharacters) {
    EXPECT_EQ(PathSafeNameError("plan name", "a/b"),
              "plan name 'a/b' holds '/' (offset 1), which a URL path or a file name reads as something else; use "
              "letters, digits, '-', '_' or '.'");
    EXPECT_EQ(PathSafeNameError("version id", ".."),
              "version id '..' is a path of its own; a name needs a letter or digit");
    EXPECT_EQ(PathSafeNameError("version id", "."),
              "version id '.' is a path of its own; a name needs a letter or digit");
    EXPECT_EQ(PathSafeNameError("plan name", ".env"),
              "plan name '.env' starts with a dot, which hides it as a file name; start it with a letter or digit");
    for (const char* bad : {"a\\b", "a?b", "a#b", "a%2fb", "a b"}) {
        EXPECT_NE(PathSafeNameError("plan name", bad).value_or("").find("URL path or a file name"), std::string::npos)
            << bad;
    }
    // Zero-width space, word joiner, BOM, right-to-left override, no-break
    // and ideographic spaces: names that look the same but differ.
    for (const char* bad : {"v\xE2\x80\x8Bz", "v\xE2\x81\xA0z", "\xEF\xBB\xBFvz", "v\xE2\x80\xAEz", "v\xC2\xA0z",
                            "v\xE3\x80\x80z", "v\xC2\xADz"}) {
        EXPECT_NE(PathSafeNameError("version id", bad).value_or("").find("invisible or space character"),
                  std::string::npos)
            << Printable(bad);
    }
    EXPECT_EQ(PathSafeNameError("version id", "v\xE2\x80\x8Bz"),
              "version id 'v\xE2\x80\x8Bz' holds an invisible or space character (U+200B at offset 1); names that "
              "look the same must be the same");
    // IdentifierError's rule still holds first.
    EXPECT_EQ(PathSafeNameError("plan name", ""), "plan name is empty");
    EXPECT_NE(PathSafeNameError("plan name", "a\tb").value_or("").find("control character"), std::string::npos);
}

TEST(FindAsciiControl, FindsC0AndDelOnly) {
    EXPECT_EQ(FindAsciiControl("search-bot 搜索"), std::string_view::npos);
    EXPECT_EQ(FindAsciiControl(std::string("ab\0", 3)), 2u);
    EXPECT_EQ(FindAsciiControl("x\x7f"), 1u);
    EXPECT_EQ(FindAsciiControl("\xc2\x85"), std::string_view::npos);
}

}  // namespace
}  // namespace tally
