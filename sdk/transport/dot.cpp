// DNS over TLS (RFC 7858) with OpenSSL, strict privacy profile (RFC 8310 §5):
// the certificate chain must verify against the CA file or the system store,
// and it must name the configured NAME (else carry ADDR as an IP SAN).
// One connection per upstream, reused for pipelined queries whose answers may
// come back in any order (RFC 7858 §3.3, RFC 7766 §6.2.1.1), matched by a
// random ID unique on the connection; TLS 1.3 session resumption (RFC 7858
// §3.4, RFC 8446 §2.2); idle close and reconnect.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "transport_internal.hpp"

namespace aisid::transport {

namespace {

constexpr size_t kMaxInFlight = 8192;
constexpr int kMaxResend = 3;

int new_session_cb(SSL *ssl, SSL_SESSION *sess);

// A socket BIO that writes with MSG_NOSIGNAL: a server that resets the
// connection must not kill the application with SIGPIPE (OpenSSL's own
// socket BIO uses write(2)). The descriptor stays ours to close.
int nosig_write(BIO *b, const char *d, int n) {
    BIO_clear_retry_flags(b);
    ssize_t r = send(int(reinterpret_cast<intptr_t>(BIO_get_data(b))), d, size_t(n), MSG_NOSIGNAL);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(b);
    return int(r);
}
int nosig_read(BIO *b, char *d, int n) {
    BIO_clear_retry_flags(b);
    ssize_t r = recv(int(reinterpret_cast<intptr_t>(BIO_get_data(b))), d, size_t(n), 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(b);
    return int(r);
}
long nosig_ctrl(BIO *, int cmd, long, void *) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }
int nosig_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}
BIO_METHOD *nosig_method() {
    static BIO_METHOD *m = [] {
        BIO_METHOD *x = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "aisid socket");
        if (!x) return x;
        BIO_meth_set_write(x, nosig_write);
        BIO_meth_set_read(x, nosig_read);
        BIO_meth_set_ctrl(x, nosig_ctrl);
        BIO_meth_set_create(x, nosig_create);
        return x;
    }();
    return m;
}

class DotUpstream final : public Upstream {
public:
    DotUpstream(const UpstreamEndpoint &ep, const Options &opt, SslCtxPtr ctx)
        : ep_(ep), opt_(opt), ctx_(std::move(ctx)) {}
    ~DotUpstream() override { close_conn(false); }

    const std::string &uri() const override { return ep_.uri; }
    size_t in_flight() const override { return pending_.size(); }
    const Stats &stats() const override { return stats_; }

    void submit(std::span<const uint8_t> query, Callback cb) override {
        ++stats_.queries;
        if (!check_query(query)) {
            fail_one(std::move(cb), make_error(ErrorKind::bad_query, ep_.uri, "not a DNS query with one question"));
            done_.deliver();
            return;
        }
        if (pending_.size() >= kMaxInFlight) {
            fail_one(std::move(cb), make_error(ErrorKind::timeout, ep_.uri, "too many queries in flight"));
            done_.deliver();
            return;
        }
        Pending p;
        p.orig_id = uint16_t(query[0] << 8 | query[1]);
        p.question.assign(query.begin(), query.end());
        bool added = false;
        if (opt_.padding) {
            auto padded = pad_query(query, 128, added);  // RFC 8467 §4.1
            if (!padded) {
                fail_one(std::move(cb), make_error(ErrorKind::bad_query, ep_.uri, padded.error()));
                done_.deliver();
                return;
            }
            p.wire = std::move(*padded);
        } else {
            p.wire.assign(query.begin(), query.end());
        }
        p.added_opt = added;
        p.cb = std::move(cb);
        p.deadline = Clock::now() + std::chrono::milliseconds(opt_.timeout_ms);
        uint16_t id = fresh_id();
        p.wire[0] = uint8_t(id >> 8);
        p.wire[1] = uint8_t(id);
        pending_.emplace(id, std::move(p));
        if (state_ == State::open) {
            enqueue(id);
            pump_write();
        } else if (state_ == State::closed) {
            start_connect();
        }
        done_.deliver();
    }

