// FinanceBackend on the PostgreSQL ledger: one per worker thread, each
// with its own connections (InvoiceStore, Store, CostStore,
// DeadLetterReader, KeyStore), made on first use and made again after a
// failure, all with the request's statement_timeout. An invoice run opens
// connections of its own with kInvoiceRunBound instead (ledger::RunPeriod).
#include <stdexcept>

#include "api/finance.h"
#include "api/ledger_handle.h"
#include "documents/invoice_export.h"
#include "ledger/cost_store.h"
#include "ledger/key_store.h"
#include "ledger/migrations.h"
#include "ledger/store.h"
#include "render/invoice_pdf.h"

namespace tally::api {

namespace {

class LedgerFinanceBackend final : public FinanceBackend {
   public:
    explicit LedgerFinanceBackend(std::string url) : url_(std::move(url)) {}

    ledger::PeriodRun Run(const ledger::RunOptions& options) override {
        return ledger::RunPeriod(url_, options, kInvoiceRunBound);
    }

    std::optional<billing::InvoiceDocument> Invoice(const std::string& id) override {
        return Guard(invoices_, [&](ledger::InvoiceStore& s) -> std::optional<billing::InvoiceDocument> {
            try {
                return s.Load(id);
            } catch (const ledger::LedgerError&) {
                return std::nullopt;  // no such invoice
            }
        });
    }
    std::vector<billing::InvoiceDocument> Invoices(const ledger::ListFilter& filter) override {
        return Guard(invoices_, [&](ledger::InvoiceStore& s) { return s.List(filter); });
    }
    std::vector<ledger::FinalizeResult> FinalizeIds(const std::vector<int64_t>& ids,
                                                    const ledger::AuditActor& by) override {
        return Guard(invoices_, [&](ledger::InvoiceStore& s) { return s.FinalizeIds(ids, &by); });
    }
    std::vector<ledger::FinalizeResult> FinalizePeriod(int32_t period_id, const std::string& customer,
                                                       std::vector<std::string>* not_priced,
                                                       const ledger::AuditActor& by) override {
        return Guard(invoices_,
                     [&](ledger::InvoiceStore& s) { return s.FinalizePeriod(period_id, customer, not_priced, &by); });
    }
    billing::CreditNoteDocument Void(const std::string& id, const std::string& reason,
                                     const ledger::AuditActor& by) override {
        return Guard(invoices_, [&](ledger::InvoiceStore& s) { return s.Void(id, reason, &by); });
    }
    billing::CreditNoteDocument Credit(const std::string& id, const std::string& subtotal, const std::string& reason,
                                       const ledger::AuditActor& by) override {
        return Guard(invoices_, [&](ledger::InvoiceStore& s) { return s.Credit(id, subtotal, reason, &by); });
    }
    std::vector<billing::CreditNoteDocument> CreditNotes(const std::string& id) override {
        return Guard(invoices_, [&](ledger::InvoiceStore& s) { return s.CreditNotes(id); });
    }
    std::optional<billing::CreditNoteDocument> CreditNote(const std::string& number) override {
        return Guard(invoices_, [&](ledger::InvoiceStore& s) { return s.FindCreditNote(number); });
    }
    std::string CreditNotePdf(const billing::CreditNoteDocument& note,
                              const billing::InvoiceDocument& credited) override {
        // The issuer as when the credit note was issued.
        const ledger::Issuer issuer = Guard(invoices_, [&](ledger::InvoiceStore& s) { return s.IssuerOf(note); });
        std::string error;
        std::string pdf = render::InvoicePdfBytes(documents::PdfOfCreditNote(note, credited, issuer), error);
        if (pdf.empty()) throw std::runtime_error("credit note PDF: " + error);
        return pdf;
    }

    ledger::PeriodMargin Margin(int32_t period_id) override {
        if (!store_) store_ = std::make_unique<ledger::Store>(url_);
        return Guard(costs_, [&](ledger::CostStore& c) {
            try {
                return ledger::ComputePeriodMargin(*store_, c, period_id, "");
            } catch (...) {
                store_.reset();
                throw;
            }
        });
    }

    std::vector<ledger::DeadLetterCount> DeadLetterCounts() override {
        return Guard(dead_letters_, [](ledger::DeadLetterReader& r) { return r.CountByReason(); });
    }
    std::vector<ledger::DeadLetterEntry> DeadLetters(const ledger::DeadLetterPage& page) override {
        return Guard(dead_letters_, [&](ledger::DeadLetterReader& r) { return r.List(page); });
    }
    std::optional<std::string> DeadLetterRaw(int64_t id) override {
        return Guard(dead_letters_, [&](ledger::DeadLetterReader& r) { return r.Raw(id); });
    }

    void Audit(const std::string& actor, std::string_view role, const std::string& action, const std::string& target,
               const std::string& detail_json) override {
        Guard(keys_, [&](ledger::KeyStore& k) { k.Audit(actor, role, action, target, detail_json); });
    }

   private:
    template <typename Handle, typename Body>
    auto Guard(std::unique_ptr<Handle>& handle, Body body) -> decltype(body(*handle)) {
        return WithHandle(handle, url_, std::move(body));
    }

    std::string url_;
    std::unique_ptr<ledger::InvoiceStore> invoices_;
    std::unique_ptr<ledger::Store> store_;
    std::unique_ptr<ledger::CostStore> costs_;
    std::unique_ptr<ledger::DeadLetterReader> dead_letters_;
    std::unique_ptr<ledger::KeyStore> keys_;
};

}  // namespace

std::unique_ptr<FinanceBackend> MakeLedgerFinanceBackend(const std::string& database_url) {
    return std::make_unique<LedgerFinanceBackend>(database_url);
}

}  // namespace tally::api
