#include "billing/invoice_document.h"

#include <date/date.h>
#include <fmt/format.h>
#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>

#include "base/assert.h"
#include "base/int128.h"

namespace tally::billing {

namespace {

std::string HourText(int32_t hour) {
    return FormatRfc3339(Instant{std::chrono::hours(hour)});
}

// Appends `value` as `digits` decimal digits, zero-padded.
void AppendDigits(uint64_t value, int digits, std::string* out) {
    char buf[20];
    TALLY_ASSERT(digits >= 1);
    TALLY_ASSERT(digits <= static_cast<int>(sizeof buf));
    for (int i = digits - 1; i >= 0; --i) {
        buf[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
    TALLY_ASSERT(value == 0);
    out->append(buf, static_cast<size_t>(digits));
}

// HourText of the hours invoices hold (years 0000 to 9999: FormatRfc3339's
// "%04d" has four digits there), without snprintf; other hours go to
// HourText itself. The lines of an invoice run make hundreds of thousands.
std::string LineHourText(int32_t hour) {
    const date::sys_days day{date::days(hour >= 0 ? hour / 24 : -((-static_cast<int64_t>(hour) + 23) / 24))};
    const int32_t hour_of_day = hour - static_cast<int32_t>(day.time_since_epoch().count()) * 24;
    const date::year_month_day ymd{day};
    const int year = static_cast<int>(ymd.year());
    if (year < 0 || year > 9999) return HourText(hour);
    TALLY_ASSERT(hour_of_day >= 0);
    TALLY_ASSERT(hour_of_day < 24);
    std::string out;
    out.reserve(20);
    AppendDigits(static_cast<uint64_t>(year), 4, &out);
    out += '-';
    AppendDigits(static_cast<unsigned>(ymd.month()), 2, &out);
    out += '-';
    AppendDigits(static_cast<unsigned>(ymd.day()), 2, &out);
    out += 'T';
    AppendDigits(static_cast<uint64_t>(hour_of_day), 2, &out);
    out += ":00:00Z";
    return out;
}

// Decimal::ToString(min_fraction_digits) with one 128-bit division in all
// (ToString divides by ten per digit), when the whole part fits 64 bits;
// else ToString itself. The same text: sign, whole digits, and the 18
// fraction digits without trailing zeros, but at least min_fraction_digits.
std::string DecimalText(Decimal value, int min_fraction_digits) {
    static_assert(Decimal::kScale == 18, "the fraction is one uint64_t of 18 digits");
    TALLY_ASSERT(min_fraction_digits >= 0);
    TALLY_ASSERT(min_fraction_digits <= Decimal::kScale);
    const int128 raw = value.raw();
    const uint128 magnitude = raw < 0 ? static_cast<uint128>(-(raw + 1)) + 1 : static_cast<uint128>(raw);
    const auto one = static_cast<uint128>(Decimal::kOne);
    const uint128 whole = magnitude / one;
    if (whole > std::numeric_limits<uint64_t>::max()) return value.ToString(min_fraction_digits);
    uint64_t fraction = static_cast<uint64_t>(magnitude % one);
    char digits[Decimal::kScale];
    for (int i = Decimal::kScale - 1; i >= 0; --i) {
        digits[i] = static_cast<char>('0' + fraction % 10);
        fraction /= 10;
    }
    int keep = Decimal::kScale;
    while (keep > 0 && digits[keep - 1] == '0') --keep;
    keep = std::max(keep, min_fraction_digits);
    std::string out;
    out.reserve(48);
    if (raw < 0) out += '-';
    char whole_text[24];
    const auto [end, ec] = std::to_chars(whole_text, whole_text + sizeof whole_text, static_cast<uint64_t>(whole));
    TALLY_ASSERT(ec == std::errc());
    out.append(whole_text, end);
    if (keep > 0) {
        out += '.';
        out.append(digits, static_cast<size_t>(keep));
    }
    return out;
}

bool HasRollups(const InvoiceLine& l) {
    return l.kind == LineKind::kUsage || l.kind == LineKind::kFreeQuota || l.kind == LineKind::kUnpriced;
}

// Appends `"key":value` pairs with commas in between.
class JsonObject {
   public:
    explicit JsonObject(std::string* out) : out_(out) { *out_ += '{'; }
    JsonObject& Str(std::string_view key, std::string_view value) { return Raw(key, JsonQuote(value)); }
    JsonObject& Int(std::string_view key, int64_t value) { return Raw(key, std::to_string(value)); }
    JsonObject& Bool(std::string_view key, bool value) { return Raw(key, value ? "true" : "false"); }
    JsonObject& Raw(std::string_view key, std::string_view json) {
        if (!first_) *out_ += ',';
        first_ = false;
        *out_ += JsonQuote(key);
        *out_ += ':';
        *out_ += json;
        return *this;
    }
    void Close() { *out_ += '}'; }

   private:
    std::string* out_;
    bool first_ = true;
};

std::string StringArray(const std::vector<std::string>& values) {
    std::string out = "[";
    for (size_t i = 0; i < values.size(); ++i) out += (i > 0 ? "," : "") + JsonQuote(values[i]);
    return out + "]";
}

std::string LineJson(const DocumentLine& l) {
    std::string out;
    JsonObject o(&out);
    o.Int("line_no", l.line_no).Str("kind", l.kind).Str("description", l.description);
    o.Str("plan_version", l.plan_version).Str("model", l.model).Str("unit", l.unit).Str("band", l.band);
    o.Str("output_condition", l.output_condition).Str("window", l.window).Bool("batch", l.batch);
    o.Bool("thinking", l.thinking).Str("tier", l.tier);
    o.Raw("quantity", l.quantity ? JsonQuote(std::to_string(*l.quantity)) : "null");
    o.Str("rate", l.rate).Int("rate_per", l.rate_per);
    o.Str("amount", l.amount).Str("amount_rounded", l.amount_rounded);
    o.Str("first_hour", l.first_hour).Str("last_hour", l.last_hour);
    o.Str("adjusts_period", l.adjusts_period).Str("adjusts_invoice", l.adjusts_invoice);
    o.Raw("basis_calls", l.basis_calls ? JsonQuote(std::to_string(*l.basis_calls)) : "null");
    o.Str("basis_subtotal", l.basis_subtotal);
    o.Close();
    return out;
}

// The fields the hash covers, in their fixed order.
void CanonicalFields(const InvoiceDocument& d, JsonObject* o) {
    o->Str("document", "invoice").Str("number", d.number).Str("issuer", d.issuer);
    o->Str("customer", d.customer).Str("customer_name", d.customer_name).Str("plan", d.plan);
    o->Str("period", d.period).Str("period_start", d.period_start).Str("period_end", d.period_end);
    o->Str("time_zone", d.time_zone).Str("currency", d.currency).Str("rounding", d.rounding);
    o->Str("round_at", d.round_at).Raw("plan_versions", StringArray(d.plan_versions));
    o->Raw("calls", JsonQuote(std::to_string(d.calls)));
    std::string lines = "[";
    for (size_t i = 0; i < d.lines.size(); ++i) lines += (i > 0 ? "," : "") + LineJson(d.lines[i]);
    o->Raw("lines", lines + "]");
    o->Str("exact_subtotal", d.exact_subtotal).Str("subtotal", d.subtotal).Str("tax_percent", d.tax_percent);
    o->Str("tax", d.tax).Str("total", d.total);
    std::string grants = "[";
    for (size_t i = 0; i < d.grants.size(); ++i) {
        std::string g;
        JsonObject go(&g);
        go.Str("name", d.grants[i].name).Str("amount", d.grants[i].amount);
        go.Close();
        grants += (i > 0 ? "," : "") + g;
    }
    o->Raw("grants", grants + "]");
    o->Str("amount_due", d.amount_due).Str("cutoff", d.cutoff).Str("finalized_at", d.finalized_at);
}

// True for "12", "-0.50", "+3.1": a number a spreadsheet reads as one.
bool PlainNumber(std::string_view s) {
    if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
    const size_t dot = s.find('.');
    const std::string_view whole = s.substr(0, dot);
    const std::string_view fraction = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
    auto digits = [](std::string_view d) {
        return !d.empty() && d.find_first_not_of("0123456789") == std::string_view::npos;
    };
    return digits(whole) && (dot == std::string_view::npos || digits(fraction));
}

// RFC 4180 quoting; and a text that a spreadsheet would run as a formula
// (it starts with = + - @, a tab or a carriage return, and is not a plain
// number) gets a leading ' so that it shows as text (CSV injection).
std::string CsvField(std::string_view s) {
    const bool formula = !s.empty() && std::string_view("=+-@\t\r").find(s.front()) != std::string_view::npos &&
                         !PlainNumber(s);
    if (!formula && s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
    std::string out = formula ? "\"'" : "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

}  // namespace

std::string JsonQuote(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(ch) < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<unsigned char>(ch));
                } else {
                    out += ch;
                }
        }
    }
    return out + "\"";
}

InvoiceDocument FromInvoice(const Invoice& inv, int32_t period_id) {
    const int d = inv.currency.minor_digits();
    InvoiceDocument doc;
    doc.status = "draft";
    doc.customer = inv.customer;
    doc.customer_name = inv.customer_name;
    doc.plan = inv.plan;
    doc.period = inv.period;
    doc.period_id = period_id;
    doc.period_start = FormatRfc3339(inv.period_start);
    doc.period_end = FormatRfc3339(inv.period_end);
    doc.time_zone = inv.time_zone;
    doc.currency = std::string(inv.currency.code());
    doc.rounding = std::string(RoundingModeName(inv.rounding));
    doc.round_at = inv.rounding_place == RoundingPlace::kLine ? "line" : "invoice";
    doc.plan_versions = inv.plan_versions;
    doc.calls = inv.calls;
    doc.exact_subtotal = DecimalText(inv.exact_subtotal.value(), 0);
    doc.subtotal = DecimalText(inv.subtotal.value(), d);
    doc.tax_percent = inv.tax_percent.ToString();
    doc.tax = DecimalText(inv.tax.value(), d);
    doc.total = DecimalText(inv.total.value(), d);
    doc.amount_due = DecimalText(inv.amount_due.value(), d);
    for (const GrantUse& g : inv.grants) doc.grants.push_back({g.name, g.amount.ToString(d)});
    doc.error = inv.error;
    doc.lines.reserve(inv.lines.size());
    int32_t no = 0;
    for (const InvoiceLine& l : inv.lines) {
        DocumentLine& line = doc.lines.emplace_back();
        line.line_no = ++no;
        line.kind = std::string(LineKindName(l.kind));
        line.description = l.description;
        line.plan_version = l.plan_version;
        line.model = l.model;
        line.unit = l.unit;
        line.band = l.band;
        line.output_condition = l.output_condition;
        line.window = l.window;
        line.batch = l.batch;
        line.thinking = l.thinking;
        line.tier = l.tier;
        if (HasRollups(l)) {
            line.quantity = l.quantity;
            line.first_hour = LineHourText(l.first_hour);
            line.last_hour = LineHourText(l.last_hour);
        }
        if (l.rate) {
            line.rate = DecimalText(l.rate->price(), 0);
            line.rate_per = l.rate->per();
        }
        TALLY_ASSERT(l.amount_rounded.currency() == inv.currency);
        line.amount = DecimalText(l.amount.value(), 0);
        line.amount_rounded = DecimalText(l.amount_rounded.value(), d);
    }
    return doc;
}

std::string CanonicalJson(const InvoiceDocument& doc) {
    std::string out;
    JsonObject o(&out);
    CanonicalFields(doc, &o);
    o.Close();
    return out;
}

std::string ExportJson(const InvoiceDocument& doc) {
    std::string out;
    JsonObject o(&out);
    o.Int("invoice_id", doc.invoice_id).Str("status", doc.status);
    CanonicalFields(doc, &o);
    o.Str("grace_until", doc.grace_until).Str("error", doc.error);
    o.Str("voided_at", doc.voided_at).Str("void_reason", doc.void_reason).Str("sha256", doc.sha256);
    o.Close();
    return out;
}

std::string ExportCsv(const std::vector<InvoiceDocument>& docs) {
    std::string out =
        "invoice_number,status,issuer,customer,customer_name,plan,period,currency,line_no,kind,description,"
        "plan_version,model,unit,band,output_condition,window,batch,thinking,tier,quantity,rate,rate_per,amount,"
        "amount_rounded,first_hour,last_hour,adjusts_period,subtotal,tax,total,amount_due,sha256\r\n";
    for (const InvoiceDocument& d : docs) {
        for (const DocumentLine& l : d.lines) {
            const std::vector<std::string> fields = {
                d.number, d.status, d.issuer, d.customer, d.customer_name, d.plan, d.period, d.currency,
                std::to_string(l.line_no), l.kind, l.description, l.plan_version, l.model, l.unit, l.band,
                l.output_condition, l.window, l.batch ? "true" : "false", l.thinking ? "true" : "false", l.tier,
                l.quantity ? std::to_string(*l.quantity) : "", l.rate, l.rate_per > 0 ? std::to_string(l.rate_per) : "",
                l.amount, l.amount_rounded, l.first_hour, l.last_hour, l.adjusts_period, d.subtotal, d.tax, d.total,
                d.amount_due, d.sha256};
            for (size_t i = 0; i < fields.size(); ++i) out += (i > 0 ? "," : "") + CsvField(fields[i]);
            out += "\r\n";
        }
    }
    return out;
}

namespace {

// The fields a credit note's hash covers, in their fixed order.
void CanonicalFields(const CreditNoteDocument& d, JsonObject* o) {
    o->Str("document", "credit_note").Str("number", d.number).Str("issuer", d.issuer);
    o->Str("invoice_number", d.invoice_number).Str("customer", d.customer).Str("customer_name", d.customer_name);
    o->Str("currency", d.currency).Str("kind", d.kind).Str("reason", d.reason);
    o->Str("subtotal", d.subtotal).Str("tax", d.tax).Str("total", d.total).Str("created_at", d.created_at);
}

}  // namespace

std::string CanonicalJson(const CreditNoteDocument& d) {
    std::string out;
    JsonObject o(&out);
    CanonicalFields(d, &o);
    o.Close();
    return out;
}

std::string ExportJson(const CreditNoteDocument& d) {
    std::string out;
    JsonObject o(&out);
    o.Int("credit_note_id", d.credit_note_id);
    CanonicalFields(d, &o);
    o.Str("sha256", d.sha256);
    o.Close();
    return out;
}

std::string ExportCsv(const std::vector<CreditNoteDocument>& docs) {
    std::string out =
        "credit_note_number,kind,issuer,invoice_number,customer,customer_name,currency,reason,subtotal,tax,total,"
        "created_at,sha256\r\n";
    for (const CreditNoteDocument& d : docs) {
        const std::vector<std::string> fields = {d.number,        d.kind,       d.issuer, d.invoice_number, d.customer,
                                                 d.customer_name, d.currency,   d.reason, d.subtotal,       d.tax,
                                                 d.total,         d.created_at, d.sha256};
        for (size_t i = 0; i < fields.size(); ++i) out += (i > 0 ? "," : "") + CsvField(fields[i]);
        out += "\r\n";
    }
    return out;
}

std::string Sha256Hex(std::string_view bytes) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
    std::string hex;
    hex.reserve(2 * SHA256_DIGEST_LENGTH);
    for (unsigned char c : digest) hex += fmt::format("{:02x}", c);
    return hex;
}

}  // namespace tally::billing
