// The Backend of `tally serve` on the PostgreSQL ledger: one per worker
// thread, each with its own connections (KeyStore, InvoiceStore, Store,
// UsageReader), made on first use and made again after a failure. The
// published catalog is cached and loaded again only when
// UsageReader::CatalogVersion changes.
#pragma once

#include <memory>
#include <string>

#include "api/service.h"

namespace tally::api {

// The URL with `-c statement_timeout=<ms>` added to the connection's
// options (URI form "postgresql://..." or key=value form), so that every
// statement of a request is bounded in time.
std::string WithStatementTimeout(const std::string& database_url, int64_t timeout_ms);

// PDF and CSV are documents/'s (the bytes `tally invoice export` writes).
std::unique_ptr<Backend> MakeLedgerBackend(const std::string& database_url);

}  // namespace tally::api
