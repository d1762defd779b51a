// aisid-egress: the egress gateway of an AISID prefix (gateway/README.md).
//
// It owns the prefix (an AnyIP local route, so every address in it is local),
// takes TCP and UDP to any of those addresses, reads the destination AISID of
// each flow, lets aisid_sched pick a service node (semantic match, performance,
// then SED - shortest expected delay - on live load; WLC selectable) and
// proxies the bytes: TCP through splice(2) pipes, UDP datagram by datagram
// with the AISID as reply source. With a `sid` line it also decapsulates the
// SRv6 traffic the ingress sends (End.DT6), in the kernel or over TUN
// (gateway/dataplane/).
//
// Threads: the main thread runs an epoll loop (listeners, UDP flows, load
// reports, signals) and hands each accepted TCP connection, round-robin, to
// one of `relay-threads` relay threads (RelayLoop, relay_loop.hpp: one epoll
// each; a fixed number however many flows, 10 000 flows cost no thread). A
// relay thread picks the node, connects without blocking (connect-timeout,
// retrying the next choice) and splices the bytes. One more thread probes down
// nodes and reports this gateway's load to the ingress side. The scheduler is
// shared under one mutex, taken once per pick and once per release (a pick is
// a few hundred nanoseconds), never per relayed chunk. On stop, run() stops the
// relay loop (every flow ended, its node released, the threads joined) before
// the Egress whose config, scheduler and mutex the hooks use goes away.
#include "aisid/dataplane/gateway_cli.hpp"
#include "aisid/dataplane/decap_plane.hpp"
#include "aisid/egress/egress_config.hpp"
#include "aisid/core/log.hpp"
#include "aisid/egress/net_util.hpp"
#include "aisid/egress/relay_loop.hpp"

#include <aisid/sched/egress.hpp>
#include <aisid/sched/flow.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "aisid/version.h"

namespace aisid::gw {
namespace {

constexpr const char *kProg = "aisid-egress";


std::string describe(const Aisid &a) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "object %u function %u method %u performance %u",
                  a.object(), a.function(), a.method(), a.performance());
    return buf;
}

bool in_prefix(const in6_addr &a, uint64_t prefix) {
    return Aisid::from_in6(a).prefix() == prefix;
}

class Egress {
public:
    explicit Egress(EgressConfig cfg) : cfg_(std::move(cfg)), sched_(cfg_.policy, cfg_.overload) {
        for (const auto &n : cfg_.nodes) sched_.add_node(n.spec);
        last_report_.assign(cfg_.nodes.size(), 0);
        own_.assign(cfg_.nodes.size(), 0);
    }

    int run();

private:
    class TcpFlow;
    struct Handler;
    struct UdpFlow {
        int fd = -1;           // connected to the node
        int listen_fd = -1;    // the listener that got the first datagram
        sockaddr_in6 client{}; // where replies go
        in6_addr aisid{};      // the source replies carry
        sched::NodeId node = 0;
        sched::FlowKey key;
        uint64_t last_seen = 0;
        std::unique_ptr<Handler> handler;
    };
    enum class Kind { tcp_listen, udp_listen, udp_flow, report, signal };
    struct Handler {
        Kind kind;
        int fd;
        bool legacy = false;
        Aisid legacy_aisid;
        UdpFlow *flow = nullptr;
    };

    int setup_routes();
    void remove_routes();
    int open_listeners();
    bool add(Kind k, int fd, bool legacy = false, Aisid a = {});
    void on_tcp_accept(const Handler &h);
    void on_udp_datagram(const Handler &h);
    void on_udp_reply(UdpFlow &f);
    void on_report(int fd);
    void close_udp_flow(const sched::FlowKey &k, const char *why);
    void expire_udp();
    void background();

