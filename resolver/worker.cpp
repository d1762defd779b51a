#include "worker.hpp"

#include "log.hpp"
#include "transport.hpp"

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

namespace {

int set_opt(int fd, int level, int opt, int v) { return setsockopt(fd, level, opt, &v, sizeof v); }

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

namespace {

enum Tag : uint64_t { kUdpListen = 1, kTcpListen = 2, kTcpConn = 3, kUpstream = 4, kWake = 5, kTls = 6 };
inline uint64_t tag(Tag t, uint64_t v) { return (uint64_t(t) << 56) | v; }

constexpr int kBatch = 64;
constexpr size_t kBuf = 4096;
constexpr unsigned kMaxInflightPerConn = 64;

struct Conn {
    int fd = -1;
    uint64_t id = 0;
    sockaddr_storage peer{};
    std::string in;
    std::string out;
    size_t out_off = 0;
    uint64_t last_ms = 0;
    unsigned inflight = 0;
    int32_t client_slot = -1;  // in Shared::client_conns
    uint64_t out_since_ms = 0;  // the last time a reply byte went out while some were waiting
    bool want_out = false;
    bool paused = false;      // not reading: too many queries of this client in flight
    bool processing = false;  // inside process_conn (replies may come back re-entrantly)
};

// One query counted against the in-flight limits (total and its client's)
// from start_forward until the Pending holding it is gone, whichever way.
struct InflightToken {
    Shared *sh = nullptr;
    int32_t slot = -1;
    InflightToken() = default;
    InflightToken(const InflightToken &) = delete;
    InflightToken &operator=(const InflightToken &) = delete;
    ~InflightToken() {
        if (!sh) return;
        sh->client_inflight.release(slot);
        sh->inflight_total.fetch_sub(1, std::memory_order_relaxed);
    }
};

struct Pending {
    InflightToken token;
    Query q;
    std::string msg;  // the client's query
    bool client_tcp = false;
    int udp_fd = -1;
    std::string ctl;  // PKTINFO for the reply on a wildcard socket
    std::string key;  // the cache key: identical questions in flight share one upstream query
    sockaddr_storage peer{};
    uint64_t conn_id = 0;
    uint64_t start_ns = 0;
    // The current try.
    int fd = -1;
    bool up_tcp = false;
    uint16_t id = 0;
    size_t up_index = 0;
    unsigned tries = 0;
    uint32_t start_index = 0;
    uint64_t sent_ns = 0;
    uint64_t deadline_ms = 0;
    std::string tcp_buf;  // outgoing query (TCP), then the incoming answer
    size_t tcp_off = 0;
    bool tcp_connected = false;
};

} // namespace

struct Worker::Impl {
    Shared &sh;
    unsigned index;
    ListenSockets socks;
    AuthorityRunner *auth;
    Worker *self = nullptr;
    int ep = -1;
    int wake_fd = -1;
    WorkerStats &stats;

    std::shared_ptr<const Runtime> rt;
    uint64_t rt_gen = 0;
    std::shared_ptr<const ZoneSet> zones;
    uint64_t zones_gen = 0;
    CoreSettings fallback_settings;
    Cache &cache;  // shared by every worker (Shared::cache)
    QueryCore core;

    std::unordered_map<int, std::unique_ptr<Pending>> pending;  // by upstream socket
    // Queries waiting for an identical one already asked upstream (by cache key).
    std::unordered_map<std::string, std::vector<std::unique_ptr<Pending>>> followers;
    std::unordered_map<uint64_t, Conn> conns;
    uint64_t next_conn = 1;
    uint64_t next_sweep_ms = 0;
    uint64_t rrl_limited_since_log = 0, rrl_next_log_ms = 0;

    std::mutex inbox_mu;
    std::vector<Delivery> inbox;

    // DoT/DoH upstreams (sdk/transport): one transport per URI in this worker,
    // driven by this loop (their descriptors are in epoll as kTls). Completions
    // are queued and handled after the descriptors are synced, so a socket the
    // transport closed is never confused with one a new try opens.
    struct TlsUp {
        std::unique_ptr<transport::Upstream> t;
        std::string ca;
    };
    std::unordered_map<std::string, TlsUp> tls_ups;
    std::unordered_map<uint64_t, std::unique_ptr<Pending>> tls_pending;
    std::vector<std::pair<uint64_t, transport::Result>> tls_done;
    std::unordered_map<int, uint32_t> tls_fds;
    uint64_t next_tls_token = 1;

    // UDP batches (recvmmsg / sendmmsg).
    mmsghdr in_hdr[kBatch];
    iovec in_iov[kBatch];
    sockaddr_storage in_addr[kBatch];
    uint8_t in_buf[kBatch][kBuf];
    alignas(cmsghdr) uint8_t in_ctl[kBatch][64];
    alignas(cmsghdr) uint8_t out_ctl[kBatch][64];
    mmsghdr out_hdr[kBatch];
    iovec out_iov[kBatch];
    uint8_t out_buf[kBatch][kBuf];
    uint8_t scratch[65535 + 2];

    Impl(Shared &s, unsigned i, ListenSockets ls, AuthorityRunner *a)
        : sh(s), index(i), socks(std::move(ls)), auth(a), stats(*s.stats[i]), cache(s.cache),
          core(cache, fallback_settings) {}

