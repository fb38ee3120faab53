#include "documents/invoice_export.h"

#include <date/tz.h>

#include <chrono>
#include <optional>

#include "base/assert.h"
#include "pricing/currency.h"
#include "pricing/decimal.h"
#include "pricing/time.h"

namespace tally::documents {

namespace {

std::string PerText(int64_t per) {
    switch (per) {
        case 1: return "";
        case 1000: return " / 1K";
        case 1000000: return " / 1M";
        default: return " / " + Grouped(per);
    }
}

render::PdfLine PdfLineOf(const billing::DocumentLine& l) {
    std::string quantity = l.quantity ? Grouped(*l.quantity) + (l.unit.empty() ? "" : " " + l.unit) : "";
    return {std::to_string(l.line_no), LineDescription(l), quantity, UnitPrice(l), l.amount_rounded};
}

render::PdfParty CustomerOf(const std::string& customer, const std::string& customer_name) {
    return {customer_name.empty() ? customer : customer_name, "Customer ID " + customer, "", ""};
}

// A stored amount: the ledger's numeric columns as text, so it parses.
Decimal Stored(const std::string& text) {
    std::optional<Decimal> d = Decimal::Parse(text);
    TALLY_ASSERT(d.has_value());
    return *d;
}

int MinorDigits(const std::string& currency) {
    std::optional<Currency> c = Currency::FromCode(currency);
    return c ? c->minor_digits() : 2;
}

}  // namespace

std::string Grouped(int64_t n) {
    // Through the unsigned magnitude, so that INT64_MIN does not overflow.
    const uint64_t magnitude = n < 0 ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
    const std::string digits = std::to_string(magnitude);
    std::string out = n < 0 ? "-" : "";
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

std::string LineDescription(const billing::DocumentLine& l) {
    if (l.kind != "usage" && l.kind != "free_quota" && l.kind != "unpriced") return l.description;
    std::string d = l.model + " · " + l.unit + " · " + l.band;
    if (!l.output_condition.empty()) d += " " + l.output_condition;
    if (!l.window.empty()) d += " " + l.window;
    if (l.batch) d += " batch";
    if (l.thinking) d += " thinking";
    if (!l.tier.empty()) d += " · " + l.tier;
    if (l.kind == "free_quota") d += " · free: " + l.description;
    if (l.kind == "unpriced") d += " · " + l.description;
    return d + " · " + l.plan_version;
}

std::string UnitPrice(const billing::DocumentLine& line) {
    return line.rate.empty() ? "" : line.rate + PerText(line.rate_per);
}

std::string LocalPeriod(const billing::InvoiceDocument& d) {
    std::optional<Instant> start = ParseRfc3339(d.period_start);
    std::optional<Instant> end = ParseRfc3339(d.period_end);
    const date::time_zone* zone = nullptr;
    try {
        zone = date::locate_zone(d.time_zone);
    } catch (const std::exception&) {
        zone = nullptr;
    }
    if (!start || !end || zone == nullptr) return d.period_start + " to " + d.period_end;
    auto day = [&](Instant t) {
        const auto local = date::zoned_time<std::chrono::milliseconds>(zone, t).get_local_time();
        return date::format("%F", date::floor<date::days>(local));
    };
    return d.period + " (" + day(*start) + " to " + day(*end - std::chrono::milliseconds(1)) + ", " + d.time_zone + ")";
}

render::PdfDocument PdfOf(const billing::InvoiceDocument& d, const ledger::Issuer& issuer) {
    render::PdfDocument pdf;
    pdf.title = "Invoice";
    pdf.number = d.number;
    pdf.status = d.status;
    pdf.issue_date = d.finalized_at.size() >= 10 ? d.finalized_at.substr(0, 10) : "";
    pdf.period = LocalPeriod(d);
    pdf.currency = d.currency;
    pdf.issuer = {issuer.name, issuer.address, issuer.tax_id, issuer.email};
    pdf.customer = CustomerOf(d.customer, d.customer_name);
    for (const auto& l : d.lines) {
        pdf.lines.push_back(PdfLineOf(l));
        if (l.kind == "adjustment") {
            pdf.notes.push_back("Line " + std::to_string(l.line_no) + " corrects " + l.adjusts_period + " (invoice " +
                                l.adjusts_invoice + ") for usage billed after it was finalized.");
        }
    }
    pdf.totals.push_back({"Subtotal", d.subtotal, false});
    pdf.totals.push_back({"Tax " + d.tax_percent + "%", d.tax, false});
    pdf.totals.push_back({"Total " + d.currency, d.total, true});
    for (const auto& g : d.grants) pdf.totals.push_back({"Prepaid " + g.name, "-" + g.amount, false});
    if (!d.grants.empty()) pdf.totals.push_back({"Amount due " + d.currency, d.amount_due, true});
    pdf.notes.push_back("Each line is priced exactly; the exact sum of the lines is " + d.exact_subtotal + " " +
                        d.currency + ", rounded " + d.rounding + " " +
                        (d.round_at == "line" ? "on each line" : "once on the invoice's exact sum") + ".");
    pdf.notes.push_back("Plan " + d.plan + ", " + std::to_string(d.calls) + " calls, usage billed up to " +
                        (d.cutoff.empty() ? std::string("(no cut-off)") : d.cutoff) + ".");
    if (!d.voided_at.empty()) pdf.notes.push_back("Voided " + d.voided_at + ": " + d.void_reason);
    pdf.sha256 = d.sha256;
    return pdf;
}

render::PdfDocument PdfOfCreditNote(const billing::CreditNoteDocument& note, const billing::InvoiceDocument& credited,
                                    const ledger::Issuer& issuer) {
    TALLY_ASSERT(note.invoice_number == credited.number);
    render::PdfDocument pdf;
    pdf.title = "Credit note";
    pdf.number = note.number;
    // A credit note is final when issued (its row is immutable from the
    // start): no DRAFT watermark.
    pdf.status = "finalized";
    pdf.issue_date = note.created_at.size() >= 10 ? note.created_at.substr(0, 10) : "";
    pdf.period = LocalPeriod(credited);
    pdf.currency = note.currency;
    pdf.reference = "Credits invoice " + note.invoice_number;
    pdf.issuer = {issuer.name, issuer.address, issuer.tax_id, issuer.email};
    pdf.customer = CustomerOf(note.customer, note.customer_name.empty() ? credited.customer_name : note.customer_name);
    const std::string of_invoice = "invoice " + credited.number + " (" + credited.period + ", subtotal " +
                                   credited.subtotal + ", tax " + credited.tax + ", total " + credited.total + " " +
                                   credited.currency + ")";
    if (note.kind == "void") {
        for (const auto& l : credited.lines) pdf.lines.push_back(PdfLineOf(l));
        // What partial credit notes took before the void: the lines as
        // invoiced add up to the invoice's subtotal, this line to the note's.
        const Decimal earlier = Stored(credited.subtotal) - Stored(note.subtotal);
        if (earlier != Decimal::FromInt(0)) {
            pdf.lines.push_back({std::to_string(credited.lines.size() + 1),
                                 "Less what earlier credit notes of invoice " + credited.number + " credited", "", "",
                                 (-earlier).ToString(MinorDigits(note.currency))});
        }
        pdf.notes.push_back("Voids " + of_invoice + ": credits all of it not credited before.");
    } else {
        pdf.lines.push_back(
            {"1", "Partial credit of invoice " + credited.number + ": " + note.reason, "", "", note.subtotal});
        pdf.notes.push_back("Credits part of " + of_invoice + ", with tax at the invoice's rate.");
    }
    pdf.totals.push_back({"Subtotal credited", note.subtotal, false});
    pdf.totals.push_back({"Tax " + credited.tax_percent + "%", note.tax, false});
    pdf.totals.push_back({"Total credited " + note.currency, note.total, true});
    pdf.notes.push_back("Reason: " + note.reason);
    pdf.notes.push_back("Issued " + note.created_at + "; amounts are credited to the customer.");
    pdf.sha256 = note.sha256;
    return pdf;
}

std::string CsvOf(const std::vector<billing::InvoiceDocument>& invoices) {
    return billing::ExportCsv(invoices);
}

std::string CsvOf(const std::vector<billing::CreditNoteDocument>& credit_notes) {
    return billing::ExportCsv(credit_notes);
}

std::string JsonOf(const std::vector<billing::InvoiceDocument>& invoices,
                   const std::vector<billing::CreditNoteDocument>& credit_notes) {
    std::string text = "[";
    for (const auto& d : invoices) text += (text.size() > 1 ? ",\n" : "") + billing::ExportJson(d);
    for (const auto& cn : credit_notes) text += (text.size() > 1 ? ",\n" : "") + billing::ExportJson(cn);
    return text + "]\n";
}

}  // namespace tally::documents
