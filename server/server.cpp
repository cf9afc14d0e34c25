// server.cpp — the poll() loop: accept, read, parse, dispatch, write, and enforce every deadline.
#include "server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <stdexcept>
#include <vector>

#include "clock.h"
#include "json.h"

namespace sd::http {

// The meeting point of a handler (any thread) and the loop: the response, and the pipe that wakes the loop.
struct Slot {
    std::mutex m;
    bool ready = false;
    Response response;
    int wake_fd = -1;  // write end of the loop's pipe
};

void Responder::send(Response r) {
    {
        std::lock_guard<std::mutex> lock(slot_->m);
        if (slot_->ready) return;
        slot_->response = std::move(r);
        slot_->ready = true;
    }
    char b = 1;
    ssize_t ignored = ::write(slot_->wake_fd, &b, 1);  // a full pipe already means "wake up"
    (void)ignored;
}

bool Responder::sent() const {
    std::lock_guard<std::mutex> lock(slot_->m);
    return slot_->ready;
}

namespace {

Response error_response(int status, const std::string& why) {
    Response r;
    r.status = status;
    r.body = JsonWriter().object().key("detail").value(why).end().str();
    return r;
}

struct Conn {
    int fd = -1;
    std::string in;                  // received, not yet parsed
    std::string out;                 // to send
    size_t out_off = 0;
    std::shared_ptr<Slot> pending;   // the request being answered, if any
    bool pending_keep_alive = true, pending_head = false;
    bool read_closed = false;        // the client half-closed (or we stopped reading)
    bool close_after_write = false;  // no more requests on this connection
    bool sent_continue = false;      // "100 Continue" already sent for the request in progress
    double request_start = 0;        // first byte of the request being received; 0 when none
    double last_activity = 0;        // last byte read or written
};

}  // namespace

struct Server::Impl {
    ServerConfig cfg;
    Handler handler;
    int listen_fd = -1;
    int wake[2] = {-1, -1};
    std::atomic<bool> stopping{false};
    std::list<Conn> conns;
    std::atomic<size_t>* open = nullptr;

    void close_conn(std::list<Conn>::iterator it) {
        ::close(it->fd);
        conns.erase(it);
        open->store(conns.size());
    }