    EgressConfig cfg_;
    std::mutex mu_;
    sched::EgressScheduler sched_;
    int ep_ = -1;
    std::vector<std::unique_ptr<Handler>> handlers_;
    std::unordered_map<sched::FlowKey, std::unique_ptr<UdpFlow>, sched::FlowKeyHash> udp_;
    std::vector<std::unique_ptr<UdpFlow>> dead_; // closed in this epoll batch
    std::atomic<bool> stop_{false};
    std::mutex stop_mu_;
    std::condition_variable stop_cv_;
    std::vector<std::string> installed_; // routes to remove on exit
    std::unique_ptr<DecapPlane> decap_;  // the userspace End.DT6, when that data plane runs
    std::vector<uint64_t> last_report_;  // per node, now_ms() of its last load report (0: never), under mu_
    std::vector<uint32_t> own_;          // per node, flows this gateway has on it now, under mu_
    std::unique_ptr<RelayLoop> relay_;   // the TCP flows (made in run(), stopped before it returns)

    // Scheduler bookkeeping plus our own exact count (callers hold mu_).
    std::optional<sched::NodeId> assign_locked(const sched::Request &r) {
        auto id = sched_.assign(r);
        if (id) ++own_[*id];
        return id;
    }
    void release_locked(sched::NodeId id) {
        sched_.on_release(id);
        if (own_[id] > 0) --own_[id];
    }
};

// --- routes -----------------------------------------------------------------

int Egress::setup_routes() {
    if (!cfg_.install_routes) return 0;
    const std::string pfx = format_prefix64(cfg_.prefix);
    std::string err;
    // AnyIP: the whole prefix is local, so a socket on [::]:PORT gets every
    // address in it without one bind per AISID.
    if (run_program({"ip", "-6", "route", "replace", "local", pfx, "dev", "lo", "table", "local"}, &err) != 0) {
        logf(LogLevel::error, "cannot install the local route for %s: %s", pfx.c_str(), err.c_str());
        return 3;
    }
    installed_.push_back(pfx);
    if (cfg_.sid.empty()) {
        logf(LogLevel::info, "owns %s (AnyIP local route)", pfx.c_str());
        return 0;
    }
    const DataplaneChoice dp = choose_dataplane(cfg_.dataplane, true);
    if (!dp.error.empty()) {
        logf(LogLevel::error, "%s", dp.error.c_str());
        remove_routes();
        return 3;
    }
    logf(LogLevel::info, "data plane: %s", dp.reason.c_str());
    if (dp.plane == Dataplane::kernel) {
        // End.DT6 looks the inner destination up in table local, where only the
        // AnyIP route and our own addresses live: the SID cannot be used to
        // relay packets anywhere else.
        if (run_program({"ip", "-6", "route", "replace", cfg_.sid + "/128", "encap", "seg6local", "action",
                         "End.DT6", "table", "local", "dev", cfg_.sid_dev}, &err) != 0) {
            logf(LogLevel::error, "cannot install the SRv6 End.DT6 route for SID %s: %s", cfg_.sid.c_str(), err.c_str());
            remove_routes();
            return 3;
        }
        installed_.push_back(cfg_.sid + "/128");
        logf(LogLevel::info, "owns %s (AnyIP local route), decapsulates SID %s (kernel End.DT6)", pfx.c_str(),
             cfg_.sid.c_str());
        return 0;
    }
    // Userspace End.DT6: the SID routes to a TUN device whose reader
    // decapsulates and writes the inner packet back (gateway/dataplane/).
    // Packets to the SID are forwarded into the device, so forwarding must be on.
    if (read_sysctl("net/ipv6/conf/all/forwarding", 0) == 0) {
        logf(LogLevel::error, "the userspace data plane needs net.ipv6.conf.all.forwarding=1 (packets to the SID %s "
                           "are forwarded into its TUN device)", cfg_.sid.c_str());
        remove_routes();
        return 3;
    }
    auto sid = parse_endpoint(cfg_.sid, 0);
    DecapPlane::Options o;
    o.tun_pattern = cfg_.tun_name;
    decap_ = DecapPlane::create(sid->sa.sin6_addr, cfg_.prefix, o, err);
    if (!decap_) {
        logf(LogLevel::error, "cannot start the userspace End.DT6 for SID %s: %s", cfg_.sid.c_str(), err.c_str());
        remove_routes();
        return 3;
    }
    if (run_program({"ip", "-6", "route", "replace", cfg_.sid + "/128", "dev", decap_->tun_name()}, &err) != 0) {
        logf(LogLevel::error, "cannot route SID %s to %s: %s", cfg_.sid.c_str(), decap_->tun_name().c_str(), err.c_str());
        decap_.reset();
        remove_routes();
        return 3;
    }
    installed_.push_back(cfg_.sid + "/128");
    decap_->start();
    logf(LogLevel::info, "owns %s (AnyIP local route), decapsulates SID %s (userspace End.DT6 on %s)", pfx.c_str(),
         cfg_.sid.c_str(), decap_->tun_name().c_str());
    return 0;
}

