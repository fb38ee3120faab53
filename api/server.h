// `tally serve`'s HTTP/1.1 server (Boost.Beast, kept inside server.cc):
// keep-alive, bounded header (8 KiB), body (1 MiB) and target, a read
// timeout, bounds on concurrent connections, in all and per client address
// (beyond them: 503 and close),
// N worker threads each with its own Backend, one access-log line per
// request (never a key or a query), and a clean stop on SIGINT/SIGTERM
// that finishes the requests in flight.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>

#include "api/service.h"

namespace tally::api {

inline constexpr size_t kHeaderMax = 8 * 1024;
inline constexpr size_t kBodyMax = 1024 * 1024;

struct ServerOptions {
    std::string host = "127.0.0.1";
    uint16_t port = 8080;  // 0: any free port (Port() says which)
    int threads = 2;
    int max_connections = 256;
    // Connections from one client address at once (beyond it: 503 and
    // close), so that one address cannot hold every slot. Behind a proxy
    // every client is the proxy's address: raise it to max_connections.
    int max_connections_per_address = 64;
    std::chrono::milliseconds read_timeout{10000};   // a request's header and body, and idle keep-alive
    std::chrono::milliseconds drain_timeout{10000};  // stop: how long in-flight requests may finish
    ServiceOptions service;
    // The web pages (api/static_files.h); none: GET / and /static/ are 404s.
    std::shared_ptr<const StaticFiles> pages;
    bool handle_signals = true;  // SIGINT and SIGTERM stop Run
};

class Server {
   public:
    // `make_backend` is called once on each worker thread.
    Server(ServerOptions options, std::function<std::unique_ptr<Backend>()> make_backend, std::ostream& log);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and listens; throws std::runtime_error naming the address when it cannot.
    void Listen();
    uint16_t Port() const;
    // Serves until Stop() or a signal; then finishes in-flight requests
    // (up to drain_timeout) and returns.
    void Run();
    // Thread-safe.
    void Stop();

    struct Impl;  // server.cc

   private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally::api
