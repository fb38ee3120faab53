// A problem found in a file a person wrote: where, and a sentence that says
// what is wrong and what to do.
#pragma once

#include <string>
#include <vector>

namespace tally {

struct Diagnostic {
    std::string file;
    int line = 0;    // 1-based; 0 when the whole file is meant
    int column = 0;  // 1-based
    std::string message;

    // "plans/doubao.yaml:12:9: error: gap between bands ..."
    std::string ToString() const {
        std::string out = file;
        if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
        return out + ": error: " + message;
    }
};

using Diagnostics = std::vector<Diagnostic>;

}  // namespace tally
