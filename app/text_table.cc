#include "app/text_table.h"

#include <algorithm>

#include "app/report.h"
#include "base/assert.h"

namespace tally {

void WriteTextTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right) {
    if (rows.empty()) return;
    std::vector<size_t> width(rows.front().size(), 0);
    for (const auto& r : rows) {
        TALLY_ASSERT(r.size() == width.size());
        for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], DisplayWidth(r[i]));
    }
    for (const auto& r : rows) {
        std::string line = "  ";
        for (size_t i = 0; i < r.size(); ++i) {
            std::string pad(width[i] - DisplayWidth(r[i]), ' ');
            line += i < right.size() && right[i] ? pad + r[i] : r[i] + pad;
            if (i + 1 < r.size()) line += "  ";
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out << line << "\n";
    }
}

}  // namespace tally
