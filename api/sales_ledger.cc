// The SalesBackend of `tally serve` on the PostgreSQL ledger: one per
// worker thread, with its own Store and KeyStore connections, made on first
// use and made again after a failure. A quote opens the connections
// quoting::ComputeQuote needs (as `tally quote` does) for its duration.
#include "api/sales.h"

#include "api/ledger_handle.h"

#include "ledger/key_store.h"
#include "ledger/migrations.h"
#include "ledger/store.h"

namespace tally::api {

namespace {

class LedgerSalesBackend final : public SalesBackend {
   public:
    explicit LedgerSalesBackend(std::string url) : url_(std::move(url)) {}

    PublishOutcome Publish(std::string_view yaml, std::string_view file_name) override {
        return Guard(store_, [&](ledger::Store& s) {
            PublishOutcome out;
            try {
                std::optional<ledger::PublishResult> r = s.PublishPlan(yaml, file_name, &out.problems);
                if (r) {
                    out.plan = r->plan;
                    out.published = std::move(r->published);
                    out.unchanged = std::move(r->unchanged);
                }
            } catch (const ledger::LedgerError& e) {
                out.conflict = e.what();  // a version published with another body; nothing was stored
            }
            return out;
        });
    }

    void Audit(const std::string& actor, std::string_view role, const std::string& action, const std::string& target,
               const std::string& detail_json) override {
        Guard(keys_, [&](ledger::KeyStore& k) { k.Audit(actor, role, action, target, detail_json); });
    }

    ingest::CatalogSnapshot Catalog() override {
        return Guard(store_, [](ledger::Store& s) { return s.Load(); });
    }

    quoting::QuoteStatus Quote(quoting::QuoteInput input, quoting::QuoteResult* result) override {
        input.database_url = url_;
        return quoting::ComputeQuote(input, result);
    }

   private:
    template <typename Handle, typename Body>
    auto Guard(std::unique_ptr<Handle>& handle, Body body) -> decltype(body(*handle)) {
        return WithHandle(handle, url_, std::move(body));
    }

    std::string url_;
    std::unique_ptr<ledger::Store> store_;
    std::unique_ptr<ledger::KeyStore> keys_;
};

}  // namespace

std::unique_ptr<SalesBackend> MakeLedgerSalesBackend(const std::string& database_url) {
    return std::make_unique<LedgerSalesBackend>(database_url);
}

}  // namespace tally::api
