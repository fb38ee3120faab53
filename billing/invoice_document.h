// An invoice as it is stored, numbered, hashed and exported: every field as
// the text the ledger keeps (amounts as exact decimal text), so that the
// canonical form a finalized invoice's SHA-256 covers is rebuilt from the
// stored rows byte for byte (`tally invoice verify`). Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pricing/invoice.h"

namespace tally::billing {

struct DocumentLine {
    int32_t line_no = 0;  // 1-based, in the invoice's order
    std::string kind;     // LineKindName
    std::string description;
    std::string plan_version, model, unit, band, output_condition, window;
    bool batch = false;
    bool thinking = false;
    std::string tier;
    std::optional<int64_t> quantity;  // usage, free quota and unpriced lines
    std::string rate;                 // exact decimal text, "" when the line has no rate
    int64_t rate_per = 0;             // 0 when the line has no rate
    std::string amount;               // exact
    std::string amount_rounded;       // to the currency's minor unit
    std::string first_hour, last_hour;  // RFC 3339, "" when the line has no rollups
    // Adjustment lines: the period they correct, the number of the invoice
    // that billed it, and what that period's usage priced at now.
    std::string adjusts_period, adjusts_invoice;
    std::optional<int64_t> basis_calls;
    std::string basis_subtotal;
};

struct GrantLine {
    std::string name;
    std::string amount;
};

struct InvoiceDocument {
    int64_t invoice_id = 0;
    std::string status;  // draft, finalized, void
    std::string number;  // "" while a draft
    std::string issuer;
    std::string customer, customer_name, plan;
    std::string period;  // "YYYY-MM"
    int32_t period_id = 0;
    std::string period_start, period_end, time_zone;  // RFC 3339, IANA name
    std::string currency;
    std::string rounding, round_at;
    std::vector<std::string> plan_versions;
    int64_t calls = 0;
    std::string exact_subtotal, subtotal, tax_percent, tax, total, amount_due;
    std::vector<GrantLine> grants;
    std::string error;  // not empty: the draft could not be priced
    std::string cutoff, grace_until, finalized_at;  // RFC 3339 or ""
    std::string voided_at, void_reason;
    std::string sha256;
    std::vector<DocumentLine> lines;
};

// The stored form of a priced invoice (a draft: no number, no hash). The
// amounts are exact decimal text; rounded ones carry the currency's minor
// digits ("1.20"). `period_id` is the billing month id of its rollups.
InvoiceDocument FromInvoice(const Invoice& invoice, int32_t period_id);

// The canonical form of a finalized invoice: JSON with a fixed key order,
// no whitespace, every field that finance relies on (number, issuer,
// customer, period, lines, totals, finalization time) and none that may
// change afterwards (status, void fields, the hash itself).
std::string CanonicalJson(const InvoiceDocument& doc);

// Lower-case hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// The invoice as one JSON object (the canonical fields plus status, void
// fields and the hash), for `tally invoice export --format json`.
std::string ExportJson(const InvoiceDocument& doc);

// CSV (RFC 4180, header row, one row per line of every invoice, invoice
// fields repeated on each row), for `--format csv`.
std::string ExportCsv(const std::vector<InvoiceDocument>& docs);

// JSON string literal: quotes, backslash and control characters escaped,
// UTF-8 passed through.
std::string JsonQuote(std::string_view s);

struct CreditNoteDocument {
    int64_t credit_note_id = 0;
    std::string number, issuer, invoice_number, customer, customer_name;
    std::string currency, kind, reason;  // kind: void or partial
    std::string subtotal, tax, total;
    std::string created_at;
    std::string sha256;
};
std::string CanonicalJson(const CreditNoteDocument& doc);

// The credit note as one JSON object (its id, the canonical fields and the
// hash), for `tally invoice export CN-... --format json`.
std::string ExportJson(const CreditNoteDocument& doc);

// CSV (RFC 4180, header row, one row per credit note), for `--format csv`.
std::string ExportCsv(const std::vector<CreditNoteDocument>& docs);

}  // namespace tally::billing
