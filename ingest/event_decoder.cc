#include "ingest/event_decoder.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/assert.h"
#include "base/identifier.h"

namespace tally {

namespace od = simdjson::ondemand;

namespace {

// A decode failure with its reason; thrown and caught inside Decode only.
struct Bad {
    std::string reason;
};

[[noreturn]] void Fail(std::string reason) {
    throw Bad{std::move(reason)};
}

// The keys Tally reads, at the top level and inside `data`; one bit each in
// SeenKeys.
enum TopKey : uint8_t { kSpecversion, kId, kSource, kType, kSubject, kTime, kData };
constexpr std::array<std::string_view, 7> kTopKeys = {"specversion", "id", "source", "type", "subject", "time", "data"};
enum DataKey : uint8_t {
    kModel,
    kInputTokens,
    kOutputTokens,
    kCachedInputTokens,
    kCachedInputExplicitTokens,
    kCacheWriteTokens,
    kCacheWrite1hTokens,
    kReasoningTokens,
    kBatch,
    kThinking,
    kProject,
    kServedModel
};
constexpr std::array<std::string_view, 12> kDataKeys = {"model",
                                                        "input_tokens",
                                                        "output_tokens",
                                                        "cached_input_tokens",
                                                        "cached_input_explicit_tokens",
                                                        "cache_write_tokens",
                                                        "cache_write_1h_tokens",
                                                        "reasoning_tokens",
                                                        "batch",
                                                        "thinking",
                                                        "project",
                                                        "served_model"};
static_assert(kData + 1 == kTopKeys.size() && kServedModel + 1 == kDataKeys.size(), "one name per enumerator");
static_assert(kDataKeys.size() <= 32, "one bit per known key in SeenKeys");

// The index of `key` in `names`, or N when it is not there.
template <size_t N>
size_t Lookup(const std::array<std::string_view, N>& names, std::string_view key) {
    size_t i = 0;
    while (i < N && names[i] != key) ++i;
    return i;
}

// The keys of one JSON object seen so far, to reject a repeated key (JSON
// leaves repeats undefined; taking the last would bill a count nobody can
// see twice). Known keys are one bit each; the other keys are views into
// the document, collected in a vector that keeps its capacity between
// events and checked once at the end of the object.
class SeenKeys {
   public:
    SeenKeys(std::string_view prefix, std::vector<std::string_view>* others) : prefix_(prefix), others_(others) {
        others_->clear();
    }
    bool Has(size_t index) const { return (known_ & (uint32_t{1} << index)) != 0; }
    void Known(size_t index, std::string_view key) {
        TALLY_ASSERT(index < 32);
        if (Has(index)) Duplicate(key);
        known_ |= uint32_t{1} << index;
    }
    void Other(std::string_view key) { others_->push_back(key); }
    // Fails on the first key seen twice among the other keys.
    void CheckOthers() {
        std::vector<std::string_view>& keys = *others_;
        if (keys.size() <= 16) {  // the common case: a few extensions or extra units
            for (size_t j = 1; j < keys.size(); ++j) {
                for (size_t i = 0; i < j; ++i) {
                    if (keys[i] == keys[j]) Duplicate(keys[j]);
                }
            }
            return;
        }
        // Many keys (a hostile message): sort, so the check stays O(n log n).
        std::sort(keys.begin(), keys.end());
        auto repeat = std::adjacent_find(keys.begin(), keys.end());
        if (repeat != keys.end()) Duplicate(*repeat);
    }

