// The invoice as a PDF a finance team sends: A4 portrait, issuer and
// customer (CJK names render: Noto Sans CJK SC through fontconfig, Debian
// package fonts-noto-cjk), period, numbered lines flowing over as many pages
// as they need (the table header repeated on each), totals, notes, and on
// every page a footer with "Page N of M" and the invoice's SHA-256.
//
// The renderer knows nothing of pricing: its input is already-formatted
// text, filled by the caller from a stored invoice. It depends on cairo and
// pango only (pkg-config pangocairo), nothing of ours.
//
// Content never makes it fail or write a broken PDF: every string is made
// valid UTF-8 first (ToValidUtf8), long text wraps, and a table row taller
// than a page continues on the next one. Only the environment can make it
// fail: an output path that cannot be written, or no Noto Sans CJK SC font.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tally::render {

// A party of the invoice. Every field may be empty (then its line is left
// out); the name may be Chinese. A field may hold several lines ("\n").
struct PdfParty {
    std::string name, address, tax_id, email;
};

struct PdfLine {
    std::string number;       // "1", "2", ...
    std::string description;  // "doubao-seed-1.6 · input · 0-32000 · v2025-06"; may be Chinese, long (it wraps)
    std::string quantity;     // "1,234,567 tokens", or "" for discount, commitment and adjustment lines
    std::string unit_price;   // "0.80 / 1M", or ""
    std::string amount;       // "12.34"; may be negative ("-1.00")
};

// A row of the totals block: subtotal, rounding, tax 6%, total, grant,
// amount due. An emphasised row is printed larger and bold, with the
// document's currency after its amount.
struct PdfTotal {
    std::string label, amount;
    bool emphasis = false;
};

struct PdfDocument {
    std::string title;   // "Invoice" or "Credit note"; "" prints "Invoice"
    std::string number;  // "INV-2025-000001", or "" for a draft
    // "finalized" prints no watermark; "void" prints a diagonal VOID on every
    // page; anything else (a draft, or a status this renderer does not know)
    // prints DRAFT, so that nothing unknown ever looks final.
    std::string status;
    std::string issue_date, due_date, period;  // already formatted
    std::string currency;                      // "CNY"
    std::string reference;                     // "Credits invoice INV-2025-000001", or ""
    PdfParty issuer, customer;
    std::vector<PdfLine> lines;
    std::vector<PdfTotal> totals;
    std::vector<std::string> notes;  // reconciliation of exact and rounded amounts, late-usage adjustments...
    std::string sha256;              // hex; printed small in the footer of every page
};

// Writes `doc` as an A4 PDF to `path` (replacing the file), with the PDF
// metadata title "<title> <number>". Returns "" on success, else a sentence
// saying what failed: the path cannot be written (and why), or the font is
// missing. Never throws for bad content. The PDF is built in memory and
// written once, so no temporary file is left behind; a write that fails
// half-way removes what it wrote. The same document gives the same bytes.
std::string WriteInvoicePdf(const PdfDocument& doc, const std::string& path);

// The same document as PDF bytes, or "" with `error` set. WriteInvoicePdf
// is this plus the file; a caller that serves the PDF (HTTP) uses this.
std::string InvoicePdfBytes(const PdfDocument& doc, std::string& error);

// `text` made fit for pango, which needs valid UTF-8 and draws control
// characters as boxes: each byte that does not start a well-formed UTF-8
// sequence (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF, no truncated sequence) becomes U+FFFD, and so do NUL, the other
// C0 controls, DEL and the C1 controls, except that a tab becomes a space
// and "\r\n", "\r" and "\n" become "\n". Text longer than kFieldBytesMax is
// cut there (on a character boundary) and says how much was left out.
std::string ToValidUtf8(std::string_view text);

// A field is a few hundred bytes in any real invoice; this bound keeps a
// hostile one (megabytes of description) from making thousands of pages.
inline constexpr size_t kFieldBytesMax = 65536;

}  // namespace tally::render