    void fds(std::vector<PollFd> &out) const override {
        if (fd_ < 0) return;
        short ev = 0;
        switch (state_) {
        case State::connecting: ev = POLLOUT; break;
        case State::handshaking: ev = want_write_ ? POLLOUT : POLLIN; break;
        case State::open: ev = short(POLLIN | (!wbuf_.empty() || want_write_ ? POLLOUT : 0)); break;
        case State::closed: return;
        }
        out.push_back({fd_, ev});
    }

    void process(int fd, short revents) override {
        if (fd < 0 || fd != fd_ || revents == 0) return;
        switch (state_) {
        case State::connecting: finish_connect(); break;
        case State::handshaking: handshake(); break;
        case State::open:
            if (revents & (POLLIN | POLLHUP | POLLERR)) read_answers();
            if (state_ == State::open && (revents & POLLOUT)) pump_write();
            break;
        case State::closed: break;
        }
        done_.deliver();
    }

    std::optional<Clock::time_point> next_deadline() const override {
        std::optional<Clock::time_point> d;
        for (const auto &[id, p] : pending_)
            if (!d || p.deadline < *d) d = p.deadline;
        if (state_ == State::open && pending_.empty()) {
            auto idle = last_activity_ + std::chrono::milliseconds(opt_.idle_timeout_ms);
            if (!d || idle < *d) d = idle;
        }
        return d;
    }

    void process_timeouts(Clock::time_point now) override {
        if (state_ == State::open && pending_.empty() &&
            now >= last_activity_ + std::chrono::milliseconds(opt_.idle_timeout_ms)) {
            close_conn(true);  // RFC 7858 §3.4: idle close, resume later
        }
        bool any = false;
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (now < it->second.deadline) {
                ++it;
                continue;
            }
            any = true;
            std::string why;
            switch (state_) {
            case State::connecting: why = "timeout connecting (no TCP connection after "; break;
            case State::handshaking: why = "timeout in the TLS handshake (after "; break;
            default: why = "timeout (no answer after "; break;
            }
            why += std::to_string(opt_.timeout_ms) + " ms)";
            ++stats_.failures;
            done_.add(std::move(it->second.cb), unexpected(make_error(ErrorKind::timeout, ep_.uri, why)));
            it = pending_.erase(it);
        }
        // A connection that is not up in time, or an open one that stays
        // silent for a whole timeout, is abandoned; the next query reconnects.
        if (any && state_ != State::closed &&
            (state_ != State::open || now - last_read_ >= std::chrono::milliseconds(opt_.timeout_ms))) {
            close_conn(false);
            // The queries that have time left go out again on a new connection.
            for (auto &[id, p] : pending_) p.sent = false;
            if (!pending_.empty()) start_connect();
        }
        done_.deliver();
    }

    void on_new_session(SSL_SESSION *s) { session_.reset(s); }