void Egress::remove_routes() {
    for (size_t i = 0; i < installed_.size(); ++i) {
        std::string err;
        if (i == 0)
            run_program({"ip", "-6", "route", "del", "local", installed_[i], "dev", "lo", "table", "local"}, &err);
        else
            run_program({"ip", "-6", "route", "del", installed_[i]}, &err);
    }
    installed_.clear();
    if (decap_) {
        decap_->stop();
        auto st = decap_->stats();
        logf(LogLevel::info, "userspace End.DT6: %llu packets, %llu decapsulated, %llu not for this prefix, %llu refused "
                          "(%llu malformed, %llu segments left > 0, %llu not IPv6 inside)",
             static_cast<unsigned long long>(st.packets), static_cast<unsigned long long>(st.decapsulated),
             static_cast<unsigned long long>(st.not_local),
             static_cast<unsigned long long>(st.refused[1] + st.refused[2] + st.refused[3] + st.refused[4]),
             static_cast<unsigned long long>(st.refused[1]), static_cast<unsigned long long>(st.refused[3]),
             static_cast<unsigned long long>(st.refused[4]));
        decap_.reset();
    }
}

// --- listeners ----------------------------------------------------------------

bool Egress::add(Kind k, int fd, bool legacy, Aisid a) {
    auto h = std::make_unique<Handler>(Handler{k, fd, legacy, a, nullptr});
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = h.get();
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) return false;
    handlers_.push_back(std::move(h));
    return true;
}

int open_socket(int type, const sockaddr_in6 &sa, bool transparent, std::string &err) {
    int fd = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = std::strerror(errno);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (transparent) {
        // FREEBIND/TRANSPARENT: bind and answer from addresses that are not
        // configured on an interface (a legacy endpoint before its address is
        // up; AISID sources on UDP replies).
        setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof one) != 0) {
            err = std::string("IPV6_TRANSPARENT: ") + std::strerror(errno);
            close(fd);
            return -1;
        }
    }
    if (type == SOCK_DGRAM) setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr *>(&sa), sizeof sa) != 0 ||
        (type == SOCK_STREAM && listen(fd, 4096) != 0)) {
        err = std::strerror(errno);
        close(fd);
        return -1;
    }
    return fd;
}

int Egress::open_listeners() {
    std::string err;
    auto any = [](uint16_t port) {
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_addr = in6addr_any;
        sa.sin6_port = htons(port);
        return sa;
    };
    auto fail = [&](const char *what, const std::string &where) {
        logf(LogLevel::error, "cannot listen on %s %s: %s", what, where.c_str(), err.c_str());
        return errno == EPERM || errno == EACCES ? 4 : 3;
    };
    for (uint16_t p : cfg_.tcp_ports) {
        int fd = open_socket(SOCK_STREAM, any(p), true, err);
        if (fd < 0 || !add(Kind::tcp_listen, fd)) return fail("tcp", format_sockaddr(any(p)));
    }
    for (uint16_t p : cfg_.udp_ports) {
        int fd = open_socket(SOCK_DGRAM, any(p), true, err);
        if (fd < 0 || !add(Kind::udp_listen, fd)) return fail("udp", format_sockaddr(any(p)));
    }
    for (const auto &l : cfg_.legacy) {
        int fd = open_socket(SOCK_STREAM, l.listen.sa, true, err);
        if (fd < 0 || !add(Kind::tcp_listen, fd, true, l.aisid)) return fail("tcp", l.listen.to_string());
    }
    for (const auto &r : cfg_.report_listen) {
        int fd = open_socket(SOCK_DGRAM, r.sa, false, err);
        if (fd < 0 || !add(Kind::report, fd)) return fail("udp (load reports)", r.to_string());
    }
    return 0;
}

