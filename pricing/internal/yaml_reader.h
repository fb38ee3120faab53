// Private to pricing: reading typed values out of yaml-cpp nodes while
// collecting every problem with its line and column, so that one run of
// `tally plan validate` reports all of them.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
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
    int errors() const { return errors_ + unsaid_; }

    // An error without a place (a node that is absent, or made by the
    // parser) after another error is a follow-on of it (a band whose bound
    // could not be read compared with the next one): counted, not said.
    void Error(const YAML::Node& node, std::string message) {
        Diagnostic d{file_, 0, 0, std::move(message)};
        if (node.IsDefined() && node.Mark().line >= 0) {
            d.line = node.Mark().line + 1;
            d.column = node.Mark().column + 1;
        }
        Report(std::move(d));
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
        Diagnostic d{file_, 0, 0, std::move(message)};
        if (mark.line >= 0) {
            d.line = mark.line + 1;
            d.column = mark.column + 1;
        }
        Report(std::move(d));
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

    // A plan name or version id: Identifier that is also safe in a URL path
    // and as a file name (PathSafeNameError).
    std::optional<std::string> PathSafeName(const YAML::Node& node, std::string_view what) {
        auto text = Text(node, what);
        if (!text) return std::nullopt;
        if (auto error = PathSafeNameError(what, *text)) {
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
        if (auto hint = AbbreviatedCountHint(node)) {
            Error(node, std::string(what) + " '" + node.Scalar() + "' is not a whole number: counts and bounds are " +
                            "whole token counts, written out in full (" + *hint + ")");
            return std::nullopt;
        }
        if (LooksLikeAWrittenOutCount(node)) {
            Error(node, std::string(what) + " '" + node.Scalar() + "' is not a whole number: counts and bounds are " +
                            "whole token counts written with digits only (no K, M or B suffix, no thousands "
                            "separators, no exponent): e.g. 200 for 0.2K, 32000 for 32,000, 1000000 for 1e6");
            return std::nullopt;
        }
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
    // A count written as a sheet or a person writes it but not as a plain
    // integer: "0.2K", "1B", "32,000", "1e6", "1_000" (digits with a
    // suffix, separators or an exponent).
    static bool LooksLikeAWrittenOutCount(const YAML::Node& node) {
        if (!node.IsDefined() || !node.IsScalar()) return false;
        std::string text = node.Scalar();
        if (text.empty() || text.size() > 40 || text[0] < '0' || text[0] > '9') return false;
        const char last = text.back();
        const bool suffix = last == 'K' || last == 'k' || last == 'M' || last == 'm' || last == 'B' || last == 'b';
        if (suffix) text.pop_back();
        bool other = suffix;
        for (char c : text) {
            if (c >= '0' && c <= '9') continue;
            if (c == ',' || c == '_' || c == 'e' || c == 'E') {
                other = true;
                continue;
            }
            if (c == '.' || c == '+') continue;
            return false;
        }
        return other;
    }

    // "write 32000 or 32768" for a count written like a sheet's "32K" (a
    // whole number with a K or M suffix); nullopt for anything else.
    static std::optional<std::string> AbbreviatedCountHint(const YAML::Node& node) {
        if (!node.IsDefined() || !node.IsScalar()) return std::nullopt;
        const std::string& text = node.Scalar();
        if (text.size() < 2 || text.size() > 10) return std::nullopt;
        const char suffix = text.back();
        int64_t decimal = 0, binary = 0;
        if (suffix == 'K' || suffix == 'k') {
            decimal = 1000;
            binary = 1024;
        } else if (suffix == 'M' || suffix == 'm') {
            decimal = 1'000'000;
            binary = 1'048'576;
        } else {
            return std::nullopt;
        }
        int64_t n = 0;
        for (size_t i = 0; i + 1 < text.size(); ++i) {
            if (text[i] < '0' || text[i] > '9') return std::nullopt;
            n = n * 10 + (text[i] - '0');
        }
        return "write " + std::to_string(n * decimal) + " or " + std::to_string(n * binary) +
               ", whichever the sheet means";
    }

    std::string file_;
    Diagnostics* diagnostics_;
    int errors_ = 0;
    int warnings_ = 0;
    int unsaid_ = 0;  // follow-on errors without a place (Report)

    void Report(Diagnostic d) {
        if (d.line == 0 && errors_ > 0) {
            ++unsaid_;  // still an error: the file stays refused
            return;
        }
        diagnostics_->push_back(std::move(d));
        Counted();
    }

    void Counted() {
        if (++errors_ < kMaxProblems) return;
        diagnostics_->push_back(
            {file_, 0, 0, "stopped after " + std::to_string(kMaxProblems) + " problems; fix these and validate again"});
        throw TooManyProblems();
    }
};

// Reads the one YAML document of `text` for a parser, with what yaml-cpp
// 0.7 lets pass silently refused or done:
//  - text nested too deeply (TooDeeplyNested) or not YAML: one diagnostic;
//  - a second document (after ---): an error at its start;
//  - a key given twice in one mapping (yaml-cpp keeps both, and a lookup
//    finds the first): an error at the second;
//  - merge keys (`<<: *anchor`, or `<<: [*a, *b]`): expanded in place, as
//    YAML 1.1 defines them (keys written in the mapping win, then the
//    merged mappings in the order listed). Merged entries share their
//    nodes, so lines and columns still point at the anchor's text; at most
//    kMaxMergedEntries are added in all (a chain of merges cannot blow up).
// nullopt when anything is wrong, with every problem in `diagnostics`.
inline constexpr size_t kMaxMergedEntries = 100'000;

class DocumentCheck {
   public:
    DocumentCheck(YamlReader* r, bool refuse_repeated_keys) : r_(r), refuse_repeated_keys_(refuse_repeated_keys) {}

    void Visit(YAML::Node node) {
        if (!node.IsMap() && !node.IsSequence()) return;
        // An alias is the same node again: visited (and merged) once. A
        // container's start and type name it (yaml-cpp has no node id).
        if (!seen_.emplace(node.Mark().pos, node.Mark().line, static_cast<int>(node.Type())).second) return;
        if (node.IsSequence()) {
            for (const auto& child : node) Visit(child);
            return;
        }
        std::unordered_map<std::string, YAML::Mark> keys;
        YAML::Node merge(YAML::NodeType::Undefined);
        YAML::Mark merge_mark;
        for (auto it = node.begin(); it != node.end(); ++it) {
            Visit(it->first);
            Visit(it->second);
            if (!it->first.IsScalar()) continue;
            const std::string& key = it->first.Scalar();
            auto [first, fresh] = keys.emplace(key, it->first.Mark());
            if (!fresh) {
                if (!refuse_repeated_keys_) continue;  // stored text: the first wins
                const YAML::Mark& mark = first->second;
                r_->ErrorAt(it->first.Mark(), "key '" + Printable(key) + "' is given twice in one mapping (first at " +
                                                  std::to_string(mark.line + 1) + ":" +
                                                  std::to_string(mark.column + 1) +
                                                  "); YAML keeps only one of them: say it once");
                continue;
            }
            if (key == "<<" && it->first.Tag() != "!") {
                merge = it->second;
                merge_mark = it->first.Mark();
            }
        }
        if (merge.IsDefined()) Merge(node, merge, merge_mark, &keys);
    }

   private:
    void Merge(YAML::Node node, const YAML::Node& merge, const YAML::Mark& mark,
               std::unordered_map<std::string, YAML::Mark>* keys) {
        std::vector<YAML::Node> sources;
        if (merge.IsMap()) {
            sources.push_back(merge);
        } else if (merge.IsSequence()) {
            for (const auto& s : merge) sources.push_back(s);
        }
        if (sources.empty() ||
            std::any_of(sources.begin(), sources.end(), [](const YAML::Node& s) { return !s.IsMap(); })) {
            r_->ErrorAt(mark, "a merge key '<<' takes a mapping (<<: *name) or a list of them (<<: [*a, *b])");
            return;
        }
        node.remove("<<");
        for (const YAML::Node& source : sources) {
            for (auto it = source.begin(); it != source.end(); ++it) {
                if (!it->first.IsScalar()) continue;
                const std::string& key = it->first.Scalar();
                if (keys->count(key) != 0) continue;
                if (++merged_ > kMaxMergedEntries) {
                    r_->ErrorAt(mark, "merge keys add more than " + std::to_string(kMaxMergedEntries) +
                                          " entries to the file's mappings; write the file with fewer merges");
                    throw TooManyProblems();
                }
                keys->emplace(key, it->first.Mark());
                node.force_insert(it->first, it->second);
            }
        }
    }

    YamlReader* r_;
    bool refuse_repeated_keys_;
    std::set<std::tuple<int, int, int>> seen_;
    size_t merged_ = 0;
};

// The line of the "---" that starts the second document; null mark when
// there is none (a document after "...").
inline YAML::Mark SecondDocumentStart(std::string_view text) {
    int line = 0, starts = 0;
    bool content = false;  // some line before has content (the first document's)
    size_t i = 0;
    while (i < text.size()) {
        const size_t end = std::min(text.find('\n', i), text.size());
        const std::string_view l = text.substr(i, end - i);
        const bool marker = l.substr(0, 3) == "---" && (l.size() == 3 || l[3] == ' ' || l[3] == '\r');
        if (marker && (content || starts > 0)) {
            YAML::Mark m;
            m.line = line;
            m.column = 0;
            m.pos = static_cast<int>(i);
            return m;
        }
        if (marker) ++starts;
        if (!marker && !l.empty() && l[0] != '#') content = true;
        ++line;
        i = end + 1;
    }
    return YAML::Mark::null_mark();
}

inline std::optional<YAML::Node> LoadDocument(std::string_view text, std::string_view file, Diagnostics* diagnostics,
                                              TextOrigin origin = TextOrigin::kWritten) {
    if (auto deep = TooDeeplyNested(text, file)) {
        diagnostics->push_back(std::move(*deep));
        return std::nullopt;
    }
    // YAML::Load reads the first document only (YAML::LoadAll can spin on
    // some malformed input: fuzz_plan found one); a second document is
    // found by its --- line.
    YAML::Node document;
    try {
        document = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        diagnostics->push_back({std::string(file), e.mark.line + 1, e.mark.column + 1, "not valid YAML: " + e.msg});
        return std::nullopt;
    }
    YamlReader r{std::string(file), diagnostics};
    try {
        if (const YAML::Mark second = SecondDocumentStart(text); second.line >= 0) {
            r.ErrorAt(second,
                      "a second YAML document starts here (after ---); a file holds one document: put the rest in "
                      "a file of its own");
        }
        if (!document.IsDefined() || document.IsNull()) {
            if (r.errors() > 0) return std::nullopt;
            return YAML::Node();
        }
        DocumentCheck check(&r, origin == TextOrigin::kWritten);
        check.Visit(document);
    } catch (const TooManyProblems&) {
        return std::nullopt;
    }
    if (r.errors() > 0) return std::nullopt;
    return document;
}

}  // namespace tally::internal
