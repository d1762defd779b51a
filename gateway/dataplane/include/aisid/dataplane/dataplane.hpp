// Which SRv6 data plane a gateway uses: the kernel's (seg6 / seg6local
// lwtunnels) or the userspace one over TUN (gateway/README.md "Data planes").
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace aisid::gw {

enum class Dataplane { kernel, userspace, automatic };

std::optional<Dataplane> parse_dataplane(std::string_view s);
const char *to_string(Dataplane d);

/// What the kernel can do, found by trying it: a route with the SRv6
/// lightweight tunnel is added to a scratch routing table and removed again.
struct KernelProbe {
    bool ok = false;
    std::string detail; ///< the kernel's answer when !ok
};
/// `encap seg6 mode encap` (H.Encaps, the ingress).
KernelProbe probe_seg6_encap();
/// `encap seg6local action End.DT6` (the egress).
KernelProbe probe_seg6local_dt6();

struct DataplaneChoice {
    Dataplane plane = Dataplane::userspace; ///< kernel or userspace, never automatic
    std::string reason;                     ///< one line for the log: why this one
    std::string error;                      ///< set when `kernel` was asked for and cannot be had
};

/// Resolves the operator's request. `egress` selects the behaviour probed
/// (End.DT6 rather than H.Encaps).
DataplaneChoice choose_dataplane(Dataplane requested, bool egress);

} // namespace aisid::gw
