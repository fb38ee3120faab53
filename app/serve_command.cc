// `tally serve`: the HTTP API (api/, docs/api.md).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

#include "api/ledger_backend.h"
#include "api/server.h"
#include "api/static_files.h"
#include "app/commands.h"
#include "ledger/usage_reader.h"

namespace tally {

namespace {

// Threads computing answers again under --usage-max-age-ms: two computed
// 65-70 answers a second here while consume billed (docs/performance.md).
constexpr int kRefresherThreads = 2;

struct ServeFlags {
    std::string listen = "127.0.0.1:8080";
    std::string database_url;
    int threads = 4;
    int max_connections = 256;
    int max_connections_per_address = 64;
    int64_t rate_limit = 50;
    int64_t rate_burst = 100;
    int64_t statement_timeout_ms = 5000;
    int64_t read_timeout_s = 10;
    int64_t usage_cache = static_cast<int64_t>(api::kUsageCacheEntries);  // 0: off
    int64_t usage_max_age_ms = 0;                                          // 0: answers always current
    int64_t usage_fold_wait_ms = 0;                                        // 0: a miss waits for the fold
    std::string web_dir;  // "": the first of DefaultWebDirs() that exists
};

// Where the web pages are when --web-dir is not given, in order: installed
// next to the binary (BIN/../share/tally/web), then the source tree's web/.
std::vector<std::string> DefaultWebDirs() {
    std::vector<std::string> out;
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) out.push_back((exe.parent_path().parent_path() / "share" / "tally" / "web").string());
    out.emplace_back(TALLY_SOURCE_WEB_DIR);
    return out;
}

// "HOST:PORT" or "[V6]:PORT"; false when malformed.
bool SplitListen(const std::string& listen, std::string* host, uint16_t* port) {
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) return false;
    *host = listen.substr(0, colon);
    if (host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
    const std::string digits = listen.substr(colon + 1);
    if (digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
    const int value = std::stoi(digits);
    if (value > 65535) return false;
    *port = static_cast<uint16_t>(value);
    return true;
}

int RunServe(const ServeFlags& f, std::ostream& out, std::ostream& err) {
    api::ServerOptions o;
    if (!SplitListen(f.listen, &o.host, &o.port)) {
        err << "tally serve: --listen is HOST:PORT, like 127.0.0.1:8080 or [::1]:8080\n";
        return kExitUsage;
    }
    const std::string url = DatabaseUrl(f.database_url);
    if (url.empty()) {
        err << "tally serve: no database: give --database-url or set TALLY_DATABASE_URL\n";
        return kExitUsage;
    }
    o.threads = f.threads;
    o.max_connections = f.max_connections;
    o.max_connections_per_address = std::min(f.max_connections_per_address, f.max_connections);
    o.read_timeout = std::chrono::seconds(f.read_timeout_s);
    o.service.rate_limit = f.rate_limit;
    o.service.rate_burst = f.rate_burst;
    std::string web_dir = f.web_dir;
    for (const std::string& dir : DefaultWebDirs()) {
        if (web_dir.empty() && std::filesystem::is_regular_file(std::filesystem::path(dir) / "index.html"))
            web_dir = dir;
    }
    try {
        if (!web_dir.empty()) o.pages = api::StaticFiles::Load(web_dir);
    } catch (const std::exception& e) {
        err << "tally serve: --web-dir: " << e.what() << "\n";
        return f.web_dir.empty() ? kExitFailure : kExitUsage;
    }
    const std::string bounded_url = api::WithStatementTimeout(url, f.statement_timeout_ms);
    try {
        // Fail now, not on the first request, when the ledger is not there.
        ledger::UsageReader check(bounded_url);
        if (const std::string why = check.NotReady(); !why.empty()) {
            err << "tally serve: " << MaskSecret(url) << ": " << why << "\n";
            return kExitFailure;
        }
    } catch (const std::exception& e) {
        err << "tally serve: " << MaskSecret(url) << ": " << e.what() << "\n";
        return kExitFailure;
    }
    try {
        std::shared_ptr<api::UsageCache> cache =
            f.usage_cache > 0 ? api::MakeUsageCache(static_cast<size_t>(f.usage_cache),
                                                    std::chrono::milliseconds(f.usage_max_age_ms),
                                                    std::chrono::milliseconds(f.usage_fold_wait_ms))
                              : nullptr;
        // With a max age, answers served past half of it are computed again
        // on a thread of their own, not by the requests.
        std::optional<api::UsageRefresher> refresher;
        if (cache && f.usage_max_age_ms > 0) refresher.emplace(bounded_url, cache, kRefresherThreads);
        if (cache) o.service.more_metrics = [cache] { return api::MetricsText(api::StatsOf(*cache)); };
        api::Server server(
            o, [bounded_url, cache] { return api::MakeLedgerBackend(bounded_url, cache); }, err);
        server.Listen();
        out << "tally serve: listening on http://"
            << (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) << ":" << server.Port() << " ("
            << o.threads << " threads)" << std::endl;
        out << "tally serve: " << (o.pages ? "pages from " + o.pages->dir() : "no web pages (--web-dir)") << std::endl;
        server.Run();
        out << "tally serve: stopped" << std::endl;
        return kExitOk;
    } catch (const std::exception& e) {
        err << "tally serve: " << e.what() << "\n";
        return kExitFailure;
    }
}

}  // namespace

void AddServeCommand(CLI::App& app, std::function<int()>* action) {
    auto f = std::make_shared<ServeFlags>();
    auto* cmd = app.add_subcommand("serve", "Serve the HTTP API (usage, invoices, health, metrics)");
    cmd->add_option("--listen", f->listen, "HOST:PORT to listen on (default 127.0.0.1:8080)");
    cmd->add_option("--threads", f->threads, "Worker threads, each with its own database connections (default 4)")
        ->check(CLI::Range(1, 256));
    cmd->add_option("--max-connections", f->max_connections,
                    "Open connections at most; more are answered 503 and closed (default 256)")
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--max-connections-per-address", f->max_connections_per_address,
                    "Open connections of one client address at most; more are answered 503 (default 64; behind a "
                    "proxy, where every client has its address, set it to --max-connections)")
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--rate-limit", f->rate_limit, "Requests per second per API key (default 50)")
        ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
    cmd->add_option("--rate-burst", f->rate_burst, "Requests at once per API key (default 100)")
        ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
    cmd->add_option("--statement-timeout-ms", f->statement_timeout_ms,
                    "Longest database statement of a request, ms (default 5000)")
        ->check(CLI::Range(int64_t{1}, int64_t{600000}));
    cmd->add_option("--read-timeout", f->read_timeout_s,
                    "Seconds to read a request, and to keep an idle connection (default 10)")
        ->check(CLI::Range(int64_t{1}, int64_t{3600}));
    cmd->add_option("--usage-cache", f->usage_cache,
                    "GET /v1/usage answers kept, checked against the ledger on every request; 0: none (default 4096)")
        ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
    cmd->add_option("--usage-max-age-ms", f->usage_max_age_ms,
                    "Serve a kept GET /v1/usage answer up to this old without reading the ledger; one older than "
                    "half of it is computed again in the background; 0: answers always current (default 0)")
        ->check(CLI::Range(int64_t{0}, int64_t{60000}));
    cmd->add_option("--usage-fold-wait-ms", f->usage_fold_wait_ms,
                    "Wait at most this long for the consumer's fold when a GET /v1/usage answer must be computed, then "
                    "serve the one kept for it if at most 60 s old; 0: wait for the fold (default 0)")
        ->check(CLI::Range(int64_t{0}, int64_t{60000}));
    cmd->add_option("--web-dir", f->web_dir,
                    "Directory of the web pages served at / (default: BIN/../share/tally/web, else the source web/)");
    cmd->add_option("--database-url", f->database_url, "PostgreSQL URL (default: $TALLY_DATABASE_URL)");
    cmd->footer(R"(
Examples:
  tally serve --listen 127.0.0.1:8080
  tally serve --listen 0.0.0.0:8080 --threads 8 --max-connections 1000 --rate-limit 20

Every /v1 route needs Authorization: Bearer <key> (tally key create). SIGINT
or SIGTERM stops it after the requests in flight. Routes, roles and limits:
docs/api.md.)");
    cmd->callback([action, f] { *action = [f] { return RunServe(*f, std::cout, std::cerr); }; });
}

}  // namespace tally