   private:
    [[noreturn]] void Duplicate(std::string_view key) const {
        Fail("duplicate key '" + std::string(prefix_) + Printable(key) + "'");
    }
    std::string_view prefix_;
    std::vector<std::string_view>* others_;
    uint32_t known_ = 0;
};

// The length of the key that starts at `raw` (after its opening quote) when
// it has no escapes, else npos. Reads 8 bytes at a time (bit tricks from
// "Bit Twiddling Hacks": the lowest byte flagged as zero is exact); reading
// past the closing quote stays inside the padded copy Decode parses.
size_t PlainKeyLength(const char* raw) {
    static_assert(std::endian::native == std::endian::little);
    constexpr uint64_t kOnes = 0x0101010101010101;
    constexpr uint64_t kHigh = 0x8080808080808080;
    auto zero_bytes = [](uint64_t w) { return (w - kOnes) & ~w & kHigh; };
    for (size_t at = 0;; at += 8) {
        uint64_t w = 0;
        std::memcpy(&w, raw + at, sizeof w);
        // A quote ends the key; a backslash or a NUL (no valid key has one) sends it to simdjson.
        const uint64_t stops = zero_bytes(w ^ (kOnes * '"')) | zero_bytes(w ^ (kOnes * '\\')) | zero_bytes(w);
        if (stops != 0) {
            const size_t i = at + static_cast<size_t>(std::countr_zero(stops)) / 8;
            return raw[i] == '"' ? i : std::string_view::npos;
        }
    }
}

// The index in `kNames` of the key `raw` as written (no unescaping), or N.
// Unrolled over compile-time names, so each comparison is a few inlined
// instructions (simdjson's raw key comparison), not a call to memcmp.
template <const auto& kNames, size_t... kIndex>
size_t MatchRaw(od::raw_json_string raw, std::index_sequence<kIndex...>) {
    size_t found = sizeof...(kIndex);
    static_cast<void>(((raw.unsafe_is_equal(kNames[kIndex]) ? (found = kIndex, true) : false) || ...));
    return found;
}

// Finds which of `kNames` the key of `field` is (N when none) and sets
// `*key` to the key, unescaped. A known key written without escapes (every
// known key in practice) is matched in place. Any other key is read: in
// place when it has no backslash, else unescaped into the parser's string
// buffer and looked up again, so that "\u006dodel" is "model". Every view
// lives as long as the document. Inlined: `field` then stays in registers.
template <const auto& kNames, size_t N = std::tuple_size_v<std::remove_cvref_t<decltype(kNames)>>>
[[gnu::always_inline]] inline size_t MatchKey(od::field& field, std::string_view* key) {
    const od::raw_json_string raw = field.key();
    const size_t known = MatchRaw<kNames>(raw, std::make_index_sequence<N>());
    if (known < N) {
        *key = kNames[known];
        return known;
    }
    const size_t length = PlainKeyLength(raw.raw());
    if (length != std::string_view::npos) {
        *key = std::string_view(raw.raw(), length);
        return N;
    }
    if (field.unescaped_key().get(*key) != simdjson::SUCCESS) Fail("not valid JSON: a key is not a valid string");
    return Lookup(kNames, *key);
}

std::string_view Str(od::value v, std::string_view field) {
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS) Fail("field '" + std::string(field) + "' must be a string");
    return s;
}

// A string the event keeps as an identifier (docs/event-format.md).
// `what` names the field: "field 'subject'".
std::string_view Identifier(od::value v, std::string_view field, std::string_view what) {
    std::string_view s = Str(v, field);
    if (auto error = IdentifierError(what, s)) Fail(std::move(*error));
    return s;
}

// Other text the event keeps: any UTF-8 without C0 control characters or
// DEL (a NUL would end the value in PostgreSQL).
std::string_view Text(od::value v, std::string_view field) {
    std::string_view s = Str(v, field);
    const size_t at = FindAsciiControl(s);
    if (at != std::string_view::npos) {
        char code[8];
        std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(static_cast<unsigned char>(s[at])));
        Fail("field '" + std::string(field) + "' holds a control character (" + code + " at offset " +
             std::to_string(at) + ")");
    }
    return s;
}

bool Boolean(od::value v, std::string_view field) {
    bool b = false;
    if (v.get_bool().get(b) != simdjson::SUCCESS) Fail("field '" + std::string(field) + "' must be true or false");
    return b;
}