// --- TCP ------------------------------------------------------------------------

void reset_close(int fd) {
    // RST rather than FIN: the client learns at once that the service refused.
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

// One client connection on a relay thread: the scheduler's choices, one at a
// time, and the log lines. A failed connect marks the node down and the flow
// tries the next choice, so a dead node costs the client a delay, not a
// failure.
class Egress::TcpFlow final : public RelayFlow {
public:
    TcpFlow(Egress &gw, const sockaddr_in6 &peer, const sockaddr_in6 &local, Aisid aisid, bool legacy)
        : gw_(gw), peer_(peer), local_(local), aisid_(aisid), legacy_(legacy) {}

    bool next_upstream(sockaddr_in6 &to) override {
        if (attempts_++ > gw_.sched_.size()) {
            logf(LogLevel::warn, "tcp %s -> %s: refused: every matching node failed", from().c_str(), dest().c_str());
            return false;
        }
        {
            std::lock_guard lk(gw_.mu_);
            node_ = gw_.assign_locked(sched::Request::from(aisid_));
        }
        if (!node_) {
            logf(LogLevel::warn, "tcp %s -> %s: refused: no node up serves %s", from().c_str(), dest().c_str(),
                 describe(aisid_).c_str());
            return false;
        }
        to = gw_.cfg_.nodes[*node_].addr.sa;
        return true;
    }

    void connect_failed(int err) override {
        const NodeConfig &node = gw_.cfg_.nodes[*node_];
        // Stopping, or out of descriptors, memory or ports here: the node did
        // nothing wrong, and marking it down would refuse every later flow.
        const bool ours = err == ECANCELED || err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
                          err == EADDRNOTAVAIL;
        {
            std::lock_guard lk(gw_.mu_);
            gw_.release_locked(*node_);
            if (!ours) gw_.sched_.set_up(*node_, false);
        }
        if (!ours)
            logf(LogLevel::warn, "node %s %s down: connect: %s", node.spec.name.c_str(), node.addr.to_string().c_str(),
                 std::strerror(err));
        else if (err != ECANCELED)
            logf(LogLevel::warn, "tcp %s -> %s: cannot connect to node %s: %s", from().c_str(), dest().c_str(),
                 node.spec.name.c_str(), std::strerror(err));
        node_.reset();
    }

    void established() override {
        const NodeConfig &node = gw_.cfg_.nodes[*node_];
        logf(LogLevel::info, "tcp %s -> %s [%s] -> node %s %s", from().c_str(), dest().c_str(), describe(aisid_).c_str(),
             node.spec.name.c_str(), node.addr.to_string().c_str());
    }

    void finished(const RelayResult &r) override {
        {
            std::lock_guard lk(gw_.mu_);
            gw_.release_locked(*node_);
        }
        logf(LogLevel::debug, "tcp %s -> node %s closed: %llu bytes up, %llu down%s%s", from().c_str(),
             gw_.cfg_.nodes[*node_].spec.name.c_str(), static_cast<unsigned long long>(r.up),
             static_cast<unsigned long long>(r.down), r.error ? ", " : "", r.error ? std::strerror(r.error) : "");
        node_.reset();
    }

private:
    std::string from() const { return format_sockaddr(peer_); }
    std::string dest() const {
        return legacy_ ? format_sockaddr(local_) + " (legacy endpoint of " + aisid_.to_string() + ")"
                       : format_sockaddr(local_);
    }

    Egress &gw_;
    sockaddr_in6 peer_, local_;
    Aisid aisid_;
    bool legacy_;
    size_t attempts_ = 0;
    std::optional<sched::NodeId> node_; // assigned and not yet released
};

void Egress::on_tcp_accept(const Handler &h) {
    for (int burst = 0; burst < 64; ++burst) {
        sockaddr_in6 peer{}, local{};
        socklen_t plen = sizeof peer;
        int fd = accept4(h.fd, reinterpret_cast<sockaddr *>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                logf(LogLevel::warn, "accept: %s", std::strerror(errno));
            return;
        }
        socklen_t llen = sizeof local;
        getsockname(fd, reinterpret_cast<sockaddr *>(&local), &llen);
        // The destination the client dialled is the AISID (SPEC §1); on a
        // legacy listener it is the AISID that listener stands for.
        Aisid aisid;
        if (h.legacy) {
            aisid = h.legacy_aisid;
        } else if (in_prefix(local.sin6_addr, cfg_.prefix)) {
            aisid = Aisid::from_in6(local.sin6_addr);
        } else {
            logf(LogLevel::warn, "tcp %s -> %s: not an address of %s, refused", format_sockaddr(peer).c_str(),
                 format_sockaddr(local).c_str(), format_prefix64(cfg_.prefix).c_str());
            reset_close(fd);
            continue;
        }
        relay_->add(fd, std::make_unique<TcpFlow>(*this, peer, local, aisid, h.legacy));
    }
}

// --- UDP ------------------------------------------------------------------------

void Egress::on_udp_datagram(const Handler &h) {
    for (int burst = 0; burst < 64; ++burst) {
        char buf[65536];
        char cbuf[CMSG_SPACE(sizeof(in6_pktinfo))];
        sockaddr_in6 peer{};
        iovec iov{buf, sizeof buf};
        msghdr msg{};
        msg.msg_name = &peer;
        msg.msg_namelen = sizeof peer;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof cbuf;
        ssize_t n = recvmsg(h.fd, &msg, 0);
        if (n < 0) return;
        in6_addr dst{};
        bool have_dst = false;
        for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                in6_pktinfo pi;
                std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
                dst = pi.ipi6_addr;
                have_dst = true;
            }
        }
        sockaddr_in6 local{};
        socklen_t llen = sizeof local;
        getsockname(h.fd, reinterpret_cast<sockaddr *>(&local), &llen);
        if (!have_dst || !in_prefix(dst, cfg_.prefix)) {
            logf(LogLevel::warn, "udp from %s: destination %s is not in %s, dropped", format_sockaddr(peer).c_str(),
                 format_addr(dst).c_str(), format_prefix64(cfg_.prefix).c_str());
            continue;
        }
        sched::FlowKey key;
        std::memcpy(key.src.data(), &peer.sin6_addr, 16);
        std::memcpy(key.dst.data(), &dst, 16);
        key.src_port = ntohs(peer.sin6_port);
        key.dst_port = ntohs(local.sin6_port);
        key.proto = IPPROTO_UDP;
        auto it = udp_.find(key);
        if (it == udp_.end()) {
            Aisid a = Aisid::from_in6(dst);
            std::optional<sched::NodeId> id;
            {
                std::lock_guard lk(mu_);
                id = assign_locked(sched::Request::from(a));
            }
            sockaddr_in6 to = local;
            to.sin6_addr = dst;
            if (!id) {
                logf(LogLevel::warn, "udp %s -> %s: refused: no node up serves %s", format_sockaddr(peer).c_str(),
                     format_sockaddr(to).c_str(), describe(a).c_str());
                continue;
            }
            const NodeConfig &node = cfg_.nodes[*id];
            int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr *>(&node.addr.sa), sizeof node.addr.sa) != 0) {
                if (fd >= 0) close(fd);
                std::lock_guard lk(mu_);
                release_locked(*id);
                continue;
            }
            auto f = std::make_unique<UdpFlow>();
            f->fd = fd;
            f->listen_fd = h.fd;
            f->client = peer;
            f->aisid = dst;
            f->node = *id;
            f->key = key;
            f->handler = std::make_unique<Handler>(Handler{Kind::udp_flow, fd, false, {}, f.get()});
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.ptr = f->handler.get();
            epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
            logf(LogLevel::info, "udp %s -> %s [%s] -> node %s %s", format_sockaddr(peer).c_str(),
                 format_sockaddr(to).c_str(), describe(a).c_str(), node.spec.name.c_str(),
                 node.addr.to_string().c_str());
            it = udp_.emplace(key, std::move(f)).first;
        }
        UdpFlow &f = *it->second;
        f.last_seen = now_ms();
        if (send(f.fd, buf, static_cast<size_t>(n), 0) < 0 && errno == ECONNREFUSED) {
            close_udp_flow(key, "node port unreachable");
        }
    }
}