    void refresh() {
        uint64_t g = sh.rt_gen.load(std::memory_order_acquire);
        if (g != rt_gen) {
            rt_gen = g;
            rt = sh.runtime();
            core.set_settings(&rt->core);
            cache.set_max_bytes(rt->cache_bytes);
        }
        uint64_t zg = sh.zones.generation();
        if (zg != zones_gen) {
            zones_gen = zg;
            zones = sh.zones.current();
            core.set_zones(zones.get());
        }
    }

    void ep_add(int fd, uint32_t events, uint64_t data) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = data;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    void ep_mod(int fd, uint32_t events, uint64_t data) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = data;
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    }

    // Response rate limiting (rrl.hpp) for a UDP reply: false to drop it; a
    // slipped reply is cut in place (len shrinks). TCP replies never come here.
    bool rate_limit(const sockaddr_storage &peer, uint8_t *buf, size_t &len, uint64_t now_ms,
                    const Result *r = nullptr) {
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
            AISIDD_LOG(LogLevel::info, "rate limit: " + std::to_string(rrl_limited_since_log) +
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
    void send_udp_reply(int fd, const sockaddr_storage &peer, const std::string &ctl_in, uint8_t *buf, size_t len,
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

    void account(const Result &r, uint64_t start_ns) {
        stats.outcomes[static_cast<size_t>(r.outcome)].fetch_add(1, std::memory_order_relaxed);
        if (r.verdict == Verdict::Answered || r.verdict == Verdict::Fail) stats.observe(now_ns_monotonic() - start_ns);
    }

    // ---- UDP from clients ----
    // The control message for a reply: the query's destination as the source.
    static size_t reply_ctl(const msghdr &in, uint8_t *out, size_t cap) {
        for (cmsghdr *c = CMSG_FIRSTHDR(&in); c; c = CMSG_NXTHDR(const_cast<msghdr *>(&in), c)) {
            if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && CMSG_SPACE(sizeof(in_pktinfo)) <= cap) {
                in_pktinfo pi;
                std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
                pi.ipi_spec_dst = pi.ipi_addr;
                pi.ipi_ifindex = 0;
                auto *o = reinterpret_cast<cmsghdr *>(out);
                o->cmsg_level = IPPROTO_IP;
                o->cmsg_type = IP_PKTINFO;
                o->cmsg_len = CMSG_LEN(sizeof pi);
                std::memcpy(CMSG_DATA(o), &pi, sizeof pi);
                return CMSG_SPACE(sizeof pi);
            }
            if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && CMSG_SPACE(sizeof(in6_pktinfo)) <= cap) {
                auto *o = reinterpret_cast<cmsghdr *>(out);
                o->cmsg_level = IPPROTO_IPV6;
                o->cmsg_type = IPV6_PKTINFO;
                o->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
                std::memcpy(CMSG_DATA(o), CMSG_DATA(c), sizeof(in6_pktinfo));
                return CMSG_SPACE(sizeof(in6_pktinfo));
            }
        }
        return 0;
    }

    // Our IPv6 sockets are IPv6-only (IPV6_V6ONLY): the kernel never delivers
    // an IPv4 client there, so a source ::ffff:a.b.c.d is forged on the wire
    // (it would pass for 127.0.0.1 with the ACL, and for an IPv4 primary with
    // NOTIFY). Dropped here, before any check sees it.
    bool v4_mapped(const sockaddr_storage &peer) {
        if (peer.ss_family != AF_INET6 ||
            !IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6 &>(peer).sin6_addr))
            return false;
        stats.hit(Limit::v4_mapped_source);
        stats.outcomes[static_cast<size_t>(Outcome::dropped)].fetch_add(1, std::memory_order_relaxed);
        return true;
    }

