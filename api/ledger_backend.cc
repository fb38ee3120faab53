#include "api/ledger_backend.h"

#include "api/finance.h"
#include "api/sales.h"

#include "base/assert.h"
#include "documents/invoice_export.h"
#include "ledger/invoice_store.h"
#include "ledger/key_store.h"
#include "ledger/migrations.h"
#include "ledger/store.h"
#include "ledger/usage_reader.h"

namespace tally::api {

std::string WithStatementTimeout(const std::string& url, int64_t timeout_ms) {
    TALLY_ASSERT(timeout_ms > 0);
    const std::string ms = std::to_string(timeout_ms);
    if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
        return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-c%20statement_timeout%3D" + ms;
    }
    return url + (url.empty() ? "" : " ") + "options='-c statement_timeout=" + ms + "'";
}

namespace {

class LedgerBackend final : public Backend {
   public:
    explicit LedgerBackend(std::string url) : url_(std::move(url)) {}

    std::optional<ledger::Principal> Authenticate(std::string_view secret) override {
        return Guard(keys_, [&](ledger::KeyStore& k) { return k.Authenticate(secret); });
    }

    std::string NotReady() override {
        try {
            return Reader().NotReady();
        } catch (const std::exception&) {
            reader_.reset();
            return "the database does not answer";
        }
    }

    UsageReport Usage(const UsageQuery& q) override {
        ledger::UsageReader& reader = Reader();
        try {
            const std::string version = reader.CatalogVersion();
            if (!catalog_ || version != catalog_version_) {
                catalog_.reset();
                catalog_ =
                    std::make_unique<ingest::CatalogSnapshot>(Guard(store_, [](ledger::Store& s) { return s.Load(); }));
                catalog_version_ = version;
            }
            std::vector<RollupRecord> records;
            if (q.period) {
                records = reader.PeriodRecords(q.customer, *q.period);
            } else {
                const auto hour = [](Instant t) {
                    return static_cast<int32_t>(std::chrono::floor<std::chrono::hours>(t.time_since_epoch()).count());
                };
                records = reader.RangeRecords(q.customer, hour(q.from), hour(q.to));
            }
            // Amount coupons are balances earlier periods use up: then those
            // periods are priced first, as the invoice run prices them.
            std::vector<RollupRecord> earlier;
            if (NeedsEarlierPeriods(catalog_->subscriptions, q.customer)) {
                std::optional<int32_t> first = q.period;
                for (const RollupRecord& r : records) first = std::min(first.value_or(r.period), r.period);
                if (first) earlier = reader.EarlierRecords(q.customer, *first);
            }
            return ComputeUsage(catalog_->catalog, catalog_->subscriptions, records, q, earlier);
        } catch (const HttpError&) {
            throw;
        } catch (...) {
            reader_.reset();
            throw;
        }
    }

    std::vector<billing::InvoiceDocument> Invoices(const InvoiceQuery& q) override {
        ledger::ListFilter f;
        f.period_id = q.period;
        f.customer = q.customer;
        f.status = q.status;
        return Guard(invoices_, [&](ledger::InvoiceStore& s) { return s.List(f); });
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

    std::string Pdf(const billing::InvoiceDocument& doc) override {
        // The issuer as when the invoice was finalized (a draft: as now).
        const ledger::Issuer issuer = Guard(invoices_, [&](ledger::InvoiceStore& s) { return s.IssuerOf(doc); });
        std::string error;
        std::string pdf = render::InvoicePdfBytes(documents::PdfOf(doc, issuer), error);
        if (pdf.empty()) throw std::runtime_error("invoice PDF: " + error);
        return pdf;
    }
    std::string Csv(const billing::InvoiceDocument& doc) override { return documents::CsvOf({doc}); }

    FinanceBackend* Finance() override {
        if (!finance_) finance_ = MakeLedgerFinanceBackend(url_);
        return finance_.get();
    }
    SalesBackend* Sales() override {
        if (!sales_) sales_ = MakeLedgerSalesBackend(url_);
        return sales_.get();
    }

   private:
    ledger::UsageReader& Reader() {
        if (!reader_) reader_ = std::make_unique<ledger::UsageReader>(url_);
        return *reader_;
    }

    // Runs `body` on the handle, made first if needed; a failure drops the
    // handle so the next request connects again.
    template <typename Handle, typename Body>
    auto Guard(std::unique_ptr<Handle>& handle, Body body) -> decltype(body(*handle)) {
        if (!handle) handle = std::make_unique<Handle>(url_);
        try {
            return body(*handle);
        } catch (...) {
            handle.reset();
            throw;
        }
    }

    std::string url_;
    std::unique_ptr<ledger::KeyStore> keys_;
    std::unique_ptr<ledger::InvoiceStore> invoices_;
    std::unique_ptr<ledger::Store> store_;
    std::unique_ptr<ledger::UsageReader> reader_;
    std::unique_ptr<ingest::CatalogSnapshot> catalog_;
    std::string catalog_version_;
    std::unique_ptr<FinanceBackend> finance_;
    std::unique_ptr<SalesBackend> sales_;
};

}  // namespace

std::unique_ptr<Backend> MakeLedgerBackend(const std::string& database_url) {
    return std::make_unique<LedgerBackend>(database_url);
}

}  // namespace tally::api
