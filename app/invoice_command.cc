// `tally issuer ...` and `tally invoice ...`: flags in, the ledger's
// InvoiceStore does the work, text/JSON/CSV/PDF out.
#include <date/tz.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "app/commands.h"
#include "app/progress.h"
#include "app/report.h"
#include "app/text_table.h"
#include "base/assert.h"
#include "base/identifier.h"
#include "billing/invoice_document.h"
#include "billing/invoice_run.h"
#include "documents/invoice_export.h"
#include "ingest/file_rater.h"
#include "ledger/cost_store.h"
#include "ledger/invoice_store.h"
#include "ledger/migrations.h"
#include "ledger/period_run.h"
#include "ledger/rollup_rebuild.h"
#include "ledger/store.h"
#include "pricing/currency.h"
#include "pricing/decimal.h"
#include "render/invoice_pdf.h"

namespace tally {

namespace {

std::string SafeShort(const std::string& s) {
    return s.size() <= 60 ? s : s.substr(0, 57) + "...";
}

void WriteDocumentTable(std::ostream& out, const billing::InvoiceDocument& d) {
    out << "Invoice " << (d.number.empty() ? "(draft " + std::to_string(d.invoice_id) + ")" : d.number) << "  "
        << d.status << "  issuer " << d.issuer << "\n";
    out << "Customer " << d.customer << (d.customer_name.empty() ? "" : " (" + d.customer_name + ")") << "  plan "
        << d.plan << "\n";
    out << "Period " << documents::LocalPeriod(d) << "  " << d.calls << " calls  amounts in " << d.currency << "\n";
    if (!d.error.empty()) {
        out << "  NOT PRICED: " << d.error << "\n\n";
        return;
    }
    std::vector<std::vector<std::string>> rows = {{"#", "line", "quantity", "rate", "exact amount", "amount"}};
    for (const auto& l : d.lines) {
        rows.push_back({std::to_string(l.line_no), documents::LineDescription(l),
                        l.quantity ? documents::Grouped(*l.quantity) : "", documents::UnitPrice(l), l.amount,
                        l.amount_rounded});
    }
    WriteTextTable(out, rows, {true, false, true, true, true, true});
    std::vector<std::vector<std::string>> totals = {{"exact sum of lines", d.exact_subtotal},
                                                    {"subtotal (rounded at " + d.round_at + ")", d.subtotal},
                                                    {"tax " + d.tax_percent + "%", d.tax},
                                                    {"total " + d.currency, d.total}};
    for (const auto& g : d.grants) totals.push_back({"grant " + g.name, "-" + g.amount});
    if (!d.grants.empty()) totals.push_back({"amount due " + d.currency, d.amount_due});
    WriteTextTable(out, totals, {false, true});
    if (!d.finalized_at.empty()) out << "  finalized " << d.finalized_at << "  sha256 " << d.sha256 << "\n";
    if (!d.voided_at.empty()) out << "  VOID since " << d.voided_at << ": " << d.void_reason << "\n";
    if (d.status == "draft") out << "  draft until finalized (grace until " << d.grace_until << ")\n";
    out << "  usage up to the ingestion cut-off " << (d.cutoff.empty() ? "(none)" : d.cutoff) << "\n\n";
}

// Flags are checked when parsed (kPeriod below): here a period is valid.
int32_t ParsePeriodOrThrow(const std::string& period) {
    std::optional<int32_t> id = billing::PeriodIdOf(period);
    TALLY_ASSERT(id.has_value());
    return *id;
}

const CLI::Validator kPeriod(
    [](std::string& value) -> std::string {
        return billing::PeriodIdOf(value) ? "" : "a billing month like 2025-11, not '" + value + "'";
    },
    "YYYY-MM", "billing month");

// Text from the command line that goes to PostgreSQL is checked where it
// enters, so that a bad byte is a usage error with our message (exit 2),
// never PostgreSQL's "invalid byte sequence for encoding UTF8" (exit 1).
// Ids, numbers and prefixes are identifiers (base/identifier.h); names,
// addresses and reasons are free text that must be UTF-8.
CLI::Validator IdentifierCheck(const std::string& what) {
    return CLI::Validator(
        [what](std::string& value) -> std::string { return IdentifierError(what, value).value_or(""); }, "", what);
}

CLI::Validator TextCheck(const std::string& what) {
    return CLI::Validator([what](std::string& value) -> std::string { return Utf8Error(what, value).value_or(""); }, "",
                          what);
}

// A credit's amount is a positive plain decimal. Whether it has more places
// than the invoice's currency allows is checked once the invoice is read
// (RunVoidOrCredit), also a usage error.
const CLI::Validator kCreditAmount(
    [](std::string& value) -> std::string {
        std::optional<Decimal> d = Decimal::Parse(value);
        if (d && !d->is_negative() && !d->is_zero()) return "";
        return "an amount before tax above zero like 10.00 (digits and one '.'), not '" + Printable(value) + "'";
    },
    "DECIMAL", "credit amount");

std::string RequireUrl(const std::string& flag, std::ostream& err, const char* command) {
    std::string url = DatabaseUrl(flag);
    if (url.empty()) err << "tally " << command << ": no database: give --database-url or set TALLY_DATABASE_URL\n";
    return url;
}

struct InvoiceFlags {
    std::string database_url;
    std::string period, customer, status, format = "table", output, reason, amount;
    std::vector<std::string> ids;
    bool due = false;
    bool credit_notes = false;  // export: the selected invoices' credit notes
    ledger::Issuer issuer;
};

int RunIssuerSet(const InvoiceFlags& f, std::ostream& out, std::ostream& err) {
    const std::string url = RequireUrl(f.database_url, err, "issuer set");
    if (url.empty()) return kExitUsage;
    ledger::InvoiceStore store(url);
    store.SetIssuer(f.issuer);
    for (const auto& is : store.Issuers()) {
        out << is.issuer << (is.is_default ? " (default)" : "") << ": " << is.name << "  numbers " << is.invoice_prefix
            << "-YYYY-NNNNNN, credit notes " << is.credit_note_prefix << "-YYYY-NNNNNN";
        for (const auto& p : is.plans) out << "  plan " << p;
        out << "\n";
    }
    return kExitOk;
}

int RunInvoiceRun(const InvoiceFlags& f, const std::string& kind, std::ostream& out, std::ostream& err) {
    const std::string url = RequireUrl(f.database_url, err, "invoice run");
    if (url.empty()) return kExitUsage;
    ledger::RunOptions o;
    o.period_id = ParsePeriodOrThrow(f.period);
    o.customer = f.customer;
    o.kind = kind;
    // A bar with rate and ETA on a terminal, a line every 5 s otherwise.
    std::unique_ptr<Progress> progress;
    int64_t shown = 0;
    o.progress = [&](int64_t done, int64_t total) {
        if (!progress) {
            Progress::Options po;
            po.what = "customers";
            po.total = total;
            progress = std::make_unique<Progress>(err, po);
        }
        progress->Advance(done - shown);
        shown = done;
    };
    const ledger::PeriodRun run = ledger::RunPeriod(url, o);
    const ledger::RunResult& r = run.result;
    if (progress) progress->Done();
    out << "invoice run " << r.run_id << " for " << f.period << ": " << r.customers << " customers, " << r.drafts
        << " drafts written (" << r.adjustments << " adjustment lines), " << r.left_finalized
        << " finalized invoices left as they are; usage up to " << (r.cutoff.empty() ? "(nothing consumed yet)" : r.cutoff)
        << "\n";
    if (std::getenv("TALLY_TRACE_RUN") != nullptr) {
        err << "trace: " << r.rollup_rows << " rollup rows; read " << r.read_ms << " ms, price " << r.price_ms
            << " ms, write " << r.write_ms << " ms\n";
    }
    if (run.margin_report_id) {
        out << "margin report " << *run.margin_report_id << " of the drafts written: " << r.margin.size()
            << " rows (customer, plan, model, served model, day) in margin_rows; `tally margin --period " << f.period
            << "` prints it\n";
    } else {
        out << "no cost cards published: no margin report (tally cost publish)\n";
    }
    int exit = kExitOk;
    if (r.not_priced > 0) {
        err << "tally invoice run: " << r.not_priced << " draft(s) could not be priced (see `tally invoice list --period "
            << f.period << " --status draft`)\n";
        exit = kExitPartial;
    }
    for (const auto& p : r.problems) {
        err << "tally invoice run: " << p << "\n";
        exit = kExitPartial;
    }
    if (r.unresolved_rollups > 0) {
        err << "tally invoice run: " << r.unresolved_rollups
            << " rollup rows name a plan, version, model or unit that is not published any more and were left out\n";
        exit = kExitPartial;
    }
    return exit;
}

void WriteFinalized(std::ostream& out, const std::vector<ledger::FinalizeResult>& done) {
    for (const auto& r : done) {
        out << r.number << "  " << r.customer << "  " << r.period << "  " << r.total << " " << r.currency << "  sha256 "
            << r.sha256 << "\n";
    }
    out << done.size() << " invoice(s) finalized\n";
}

int RunFinalize(const InvoiceFlags& f, std::ostream& out, std::ostream& err) {
    const std::string url = RequireUrl(f.database_url, err, "invoice finalize");
    if (url.empty()) return kExitUsage;
    const int ways = (f.ids.empty() ? 0 : 1) + (f.period.empty() ? 0 : 1) + (f.due ? 1 : 0);
    if (ways != 1) {
        err << "tally invoice finalize: give invoice ids, or --period P, or --due\n";
        return kExitUsage;
    }
    if (!f.ids.empty() && !f.customer.empty()) {
        err << "tally invoice finalize: --customer goes with --period, not with ids\n";
        return kExitUsage;
    }
    ledger::InvoiceStore store(url);
    std::vector<std::string> not_priced;
    if (f.due) {
        WriteFinalized(out, store.FinalizeDue(&not_priced));
    } else if (!f.period.empty()) {
        WriteFinalized(out, store.FinalizePeriod(ParsePeriodOrThrow(f.period), f.customer, &not_priced));
    } else {
        std::vector<int64_t> ids;
        for (const auto& id : f.ids) {
            if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos) {
                err << "tally invoice finalize: '" << id << "' is not a draft's id (see tally invoice list)\n";
                return kExitUsage;
            }
            ids.push_back(std::stoll(id));
        }
        WriteFinalized(out, store.FinalizeIds(ids));
    }
    for (const std::string& n : not_priced) err << "tally invoice finalize: left as a draft: " << n << "\n";
    return not_priced.empty() ? kExitOk : kExitPartial;
}

std::vector<billing::InvoiceDocument> Selected(ledger::InvoiceStore& store, const InvoiceFlags& f) {
    if (!f.ids.empty()) {
        std::vector<billing::InvoiceDocument> docs;
        for (const auto& id : f.ids) docs.push_back(store.Load(id));
        return docs;
    }
    ledger::ListFilter filter;
    if (!f.period.empty()) filter.period_id = ParsePeriodOrThrow(f.period);
    filter.customer = f.customer;
    filter.status = f.status;
    return store.List(filter);
}

int RunList(const InvoiceFlags& f, std::ostream& out, std::ostream& err) {
    const std::string url = RequireUrl(f.database_url, err, "invoice list");
    if (url.empty()) return kExitUsage;
    ledger::InvoiceStore store(url);
    std::vector<billing::InvoiceDocument> docs = Selected(store, f);
    std::vector<std::vector<std::string>> rows = {
        {"id", "number", "status", "customer", "plan", "period", "calls", "total", "currency", "grace until", "error"}};
    for (const auto& d : docs) {
        rows.push_back({std::to_string(d.invoice_id), d.number, d.status, d.customer, d.plan, d.period,
                        std::to_string(d.calls), d.total, d.currency, d.grace_until, SafeShort(d.error)});
    }
    WriteTextTable(out, rows, {true, false, false, false, false, false, true, true, false, false, false});
    out << docs.size() << " invoice(s)\n";
    return kExitOk;
}

int RunShow(const InvoiceFlags& f, std::ostream& out, std::ostream& err) {
    const std::string url = RequireUrl(f.database_url, err, "invoice show");
    if (url.empty()) return kExitUsage;
    ledger::InvoiceStore store(url);
    for (const auto& d : Selected(store, f)) {
        if (f.format == "json") {
            out << billing::ExportJson(d) << "\n";
        } else {
            WriteDocumentTable(out, d);
            for (const auto& cn : store.CreditNotes(std::to_string(d.invoice_id))) {
                out << "  credit note " << cn.number << " (" << cn.kind << ", " << cn.created_at << "): -" << cn.total
                    << " " << cn.currency << ": " << cn.reason << "\n";
            }
        }
    }
    return kExitOk;
}

int RunVerify(const InvoiceFlags& f, std::ostream& out, std::ostream& err) {
    const std::string url = RequireUrl(f.database_url, err, "invoice verify");
    if (url.empty()) return kExitUsage;
    ledger::InvoiceStore store(url);
    std::vector<std::string> targets = f.ids;
    if (targets.empty()) {
        InvoiceFlags all = f;
        for (const auto& d : Selected(store, all)) {
            if (d.status != "draft") targets.push_back(d.number);
        }
    }
    int bad = 0, notes = 0;
    for (const auto& t : targets) {
        ledger::VerifyResult v = store.Verify(t);
        out << v.number << (v.ok() ? "  ok  " : "  MISMATCH  stored " + v.stored_sha256 + "  computed ")
            << v.computed_sha256 << "\n";
        bad += v.ok() ? 0 : 1;
        // Its credit notes, each against the hash stored when it was issued.
        for (const billing::CreditNoteDocument& cn : store.CreditNotes(t)) {
            const std::string computed = billing::Sha256Hex(billing::CanonicalJson(cn));
            const bool ok = computed == cn.sha256;
            out << "  " << cn.number << (ok ? "  ok  " : "  MISMATCH  stored " + cn.sha256 + "  computed ") << computed
                << "\n";
            bad += ok ? 0 : 1;
            ++notes;
        }
    }
    out << targets.size() << " invoice(s) and " << notes << " credit note(s) verified, " << bad << " mismatch(es)\n";
    return bad == 0 ? kExitOk : kExitFailure;
}

bool docs_would_be_many(const InvoiceFlags& f) {
    return f.ids.size() > 1 || !f.period.empty() || f.credit_notes;
}

// What `invoice export` writes: the invoices selected, or with
// --credit-notes their credit notes; a credit note's number selects it.
struct Exported {
    std::vector<billing::InvoiceDocument> invoices;
    std::vector<billing::CreditNoteDocument> credit_notes;
    size_t size() const { return invoices.size() + credit_notes.size(); }
};

bool IsInvoiceId(const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

Exported SelectedForExport(ledger::InvoiceStore& store, const InvoiceFlags& f) {
    Exported e;
    if (!f.ids.empty()) {
        // Invoice and credit note prefixes are distinct across issuers, so a
        // number is one or the other.
        for (const auto& id : f.ids) {
            std::optional<billing::CreditNoteDocument> cn;
            if (!IsInvoiceId(id)) cn = store.FindCreditNote(id);
            if (cn) {
                e.credit_notes.push_back(std::move(*cn));
                continue;
            }
            try {
                e.invoices.push_back(store.Load(id));
            } catch (const ledger::LedgerError&) {
                throw ledger::LedgerError("no invoice or credit note " + id);
            }
        }
    } else {
        e.invoices = Selected(store, f);
    }
    if (f.credit_notes) {
        for (const auto& d : e.invoices) {
            if (d.status == "draft") continue;  // never credited
            for (auto& cn : store.CreditNotes(std::to_string(d.invoice_id))) e.credit_notes.push_back(std::move(cn));
        }
        e.invoices.clear();
    }
    return e;
}

// --output is a file for one document named by id or number, else a
// directory (--period and --credit-notes select any number of documents).
std::string PdfPath(const InvoiceFlags& f, size_t count, const std::string& name) {
    if (count <= 1 && !docs_would_be_many(f) && !std::filesystem::is_directory(f.output)) return f.output;
    std::filesystem::create_directories(f.output);
    return (std::filesystem::path(f.output) / (name + ".pdf")).string();
}

int WritePdfs(ledger::InvoiceStore& store, const InvoiceFlags& f, const Exported& e, std::ostream& out,
              std::ostream& err) {
    int failed = 0;
    auto write = [&](const render::PdfDocument& pdf, const std::string& path) {
        const std::string error = render::WriteInvoicePdf(pdf, path);
        if (!error.empty()) {
            err << "tally invoice export: " << path << ": " << error << "\n";
            ++failed;
            return;
        }
        out << "wrote " << path << "\n";
    };
    for (const auto& d : e.invoices) {
        const std::string path =
            PdfPath(f, e.size(), d.number.empty() ? "draft-" + std::to_string(d.invoice_id) : d.number);
        write(documents::PdfOf(d, store.IssuerOf(d)), path);  // the issuer as when it was finalized
    }
    std::map<std::string, billing::InvoiceDocument> credited;  // by number: several notes may credit one
    for (const auto& cn : e.credit_notes) {
        auto it = credited.find(cn.invoice_number);
        if (it == credited.end()) it = credited.emplace(cn.invoice_number, store.Load(cn.invoice_number)).first;
        write(documents::PdfOfCreditNote(cn, it->second, store.IssuerOf(cn)),
              PdfPath(f, e.size(), cn.number));
    }
    return failed == 0 ? kExitOk : kExitFailure;
}

int RunExport(const InvoiceFlags& f, std::ostream& out, std::ostream& err) {
    const std::string url = RequireUrl(f.database_url, err, "invoice export");
    if (url.empty()) return kExitUsage;
    if (f.ids.empty() && f.period.empty()) {
        err << "tally invoice export: give invoice or credit note numbers (or invoice ids), or --period P\n";
        return kExitUsage;
    }
    if (f.format == "pdf" && f.output.empty()) {
        err << "tally invoice export: --format pdf needs --output (a file for one document, a directory for more)\n";
        return kExitUsage;
    }
    if (f.format == "pdf" && docs_would_be_many(f) && std::filesystem::exists(f.output) &&
        !std::filesystem::is_directory(f.output)) {
        err << "tally invoice export: " << f.output << " is a file; several PDFs need a directory\n";
        return kExitUsage;
    }
    ledger::InvoiceStore store(url);
    const Exported e = SelectedForExport(store, f);
    if (f.format == "pdf") return WritePdfs(store, f, e, out, err);
    std::string text;
    if (f.format == "csv") {
        if (!e.invoices.empty() && !e.credit_notes.empty()) {
            err << "tally invoice export: invoices and credit notes have different CSV columns: export them "
                   "separately (or use --format json)\n";
            return kExitUsage;
        }
        text = e.credit_notes.empty() ? documents::CsvOf(e.invoices) : documents::CsvOf(e.credit_notes);
    } else {
        text = documents::JsonOf(e.invoices, e.credit_notes);
    }
    if (f.output.empty()) {
        out << text;
        return kExitOk;
    }
    std::ofstream file(f.output, std::ios::binary);
    file << text;
    file.close();
    if (!file) {
        err << "tally invoice export: cannot write " << f.output << "\n";
        return kExitFailure;
    }
    out << "wrote " << f.output << " (" << e.invoices.size() << " invoice(s), " << e.credit_notes.size()
        << " credit note(s))\n";
    return kExitOk;
}

int RunVoidOrCredit(const InvoiceFlags& f, bool void_it, std::ostream& out, std::ostream& err) {
    const std::string url = RequireUrl(f.database_url, err, void_it ? "invoice void" : "invoice credit");
    if (url.empty()) return kExitUsage;
    if (f.ids.size() != 1) {
        err << "tally invoice " << (void_it ? "void" : "credit") << ": give one invoice number or id\n";
        return kExitUsage;
    }
    ledger::InvoiceStore store(url);
    if (!void_it) {
        const billing::InvoiceDocument inv = store.Load(f.ids.front());
        std::optional<Currency> currency = Currency::FromCode(inv.currency);
        std::optional<Decimal> amount = Decimal::Parse(f.amount);
        TALLY_ASSERT(amount.has_value());  // kCreditAmount
        if (currency && amount->fraction_digits() > currency->minor_digits()) {
            err << "tally invoice credit: --amount " << f.amount << " has more decimal places than " << inv.currency
                << " allows (" << currency->minor_digits() << ")\n";
            return kExitUsage;
        }
    }
    billing::CreditNoteDocument cn =
        void_it ? store.Void(f.ids.front(), f.reason) : store.Credit(f.ids.front(), f.amount, f.reason);
    out << "credit note " << cn.number << " for invoice " << cn.invoice_number << ": subtotal " << cn.subtotal << ", tax "
        << cn.tax << ", total " << cn.total << " " << cn.currency << "  sha256 " << cn.sha256 << "\n";
    if (void_it) out << "invoice " << cn.invoice_number << " is void\n";
    return kExitOk;
}

// `tally rerate`: the period's rollups rebuilt from the archive under the
// plans published now (ledger/rollup_rebuild.h), with the consumer's own
// pipeline (ingest::FileRater), then an invoice run: drafts regenerated,
// finalized invoices left alone and their differences carried as
// adjustments by the run of the next period.
int RunRerate(const InvoiceFlags& f, std::ostream& out, std::ostream& err) {
    const std::string url = RequireUrl(f.database_url, err, "rerate");
    if (url.empty()) return kExitUsage;
    const int32_t period_id = ParsePeriodOrThrow(f.period);
    ledger::Store catalog_store(url);
    const ingest::CatalogSnapshot cat = catalog_store.Load();
    if (cat.catalog.plans.empty()) {
        err << "tally rerate: no plans published yet\n";
        return kExitFailure;
    }
    const std::string default_plan = cat.catalog.plans.front().name;
    // Every call of the period is in archive rows overlapping these bounds,
    // whatever the plan's zone and billing anchor day.
    const int y = MonthIdYear(period_id), m = MonthIdMonth(period_id);
    const Instant from = LocalMidnight(date::locate_zone("UTC"), y, m, 1) - std::chrono::hours(48);
    const int32_t after = period_id + 2;
    const Instant to =
        LocalMidnight(date::locate_zone("UTC"), MonthIdYear(after), MonthIdMonth(after), 1) + std::chrono::hours(24);
    auto rerate = [&](const std::string& customer, const std::vector<std::string>& payloads, std::string* refusal) {
        ingest::AssemblerOptions options;
        options.known_customers_only = true;
        options.only_customer = customer;
        options.projects_as_named = true;  // RebuildRollups caps them with the ledger's admitted projects
        ingest::FileRater rater(cat, default_plan, options);
        for (size_t i = 0; i < payloads.size(); ++i) rater.Add(0, static_cast<int64_t>(i + 1), payloads[i]);
        ingest::FileRater::Result rated = rater.Finish();
        if (!rated.rejected.empty()) {
            *refusal = std::to_string(rated.rejected.size()) + " archived calls cannot be rated under the plans published "
                       "now (first: " + rated.rejected.front().reason + "): kept as billed";
            return std::vector<RollupRecord>();
        }
        return ToRecords(cat.catalog, rated.rollups);
    };
    int refused = 0;
    for (const ledger::RebuildOutcome& o : ledger::RebuildRollups(url, period_id, from, to, f.customer, rerate)) {
        if (o.replaced) {
            out << "  " << o.customer << ": " << o.calls_after << " calls rated again\n";
        } else {
            err << "tally rerate: " << o.customer << ": " << o.refused << "\n";
            ++refused;
        }
    }
    int exit = RunInvoiceRun(f, "rerate", out, err);
    ledger::InvoiceStore store(url);
    ledger::ListFilter finalized;
    finalized.period_id = period_id;
    finalized.customer = f.customer;
    finalized.status = "finalized";
    if (!store.List(finalized).empty()) {
        InvoiceFlags next = f;
        next.period = billing::PeriodLabel(period_id + 1);
        out << "finalized invoices of " << f.period << " stay as they are; their differences go on " << next.period
            << "'s drafts as adjustments:\n";
        const int next_exit = RunInvoiceRun(next, "rerate", out, err);
        if (exit == kExitOk) exit = next_exit;
    }
    return refused > 0 && exit == kExitOk ? kExitPartial : exit;
}

}  // namespace

void AddInvoiceCommands(CLI::App& app, std::function<int()>* action) {
    auto f = std::make_shared<InvoiceFlags>();
    auto bind = [action](CLI::App* cmd, std::function<int()> run) { cmd->callback([action, run] { *action = run; }); };
    auto db = [f](CLI::App* cmd) {
        cmd->add_option("--database-url", f->database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    };

    auto* issuer_cmd = app.add_subcommand("issuer", "Who issues invoices: legal name, address, tax id, number prefixes");
    issuer_cmd->require_subcommand(1);
    auto* issuer_set = issuer_cmd->add_subcommand("set", "Add or change an issuer (the first one is the default)");
    issuer_set->add_option("id", f->issuer.issuer, "Issuer id")->required()->check(IdentifierCheck("issuer id"));
    issuer_set->add_option("--name", f->issuer.name, "Legal name as printed (may be Chinese)")
        ->required()
        ->check(TextCheck("name"));
    issuer_set->add_option("--address", f->issuer.address, "Address")->check(TextCheck("address"));
    issuer_set->add_option("--tax-id", f->issuer.tax_id, "Tax id")->check(TextCheck("tax id"));
    issuer_set->add_option("--email", f->issuer.email, "Billing e-mail")->check(TextCheck("e-mail"));
    issuer_set->add_option("--invoice-prefix", f->issuer.invoice_prefix, "Invoice numbers: PREFIX-YYYY-NNNNNN (INV)")
        ->check(IdentifierCheck("invoice prefix"));
    issuer_set
        ->add_option("--credit-note-prefix", f->issuer.credit_note_prefix, "Credit notes: PREFIX-YYYY-NNNNNN (CN)")
        ->check(IdentifierCheck("credit note prefix"));
    issuer_set->add_flag("--default", f->issuer.is_default, "Issue the invoices of every plan not given to another");
    issuer_set->add_option("--plan", f->issuer.plans, "Issue this plan's invoices (repeatable)")
        ->check(IdentifierCheck("plan"));
    db(issuer_set);
    bind(issuer_set, [f] { return RunIssuerSet(*f, std::cout, std::cerr); });

    auto* rerate_cmd = app.add_subcommand(
        "rerate", "After a retroactive plan version: rate a period's archived calls again and regenerate its drafts");
    rerate_cmd->add_option("--period", f->period, "Billing month YYYY-MM")->required()->check(kPeriod);
    rerate_cmd->add_option("--customer", f->customer, "Only this customer")->check(IdentifierCheck("customer id"));
    db(rerate_cmd);
    rerate_cmd->footer(R"(
Finalized invoices are never edited: the difference between what they billed
and the period priced again goes on the next period's draft as an adjustment
line naming the period (negative when the price went down). A customer whose
archive does not hold every billed call of the period keeps its rollups.)");
    bind(rerate_cmd, [f] { return RunRerate(*f, std::cout, std::cerr); });

    auto* invoice_cmd = app.add_subcommand("invoice", "Invoices: run drafts, finalize, verify, void, credit, export");
    invoice_cmd->require_subcommand(1);
    auto* run_cmd = invoice_cmd->add_subcommand("run", "Price a billing period's usage into draft invoices");
    run_cmd->add_option("--period", f->period, "Billing month YYYY-MM")->check(kPeriod)->required();
    run_cmd->add_option("--customer", f->customer, "Only this customer")->check(IdentifierCheck("customer id"));
    db(run_cmd);
    run_cmd->footer(R"(
Drafts of the period are replaced; finalized invoices are never touched.
Usage that arrived after an earlier period was finalized is carried as an
adjustment line naming that period. The run records its ingestion cut-off.)");
    bind(run_cmd, [f] { return RunInvoiceRun(*f, "run", std::cout, std::cerr); });

    auto* finalize_cmd = invoice_cmd->add_subcommand("finalize", "Number and freeze drafts");
    finalize_cmd->add_option("ids", f->ids, "Draft ids")->check(IdentifierCheck("invoice number or id"));
    finalize_cmd->add_option("--period", f->period, "Every draft of this billing month")->check(kPeriod);
    finalize_cmd->add_option("--customer", f->customer, "With --period: only this customer")
        ->check(IdentifierCheck("customer id"));
    finalize_cmd->add_flag("--due", f->due, "Every draft whose grace period has passed (for a timer)");
    db(finalize_cmd);
    bind(finalize_cmd, [f] { return RunFinalize(*f, std::cout, std::cerr); });

    auto* list_cmd = invoice_cmd->add_subcommand("list", "Invoices with their status and totals");
    list_cmd->add_option("--period", f->period, "Billing month YYYY-MM")->check(kPeriod);
    list_cmd->add_option("--customer", f->customer, "Only this customer")->check(IdentifierCheck("customer id"));
    list_cmd->add_option("--status", f->status, "draft, finalized or void")
        ->check(CLI::IsMember({"draft", "finalized", "void"}));
    db(list_cmd);
    bind(list_cmd, [f] { return RunList(*f, std::cout, std::cerr); });

    auto* show_cmd = invoice_cmd->add_subcommand("show", "One or more invoices, line by line");
    show_cmd->add_option("ids", f->ids, "Invoice numbers or ids")->check(IdentifierCheck("invoice number or id"));
    show_cmd->add_option("--period", f->period, "Every invoice of this billing month")->check(kPeriod);
    show_cmd->add_option("--customer", f->customer, "Only this customer")->check(IdentifierCheck("customer id"));
    show_cmd->add_option("--format", f->format, "table (default) or json")->check(CLI::IsMember({"table", "json"}));
    db(show_cmd);
    bind(show_cmd, [f] { return RunShow(*f, std::cout, std::cerr); });

    auto* verify_cmd = invoice_cmd->add_subcommand("verify", "Recompute finalized invoices' SHA-256 from the ledger");
    verify_cmd->add_option("ids", f->ids, "Invoice numbers or ids (default: every finalized one)")
        ->check(IdentifierCheck("invoice number or id"));
    verify_cmd->add_option("--period", f->period, "Every finalized invoice of this billing month")->check(kPeriod);
    db(verify_cmd);
    bind(verify_cmd, [f] { return RunVerify(*f, std::cout, std::cerr); });

    auto* void_cmd = invoice_cmd->add_subcommand("void", "Void a finalized invoice with a credit note for all of it");
    void_cmd->add_option("id", f->ids, "Invoice number or id")
        ->required()
        ->check(IdentifierCheck("invoice number or id"));
    void_cmd->add_option("--reason", f->reason, "Why (printed on the credit note)")
        ->required()
        ->check(TextCheck("reason"));
    db(void_cmd);
    bind(void_cmd, [f] { return RunVoidOrCredit(*f, true, std::cout, std::cerr); });

    auto* credit_cmd = invoice_cmd->add_subcommand("credit", "A credit note for part of a finalized invoice");
    credit_cmd->add_option("id", f->ids, "Invoice number or id")
        ->required()
        ->check(IdentifierCheck("invoice number or id"));
    credit_cmd->add_option("--amount", f->amount, "Amount before tax, e.g. 10.00 (tax at the invoice's rate)")
        ->required()
        ->check(kCreditAmount);
    credit_cmd->add_option("--reason", f->reason, "Why (printed on the credit note)")
        ->required()
        ->check(TextCheck("reason"));
    db(credit_cmd);
    bind(credit_cmd, [f] { return RunVoidOrCredit(*f, false, std::cout, std::cerr); });

    auto* export_cmd = invoice_cmd->add_subcommand("export", "Invoices and credit notes as CSV, JSON or PDF");
    export_cmd->add_option("ids", f->ids, "Invoice numbers or ids, credit note numbers")
        ->check(IdentifierCheck("invoice number or id"));
    export_cmd->add_option("--period", f->period, "Every invoice of this billing month")->check(kPeriod);
    export_cmd->add_option("--customer", f->customer, "Only this customer")->check(IdentifierCheck("customer id"));
    export_cmd->add_option("--status", f->status, "draft, finalized or void")
        ->check(CLI::IsMember({"draft", "finalized", "void"}));
    export_cmd->add_flag("--credit-notes", f->credit_notes,
                         "The credit notes of the invoices selected, instead of the invoices");
    export_cmd->add_option("--format", f->format, "csv, json or pdf")
        ->required()
        ->check(CLI::IsMember({"csv", "json", "pdf"}));
    export_cmd->add_option("--output", f->output, "File (or, for several PDFs, a directory); default stdout");
    db(export_cmd);
    export_cmd->footer(R"(
Examples:
  tally invoice export INV-2025-000001 --format pdf --output /tmp/INV-2025-000001.pdf
  tally invoice export --period 2025-11 --format csv --output /tmp/2025-11.csv
  tally invoice export CN-2026-000001 --format pdf --output /tmp/CN-2026-000001.pdf
  tally invoice export --period 2025-11 --credit-notes --format csv

A credit note's number selects the credit note; --credit-notes exports the
credit notes of the invoices selected (ids, numbers or --period) instead of
the invoices. Invoices and credit notes never share a CSV (their columns
differ); a JSON array may hold both ("document" says which).)");
    bind(export_cmd, [f] { return RunExport(*f, std::cout, std::cerr); });
}

}  // namespace tally
