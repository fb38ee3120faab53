// Identifiers that enter Tally from outside (customer ids, plan names and
// versions, an event's source, id and model) and end up as PostgreSQL text,
// in keys and on invoices. One rule for all of them, checked where they
// enter: 1 to kIdentifierBytesMax bytes of valid UTF-8 without control
// characters. A NUL would be cut off by libpq (renaming another customer);
// other control characters make ids that print the same but differ.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tally {

inline constexpr size_t kIdentifierBytesMax = 256;

// nullopt when `value` is a fine identifier. Otherwise a sentence that
// starts with `what` ("customer id", "field 'subject'") and says what is
// wrong: empty, longer than kIdentifierBytesMax bytes, not valid UTF-8, or
// holding a control character (C0 U+0000-U+001F, DEL U+007F, C1
// U+0080-U+009F). The value appears in it only through Printable.
std::optional<std::string> IdentifierError(std::string_view what, std::string_view value);

// IdentifierError's rule, and also safe as one segment of a URL path and as
// a file name: for names that publishing turns into both (plan names and
// version ids: GET /v1/plans/{plan}, exported files). Refuses, besides what
// IdentifierError refuses, "." and "..", a leading dot, '/', '\\', '?', '#',
// '%', whitespace (ASCII and U+00A0, U+2000-U+200A, U+2028, U+2029, U+202F,
// U+205F, U+3000), and invisible format characters (U+00AD, U+200B-U+200F,
// U+202A-U+202E, U+2060-U+2064, U+FEFF), which make names that look the
// same but differ. Customer ids, event ids and model names keep
// IdentifierError alone.
std::optional<std::string> PathSafeNameError(std::string_view what, std::string_view value);

// nullopt when `value` is valid UTF-8 (RFC 3629, as for identifiers) without
// NUL; otherwise a sentence that starts with `what` ("reason") and says where
// the first bad byte is. For free text that goes to PostgreSQL (names,
// addresses, reasons), which refuses such bytes with a message of its own.
std::optional<std::string> Utf8Error(std::string_view what, std::string_view value);

// The byte offset of the first C0 control character or DEL in `value`, or
// npos. For free text that may hold anything else (a project name).
size_t FindAsciiControl(std::string_view value);

// `value` made safe to quote in a message, a log line or a PostgreSQL text
// column: control characters become \u00XX, bytes that are not UTF-8 \xXX,
// and only the first kPrintableBytesMax bytes are shown, followed by "...".
inline constexpr size_t kPrintableBytesMax = 64;
std::string Printable(std::string_view value, size_t bytes_max = kPrintableBytesMax);

// A whole text (a dead letter's reason) made safe the same way, without
// shortening: what is stored is then always valid UTF-8 without NUL, so no
// message can make the ledger refuse its dead letter. Idempotent.
inline std::string SafeText(std::string_view value) {
    return Printable(value, value.size());
}

}  // namespace tally
