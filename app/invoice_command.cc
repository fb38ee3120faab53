// `tally issuer ...` and `tally invoice ...`: flags in, the ledger's
// InvoiceStore does the work, text/JSON/CSV/PDF out.
#include <date/tz.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "app/commands.h"
#include "app/progress.h"
#include "app/report.h"
#include "app/text_table.h"
#include "base/assert.h"
#include "billing/invoice_document.h"
#include "billing/invoice_run.h"
#include "documents/invoice_export.h"
#include "ingest/file_rater.h"
#include "ledger/cost_store.h"
#include "ledger/invoice_store.h"
#include "ledger/rollup_rebuild.h"
#include "ledger/store.h"
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
    ledger::Store catalog_store(url);
    ingest::CatalogSnapshot cat = catalog_store.Load();
    ledger::CostStore cost_store(url);
    const CostCatalog costs = cost_store.LoadCostCards();
    if (!costs.empty()) o.costs = &costs;
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
    ledger::InvoiceStore store(url);
    ledger::RunResult r = store.Run(cat.catalog, cat.subscriptions, o);
    if (progress) progress->Done();
    out << "invoice run " << r.run_id << " for " << f.period << ": " << r.customers << " customers, " << r.drafts
        << " drafts written (" << r.adjustments << " adjustment lines), " << r.left_finalized
        << " finalized invoices left as they are; usage up to " << (r.cutoff.empty() ? "(nothing consumed yet)" : r.cutoff)
        << "\n";
    if (std::getenv("TALLY_TRACE_RUN") != nullptr) {
        err << "trace: " << r.rollup_rows << " rollup rows; read " << r.read_ms << " ms, price " << r.price_ms
            << " ms, write " << r.write_ms << " ms\n";
    }
    if (o.costs != nullptr) {
        const int64_t report = cost_store.WriteMarginReport(f.period, "invoice run " + std::to_string(r.run_id),
                                                            r.run_id, r.margin);
        out << "margin report " << report << " of the drafts written: " << r.margin.size()
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
    return f.ids.size() > 1 || !f.period.empty();
}

