#include "app/report.h"

#include "app/text_table.h"
#include "billing/invoice_document.h"

#include <fmt/format.h>

#include <algorithm>

namespace tally {

namespace {

std::string RateText(const std::optional<Rate>& rate) {
    if (!rate) return "";
    std::string per;
    switch (rate->per()) {
        case 1: per = ""; break;
        case 1000: per = "/1K"; break;
        case 1000000: per = "/1M"; break;
        default: per = "/" + std::to_string(rate->per());
    }
    return rate->price().ToString() + per;
}

std::string Cell(const InvoiceLine& l) {
    std::string c = l.band;
    if (!l.output_condition.empty()) c += " " + l.output_condition;
    if (!l.window.empty()) c += " " + l.window;
    if (l.batch) c += " batch";
    if (l.thinking) c += " thinking";
    return c;
}


}  // namespace

size_t DisplayWidth(std::string_view s) {
    size_t width = 0;
    for (size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        uint32_t cp = c;
        size_t n = 1;
        if (c >= 0xf0 && i + 3 < s.size() + 1) {
            n = 4;
            cp = c & 0x07u;
        } else if (c >= 0xe0) {
            n = 3;
            cp = c & 0x0fu;
        } else if (c >= 0xc0) {
            n = 2;
            cp = c & 0x1fu;
        }
        for (size_t k = 1; k < n && i + k < s.size(); ++k)
            cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3fu);
        bool wide = (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd);
        width += wide ? 2 : 1;
        i += n;
    }
    return width;
}

std::string JsonString(std::string_view s) {
    return billing::JsonQuote(s);
}

size_t InvoiceErrors(const std::vector<Invoice>& invoices) {
    size_t n = 0;
    for (const Invoice& inv : invoices) n += inv.error.empty() ? 0U : 1U;
    return n;
}

