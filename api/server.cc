#include "api/server.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <mutex>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/assert.h"

namespace tally::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

thread_local Backend* tls_backend = nullptr;

// The part of a target before '?', printable ASCII only, bounded: what the
// access log may show (never the query: nothing secret goes there, but
// nothing from it is logged either).
std::string LoggablePath(std::string_view target) {
    std::string out;
    for (const char c : target.substr(0, target.find('?'))) {
        if (out.size() == 200) {
            out += "...";
            break;
        }
        const auto u = static_cast<unsigned char>(c);
        out.push_back(u > 0x20 && u < 0x7F ? c : '?');
    }
    return out.empty() ? "-" : out;
}

}  // namespace

struct Server::Impl {
    Impl(ServerOptions o, std::function<std::unique_ptr<Backend>()> make, std::ostream& l)
        : options(std::move(o)), make_backend(std::move(make)), log(l), service(options.service, options.pages) {}

    void Accept();
    void Refuse(tcp::socket socket, std::string_view why);
    void StopNow();
    void Log(const std::string& line) {
        std::lock_guard<std::mutex> lock(log_mutex);
        log << line << '\n' << std::flush;
    }

    ServerOptions options;
    std::function<std::unique_ptr<Backend>()> make_backend;
    std::ostream& log;
    std::mutex log_mutex;
    Service service;
    std::atomic<int> connections{0};
    // Open connections by client address; entries at zero are erased.
    std::mutex by_address_mutex;
    std::unordered_map<std::string, int> by_address;
    // Counts a connection of `address` unless it has max_connections_per_address already.
    bool Admit(const std::string& address) {
        std::lock_guard<std::mutex> lock(by_address_mutex);
        int& n = by_address[address];
        if (n >= options.max_connections_per_address) return false;
        ++n;
        return true;
    }
    void Release(const std::string& address) {
        std::lock_guard<std::mutex> lock(by_address_mutex);
        const auto it = by_address.find(address);
        TALLY_ASSERT(it != by_address.end() && it->second > 0);
        if (--it->second == 0) by_address.erase(it);
    }
    std::atomic<bool> stopping{false};
    std::atomic<uint64_t> next_request{0};
    std::atomic<int64_t> busy{0};  // requests read and not yet written
    // Last: destroying it destroys the sessions still waiting, which use the members above.
    asio::io_context ioc;
    tcp::acceptor acceptor{asio::make_strand(ioc)};  // its handlers and StopNow run on its strand
    std::optional<asio::signal_set> signals;
};

namespace {

// Writes a last response, then closes politely: shuts down sending and
// reads (and drops) what the client still sends for up to a second, so
// that the client reads the response instead of a connection reset.
class Closer : public std::enable_shared_from_this<Closer> {
   public:
    explicit Closer(beast::tcp_stream stream) : stream_(std::move(stream)) {}
    void Start(std::shared_ptr<std::string> response) {
        response_ = std::move(response);
        stream_.expires_after(std::chrono::seconds(1));
        asio::async_write(stream_, asio::buffer(*response_),
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWritten(ec); });
    }

   private:
    void OnWritten(beast::error_code ec) {
        if (ec) return Close();
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        Drain();
    }
    void Drain() {
        stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, size_t n) {
            self->drained_ += n;
            if (ec || self->drained_ > 4 * kBodyMax) return self->Close();
            self->Drain();
        });
    }
    void Close() {
        beast::error_code ignored;
        stream_.socket().close(ignored);
    }
    beast::tcp_stream stream_;
    std::shared_ptr<std::string> response_;
    char scratch_[16384];
    size_t drained_ = 0;
};

std::string RawResponse(int status, std::string_view code, std::string_view message) {
    const std::string body = ErrorBody(code, message);
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(StatusText(status)) + "\r\n";
    for (const auto& [name, value] : CommonHeaders("/")) out += name + ": " + value + "\r\n";
    out += "Cache-Control: no-store\r\nContent-Type: application/json\r\nConnection: close\r\n";
    if (status == 503) out += "Retry-After: 1\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return out;
}

