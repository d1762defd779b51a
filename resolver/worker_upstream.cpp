// Upstream I/O: the worker's side of forwarding. Client queries that missed
// go to the Forwarder (forward()); its actions are executed here: a fresh
// connected UDP socket per try (a random source port from the kernel, and
// only the server asked can answer: RFC 5452 §9.2), a TCP connection for a
// truncated answer, the DoT/DoH transports of sdk/transport, replies to
// clients, and answers handed to workers waiting on the same question.
// What comes back from the sockets goes to the Forwarder as events.
#include "worker_impl.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace aisid::resolver {

using namespace worker_detail;

// The in-flight limits: beyond them the query gets a stale answer or
// SERVFAIL at once (a defined answer, counted), and takes no descriptor.
bool Worker::Impl::admit(ClientRef &c) {
    uint32_t total = sh.inflight_total.fetch_add(1, std::memory_order_relaxed);
    if (total >= rt->max_inflight) {
        sh.inflight_total.fetch_sub(1, std::memory_order_relaxed);
        stats.hit(Limit::inflight_total);
        return false;
    }
    int32_t slot = sh.client_inflight.acquire(c.peer, rt->max_inflight_per_client);
    if (slot < 0) {
        sh.inflight_total.fetch_sub(1, std::memory_order_relaxed);
        stats.hit(Limit::inflight_client);
        return false;
    }
    c.token.sh = &sh;
    c.token.slot = slot;
    return true;
}

void Worker::Impl::forward(const Query &q, const uint8_t *msg, size_t len, ClientRef c, const uint8_t *chain,
                           size_t chain_len) {
    std::string m(reinterpret_cast<const char *>(msg), len);
    if (!admit(c)) {
        uint8_t *out = scratch;
        CoreResult r = core.answer_failure(q, msg, c.tcp, now_ms_monotonic(), out, sizeof scratch);
        FwdAction a;
        a.kind = FwdAction::Kind::reply;
        a.outcome = r.outcome;
        a.bytes.assign(reinterpret_cast<const char *>(out), r.len);
        a.client = std::move(c);
        deliver_reply(a);
        return;
    }
    Query tq;
    std::string tmsg;
    if (chain && cname_target_query(q, chain, chain_len, tq, tmsg))
        fwd.query_cname(q, std::string(reinterpret_cast<const char *>(chain), chain_len), tq, std::move(tmsg),
                        std::move(c), now_us_monotonic());
    else
        fwd.query(q, std::move(m), std::move(c), now_us_monotonic());
    run_actions();
}

void Worker::Impl::prefetch(const Query &q, const uint8_t *msg, size_t len) {
    fwd.prefetch(q, std::string(reinterpret_cast<const char *>(msg), len), now_us_monotonic());
    run_actions();
}

void Worker::Impl::run_actions() {
    // Executing an action may feed the Forwarder again (a send that fails at
    // once, a reply that lets a TCP client's next query go): those actions are
    // taken by this loop, in order, never by a nested one.
    if (running_actions) return;
    running_actions = true;
    while (fwd.has_actions())
        for (FwdAction &a : fwd.take_actions()) execute(a);
    running_actions = false;
}

void Worker::Impl::execute(FwdAction &a) {
    switch (a.kind) {
    case FwdAction::Kind::send: {
        if (a.upstream >= rt->upstreams.size()) {  // a reload removed it
            fwd.upstream_error(a.try_id, now_us_monotonic());
            return;
        }
        const UpstreamConfig &up = rt->upstreams[a.upstream]->up;
        switch (a.proto) {
        case UpProto::udp: send_udp(a, up); return;
        case UpProto::tcp: send_tcp(a, up); return;
        case UpProto::encrypted: send_encrypted(a, up); return;
        }
        return;
    }
    case FwdAction::Kind::cancel: cancel(a.try_id); return;
    case FwdAction::Kind::reply: deliver_reply(a); return;
    case FwdAction::Kind::share: share(a); return;
    }
}

void Worker::Impl::send_udp(FwdAction &a, const UpstreamConfig &up) {
    int fd = socket(up.addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, up.addr.sa(), up.addr.len) == 0 &&
        send(fd, a.bytes.data(), a.bytes.size(), 0) == ssize_t(a.bytes.size())) {
        UpSocket &s = up_socks[fd];
        s = UpSocket{};
        s.try_id = a.try_id;
        s.fd = fd;
        try_fd[a.try_id] = fd;
        ep_add(fd, EPOLLIN, tag(kUpstream, uint64_t(fd)));
        return;
    }
    AISID_LOG(LogLevel::debug, "upstream " + redacted_upstream(up.text) + ": " + std::strerror(errno));
    if (fd >= 0) close(fd);
    fwd.upstream_error(a.try_id, now_us_monotonic());
}