void Egress::on_udp_reply(UdpFlow &f) {
    for (int burst = 0; burst < 64; ++burst) {
        char buf[65536];
        ssize_t n = recv(f.fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == ECONNREFUSED) {
                // ICMP port unreachable from the node: it is gone.
                {
                    std::lock_guard lk(mu_);
                    sched_.set_up(f.node, false);
                }
                logf(LogLevel::warn, "node %s down: udp port unreachable", cfg_.nodes[f.node].spec.name.c_str());
                close_udp_flow(f.key, "node unreachable");
            }
            return;
        }
        f.last_seen = now_ms();
        // Reply from the AISID the client sent to (IPV6_PKTINFO source).
        char cbuf[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
        iovec iov{buf, static_cast<size_t>(n)};
        msghdr msg{};
        msg.msg_name = &f.client;
        msg.msg_namelen = sizeof f.client;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof cbuf;
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
        in6_pktinfo pi{};
        pi.ipi6_addr = f.aisid;
        std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
        if (sendmsg(f.listen_fd, &msg, 0) < 0)
            logf(LogLevel::debug, "udp reply to %s: %s", format_sockaddr(f.client).c_str(), std::strerror(errno));
    }
}

void Egress::close_udp_flow(const sched::FlowKey &k, const char *why) {
    auto it = udp_.find(k);
    if (it == udp_.end()) return;
    UdpFlow &f = *it->second;
    epoll_ctl(ep_, EPOLL_CTL_DEL, f.fd, nullptr);
    close(f.fd);
    {
        std::lock_guard lk(mu_);
        release_locked(f.node);
    }
    logf(LogLevel::debug, "udp %s flow on node %s closed: %s", format_sockaddr(f.client).c_str(),
         cfg_.nodes[f.node].spec.name.c_str(), why);
    f.fd = -1;
    f.handler->kind = Kind::udp_flow;
    f.handler->flow = nullptr; // later events of this batch see a closed flow
    dead_.push_back(std::move(it->second));
    udp_.erase(it);
}

