// Rendering invoices for people (aligned tables) and machines (JSON).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "pricing/invoice.h"

namespace tally {

struct RejectedLine {
    std::string file;
    int64_t line = 0;
    std::string reason;
};

struct RateRunStats {
    int64_t lines = 0;
    int64_t rated = 0;
    int64_t rejected = 0;
    int64_t outside_period = 0;
    int64_t other_customers = 0;
};

void WriteInvoicesTable(std::ostream& out, const std::vector<Invoice>& invoices,
                        const std::vector<RejectedLine>& rejected, const RateRunStats& stats);
void WriteInvoicesJson(std::ostream& out, const std::vector<Invoice>& invoices,
                       const std::vector<RejectedLine>& rejected, const RateRunStats& stats);

// JSON string literal with escapes; UTF-8 passes through unchanged.
std::string JsonString(std::string_view s);
// Columns a UTF-8 string takes on a terminal (CJK and full-width count 2).
size_t DisplayWidth(std::string_view s);

}  // namespace tally
