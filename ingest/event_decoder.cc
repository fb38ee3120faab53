#include "ingest/event_decoder.h"

#include <simdjson.h>

#include <cstring>

#include "base/assert.h"

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

std::string_view Str(od::value v, std::string_view field) {
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS) Fail("field '" + std::string(field) + "' must be a string");
    return s;
}

bool Boolean(od::value v, std::string_view field) {
    bool b = false;
    if (v.get_bool().get(b) != simdjson::SUCCESS) Fail("field '" + std::string(field) + "' must be true or false");
    return b;
}

// A count: a JSON integer >= 0 that fits in 63 bits.
int64_t Count(od::value v, std::string_view name, std::string_view prefix = {}) {
    // The full field name is only built when there is an error to report.
    auto field = [&] { return std::string(prefix) + std::string(name); };
    od::json_type type{};
    if (v.type().get(type) != simdjson::SUCCESS || type != od::json_type::number) {
        Fail("field '" + field() + "' must be a whole number of units, not " +
             (type == od::json_type::string ? "a string" : "a non-number"));
    }
    int64_t n = 0;
    auto err = v.get_int64().get(n);
    if (err != simdjson::SUCCESS) {
        std::string_view raw = simdjson::trim(v.raw_json_token());
        bool digits_only = !raw.empty() && raw.find_first_not_of("0123456789") == std::string_view::npos;
        if (err == simdjson::NUMBER_OUT_OF_RANGE || digits_only) {
            Fail("field '" + field() + "' is too large (" + std::string(raw) + ")");
        }
        Fail("field '" + field() + "' must be a whole number, got " + std::string(raw));
    }
    if (n < 0) Fail("field '" + field() + "' is negative (" + std::to_string(n) + ")");
    return n;
}

void DecodeData(od::object data, Event* e, bool* has_model, bool* has_input, bool* has_output) {
    for (auto result : data) {
        od::field field;
        if (std::move(result).get(field) != simdjson::SUCCESS) Fail("not valid JSON inside 'data'");
        // Keys are compared as written, without unescaping: cheaper, and a
        // key spelled with escapes (\u006dodel) is simply not a known key.
        od::raw_json_string key = field.key();
        od::value v = field.value();
        if (key == "model") {
            e->model.assign(Str(v, "data.model"));
            if (e->model.empty()) Fail("field 'data.model' is empty");
            *has_model = true;
        } else if (key == "input_tokens") {
            e->input_tokens = Count(v, "data.input_tokens");
            *has_input = true;
        } else if (key == "output_tokens") {
            e->output_tokens = Count(v, "data.output_tokens");
            *has_output = true;
        } else if (key == "cached_input_tokens") {
            e->cached_input_tokens = Count(v, "data.cached_input_tokens");
        } else if (key == "cache_write_tokens") {
            e->cache_write_tokens = Count(v, "data.cache_write_tokens");
        } else if (key == "cache_write_1h_tokens") {
            e->cache_write_1h_tokens = Count(v, "data.cache_write_1h_tokens");
        } else if (key == "reasoning_tokens") {
            e->reasoning_tokens = Count(v, "data.reasoning_tokens");
        } else if (key == "batch") {
            e->batch = Boolean(v, "data.batch");
        } else if (key == "thinking") {
            e->thinking = Boolean(v, "data.thinking");
        } else if (key == "project") {
            e->project.assign(Str(v, "data.project"));
        } else {
            od::json_type type{};
            if (v.type().get(type) != simdjson::SUCCESS) Fail("a field of 'data' is not valid JSON");
            if (type == od::json_type::number) {
                std::string_view name;
                if (field.unescaped_key().get(name) != simdjson::SUCCESS) Fail("a key in 'data' is not a valid string");
                e->extras.emplace_back();
                e->extras.back().name.assign(name);
                e->extras.back().value = Count(v, e->extras.back().name, "data.");
            }
            // Strings, booleans, objects and arrays under other names are
            // descriptive and not billed; simdjson skips them.
        }
    }
}

}  // namespace

struct EventDecoder::Impl {
    od::parser parser;
    std::string buffer;
};

EventDecoder::EventDecoder() : impl_(std::make_unique<Impl>()) {}
EventDecoder::~EventDecoder() = default;

