#include "worker_impl.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <algorithm>
#include <optional>
#include <unordered_map>

namespace aisid::resolver {

uint64_t now_ns_monotonic() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}
uint64_t now_ms_monotonic() { return now_ns_monotonic() / 1000000u; }
uint64_t now_us_monotonic() { return now_ns_monotonic() / 1000u; }

namespace {

using worker_detail::set_opt;

std::string errno_text(const std::string &what) { return what + ": " + std::strerror(errno); }

} // namespace

std::string open_listeners(const std::vector<SockAddr> &addrs, ListenSockets &out) {
    for (const SockAddr &a : addrs) {
        for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
            int fd = socket(a.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) return errno_text("cannot open a socket for " + a.to_string());
            set_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
            set_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
            if (a.family() == AF_INET6) set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
            bool wild = a.family() == AF_INET
                            ? reinterpret_cast<const sockaddr_in &>(a.ss).sin_addr.s_addr == 0
                            : IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6 &>(a.ss).sin6_addr);
            if (type == SOCK_DGRAM) {
                set_opt(fd, SOL_SOCKET, SO_RCVBUF, 4 << 20);
                // On a wildcard socket the reply must leave from the address the
                // query was sent to, or the client drops it.
                if (wild && a.family() == AF_INET) set_opt(fd, IPPROTO_IP, IP_PKTINFO, 1);
                if (wild && a.family() == AF_INET6) set_opt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
            }
            if (bind(fd, a.sa(), a.len) != 0) {
                std::string e = errno_text(std::string("cannot listen on ") + (type == SOCK_DGRAM ? "udp " : "tcp ") +
                                           a.to_string());
                close(fd);
                return e;
            }
            if (type == SOCK_STREAM) {
                if (listen(fd, 256) != 0) {
                    std::string e = errno_text("cannot listen on tcp " + a.to_string());
                    close(fd);
                    return e;
                }
                set_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
                out.tcp.push_back(fd);
            } else {
                out.udp.push_back(fd);
                out.udp_wild.push_back(wild ? 1 : 0);
            }
        }
    }
    return {};
}

Worker::Impl::Impl(Shared &s, unsigned i, ListenSockets ls, AuthorityRunner *a)
    : sh(s), index(i), socks(std::move(ls)), auth(a), stats(*s.stats[i]), cache(s.cache),
      core(cache, fallback_settings),
      fwd_opts{.stale_client_timeout_ms = 1800, .max_followers = 1000, .worker = i, .preferred = &s.preferred_upstream},
      fwd(core, fwd_opts, &s.inflight, [] { return static_cast<uint16_t>(arc4random()); }) {}

Worker::Impl::~Impl() {
    if (wake_fd >= 0) close(wake_fd);
    if (ep >= 0) close(ep);
}

void Worker::Impl::refresh() {
    uint64_t g = sh.runtime_generation();
    if (g != rt_gen) {
        rt_gen = g;
        rt = sh.runtime();
        core.set_settings(&rt->core);
        cache.set_max_bytes(rt->cache_bytes);
        fwd.set_runtime(rt.get());
    }
    uint64_t zg = sh.zones.generation();
    if (zg != zones_gen) {
        zones_gen = zg;
        zones = sh.zones.current();
        core.set_zones(zones.get());
    }
}

void Worker::Impl::ep_add(int fd, uint32_t events, uint64_t data) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}
void Worker::Impl::ep_mod(int fd, uint32_t events, uint64_t data) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

// Response rate limiting (rrl.hpp) for a UDP reply: false to drop it; a
// slipped reply is cut in place (len shrinks). TCP replies never come here.
bool Worker::Impl::rate_limit(const sockaddr_storage &peer, uint8_t *buf, size_t &len, uint64_t now_ms,
                const CoreResult *r) {
    if (!rt || !rt->rrl.enabled()) return true;
    bool synth = r && r->synthesized;
    RrlAction a = sh.rrl->check(rt->rrl, peer, buf, len, now_ms, synth ? r->service_key : nullptr,
                                synth ? sizeof r->service_key : 0);
    if (a == RrlAction::send) return true;
    (a == RrlAction::slip ? stats.rrl_slipped : stats.rrl_dropped).fetch_add(1, std::memory_order_relaxed);
    // What operators look for in the log (BIND: "limit responses to ..."):
    // at most one line per worker per 10 s, naming the last client held back.
    ++rrl_limited_since_log;
    if (now_ms >= rrl_next_log_ms) {
        AISID_LOG(LogLevel::info, "rate limit: " + std::to_string(rrl_limited_since_log) +
                                       " UDP replies held back (dropped or truncated), the last to " +
                                       SockAddr::from(peer).to_string());
        rrl_limited_since_log = 0;
        rrl_next_log_ms = now_ms + 10000;
    }
    return a == RrlAction::slip;
}

