// One rule for the ledger handles (KeyStore, InvoiceStore, Store, ...) each
// serve thread keeps: made on first use, and dropped after a failure other
// than the operator's (a LedgerError leaves the connection sound), so the
// next request connects again. Used by the usage, finance and sales backends.
#pragma once

#include <memory>
#include <string>

#include "ledger/migrations.h"

namespace tally::api {

// Runs `body` on `handle`, made from `url` first if needed.
template <typename Handle, typename Body>
auto WithHandle(std::unique_ptr<Handle>& handle, const std::string& url, Body body) -> decltype(body(*handle)) {
    if (!handle) handle = std::make_unique<Handle>(url);
    try {
        return body(*handle);
    } catch (const ledger::LedgerError&) {
        throw;
    } catch (...) {
        handle.reset();
        throw;
    }
}

}  // namespace tally::api
