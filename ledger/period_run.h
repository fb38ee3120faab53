// An invoice run of one billing period as `tally invoice run` and `POST
// /v1/invoice-runs` do it (one function for both): the published catalog
// (Store::Load), the published cost cards when there are any,
// InvoiceStore::Run, and with cost cards the margin report of the drafts
// written (CostStore::WriteMarginReport, source "invoice run <id>").
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "ledger/invoice_store.h"

namespace tally::ledger {

struct PeriodRun {
    RunResult result;
    std::optional<int64_t> margin_report_id;  // when cost cards are published
};

// The run did not end within its bound and was stopped: its transaction
// rolled back, nothing of it is kept.
struct RunTimedOut : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// `options.costs` is set here (the published cost cards, or none).
// `bound` > 0: the whole run (catalog, run, margin report) gets at most
// that long: its connections carry an application_name of their own and
// a watchdog ends them (pg_terminate_backend) when the bound passes; then
// RunTimedOut. Their statement_timeout is the bound plus 30 s (whatever
// `database_url` says), in case the watchdog cannot reach the database.
// 0: no bound of its own (the CLI).
// Throws as InvoiceStore::Run, Store and CostStore do.
PeriodRun RunPeriod(const std::string& database_url, RunOptions options,
                    std::chrono::milliseconds bound = std::chrono::milliseconds(0));

}  // namespace tally::ledger