// One UDP reply outside the recvmmsg batch (forwarded answers, the
// authority's): rate limited, and from the address asked when `ctl`
// holds it (a wildcard listener, IP_PKTINFO).
void Worker::Impl::send_udp_reply(int fd, const sockaddr_storage &peer, const std::string &ctl_in, uint8_t *buf, size_t len,
                    uint64_t now_ms) {
    if (!rate_limit(peer, buf, len, now_ms)) return;
    iovec iov{buf, len};
    msghdr mh{};
    mh.msg_name = const_cast<sockaddr_storage *>(&peer);
    mh.msg_namelen = peer.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(cmsghdr) uint8_t ctl[64];
    if (!ctl_in.empty() && ctl_in.size() <= sizeof ctl) {
        std::memcpy(ctl, ctl_in.data(), ctl_in.size());
        mh.msg_control = ctl;
        mh.msg_controllen = ctl_in.size();
    }
    sendmsg(fd, &mh, MSG_DONTWAIT);
}

void Worker::Impl::account(const CoreResult &r, uint64_t start_ns) {
    stats.outcomes[static_cast<size_t>(r.outcome)].fetch_add(1, std::memory_order_relaxed);
    if (r.verdict == Verdict::Answered || r.verdict == Verdict::Fail) stats.observe(now_ns_monotonic() - start_ns);
}

// Our IPv6 sockets are IPv6-only (IPV6_V6ONLY): the kernel never delivers
// an IPv4 client there, so a source ::ffff:a.b.c.d is forged on the wire
// (it would pass for 127.0.0.1 with the ACL, and for an IPv4 primary with
// NOTIFY). Dropped here, before any check sees it.
bool Worker::Impl::v4_mapped(const sockaddr_storage &peer) {
    if (peer.ss_family != AF_INET6 ||
        !IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6 &>(peer).sin6_addr))
        return false;
    stats.hit(Limit::v4_mapped_source);
    stats.outcomes[static_cast<size_t>(Outcome::dropped)].fetch_add(1, std::memory_order_relaxed);
    return true;
}

void Worker::Impl::to_authority(const uint8_t *msg, size_t len, bool tcp, int udp_fd, const sockaddr_storage &peer,
                  uint64_t conn_id, std::string ctl) {
    stats.outcomes[static_cast<size_t>(Outcome::authority)].fetch_add(1, std::memory_order_relaxed);
    Delivery d{tcp, udp_fd, peer, conn_id, {}, std::move(ctl)};
    if (auth->submit(std::string(reinterpret_cast<const char *>(msg), len), std::move(d), self)) return;
    // The queue is full (counted there): dropped; a TCP client's count goes back.
    stats.outcomes[static_cast<size_t>(Outcome::dropped)].fetch_add(1, std::memory_order_relaxed);
    if (tcp) {
        auto it = conns.find(conn_id);
        if (it != conns.end() && it->second.inflight) --it->second.inflight;
    }
}

void Worker::Impl::drain_inbox() {
    std::vector<Delivery> items;
    std::vector<std::pair<std::string, std::string>> answers;
    {
        std::lock_guard lk(inbox_mu);
        items.swap(inbox);
        answers.swap(shared_inbox);
    }
    if (!answers.empty()) {
        uint64_t now = now_us_monotonic();
        for (auto &[key, resp] : answers)
            fwd.shared_answer(key, reinterpret_cast<const uint8_t *>(resp.data()), resp.size(), now);
        run_actions();
    }
    for (Delivery &d : items) {
        if (!d.tcp) {
            uint64_t now = now_ms_monotonic();
            for (std::string &r : d.replies)
                send_udp_reply(d.udp_fd, d.peer, d.ctl, reinterpret_cast<uint8_t *>(r.data()), r.size(), now);
            continue;
        }
        auto it = conns.find(d.conn_id);
        if (it == conns.end()) continue;
        for (const std::string &r : d.replies) {
            if (conns.find(d.conn_id) == conns.end()) break;
            tcp_send(it->second, reinterpret_cast<const uint8_t *>(r.data()), r.size());
        }
        conn_reply_done(d.conn_id);
    }
}