void WriteInvoicesTable(std::ostream& out, const std::vector<Invoice>& invoices, const RunReport& report) {
    const RateRunStats& stats = report.stats;
    for (const Invoice& inv : invoices) {
        const int d = inv.currency.minor_digits();
        const std::string cur(inv.currency.code());
        out << "Customer " << inv.customer;
        if (!inv.customer_name.empty()) out << " (" << inv.customer_name << ")";
        out << "  plan " << inv.plan;
        std::string versions;
        for (const auto& v : inv.plan_versions) versions += (versions.empty() ? "" : ", ") + v;
        if (!versions.empty()) out << " [" << versions << "]";
        out << "\nPeriod " << inv.period << " (" << FormatRfc3339(inv.period_start) << " to "
            << FormatRfc3339(inv.period_end) << ", time zone " << inv.time_zone << ")  " << inv.calls
            << " calls  amounts in " << cur << "\n";
        if (!inv.error.empty()) {
            out << "  NOT PRICED: " << inv.error << "\n\n";
            continue;
        }
        std::vector<std::vector<std::string>> rows = {
            {"model", "unit", "cell", "tier", "version", "quantity", "rate", "exact amount", "amount"}};
        for (const auto& l : inv.lines) {
            if (l.kind == LineKind::kUsage || l.kind == LineKind::kFreeQuota || l.kind == LineKind::kUnpriced) {
                std::string tier = l.kind == LineKind::kFreeQuota  ? "free: " + l.description
                                   : l.kind == LineKind::kUnpriced ? "unpriced"
                                                                   : l.tier;
                rows.push_back({l.model, l.unit, Cell(l), tier, l.plan_version, std::to_string(l.quantity),
                                RateText(l.rate), l.amount.ToString(d), l.amount_rounded.ToString(d)});
            } else {
                rows.push_back({std::string(LineKindName(l.kind)), l.description, "", "", "", "", "",
                                l.amount.ToString(d), l.amount_rounded.ToString(d)});
            }
        }
        WriteTextTable(out, rows, {false, false, false, false, false, true, true, true, true});
        // How the exact sum and the subtotal reconcile: exact sum + rounding
        // (+ commitment true-up + adjustments) = subtotal.
        Amount rounded = Amount::Zero(inv.currency);
        Amount commitment = Amount::Zero(inv.currency);
        Amount adjustments = Amount::Zero(inv.currency);
        for (const auto& l : inv.lines) {
            if (l.kind == LineKind::kCommitment) {
                commitment += l.amount_rounded;
            } else if (l.kind == LineKind::kAdjustment) {
                adjustments += l.amount_rounded;
            } else {
                rounded += l.amount_rounded;
            }
        }
        std::vector<std::vector<std::string>> totals = {
            {"exact sum", inv.exact_subtotal.ToString(d) + " " + cur},
            {"rounding (at " + std::string(RoundingPlaceName(inv.rounding_place)) + ")",
             (rounded - inv.exact_subtotal).ToString(d) + " " + cur}};
        if (!commitment.is_zero()) totals.push_back({"commitment true-up", commitment.ToString(d) + " " + cur});
        if (!adjustments.is_zero()) totals.push_back({"adjustments", adjustments.ToString(d) + " " + cur});
        totals.push_back({"subtotal", inv.subtotal.ToString(d) + " " + cur});
        totals.push_back({"tax " + inv.tax_percent.ToString() + "%", inv.tax.ToString(d) + " " + cur});
        totals.push_back({"total", inv.total.ToString(d) + " " + cur});
        for (const auto& g : inv.grants) totals.push_back({"grant " + g.name, "-" + g.amount.ToString(d) + " " + cur});
        if (!inv.grants.empty()) totals.push_back({"amount due", inv.amount_due.ToString(d) + " " + cur});
        WriteTextTable(out, totals, {false, true});
        out << "\n";
    }
    if (stats.lines == 0) {  // priced from the ledger's rollups, not from a file
        out << stats.rated << " calls priced\n";
        return;
    }
    out << stats.lines << " event lines: " << stats.rated << " rated, " << stats.rejected << " rejected";
    if (stats.duplicates > 0) out << ", " << stats.duplicates << " duplicates (billed once)";
    if (stats.outside_period > 0) out << ", " << stats.outside_period << " outside the period";
    if (stats.other_customers > 0) out << ", " << stats.other_customers << " of other customers";
    out << "\n";
    for (const auto& r : report.rejected) {
        out << "  rejected " << r.file << ":" << r.line << ": " << r.code << ": " << r.reason << "\n";
    }
}