private:
    enum class State { closed, connecting, handshaking, open };
    struct Pending {
        uint16_t orig_id = 0;
        std::vector<uint8_t> question;  // the caller's query, to check the answer against
        std::vector<uint8_t> wire;      // what goes on the wire (our ID, padded)
        Callback cb;
        Clock::time_point deadline;
        bool added_opt = false;
        bool sent = false;     // written on the current connection
        int resent = 0;        // times re-sent after the server closed the connection
    };

    uint16_t fresh_id() {
        // RFC 7858 §3.3 / RFC 5452 §4.3: unpredictable IDs, unique among the
        // queries in flight on this connection so answers match out of order.
        for (;;) {
            if (rand_pos_ + 2 > sizeof rand_buf_) {
                if (RAND_bytes(rand_buf_, sizeof rand_buf_) != 1) {
                    for (auto &b : rand_buf_) b = uint8_t(std::rand());
                }
                rand_pos_ = 0;
            }
            uint16_t id = uint16_t(rand_buf_[rand_pos_] << 8 | rand_buf_[rand_pos_ + 1]);
            rand_pos_ += 2;
            if (!pending_.count(id)) return id;
        }
    }

    void fail_one(Callback cb, Error e) {
        ++stats_.failures;
        done_.add(std::move(cb), unexpected(std::move(e)));
    }

    void enqueue(uint16_t id) {
        auto &p = pending_.at(id);
        // RFC 7858 §3.3 / RFC 1035 §4.2.2: two-byte length prefix.
        wbuf_.push_back(uint8_t(p.wire.size() >> 8));
        wbuf_.push_back(uint8_t(p.wire.size()));
        wbuf_.insert(wbuf_.end(), p.wire.begin(), p.wire.end());
        p.sent = true;
    }

    void start_connect() {
        sockaddr_storage ss{};
        socklen_t sl = 0;
        auto *s4 = reinterpret_cast<sockaddr_in *>(&ss);
        auto *s6 = reinterpret_cast<sockaddr_in6 *>(&ss);
        if (inet_pton(AF_INET, ep_.host.c_str(), &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s4->sin_port = htons(ep_.port);
            sl = sizeof *s4;
        } else if (inet_pton(AF_INET6, ep_.host.c_str(), &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons(ep_.port);
            sl = sizeof *s6;
        }
        int fd = sl ? socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
        if (fd < 0) {
            fail_all(ErrorKind::connect, std::string("socket: ") + std::strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ++stats_.connections;
        fd_ = fd;
        answers_on_conn_ = 0;
        resumed_ = false;
        last_read_ = last_activity_ = Clock::now();
        if (connect(fd, reinterpret_cast<sockaddr *>(&ss), sl) == 0) {
            state_ = State::connecting;
            finish_connect();
        } else if (errno == EINPROGRESS) {
            state_ = State::connecting;
        } else {
            fail_all(ErrorKind::connect, std::string("connect: ") + std::strerror(errno));
        }
    }

    void finish_connect() {
        int err = 0;
        socklen_t l = sizeof err;
        if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &l) != 0) err = errno;
        if (err != 0) {
            fail_all(ErrorKind::connect, std::string("connect: ") + std::strerror(err));
            return;
        }
        ERR_clear_error();
        ssl_.reset(SSL_new(ctx_.get()));
        BIO *bio = nosig_method() ? BIO_new(nosig_method()) : nullptr;
        if (!ssl_ || !bio) {
            if (bio) BIO_free(bio);
            fail_all(ErrorKind::tls, "SSL_new: " + openssl_reason());
            return;
        }
        BIO_set_data(bio, reinterpret_cast<void *>(intptr_t(fd_)));
        SSL_set_bio(ssl_.get(), bio, bio);  // the SSL owns the BIO from here
        SSL_set_app_data(ssl_.get(), this);
        // RFC 8310 §8: the certificate must match the configured name, else
        // (no name) the address must be in an iPAddress SAN.
        if (!ep_.auth_name.empty()) {
            SSL_set_tlsext_host_name(ssl_.get(), ep_.auth_name.c_str());  // SNI, RFC 6066 §3
            SSL_set_hostflags(ssl_.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set1_host(ssl_.get(), ep_.auth_name.c_str()) != 1) {
                fail_all(ErrorKind::tls, "cannot set the name to verify");
                return;
            }
        } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), ep_.host.c_str()) != 1) {
            fail_all(ErrorKind::tls, "cannot set the address to verify");
            return;
        }
        if (session_) SSL_set_session(ssl_.get(), session_.get());
        state_ = State::handshaking;
        handshake();
    }

    void handshake() {
        ERR_clear_error();
        int r = SSL_connect(ssl_.get());
        if (r == 1) {
            state_ = State::open;
            want_write_ = false;
            ++stats_.handshakes;
            resumed_ = SSL_session_reused(ssl_.get()) == 1;
            if (resumed_) ++stats_.resumed;
            last_read_ = last_activity_ = Clock::now();
            for (auto &[id, p] : pending_) {
                p.sent = false;
                enqueue(id);
            }
            pump_write();
            return;
        }
        int e = SSL_get_error(ssl_.get(), r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            want_write_ = e == SSL_ERROR_WANT_WRITE;
            return;
        }
        long vr = SSL_get_verify_result(ssl_.get());
        if (vr != X509_V_OK) {
            std::string why = std::string("certificate verification failed: ") + X509_verify_cert_error_string(vr);
            if (vr == X509_V_ERR_HOSTNAME_MISMATCH)
                why += " (certificate does not name '" + ep_.auth_name + "')";
            else if (vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
                why += " (certificate does not carry " + ep_.host + ")";
            ERR_clear_error();
            fail_all(ErrorKind::tls_verify, why);
            return;
        }
        fail_all(ErrorKind::tls, "TLS handshake failed: " + ssl_error_text(e, r));
    }

    std::string ssl_error_text(int e, int r) {
        std::string reason = openssl_reason();
        if (!reason.empty()) return reason;
        if (e == SSL_ERROR_SYSCALL) {
            if (errno != 0 && r < 0) return std::strerror(errno);
            return "connection closed by the server";
        }
        if (e == SSL_ERROR_ZERO_RETURN) return "connection closed by the server (close_notify)";
        return "SSL error " + std::to_string(e);
    }

    void pump_write() {
        while (!wbuf_.empty()) {
            ERR_clear_error();
            int n = SSL_write(ssl_.get(), wbuf_.data(), int(std::min<size_t>(wbuf_.size(), 1 << 20)));
            if (n > 0) {
                wbuf_.erase(wbuf_.begin(), wbuf_.begin() + n);
                last_activity_ = Clock::now();
                continue;
            }
            int e = SSL_get_error(ssl_.get(), n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                want_write_ = e == SSL_ERROR_WANT_WRITE;
                return;
            }
            server_closed(ErrorKind::closed, "write failed: " + ssl_error_text(e, n));
            return;
        }
        want_write_ = false;
    }

    void read_answers() {
        uint8_t buf[16384];
        for (;;) {
            ERR_clear_error();
            int n = SSL_read(ssl_.get(), buf, sizeof buf);
            if (n > 0) {
                rbuf_.insert(rbuf_.end(), buf, buf + n);
                last_read_ = last_activity_ = Clock::now();
                continue;
            }
            int e = SSL_get_error(ssl_.get(), n);
            if (e == SSL_ERROR_WANT_READ) break;
            if (e == SSL_ERROR_WANT_WRITE) {
                want_write_ = true;
                break;
            }
            deliver_frames();
            if (state_ != State::open) return;
            ErrorKind k = ErrorKind::closed;
            std::string why = ssl_error_text(e, n);
            if (e == SSL_ERROR_SSL) k = ErrorKind::tls;
            server_closed(k, why);
            return;
        }
        deliver_frames();
    }

    void deliver_frames() {
        size_t o = 0;
        while (rbuf_.size() - o >= 2) {
            size_t len = size_t(rbuf_[o]) << 8 | rbuf_[o + 1];
            if (rbuf_.size() - o - 2 < len) break;
            std::span<const uint8_t> msg(rbuf_.data() + o + 2, len);
            o += 2 + len;
            if (len < 12 || !(msg[2] & 0x80)) continue;  // not a response: ignore
            uint16_t id = uint16_t(msg[0] << 8 | msg[1]);
            auto it = pending_.find(id);
            if (it == pending_.end() || !it->second.sent) continue;  // late or unknown: drop
            if (!same_question(it->second.question, msg)) continue;  // RFC 5452 §9.1: not ours
            UpstreamAnswer a;
            a.wire.assign(msg.begin(), msg.end());
            a.wire[0] = uint8_t(it->second.orig_id >> 8);
            a.wire[1] = uint8_t(it->second.orig_id);
            // RFC 6891 §7: a client that sent no OPT must not see one back.
            if (it->second.added_opt) strip_opt(a.wire);
            a.upstream = ep_.uri;
            a.resumed = resumed_;
            ++stats_.answers;
            ++answers_on_conn_;
            done_.add(std::move(it->second.cb), std::move(a));
            pending_.erase(it);
        }
        rbuf_.erase(rbuf_.begin(), rbuf_.begin() + std::ptrdiff_t(o));
    }

    /// The server ended an open connection. RFC 7766 §6.2.3 lets it close a
    /// connection at any time (idle, or after some queries: dnsdist without
    /// maxInFlight does), so queries in flight on a connection that answered
    /// something are re-sent on a new one (at most kMaxResend times each);
    /// the rest fail so the caller can fail over.
    void server_closed(ErrorKind k, const std::string &why) {
        bool had_worked = answers_on_conn_ > 0;
        close_conn(false);
        bool requeue = false;
        for (auto it = pending_.begin(); it != pending_.end();) {
            Pending &p = it->second;
            if (had_worked && p.resent < kMaxResend) {
                ++p.resent;
                p.sent = false;
                requeue = true;
                ++it;
                continue;
            }
            ++stats_.failures;
            done_.add(std::move(p.cb), unexpected(make_error(k, ep_.uri, why)));
            it = pending_.erase(it);
        }
        if (requeue) start_connect();
    }

    void fail_all(ErrorKind k, const std::string &why) {
        close_conn(false);
        for (auto &[id, p] : pending_) {
            ++stats_.failures;
            done_.add(std::move(p.cb), unexpected(make_error(k, ep_.uri, why)));
        }
        pending_.clear();
    }

    void close_conn(bool graceful) {
        if (ssl_ && graceful && state_ == State::open) {
            ERR_clear_error();
            SSL_shutdown(ssl_.get());  // close_notify, RFC 8446 §6.1; no wait for the reply
        }
        ssl_.reset();
        if (fd_ >= 0) close(fd_);
        fd_ = -1;
        state_ = State::closed;
        want_write_ = false;
        wbuf_.clear();
        rbuf_.clear();
        ERR_clear_error();
    }

    UpstreamEndpoint ep_;
    Options opt_;
    SslCtxPtr ctx_;
    SslPtr ssl_;
    SslSessionPtr session_;
    int fd_ = -1;
    State state_ = State::closed;
    bool want_write_ = false;
    bool resumed_ = false;
    uint64_t answers_on_conn_ = 0;
    std::vector<uint8_t> wbuf_, rbuf_;
    std::unordered_map<uint16_t, Pending> pending_;
    Clock::time_point last_activity_{}, last_read_{};
    Stats stats_;
    Completions done_;
    uint8_t rand_buf_[256];
    size_t rand_pos_ = sizeof rand_buf_;
};

