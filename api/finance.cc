#include "api/finance.h"

#include <chrono>
#include <date/date.h>
#include <string_view>

#include "api/json_body.h"
#include "api/queries.h"
#include "base/assert.h"
#include "base/reject_reason.h"
#include "billing/invoice_run.h"
#include "billing/margin_json.h"
#include "documents/invoice_export.h"
#include "ledger/migrations.h"
#include "pricing/currency.h"
#include "pricing/decimal.h"

namespace tally::api {

namespace {

using billing::JsonQuote;

constexpr size_t kReasonMax = 1000;  // bytes of a void's or credit note's reason (printed on the PDF)

// The ledger's refusals of what was asked (a finalized invoice finalized
// again, a credit above what is left, a period that has not ended) are 409s
// with the ledger's message; a run over its bound is a 503.
template <typename Body>
auto Ledger(Body body) -> decltype(body()) {
    try {
        return body();
    } catch (const ledger::LedgerError& e) {
        throw HttpError(409, "conflict", e.what());
    } catch (const ledger::RunTimedOut& e) {
        throw HttpError(503, "timeout", e.what());
    }
}

int32_t RequiredPeriod(const std::map<std::string, std::string>& body) {
    const std::string& text = body.at("period");
    const std::optional<int32_t> id = ParsePeriod(text);
    if (!id) throw BadRequest("period must be a month like 2025-11, not '" + text + "'");
    return *id;
}

// An optional customer id of a body: "" when absent.
std::string OptionalCustomer(const std::map<std::string, std::string>& body) {
    auto it = body.find("customer");
    if (it == body.end()) return std::string();
    if (it->second.empty() || it->second.size() > kValueMax) {
        throw BadRequest("customer must be a customer id of 1 to " + std::to_string(kValueMax) + " bytes");
    }
    return it->second;
}

std::string RequiredReason(const std::map<std::string, std::string>& body) {
    const std::string& reason = body.at("reason");
    const bool blank = reason.find_first_not_of(" \t\r\n") == std::string::npos;
    if (blank) throw BadRequest("reason must not be empty (it is printed on the credit note)");
    if (reason.size() > kReasonMax) {
        throw BadRequest("reason is longer than " + std::to_string(kReasonMax) + " bytes");
    }
    return reason;
}

std::string Actor(const ledger::Principal& who) {
    return "key:" + who.key_id;
}

// The invoice of a path's {id} (id or number): 404 when there is none.
billing::InvoiceDocument InvoiceOr404(FinanceBackend& backend, const std::string& id) {
    std::optional<billing::InvoiceDocument> doc = backend.Invoice(id);
    if (!doc) throw NotFound();
    return std::move(*doc);
}

std::string InvoiceName(const billing::InvoiceDocument& d) {
    return d.number.empty() ? "draft " + std::to_string(d.invoice_id) : "invoice " + d.number;
}

// A header value's file name: letters, digits, '.', '-', '_' only.
std::string FileName(std::string name) {
    for (char& c : name) {
        const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                           c == '-' || c == '_';
        if (!plain) c = '_';
    }
    return name;
}

void Attachment(Response* response, const std::string& content_type, const std::string& file) {
    response->content_type = content_type;
    response->headers.emplace_back("Content-Disposition", "attachment; filename=\"" + FileName(file) + "\"");
}

std::string FinalizedJson(const ledger::FinalizeResult& r) {
    return "{\"invoice_id\":" + std::to_string(r.invoice_id) + ",\"number\":" + JsonQuote(r.number) +
           ",\"customer\":" + JsonQuote(r.customer) + ",\"period\":" + JsonQuote(r.period) +
           ",\"total\":" + JsonQuote(r.total) + ",\"currency\":" + JsonQuote(r.currency) +
           ",\"sha256\":" + JsonQuote(r.sha256) + "}";
}

std::string StringArray(const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) out += (i == 0 ? "" : ",") + JsonQuote(items[i]);
    return out + "]";
}

// Finalized invoices as the answer (their audit rows were written with them).
std::string AnswerFinalized(const std::vector<ledger::FinalizeResult>& done, const std::vector<std::string>* not_priced) {
    std::string out = "{\"finalized\":[";
    for (size_t i = 0; i < done.size(); ++i) out += (i == 0 ? "" : ",") + FinalizedJson(done[i]);
    out += "]";
    if (not_priced != nullptr) out += ",\"not_priced\":" + StringArray(*not_priced);
    return out + "}";
}

ledger::AuditActor By(const ledger::Principal& who) {
    return {Actor(who), std::string(ledger::RoleName(who.role))};
}

void InvoiceRun(const ledger::Principal& who, const Request& request, FinanceBackend& backend, Response* response) {
    const auto body = ParseJsonBody(request.body, {{"period", true}, {"customer", false}});
    ledger::RunOptions o;
    o.period_id = RequiredPeriod(body);
    o.customer = OptionalCustomer(body);
    // A month that has not begun has nothing to bill (a typo would leave
    // commitment-only drafts of it).
    const date::year_month_day today{std::chrono::floor<date::days>(std::chrono::system_clock::now())};
    if (o.period_id > MonthId(static_cast<int>(today.year()), static_cast<int>(static_cast<unsigned>(today.month())))) {
        throw HttpError(409, "conflict", "period " + billing::PeriodLabel(o.period_id) + " has not begun");
    }
    const ledger::PeriodRun run = Ledger([&] { return backend.Run(o); });
    const ledger::RunResult& r = run.result;
    const std::string period = billing::PeriodLabel(o.period_id);
    response->body =
        "{\"run_id\":" + std::to_string(r.run_id) + ",\"period\":" + JsonQuote(period) +
        ",\"customer\":" + (o.customer.empty() ? "null" : JsonQuote(o.customer)) +
        ",\"customers\":" + std::to_string(r.customers) + ",\"drafts\":" + std::to_string(r.drafts) +
        ",\"not_priced\":" + std::to_string(r.not_priced) + ",\"adjustments\":" + std::to_string(r.adjustments) +
        ",\"left_finalized\":" + std::to_string(r.left_finalized) +
        ",\"cutoff\":" + (r.cutoff.empty() ? "null" : JsonQuote(r.cutoff)) +
        ",\"problems\":" + StringArray(r.problems) + ",\"unresolved_rollups\":" + std::to_string(r.unresolved_rollups) +
        ",\"margin_report_id\":" + (run.margin_report_id ? std::to_string(*run.margin_report_id) : "null") + "}";
    // After the run committed: a failure here must not read as "try again".
    try {
        backend.Audit(Actor(who), ledger::RoleName(who.role), "invoice.run", period,
                      "{\"run_id\":" + std::to_string(r.run_id) + ",\"period\":" + JsonQuote(period) +
                          ",\"customer\":" + JsonQuote(o.customer) + ",\"drafts\":" + std::to_string(r.drafts) +
                          ",\"not_priced\":" + std::to_string(r.not_priced) + "}");
    } catch (const std::exception&) {
        throw HttpError(500, "audit_failed",
                        "invoice run " + std::to_string(r.run_id) + " of " + period +
                            " was kept, but its audit row could not be written; tell the operator");
    }
}

void FinalizePeriod(const ledger::Principal& who, const Request& request, FinanceBackend& backend, Response* response) {
    const auto body = ParseJsonBody(request.body, {{"period", true}, {"customer", false}});
    const int32_t period = RequiredPeriod(body);
    std::vector<std::string> not_priced;
    const std::vector<ledger::FinalizeResult> done =
        Ledger([&] { return backend.FinalizePeriod(period, OptionalCustomer(body), &not_priced, By(who)); });
    response->body = AnswerFinalized(done, &not_priced);
}

void FinalizeOne(const Matched& m, const ledger::Principal& who, const Request& request, FinanceBackend& backend,
                 Response* response) {
    ParseJsonBody(request.body, {});
    const billing::InvoiceDocument doc = InvoiceOr404(backend, m.id);
    if (doc.status != "draft") {
        throw HttpError(409, "conflict",
                        InvoiceName(doc) + " is " + doc.status + " already: only a draft is finalized");
    }
    const std::vector<ledger::FinalizeResult> done =
        Ledger([&] { return backend.FinalizeIds({doc.invoice_id}, By(who)); });
    response->body = AnswerFinalized(done, nullptr);
}

// A void or a credit needs a finalized invoice: 409 for a draft or a void one.
void RequireFinalized(const billing::InvoiceDocument& doc) {
    if (doc.status == "finalized") return;
    throw HttpError(409, "conflict",
                    InvoiceName(doc) + " is " + doc.status + ": only a finalized invoice can be voided or credited");
}

void VoidInvoice(const Matched& m, const ledger::Principal& who, const Request& request, FinanceBackend& backend,
                 Response* response) {
    const auto body = ParseJsonBody(request.body, {{"reason", true}});
    const std::string reason = RequiredReason(body);
    const billing::InvoiceDocument doc = InvoiceOr404(backend, m.id);
    RequireFinalized(doc);
    const billing::CreditNoteDocument cn =
        Ledger([&] { return backend.Void(std::to_string(doc.invoice_id), reason, By(who)); });
    response->body = billing::ExportJson(cn);
}

void CreateCreditNote(const Matched& m, const ledger::Principal& who, const Request& request, FinanceBackend& backend,
                      Response* response) {
    const auto body = ParseJsonBody(request.body, {{"subtotal", true}, {"reason", true}});
    const std::string& subtotal = body.at("subtotal");
    const std::optional<Decimal> amount = Decimal::Parse(subtotal);
    if (!amount || amount->is_negative() || amount->is_zero()) {
        throw BadRequest("subtotal must be an amount before tax above zero like \"10.00\", not '" + subtotal + "'");
    }
    const std::string reason = RequiredReason(body);
    const billing::InvoiceDocument doc = InvoiceOr404(backend, m.id);
    RequireFinalized(doc);
    const std::optional<Currency> currency = Currency::FromCode(doc.currency);
    if (currency && amount->fraction_digits() > currency->minor_digits()) {
        throw BadRequest("subtotal " + subtotal + " has more decimal places than " + doc.currency + " allows (" +
                         std::to_string(currency->minor_digits()) + ")");
    }
    const billing::CreditNoteDocument cn =
        Ledger([&] { return backend.Credit(std::to_string(doc.invoice_id), subtotal, reason, By(who)); });
    response->body = billing::ExportJson(cn);
}

void CreditNotesOf(const Matched& m, FinanceBackend& backend, Response* response) {
    const billing::InvoiceDocument doc = InvoiceOr404(backend, m.id);
    std::string out = "{\"invoice\":" + JsonQuote(doc.number) + ",\"credit_notes\":[";
    if (doc.status != "draft") {  // a draft is never credited
        const std::vector<billing::CreditNoteDocument> notes =
            Ledger([&] { return backend.CreditNotes(std::to_string(doc.invoice_id)); });
        for (size_t i = 0; i < notes.size(); ++i) out += (i == 0 ? "" : ",") + billing::ExportJson(notes[i]);
    }
    response->body = out + "]}";
}

void CreditNote(const Matched& m, FinanceBackend& backend, Response* response) {
    std::optional<billing::CreditNoteDocument> cn = backend.CreditNote(m.id);
    if (!cn) throw NotFound();
    switch (m.route->id) {
        case RouteId::kCreditNote: response->body = billing::ExportJson(*cn); return;
        case RouteId::kCreditNoteCsv:
            Attachment(response, "text/csv; charset=utf-8", cn->number + ".csv");
            response->body = documents::CsvOf(std::vector<billing::CreditNoteDocument>{*cn});
            return;
        case RouteId::kCreditNotePdf: {
            const billing::InvoiceDocument credited = InvoiceOr404(backend, cn->invoice_number);
            response->body = backend.CreditNotePdf(*cn, credited);
            Attachment(response, "application/pdf", cn->number + ".pdf");
            return;
        }
        default: break;
    }
    TALLY_UNREACHABLE();
}

void ExportInvoices(const Target& target, const ledger::Principal& who, FinanceBackend& backend, Response* response) {
    const InvoiceQuery q = ParseInvoiceQuery(target, who);
    ledger::ListFilter f;
    f.period_id = q.period;
    f.customer = q.customer;
    f.status = q.status;
    const std::vector<billing::InvoiceDocument> docs = backend.Invoices(f);
    std::string file = "invoices";
    if (q.period) file += "-" + billing::PeriodLabel(*q.period);
    if (!q.customer.empty()) file += "-" + q.customer;
    if (!q.status.empty()) file += "-" + q.status;
    response->body = documents::CsvOf(docs);
    Attachment(response, "text/csv; charset=utf-8", file + ".csv");
}

void Margin(const Target& target, FinanceBackend& backend, Response* response) {
    const std::string* period_text = Parameter(target, "period");
    if (period_text == nullptr) throw BadRequest("period is required (a month like 2025-11)");
    const std::optional<int32_t> period = ParsePeriod(*period_text);
    if (!period) throw BadRequest("period must be a month like 2025-11, not '" + *period_text + "'");
    billing::MarginGroup by = billing::MarginGroup::kCustomer;
    if (const std::string* b = Parameter(target, "by")) {
        const std::optional<billing::MarginGroup> g = billing::ParseMarginGroup(*b);
        if (!g) throw BadRequest("by must be customer, model, plan, day or served_model, not '" + *b + "'");
        by = *g;
    }
    const ledger::PeriodMargin margin = Ledger([&] { return backend.Margin(*period); });
    std::string out = "{\"period\":" + JsonQuote(billing::PeriodLabel(*period)) +
                      ",\"by\":" + JsonQuote(billing::MarginGroupName(by)) + ",\"rows\":[";
    const std::vector<billing::MarginGroupRow> groups = billing::GroupMarginRows(margin.rows, by);
    for (size_t i = 0; i < groups.size(); ++i) out += (i == 0 ? "" : ",") + billing::MarginGroupRowJson(by, groups[i]);
    out += "],\"totals\":[";
    const std::vector<billing::MarginFigures> totals = billing::MarginTotals(margin.rows);
    for (size_t i = 0; i < totals.size(); ++i) out += (i == 0 ? "" : ",") + billing::MarginTotalJson(totals[i]);
    out += "],\"no_plans\":" + std::string(margin.no_plans ? "true" : "false") +
           ",\"no_cost_cards\":" + (margin.no_cost_cards ? "true" : "false") +
           ",\"unresolved_rollups\":" + std::to_string(margin.unresolved) + "}";
    response->body = std::move(out);
}

// A positive id of at most 18 digits, or nullopt.
std::optional<int64_t> PositiveId(const std::string& text) {
    if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) {
        return std::nullopt;
    }
    const int64_t v = std::stoll(text);
    if (v <= 0) return std::nullopt;
    return v;
}

