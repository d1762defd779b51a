#include "aisid/dataplane/encap_plane.hpp"

#include "aisid/egress/net_util.hpp"

#include <aisid/sched/ingress.hpp>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace aisid::gw {
namespace {

// The source address the kernel picks toward dst (what seg6's set_tun_src
// does when no `ip sr tunsrc` is set): connect a UDP socket, read its name.
bool source_toward(const in6_addr &dst, in6_addr &src, std::string &err) {
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = std::strerror(errno);
        return false;
    }
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = dst;
    sa.sin6_port = htons(9);
    socklen_t len = sizeof sa;
    bool ok = connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0 &&
              getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &len) == 0;
    if (!ok) err = std::strerror(errno);
    close(fd);
    if (ok) src = sa.sin6_addr;
    return ok;
}

} // namespace

std::unique_ptr<EncapPlane> EncapPlane::create(std::vector<Path> paths, const Options &o, std::string &err) {
    if (paths.empty()) {
        err = "no paths";
        return nullptr;
    }
    std::vector<in6_addr> src(paths.size());
    int path_mtu = 0;
    for (size_t i = 0; i < paths.size(); ++i) {
        std::string e;
        if (!source_toward(paths[i].sid, src[i], e)) {
            err = "no route toward SID " + format_addr(paths[i].sid) + " of " + paths[i].name + ": " + e;
            return nullptr;
        }
        int m = paths[i].dev.empty() ? 0 : interface_mtu(paths[i].dev);
        if (m > 0) path_mtu = path_mtu ? std::min(path_mtu, m) : m;
    }
    // Inner packets that would not fit once encapsulated are refused by the
    // kernel's forwarding into the TUN device with an ICMPv6 Packet Too Big to
    // the client (path MTU discovery works), not silently lost further on.
    int mtu = o.mtu > 0 ? o.mtu : (path_mtu ? path_mtu : 1500) - static_cast<int>(srv6::encap_overhead(1));
    if (mtu < 1280) mtu = 1280;
    std::string name;
    int fd = open_tun(o.tun_pattern, mtu, name, err);
    if (fd < 0) return nullptr;
    auto p = std::unique_ptr<EncapPlane>(new EncapPlane(fd, name, std::move(paths), o));
    p->src_ = std::move(src);
    p->mtu_ = mtu;
    return p;
}

EncapPlane::EncapPlane(int fd, std::string name, std::vector<Path> paths, const Options &o)
    : TunLoop(fd, std::move(name)), paths_(std::move(paths)), opt_(o) {
    const size_t n = paths_.size();
    weights_ = std::make_unique<std::atomic<uint32_t>[]>(n);
    for (size_t i = 0; i < n; ++i) {
        weights_[i].store(0);
        ids_.push_back(paths_[i].id);
        // ip6_dst_hoplimit(): the device's hop_limit (the route has no metric).
        long hl = read_sysctl("net/ipv6/conf/" + (paths_[i].dev.empty() ? std::string("default") : paths_[i].dev) +
                                  "/hop_limit",
                              64);
        hop_limit_.push_back(static_cast<uint8_t>(hl > 0 && hl < 256 ? hl : 64));
    }
    wbuf_.resize(n);
    long fl = read_sysctl("net/ipv6/seg6_flowlabel", 0);
    flowlabel_ = fl < 0 ? srv6::FlowLabel::zero : fl > 0 ? srv6::FlowLabel::hash : srv6::FlowLabel::copy;
    now_ = now_ms();
}

EncapPlane::~EncapPlane() { stop(); }

void EncapPlane::set_weights(const std::vector<uint32_t> &w) {
    for (size_t i = 0; i < paths_.size() && i < w.size(); ++i) weights_[i].store(w[i], std::memory_order_relaxed);
}

EncapPlane::Stats EncapPlane::stats() const {
    Stats s;
    s.packets = packets_.load();
    s.encapsulated = encapsulated_.load();
    s.no_path = no_path_.load();
    s.malformed = malformed_.load();
    s.write_errors = write_errors_.load();
    s.flows = flow_count_.load();
    s.flows_moved = moved_.load();
    return s;
}

void EncapPlane::tick(uint64_t now) {
    now_ = now;
    flows_.expire(now, opt_.flow_idle_ms);
    flow_count_.store(flows_.size(), std::memory_order_relaxed);
}

void EncapPlane::handle(std::span<uint8_t> pkt) {
    packets_.fetch_add(1, std::memory_order_relaxed);
    sched::FlowKey key;
    if (!srv6::flow_key(pkt, key)) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    now_ = now_ms(); // vDSO, no system call
    std::optional<uint32_t> path = flows_.lookup(key, now_);
    if (path && weights_[*path].load(std::memory_order_relaxed) == 0) {
        // Its gateway left the group: the flow is lost there anyway.
        flows_.erase(key);
        path.reset();
        moved_.fetch_add(1, std::memory_order_relaxed);
    }
    const uint64_t h = key.hash();
    if (!path) {
        for (size_t i = 0; i < wbuf_.size(); ++i) wbuf_[i] = weights_[i].load(std::memory_order_relaxed);
        auto c = sched::rendezvous_choose(h, ids_.data(), wbuf_.data(), wbuf_.size());
        if (!c) {
            no_path_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        path = static_cast<uint32_t>(*c);
        if (flows_.size() < opt_.max_flows) flows_.pin(key, *path, now_);
    }
    // The kernel's forwarding into the TUN device took one hop off the inner
    // packet; the kernel's own encap runs before forwarding and does not. Put
    // it back so the inner packet leaves exactly as with the kernel data plane.
    if (pkt[7] < 255) ++pkt[7];
    alignas(64) static thread_local uint8_t out[65536 + 64];
    srv6::EncapParams p;
    p.src = src_[*path];
    p.segs = std::span<const in6_addr>(&paths_[*path].sid, 1);
    p.hop_limit = hop_limit_[*path];
    p.flowlabel = flowlabel_;
    p.flow_hash = static_cast<uint32_t>(h);
    size_t n = srv6::h_encaps(pkt, p, std::span<uint8_t>(out, sizeof out));
    if (n == 0) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (emit(std::span<const uint8_t>(out, n))) encapsulated_.fetch_add(1, std::memory_order_relaxed);
}

} // namespace aisid::gw
