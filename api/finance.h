// The finance routes of `tally serve` (docs/api.md, "Finance routes"):
// invoice runs, finalize, void, credit notes, margin, exports and dead
// letters. HandleFinance validates and answers; FinanceBackend is the
// ledger behind them (one per worker thread, like Backend).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/routes.h"
#include "api/service.h"
#include "billing/invoice_document.h"
#include "ledger/dead_letter_reader.h"
#include "ledger/invoice_store.h"
#include "ledger/period_margin.h"
#include "ledger/period_run.h"

namespace tally::api {

// How long POST /v1/invoice-runs may take, all of it (a run of 10,000
// customers takes about 40 s): ledger::RunPeriod's watchdog and
// watchdog (ledger::RunPeriod), instead of the request's statement timeout.
inline constexpr std::chrono::milliseconds kInvoiceRunBound{10 * 60 * 1000};

// The ledger side of the finance routes. Each method may throw: a
// ledger::LedgerError (what the caller asked wrongly for the ledger's
// state) becomes a 409 with its message, ledger::RunTimedOut a 503, any
// other exception a 500.
class FinanceBackend {
   public:
    virtual ~FinanceBackend() = default;
    // ledger::RunPeriod, bounded by kInvoiceRunBound.
    virtual ledger::PeriodRun Run(const ledger::RunOptions& options) = 0;
    // By id ("17") or number; nullopt when there is none.
    virtual std::optional<billing::InvoiceDocument> Invoice(const std::string& id_or_number) = 0;
    virtual std::vector<billing::InvoiceDocument> Invoices(const ledger::ListFilter& filter) = 0;
    // The writes below append their audit rows (as `by`) in their own
    // transaction (ledger::InvoiceStore): both commit, or neither.
    virtual std::vector<ledger::FinalizeResult> FinalizeIds(const std::vector<int64_t>& invoice_ids,
                                                            const ledger::AuditActor& by) = 0;
    virtual std::vector<ledger::FinalizeResult> FinalizePeriod(int32_t period_id, const std::string& customer,
                                                               std::vector<std::string>* not_priced,
                                                               const ledger::AuditActor& by) = 0;
    virtual billing::CreditNoteDocument Void(const std::string& id_or_number, const std::string& reason,
                                             const ledger::AuditActor& by) = 0;
    virtual billing::CreditNoteDocument Credit(const std::string& id_or_number, const std::string& subtotal,
                                               const std::string& reason, const ledger::AuditActor& by) = 0;
    virtual std::vector<billing::CreditNoteDocument> CreditNotes(const std::string& invoice_id_or_number) = 0;
    // By number ("CN-2026-000001"); nullopt when there is none.
    virtual std::optional<billing::CreditNoteDocument> CreditNote(const std::string& number) = 0;
    // documents::PdfOfCreditNote with the issuer as issued, as PDF bytes.
    virtual std::string CreditNotePdf(const billing::CreditNoteDocument& note,
                                      const billing::InvoiceDocument& credited) = 0;
    // ledger::ComputePeriodMargin of every customer (no report is stored).
    virtual ledger::PeriodMargin Margin(int32_t period_id) = 0;
    virtual std::vector<ledger::DeadLetterCount> DeadLetterCounts() = 0;
    virtual std::vector<ledger::DeadLetterEntry> DeadLetters(const ledger::DeadLetterPage& page) = 0;
    virtual std::optional<std::string> DeadLetterRaw(int64_t id) = 0;
    // ledger::KeyStore::Audit.
    virtual void Audit(const std::string& actor, std::string_view role, const std::string& action,
                       const std::string& target, const std::string& detail_json) = 0;
};

// On the PostgreSQL ledger (api/finance_ledger.cc). `database_url` carries
// the request's statement_timeout; the run gets kInvoiceRunBound instead.
std::unique_ptr<FinanceBackend> MakeLedgerFinanceBackend(const std::string& database_url);

// Answers a finance route (IsFinanceRoute). `who` is a finance or admin key
// (the route table's roles are checked before). Every successful write
// appends audit rows (actor "key:<key id>", the key's role): finalize, void and credit notes in their
// own transaction, a run right after it commits.
void HandleFinance(const Matched& m, const Target& target, const ledger::Principal& who, const Request& request,
                   FinanceBackend& backend, Response* response);

}  // namespace tally::api