void Egress::expire_udp() {
    const uint64_t now = now_ms();
    std::vector<sched::FlowKey> old;
    for (const auto &[k, f] : udp_)
        if (now - f->last_seen > static_cast<uint64_t>(cfg_.udp_idle_ms)) old.push_back(k);
    for (const auto &k : old) close_udp_flow(k, "idle");
}

// --- load reports -----------------------------------------------------------------

// A node's report: "aisid-load node=NAME active=N util=U" (gateway/README.md).
void Egress::on_report(int fd) {
    for (int burst = 0; burst < 64; ++burst) {
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0) return;
        std::string_view line(buf, static_cast<size_t>(n));
        auto name = field(line, "node");
        auto active = field(line, "active");
        auto util = field(line, "util");
        if (line.substr(0, 10) != "aisid-load" || !name || !active) {
            logf(LogLevel::debug, "malformed load report ignored");
            continue;
        }
        for (sched::NodeId i = 0; i < cfg_.nodes.size(); ++i) {
            if (cfg_.nodes[i].spec.name != *name) continue;
            char *end = nullptr;
            unsigned long a = std::strtoul(active->c_str(), &end, 10);
            double u = util ? std::strtod(util->c_str(), nullptr) : 0.0;
            std::lock_guard lk(mu_);
            // A report is up to one interval old: it may miss flows we sent
            // since. Never believe fewer than the flows we hold there ourselves.
            sched_.report(i, std::max(static_cast<uint32_t>(a), own_[i]), u < 0 ? 0 : u > 1 ? 1 : u);
            last_report_[i] = now_ms();
        }
    }
}