void Worker::Impl::send_tcp(FwdAction &a, const UpstreamConfig &up) {
    int fd = socket(up.addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fwd.upstream_error(a.try_id, now_us_monotonic());
        return;
    }
    set_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (connect(fd, up.addr.sa(), up.addr.len) != 0 && errno != EINPROGRESS) {
        close(fd);
        fwd.upstream_error(a.try_id, now_us_monotonic());
        return;
    }
    UpSocket &s = up_socks[fd];
    s = UpSocket{};
    s.try_id = a.try_id;
    s.fd = fd;
    s.tcp = true;
    uint8_t l2[2];
    wr16(l2, uint16_t(a.bytes.size()));
    s.buf.assign(reinterpret_cast<const char *>(l2), 2);
    s.buf += a.bytes;
    try_fd[a.try_id] = fd;
    ep_add(fd, EPOLLIN | EPOLLOUT, tag(kUpstream, uint64_t(fd)));
}

void Worker::Impl::close_up(int fd) {
    auto it = up_socks.find(fd);
    if (it == up_socks.end()) return;
    try_fd.erase(it->second.try_id);
    up_socks.erase(it);
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
}

void Worker::Impl::cancel(uint64_t try_id) {
    auto it = try_fd.find(try_id);
    if (it != try_fd.end()) close_up(it->second);
    // An encrypted try cannot be withdrawn from its transport; its completion
    // finds no try in the Forwarder and is dropped there.
}

void Worker::Impl::deliver_reply(FwdAction &a) {
    stats.outcomes[static_cast<size_t>(a.outcome)].fetch_add(1, std::memory_order_relaxed);
    if (!a.bytes.empty()) stats.observe(now_ns_monotonic() - a.client.start_ns);
    ClientRef &c = a.client;
    if (!c.tcp) {
        if (!a.bytes.empty())
            send_udp_reply(c.udp_fd, c.peer, c.ctl, reinterpret_cast<uint8_t *>(a.bytes.data()), a.bytes.size(),
                           now_ms_monotonic());
        return;
    }
    auto it = conns.find(c.conn_id);
    if (it == conns.end()) return;  // the client went away
    if (!a.bytes.empty()) tcp_send(it->second, reinterpret_cast<const uint8_t *>(a.bytes.data()), a.bytes.size());
    conn_reply_done(c.conn_id);
}

void Worker::Impl::share(FwdAction &a) {
    for (unsigned w = 0; w < sh.workers.size() && w < InflightRegistry::kMaxWorkers; ++w)
        if ((a.workers >> w & 1) && w != index) sh.workers[w]->deliver_answer(a.key, a.bytes);
}

void Worker::Impl::on_upstream(int fd, uint32_t events) {
    auto it = up_socks.find(fd);
    if (it == up_socks.end()) return;
    if (it->second.tcp) {
        on_upstream_tcp(it->second, events);
        return;
    }
    // Every datagram goes to the Forwarder, which keeps waiting on one that is
    // not the answer to its question. Bounded per wakeup. Once the Forwarder
    // has acted, the descriptor may be closed and its number reused by the
    // next try: the try id tells.
    const uint64_t try_id = it->second.try_id;
    for (int i = 0; i < 16; ++i) {
        auto cur = up_socks.find(fd);
        if (cur == up_socks.end() || cur->second.try_id != try_id) return;
        ssize_t n = recv(fd, scratch, sizeof scratch, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            close_up(fd);  // ECONNREFUSED: nothing listens there
            fwd.upstream_error(try_id, now_us_monotonic());
            run_actions();
            return;
        }
        fwd.upstream_bytes(try_id, scratch, size_t(n), now_us_monotonic());
        run_actions();
    }
}

void Worker::Impl::on_upstream_tcp(UpSocket &s, uint32_t events) {
    int fd = s.fd;
    uint64_t try_id = s.try_id;
    auto failed = [&] {
        close_up(fd);
        fwd.upstream_error(try_id, now_us_monotonic());
        run_actions();
    };
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) return failed();
    if (!s.connected && (events & EPOLLOUT)) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) return failed();
        s.connected = true;
    }
    if (s.connected && s.off != SIZE_MAX && s.off < s.buf.size()) {
        ssize_t k = send(fd, s.buf.data() + s.off, s.buf.size() - s.off, MSG_NOSIGNAL);
        if (k < 0 && errno != EAGAIN) return failed();
        if (k > 0) s.off += size_t(k);
        if (s.off == s.buf.size()) {
            s.buf.clear();
            s.off = SIZE_MAX;  // now reading
            ep_mod(fd, EPOLLIN, tag(kUpstream, uint64_t(fd)));
        }
        return;
    }
    if (s.off != SIZE_MAX) return;
    for (;;) {
        ssize_t k = recv(fd, scratch, sizeof scratch, 0);
        if (k < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            return failed();
        }
        if (k == 0) return failed();
        s.buf.append(reinterpret_cast<const char *>(scratch), size_t(k));
        if (s.buf.size() >= 2) {
            size_t need = rd16(reinterpret_cast<const uint8_t *>(s.buf.data()));
            if (s.buf.size() >= need + 2) {
                std::string msg = s.buf.substr(2, need);
                close_up(fd);
                fwd.upstream_bytes(try_id, reinterpret_cast<const uint8_t *>(msg.data()), need,
                                   now_us_monotonic());
                run_actions();
                return;
            }
        }
        if (s.buf.size() > 65537) return failed();
    }
}

