// Private to pricing: reading typed values out of yaml-cpp nodes while
// collecting every problem with its line and column, so that one run of
// `tally plan validate` reports all of them.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/identifier.h"
#include "pricing/decimal.h"
#include "pricing/diagnostic.h"
#include "pricing/time.h"

namespace tally::internal {

// nullopt when `value` has no C0 control character or DEL; otherwise a
// sentence that starts with `what` and shows the value through Printable.
// For free text that becomes PostgreSQL text (a customer's name): libpq
// ends a parameter at a NUL, and the others print as something else.
// YAML nested deeper than this in flow style ([ and {) is refused before
// it is parsed: yaml-cpp's memory grows steeply with depth (1 MiB of '['
// takes hundreds of MB). No plan, cost card or subscription needs more than
// a handful of levels.
inline constexpr int kMaxFlowDepth = 64;

// A diagnostic for `text` when its flow collections nest deeper than
// kMaxFlowDepth, pointing at the bracket that goes too deep. Quoted scalars
// and comments are skipped; a bracket inside a block scalar is counted (a
// false alarm needs 64 of them, unclosed).
inline std::optional<Diagnostic> TooDeeplyNested(std::string_view text, std::string_view file) {
    int depth = 0, line = 1, column = 0;
    char quote = 0;
    bool comment = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        ++column;
        if (c == '\n') {
            ++line;
            column = 0;
            comment = false;
            continue;
        }
        if (comment) continue;
        if (quote != 0) {
            if (quote == '"' && c == '\\') {
                ++i;
                ++column;
            } else if (c == quote) {
                if (quote == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
                    ++i;
                    ++column;
                } else {
                    quote = 0;
                }
            }
            continue;
        }
        if (c == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n')) {
            comment = true;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '[' || c == '{') {
            if (++depth > kMaxFlowDepth) {
                return Diagnostic{std::string(file), line, column,
                                  "nested more than " + std::to_string(kMaxFlowDepth) + " levels deep in [ ] or { }"};
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return std::nullopt;
}

inline std::optional<std::string> ControlCharacterError(std::string_view what, std::string_view value) {
    const size_t at = FindAsciiControl(value);
    if (at == std::string_view::npos) return std::nullopt;
    static constexpr char kHex[] = "0123456789ABCDEF";
    const auto b = static_cast<unsigned char>(value[at]);
    return std::string(what) + " '" + Printable(value) + "' holds a control character (U+00" + kHex[b >> 4] +
           kHex[b & 0xF] + " at offset " + std::to_string(at) + "); names are printable text";
}

// Thrown by YamlReader once a file has kMaxProblems problems (the last
// diagnostic says so): a hostile file could otherwise make millions (YAML
// aliases repeat a broken table). The parse entry points catch it and
// return nullopt with the diagnostics so far.
struct TooManyProblems : YAML::Exception {
    TooManyProblems() : YAML::Exception(YAML::Mark::null_mark(), "too many problems") {}
};

class YamlReader {
   public:
    static constexpr int kMaxProblems = 100;

    YamlReader(std::string file, Diagnostics* diagnostics) : file_(std::move(file)), diagnostics_(diagnostics) {}

    const std::string& file() const { return file_; }
    int errors() const { return errors_; }

    void Error(const YAML::Node& node, std::string message) {
        Diagnostic d{file_, 0, 0, std::move(message)};
        if (node.IsDefined() && node.Mark().line >= 0) {
            d.line = node.Mark().line + 1;
            d.column = node.Mark().column + 1;
        }
        diagnostics_->push_back(std::move(d));
        Counted();
    }
    // A warning: reported with its place, but the file stays usable. Not
    // counted against kMaxProblems' errors (a file has few warnings; a
    // flood of them is capped at kMaxProblems too).
    void Warn(const YAML::Node& node, std::string message) {
        if (warnings_ >= kMaxProblems) return;
        ++warnings_;
        Diagnostic d{file_, 0, 0, std::move(message), Severity::kWarning};
        if (node.IsDefined() && node.Mark().line >= 0) {
            d.line = node.Mark().line + 1;
            d.column = node.Mark().column + 1;
        }
        diagnostics_->push_back(std::move(d));
    }
    void ErrorAt(const YAML::Mark& mark, std::string message) {
        diagnostics_->push_back({file_, mark.line + 1, mark.column + 1, std::move(message)});
        Counted();
    }

    // parent[key] when present; otherwise reports "missing key" at parent.
    YAML::Node Required(const YAML::Node& parent, const char* key, std::string_view what) {
        if (parent.IsMap()) {
            YAML::Node child = parent[key];
            if (child.IsDefined() && !child.IsNull()) return child;
        }
        Error(parent, std::string(what) + " needs '" + key + "'");
        return YAML::Node(YAML::NodeType::Undefined);
    }
    static YAML::Node Optional(const YAML::Node& parent, const char* key) {
        if (!parent.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
        YAML::Node child = parent[key];
        if (!child.IsDefined() || child.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
        return child;
    }

    // Reports keys of a mapping not in `allowed`.
    bool ExpectMap(const YAML::Node& node, std::string_view what) {
        if (!node.IsMap()) {
            Error(node, std::string(what) + " must be a mapping of keys to values");
            return false;
        }
        return true;
    }
    void CheckKeys(const YAML::Node& node, std::string_view what, std::initializer_list<std::string_view> allowed) {
        if (!node.IsMap()) return;
        for (auto it = node.begin(); it != node.end(); ++it) {
            std::string key = it->first.Scalar();
            bool ok = false;
            for (auto a : allowed) ok = ok || key == a;
            if (!ok) {
                std::string list;
                for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
                ErrorAt(it->first.Mark(),
                        "unknown key '" + key + "' in " + std::string(what) + "; expected one of: " + list);
            }
        }
    }

    // Every getter returns nullopt quietly for an absent node (Required has
    // already said so) and reports anything else that is wrong.
    std::optional<std::string> Text(const YAML::Node& node, std::string_view what) {
        if (!node.IsDefined()) return std::nullopt;
        if (!node.IsScalar()) {
            Error(node, std::string(what) + " must be a single value, not a list or mapping");
            return std::nullopt;
        }
        return node.Scalar();
    }

    // A name that becomes a key in the ledger (customer id, plan name,
    // version id): Text that also passes IdentifierError.
    std::optional<std::string> Identifier(const YAML::Node& node, std::string_view what) {
        auto text = Text(node, what);
        if (!text) return std::nullopt;
        if (auto error = IdentifierError(what, *text)) {
            Error(node, std::move(*error));
            return std::nullopt;
        }
        return text;
    }

    // Free text that ends up in PostgreSQL (a customer's name): Text
    // without C0 control characters or DEL, which libpq would cut at (NUL)
    // or which print as something else.
    std::optional<std::string> PrintableText(const YAML::Node& node, std::string_view what) {
        auto text = Text(node, what);
        if (!text) return std::nullopt;
        if (auto error = ControlCharacterError(what, *text)) {
            Error(node, std::move(*error));
            return std::nullopt;
        }
        return text;
    }

    // A list of identifiers (unit names). Absent: nothing.
    void IdentifierList(const YAML::Node& node, std::string_view what, std::vector<std::string>* out) {
        if (!node.IsDefined()) return;
        if (!node.IsSequence()) {
            Error(node, std::string(what) + "s must be a list");
            return;
        }
        for (const auto& item : node) {
            if (auto t = Identifier(item, what)) out->push_back(*t);
        }
    }

    // A list of single values (model names, unit names). Absent: nothing.
    void TextList(const YAML::Node& node, std::string_view what, std::vector<std::string>* out) {
        if (!node.IsDefined()) return;
        if (!node.IsSequence()) {
            Error(node, std::string(what) + " must be a list");
            return;
        }
        for (const auto& item : node) {
            if (auto t = Text(item, what)) out->push_back(*t);
        }
    }

    std::optional<Decimal> Number(const YAML::Node& node, std::string_view what) {
        auto text = Text(node, what);
        if (!text) return std::nullopt;
        auto d = Decimal::Parse(*text);
        if (!d) Error(node, std::string(what) + ": " + Decimal::ParseError(*text));
        return d;
    }

    std::optional<Decimal> NonNegative(const YAML::Node& node, std::string_view what) {
        auto d = Number(node, what);
        if (d && d->is_negative()) {
            Error(node, std::string(what) + " is negative (" + d->ToString() + "); it must be 0 or more");
            return std::nullopt;
        }
        return d;
    }

    std::optional<int64_t> Integer(const YAML::Node& node, std::string_view what, int64_t min_value) {
        auto d = Number(node, what);
        if (!d) return std::nullopt;
        if (!d->is_integer()) {
            Error(node, std::string(what) + " must be a whole number, not " + d->ToString());
            return std::nullopt;
        }
        int128 v = d->raw() / Decimal::kOne;
        if (v < min_value || v > std::numeric_limits<int64_t>::max()) {
            Error(node,
                  std::string(what) + " must be at least " + std::to_string(min_value) + ", not " + d->ToString());
            return std::nullopt;
        }
        return static_cast<int64_t>(v);
    }

    std::optional<bool> Bool(const YAML::Node& node, std::string_view what) {
        auto text = Text(node, what);
        if (!text) return std::nullopt;
        if (*text == "true" || *text == "yes") return true;
        if (*text == "false" || *text == "no") return false;
        Error(node, std::string(what) + " must be true or false, not '" + *text + "'");
        return std::nullopt;
    }

    std::optional<Instant> Time(const YAML::Node& node, std::string_view what) {
        auto text = Text(node, what);
        if (!text) return std::nullopt;
        auto t = ParseRfc3339(*text);
        if (!t) {
            Error(node, std::string(what) + " '" + *text +
                            "' is not an RFC 3339 instant like 2025-09-05T16:00:00Z or 2025-09-06T00:00:00+08:00");
        }
        return t;
    }

    // One of `choices`, returned as its index.
    std::optional<size_t> Choice(const YAML::Node& node, std::string_view what,
                                 std::initializer_list<std::string_view> choices) {
        auto text = Text(node, what);
        if (!text) return std::nullopt;
        size_t i = 0;
        std::string list;
        for (auto c : choices) {
            if (*text == c) return i;
            list += (list.empty() ? "" : ", ") + std::string(c);
            ++i;
        }
        Error(node, std::string(what) + " '" + *text + "' is not one of: " + list);
        return std::nullopt;
    }

   private:
    std::string file_;
    Diagnostics* diagnostics_;
    int errors_ = 0;
    int warnings_ = 0;

    void Counted() {
        if (++errors_ < kMaxProblems) return;
        diagnostics_->push_back({file_, 0, 0,
                                 "stopped after " + std::to_string(kMaxProblems) +
                                     " problems; fix these and validate again"});
        throw TooManyProblems();
    }
};

}  // namespace tally::internal