// A count: a JSON integer in [0, kCountMax].
int64_t Count(od::value v, std::string_view name, std::string_view prefix = {}) {
    // The full field name is only built when there is an error to report.
    auto field = [&] { return std::string(prefix) + Printable(name); };
    auto above = [&](std::string_view count) {
        Fail("field '" + field() + "' is " + Printable(count) + ", above the per-call maximum " +
             std::to_string(kCountMax));
    };
    od::json_type type{};
    if (v.type().get(type) != simdjson::SUCCESS || type != od::json_type::number) {
        Fail("field '" + field() + "' must be a whole number of units, not " +
             (type == od::json_type::string ? "a string" : "a non-number"));
    }
    int64_t n = 0;
    auto err = v.get_int64().get(n);
    if (err != simdjson::SUCCESS) {
        std::string_view raw = simdjson::trim(v.raw_json_token());
        std::string_view digits = raw.substr(!raw.empty() && raw[0] == '-' ? 1 : 0);
        bool digits_only = !digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos;
        if (digits_only && digits.size() < raw.size()) {
            Fail("field '" + field() + "' is negative (" + Printable(raw) + ")");
        }
        if (err == simdjson::NUMBER_OUT_OF_RANGE || digits_only) above(raw);
        Fail("field '" + field() + "' must be a whole number, got " + Printable(raw));
    }
    if (n < 0) Fail("field '" + field() + "' is negative (" + std::to_string(n) + ")");
    if (n > kCountMax) above(std::to_string(n));
    return n;
}

// A value Tally does not read, walked so that it is valid JSON all the
// same: on-demand parsing would skip it unchecked, and the archive keeps the
// message byte for byte for readers that parse it whole (payload::jsonb).
void CheckSkipped(od::value v, std::string_view prefix, std::string_view key, int depth = 0) {
    constexpr int kDepthMax = 64;
    auto where = [&] { return "field '" + std::string(prefix) + Printable(key) + "'"; };
    if (depth > kDepthMax) Fail(where() + " nests deeper than 64 levels");
    auto bad = [&] { Fail("not valid JSON in " + where()); };
    od::json_type type{};
    if (v.type().get(type) != simdjson::SUCCESS) bad();
    switch (type) {
        case od::json_type::object: {
            od::object o;
            if (v.get_object().get(o) != simdjson::SUCCESS) bad();
            for (auto result : o) {
                od::field f;
                if (std::move(result).get(f) != simdjson::SUCCESS) bad();
                std::string_view k;
                if (f.unescaped_key().get(k) != simdjson::SUCCESS) bad();
                CheckSkipped(f.value(), prefix, key, depth + 1);
            }
            break;
        }
        case od::json_type::array: {
            od::array a;
            if (v.get_array().get(a) != simdjson::SUCCESS) bad();
            for (auto element : a) {
                od::value x;
                if (element.get(x) != simdjson::SUCCESS) bad();
                CheckSkipped(x, prefix, key, depth + 1);
            }
            break;
        }
        case od::json_type::string: {
            std::string_view text;
            if (v.get_string().get(text) != simdjson::SUCCESS) bad();
            break;
        }
        case od::json_type::number: {
            od::number n;
            if (v.get_number().get(n) != simdjson::SUCCESS) bad();
            break;
        }
        case od::json_type::boolean: {
            bool b = false;
            if (v.get_bool().get(b) != simdjson::SUCCESS) bad();
            break;
        }
        case od::json_type::null: {
            bool is_null = false;
            if (v.is_null().get(is_null) != simdjson::SUCCESS || !is_null) bad();
            break;
        }
    }
}

// A field of `data` Tally does not know: a number is a unit a plan may
// price by name; anything else is descriptive, and only checked.
void DecodeOtherData(std::string_view key, od::value v, Event* e, SeenKeys* seen) {
    seen->Other(key);
    od::json_type type{};
    if (v.type().get(type) != simdjson::SUCCESS) Fail("a field of 'data' is not valid JSON");
    if (type != od::json_type::number) {
        CheckSkipped(v, "data.", key);
        return;
    }
    if (FindAsciiControl(key) != std::string_view::npos) {
        Fail("field 'data." + Printable(key) + "' has a control character in its name");
    }
    e->extras.emplace_back();
    e->extras.back().name.assign(key);
    e->extras.back().value = Count(v, e->extras.back().name, "data.");
}