// ---- DoT / DoH ----

transport::Upstream *Worker::Impl::tls_upstream(const UpstreamConfig &up) {
    auto it = tls_ups.find(up.text);
    // After a reload with another --ca-file, an idle transport is remade.
    if (it != tls_ups.end() && (it->second.ca == rt->ca_file || it->second.t->in_flight()))
        return it->second.t.get();
    auto e = transport::parse_upstream(up.text);
    if (!e) {
        AISID_LOG(LogLevel::warn, "upstream " + e.error().text());
        return nullptr;
    }
    transport::Options o;
    o.ca_file = rt->ca_file;
    o.timeout_ms = rt->timeout_ms;
    o.idle_timeout_ms = rt->tcp_idle_ms;
    auto t = transport::make_upstream(*e, o);
    if (!t) {
        AISID_LOG(LogLevel::warn, "upstream " + t.error().text());
        return nullptr;
    }
    TlsUp &slot = tls_ups[up.text];
    slot.t = std::move(*t);
    slot.ca = rt->ca_file;
    return slot.t.get();
}

void Worker::Impl::send_encrypted(FwdAction &a, const UpstreamConfig &up) {
    transport::Upstream *u = tls_upstream(up);
    if (!u) {
        fwd.upstream_error(a.try_id, now_us_monotonic());
        return;
    }
    uint64_t try_id = a.try_id;
    tls_tries[try_id] = a.upstream;
    u->submit(std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(a.bytes.data()), a.bytes.size()),
              [this, try_id](transport::UpstreamResult r) { tls_done.emplace_back(try_id, std::move(r)); });
    tls_after();
}

void Worker::Impl::tls_sync_fds() {
    std::vector<transport::PollFd> want;
    for (auto &[k, u] : tls_ups) u.t->fds(want);
    std::unordered_map<int, uint32_t> now;
    for (const transport::PollFd &f : want)
        now[f.fd] |= (f.events & POLLIN ? EPOLLIN : 0u) | (f.events & POLLOUT ? EPOLLOUT : 0u);
    for (auto &[fd, ev] : tls_fds)
        if (!now.count(fd)) epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);  // may be closed already
    for (auto &[fd, ev] : now) {
        // MOD, or ADD when the transport reopened a descriptor with the same number.
        epoll_event e{};
        e.events = ev;
        e.data.u64 = tag(kTls, uint64_t(fd));
        if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e) != 0) epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    }
    tls_fds = std::move(now);
}

void Worker::Impl::tls_after() {
    tls_sync_fds();
    while (!tls_done.empty()) {
        auto batch = std::move(tls_done);
        tls_done.clear();
        for (auto &[try_id, r] : batch) {
            auto t = tls_tries.find(try_id);
            if (t == tls_tries.end()) continue;
            uint32_t up = t->second;
            tls_tries.erase(t);
            uint64_t now = now_us_monotonic();
            if (r) {
                fwd.upstream_bytes(try_id, r->wire.data(), r->wire.size(), now);
                continue;
            }
            // The reason (certificate mismatch, refused, timeout, TLS alert,
            // HTTP status) is logged when the upstream starts failing; never a
            // fallback to clear text: the Forwarder tries the next upstream.
            const auto &e = r.error();
            bool first = up < rt->upstreams.size() &&
                         rt->upstreams[up]->consecutive_failures.load(std::memory_order_relaxed) == 0;
            AISID_LOG(first ? LogLevel::warn : LogLevel::debug,
                       "upstream " + (e.upstream.empty() ? e.reason : redacted_upstream(e.upstream) + ": " + e.reason));
            fwd.upstream_error(try_id, now);
        }
        run_actions();
    }
}

void Worker::Impl::on_tls(int fd, uint32_t events) {
    short re = short((events & EPOLLIN ? POLLIN : 0) | (events & EPOLLOUT ? POLLOUT : 0) |
                     (events & EPOLLERR ? POLLERR : 0) | (events & EPOLLHUP ? POLLHUP : 0));
    for (auto &[k, u] : tls_ups) u.t->process(fd, re);
    tls_after();
}

void Worker::Impl::sweep_upstreams(uint64_t) {
    fwd.tick(now_us_monotonic());
    run_actions();
    if (!tls_ups.empty()) {
        for (auto &[k, u] : tls_ups) u.t->process_timeouts(transport::Clock::now());
        tls_after();
    }
}

} // namespace aisid::resolver