class Session : public std::enable_shared_from_this<Session> {
   public:
    // REQUIRES: server.Admit(address) answered true.
    Session(tcp::socket socket, Server::Impl& server, std::string address)
        : stream_(std::move(socket)), server_(server), address_(std::move(address)) {
        server_.connections.fetch_add(1);
    }
    ~Session() {
        server_.Release(address_);
        server_.connections.fetch_sub(1);
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void Start() {
        asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
    }

   private:
    void Read() {
        if (server_.stopping.load()) return Close();
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(kHeaderMax));
        parser_->body_limit(kBodyMax);
        stream_.expires_after(server_.options.read_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
    }

    void OnRead(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
            ec == asio::error::connection_reset || ec == asio::error::eof) {
            return Close();
        }
        if (ec == http::error::body_limit) return Fail(413, "payload_too_large", "the body is larger than 1 MiB");
        if (ec == http::error::header_limit) {
            return Fail(431, "header_too_large", "the request line and headers are larger than 8 KiB");
        }
        if (ec && ec.category() == http::make_error_code(http::error::bad_target).category()) {
            return Fail(400, "bad_request", "the request is not valid HTTP/1.1");
        }
        if (ec) return Close();
        const http::request<http::string_body>& req = parser_->get();
        // Framing a proxy in front could read differently: refused, and the
        // connection closed (RFC 9112 6.1, 6.3, 3.2).
        if (const auto te = req.find(http::field::transfer_encoding);
            te != req.end() && !beast::iequals(te->value(), "chunked")) {
            return Fail(400, "bad_request", "a Transfer-Encoding other than chunked alone is not accepted");
        }
        // Two keys: a proxy might read the other one.
        if (req.count(http::field::authorization) > 1) {
            return Fail(400, "bad_request", "more than one Authorization header");
        }
        if (req.version() >= 11 && req.find(http::field::host) == req.end()) {
            return Fail(400, "bad_request", "an HTTP/1.1 request needs a Host header");
        }
        Handle();
    }

    // Answers a request that could not be read, then closes.
    void Fail(int status, std::string_view code, std::string_view message) {
        Log("-", "-", status, std::chrono::microseconds(0), "");
        server_.service.metrics().Record("unread", status, std::chrono::microseconds(0));
        auto closer = std::make_shared<Closer>(std::move(stream_));
        closer->Start(std::make_shared<std::string>(RawResponse(status, code, message)));
    }

    void Handle() {
        const auto start = std::chrono::steady_clock::now();
        server_.busy.fetch_add(1);
        server_.service.metrics().in_flight().fetch_add(1);
        const http::request<http::string_body>& req = parser_->get();
        const std::string request_id = std::to_string(server_.next_request.fetch_add(1) + 1);
        Request request;
        const std::string method(req.method_string());
        request.method = method;
        request.target = std::string_view(req.target().data(), req.target().size());
        const auto auth = req.find(http::field::authorization);
        if (auth != req.end()) request.authorization = std::string_view(auth->value().data(), auth->value().size());
        request.body = req.body();
        request.remote = address_;
        std::string internal_error;
        TALLY_ASSERT(tls_backend != nullptr);
        Response r = server_.service.Handle(request, *tls_backend, request_id, &internal_error);
        if (!internal_error.empty()) {
            server_.Log("request " + request_id + " failed: " + MaskPasswords(internal_error));
        }

        const bool keep_alive = req.keep_alive() && !server_.stopping.load();
        res_.emplace(static_cast<http::status>(r.status), req.version());
        res_->set(http::field::server, "tally");
        res_->set(http::field::content_type, r.content_type);
        for (const auto& [name, value] : CommonHeaders(request.target.substr(0, request.target.find('?')))) {
            res_->set(name, value);
        }
        if (r.status >= 400) res_->set(http::field::cache_control, "no-store");
        for (const auto& [name, value] : r.headers) res_->set(name, value);
        res_->body() = std::move(r.body);
        res_->keep_alive(keep_alive);
        res_->prepare_payload();
        // A response to HEAD has the headers of the body it does not send.
        if (req.method() == http::verb::head) res_->body().clear();
        const auto latency =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
        server_.service.metrics().Record(r.route, r.status, latency);
        Log(method, LoggablePath(request.target), r.status, latency, r.key_id, request_id);
        // The write gets a timeout of its own (the read's timer may be nearly spent).
        stream_.expires_after(server_.options.read_timeout);
        http::async_write(stream_, *res_, [self = shared_from_this(), keep_alive](beast::error_code wec, size_t) {
            self->server_.busy.fetch_sub(1);
            self->server_.service.metrics().in_flight().fetch_sub(1);
            if (wec || !keep_alive) return self->Close();
            self->res_.reset();
            self->Read();
        });
    }

    void Log(std::string_view method, std::string_view path, int status, std::chrono::microseconds latency,
             const std::string& key_id, const std::string& request_id = "-") {
        server_.Log("http req=" + request_id + " " + std::string(method) + " " + std::string(path) + " " +
                    std::to_string(status) + " " + std::to_string(latency.count() / 1000) +
                    "ms key=" + (key_id.empty() ? "-" : key_id));
    }