void WriteInvoicesJson(std::ostream& out, const std::vector<Invoice>& invoices, const RunReport& report) {
    const std::vector<RejectedLine>& rejected = report.rejected;
    const RateRunStats& stats = report.stats;
    auto dec = [](const auto& v) { return JsonString(v.ToString()); };  // Decimal, Amount, Percent
    out << "{\"invoices\":[";
    for (size_t i = 0; i < invoices.size(); ++i) {
        const Invoice& inv = invoices[i];
        const int d = inv.currency.minor_digits();
        if (i > 0) out << ",";
        out << "{\"customer\":" << JsonString(inv.customer) << ",\"customer_name\":" << JsonString(inv.customer_name)
            << ",\"plan\":" << JsonString(inv.plan) << ",\"period\":" << JsonString(inv.period)
            << ",\"period_start\":" << JsonString(FormatRfc3339(inv.period_start))
            << ",\"period_end\":" << JsonString(FormatRfc3339(inv.period_end))
            << ",\"time_zone\":" << JsonString(inv.time_zone) << ",\"currency\":" << JsonString(inv.currency.code())
            << ",\"rounding\":" << JsonString(RoundingModeName(inv.rounding))
            << ",\"round_at\":" << JsonString(RoundingPlaceName(inv.rounding_place)) << ",\"plan_version\":";
        out << JsonString(inv.plan_versions.empty() ? "" : inv.plan_versions.back()) << ",\"plan_versions\":[";
        for (size_t k = 0; k < inv.plan_versions.size(); ++k) {
            out << (k > 0 ? "," : "") << JsonString(inv.plan_versions[k]);
        }
        out << "],\"calls\":" << inv.calls << ",\"lines\":[";
        for (size_t k = 0; k < inv.lines.size(); ++k) {
            const InvoiceLine& l = inv.lines[k];
            out << (k > 0 ? "," : "") << "{\"kind\":" << JsonString(LineKindName(l.kind));
            if (l.kind == LineKind::kUsage || l.kind == LineKind::kFreeQuota || l.kind == LineKind::kUnpriced) {
                out << ",\"plan_version\":" << JsonString(l.plan_version) << ",\"model\":" << JsonString(l.model)
                    << ",\"unit\":" << JsonString(l.unit) << ",\"band\":" << JsonString(l.band)
                    << ",\"output_condition\":" << JsonString(l.output_condition)
                    << ",\"window\":" << JsonString(l.window) << ",\"batch\":" << (l.batch ? "true" : "false")
                    << ",\"thinking\":" << (l.thinking ? "true" : "false") << ",\"tier\":" << JsonString(l.tier)
                    << ",\"quantity\":" << JsonString(std::to_string(l.quantity));
                if (l.rate) {
                    out << ",\"rate\":" << dec(l.rate->price()) << ",\"rate_per\":" << l.rate->per();
                }
                // The first and the last hour (their starts) of the rollups the line sums.
                out << ",\"first_hour\":" << JsonString(FormatRfc3339(Instant{std::chrono::hours(l.first_hour)}))
                    << ",\"last_hour\":" << JsonString(FormatRfc3339(Instant{std::chrono::hours(l.last_hour)}));
            }
            out << ",\"description\":" << JsonString(l.description) << ",\"amount\":" << dec(l.amount)
                << ",\"amount_rounded\":" << JsonString(l.amount_rounded.ToString(d)) << "}";
        }
        out << "],\"usage_exact\":" << dec(inv.usage_exact) << ",\"exact_subtotal\":" << dec(inv.exact_subtotal)
            << ",\"subtotal\":" << JsonString(inv.subtotal.ToString(d)) << ",\"tax_percent\":" << dec(inv.tax_percent)
            << ",\"tax\":" << JsonString(inv.tax.ToString(d)) << ",\"total\":" << JsonString(inv.total.ToString(d))
            << ",\"grants\":[";
        for (size_t k = 0; k < inv.grants.size(); ++k) {
            out << (k > 0 ? "," : "") << "{\"name\":" << JsonString(inv.grants[k].name)
                << ",\"amount\":" << JsonString(inv.grants[k].amount.ToString(d)) << "}";
        }
        out << "],\"amount_due\":" << JsonString(inv.amount_due.ToString(d));
        if (!inv.error.empty()) out << ",\"error\":" << JsonString(inv.error);
        out << "}";
    }
    out << "],\"rejected\":[";
    for (size_t i = 0; i < rejected.size(); ++i) {
        out << (i > 0 ? "," : "") << "{\"file\":" << JsonString(rejected[i].file) << ",\"line\":" << rejected[i].line
            << ",\"code\":" << JsonString(rejected[i].code) << ",\"reason\":" << JsonString(rejected[i].reason)
            << "}";
    }
    out << "],\"duplicates\":[";
    for (size_t i = 0; i < report.duplicates.size(); ++i) {
        const DuplicateLine& d = report.duplicates[i];
        out << (i > 0 ? "," : "") << "{\"file\":" << JsonString(d.file) << ",\"line\":" << d.line
            << ",\"first_file\":" << JsonString(d.first_file) << ",\"first_line\":" << d.first_line << "}";
    }
    out << "],\"stats\":{\"lines\":" << stats.lines << ",\"rated\":" << stats.rated
        << ",\"rejected\":" << stats.rejected << ",\"outside_period\":" << stats.outside_period
        << ",\"other_customers\":" << stats.other_customers << ",\"duplicates\":" << stats.duplicates << "}}\n";
}

}  // namespace tally
