// tally: metering and billing for LLM token usage.
#include <CLI/CLI.hpp>

#include <iostream>

#include "app/commands.h"

namespace {

constexpr const char* kRateExamples = R"(
Examples:
  tally rate --plan deploy/plans/doubao-seed-1.6.yaml --events deploy/events/doubao.jsonl
  tally rate --plan deploy/plans/deepseek.yaml --events deploy/events/deepseek.jsonl --format json
  tally rate --plan a.yaml --plan b.yaml --subscriptions subs.yaml --events ev.jsonl \
             --customer cust_42 --from 2025-09-01T00:00:00+08:00 --to 2025-10-01T00:00:00+08:00

Every customer is on the first --plan unless --subscriptions says otherwise.
Exit codes: 0 ok, 1 failure, 2 usage error, 3 some event lines rejected (the rest priced).)";

constexpr const char* kValidateExamples = R"(
Examples:
  tally plan validate deploy/plans/*.yaml

Prints file:line:column and the problem for every mistake (and every warning);
exits 1 if any mistake. For a valid file, one line with its versions and
models, then each version written as changes (extends:) resolved: the cells
and terms in which it differs from the version it extends.)";

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tally: metering and billing for LLM token usage"};
    app.require_subcommand(1);
    app.footer("Run 'tally COMMAND --help' for the options of a command.");

    tally::RateOptions rate;
    auto* rate_cmd = app.add_subcommand("rate", "Price a file of call events under price plans, no database needed");
    rate_cmd->add_option("--plan", rate.plans, "Plan YAML file (repeatable; the first is the default plan)")
        ->required()
        ->check(CLI::ExistingFile);
    rate_cmd->add_option("--events", rate.events, "Events, one CloudEvent JSON per line (repeatable)")
        ->required()
        ->check(CLI::ExistingFile);
    rate_cmd
        ->add_option("--subscriptions", rate.subscriptions, "Subscriptions YAML: plans and contract terms per customer")
        ->check(CLI::ExistingFile);
    rate_cmd->add_option("--customer", rate.customer, "Price only this customer (event subject)");
    rate_cmd->add_option("--from", rate.from, "Period start, RFC 3339 (with --to); default: calendar months");
    rate_cmd->add_option("--to", rate.to, "Period end (exclusive), RFC 3339");
    rate_cmd->add_option("--format", rate.format, "table (default) or json");
    rate_cmd->footer(kRateExamples);

    auto* plan_cmd = app.add_subcommand("plan", "Work with price plans");
    plan_cmd->require_subcommand(1);
    std::vector<std::string> validate_files;
    auto* validate_cmd = plan_cmd->add_subcommand("validate", "Check plan files and report every problem");
    validate_cmd->add_option("files", validate_files, "Plan YAML files")->required();
    validate_cmd->footer(kValidateExamples);
    std::vector<std::string> publish_files;
    std::string database_url;
    auto* publish_cmd =
        plan_cmd->add_subcommand("publish", "Validate plan files and store their versions in the ledger");
    publish_cmd->add_option("files", publish_files, "Plan YAML files")->required()->check(CLI::ExistingFile);
    publish_cmd->add_option("--database-url", database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    bool publish_dry_run = false;
    publish_cmd->add_flag("--dry-run", publish_dry_run,
                          "Write nothing: say what would be published, each new version's diff against the version "
                          "in force before it, and how many customers are on the plan");
    publish_cmd->footer(R"(
Examples:
  tally plan publish deploy/plans/*.yaml
  tally plan publish --dry-run deploy/plans/deepseek.yaml

A version already published with the same body is left alone; a version
published with a different body is refused (versions are immutable: add a new
version with a later effective_from).)");

    auto* customer_cmd = app.add_subcommand("customer", "Work with customers");
    customer_cmd->require_subcommand(1);
    std::string customer_id, customer_name;
    auto* customer_add_cmd = customer_cmd->add_subcommand("add", "Add a customer (or rename one)");
    customer_add_cmd->add_option("id", customer_id, "Customer id: the subject of its events")->required();
    customer_add_cmd->add_option("--name", customer_name, "Name for people; any UTF-8");
    customer_add_cmd->add_option("--database-url", database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    customer_add_cmd->footer("\nExample:\n  tally customer add cust_42 --name \"华东智能科技有限公司\"");

    std::string import_file, import_from = "1970-01-01T00:00:00Z";
    auto* customer_import_cmd = customer_cmd->add_subcommand(
        "import", "Add the customers of a subscriptions file with plans and contract terms");
    customer_import_cmd->add_option("file", import_file, "Subscriptions YAML (as for tally rate --subscriptions)")
        ->required()
        ->check(CLI::ExistingFile);
    customer_import_cmd->add_option(
        "--from", import_from,
        "Subscriptions without a from: of their own start then (RFC 3339, before 2200-01-01; default: "
        "always, i.e. 1970-01-01T00:00:00Z, the earliest event time)");
    customer_import_cmd->add_option("--database-url", database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    customer_import_cmd->footer("\nExample:\n  tally customer import deploy/subscriptions.yaml");

    std::string subscribe_plan, subscribe_from = "1970-01-01T00:00:00Z", subscribe_terms;
    auto* subscribe_cmd = app.add_subcommand("subscribe", "Put a customer on a published plan, with contract terms");
    subscribe_cmd->add_option("id", customer_id, "Customer id")->required();
    subscribe_cmd->add_option("--plan", subscribe_plan, "Published plan name")->required();
    subscribe_cmd->add_option("--from", subscribe_from,
                              "From this instant on (RFC 3339, before 2200-01-01; default: always, i.e. "
                              "1970-01-01T00:00:00Z, the earliest event time)");
    subscribe_cmd
        ->add_option("--terms", subscribe_terms,
                     "YAML file with contract terms: discounts, coupons, minimum_commitment, grants, "
                     "free_quotas (docs/plan-format.md)")
        ->check(CLI::ExistingFile);
    subscribe_cmd->add_option("--database-url", database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    subscribe_cmd->footer("\nExample:\n  tally subscribe cust_42 --plan doubao-seed-1.6 --terms contract-cust_42.yaml");

    auto* migrate_cmd = app.add_subcommand("migrate", "Apply the ledger's schema migrations to PostgreSQL");
    migrate_cmd->add_option("--database-url", database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    migrate_cmd->footer(R"(
Examples:
  tally migrate --database-url postgresql://tally@127.0.0.1:55432/tally
  TALLY_DATABASE_URL=postgresql://tally@127.0.0.1:55432/tally tally migrate

Applies the numbered migrations in sql/ (embedded in this binary) that the
database does not have yet, each in its own transaction. Running it again
changes nothing.)");

    tally::DevKafkaOptions dev;
    auto* dev_cmd = app.add_subcommand("dev-kafka", "Run a development Kafka cluster (librdkafka's mock brokers)");
    dev_cmd->add_option("--brokers", dev.brokers, "Number of brokers (default 3)");
    dev_cmd->add_option("--topic", dev.topics, "Topic to create as NAME:PARTITIONS (repeatable; default usage:6)");
    dev_cmd->add_option("--bootstrap-file", dev.bootstrap_file, "Write the bootstrap servers here once up");
    dev_cmd->add_option("--control", dev.control_fifo,
                        "Create this FIFO and read fault commands from it: down N, up N, "
                        "err API_KEY COUNT CODE, leader TOPIC PARTITION BROKER, topic NAME PARTITIONS");
    dev_cmd->footer(R"(
Examples:
  tally dev-kafka --bootstrap-file /tmp/kafka.boot &
  tally dev-kafka --brokers 3 --topic usage:6 --topic usage-dlq:1 --control /tmp/kafka.ctl
  echo "down 2" > /tmp/kafka.ctl

A real Kafka-protocol cluster on loopback ports, in memory, for development
and tests (it keeps about 5 MiB per partition). Production uses real Kafka.)");

    tally::ProduceOptions produce;
    auto* produce_cmd = app.add_subcommand("produce", "Send events to a Kafka topic, keyed by customer");
    produce_cmd->add_option("--brokers", produce.brokers, "Bootstrap servers (default: $TALLY_KAFKA_BROKERS)");
    produce_cmd->add_option("--bootstrap-file", produce.bootstrap_file, "Read the bootstrap servers from this file");
    produce_cmd->add_option("--topic", produce.topic, "Topic (default usage)");
    produce_cmd->add_option("--file", produce.file, "Events, one JSON per line")->check(CLI::ExistingFile);
    produce_cmd->add_option("--synthetic", produce.synthetic, "Send this many synthetic events instead");
    produce_cmd->add_option("--customers", produce.customers, "Synthetic: number of customers (default 100)");
    produce_cmd->add_option("--models", produce.models, "Synthetic: models to use")->delimiter(',');
    produce_cmd->add_option("--seed", produce.seed, "Synthetic: random seed (default 1)");
    produce_cmd->add_option("--duplicates", produce.duplicates, "Synthetic: fraction re-sent as duplicates, e.g. 0.01");
    produce_cmd->add_option("--malformed", produce.malformed, "Synthetic: fraction of malformed messages, e.g. 0.01");
    produce_cmd->add_option("--start", produce.start, "Synthetic: time of the first event (RFC 3339)");
    produce_cmd->add_option("--span", produce.span_seconds, "Synthetic: seconds the events spread over (default 3600)");
    produce_cmd->add_option("--rate", produce.rate, "Messages per second (default: as fast as possible)");
    produce_cmd->add_option("--compression", produce.compression, "none, gzip, snappy, lz4 (default) or zstd");
    produce_cmd->add_option("--output", produce.output, "Synthetic: write the messages to this file, send nothing");
    produce_cmd
        ->add_option("--on-error", produce.on_error,
                     "A message the broker refuses (e.g. too large): stop (default: exit 1 with the count sent) or "
                     "skip (report it, go on, exit 3)")
        ->check(CLI::IsMember({"skip", "stop"}));
    produce_cmd->footer(R"(
Examples:
  tally produce --bootstrap-file /tmp/kafka.boot --file deploy/events/doubao.jsonl
  tally produce --brokers 127.0.0.1:9092 --synthetic 2000000 --customers 1000                 --models doubao-seed-1.6,deepseek-chat --duplicates 0.01 --malformed 0.01 --rate 200000)");

    tally::ConsumeOptions consume;
    auto* consume_cmd =
        app.add_subcommand("consume", "Bill events from Kafka into the PostgreSQL ledger, exactly once");
    consume_cmd->add_option("--brokers", consume.brokers, "Bootstrap servers (default: $TALLY_KAFKA_BROKERS)");
    consume_cmd->add_option("--bootstrap-file", consume.bootstrap_file, "Read the bootstrap servers from this file");
    consume_cmd->add_option("--database-url", consume.database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    consume_cmd->add_option("--group", consume.group, "Consumer group (default tally)");
    consume_cmd->add_option("--topic", consume.topic, "Topic (default usage)");
    consume_cmd->add_option("--batch-size", consume.batch_max, "Messages per batch at most (default 20000)")
        ->check(CLI::Range(1, 1'000'000));
    consume_cmd
        ->add_option("--store-connections", consume.store_connections,
                     "PostgreSQL connections storing a batch in parallel, each its share of the partitions, each in "
                     "its own transaction (default 1)")
        ->check(CLI::Range(1, 16));
    consume_cmd->add_option("--linger-ms", consume.linger_ms, "Wait at most this long to fill a batch (default 200)")
        ->check(CLI::Range(1, 60'000));
    consume_cmd->add_option("--session-timeout-ms", consume.session_timeout_ms, "Group session timeout (default 6000)");
    consume_cmd->add_option("--archive", consume.archive, "Keep the raw accepted events (default true)");
    consume_cmd->add_option("--dedup-days", consume.dedup_days, "Days (source, id) keys are kept (default 35)")
        ->check(CLI::Range(1, 36'500));
    consume_cmd->add_option("--archive-days", consume.archive_days, "Days the archive is kept (default 400)")
        ->check(CLI::Range(1, 36'500));
    consume_cmd->add_option("--metrics-port", consume.metrics_port,
                            "Serve Prometheus metrics on 127.0.0.1:PORT/metrics");
    consume_cmd->add_option("--exit-when-idle", consume.exit_when_idle_s,
                            "Exit once every partition of the topic is billed in the ledger to its end and nothing "
                            "arrived for this many seconds (for scripts and tests)");
    consume_cmd
        ->add_option("--give-up-after", consume.give_up_after_s,
                     "With --exit-when-idle: exit 1 when PostgreSQL or the brokers stay unreachable this many "
                     "seconds (default 60; a service without --exit-when-idle retries for as long as it runs)")
        ->check(CLI::Range(1, 86400));
    consume_cmd
        ->add_option("--max-future", consume.future_skew_s,
                     "Calls whose time is more than this many seconds after the moment they are consumed are dead "
                     "letters (future_time; default 86400)")
        ->check(CLI::Range(0, 366 * 86400));
    consume_cmd->add_flag("--discard", consume.discard,
                          "Benchmarks only: read messages and drop them, storing nothing (the Kafka ceiling)");
    consume_cmd->add_option("--log-level", consume.log_level, "info (default), warn or error");
    consume_cmd->add_option("--log-format", consume.log_format, "text (default) or json");
    consume_cmd->footer(R"(
Examples:
  tally consume --bootstrap-file /tmp/kafka.boot --database-url postgresql://tally@127.0.0.1:55432/tally
  TALLY_KAFKA_BROKERS=kafka1:9092 TALLY_DATABASE_URL=... tally consume --group billing --metrics-port 9464

Each batch is one PostgreSQL transaction: dedup on (source, id), hourly
rollups, the raw events, dead letters and the partition offsets. On
assignment each partition resumes from the offset stored in PostgreSQL.
A message that cannot be billed is a dead letter with its reason. Lost
connections are retried; a permanent error (schema missing: run tally
migrate; permission; data refused) exits 1 with what to do.
SIGTERM or Ctrl-C finishes the current batch and exits 0.)");

    tally::ConsumeOptions gap;
    int32_t gap_partition = -1;
    std::string gap_by;
    auto* offsets_cmd = app.add_subcommand("offsets", "Operator commands for the consumer's stored offsets");
    offsets_cmd->require_subcommand(1);
    auto* skip_cmd = offsets_cmd->add_subcommand(
        "skip-gap", "After events were lost to retention: resume a stopped partition at the broker's earliest offset");
    skip_cmd->add_option("--partition", gap_partition, "Partition")->required();
    skip_cmd->add_option("--by", gap_by, "Who decided (recorded in offset_gaps)")->required();
    skip_cmd->add_option("--group", gap.group, "Consumer group (default tally)");
    skip_cmd->add_option("--topic", gap.topic, "Topic (default usage)");
    skip_cmd->add_option("--brokers", gap.brokers, "Bootstrap servers (default: $TALLY_KAFKA_BROKERS)");
    skip_cmd->add_option("--bootstrap-file", gap.bootstrap_file, "Read the bootstrap servers from this file");
    skip_cmd->add_option("--database-url", gap.database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    skip_cmd->footer("\nExample:\n  tally offsets skip-gap --group billing --topic usage --partition 3 --by alice");

    tally::UsageOptions usage;
    auto* usage_cmd = app.add_subcommand("usage", "Each customer's usage and cost so far, from the ledger's rollups");
    usage_cmd->add_option("--database-url", usage.database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    usage_cmd->add_option("--customer", usage.customer, "Only this customer");
    usage_cmd->add_option("--period", usage.period, "Billing month YYYY-MM, or all (default: this month)");
    usage_cmd->add_option("--format", usage.format, "table (default) or json");
    usage_cmd->add_option("--group-by", usage.group_by,
                          "project: cost per project (numbers of GET /v1/usage?group_by=project)");
    usage_cmd->footer(R"(
Examples:
  tally usage
  tally usage --period 2025-11 --customer cust_42 --format json
  tally usage --period 2025-11 --group-by project)");

    tally::QuoteOptions quote;
    auto* quote_cmd = app.add_subcommand(
        "quote", "A period's bill today next to its archived calls re-rated under a candidate plan file");
    quote_cmd->add_option("--database-url", quote.database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    quote_cmd->add_option("--customer", quote.customer, "The customer to quote");
    quote_cmd->add_flag("--all-customers", quote.all_customers, "Every customer billed or archived in the period");
    quote_cmd->add_option("--period", quote.period, "Billing month YYYY-MM")->required();
    quote_cmd->add_option("--plan", quote.plan, "The candidate plan (YAML, not published)")->required();
    quote_cmd->add_option("--format", quote.format, "table (default) or json");
    quote_cmd->footer(R"(
Exit codes: 0 ok, 1 failure (an archive that lacks billed calls: no quote), 2 usage error,
3 some calls of the period could not be priced under the candidate (listed).
Examples:
  tally quote --customer cust_42 --period 2025-11 --plan hunyuan-pro-cut.yaml
  tally quote --all-customers --period 2025-11 --plan hunyuan-pro-cut.yaml --format json)");

    // Cost cards and margin reports (docs/margin.md).
    auto* cost_cmd = app.add_subcommand("cost", "Work with cost cards: what serving each model costs");
    cost_cmd->require_subcommand(1);
    std::vector<std::string> cost_files;
    auto* cost_validate_cmd = cost_cmd->add_subcommand("validate", "Check cost card files and report every problem");
    cost_validate_cmd->add_option("files", cost_files, "Cost card YAML files")->required();
    auto* cost_publish_cmd =
        cost_cmd->add_subcommand("publish", "Validate cost card files and store their versions in the ledger");
    cost_publish_cmd->add_option("files", cost_files, "Cost card YAML files")->required()->check(CLI::ExistingFile);
    cost_publish_cmd->add_option("--database-url", database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    cost_cmd->footer(R"(
Examples:
  tally cost validate deploy/costs/*.yaml
  tally cost publish deploy/costs/*.yaml)");
    tally::MarginOptions margin;
    auto* margin_cmd = app.add_subcommand("margin", "Revenue, cost and gross margin of a month, stored and printed");
    margin_cmd->add_option("--period", margin.period, "Billing month YYYY-MM")->required();
    margin_cmd->add_option("--customer", margin.customer, "Only this customer");
    margin_cmd->add_option("--by", margin.by,
                           "customer (default), model (billed), served_model (that served the calls), plan or day");
    margin_cmd->add_option("--format", margin.format, "table (default), json or csv");
    margin_cmd->add_option("--database-url", margin.database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    margin_cmd->footer(R"(
Examples:
  tally margin --period 2025-11 --by model
  tally margin --period 2025-11 --customer cust_q --by day --format csv

Revenue is each invoice's subtotal (after discounts and coupons, before tax)
spread over its usage by list value; cost comes from the published cost
cards. Every row is written to margin_rows (one report per run); rows with
a negative margin are flagged NEGATIVE.)");

    std::function<int()> action;  // set by the subcommands registered with a callback
    tally::AddInvoiceCommands(app, &action);
    tally::AddServeCommand(app, &action);
    tally::AddKeyCommands(app, &action);
    tally::AddPlanToolCommands(*plan_cmd, &action);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? tally::kExitOk : tally::kExitUsage;
    }
    try {
        if (action) {
            const int code = action();
            // Output that could not be written (a full disk, a closed pipe)
            // is a failure, not a success that printed nothing.
            std::cout.flush();
            if (!std::cout) {
                std::cerr << "tally: could not write the output\n";
                return tally::kExitFailure;
            }
            return code;
        }
        if (*rate_cmd) return tally::RunRate(rate, std::cout, std::cerr);
        if (*validate_cmd) return tally::RunPlanValidate(validate_files, std::cout, std::cerr);
        if (*publish_cmd && publish_dry_run) {
            return tally::RunPlanPublishDryRun(publish_files, database_url, std::cout, std::cerr);
        }
        if (*publish_cmd) return tally::RunPlanPublish(publish_files, database_url, std::cout, std::cerr);
        if (*customer_add_cmd)
            return tally::RunCustomerAdd(customer_id, customer_name, database_url, std::cout, std::cerr);
        if (*customer_import_cmd) {
            return tally::RunCustomerImport(import_file, import_from, database_url, std::cout, std::cerr);
        }
        if (*subscribe_cmd) {
            return tally::RunSubscribe(customer_id, subscribe_plan, subscribe_from, subscribe_terms, database_url,
                                       std::cout, std::cerr);
        }
        if (*skip_cmd) return tally::RunSkipGap(gap, gap_partition, gap_by, std::cout, std::cerr);
        if (*usage_cmd) return tally::RunUsage(usage, std::cout, std::cerr);
        if (*cost_validate_cmd) return tally::RunCostValidate(cost_files, std::cout, std::cerr);
        if (*cost_publish_cmd) return tally::RunCostPublish(cost_files, database_url, std::cout, std::cerr);
        if (*margin_cmd) return tally::RunMargin(margin, std::cout, std::cerr);
        if (*quote_cmd) return tally::RunQuote(quote, std::cout, std::cerr);
        if (*consume_cmd) return tally::RunConsume(consume, std::cout, std::cerr);
        if (*migrate_cmd) return tally::RunMigrate(database_url, std::cout, std::cerr);
        if (*dev_cmd) return tally::RunDevKafka(dev, std::cout, std::cerr);
        if (*produce_cmd) return tally::RunProduce(produce, std::cout, std::cerr);
    } catch (const std::exception& e) {
        std::cerr << "tally: " << e.what() << "\n";
        return tally::kExitFailure;
    }
    return tally::kExitUsage;
}