int new_session_cb(SSL *ssl, SSL_SESSION *sess) {
    // RFC 8446 §4.6.1: keep the newest ticket; the next connection resumes with it.
    auto *self = static_cast<DotUpstream *>(SSL_get_app_data(ssl));
    if (!self) return 0;
    self->on_new_session(sess);
    return 1;  // we keep the reference
}

} // namespace

Expected<SslCtxPtr, Error> make_dot_ctx(const UpstreamEndpoint &ep, const Options &opt) {
    ERR_clear_error();
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) return unexpected(make_error(ErrorKind::tls, ep.uri, "SSL_CTX_new: " + openssl_reason()));
    // RFC 8310 §9 / RFC 7525 §3.1.1: TLS 1.2 at least.
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (!opt.ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx.get(), opt.ca_file.c_str(), nullptr) != 1)
            return unexpected(make_error(ErrorKind::tls_verify, ep.uri,
                                         "cannot load CA file '" + opt.ca_file + "': " + openssl_reason()));
    } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
        return unexpected(make_error(ErrorKind::tls_verify, ep.uri, "cannot load the system CA store"));
    }
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Client-side session cache kept by the upstream itself (the newest ticket).
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx.get(), new_session_cb);
    return ctx;
}

std::unique_ptr<Upstream> make_dot(const UpstreamEndpoint &ep, const Options &opt, SslCtxPtr ctx) {
    return std::make_unique<DotUpstream>(ep, opt, std::move(ctx));
}

} // namespace aisid::transport
