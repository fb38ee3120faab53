#include "base/identifier.h"

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "base/assert.h"

namespace tally {

namespace {

bool IsContinuation(unsigned char b) {
    return (b & 0xC0) == 0x80;
}

// Decodes the UTF-8 character at `s[i]` into `*code`. Returns its length
// in bytes, or 0 when the bytes there are not UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF are not).
size_t DecodeUtf8(std::string_view s, size_t i, char32_t* code) {
    TALLY_ASSERT(i < s.size());
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        *code = b0;
        return 1;
    }
    size_t length = 0;
    unsigned char second_min = 0x80, second_max = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        length = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        length = 3;
        if (b0 == 0xE0) second_min = 0xA0;  // overlong
        if (b0 == 0xED) second_max = 0x9F;  // surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        length = 4;
        if (b0 == 0xF0) second_min = 0x90;  // overlong
        if (b0 == 0xF4) second_max = 0x8F;  // above U+10FFFF
    } else {
        return 0;
    }
    if (s.size() - i < length) return 0;
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b1 < second_min || b1 > second_max) return 0;
    char32_t c = static_cast<char32_t>(b0 & (0xFFu >> (length + 1)));
    for (size_t k = 1; k < length; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if (!IsContinuation(b)) return 0;
        c = (c << 6) | static_cast<char32_t>(b & 0x3Fu);
    }
    *code = c;
    return length;
}

// True when each of the 8 bytes at `p` is printable ASCII (0x20..0x7E):
// the common case, checked a word at a time (bit tricks from "Bit Twiddling
// Hacks": a byte below 0x20, a byte above 0x7E).
bool EightPrintableAscii(const char* p) {
    constexpr uint64_t kOnes = 0x0101010101010101;
    constexpr uint64_t kHigh = 0x8080808080808080;
    uint64_t w = 0;
    std::memcpy(&w, p, sizeof w);
    const uint64_t below_space = (w - 0x20 * kOnes) & ~w & kHigh;
    const uint64_t above_tilde = ((w + kOnes) | w) & kHigh;
    return (below_space | above_tilde) == 0;
}

bool IsControl(char32_t c) {
    return c < 0x20 || (c >= 0x7F && c <= 0x9F);
}

std::string Hex(const char* format, unsigned value) {
    char buf[16];
    std::snprintf(buf, sizeof buf, format, value);
    return buf;
}

}  // namespace

std::string Printable(std::string_view value, size_t bytes_max) {
    std::string out;
    size_t i = 0;
    while (i < value.size()) {
        if (i >= bytes_max) {
            out += "...";
            break;
        }
        char32_t c = 0;
        const size_t n = DecodeUtf8(value, i, &c);
        if (n == 0) {
            out += Hex("\\x%02x", static_cast<unsigned char>(value[i]));
            i += 1;
        } else if (IsControl(c)) {
            out += Hex("\\u%04x", static_cast<unsigned>(c));
            i += n;
        } else {
            out.append(value.substr(i, n));
            i += n;
        }
    }
    return out;
}

size_t FindAsciiControl(std::string_view value) {
    for (size_t i = 0; i < value.size(); ++i) {
        const auto b = static_cast<unsigned char>(value[i]);
        if (b < 0x20 || b == 0x7F) return i;
    }
    return std::string_view::npos;
}

std::optional<std::string> IdentifierError(std::string_view what, std::string_view value) {
    TALLY_ASSERT(!what.empty());
    if (value.empty()) return std::string(what) + " is empty";
    // Built only for a message: the common case allocates nothing.
    auto quoted = [&] { return std::string(what) + " '" + Printable(value) + "'"; };
    if (value.size() > kIdentifierBytesMax) {
        return quoted() + " is " + std::to_string(value.size()) + " bytes long, more than the " +
               std::to_string(kIdentifierBytesMax) + " an identifier may have";
    }
    if (value.size() >= 8) {  // nearly every id: printable ASCII, checked a word at a time
        bool printable = EightPrintableAscii(value.data() + value.size() - 8);
        for (size_t at = 0; printable && at + 8 < value.size(); at += 8) {
            printable = EightPrintableAscii(value.data() + at);
        }
        if (printable) return std::nullopt;
    }
    size_t i = 0;
    while (i < value.size()) {
        const auto b = static_cast<unsigned char>(value[i]);
        if (b >= 0x20 && b < 0x7F) {  // printable ASCII: nearly every byte of every id
            ++i;
            continue;
        }
        char32_t c = 0;
        const size_t n = DecodeUtf8(value, i, &c);
        if (n == 0) {
            return quoted() + " is not valid UTF-8 (byte " + Hex("0x%02x", b) + " at offset " + std::to_string(i) + ")";
        }
        if (IsControl(c)) {
            return quoted() + " holds a control character (" + Hex("U+%04X", static_cast<unsigned>(c)) + " at offset " +
                   std::to_string(i) + "); identifiers are printable text";
        }
        i += n;
    }
    TALLY_ASSERT(i == value.size());
    return std::nullopt;
}

namespace {

bool IsSpaceOrInvisible(char32_t c) {
    if (c == 0x00A0 || c == 0x00AD || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 ||
        c == 0xFEFF) {
        return true;
    }
    return (c >= 0x2000 && c <= 0x200F) || (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x2064);
}

}  // namespace

std::optional<std::string> PathSafeNameError(std::string_view what, std::string_view value) {
    if (auto error = IdentifierError(what, value)) return error;
    TALLY_ASSERT(!value.empty());
    auto quoted = [&] { return std::string(what) + " '" + Printable(value) + "'"; };
    if (value == "." || value == "..") return quoted() + " is a path of its own; a name needs a letter or digit";
    if (value.front() == '.') {
        return quoted() + " starts with a dot, which hides it as a file name; start it with a letter or digit";
    }
    size_t i = 0;
    while (i < value.size()) {
        const auto b = static_cast<unsigned char>(value[i]);
        if (b < 0x80) {
            if (b == '/' || b == '\\' || b == '?' || b == '#' || b == '%' || b == ' ') {
                return quoted() + " holds '" + std::string(1, static_cast<char>(b)) + "' (offset " + std::to_string(i) +
                       "), which a URL path or a file name reads as something else; use letters, digits, '-', '_' "
                       "or '.'";
            }
            ++i;
            continue;
        }
        char32_t c = 0;
        const size_t n = DecodeUtf8(value, i, &c);
        TALLY_ASSERT(n > 0);  // IdentifierError has checked the UTF-8
        if (IsSpaceOrInvisible(c)) {
            return quoted() + " holds an invisible or space character (" + Hex("U+%04X", static_cast<unsigned>(c)) +
                   " at offset " + std::to_string(i) + "); names that look the same must be the same";
        }
        i += n;
    }
    return std::nullopt;
}

std::optional<std::string> Utf8Error(std::string_view what, std::string_view value) {
    TALLY_ASSERT(!what.empty());
    size_t i = 0;
    while (i < value.size()) {
        const auto b = static_cast<unsigned char>(value[i]);
        if (b == 0) {
            return std::string(what) + " '" + Printable(value) + "' holds a NUL byte at offset " + std::to_string(i);
        }
        if (b < 0x80) {
            ++i;
            continue;
        }
        char32_t c = 0;
        const size_t n = DecodeUtf8(value, i, &c);
        if (n == 0) {
            return std::string(what) + " '" + Printable(value) + "' is not valid UTF-8 (byte " + Hex("0x%02x", b) +
                   " at offset " + std::to_string(i) + ")";
        }
        i += n;
    }
    return std::nullopt;
}

}  // namespace tally
