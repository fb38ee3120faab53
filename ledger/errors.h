// Operating errors of the ledger, sorted for the consumer (STYLE.md 3.4):
// every BatchSink and CatalogSource method of ledger/ catches what libpqxx
// throws and rethrows it as an ingest::SinkError of one of four kinds, with
// a message that says what to do. The table (docs/operations.md, "Database
// errors"):
//
//   kRetry    connection refused or lost (class 08, libpqxx's
//             broken_connection), server shutting down or starting up
//             (57P01 57P02 57P03), serialization failure (40001),
//             deadlock (40P01), a rolled back transaction (40000),
//             insufficient resources (class 53)
//   kInDoubt  the commit's outcome is unknown (pqxx::in_doubt_error, 40003)
//   kFenced   another consumer advanced the batch's partitions (thrown by
//             the writer's fence itself, never by Classify)
//   kFatal    everything else, with an instruction: no schema or an older
//             one (42P01 42703 42883), no such database (3D000),
//             authentication (class 28), permission (42501), data refused
//             by a constraint (class 23, named) or as a value (class 22),
//             a bad database URL, a schema of another version
#pragma once

#include <exception>
#include <string_view>

#include "ingest/sink.h"

namespace tally::ledger {

// The SinkError for `e`, caught while doing `what` ("storing a batch").
// A SinkError passes through unchanged; an exception that is not
// libpqxx's (a LedgerError, a stored plan that no longer validates) is
// kFatal with its own message. libpq reports a failure to connect as text
// only (no SQLSTATE): those are told apart by the server's English words
// (lc_messages C or en), and a connection failure whose words are not
// recognised is kRetry.
ingest::SinkError Classify(const std::exception& e, std::string_view what);

// Whether `e` is PostgreSQL cancelling a statement (SQLSTATE 57014): its
// statement_timeout passed, often while waiting for a lock another
// transaction holds (`tally serve` answers 503, try again).
bool IsStatementCancelled(const std::exception& e);

}  // namespace tally::ledger
