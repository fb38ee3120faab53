// The `tally` subcommands. Each returns the process exit code:
// 0 ok, 1 failure, 2 usage error, 3 partial (some input rejected).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "pricing/diagnostic.h"
#include "pricing/plan.h"

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
int RunMigrate(const std::string& database_url_flag, std::ostream& out, std::ostream& err);
// The database URL from the flag, else TALLY_DATABASE_URL, else "".
std::string DatabaseUrl(const std::string& flag);
// A connection URL with its password replaced by ***, for logs and errors.
std::string MaskSecret(const std::string& url);
int RunPlanValidate(const std::vector<std::string>& files, std::ostream& out, std::ostream& err);

// Reads a whole file; false with a message in *error when it cannot.
bool ReadFile(const std::string& path, std::string* text, std::string* error);
// Loads and validates plan files into a catalog; prints every diagnostic.
std::optional<Catalog> LoadCatalog(const std::vector<std::string>& files, std::ostream& err);

}  // namespace tally