void DecodeData(od::object data, Event* e, SeenKeys* seen) {
    for (auto result : data) {
        od::field field;
        if (std::move(result).get(field) != simdjson::SUCCESS) Fail("not valid JSON inside 'data'");
        std::string_view key;
        const size_t k = MatchKey<kDataKeys>(field, &key);
        od::value v = field.value();
        if (k == kDataKeys.size()) {
            DecodeOtherData(key, v, e, seen);
            continue;
        }
        seen->Known(k, key);
        switch (k) {
            case kModel: e->model.assign(Identifier(v, "data.model", "field 'data.model'")); break;
            case kInputTokens: e->input_tokens = Count(v, "data.input_tokens"); break;
            case kOutputTokens: e->output_tokens = Count(v, "data.output_tokens"); break;
            case kCachedInputTokens: e->cached_input_tokens = Count(v, "data.cached_input_tokens"); break;
            case kCachedInputExplicitTokens:
                e->cached_input_explicit_tokens = Count(v, "data.cached_input_explicit_tokens");
                break;
            case kCacheWriteTokens: e->cache_write_tokens = Count(v, "data.cache_write_tokens"); break;
            case kCacheWrite1hTokens: e->cache_write_1h_tokens = Count(v, "data.cache_write_1h_tokens"); break;
            case kReasoningTokens: e->reasoning_tokens = Count(v, "data.reasoning_tokens"); break;
            case kBatch: e->batch = Boolean(v, "data.batch"); break;
            case kThinking: e->thinking = Boolean(v, "data.thinking"); break;
            case kProject: e->project.assign(Text(v, "data.project")); break;
            case kServedModel:
                e->served_model.assign(Identifier(v, "data.served_model", "field 'data.served_model'"));
                break;
            default: TALLY_UNREACHABLE();
        }
    }
    seen->CheckOthers();
}

Instant Time(od::value v) {
    std::string_view t = Str(v, "time");
    auto instant = ParseRfc3339(t);
    if (!instant) Fail("time '" + Printable(t) + "' is not an RFC 3339 timestamp");
    if (*instant < kEventTimeMin || *instant >= kEventTimeEnd) {
        Fail("field 'time' is " + Printable(t) + ", outside the accepted range [" + FormatRfc3339(kEventTimeMin) +
             ", " + FormatRfc3339(kEventTimeEnd) + ")");
    }
    return *instant;
}

}  // namespace

struct EventDecoder::Impl {
    od::parser parser;
    std::string buffer;
    // Other keys of the top level and of `data`, kept for their capacity.
    std::vector<std::string_view> top_keys;
    std::vector<std::string_view> data_keys;

    // Reads the fields of the event object; `*seen` and `*data_seen` tell
    // which known keys were present.
    void DecodeTop(od::object root, Event* e, SeenKeys* seen, SeenKeys* data_seen) {
        for (auto result : root) {
            od::field field;
            if (std::move(result).get(field) != simdjson::SUCCESS) Fail("not valid JSON: a key is not a string");
            std::string_view key;
            const size_t k = MatchKey<kTopKeys>(field, &key);
            od::value v = field.value();
            if (k == kTopKeys.size()) {
                seen->Other(key);  // other attributes (datacontenttype, extensions) are allowed, checked, ignored
                CheckSkipped(v, "", key);
                continue;
            }
            seen->Known(k, key);
            switch (k) {
                case kSpecversion:
                    if (Str(v, "specversion") != "1.0") Fail("specversion must be \"1.0\" (CloudEvents 1.0)");
                    break;
                case kId: e->id.assign(Identifier(v, "id", "field 'id'")); break;
                case kSource: e->source.assign(Identifier(v, "source", "field 'source'")); break;
                case kType: {
                    std::string_view type = Str(v, "type");
                    if (type != "llm.call") Fail("type '" + Printable(type) + "' is not llm.call");
                    break;
                }
                case kSubject: e->subject.assign(Identifier(v, "subject", "field 'subject'")); break;
                case kTime: e->time = Time(v); break;
                case kData: {
                    od::object data;
                    if (v.get_object().get(data) != simdjson::SUCCESS) Fail("field 'data' must be an object");
                    DecodeData(data, e, data_seen);
                    break;
                }
                default: TALLY_UNREACHABLE();
            }
        }
        seen->CheckOthers();
    }
};

EventDecoder::EventDecoder() : impl_(std::make_unique<Impl>()) {}
EventDecoder::~EventDecoder() = default;

