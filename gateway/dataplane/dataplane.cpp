#include "aisid/dataplane/dataplane.hpp"

#include "aisid/egress/net_util.hpp"

namespace aisid::gw {
namespace {

// Documentation space, in a table nothing routes through.
constexpr const char *kScratchTable = "4242";
constexpr const char *kProbeDst = "2001:db8:ffff:ffff::5e6/128";

KernelProbe probe(std::vector<std::string> encap) {
    std::vector<std::string> add = {"ip", "-6", "route", "add", kProbeDst};
    add.insert(add.end(), encap.begin(), encap.end());
    add.insert(add.end(), {"dev", "lo", "table", kScratchTable});
    KernelProbe p;
    std::string err;
    int rc = run_program(add, &err);
    if (rc == 0) {
        run_program({"ip", "-6", "route", "del", kProbeDst, "table", kScratchTable});
        p.ok = true;
        return p;
    }
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    p.detail = rc < 0 ? "cannot run ip (iproute2)" : err.empty() ? "ip exited " + std::to_string(rc) : err;
    return p;
}

} // namespace

std::optional<Dataplane> parse_dataplane(std::string_view s) {
    if (s == "kernel") return Dataplane::kernel;
    if (s == "userspace") return Dataplane::userspace;
    if (s == "auto") return Dataplane::automatic;
    return std::nullopt;
}

const char *to_string(Dataplane d) {
    switch (d) {
    case Dataplane::kernel: return "kernel";
    case Dataplane::userspace: return "userspace";
    case Dataplane::automatic: return "auto";
    }
    return "?";
}

KernelProbe probe_seg6_encap() {
    return probe({"encap", "seg6", "mode", "encap", "segs", "2001:db8:ffff:ffff::1"});
}

KernelProbe probe_seg6local_dt6() {
    return probe({"encap", "seg6local", "action", "End.DT6", "table", "local"});
}

DataplaneChoice choose_dataplane(Dataplane requested, bool egress) {
    DataplaneChoice c;
    const char *what = egress ? "seg6local End.DT6" : "seg6 encap";
    if (requested == Dataplane::userspace) {
        c.plane = Dataplane::userspace;
        c.reason = "userspace (asked for)";
        return c;
    }
    KernelProbe p = egress ? probe_seg6local_dt6() : probe_seg6_encap();
    if (p.ok) {
        c.plane = Dataplane::kernel;
        c.reason = std::string("kernel (") + (requested == Dataplane::kernel ? "asked for; " : "auto: ") +
                   "the kernel accepted a " + what + " route in a scratch table)";
        return c;
    }
    const std::string missing =
        p.detail.find("not supported") != std::string::npos
            ? "the kernel lacks SRv6 lightweight tunnels (CONFIG_IPV6_SEG6_LWTUNNEL)"
            : p.detail.find("ermission") != std::string::npos || p.detail.find("not permitted") != std::string::npos
                  ? "not permitted to add routes (needs CAP_NET_ADMIN)"
                  : "the kernel refused a " + std::string(what) + " route";
    if (requested == Dataplane::kernel) {
        c.plane = Dataplane::kernel;
        c.error = "--dataplane kernel: " + missing + ": " + p.detail + "; use --dataplane userspace (or auto)";
        return c;
    }
    c.plane = Dataplane::userspace;
    c.reason = "userspace (auto: " + missing + ": " + p.detail + ")";
    return c;
}

} // namespace aisid::gw
