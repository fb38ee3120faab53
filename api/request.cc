#include "api/request.h"

#include <algorithm>

#include "billing/invoice_document.h"

namespace tally::api {

HttpError BadRequest(const std::string& message) {
    return HttpError(400, "bad_request", message);
}

HttpError NotFound() {
    return HttpError(404, "not_found", "no such resource");
}

std::string ErrorBody(std::string_view code, std::string_view message) {
    return "{\"error\":{\"code\":" + billing::JsonQuote(code) + ",\"message\":" + billing::JsonQuote(message) + "}}";
}

std::string_view StatusText(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 409: return "Conflict";
        case 408: return "Request Timeout";
        case 413: return "Payload Too Large";
        case 414: return "URI Too Long";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        default: return "Error";
    }
}

std::string MaskPasswords(std::string text) {
    size_t from = 0;
    while ((from = text.find("://", from)) != std::string::npos) {
        from += 3;
        const size_t at = text.find('@', from);
        const size_t colon = text.find(':', from);
        const size_t end = text.find_first_of(" /\t\n", from);
        if (at == std::string::npos || colon == std::string::npos || colon > at ||
            (end != std::string::npos && end < at)) {
            continue;
        }
        text.replace(colon + 1, at - colon - 1, "***");
    }
    return text;
}

bool ValidUtf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t n = 0;
        uint32_t cp = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07u;
        } else {
            return false;  // continuation byte first, 0xC0/0xC1 overlongs, > 0xF4
        }
        if (s.size() - i <= n) return false;
        for (size_t k = 1; k <= n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0u) != 0x80u) return false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if (n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return false;
        if (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) return false;
        i += n + 1;
    }
    return true;
}

namespace {

int HexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decodes one component; `what` names it in errors.
std::string Decode(std::string_view raw, bool plus_is_space, std::string_view what) {
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
        const char c = raw[i];
        if (c == '%') {
            if (raw.size() - i < 3) {
                throw BadRequest("bad percent escape in the " + std::string(what) + " (% needs two hex digits)");
            }
            const int hi = HexValue(raw[i + 1]), lo = HexValue(raw[i + 2]);
            if (hi < 0 || lo < 0) {
                throw BadRequest("bad percent escape in the " + std::string(what) + " (% needs two hex digits)");
            }
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    for (const char c : out) {
        const auto u = static_cast<unsigned char>(c);
        if (u == 0) throw BadRequest("the " + std::string(what) + " contains a NUL byte");
        if (u < 0x20 || u == 0x7F) throw BadRequest("the " + std::string(what) + " contains a control character");
    }
    if (!ValidUtf8(out)) throw BadRequest("the " + std::string(what) + " is not valid UTF-8");
    if (out.size() > kValueMax) {
        throw BadRequest("a " + std::string(what) + " is longer than " + std::to_string(kValueMax) + " bytes");
    }
    return out;
}

// The raw bytes a target may hold (RFC 3986 pchar, '/', '?', '%'); others
// (space, quotes, '<', non-ASCII) must be percent-encoded.
bool AllowedRaw(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F) return false;
    return std::string_view("\"<>\\^`{|}#").find(c) == std::string_view::npos;
}

}  // namespace

Target ParseTarget(std::string_view target) {
    if (target.empty() || target.front() != '/') throw BadRequest("the request target must start with '/'");
    if (target.size() > kTargetMax) {
        throw HttpError(414, "uri_too_long",
                        "the request target is longer than " + std::to_string(kTargetMax) + " bytes");
    }
    if (target.find('#') != std::string_view::npos) throw BadRequest("the request target must not have a fragment");
    for (const char c : target) {
        if (!AllowedRaw(c)) throw BadRequest("the request target holds a character that must be percent-encoded");
    }
    Target t;
    const size_t q = target.find('?');
    const std::string_view path = target.substr(0, q);
    t.path = std::string(path);
    if (path != "/") {
        if (path.back() == '/') throw BadRequest("the path must not end with '/'");
        size_t begin = 1;
        while (begin <= path.size()) {
            size_t end = path.find('/', begin);
            if (end == std::string_view::npos) end = path.size();
            const std::string_view raw = path.substr(begin, end - begin);
            if (raw.empty()) throw BadRequest("the path has an empty segment ('//')");
            std::string seg = Decode(raw, false, "path");
            if (seg.find('/') != std::string::npos) throw BadRequest("a path segment must not contain an encoded '/'");
            if (seg == "." || seg == "..") throw BadRequest("the path must not contain '.' or '..' segments");
            t.segments.push_back(std::move(seg));
            begin = end + 1;
        }
    }
    if (q == std::string_view::npos) return t;
    std::string_view query = target.substr(q + 1);
    if (query.empty()) return t;
    size_t begin = 0;
    while (begin <= query.size()) {
        size_t end = query.find('&', begin);
        if (end == std::string_view::npos) end = query.size();
        const std::string_view pair = query.substr(begin, end - begin);
        begin = end + 1;
        if (pair.empty()) throw BadRequest("the query has an empty parameter ('&&' or a trailing '&')");
        const size_t eq = pair.find('=');
        std::string name = Decode(pair.substr(0, eq), true, "query parameter name");
        std::string value = eq == std::string_view::npos ? std::string() : Decode(pair.substr(eq + 1), true, "query");
        if (name.empty()) throw BadRequest("a query parameter has no name");
        if (std::any_of(t.query.begin(), t.query.end(), [&](const auto& p) { return p.first == name; })) {
            throw BadRequest("query parameter '" + name + "' is given more than once");
        }
        if (t.query.size() == kParametersMax) {
            throw BadRequest("more than " + std::to_string(kParametersMax) + " query parameters");
        }
        t.query.emplace_back(std::move(name), std::move(value));
    }
    return t;
}

}  // namespace tally::api
