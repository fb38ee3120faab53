// Request bodies of `tally serve`'s POST routes: one JSON object whose
// fields are all strings, checked against the fields the route takes.
// Malformed JSON, a field the route does not take, a field given twice, a
// value that is not a string, a required field missing, a value that is not
// valid UTF-8 or holds a NUL: each is an HttpError 400 naming the field.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tally::api {

struct BodyField {
    std::string_view name;
    bool required = false;
};

// The fields given, by name. An empty body is an empty object when no field
// is required. Throws HttpError 400 (see above).
std::map<std::string, std::string> ParseJsonBody(std::string_view body, const std::vector<BodyField>& fields);

}  // namespace tally::api
