// Exported invoice documents: what `tally invoice export` writes and what
// the HTTP API serves (`GET /v1/invoices/{id}.pdf` and `.csv`), built in one
// place so that both give the same bytes. Pure: stored documents in,
// formatted documents out; no database, no files (render:: writes the PDF).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "billing/invoice_document.h"
#include "ledger/invoice_store.h"
#include "render/invoice_pdf.h"

namespace tally::documents {

// 1234567 -> "1,234,567"; negative numbers keep their sign.
std::string Grouped(int64_t n);

// A line as people read it: a usage line is "model · unit · band [...] · plan
// version", other lines (discounts, adjustments, rounding) their description.
std::string LineDescription(const billing::DocumentLine& line);

// "0.80 / 1M" for a line with a rate, "" for one without.
std::string UnitPrice(const billing::DocumentLine& line);

// The local calendar dates of the invoice's period in its time zone:
// "2025-11 (2025-11-01 to 2025-11-30, Asia/Shanghai)"; the stored instants
// as they are if the zone is unknown.
std::string LocalPeriod(const billing::InvoiceDocument& invoice);

// The invoice as the PDF renderer's input: issuer, customer, period, the
// numbered lines, subtotal, tax, total (and prepaid grants, amount due),
// notes reconciling exact and rounded amounts, the hash. Write it with
// render::WriteInvoicePdf or render::InvoicePdfBytes.
render::PdfDocument PdfOf(const billing::InvoiceDocument& invoice, const ledger::Issuer& issuer);

// A credit note as the PDF renderer's input: title "Credit note", its own
// number, the reference "Credits invoice INV-...", issuer and customer as on
// the invoice, the invoice's period, what it credits, the credited
// subtotal, tax and total, the reason and the credit note's hash. Amounts
// are printed as credited (positive, as the ledger stores them).
//   - A void credits the whole invoice: its lines as invoiced, less what
//     earlier partial credit notes already credited (a line of its own).
//   - A partial credit is one line: that amount of the invoice's subtotal.
// REQUIRES: `credited` is the invoice the note credits (same number).
render::PdfDocument PdfOfCreditNote(const billing::CreditNoteDocument& note, const billing::InvoiceDocument& credited,
                                    const ledger::Issuer& issuer);

// Invoices as CSV (billing::ExportCsv: one row per line, header row).
std::string CsvOf(const std::vector<billing::InvoiceDocument>& invoices);
// Credit notes as CSV (billing::ExportCsv: one row per credit note). The
// columns differ from the invoices', so the two never share a file.
std::string CsvOf(const std::vector<billing::CreditNoteDocument>& credit_notes);

// Invoices, then credit notes, as a JSON array of their billing::ExportJson
// objects (each says which it is in "document"), one per line of text,
// ending in a newline ("[]\n" for none).
std::string JsonOf(const std::vector<billing::InvoiceDocument>& invoices,
                   const std::vector<billing::CreditNoteDocument>& credit_notes = {});

}  // namespace tally::documents
