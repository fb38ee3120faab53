// The pure half of `tally serve`: a request target as the server reads it
// (path segments and query parameters, percent-decoded and checked), the
// HTTP errors the API answers with, and their JSON bodies. No I/O.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tally::api {

// Bounds on a request target (docs/api.md, "Limits").
inline constexpr size_t kTargetMax = 2048;    // bytes of the raw target
inline constexpr size_t kValueMax = 256;      // bytes of one decoded segment, name or value
inline constexpr size_t kParametersMax = 16;  // query parameters

// An error the API answers with: status, a stable code and a message for
// people. Thrown by the parsers and handlers; the server turns it into a
// response with ErrorBody.
struct HttpError : std::runtime_error {
    HttpError(int status_in, std::string code_in, const std::string& message)
        : std::runtime_error(message), status(status_in), code(std::move(code_in)) {}
    int status;
    std::string code;  // "bad_request", "not_found", ...
    std::vector<std::pair<std::string, std::string>> headers;  // besides the common ones (Allow on a 405)
};
HttpError BadRequest(const std::string& message);  // 400 bad_request
HttpError NotFound();                              // 404 not_found, one message for every missing thing

// {"error":{"code":"bad_request","message":"..."}} with both strings escaped.
std::string ErrorBody(std::string_view code, std::string_view message);
// The reason phrase of a status ("Not Found").
std::string_view StatusText(int status);

struct Target {
    std::vector<std::string> segments;                       // decoded; "/v1/usage" is {"v1", "usage"}; "/" is {}
    std::vector<std::pair<std::string, std::string>> query;  // decoded, in order, names unique
    std::string path;                                        // the raw path (before '?'), for logs: never the query
};

// Parses an origin-form request target ("/v1/usage?from=2025-11-01").
// Throws HttpError 400 for: not starting with '/', longer than kTargetMax,
// a fragment, a bad percent escape, a decoded NUL or other control
// character, invalid UTF-8, an empty or over-long segment or parameter
// name, a '/' decoded inside a segment, "." or ".." segments, a parameter
// given twice, more than kParametersMax parameters. '+' in the query is a
// space. A trailing '/' is not allowed ("/v1/usage/"), except "/" itself.
Target ParseTarget(std::string_view target);

// `text` with the password of any "scheme://user:password@" replaced by
// *** (for the log: a database error may quote its connection URL).
std::string MaskPasswords(std::string text);

// True when `s` is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool ValidUtf8(std::string_view s);

}  // namespace tally::api
