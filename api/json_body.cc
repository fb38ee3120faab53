#include "api/json_body.h"

#include <simdjson.h>

#include <algorithm>

#include "api/request.h"

namespace tally::api {

std::map<std::string, std::string> ParseJsonBody(std::string_view body, const std::vector<BodyField>& fields) {
    std::string allowed;
    for (const BodyField& f : fields) allowed += (allowed.empty() ? "" : ", ") + std::string(f.name);
    std::map<std::string, std::string> out;
    const bool blank =
        std::all_of(body.begin(), body.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
    if (!blank) {
        simdjson::dom::parser parser;
        simdjson::padded_string padded(body);
        simdjson::dom::element root;
        if (parser.parse(padded).get(root) != simdjson::SUCCESS) {
            throw BadRequest("the body is not valid JSON (send one JSON object: {\"field\": \"value\"})");
        }
        simdjson::dom::object object;
        if (root.get_object().get(object) != simdjson::SUCCESS) {
            throw BadRequest("the body must be a JSON object");
        }
        for (const simdjson::dom::key_value_pair field : object) {
            const std::string name(field.key);
            if (!ValidUtf8(name) || name.find('\0') != std::string::npos) {
                throw BadRequest("a field name of the body is not valid text");
            }
            const bool known =
                std::any_of(fields.begin(), fields.end(), [&](const BodyField& f) { return f.name == name; });
            if (!known) {
                throw BadRequest(
                    "unknown field '" + name + "' in the body" +
                    (allowed.empty() ? " (this route takes none)" : " (this route takes " + allowed + ")"));
            }
            std::string_view value;
            if (field.value.get_string().get(value) != simdjson::SUCCESS) {
                throw BadRequest("field '" + name + "' must be a string");
            }
            if (value.find('\0') != std::string_view::npos) throw BadRequest("field '" + name + "' holds a NUL byte");
            if (!out.emplace(name, std::string(value)).second) {
                throw BadRequest("field '" + name + "' is given twice in the body");
            }
        }
    }
    for (const BodyField& f : fields) {
        if (f.required && out.find(std::string(f.name)) == out.end()) {
            throw BadRequest("the body needs field '" + std::string(f.name) + "'");
        }
    }
    return out;
}

}  // namespace tally::api
