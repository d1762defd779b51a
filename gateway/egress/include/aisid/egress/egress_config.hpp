// aisid-egress configuration file (format in gateway/README.md, "aisid-egress").
#pragma once

#include "aisid/dataplane/dataplane.hpp"
#include "aisid/egress/net_util.hpp"

#include <aisid/sched/egress.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace aisid::gw {

struct NodeConfig {
    sched::NodeSpec spec;
    NetEndpoint addr;
};

/// A plain (non-AISID) address that serves one AISID: the legacy fallback
/// endpoint of SPEC §3, scheduled exactly like a request to that AISID.
struct LegacyListener {
    NetEndpoint listen;
    Aisid aisid;
};

struct EgressConfig {
    std::string name = "egress";
    uint64_t prefix = 0;
    bool have_prefix = false;
    std::vector<uint16_t> tcp_ports;
    std::vector<uint16_t> udp_ports;
    std::vector<NetEndpoint> report_listen;  ///< load reports from nodes (UDP)
    std::vector<NetEndpoint> ingress_report; ///< where this gateway reports its load
    std::string sid;                      ///< SRv6 SID decapsulated here (End.DT6)
    std::string sid_dev;
    bool install_routes = true;
    Dataplane dataplane = Dataplane::automatic; ///< SRv6 End.DT6 in the kernel or over TUN
    std::string tun_name = "aisid-eg%d";       ///< the userspace data plane's device
    sched::Policy policy = sched::Policy::sed;
    double overload = 1.0;
    int probe_interval_ms = 500;
    int connect_timeout_ms = 300;
    int report_interval_ms = 200;
    int udp_idle_ms = 30000;
    int node_timeout_ms = 1000; ///< a node silent this long (after reporting) is probed
    unsigned relay_threads = 0; ///< TCP relay threads (each an epoll loop); 0: one per CPU
    std::vector<LegacyListener> legacy;
    std::vector<NodeConfig> nodes;
};

/// Parses FILE; on error returns false and sets err to "FILE:LINE: what".
bool load_egress_config(const std::string &path, EgressConfig &out, std::string &err);

} // namespace aisid::gw