int RunExport(const InvoiceFlags& f, std::ostream& out, std::ostream& err) {
    const std::string url = RequireUrl(f.database_url, err, "invoice export");
    if (url.empty()) return kExitUsage;
    if (f.ids.empty() && f.period.empty()) {
        err << "tally invoice export: give invoice ids or numbers, or --period P\n";
        return kExitUsage;
    }
    if (f.format == "pdf" && docs_would_be_many(f) && std::filesystem::exists(f.output) &&
        !std::filesystem::is_directory(f.output)) {
        err << "tally invoice export: " << f.output << " is a file; several PDFs need a directory\n";
        return kExitUsage;
    }
    ledger::InvoiceStore store(url);
    std::vector<billing::InvoiceDocument> docs = Selected(store, f);
    if (f.format == "pdf") {
        if (f.output.empty()) {
            err << "tally invoice export: --format pdf needs --output (a file for one invoice, a directory for more)\n";
            return kExitUsage;
        }
        const std::vector<ledger::Issuer> issuers = store.Issuers();
        int failed = 0;
        for (const auto& d : docs) {
            std::string path = f.output;
            if (docs.size() > 1 || std::filesystem::is_directory(path)) {
                std::filesystem::create_directories(f.output);
                path = (std::filesystem::path(f.output) /
                        ((d.number.empty() ? "draft-" + std::to_string(d.invoice_id) : d.number) + ".pdf"))
                           .string();
            }
            const ledger::Issuer issuer = documents::IssuerNamed(issuers, d.issuer);
            std::string error = render::WriteInvoicePdf(documents::PdfOf(d, issuer), path);
            if (!error.empty()) {
                err << "tally invoice export: " << path << ": " << error << "\n";
                ++failed;
                continue;
            }
            out << "wrote " << path << "\n";
        }
        return failed == 0 ? kExitOk : kExitFailure;
    }
    std::string text;
    if (f.format == "csv") {
        text = documents::CsvOf(docs);
    } else {
        text = documents::JsonOf(docs);
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
    out << "wrote " << f.output << " (" << docs.size() << " invoice(s))\n";
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
    issuer_set->add_option("id", f->issuer.issuer, "Issuer id")->required();
    issuer_set->add_option("--name", f->issuer.name, "Legal name as printed (may be Chinese)")->required();
    issuer_set->add_option("--address", f->issuer.address, "Address");
    issuer_set->add_option("--tax-id", f->issuer.tax_id, "Tax id");
    issuer_set->add_option("--email", f->issuer.email, "Billing e-mail");
    issuer_set->add_option("--invoice-prefix", f->issuer.invoice_prefix, "Invoice numbers: PREFIX-YYYY-NNNNNN (INV)");
    issuer_set->add_option("--credit-note-prefix", f->issuer.credit_note_prefix, "Credit notes: PREFIX-YYYY-NNNNNN (CN)");
    issuer_set->add_flag("--default", f->issuer.is_default, "Issue the invoices of every plan not given to another");
    issuer_set->add_option("--plan", f->issuer.plans, "Issue this plan's invoices (repeatable)");
    db(issuer_set);
    bind(issuer_set, [f] { return RunIssuerSet(*f, std::cout, std::cerr); });

    auto* rerate_cmd = app.add_subcommand(
        "rerate", "After a retroactive plan version: rate a period's archived calls again and regenerate its drafts");
    rerate_cmd->add_option("--period", f->period, "Billing month YYYY-MM")->required()->check(kPeriod);
    rerate_cmd->add_option("--customer", f->customer, "Only this customer");
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
    run_cmd->add_option("--customer", f->customer, "Only this customer");
    db(run_cmd);
    run_cmd->footer(R"(
Drafts of the period are replaced; finalized invoices are never touched.
Usage that arrived after an earlier period was finalized is carried as an
adjustment line naming that period. The run records its ingestion cut-off.)");
    bind(run_cmd, [f] { return RunInvoiceRun(*f, "run", std::cout, std::cerr); });

    auto* finalize_cmd = invoice_cmd->add_subcommand("finalize", "Number and freeze drafts");
    finalize_cmd->add_option("ids", f->ids, "Draft ids");
    finalize_cmd->add_option("--period", f->period, "Every draft of this billing month")->check(kPeriod);
    finalize_cmd->add_option("--customer", f->customer, "With --period: only this customer");
    finalize_cmd->add_flag("--due", f->due, "Every draft whose grace period has passed (for a timer)");
    db(finalize_cmd);
    bind(finalize_cmd, [f] { return RunFinalize(*f, std::cout, std::cerr); });

    auto* list_cmd = invoice_cmd->add_subcommand("list", "Invoices with their status and totals");
    list_cmd->add_option("--period", f->period, "Billing month YYYY-MM")->check(kPeriod);
    list_cmd->add_option("--customer", f->customer, "Only this customer");
    list_cmd->add_option("--status", f->status, "draft, finalized or void")
        ->check(CLI::IsMember({"draft", "finalized", "void"}));
    db(list_cmd);
    bind(list_cmd, [f] { return RunList(*f, std::cout, std::cerr); });

    auto* show_cmd = invoice_cmd->add_subcommand("show", "One or more invoices, line by line");
    show_cmd->add_option("ids", f->ids, "Invoice numbers or ids");
    show_cmd->add_option("--period", f->period, "Every invoice of this billing month")->check(kPeriod);
    show_cmd->add_option("--customer", f->customer, "Only this customer");
    show_cmd->add_option("--format", f->format, "table (default) or json")->check(CLI::IsMember({"table", "json"}));
    db(show_cmd);
    bind(show_cmd, [f] { return RunShow(*f, std::cout, std::cerr); });

    auto* verify_cmd = invoice_cmd->add_subcommand("verify", "Recompute finalized invoices' SHA-256 from the ledger");
    verify_cmd->add_option("ids", f->ids, "Invoice numbers or ids (default: every finalized one)");
    verify_cmd->add_option("--period", f->period, "Every finalized invoice of this billing month")->check(kPeriod);
    db(verify_cmd);
    bind(verify_cmd, [f] { return RunVerify(*f, std::cout, std::cerr); });

    auto* void_cmd = invoice_cmd->add_subcommand("void", "Void a finalized invoice with a credit note for all of it");
    void_cmd->add_option("id", f->ids, "Invoice number or id")->required();
    void_cmd->add_option("--reason", f->reason, "Why (printed on the credit note)")->required();
    db(void_cmd);
    bind(void_cmd, [f] { return RunVoidOrCredit(*f, true, std::cout, std::cerr); });

    auto* credit_cmd = invoice_cmd->add_subcommand("credit", "A credit note for part of a finalized invoice");
    credit_cmd->add_option("id", f->ids, "Invoice number or id")->required();
    credit_cmd->add_option("--amount", f->amount, "Amount before tax, e.g. 10.00 (tax at the invoice's rate)")->required();
    credit_cmd->add_option("--reason", f->reason, "Why (printed on the credit note)")->required();
    db(credit_cmd);
    bind(credit_cmd, [f] { return RunVoidOrCredit(*f, false, std::cout, std::cerr); });

    auto* export_cmd = invoice_cmd->add_subcommand("export", "Invoices as CSV, JSON or PDF");
    export_cmd->add_option("ids", f->ids, "Invoice numbers or ids");
    export_cmd->add_option("--period", f->period, "Every invoice of this billing month")->check(kPeriod);
    export_cmd->add_option("--customer", f->customer, "Only this customer");
    export_cmd->add_option("--status", f->status, "draft, finalized or void");
    export_cmd->add_option("--format", f->format, "csv, json or pdf")->required()->check(CLI::IsMember({"csv", "json", "pdf"}));
    export_cmd->add_option("--output", f->output, "File (or, for several PDFs, a directory); default stdout");
    db(export_cmd);
    export_cmd->footer(R"(
Examples:
  tally invoice export INV-2025-000001 --format pdf --output /tmp/INV-2025-000001.pdf
  tally invoice export --period 2025-11 --format csv --output /tmp/2025-11.csv)");
    bind(export_cmd, [f] { return RunExport(*f, std::cout, std::cerr); });
}

}  // namespace tally