// --- probes and the report toward the ingress side ---------------------------------

void Egress::background() {
    int ufd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    uint64_t next_probe = 0, next_report = 0;
    while (!stop_.load()) {
        const uint64_t now = now_ms();
        if (now >= next_probe) {
            next_probe = now + static_cast<uint64_t>(cfg_.probe_interval_ms);
            std::vector<sched::NodeId> down, silent;
            {
                std::lock_guard lk(mu_);
                for (sched::NodeId i = 0; i < sched_.size(); ++i) {
                    if (!sched_.state(i).up) down.push_back(i);
                    else if (last_report_[i] && now - last_report_[i] > static_cast<uint64_t>(cfg_.node_timeout_ms))
                        silent.push_back(i);
                }
            }
            // A node that stopped reporting keeps its last (stale) load, which
            // may hide it from every pick, so no failed connect would ever
            // mark it down: probe it now instead.
            for (sched::NodeId i : silent) {
                int fd = connect_timeout(cfg_.nodes[i].addr, cfg_.connect_timeout_ms);
                std::lock_guard lk(mu_);
                last_report_[i] = 0; // probed; it is watched again from its next report
                if (fd >= 0) {
                    close(fd);
                    continue;
                }
                sched_.set_up(i, false);
                logf(LogLevel::warn, "node %s %s down: no load report for %d ms and the probe failed",
                     cfg_.nodes[i].spec.name.c_str(), cfg_.nodes[i].addr.to_string().c_str(), cfg_.node_timeout_ms);
            }
            for (sched::NodeId i : down) {
                int fd = connect_timeout(cfg_.nodes[i].addr, cfg_.connect_timeout_ms);
                if (fd < 0) continue;
                close(fd);
                {
                    std::lock_guard lk(mu_);
                    sched_.set_up(i, true);
                }
                logf(LogLevel::info, "node %s %s up again (probe)", cfg_.nodes[i].spec.name.c_str(),
                     cfg_.nodes[i].addr.to_string().c_str());
            }
        }
        if (now >= next_report && !cfg_.ingress_report.empty()) {
            next_report = now + static_cast<uint64_t>(cfg_.report_interval_ms);
            // The site's load: mean reported utilization of the nodes that are up.
            unsigned up = 0, active = 0;
            double util = 0;
            {
                std::lock_guard lk(mu_);
                for (sched::NodeId i = 0; i < sched_.size(); ++i) {
                    const auto &s = sched_.state(i);
                    if (!s.up) continue;
                    ++up;
                    active += s.active;
                    util += s.utilization;
                }
            }
            char msg[256];
            int len = std::snprintf(msg, sizeof msg, "aisid-gw gw=%s up=%d load=%.3f nodes=%u active=%u",
                                    cfg_.name.c_str(), up > 0 ? 1 : 0, up ? util / up : 1.0, up, active);
            for (const auto &ep : cfg_.ingress_report)
                sendto(ufd, msg, static_cast<size_t>(len), MSG_DONTWAIT,
                       reinterpret_cast<const sockaddr *>(&ep.sa), sizeof ep.sa);
        }
        std::unique_lock lk(stop_mu_);
        stop_cv_.wait_for(lk, std::chrono::milliseconds(50), [&] { return stop_.load(); });
    }
    if (ufd >= 0) close(ufd);
}