void DeadLetters(const Target& target, FinanceBackend& backend, Response* response) {
    ledger::DeadLetterPage page;
    if (const std::string* r = Parameter(target, "reason")) {
        if (!ParseRejectReason(*r)) {
            std::string known;
            for (RejectReason k : kRejectReasons)
                known += (known.empty() ? "" : ", ") + std::string(RejectReasonCode(k));
            throw BadRequest("reason must be one of " + known + ", not '" + *r + "'");
        }
        page.reason_code = *r;
    }
    if (const std::string* b = Parameter(target, "before")) {
        page.before = PositiveId(*b);
        if (!page.before) throw BadRequest("before must be a dead letter id (a positive integer), not '" + *b + "'");
    }
    if (const std::string* l = Parameter(target, "limit")) {
        const std::optional<int64_t> n = PositiveId(*l);
        if (!n || *n > ledger::kDeadLetterPageMax) {
            throw BadRequest("limit must be from 1 to " + std::to_string(ledger::kDeadLetterPageMax) + ", not '" + *l +
                             "'");
        }
        page.limit = static_cast<int>(*n);
    }
    const std::vector<ledger::DeadLetterCount> counts = backend.DeadLetterCounts();
    const std::vector<ledger::DeadLetterEntry> entries = backend.DeadLetters(page);
    int64_t total = 0;
    std::string out = "{\"counts\":[";
    for (size_t i = 0; i < counts.size(); ++i) {
        total += counts[i].count;
        out += (i == 0 ? "" : ",") + std::string("{\"reason\":") + JsonQuote(counts[i].reason_code) +
               ",\"count\":" + std::to_string(counts[i].count) + "}";
    }
    out += "],\"total\":" + std::to_string(total) +
           ",\"reason\":" + (page.reason_code.empty() ? "null" : JsonQuote(page.reason_code)) + ",\"dead_letters\":[";
    for (size_t i = 0; i < entries.size(); ++i) {
        const ledger::DeadLetterEntry& e = entries[i];
        out += (i == 0 ? "" : ",") + std::string("{\"id\":") + std::to_string(e.id) +
               ",\"topic\":" + JsonQuote(e.topic) + ",\"partition\":" + std::to_string(e.partition) +
               ",\"offset\":" + std::to_string(e.offset) + ",\"reason_code\":" + JsonQuote(e.reason_code) +
               ",\"reason\":" + JsonQuote(e.reason) + ",\"received_at\":" + JsonQuote(e.received_at) +
               ",\"size\":" + std::to_string(e.size) + "}";
    }
    // A full page may have more behind it: the cursor of the next one.
    const bool full = static_cast<int64_t>(entries.size()) == page.limit;
    out += "],\"next_before\":" + (full && !entries.empty() ? std::to_string(entries.back().id) : "null") + "}";
    response->body = std::move(out);
}