    void on_udp(int fd, bool wild) {
        for (int round = 0; round < 8; ++round) {
            for (int i = 0; i < kBatch; ++i) {
                in_iov[i] = {in_buf[i], kBuf};
                in_hdr[i].msg_hdr = msghdr{};
                in_hdr[i].msg_hdr.msg_name = &in_addr[i];
                in_hdr[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
                in_hdr[i].msg_hdr.msg_iov = &in_iov[i];
                in_hdr[i].msg_hdr.msg_iovlen = 1;
                if (wild) {
                    in_hdr[i].msg_hdr.msg_control = in_ctl[i];
                    in_hdr[i].msg_hdr.msg_controllen = sizeof in_ctl[i];
                }
            }
            int n = recvmmsg(fd, in_hdr, kBatch, MSG_DONTWAIT, nullptr);
            if (n <= 0) return;
            uint64_t t0 = now_ns_monotonic();
            uint64_t now = t0 / 1000000u;
            int nout = 0;
            for (int i = 0; i < n; ++i) {
                if (v4_mapped(in_addr[i])) continue;
                Query q;
                Result r = core.handle(in_buf[i], in_hdr[i].msg_len, in_addr[i], false, now, out_buf[nout], kBuf, q);
                if (r.verdict == Verdict::Answered || r.verdict == Verdict::Fail) {
                    if (!r.len) continue;
                    size_t len = r.len;
                    if (!rate_limit(in_addr[i], out_buf[nout], len, now, &r)) {
                        stats.outcomes[static_cast<size_t>(r.outcome)].fetch_add(1, std::memory_order_relaxed);
                        continue;
                    }
                    out_iov[nout] = {out_buf[nout], len};
                    out_hdr[nout].msg_hdr = msghdr{};
                    out_hdr[nout].msg_hdr.msg_name = &in_addr[i];
                    out_hdr[nout].msg_hdr.msg_namelen = in_hdr[i].msg_hdr.msg_namelen;
                    out_hdr[nout].msg_hdr.msg_iov = &out_iov[nout];
                    out_hdr[nout].msg_hdr.msg_iovlen = 1;
                    if (wild) {
                        size_t cl = reply_ctl(in_hdr[i].msg_hdr, out_ctl[nout], sizeof out_ctl[nout]);
                        if (cl) {
                            out_hdr[nout].msg_hdr.msg_control = out_ctl[nout];
                            out_hdr[nout].msg_hdr.msg_controllen = cl;
                        }
                    }
                    ++nout;
                    stats.outcomes[static_cast<size_t>(r.outcome)].fetch_add(1, std::memory_order_relaxed);
                } else if (r.verdict == Verdict::Pass) {
                    if (r.to_authority) {
                        uint8_t ctl[64];
                        size_t cl = wild ? reply_ctl(in_hdr[i].msg_hdr, ctl, sizeof ctl) : 0;
                        to_authority(in_buf[i], in_hdr[i].msg_len, false, fd, in_addr[i], 0,
                                     std::string(reinterpret_cast<const char *>(ctl), cl));
                    } else {
                        auto p = std::make_unique<Pending>();
                        p->q = q;
                        p->msg.assign(reinterpret_cast<const char *>(in_buf[i]), in_hdr[i].msg_len);
                        p->udp_fd = fd;
                        if (wild) {
                            uint8_t ctl[64];
                            size_t cl = reply_ctl(in_hdr[i].msg_hdr, ctl, sizeof ctl);
                            p->ctl.assign(reinterpret_cast<const char *>(ctl), cl);
                        }
                        p->peer = in_addr[i];
                        p->start_ns = t0;
                        start_forward(std::move(p));
                    }
                } else {
                    stats.outcomes[static_cast<size_t>(Outcome::dropped)].fetch_add(1, std::memory_order_relaxed);
                }
            }
            if (nout) {
                int sent = 0;
                while (sent < nout) {
                    int k = sendmmsg(fd, out_hdr + sent, unsigned(nout - sent), MSG_DONTWAIT);
                    if (k <= 0) {
                        if (k < 0 && errno == EINTR) continue;
                        ++sent;  // skip a datagram the kernel refuses (e.g. unreachable); UDP is lossy
                        continue;
                    }
                    sent += k;
                }
                uint64_t dt = now_ns_monotonic() - t0;
                // Local answers and cache hits: the batch's processing time, per answer.
                for (int i = 0; i < nout; ++i) stats.observe(dt);
            }
            if (n < kBatch) return;
        }
    }

    // ---- forwarding ----
    // The in-flight limits: beyond them the query gets a stale answer or
    // SERVFAIL at once (a defined answer, counted), and takes no descriptor.
    bool admit(Pending &p) {
        uint32_t total = sh.inflight_total.fetch_add(1, std::memory_order_relaxed);
        if (total >= rt->max_inflight) {
            sh.inflight_total.fetch_sub(1, std::memory_order_relaxed);
            stats.hit(Limit::inflight_total);
            return false;
        }
        int32_t slot = sh.client_inflight.acquire(p.peer, rt->max_inflight_per_client);
        if (slot < 0) {
            sh.inflight_total.fetch_sub(1, std::memory_order_relaxed);
            stats.hit(Limit::inflight_client);
            return false;
        }
        p.token.sh = &sh;
        p.token.slot = slot;
        return true;
    }

    void start_forward(std::unique_ptr<Pending> p) {
        if (rt->upstreams.empty() || !admit(*p)) {
            finish_failure(*p);
            return;
        }
        uint8_t key[kMaxNameLen + 8];
        size_t klen = make_cache_key(p->q.qname.wire(), p->q.qtype, p->q.qclass, p->q.do_bit, p->q.cd(), key);
        p->key.assign(reinterpret_cast<const char *>(key), klen);
        auto f = followers.find(p->key);
        if (f != followers.end()) {  // the same question is already upstream: wait for its answer
            if (f->second.size() < 1000) {
                f->second.push_back(std::move(p));
                return;
            }
        } else {
            followers.emplace(p->key, std::vector<std::unique_ptr<Pending>>{});
        }
        p->start_index = sh.preferred_upstream.load(std::memory_order_relaxed) % rt->upstreams.size();
        send_try(std::move(p));
    }

    unsigned max_tries() const { return std::max<unsigned>(2, unsigned(rt->upstreams.size())); }

    void send_try(std::unique_ptr<Pending> p) {
        while (p->tries < max_tries()) {
            size_t n = rt->upstreams.size();
            p->up_index = (p->start_index + p->tries) % n;
            ++p->tries;
            UpstreamHealth &h = *rt->upstreams[p->up_index];
            h.queries.fetch_add(1, std::memory_order_relaxed);
            if (h.up.encrypted) {
                if (tls_send(p, h)) return;
                note_failure(h);
                continue;
            }
            p->id = static_cast<uint16_t>(arc4random());  // RFC 5452 §9.2: random ID...
            size_t qlen = core.upstream_query(p->q, reinterpret_cast<const uint8_t *>(p->msg.data()), p->id,
                                              scratch, sizeof scratch);
            // ...and a fresh socket per try: a random source port from the kernel,
            // and connect() so only the server asked can answer.
            int fd = socket(h.up.addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd >= 0 && connect(fd, h.up.addr.sa(), h.up.addr.len) == 0 && send(fd, scratch, qlen, 0) == ssize_t(qlen)) {
                p->fd = fd;
                p->up_tcp = false;
                p->sent_ns = now_ns_monotonic();
                p->deadline_ms = p->sent_ns / 1000000u + rt->timeout_ms;
                ep_add(fd, EPOLLIN, tag(kUpstream, uint64_t(fd)));
                pending.emplace(fd, std::move(p));
                return;
            }
            AISIDD_LOG(LogLevel::debug, "upstream " + redacted_upstream(h.up.text) + ": " + std::strerror(errno));
            if (fd >= 0) close(fd);
            note_failure(h);
        }
        finish_failure(*p);
    }

    // ---- DoT / DoH ----
    transport::Upstream *tls_upstream(const Upstream &up) {
        auto it = tls_ups.find(up.text);
        // After a reload with another --ca-file, an idle transport is remade.
        if (it != tls_ups.end() && (it->second.ca == rt->ca_file || it->second.t->in_flight()))
            return it->second.t.get();
        auto ep = transport::parse_upstream(up.text);
        if (!ep) {
            AISIDD_LOG(LogLevel::warn, "upstream " + ep.error().text());
            return nullptr;
        }
        transport::Options o;
        o.ca_file = rt->ca_file;
        o.timeout_ms = rt->timeout_ms;
        o.idle_timeout_ms = rt->tcp_idle_ms;
        auto t = transport::make_upstream(*ep, o);
        if (!t) {
            AISIDD_LOG(LogLevel::warn, "upstream " + t.error().text());
            return nullptr;
        }
        TlsUp &slot = tls_ups[up.text];
        slot.t = std::move(*t);
        slot.ca = rt->ca_file;
        return slot.t.get();
    }

    bool tls_send(std::unique_ptr<Pending> &p, UpstreamHealth &h) {
        transport::Upstream *u = tls_upstream(h.up);
        if (!u) return false;
        p->id = static_cast<uint16_t>(arc4random());
        size_t qlen = core.upstream_query(p->q, reinterpret_cast<const uint8_t *>(p->msg.data()), p->id, scratch,
                                          sizeof scratch);
        p->fd = -1;
        p->up_tcp = false;
        p->sent_ns = now_ns_monotonic();
        uint64_t token = next_tls_token++;
        tls_pending.emplace(token, std::move(p));
        u->submit(std::span<const uint8_t>(scratch, qlen),
                  [this, token](transport::Result r) { tls_done.emplace_back(token, std::move(r)); });
        tls_after();
        return true;
    }

    void tls_sync_fds() {
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

    void tls_after() {
        tls_sync_fds();
        while (!tls_done.empty()) {
            auto batch = std::move(tls_done);
            tls_done.clear();
            for (auto &[token, r] : batch) tls_complete(token, r);
        }
    }

    void tls_complete(uint64_t token, transport::Result &r) {
        auto it = tls_pending.find(token);
        if (it == tls_pending.end()) return;
        std::unique_ptr<Pending> p = std::move(it->second);
        tls_pending.erase(it);
        if (p->up_index >= rt->upstreams.size()) {  // reloaded meanwhile
            send_try(std::move(p));
            return;
        }
        UpstreamHealth &h = *rt->upstreams[p->up_index];
        if (r && QueryCore::check_upstream(p->q, p->id, r->wire.data(), r->wire.size()) == QueryCore::Check::ok) {
            note_success(h, p->up_index, now_ns_monotonic() - p->sent_ns);
            uint8_t out[65535];
            Result res = core.answer_from_upstream(p->q, reinterpret_cast<const uint8_t *>(p->msg.data()),
                                                   r->wire.data(), r->wire.size(), p->client_tcp,
                                                   now_ms_monotonic(), out, sizeof out);
            reply(*p, res, out);
            release_followers(p->key, r->wire.data(), r->wire.size());
            return;
        }
        // The reason (certificate mismatch, refused, timeout, TLS alert, HTTP
        // status) is logged when the upstream starts failing; never a fallback
        // to clear text, the next configured upstream is tried instead.
        std::string why = r ? redacted_upstream(h.up.text) + ": the answer was not usable (SERVFAIL/REFUSED or not ours)" : (r.error().upstream.empty() ? r.error().reason : redacted_upstream(r.error().upstream) + ": " + r.error().reason);
        AISIDD_LOG(h.consecutive_failures.load(std::memory_order_relaxed) == 0 ? LogLevel::warn : LogLevel::debug,
                   "upstream " + why);
        note_failure(h);
        send_try(std::move(p));
    }

    void on_tls(int fd, uint32_t events) {
        short re = short((events & EPOLLIN ? POLLIN : 0) | (events & EPOLLOUT ? POLLOUT : 0) |
                         (events & EPOLLERR ? POLLERR : 0) | (events & EPOLLHUP ? POLLHUP : 0));
        for (auto &[k, u] : tls_ups) u.t->process(fd, re);
        tls_after();
    }

    void note_failure(UpstreamHealth &h) {
        h.failures.fetch_add(1, std::memory_order_relaxed);
        uint32_t c = h.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
        if (c == 3) AISIDD_LOG(LogLevel::warn, "upstream " + redacted_upstream(h.up.text) + " is not answering");
    }

    void note_success(UpstreamHealth &h, size_t idx, uint64_t rtt_ns) {
        h.answers.fetch_add(1, std::memory_order_relaxed);
        if (h.consecutive_failures.exchange(0, std::memory_order_relaxed) >= 3)
            AISIDD_LOG(LogLevel::info, "upstream " + redacted_upstream(h.up.text) + " answers again");
        uint64_t old = h.rtt_us_ewma.load(std::memory_order_relaxed), s = rtt_ns / 1000;
        h.rtt_us_ewma.store(old ? (old * 7 + s) / 8 : s, std::memory_order_relaxed);
        sh.preferred_upstream.store(uint32_t(idx), std::memory_order_relaxed);
    }

    std::unique_ptr<Pending> take(int fd) {
        auto it = pending.find(fd);
        if (it == pending.end()) return nullptr;
        auto p = std::move(it->second);
        pending.erase(it);
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        p->fd = -1;
        return p;
    }

    void try_next(int fd) {
        auto p = take(fd);
        if (!p) return;
        note_failure(*rt->upstreams[p->up_index]);
        send_try(std::move(p));
    }

    void on_upstream(int fd, uint32_t events) {
        auto it = pending.find(fd);
        if (it == pending.end()) return;
        Pending &p = *it->second;
        if (p.up_tcp) {
            on_upstream_tcp(fd, p, events);
            return;
        }
        for (;;) {
            ssize_t n = recv(fd, scratch, sizeof scratch, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) return;
                try_next(fd);  // ECONNREFUSED: nothing listens there
                return;
            }
            switch (QueryCore::check_upstream(p.q, p.id, scratch, size_t(n))) {
            case QueryCore::Check::ignore: continue;  // not the answer to our question: keep waiting
            case QueryCore::Check::failed: try_next(fd); return;
            case QueryCore::Check::truncated: switch_to_tcp(fd); return;
            case QueryCore::Check::ok: complete(fd, scratch, size_t(n)); return;
            }
        }
    }

    void complete(int fd, const uint8_t *resp, size_t n) {
        auto p = take(fd);
        note_success(*rt->upstreams[p->up_index], p->up_index, now_ns_monotonic() - p->sent_ns);
        uint8_t out[65535];
        Result r = core.answer_from_upstream(p->q, reinterpret_cast<const uint8_t *>(p->msg.data()), resp, n,
                                             p->client_tcp, now_ms_monotonic(), out, sizeof out);
        reply(*p, r, out);
        release_followers(p->key, resp, n);
    }

    void finish_failure(Pending &p) {
        uint8_t out[65535];
        Result r = core.answer_failure(p.q, reinterpret_cast<const uint8_t *>(p.msg.data()), p.client_tcp,
                                       now_ms_monotonic(), out, sizeof out);
        reply(p, r, out);
        release_followers(p.key, nullptr, 0);
    }

    // The leader of `key` is done: its answer (or its failure) is theirs too.
    void release_followers(const std::string &key, const uint8_t *resp, size_t n) {
        if (key.empty()) return;
        auto it = followers.find(key);
        if (it == followers.end()) return;
        auto waiting = std::move(it->second);
        followers.erase(it);
        uint8_t out[65535];
        for (auto &f : waiting) {
            const uint8_t *m = reinterpret_cast<const uint8_t *>(f->msg.data());
            Result r = resp ? core.answer_from_upstream(f->q, m, resp, n, f->client_tcp, now_ms_monotonic(), out, sizeof out)
                            : core.answer_failure(f->q, m, f->client_tcp, now_ms_monotonic(), out, sizeof out);
            reply(*f, r, out);
        }
    }

    void reply(Pending &p, const Result &r, uint8_t *out) {
        account(r, p.start_ns);
        if (!r.len) return;
        if (!p.client_tcp) {
            send_udp_reply(p.udp_fd, p.peer, p.ctl, out, r.len, now_ms_monotonic());
            return;
        }
        auto it = conns.find(p.conn_id);
        if (it == conns.end()) return;  // the client went away
        tcp_send(it->second, out, r.len);
        conn_reply_done(p.conn_id);
    }

    void switch_to_tcp(int fd) {
        auto it = pending.find(fd);
        Pending &p = *it->second;
        UpstreamHealth &h = *rt->upstreams[p.up_index];
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        auto owned = std::move(it->second);
        pending.erase(it);
        // RFC 7766 §5: a truncated UDP answer is retried over TCP, same server.
        int tfd = socket(h.up.addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (tfd < 0) {
            note_failure(h);
            send_try(std::move(owned));
            return;
        }
        set_opt(tfd, IPPROTO_TCP, TCP_NODELAY, 1);
        int rc = connect(tfd, h.up.addr.sa(), h.up.addr.len);
        if (rc != 0 && errno != EINPROGRESS) {
            close(tfd);
            note_failure(h);
            send_try(std::move(owned));
            return;
        }
        owned->id = static_cast<uint16_t>(arc4random());
        size_t qlen = core.upstream_query(owned->q, reinterpret_cast<const uint8_t *>(owned->msg.data()), owned->id,
                                          scratch + 2, sizeof scratch - 2);
        wr16(scratch, uint16_t(qlen));
        owned->tcp_buf.assign(reinterpret_cast<const char *>(scratch), qlen + 2);
        owned->tcp_off = 0;
        owned->tcp_connected = false;
        owned->up_tcp = true;
        owned->fd = tfd;
        owned->deadline_ms = now_ms_monotonic() + 2 * rt->timeout_ms;
        ep_add(tfd, EPOLLIN | EPOLLOUT, tag(kUpstream, uint64_t(tfd)));
        pending.emplace(tfd, std::move(owned));
    }

    void on_upstream_tcp(int fd, Pending &p, uint32_t events) {
        if (events & (EPOLLERR | EPOLLHUP)) {
            if (!(events & EPOLLIN)) {
                try_next(fd);
                return;
            }
        }
        if (!p.tcp_connected && (events & EPOLLOUT)) {
            int err = 0;
            socklen_t l = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
            if (err) {
                try_next(fd);
                return;
            }
            p.tcp_connected = true;
        }
        if (p.tcp_connected && p.tcp_off < p.tcp_buf.size()) {
            ssize_t k = send(fd, p.tcp_buf.data() + p.tcp_off, p.tcp_buf.size() - p.tcp_off, MSG_NOSIGNAL);
            if (k < 0 && errno != EAGAIN) {
                try_next(fd);
                return;
            }
            if (k > 0) p.tcp_off += size_t(k);
            if (p.tcp_off == p.tcp_buf.size()) {
                p.tcp_buf.clear();
                p.tcp_off = SIZE_MAX;  // now reading
                ep_mod(fd, EPOLLIN, tag(kUpstream, uint64_t(fd)));
            }
            return;
        }
        if (p.tcp_off != SIZE_MAX) return;
        for (;;) {
            ssize_t k = recv(fd, scratch, sizeof scratch, 0);
            if (k < 0) {
                if (errno == EAGAIN || errno == EINTR) return;
                try_next(fd);
                return;
            }
            if (k == 0) {
                try_next(fd);
                return;
            }
            p.tcp_buf.append(reinterpret_cast<const char *>(scratch), size_t(k));
            if (p.tcp_buf.size() >= 2) {
                size_t need = rd16(reinterpret_cast<const uint8_t *>(p.tcp_buf.data()));
                if (p.tcp_buf.size() >= need + 2) {
                    std::string msg = p.tcp_buf.substr(2, need);
                    auto *m = reinterpret_cast<const uint8_t *>(msg.data());
                    if (QueryCore::check_upstream(p.q, p.id, m, need) == QueryCore::Check::ok) complete(fd, m, need);
                    else try_next(fd);
                    return;
                }
            }
        }
    }

    void sweep(uint64_t now) {
        std::vector<int> late;
        for (auto &[fd, p] : pending)
            if (now >= p->deadline_ms) late.push_back(fd);
        for (int fd : late) {
            AISIDD_LOG(LogLevel::debug, "upstream " + redacted_upstream(rt->upstreams[pending[fd]->up_index]->up.text) + " timed out");
            try_next(fd);
        }
        // RFC 7766 §6.2.3: close idle client connections.
        std::vector<uint64_t> idle, stuck;
        for (auto &[id, c] : conns) {
            if (c.inflight == 0 && c.out.size() == c.out_off && now - c.last_ms >= rt->tcp_idle_ms) idle.push_back(id);
            // Replies waiting and none taken for the idle timeout: a client
            // that does not read (Unbound closes such a one the same way).
            else if (c.out.size() != c.out_off && now - c.out_since_ms >= rt->tcp_idle_ms) stuck.push_back(id);
        }
        for (uint64_t id : idle) close_conn(id);
        for (uint64_t id : stuck) {
            stats.hit(Limit::tcp_write_timeout);
            close_conn(id);
        }
        if (!tls_ups.empty()) {
            for (auto &[k, u] : tls_ups) u.t->process_timeouts(transport::Clock::now());
            tls_after();
        }
        stats.tcp_connections.store(conns.size(), std::memory_order_relaxed);
        stats.inflight.store(pending.size() + tls_pending.size(), std::memory_order_relaxed);
    }

    // ---- TCP from clients ----
    // The connection idle the longest (nothing in flight, no reply waiting),
    // of `peer`'s client when given; 0 when there is none.
    uint64_t idle_victim(std::optional<sockaddr_storage> peer = std::nullopt) {
        uint64_t victim = 0, oldest = UINT64_MAX;
        uint8_t want[16], have[16];
        if (peer) addr16(*peer, want);
        for (auto &[id, c] : conns) {
            if (c.inflight != 0 || c.out.size() != c.out_off || c.last_ms >= oldest) continue;
            if (peer) {
                addr16(c.peer, have);
                static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
                bool v4 = std::memcmp(want, kMapped, 12) == 0;
                if (std::memcmp(want, have, v4 ? 16 : 8) != 0) continue;  // IPv4: the address; IPv6: the /64
            }
            oldest = c.last_ms;
            victim = id;
        }
        return victim;
    }

    void on_accept(int lfd) {
        for (;;) {
            sockaddr_storage peer{};
            socklen_t l = sizeof peer;
            int fd = accept4(lfd, reinterpret_cast<sockaddr *>(&peer), &l, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;
            if (v4_mapped(peer)) {
                close(fd);
                continue;
            }
            int32_t slot = sh.client_conns.acquire(peer, rt->tcp_connections_per_client);
            if (slot < 0) {
                // This client holds its share already: its own connection idle
                // the longest makes room (every local process is 127.0.0.1, so
                // one stalled program must not lock out the others); with none
                // idle here, the newcomer is refused.
                uint64_t victim = idle_victim(peer);
                if (victim) {
                    close_conn(victim);
                    slot = sh.client_conns.acquire(peer, rt->tcp_connections_per_client);
                }
                stats.hit(Limit::tcp_per_client);
                if (slot < 0) {
                    close(fd);
                    continue;
                }
            }
            if (conns.size() >= rt->tcp_connections_per_worker) {
                // Make room (RFC 7766 §6.2.2): the connection idle the longest
                // goes, never one with a query in flight or replies to take;
                // with none idle the newcomer is refused instead.
                uint64_t victim = idle_victim();
                if (!victim) {
                    stats.hit(Limit::tcp_full);
                    sh.client_conns.release(slot);
                    close(fd);
                    continue;
                }
                stats.hit(Limit::tcp_idle_evicted);
                close_conn(victim);
            }
            set_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
            uint64_t id = next_conn++;
            Conn &c = conns[id];
            c.fd = fd;
            c.id = id;
            c.peer = peer;
            c.client_slot = slot;
            c.last_ms = now_ms_monotonic();
            ep_add(fd, EPOLLIN, tag(kTcpConn, id));
        }
    }

    void close_conn(uint64_t id) {
        auto it = conns.find(id);
        if (it == conns.end()) return;
        epoll_ctl(ep, EPOLL_CTL_DEL, it->second.fd, nullptr);
        close(it->second.fd);
        sh.client_conns.release(it->second.client_slot);
        conns.erase(it);
    }

    void tcp_send(Conn &c, const uint8_t *msg, size_t len) {
        uint8_t l2[2];
        wr16(l2, uint16_t(len));
        if (c.out.size() == c.out_off) {
            c.out.clear();
            c.out_off = 0;
            iovec iov[2] = {{l2, 2}, {const_cast<uint8_t *>(msg), len}};
            msghdr mh{};
            mh.msg_iov = iov;
            mh.msg_iovlen = 2;
            ssize_t k = sendmsg(c.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k == ssize_t(len + 2)) return;
            if (k < 0 && errno != EAGAIN) {
                close_conn(c.id);
                return;
            }
            size_t done = k > 0 ? size_t(k) : 0;
            c.out.assign(reinterpret_cast<char *>(l2), 2);
            c.out.append(reinterpret_cast<const char *>(msg), len);
            c.out.erase(0, done);
            c.out_since_ms = now_ms_monotonic();
        } else {
            c.out.append(reinterpret_cast<char *>(l2), 2);
            c.out.append(reinterpret_cast<const char *>(msg), len);
        }
        if (!c.want_out) {
            c.want_out = true;
            conn_events(c);
        }
    }

    size_t out_waiting(const Conn &c) const { return c.out.size() - c.out_off; }

    void conn_events(Conn &c) {
        ep_mod(c.fd, (c.paused ? 0u : uint32_t(EPOLLIN)) | (c.want_out ? uint32_t(EPOLLOUT) : 0u), tag(kTcpConn, c.id));
    }

    // A forwarded answer went back on this connection: queries waiting in its
    // buffer may go now.
    void conn_reply_done(uint64_t id) {
        auto it = conns.find(id);
        if (it == conns.end()) return;
        if (it->second.inflight) --it->second.inflight;
        process_conn(id);
    }

    void on_conn(uint64_t id, uint32_t events) {
        auto it = conns.find(id);
        if (it == conns.end()) return;
        Conn &c = it->second;
        uint64_t now = now_ms_monotonic();
        if (events & EPOLLOUT) {
            while (c.out_off < c.out.size()) {
                ssize_t k = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
                if (k < 0) {
                    if (errno == EAGAIN) break;
                    close_conn(id);
                    return;
                }
                c.out_off += size_t(k);
                c.out_since_ms = now;
            }
            if (c.out_off == c.out.size()) {
                c.out.clear();
                c.out_off = 0;
                c.want_out = false;
                conn_events(c);
            } else if (c.out_off > (64u << 10)) {  // keep the buffer from holding what went out
                c.out.erase(0, c.out_off);
                c.out_off = 0;
            }
            c.last_ms = now;
            // Room again: the queries waiting in its buffer go on (and reading resumes).
            if (c.paused && out_waiting(c) <= rt->tcp_output_limit) {
                process_conn(id);
                if (conns.find(id) == conns.end()) return;
            }
        }
        if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c.paused) return;
        for (;;) {
            ssize_t k = recv(c.fd, scratch, sizeof scratch, 0);
            if (k == 0) {
                close_conn(id);
                return;
            }
            if (k < 0) {
                if (errno == EAGAIN || errno == EINTR) break;
                close_conn(id);
                return;
            }
            c.in.append(reinterpret_cast<const char *>(scratch), size_t(k));
            c.last_ms = now;
            if (c.in.size() > 2 * 65537) break;
        }
        process_conn(id);
    }

    void process_conn(uint64_t id) {
        auto it = conns.find(id);
        if (it == conns.end() || it->second.processing) return;
        Conn &c = it->second;
        c.processing = true;
        uint64_t now = now_ms_monotonic();
        // RFC 7766 §6.2.1: queries may be pipelined; each is handled as it is complete.
        size_t off = 0;
        uint64_t t0 = now_ns_monotonic();
        while (c.in.size() - off >= 2) {
            size_t len = rd16(reinterpret_cast<const uint8_t *>(c.in.data() + off));
            if (c.in.size() - off < len + 2) break;
            if (c.inflight >= kMaxInflightPerConn) break;
            // RFC 7766 §6.2.5 leaves the bound to us: a client that does not read
            // its replies gets no more answered until it does.
            if (out_waiting(c) > rt->tcp_output_limit) break;
            const uint8_t *msg = reinterpret_cast<const uint8_t *>(c.in.data() + off + 2);
            off += len + 2;
            Query q;
            uint8_t out[65535];
            Result r = core.handle(msg, len, c.peer, true, now, out, sizeof out, q);
            if (r.verdict == Verdict::Answered || r.verdict == Verdict::Fail) {
                account(r, t0);
                if (r.len) tcp_send(c, out, r.len);
                if (conns.find(id) == conns.end()) return;
            } else if (r.verdict == Verdict::Pass) {
                ++c.inflight;
                if (r.to_authority) {
                    to_authority(msg, len, true, -1, c.peer, id);
                } else {
                    auto p = std::make_unique<Pending>();
                    p->q = q;
                    p->msg.assign(reinterpret_cast<const char *>(msg), len);
                    p->client_tcp = true;
                    p->conn_id = id;
                    p->peer = c.peer;
                    p->start_ns = t0;
                    start_forward(std::move(p));
                    if (conns.find(id) == conns.end()) return;
                }
            } else {
                // A malformed message on a stream: we cannot trust the framing any more.
                stats.outcomes[static_cast<size_t>(Outcome::dropped)].fetch_add(1, std::memory_order_relaxed);
                close_conn(id);
                return;
            }
        }
        c.in.erase(0, off);
        c.processing = false;
        // Stop reading while the client has too much in flight (or buffered);
        // resume when its answers have gone out.
        bool out_full = out_waiting(c) > rt->tcp_output_limit;
        bool full = c.inflight >= kMaxInflightPerConn || c.in.size() > 2 * 65537 || out_full;
        if (out_full && !c.paused) stats.hit(Limit::tcp_output);
        if (full != c.paused) {
            c.paused = full;
            conn_events(c);
        }
    }

    // ---- authority hook ----
    void to_authority(const uint8_t *msg, size_t len, bool tcp, int udp_fd, const sockaddr_storage &peer,
                      uint64_t conn_id, std::string ctl = {}) {
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

    void drain_inbox() {
        std::vector<Delivery> items;
        {
            std::lock_guard lk(inbox_mu);
            items.swap(inbox);
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
    void open_fds() {
        ep = epoll_create1(EPOLL_CLOEXEC);
        wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        ep_add(wake_fd, EPOLLIN, tag(kWake, 0));
    }

    void run() {
        for (size_t i = 0; i < socks.udp.size(); ++i) ep_add(socks.udp[i], EPOLLIN, tag(kUdpListen, i));
        for (size_t i = 0; i < socks.tcp.size(); ++i) ep_add(socks.tcp[i], EPOLLIN, tag(kTcpListen, i));
        epoll_event evs[64];
        while (!sh.stop.load(std::memory_order_relaxed)) {
            int timeout = pending.empty() && conns.empty() && tls_pending.empty() ? 500 : 20;
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
        for (auto &[fd, p] : pending) close(fd);
        pending.clear();
        tls_pending.clear();
        tls_ups.clear();  // closes their connections
        for (auto &[id, c] : conns) close(c.fd);
        conns.clear();
        for (int fd : socks.udp) close(fd);
        for (int fd : socks.tcp) close(fd);
    }
    ~Impl() {
        if (wake_fd >= 0) close(wake_fd);
        if (ep >= 0) close(ep);
    }
};

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

void Worker::deliver(Delivery d) {
    {
        std::lock_guard lk(impl_->inbox_mu);
        impl_->inbox.push_back(std::move(d));
    }
    wake();
}

AuthorityRunner::AuthorityRunner(AuthorityHook *hook, size_t max_queue, std::atomic<uint64_t> *dropped)
    : hook_(hook), max_queue_(std::max<size_t>(1, max_queue)), dropped_(dropped) {
    if (hook_) th_ = std::thread([this] { run(); });
}

AuthorityRunner::~AuthorityRunner() { stop(); }

bool AuthorityRunner::submit(std::string msg, Worker::Delivery where, Worker *w) {
    std::lock_guard lk(mu_);
    // Bounded: a flood (signed messages with bad MACs cost the authority a
    // parse and an HMAC each) waits in at most max_queue_ slots; the rest is
    // dropped at once, before any copy is kept.
    if (q_.size() >= max_queue_) {
        if (dropped_) dropped_->fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    q_.push_back(Job{std::move(msg), std::move(where), w});
    cv_.notify_one();
    return true;
}

void AuthorityRunner::stop() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
        cv_.notify_all();
    }
    if (th_.joinable()) th_.join();
}

void AuthorityRunner::run() {
    for (;;) {
        Job j;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return stop_ || !q_.empty(); });
            if (stop_) return;
            j = std::move(q_.front());
            q_.pop_front();
        }
        try {
            hook_->handle(reinterpret_cast<const uint8_t *>(j.msg.data()), j.msg.size(), j.where.peer, j.where.tcp,
                          j.where.replies);
        } catch (const std::exception &e) {
            AISIDD_LOG(LogLevel::error, std::string("authority: ") + e.what());
            j.where.replies.clear();
        }
        j.w->deliver(std::move(j.where));
    }
}

} // namespace aisid::resolver