    void Close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.socket().close(ignored);
    }

    beast::tcp_stream stream_;
    Server::Impl& server_;
    const std::string address_;
    beast::flat_buffer buffer_{kHeaderMax};
    std::optional<http::request_parser<http::string_body>> parser_;
    std::optional<http::response<http::string_body>> res_;
};

}  // namespace

void Server::Impl::Accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
        if (ec) {
            // Out of descriptors (EMFILE) and the like: the pending connection
            // stays queued, so accepting again at once would spin; wait a little.
            auto timer = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(50));
            timer->async_wait([this, timer](beast::error_code) {
                if (acceptor.is_open()) Accept();
            });
            return;
        }
        beast::error_code peer_ec;
        const tcp::endpoint peer = socket.remote_endpoint(peer_ec);
        std::string address = peer_ec ? std::string("unknown") : peer.address().to_string();
        if (connections.load() >= options.max_connections) {
            Refuse(std::move(socket), "too many connections; try again in a moment");
        } else if (!Admit(address)) {
            Refuse(std::move(socket), "too many connections from this address; try again in a moment");
        } else {
            std::make_shared<Session>(std::move(socket), *this, std::move(address))->Start();
        }
        Accept();
    });
}

void Server::Impl::Refuse(tcp::socket socket, std::string_view why) {
    service.metrics().Refused();
    auto closer = std::make_shared<Closer>(beast::tcp_stream(std::move(socket)));
    closer->Start(std::make_shared<std::string>(RawResponse(503, "overloaded", why)));
}

void Server::Impl::StopNow() {
    if (stopping.exchange(true)) return;
    beast::error_code ignored;
    acceptor.close(ignored);
    if (signals) signals->cancel(ignored);
    // Let the requests in flight finish, then stop every thread (idle
    // keep-alive connections are closed with the io_context).
    auto timer = std::make_shared<asio::steady_timer>(ioc);
    const auto deadline = std::chrono::steady_clock::now() + options.drain_timeout;
    auto poll = std::make_shared<std::function<void()>>();
    *poll = [this, timer, deadline, poll] {
        if (busy.load() == 0 || std::chrono::steady_clock::now() >= deadline) {
            ioc.stop();
            *poll = nullptr;  // break the cycle
            return;
        }
        timer->expires_after(std::chrono::milliseconds(20));
        timer->async_wait([poll](beast::error_code) {
            if (*poll) (*poll)();
        });
    };
    (*poll)();
}

Server::Server(ServerOptions options, std::function<std::unique_ptr<Backend>()> make_backend, std::ostream& log)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(make_backend), log)) {
    TALLY_ASSERT(impl_->options.threads > 0);
    TALLY_ASSERT(impl_->options.max_connections > 0);
    TALLY_ASSERT(impl_->options.max_connections_per_address > 0);
}

Server::~Server() = default;

void Server::Listen() {
    Impl& s = *impl_;
    beast::error_code ec;
    const asio::ip::address address = asio::ip::make_address(s.options.host, ec);
    if (ec) throw std::runtime_error("cannot listen on " + s.options.host + ": not an IP address");
    const tcp::endpoint endpoint(address, s.options.port);
    const std::string where = s.options.host + ":" + std::to_string(s.options.port);
    s.acceptor.open(endpoint.protocol(), ec);
    if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) s.acceptor.bind(endpoint, ec);
    if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
}

uint16_t Server::Port() const {
    return impl_->acceptor.local_endpoint().port();
}

void Server::Run() {
    Impl& s = *impl_;
    TALLY_ASSERT(s.acceptor.is_open());
    if (s.options.handle_signals) {
        s.signals.emplace(s.ioc, SIGINT, SIGTERM);
        s.signals->async_wait([&s](beast::error_code ec, int) {
            if (!ec) asio::post(s.acceptor.get_executor(), [&s] { s.StopNow(); });
        });
    }
    s.Accept();
    std::vector<std::thread> workers;
    for (int i = 0; i < s.options.threads; ++i) {
        workers.emplace_back([&s] {
            std::unique_ptr<Backend> backend = s.make_backend();
            tls_backend = backend.get();
            s.ioc.run();
            tls_backend = nullptr;
        });
    }
    for (std::thread& t : workers) t.join();
}

void Server::Stop() {
    asio::post(impl_->acceptor.get_executor(), [this] { impl_->StopNow(); });
}

}  // namespace tally::api
