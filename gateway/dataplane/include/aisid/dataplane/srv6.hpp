// SRv6 packet operations of the userspace data plane (RFC 8754 SRH, RFC 8986
// behaviours), as pure functions on byte buffers: no I/O, no allocation.
//
// They reproduce, byte for byte, what Linux's lwtunnel does (net/ipv6/
// seg6_iptunnel.c, seg6_local.c), so a userspace ingress and a kernel egress
// (or the reverse) interoperate:
//   H.Encaps (`encap seg6 mode encap segs SID`): a new outer IPv6 header, then
//   an SRH holding the segment list, then the inner packet unchanged.
//     outer: version 6, traffic class copied from the inner packet, flow
//     label per net.ipv6.seg6_flowlabel (default 0: copied from the inner
//     packet), payload length, next header 43 (routing), hop limit of the
//     route (the kernel's ip6_dst_hoplimit), source = the tunnel source,
//     destination = the first segment.
//     SRH: next header 41 (IPv6), hdr ext len = 2·n, routing type 4,
//     segments left = n−1, last entry = n−1, flags 0, tag 0, segments in
//     reverse order (segment list[0] is the last segment).
//   End.DT6: accept a packet whose SRH has segments left 0 (or no SRH: plain
//     IPv6-in-IPv6), strip everything up to the inner IPv6 header, and look the
//     inner destination up in the local table.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include <aisid/sched/flow.hpp>

namespace aisid::gw::srv6 {

constexpr size_t kIpv6Header = 40;
constexpr uint8_t kNextRouting = 43;
constexpr uint8_t kNextIpv6 = 41;
constexpr uint8_t kRoutingSrh = 4;

/// Bytes H.Encaps adds in front of the inner packet for `segments` segments.
constexpr size_t encap_overhead(size_t segments) { return kIpv6Header + 8 + 16 * segments; }

/// What net.ipv6.seg6_flowlabel asks for the outer flow label.
enum class FlowLabel : int8_t { zero = -1, copy = 0, hash = 1 };

struct EncapParams {
    in6_addr src{};                   ///< tunnel source
    std::span<const in6_addr> segs;   ///< segment list in travel order; segs[0] is the outer destination
    uint8_t hop_limit = 64;           ///< outer hop limit before forwarding
    FlowLabel flowlabel = FlowLabel::copy;
    uint32_t flow_hash = 0;           ///< used when flowlabel == hash
};

/// H.Encaps of `inner` (a whole IPv6 packet) into out. Returns the outer
/// packet's length, or 0 when inner is not a valid IPv6 packet, segs is empty
/// or has more than 127 entries, or out is too small.
size_t h_encaps(std::span<const uint8_t> inner, const EncapParams &p, std::span<uint8_t> out);

enum class DecapError : uint8_t {
    none,
    malformed,         ///< truncated, not IPv6, lengths that do not add up
    not_for_sid,       ///< outer destination is not the SID
    segments_left,     ///< an SRH with segments left > 0 (End.DT6 is the last segment)
    not_ipv6_inside,   ///< the chain does not end in an IPv6 packet
};
const char *to_string(DecapError e);

struct Decap {
    DecapError error = DecapError::none;
    size_t inner_offset = 0; ///< where the inner IPv6 packet starts
    size_t inner_len = 0;
};

/// End.DT6's decapsulation: validates the outer packet addressed to sid and
/// finds the inner packet (skipping hop-by-hop, destination options and one
/// SRH). Does not look at the inner destination: the caller's table does.
Decap end_dt6(std::span<const uint8_t> outer, const in6_addr &sid);

/// The 5-tuple of an IPv6 packet (ports 0 for fragments and for protocols
/// without ports); false when the packet is not valid IPv6.
bool flow_key(std::span<const uint8_t> pkt, sched::FlowKey &key);

} // namespace aisid::gw::srv6