int Egress::run() {
    raise_nofile_limit();
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    add(Kind::signal, sfd);
    // After the mask: the relay threads must not take SIGTERM either.
    RelayLoop::Options ro;
    ro.threads = cfg_.relay_threads;
    ro.connect_timeout_ms = cfg_.connect_timeout_ms;
    relay_ = std::make_unique<RelayLoop>(ro);

    if (int rc = setup_routes()) return rc;
    if (int rc = open_listeners()) {
        remove_routes();
        return rc;
    }
    logf(LogLevel::info, "%s ready: %zu nodes, policy %s, %u relay threads", cfg_.name.c_str(), cfg_.nodes.size(),
         cfg_.policy == sched::Policy::sed ? "sed" : "wlc", relay_->threads());
    std::thread bg([this] { background(); });

    uint64_t next_expire = now_ms() + 1000;
    bool running = true;
    while (running) {
        epoll_event evs[64];
        int n = epoll_wait(ep_, evs, 64, 1000);
        for (int i = 0; i < n; ++i) {
            Handler &h = *static_cast<Handler *>(evs[i].data.ptr);
            switch (h.kind) {
            case Kind::tcp_listen: on_tcp_accept(h); break;
            case Kind::udp_listen: on_udp_datagram(h); break;
            case Kind::udp_flow:
                if (h.flow) on_udp_reply(*h.flow);
                break;
            case Kind::report: on_report(h.fd); break;
            case Kind::signal: {
                signalfd_siginfo si;
                while (read(h.fd, &si, sizeof si) == sizeof si)
                    if (si.ssi_signo != SIGHUP) running = false;
                break;
            }
            }
        }
        dead_.clear();
        if (now_ms() >= next_expire) {
            expire_udp();
            next_expire = now_ms() + 1000;
        }
    }
    logf(LogLevel::info, "stopping");
    relay_->stop(); // every TCP flow ended and its node released
    stop_.store(true);
    stop_cv_.notify_all();
    bg.join();
    remove_routes();
    return 0;
}

void usage(FILE *out) {
    std::fprintf(out,
                 "usage: aisid-egress --config FILE [--dataplane kernel|userspace|auto] [--log-level LEVEL] [--check]\n"
                 "The egress gateway of an AISID prefix: accepts TCP and UDP to every address of\n"
                 "the prefix, picks a service node for the AISID (object/function/method, 0 = any;\n"
                 "performance = latency budget in ms) by shortest expected delay on live load,\n"
                 "and proxies the flow to it. Config format: gateway/README.md.\n"
                 "  --config FILE     the gateway's configuration (required)\n"
                 "  --dataplane D     SRv6 End.DT6 of the sid line: kernel (seg6local), userspace\n"
                 "                    (TUN device), auto (default: the kernel when it can)\n"
                 "  --log-level L     debug, info (default), warning, error\n"
                 "  --check           parse the configuration and exit\n"
                 "  --help, --version\n"
                 "Exit: 0 ok, 2 usage or bad configuration, 3 network setup failed, 4 not permitted.\n");
}

} // namespace
} // namespace aisid::gw

int main(int argc, char **argv) {
    using namespace aisid::gw;
    using namespace aisid;
    set_log_program(kProg);
    GatewayArgs args;
    if (auto code = parse_gateway_args(argc, argv, kProg, usage, args)) return *code;
    EgressConfig cfg;
    std::string err;
    if (!load_egress_config(args.config, cfg, err)) {
        std::fprintf(stderr, "%s: %s\n", kProg, err.c_str());
        return 2;
    }
    if (args.dataplane) cfg.dataplane = *args.dataplane; // the command line wins
    if (args.check) return 0;
    std::signal(SIGPIPE, SIG_IGN);
    setvbuf(stderr, nullptr, _IOLBF, 0);
    try {
        Egress gw(std::move(cfg));
        return gw.run();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s: %s\n", kProg, e.what());
        return 3;
    }
}
