// Invoices in PostgreSQL (sql/0003_invoices.sql): issuers, invoice runs that
// write drafts, finalization with gapless numbers and a SHA-256 of the
// canonical form, verification, voiding and credit notes. The decisions
// are billing/'s (DecideRun); this class reads their inputs and stores
// their outputs, each operation in one transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "billing/invoice_document.h"
#include "billing/margin.h"
#include "pricing/invoice.h"
#include "pricing/subscription.h"

namespace tally::ledger {

struct Issuer {
    std::string issuer;  // id
    std::string name, address, tax_id, email;
    std::string invoice_prefix = "INV";
    std::string credit_note_prefix = "CN";
    bool is_default = false;
    std::vector<std::string> plans;  // plans whose invoices it issues
};

struct RunOptions {
    int32_t period_id = 0;  // billing month id
    std::string customer;   // "" : every customer
    std::string kind = "run";
    int customers_per_chunk = 250;
    // Called after each chunk of customers with (done, total).
    std::function<void(int64_t, int64_t)> progress;
    // With cost cards: the margin of the drafts written (their own usage,
    // adjustments for other periods left out) comes back in RunResult.
    const CostCatalog* costs = nullptr;
};

struct RunResult {
    int64_t run_id = 0;
    int64_t customers = 0;
    int drafts = 0;
    int not_priced = 0;  // drafts that could not be priced (their error says why)
    int adjustments = 0;
    int left_finalized = 0;
    std::string cutoff;                 // RFC 3339, "" when nothing was ever consumed
    std::vector<std::string> problems;  // periods not re-priced for adjustments, rollups left out
    int64_t unresolved_rollups = 0;     // naming plans/models/units no longer published
    std::vector<billing::MarginRow> margin;  // with RunOptions::costs
    // Where the time went: waiting for the next chunk's rollups (read
    // ahead on a second connection), pricing, deciding and margin, writing.
    int64_t rollup_rows = 0;
    int64_t read_ms = 0, price_ms = 0, write_ms = 0;
};

struct FinalizeResult {
    int64_t invoice_id = 0;
    std::string number;
    std::string customer, period;
    std::string total, currency;
    std::string sha256;
};

struct VerifyResult {
    std::string number;
    std::string stored_sha256, computed_sha256;
    bool ok() const { return !stored_sha256.empty() && stored_sha256 == computed_sha256; }
};

// Who makes a write, for the audit log (ledger/key_store.h: actor
// "key:<key id>" with the key's role, or "cli:<user>" with "operator"). A
// write given one appends its audit rows in its own transaction: the write
// and its rows commit together, or neither does.
struct AuditActor {
    std::string actor;
    std::string role;
};

struct ListFilter {
    std::optional<int32_t> period_id;
    std::string customer;  // "" : all
    std::string status;    // "" : all
};

// Throws LedgerError (ledger/migrations.h) for what the operator asked
// wrongly (no such invoice, no issuer, finalizing a draft that could not be
// priced) and libpqxx's exceptions (std::exception) for the database.
class InvoiceStore {
   public:
    explicit InvoiceStore(const std::string& database_url);
    ~InvoiceStore();
    InvoiceStore(const InvoiceStore&) = delete;
    InvoiceStore& operator=(const InvoiceStore&) = delete;

    // Adds or replaces an issuer; `is_default` moves the default to it.
    void SetIssuer(const Issuer& issuer);
    std::vector<Issuer> Issuers();

    // Prices the period's stored usage into drafts, replacing the period's
    // drafts in scope and leaving finalized invoices alone; adjustments for
    // earlier finalized periods go onto the drafts (billing::DecideRun).
    // One transaction, REPEATABLE READ: everything it prices is one snapshot,
    // and the cut-off it records is that snapshot's latest stored batch.
    // `catalog` and `subscriptions` are the published ones (Store::Load).
    RunResult Run(const Catalog& catalog, const std::vector<Subscription>& subscriptions, const RunOptions& options);

    // Finalizes drafts: gapless number per issuer and year, frozen, hashed.
    // A draft of a period that has not ended, or that could not be priced,
    // is refused (LedgerError), and then none of `invoice_ids` is.
    // With `by`: one "invoice.finalize" audit row per invoice finalized.
    std::vector<FinalizeResult> FinalizeIds(const std::vector<int64_t>& invoice_ids, const AuditActor* by = nullptr);
    // Drafts of a period that ended. Drafts that could not be priced are
    // left as drafts and described in *not_priced (may be null).
    std::vector<FinalizeResult> FinalizePeriod(int32_t period_id, const std::string& customer,
                                               std::vector<std::string>* not_priced = nullptr,
                                               const AuditActor* by = nullptr);
    // Every draft whose grace has passed (grace_until <= now()), as above.
    std::vector<FinalizeResult> FinalizeDue(std::vector<std::string>* not_priced = nullptr);

    // An invoice by id ("17") or number ("INV-2025-000001"), with its lines.
    billing::InvoiceDocument Load(const std::string& id_or_number);
    // Invoices matching `filter`, with their lines, by period, customer, plan.
    std::vector<billing::InvoiceDocument> List(const ListFilter& filter);
    VerifyResult Verify(const std::string& id_or_number);

    // Voids a finalized invoice and issues a credit note for all of it.
    // With `by`: an "invoice.void" audit row (target: the invoice's number).
    billing::CreditNoteDocument Void(const std::string& id_or_number, const std::string& reason,
                                     const AuditActor* by = nullptr);
    // A credit note for part of a finalized invoice: `subtotal` before tax
    // (exact decimal text in the invoice's currency); tax at the invoice's
    // rate. At most what is left uncredited.
    // With `by`: a "credit_note.create" audit row (target: the note's number).
    billing::CreditNoteDocument Credit(const std::string& id_or_number, const std::string& subtotal,
                                       const std::string& reason, const AuditActor* by = nullptr);
    std::vector<billing::CreditNoteDocument> CreditNotes(const std::string& invoice_id_or_number);

    // The issuer as a document shows it: the name, address, tax id and email
    // copied onto a finalized invoice or a credit note when it was issued
    // (sql/0007_issuer_as_issued.sql; later `SetIssuer` changes do not reach
    // it), the current ones on a draft.
    Issuer IssuerOf(const billing::InvoiceDocument& invoice);
    Issuer IssuerOf(const billing::CreditNoteDocument& note);
    // The credit note numbered `number` ("CN-2026-000001"), nullopt if none is.
    std::optional<billing::CreditNoteDocument> FindCreditNote(const std::string& number);

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::ledger
