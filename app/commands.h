// The `tally` subcommands. Each returns the process exit code:
// 0 ok, 1 failure, 2 usage error, 3 partial (some input rejected).
#pragma once

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "billing/quote.h"
#include "quoting/quote_run.h"
#include "pricing/diagnostic.h"
#include "pricing/invoice.h"
#include "pricing/plan.h"
#include "pricing/plan_diff.h"

namespace CLI {
class App;
}

namespace tally {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitPartial = 3;

struct RateOptions {
    std::vector<std::string> plans;
    std::vector<std::string> events;  // JSON lines files, rated together
    std::string subscriptions;        // empty: none
    std::string customer;             // empty: all
    std::string from, to;             // RFC 3339; both or neither
    std::string format = "table";
};

int RunRate(const RateOptions& options, std::ostream& out, std::ostream& err);

struct DevKafkaOptions {
    int brokers = 3;
    std::vector<std::string> topics = {"usage:6"};  // NAME:PARTITIONS
    std::string bootstrap_file;                     // written once the cluster is up
    std::string control_fifo;                       // fault-injection commands
};
int RunDevKafka(const DevKafkaOptions& options, std::ostream& out, std::ostream& err);

struct ProduceOptions {
    std::string brokers, bootstrap_file;
    std::string topic = "usage";
    std::string file;       // JSON lines, or:
    int64_t synthetic = 0;  // this many synthetic events
    int customers = 100;
    std::vector<std::string> models = {"doubao-seed-1.6", "doubao-seed-1.6-flash"};
    uint64_t seed = 1;
    std::string duplicates = "0", malformed = "0";  // fractions
    std::string start;                              // RFC 3339; default 2025-11-03T00:00Z
    int64_t span_seconds = 3600;
    int64_t rate = 0;  // messages per second; 0: as fast as possible
    std::string compression = "lz4";
    std::string output;             // write the messages to this file instead of sending them
    std::string on_error = "stop";  // a message the broker refuses: stop, or skip it and go on (exit 3)
};
int RunProduce(const ProduceOptions& options, std::ostream& out, std::ostream& err);
int RunMigrate(const std::string& database_url_flag, std::ostream& out, std::ostream& err);
// The database URL from the flag, else TALLY_DATABASE_URL, else "".
std::string DatabaseUrl(const std::string& flag);
// Kafka bootstrap servers from the flag, else the first line of the
// bootstrap file, else TALLY_KAFKA_BROKERS, else "".
std::string KafkaBrokers(const std::string& flag, const std::string& bootstrap_file);
// A connection URL with its password replaced by ***, for logs and errors.
std::string MaskSecret(const std::string& url);
struct ConsumeOptions {
    std::string brokers, bootstrap_file, database_url;
    std::string group = "tally";
    std::string topic = "usage";
    int batch_max = 20000;
    int store_connections = 1;  // batches stored in parallel, split by partition
    int linger_ms = 200;
    int session_timeout_ms = 6000;
    bool archive = true;
    int dedup_days = 35;
    int archive_days = 400;
    int metrics_port = 0;      // 0: no metrics endpoint
    int exit_when_idle_s = 0;  // 0: run until stopped
    int give_up_after_s = 60;  // with exit_when_idle_s: stop retrying an unreachable ledger or broker
    int future_skew_s = 86400;  // calls further ahead than this are dead letters (future_time)
    bool discard = false;      // benchmark ceiling: read and drop, store nothing
    std::string log_level = "info";
    std::string log_format = "text";
};
int RunConsume(const ConsumeOptions& options, std::ostream& out, std::ostream& err);
int RunSkipGap(const ConsumeOptions& options, int32_t partition, const std::string& by, std::ostream& out,
               std::ostream& err);

struct UsageOptions {
    std::string database_url;
    std::string customer;  // empty: all
    std::string period;    // YYYY-MM, "all", or empty for this month (UTC)
    std::string format = "table";
    // "" : the priced invoices; "project": rows per project, as GET
    // /v1/usage?group_by=project gives them (api/usage_report.h).
    std::string group_by;
};
int RunUsage(const UsageOptions& options, std::ostream& out, std::ostream& err);

// Cost cards and margin (app/margin_command.cc, docs/margin.md).
struct MarginOptions {
    std::string database_url;
    std::string period;            // YYYY-MM
    std::string customer;          // empty: all
    std::string by = "customer";   // customer|model|served_model|plan|day
    std::string format = "table";  // table|json|csv
};
int RunMargin(const MarginOptions& options, std::ostream& out, std::ostream& err);
int RunCostValidate(const std::vector<std::string>& files, std::ostream& out, std::ostream& err);
int RunCostPublish(const std::vector<std::string>& files, const std::string& database_url, std::ostream& out,
                   std::ostream& err);

// `tally quote` (app/quote_command.cc): one customer's period, or every
// customer's, as billed today next to the archived calls re-rated under a
// candidate plan file that is not published (docs/api.md).
struct QuoteOptions {
    std::string database_url;
    std::string customer;        // one customer, or:
    bool all_customers = false;  // every customer billed or archived in the period
    std::string period;          // YYYY-MM
    std::string plan;            // the candidate plan file
    std::string format = "table";
    std::optional<bool> terminal;  // progress as a bar; default: isatty(stderr)
};
// The result types are quoting/quote_run.h's (POST /v1/quotes shares them).
using quoting::QuoteCustomerResult;
using quoting::QuoteRejected;
using quoting::QuoteResult;
// Computes a quote; returns kExitOk, or the exit code with the reason on err
// (usage errors, an invalid candidate, the database). Refusals of single
// customers (an incomplete archive) are in their quote's errors.
int ComputeQuote(const QuoteOptions& options, QuoteResult* result, std::ostream& err);
int RunQuote(const QuoteOptions& options, std::ostream& out, std::ostream& err);

int RunPlanPublish(const std::vector<std::string>& files, const std::string& database_url, std::ostream& out,
                   std::ostream& err);
int RunCustomerAdd(const std::string& id, const std::string& name, const std::string& database_url, std::ostream& out,
                   std::ostream& err);
int RunCustomerImport(const std::string& file, const std::string& from, const std::string& database_url,
                      std::ostream& out, std::ostream& err);
int RunSubscribe(const std::string& id, const std::string& plan, const std::string& from, const std::string& terms_file,
                 const std::string& database_url, std::ostream& out, std::ostream& err);
int RunPlanValidate(const std::vector<std::string>& files, std::ostream& out, std::ostream& err);
// `tally plan publish --dry-run` (app/ledger_commands.cc): what publishing
// would store, each new version's diff against the version in force before
// it, and the customers on the plan; nothing is written.
int RunPlanPublishDryRun(const std::vector<std::string>& files, const std::string& database_url, std::ostream& out,
                         std::ostream& err);

// `tally plan show`, `tally plan diff` and `tally plan try` (app/plan_tools.cc,
// docs/plan-format.md "Seeing, comparing and testing a plan"): registered
// under `tally plan` like AddInvoiceCommands.
void AddPlanToolCommands(CLI::App& plan_cmd, std::function<int()>* action);
int RunPlanShowFile(const std::string& file, const std::string& version, const std::string& at,
                    const std::string& format, std::ostream& out, std::ostream& err);
int RunPlanDiffFiles(const std::vector<std::string>& files, const std::string& old_version,
                     const std::string& new_version, const std::string& format, std::ostream& out, std::ostream& err);
// A plan diff as `tally plan diff` prints it (rates in `currency`).
void WritePlanDiffTable(std::ostream& out, const PlanVersionDiff& diff, Currency currency);
void WritePlanDiffJson(std::ostream& out, const std::string& old_plan, const std::string& old_version,
                       const std::string& old_source, const std::string& new_plan, const std::string& new_version,
                       const std::string& new_source, const PlanVersionDiff& diff);

// One call event to try, and where it came from ("FILE:LINE", "event 2").
struct EventText {
    std::string where;
    std::string json;
};
// A line a tried call would be billed: amount = quantity x rate / per,
// CellRate's rate, as invoice lines are priced before period tiers and
// free quotas.
struct TriedLine {
    std::string model, band, output_condition, window;
    bool batch = false, thinking = false;
    std::string unit;
    int64_t quantity = 0;
    std::optional<Rate> rate;  // nullopt: no rate of the cell prices the unit (the invoice would not be priced)
    Amount amount;             // exact
};
struct TriedCall {
    std::string where;
    bool rejected = false;
    std::string reason_code, reason;  // the dead letter's reason_code and reason
    std::string duplicate_of;         // a repeat (same source and id) of this call: billed once
    std::string customer, plan, version, currency;
    std::vector<TriedLine> lines;
    Amount total;  // exact sum of the lines
};
// Each event through `tally rate`'s pipeline (ingest/file_rater.h) under
// the first plan of `catalog` (every customer on it), priced line by line.
std::vector<TriedCall> TryCalls(const Catalog& catalog, const std::vector<EventText>& events);

// Registers `tally issuer ...` and `tally invoice ...` (app/invoice_command.cc):
// the chosen subcommand sets *action to the function that runs it.
void AddInvoiceCommands(CLI::App& app, std::function<int()>* action);

// Registers `tally serve` (app/serve_command.cc, docs/api.md).
void AddServeCommand(CLI::App& app, std::function<int()>* action);

// `tally key create|list|revoke` and `tally audit` (app/key_command.cc,
// docs/api.md "Keys and roles").
struct KeyOptions {
    std::string database_url;
    std::string role;      // create: customer, finance, sales or admin
    std::string customer;  // create: with role customer only
    std::string expires;   // create: RFC 3339; empty: never
    std::string label;     // create
    std::string key_id;    // revoke
    std::string format = "table";  // list, audit: table or json
    int limit = 50;                 // audit
};
int RunKeyCreate(const KeyOptions& options, std::ostream& out, std::ostream& err);
int RunKeyList(const KeyOptions& options, std::ostream& out, std::ostream& err);
int RunKeyRevoke(const KeyOptions& options, std::ostream& out, std::ostream& err);
int RunAudit(const KeyOptions& options, std::ostream& out, std::ostream& err);
// The actor of CLI actions in the audit log: "cli:" + $USER, or "cli:unknown".
std::string CliActor();
// Registers `tally key ...` and `tally audit` like AddInvoiceCommands.
void AddKeyCommands(CLI::App& app, std::function<int()>* action);

// Reads a whole file; false with a message in *error when it cannot.
bool ReadFile(const std::string& path, std::string* text, std::string* error);
// Reads each file and hands its text to `use`, which returns false when the
// file failed (having said why on err); a file that cannot be read is
// reported here. Returns how many files failed.
int ForEachFile(const std::vector<std::string>& files, std::ostream& err,
                const std::function<bool(const std::string& file, const std::string& text)>& use);
// Loads and validates plan files into a catalog; prints every diagnostic.
std::optional<Catalog> LoadCatalog(const std::vector<std::string>& files, std::ostream& err);

}  // namespace tally
