// The ingress's userspace data plane: packets routed to the AISID prefixes
// arrive on a TUN device; each is H.Encaps'ed (srv6.hpp) toward the SID of the
// egress gateway chosen for its flow and written back to the device, so the
// kernel forwards the outer packet exactly as it forwards the one its own
// seg6 lwtunnel builds.
//
// Flow stickiness, as the kernel's resilient nexthop group gives it: a flow
// table keyed by the 5-tuple pins each flow to its path; an entry lives while
// the flow sends and expires after `flow_idle_ms` without a packet (the
// group's idle_timer). New flows take a weighted rendezvous choice over the
// current weights (aisid_sched), so weight changes move only new flows; a path
// whose weight drops to 0 (down) gives its flows up at once, like a nexthop
// removed from the group.
#pragma once

#include "aisid/dataplane/srv6.hpp"
#include "aisid/dataplane/tun.hpp"

#include <aisid/sched/affinity.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace aisid::gw {

class EncapPlane final : public TunLoop {
public:
    struct Path {
        std::string name;
        in6_addr sid{};
        uint64_t id = 0;  ///< stable identity for the rendezvous hash (hash_name(sid))
        std::string dev;  ///< device toward it (hop limit), may be empty
    };
    struct Options {
        std::string tun_pattern = "aisid-in%d";
        int mtu = 0;                 ///< 0: the smallest path device's MTU minus the SRv6 overhead
        uint64_t flow_idle_ms = 10000;
        size_t max_flows = 1 << 20;  ///< beyond: new flows are not pinned (the rendezvous choice alone)
    };
    struct Stats {
        uint64_t packets = 0, encapsulated = 0, no_path = 0, malformed = 0, write_errors = 0, flows = 0,
                 flows_moved = 0;
    };

    /// Opens the TUN device and finds each path's tunnel source (the address
    /// the kernel would pick toward the SID). nullptr and err on failure.
    static std::unique_ptr<EncapPlane> create(std::vector<Path> paths, const Options &o, std::string &err);
    ~EncapPlane() override;

    /// Integer weights per path (0: not a member). Any thread; applies to new flows.
    void set_weights(const std::vector<uint32_t> &w);
    Stats stats() const;
    int mtu() const { return mtu_; }
    const in6_addr &source_of(size_t path) const { return src_[path]; }

private:
    EncapPlane(int fd, std::string name, std::vector<Path> paths, const Options &o);
    void handle(std::span<uint8_t> pkt) override;
    void tick(uint64_t now) override;

    std::vector<Path> paths_;
    std::vector<in6_addr> src_;
    std::vector<uint8_t> hop_limit_;
    std::vector<uint64_t> ids_;
    std::unique_ptr<std::atomic<uint32_t>[]> weights_;
    srv6::FlowLabel flowlabel_ = srv6::FlowLabel::copy;
    Options opt_;
    int mtu_ = 0;
    // Data plane thread only.
    sched::FlowTable<uint32_t> flows_;
    std::vector<double> wbuf_;
    uint64_t now_ = 0;
    std::atomic<uint64_t> packets_{0}, encapsulated_{0}, no_path_{0}, malformed_{0}, flow_count_{0}, moved_{0};
};

} // namespace aisid::gw
