#include "documents/invoice_export.h"

#include <date/tz.h>

#include <chrono>
#include <optional>

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
        return date::format("%F", date::floor<date::days>(date::zoned_time<std::chrono::milliseconds>(zone, t).get_local_time()));
    };
    return d.period + " (" + day(*start) + " to " + day(*end - std::chrono::milliseconds(1)) + ", " + d.time_zone + ")";
}

ledger::Issuer IssuerNamed(const std::vector<ledger::Issuer>& issuers, const std::string& issuer_id) {
    for (const ledger::Issuer& is : issuers) {
        if (is.issuer == issuer_id) return is;
    }
    ledger::Issuer unknown;
    unknown.issuer = issuer_id;
    return unknown;
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
    pdf.customer = {d.customer_name.empty() ? d.customer : d.customer_name, "Customer ID " + d.customer, "", ""};
    for (const auto& l : d.lines) {
        std::string quantity = l.quantity ? Grouped(*l.quantity) + (l.unit.empty() ? "" : " " + l.unit) : "";
        pdf.lines.push_back({std::to_string(l.line_no), LineDescription(l), quantity, UnitPrice(l), l.amount_rounded});
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

std::string CsvOf(const std::vector<billing::InvoiceDocument>& invoices) {
    return billing::ExportCsv(invoices);
}

std::string JsonOf(const std::vector<billing::InvoiceDocument>& invoices) {
    std::string text = "[";
    for (size_t i = 0; i < invoices.size(); ++i) text += (i > 0 ? ",\n" : "") + billing::ExportJson(invoices[i]);
    return text + "]\n";
}

}  // namespace tally::documents