namespace {

// The first required field `seen` and `data_seen` lack, or nullptr.
const char* Missing(const Event& e, const SeenKeys& seen, const SeenKeys& data_seen) {
    // id, source and subject are never empty once read (IdentifierError).
    if (!seen.Has(kSpecversion)) return "specversion";
    if (e.id.empty()) return "id";
    if (e.source.empty()) return "source";
    if (!seen.Has(kType)) return "type";
    if (e.subject.empty()) return "subject";
    if (!seen.Has(kTime)) return "time";
    if (!seen.Has(kData)) return "data";
    if (!data_seen.Has(kModel)) return "data.model";
    if (!data_seen.Has(kInputTokens)) return "data.input_tokens";
    if (!data_seen.Has(kOutputTokens)) return "data.output_tokens";
    return nullptr;
}

void Reset(Event* e) {
    // Field by field: strings and the extras vector keep their capacity from
    // the previous event, so a steady stream decodes without allocating.
    e->id.clear();
    e->source.clear();
    e->subject.clear();
    e->model.clear();
    e->served_model.clear();
    e->project.clear();
    e->time = Instant{};
    e->input_tokens = e->output_tokens = e->cached_input_tokens = e->cached_input_explicit_tokens = 0;
    e->cache_write_tokens = e->cache_write_1h_tokens = e->reasoning_tokens = 0;
    e->batch = e->thinking = false;
    e->extras.clear();
}

}  // namespace

bool EventDecoder::Decode(std::string_view json, Event* e, std::string* reason) {
    TALLY_ASSERT(e != nullptr);
    TALLY_ASSERT(reason != nullptr);
    Reset(e);
    // Kafka payloads and file lines have no room for simdjson's padding.
    std::string& buf = impl_->buffer;
    if (buf.size() < json.size() + simdjson::SIMDJSON_PADDING) buf.resize(json.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(buf.data(), json.data(), json.size());
    std::memset(buf.data() + json.size(), 0, simdjson::SIMDJSON_PADDING);
    SeenKeys seen("", &impl_->top_keys);
    SeenKeys data_seen("data.", &impl_->data_keys);
    try {
        od::document doc;
        auto err = impl_->parser.iterate(buf.data(), json.size(), buf.size()).get(doc);
        if (err != simdjson::SUCCESS) Fail(std::string("not valid JSON: ") + simdjson::error_message(err));
        od::object root;
        err = doc.get_object().get(root);
        if (err == simdjson::INCORRECT_TYPE) Fail("not a JSON object: an event is one {...} object");
        if (err != simdjson::SUCCESS) Fail(std::string("not valid JSON: ") + simdjson::error_message(err));
        impl_->DecodeTop(root, e, &seen, &data_seen);
        const char* trailing = nullptr;
        if (doc.current_location().get(trailing) == simdjson::SUCCESS) {
            Fail("not valid JSON: text after the event object");
        }
    } catch (const Bad& bad) {
        *reason = bad.reason;
        return false;
    } catch (const simdjson::simdjson_error& err) {
        *reason = std::string("not valid JSON: ") + err.what();
        return false;
    }
    if (const char* missing = Missing(*e, seen, data_seen)) {
        *reason = std::string("missing required field '") + missing + "'";
        return false;
    }
    // Served by the model it asked for: not routed.
    if (e->served_model == e->model) e->served_model.clear();
    // Each count is at most kCountMax, so these sums cannot overflow.
    static_assert(kCountMax <= INT64_MAX / 4);
    const int64_t cached_and_writes = e->cached_input_tokens + e->cached_input_explicit_tokens +
                                      e->cache_write_tokens + e->cache_write_1h_tokens;
    if (cached_and_writes > e->input_tokens) {
        *reason = "cached_input_tokens + cached_input_explicit_tokens + cache_write_tokens + cache_write_1h_tokens (" +
                  std::to_string(cached_and_writes) + ") exceed input_tokens (" + std::to_string(e->input_tokens) +
                  "); input_tokens is the whole prompt, both kinds of cache hit and the cache writes are parts of it";
        return false;
    }
    if (e->reasoning_tokens > e->output_tokens) {
        *reason = "reasoning_tokens (" + std::to_string(e->reasoning_tokens) + ") exceed output_tokens (" +
                  std::to_string(e->output_tokens) + "); output_tokens is the whole completion";
        return false;
    }
    TALLY_ASSERT(e->time >= kEventTimeMin);
    TALLY_ASSERT(e->time < kEventTimeEnd);
    return true;
}

}  // namespace tally