// Made before the thread starts: wake() may be called from another thread
// at any time after construction.
void Worker::Impl::open_fds() {
    ep = epoll_create1(EPOLL_CLOEXEC);
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ep_add(wake_fd, EPOLLIN, worker_detail::tag(worker_detail::kWake, 0));
}

void Worker::Impl::run() {
    using namespace worker_detail;
    for (size_t i = 0; i < socks.udp.size(); ++i) ep_add(socks.udp[i], EPOLLIN, tag(kUdpListen, i));
    for (size_t i = 0; i < socks.tcp.size(); ++i) ep_add(socks.tcp[i], EPOLLIN, tag(kTcpListen, i));
    epoll_event evs[64];
    while (!sh.stop.load(std::memory_order_relaxed)) {
        // Timers (upstream timeouts, the serve-stale client timer, idle
        // connections) are checked every 20 ms while anything is going on.
        int timeout = fwd.lookups() == 0 && conns.empty() && tls_tries.empty() ? 500 : 20;
        int n = epoll_wait(ep, evs, 64, timeout);
        refresh();
        for (int i = 0; i < n; ++i) {
            uint64_t d = evs[i].data.u64;
            uint64_t v = d & ((uint64_t(1) << 56) - 1);
            switch (Tag(d >> 56)) {
            case kUdpListen: on_udp(socks.udp[v], socks.udp_wild[v]); break;
            case kTcpListen: on_accept(socks.tcp[v]); break;
            case kTcpConn: on_conn(v, evs[i].events); break;
            case kUpstream: on_upstream(int(v), evs[i].events); break;
            case kTls: on_tls(int(v), evs[i].events); break;
            case kWake: {
                uint64_t x;
                (void)!read(wake_fd, &x, sizeof x);
                drain_inbox();
                break;
            }
            }
        }
        uint64_t now = now_ms_monotonic();
        if (now >= next_sweep_ms) {
            sweep(now);
            next_sweep_ms = now + 20;
        }
    }
    fwd.clear();
    for (auto &[fd, s] : up_socks) close(fd);
    up_socks.clear();
    try_fd.clear();
    tls_tries.clear();
    tls_ups.clear();  // closes their connections
    for (auto &[id, c] : conns) close(c.fd);
    conns.clear();
    for (int fd : socks.udp) close(fd);
    for (int fd : socks.tcp) close(fd);
}

void Worker::Impl::sweep(uint64_t now) {
    sweep_upstreams(now);
    sweep_conns(now);
    stats.tcp_connections.store(conns.size(), std::memory_order_relaxed);
    stats.inflight.store(fwd.lookups(), std::memory_order_relaxed);
}

Worker::Worker(Shared &sh, unsigned index, ListenSockets socks, AuthorityRunner *auth)
    : impl_(std::make_unique<Impl>(sh, index, std::move(socks), auth)) {
    impl_->self = this;
    impl_->refresh();
    impl_->open_fds();
}

Worker::~Worker() { join(); }

void Worker::start() {
    th_ = std::thread([this] { impl_->run(); });
}

void Worker::wake() {
    uint64_t one = 1;
    if (impl_->wake_fd >= 0) (void)!write(impl_->wake_fd, &one, sizeof one);
}

void Worker::join() {
    if (th_.joinable()) th_.join();
}

void Worker::deliver_answer(std::string key, std::string resp) {
    {
        std::lock_guard lk(impl_->inbox_mu);
        impl_->shared_inbox.emplace_back(std::move(key), std::move(resp));
    }
    wake();
}

void Worker::deliver(Delivery d) {
    {
        std::lock_guard lk(impl_->inbox_mu);
        impl_->inbox.push_back(std::move(d));
    }
    wake();
}

} // namespace aisid::resolver
