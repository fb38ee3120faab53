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

// The issuer with id `issuer_id` among `issuers`; one with only the id set
// when there is none (the PDF then prints no issuer details).
ledger::Issuer IssuerNamed(const std::vector<ledger::Issuer>& issuers, const std::string& issuer_id);

// The invoice as the PDF renderer's input: issuer, customer, period, the
// numbered lines, subtotal, tax, total (and prepaid grants, amount due),
// notes reconciling exact and rounded amounts, the hash. Write it with
// render::WriteInvoicePdf or render::InvoicePdfBytes.
render::PdfDocument PdfOf(const billing::InvoiceDocument& invoice, const ledger::Issuer& issuer);

// Invoices as CSV (billing::ExportCsv: one row per line, header row).
std::string CsvOf(const std::vector<billing::InvoiceDocument>& invoices);

// Invoices as a JSON array of billing::ExportJson objects, one per line of
// text, ending in a newline ("[]\n" for none).
std::string JsonOf(const std::vector<billing::InvoiceDocument>& invoices);

}  // namespace tally::documents