    void accept_all() {
        for (;;) {
            int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;  // EAGAIN, or a transient error (EMFILE, ECONNABORTED): try on the next wake-up
            if (conns.size() >= cfg.max_connections) {
                std::string r = serialize(error_response(503, "too many open connections; try again shortly"), false);
                ssize_t ignored = ::send(fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                (void)ignored;
                ::close(fd);
                continue;
            }
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            Conn c;
            c.fd = fd;
            c.last_activity = wall_seconds();
            conns.push_back(std::move(c));
            open->store(conns.size());
        }
    }

    // Moves a ready answer to the output, parses and dispatches what can be; false if the connection must close.
    void pump(Conn& c) {
        for (;;) {
            if (c.pending) {
                // Held here until the lock is released: reset() below may drop the last reference to the slot,
                // and its mutex must not be destroyed while locked (TSan found the unlock of a freed mutex).
                const std::shared_ptr<Slot> slot = c.pending;
                std::lock_guard<std::mutex> lock(slot->m);
                if (!slot->ready) return;
                bool keep = c.pending_keep_alive && !stopping.load();
                c.out += serialize(slot->response, keep, c.pending_head);
                c.pending.reset();
                if (!keep) c.close_after_write = true;
            }
            if (c.close_after_write || c.in.empty()) return;
            if (c.out.size() - c.out_off > (4u << 20)) return;  // let the client read before answering more
            Request req;
            ParseResult pr = parse_request(c.in.data(), c.in.size(), cfg.limits, &req);
            if (pr.status == Parse::incomplete) {
                if (pr.headers_done && req.expect_continue && !c.sent_continue) {
                    c.out += "HTTP/1.1 100 Continue\r\n\r\n";
                    c.sent_continue = true;
                }
                return;
            }
            if (pr.status == Parse::error) {
                c.out += serialize(error_response(pr.error_status, pr.error), false);
                c.close_after_write = true;
                c.in.clear();
                return;
            }
            c.in.erase(0, pr.consumed);
            c.request_start = c.in.empty() ? 0 : wall_seconds();
            c.sent_continue = false;
            auto slot = std::make_shared<Slot>();
            slot->wake_fd = wake[1];
            c.pending = slot;
            c.pending_keep_alive = req.keep_alive;
            c.pending_head = req.method == "HEAD";
            try {
                handler(req, std::make_shared<Responder>(slot));
            } catch (const std::exception& e) {  // a handler bug must not take the server down
                Responder(slot).send(error_response(500, e.what()));
            }
        }
    }

    // Reads what is available (bounded); false on a connection error.
    bool read_some(Conn& c) {
        const size_t cap = cfg.limits.max_header_bytes + cfg.limits.max_body_bytes + 65536;
        char buf[65536];
        for (int rounds = 0; rounds < 16 && c.in.size() < cap; rounds++) {
            ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
            if (n > 0) {
                if (c.in.empty() && c.request_start == 0) c.request_start = wall_seconds();
                c.in.append(buf, (size_t)n);
                c.last_activity = wall_seconds();
                continue;
            }
            if (n == 0) { c.read_closed = true; return true; }
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        return true;
    }

    bool write_some(Conn& c) {
        while (c.out_off < c.out.size()) {
            ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
            if (n > 0) {
                c.out_off += (size_t)n;
                c.last_activity = wall_seconds();
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            return false;
        }
        if (c.out_off == c.out.size()) {
            c.out.clear();
            c.out_off = 0;
        }
        return true;
    }

    // When this connection must next be looked at because of a timeout; 0: not timed (a job is running).
    double deadline(const Conn& c) const {
        if (!c.out.empty()) return c.last_activity + cfg.write_timeout_s;
        if (c.pending) return 0;
        if (c.request_start > 0) return c.request_start + cfg.request_timeout_s;
        return c.last_activity + cfg.idle_timeout_s;
    }

    void run() {
        std::vector<pollfd> pfds;
        std::vector<std::list<Conn>::iterator> which;
        bool listening = true;
        for (;;) {
            const bool stop = stopping.load();
            if (stop && listening) {
                ::close(listen_fd);
                listen_fd = -1;
                listening = false;
            }
            // Closing time: idle connections go now; those owing an answer stay until it is written.
            if (stop) {
                for (auto it = conns.begin(); it != conns.end();) {
                    auto next = std::next(it);
                    if (!it->pending && it->out.empty()) close_conn(it);
                    else it->close_after_write = true;
                    it = next;
                }
                if (conns.empty()) return;
            }
            pfds.clear();
            which.clear();
            pfds.push_back({wake[0], POLLIN, 0});
            if (listening) pfds.push_back({listen_fd, POLLIN, 0});
            const size_t first_conn = pfds.size();
            double t = wall_seconds(), next_deadline = 0;
            for (auto it = conns.begin(); it != conns.end(); ++it) {
                short ev = 0;
                if (!it->read_closed && !it->pending && !it->close_after_write) ev |= POLLIN;
                if (!it->out.empty()) ev |= POLLOUT;
                pfds.push_back({it->fd, ev, 0});
                which.push_back(it);
                double d = deadline(*it);
                if (d > 0 && (next_deadline == 0 || d < next_deadline)) next_deadline = d;
            }
            int timeout_ms = next_deadline == 0 ? -1 : std::max(0, (int)((next_deadline - t) * 1000) + 1);
            int rc = ::poll(pfds.data(), pfds.size(), timeout_ms);
            if (rc < 0 && errno != EINTR) throw std::runtime_error(std::string("poll failed: ") + std::strerror(errno));
            if (pfds[0].revents & POLLIN) {
                char buf[256];
                while (::read(wake[0], buf, sizeof buf) > 0) {
                }
            }
            if (listening && (pfds[1].revents & POLLIN)) accept_all();
            t = wall_seconds();
            for (size_t i = 0; i < which.size(); i++) {
                auto it = which[i];
                Conn& c = *it;
                short re = pfds[first_conn + i].revents;
                bool ok = true;
                if (re & (POLLIN | POLLHUP | POLLERR)) ok = read_some(c);
                if (ok) pump(c);
                if (ok && !c.out.empty()) ok = write_some(c);
                if (ok && c.out.empty() && !c.pending) {
                    if (c.close_after_write) ok = false;
                    // Half-closed by the client: answer what was sent, then close.
                    else if (c.read_closed) { pump(c); ok = !c.out.empty() || c.pending; if (ok) ok = write_some(c); }
                }
                if (ok) {
                    double d = deadline(c);
                    if (d > 0 && t > d) {
                        if (c.out.empty() && c.request_start > 0) {  // a request that never finished arriving
                            std::string r = serialize(error_response(408, "the request took too long to arrive"), false);
                            ssize_t ignored = ::send(c.fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                            (void)ignored;
                        }
                        ok = false;
                    }
                }
                if (!ok) close_conn(it);
            }
            // Answers that arrived for connections not polled for output this round.
            for (auto it = conns.begin(); it != conns.end();) {
                auto next = std::next(it);
                if (it->pending) {
                    pump(*it);
                    if (!it->out.empty() && !write_some(*it)) close_conn(it);
                }
                it = next;
            }
        }
    }
};

Server::Server(ServerConfig config, Handler handler) : impl_(std::make_unique<Impl>()) {
    impl_->cfg = std::move(config);
    impl_->handler = std::move(handler);
    impl_->open = &open_;
    if (::pipe2(impl_->wake, O_NONBLOCK | O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("cannot create a pipe: ") + std::strerror(errno));
}

Server::~Server() {
    for (auto& c : impl_->conns) ::close(c.fd);
    if (impl_->listen_fd >= 0) ::close(impl_->listen_fd);
    ::close(impl_->wake[0]);
    ::close(impl_->wake[1]);
}

int Server::bind_and_listen() {
    const ServerConfig& cfg = impl_->cfg;
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    std::string port = std::to_string(cfg.port);
    if (::getaddrinfo(cfg.host.c_str(), port.c_str(), &hints, &res) != 0 || !res)
        throw std::runtime_error("cannot listen on '" + cfg.host + "': not a numeric IP address");
    int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
        int err = errno;
        if (fd >= 0) ::close(fd);
        ::freeaddrinfo(res);
        throw std::runtime_error("cannot listen on " + cfg.host + ":" + port + ": " + std::strerror(err));
    }
    ::freeaddrinfo(res);
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    ::getsockname(fd, (sockaddr*)&sa, &len);
    impl_->listen_fd = fd;
    return ntohs(sa.ss_family == AF_INET6 ? ((sockaddr_in6*)&sa)->sin6_port : ((sockaddr_in*)&sa)->sin_port);
}

void Server::run() { impl_->run(); }

void Server::stop() {
    impl_->stopping.store(true);
    char b = 1;
    ssize_t ignored = ::write(impl_->wake[1], &b, 1);
    (void)ignored;
}

}  // namespace sd::http
