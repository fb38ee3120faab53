// Aligned text tables for terminals (CJK counts two columns).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace tally {

// Writes `rows` (the first is the header) with two spaces before each
// line and between columns; `right[i]` aligns column i to the right.
void WriteTextTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right);

}  // namespace tally
