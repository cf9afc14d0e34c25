// server.h — the socket side of `sd serve`: one thread, non-blocking sockets and poll(), every connection
// under a deadline, so a slow, stalled or half-open client costs one file descriptor and never blocks others.
//
// A request is handed to the Handler on the loop thread together with a Responder; the handler answers at
// once (quick routes) or keeps the Responder and answers later from any thread (a generation job). Requests
// on one connection are answered in order: while one waits, the next pipelined request stays unparsed.
// A client that goes away while its job runs only drops the answer. Limits: header and body size (http.h),
// the time to receive one request, the keep-alive idle time, the time a response may stall, the number of
// open connections (beyond it: 503 and close). Left out: TLS (put nginx in front), HTTP/2, chunked bodies.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "server/http.h"

namespace sd::http {

struct ServerConfig {
    std::string host = "127.0.0.1";  // "0.0.0.0" with --listen
    int port = 7860;                 // 0: any free port (tests)
    Limits limits;
    double request_timeout_s = 30;   // from a request's first byte to its last
    double idle_timeout_s = 60;      // keep-alive: waiting for the next request
    double write_timeout_s = 60;     // a response that makes no progress for this long is dropped
    size_t max_connections = 64;
};

class Server;
struct Slot;

// One answer to one request. send() may be called from any thread, once; later calls are ignored.
class Responder {
public:
    explicit Responder(std::shared_ptr<Slot> slot) : slot_(std::move(slot)) {}
    void send(Response r);
    bool sent() const;

private:
    std::shared_ptr<Slot> slot_;
};

using Handler = std::function<void(const Request&, std::shared_ptr<Responder>)>;

class Server {
public:
    Server(ServerConfig config, Handler handler);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and listens; throws one sentence on failure (port in use, bad address). Returns the bound port.
    int bind_and_listen();
    // Serves until stop(): then stops accepting, closes idle connections, finishes answering the requests
    // already received (their Responders must still be answered), and returns once all are written.
    void run();
    // Thread-safe and async-signal-safe (an atomic store and a write to a pipe).
    void stop();

    size_t open_connections() const { return open_.load(); }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::atomic<size_t> open_{0};
};

}  // namespace sd::http
