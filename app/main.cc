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

Prints file:line:column and the problem for every mistake; exits 1 if any.)";

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

    std::string database_url;
    auto* migrate_cmd = app.add_subcommand("migrate", "Apply the ledger's schema migrations to PostgreSQL");
    migrate_cmd->add_option("--database-url", database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    migrate_cmd->footer(R"(
Examples:
  tally migrate --database-url postgresql://tally@127.0.0.1:55432/tally
  TALLY_DATABASE_URL=postgresql://tally@127.0.0.1:55432/tally tally migrate

Applies the numbered migrations in sql/ (embedded in this binary) that the
database does not have yet, each in its own transaction. Running it again
changes nothing.)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? tally::kExitOk : tally::kExitUsage;
    }
    try {
        if (*rate_cmd) return tally::RunRate(rate, std::cout, std::cerr);
        if (*validate_cmd) return tally::RunPlanValidate(validate_files, std::cout, std::cerr);
        if (*migrate_cmd) return tally::RunMigrate(database_url, std::cout, std::cerr);
    } catch (const std::exception& e) {
        std::cerr << "tally: " << e.what() << "\n";
        return tally::kExitFailure;
    }
    return tally::kExitUsage;
}
