// A problem found in a file a person wrote: where, and a sentence that says
// what is wrong and what to do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tally {

// An error makes the file unusable; a warning names something that is
// probably a mistake but is priced exactly as written.
enum class Severity : uint8_t { kError, kWarning };

// Where a YAML text comes from. A file someone wrote is read strictly (a key
// given twice is an error); text the ledger stored is read as it was
// accepted when stored (a key given twice: the first wins, as yaml-cpp's
// lookup did), so rows stored before a check existed keep loading.
enum class TextOrigin : uint8_t { kWritten, kStored };

struct Diagnostic {
    std::string file;
    int line = 0;    // 1-based; 0 when the whole file is meant
    int column = 0;  // 1-based
    std::string message;
    Severity severity = Severity::kError;

    bool is_error() const { return severity == Severity::kError; }
    std::string_view severity_name() const { return is_error() ? "error" : "warning"; }

    // "plans/doubao.yaml:12:9: error: gap between bands ..."
    std::string ToString() const {
        std::string out = file;
        if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
        return out + ": " + std::string(severity_name()) + ": " + message;
    }
};

using Diagnostics = std::vector<Diagnostic>;

// How many of `diagnostics` are errors (not warnings).
inline size_t CountErrors(const Diagnostics& diagnostics) {
    size_t n = 0;
    for (const Diagnostic& d : diagnostics) if (d.is_error()) ++n;
    return n;
}

}  // namespace tally
