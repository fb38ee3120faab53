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
    std::string code;  // RejectReasonCode: the dead letter's reason_code in the ledger
    std::string reason;
};

// A line that repeats an earlier line's call (same source and id) with the
// same payload: billed once, as the ledger does.
struct DuplicateLine {
    std::string file;
    int64_t line = 0;
    std::string first_file;  // where the call was first seen
    int64_t first_line = 0;
};

struct RateRunStats {
    int64_t lines = 0;
    int64_t rated = 0;
    int64_t rejected = 0;
    int64_t outside_period = 0;
    int64_t other_customers = 0;
    int64_t duplicates = 0;
};

struct RunReport {
    std::vector<RejectedLine> rejected;
    std::vector<DuplicateLine> duplicates;
    RateRunStats stats;
};

void WriteInvoicesTable(std::ostream& out, const std::vector<Invoice>& invoices, const RunReport& report);
// {"invoices":[...],"rejected":[...],"duplicates":[...],"stats":{...}}.
// The invoices array is written by one function for `tally rate` and
// `tally usage`, so equal invoices are equal bytes.
void WriteInvoicesJson(std::ostream& out, const std::vector<Invoice>& invoices, const RunReport& report);
// Invoices that could not be priced (Invoice::error), for a command's exit code.
size_t InvoiceErrors(const std::vector<Invoice>& invoices);

// JSON string literal with escapes; UTF-8 passes through unchanged.
std::string JsonString(std::string_view s);
// Columns a UTF-8 string takes on a terminal (CJK and full-width count 2).
size_t DisplayWidth(std::string_view s);

}  // namespace tally