void DeadLetterRaw(const Matched& m, FinanceBackend& backend, Response* response) {
    const std::optional<int64_t> id = PositiveId(m.id);
    if (!id) throw NotFound();
    std::optional<std::string> raw = backend.DeadLetterRaw(*id);
    if (!raw) throw NotFound();
    response->body = std::move(*raw);
    Attachment(response, "application/octet-stream", "dead-letter-" + std::to_string(*id) + ".raw");
}

}  // namespace

void HandleFinance(const Matched& m, const Target& target, const ledger::Principal& who, const Request& request,
                   FinanceBackend& backend, Response* response) {
    // The route table lets finance and admin keys only; a change there must
    // not open these routes to others.
    if (who.role != ledger::Role::kFinance && who.role != ledger::Role::kAdmin) {
        throw HttpError(403, "forbidden",
                        "a " + std::string(ledger::RoleName(who.role)) + " key may not use this route");
    }
    switch (m.route->id) {
        case RouteId::kInvoiceRuns: InvoiceRun(who, request, backend, response); return;
        case RouteId::kInvoicesFinalize: FinalizePeriod(who, request, backend, response); return;
        case RouteId::kInvoiceFinalize: FinalizeOne(m, who, request, backend, response); return;
        case RouteId::kInvoiceVoid: VoidInvoice(m, who, request, backend, response); return;
        case RouteId::kInvoiceCreditNotes: CreditNotesOf(m, backend, response); return;
        case RouteId::kInvoiceCreditNoteCreate: CreateCreditNote(m, who, request, backend, response); return;
        case RouteId::kCreditNote:
        case RouteId::kCreditNotePdf:
        case RouteId::kCreditNoteCsv: CreditNote(m, backend, response); return;
        case RouteId::kInvoicesExport: ExportInvoices(target, who, backend, response); return;
        case RouteId::kMargin: Margin(target, backend, response); return;
        case RouteId::kDeadLetters: DeadLetters(target, backend, response); return;
        case RouteId::kDeadLetterRaw: DeadLetterRaw(m, backend, response); return;
        default: break;
    }
    TALLY_UNREACHABLE();
}

}  // namespace tally::api