bool EventDecoder::Decode(std::string_view json, Event* e, std::string* reason) {
    TALLY_ASSERT(e != nullptr);
    TALLY_ASSERT(reason != nullptr);
    // Reset field by field: strings and the extras vector keep their capacity
    // from the previous event, so a steady stream decodes without allocating.
    e->id.clear();
    e->source.clear();
    e->subject.clear();
    e->model.clear();
    e->project.clear();
    e->time = Instant{};
    e->input_tokens = e->output_tokens = e->cached_input_tokens = 0;
    e->cache_write_tokens = e->cache_write_1h_tokens = e->reasoning_tokens = 0;
    e->batch = e->thinking = false;
    e->extras.clear();
    // Kafka payloads and file lines have no room for simdjson's padding.
    std::string& buf = impl_->buffer;
    if (buf.size() < json.size() + simdjson::SIMDJSON_PADDING) buf.resize(json.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(buf.data(), json.data(), json.size());
    std::memset(buf.data() + json.size(), 0, simdjson::SIMDJSON_PADDING);
    bool has_specversion = false, has_type = false, has_time = false, has_data = false;
    bool has_model = false, has_input = false, has_output = false;
    try {
        od::document doc;
        auto err = impl_->parser.iterate(buf.data(), json.size(), buf.size()).get(doc);
        if (err != simdjson::SUCCESS) Fail(std::string("not valid JSON: ") + simdjson::error_message(err));
        od::object root;
        err = doc.get_object().get(root);
        if (err == simdjson::INCORRECT_TYPE) Fail("not a JSON object: an event is one {...} object");
        if (err != simdjson::SUCCESS) Fail(std::string("not valid JSON: ") + simdjson::error_message(err));
        for (auto result : root) {
            od::field field;
            if (std::move(result).get(field) != simdjson::SUCCESS) Fail("not valid JSON: a key is not a string");
            od::raw_json_string key = field.key();
            od::value v = field.value();
            if (key == "specversion") {
                if (Str(v, "specversion") != "1.0") Fail("specversion must be \"1.0\" (CloudEvents 1.0)");
                has_specversion = true;
            } else if (key == "id") {
                e->id.assign(Str(v, "id"));
            } else if (key == "source") {
                e->source.assign(Str(v, "source"));
            } else if (key == "type") {
                std::string_view type = Str(v, "type");
                if (type != "llm.call") Fail("type '" + std::string(type) + "' is not llm.call");
                has_type = true;
            } else if (key == "subject") {
                e->subject.assign(Str(v, "subject"));
            } else if (key == "time") {
                std::string_view t = Str(v, "time");
                auto instant = ParseRfc3339(t);
                if (!instant) Fail("time '" + std::string(t) + "' is not an RFC 3339 timestamp");
                e->time = *instant;
                has_time = true;
            } else if (key == "data") {
                od::object data;
                if (v.get_object().get(data) != simdjson::SUCCESS) Fail("field 'data' must be an object");
                DecodeData(data, e, &has_model, &has_input, &has_output);
                has_data = true;
            }
            // Other attributes (datacontenttype, extensions) are allowed and ignored.
        }
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
    const char* missing = nullptr;
    if (!has_specversion)
        missing = "specversion";
    else if (e->id.empty())
        missing = "id";
    else if (e->source.empty())
        missing = "source";
    else if (!has_type)
        missing = "type";
    else if (e->subject.empty())
        missing = "subject";
    else if (!has_time)
        missing = "time";
    else if (!has_data)
        missing = "data";
    else if (!has_model)
        missing = "data.model";
    else if (!has_input)
        missing = "data.input_tokens";
    else if (!has_output)
        missing = "data.output_tokens";
    if (missing != nullptr) {
        *reason = std::string("missing required field '") + missing + "'";
        return false;
    }
    int64_t cached_and_writes = 0;
    if (__builtin_add_overflow(e->cached_input_tokens, e->cache_write_tokens, &cached_and_writes) ||
        __builtin_add_overflow(cached_and_writes, e->cache_write_1h_tokens, &cached_and_writes) ||
        cached_and_writes > e->input_tokens) {
        *reason = "cached_input_tokens + cache_write_tokens + cache_write_1h_tokens exceed input_tokens (" +
                  std::to_string(e->input_tokens) + "); input_tokens is the whole prompt";
        return false;
    }
    if (e->reasoning_tokens > e->output_tokens) {
        *reason = "reasoning_tokens (" + std::to_string(e->reasoning_tokens) + ") exceed output_tokens (" +
                  std::to_string(e->output_tokens) + "); output_tokens is the whole completion";
        return false;
    }
    return true;
}

}  // namespace tally
