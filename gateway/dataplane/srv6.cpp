#include "aisid/dataplane/srv6.hpp"

#include <cstring>

namespace aisid::gw::srv6 {
namespace {

uint16_t be16(const uint8_t *p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void put16(uint8_t *p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

// A whole IPv6 packet: version 6 and a payload length that fits the buffer.
// (A jumbogram, payload length 0, is not something a TUN device hands us.)
bool valid_ipv6(std::span<const uint8_t> pkt) {
    return pkt.size() >= kIpv6Header && (pkt[0] >> 4) == 6 &&
           kIpv6Header + be16(&pkt[4]) <= pkt.size();
}

bool is_ext(uint8_t nh) { return nh == 0 || nh == 43 || nh == 60 || nh == 44 || nh == 51 || nh == 135; }

} // namespace

const char *to_string(DecapError e) {
    switch (e) {
    case DecapError::none: return "ok";
    case DecapError::malformed: return "malformed";
    case DecapError::not_for_sid: return "not for the SID";
    case DecapError::segments_left: return "segments left > 0";
    case DecapError::not_ipv6_inside: return "no inner IPv6 packet";
    }
    return "?";
}

size_t h_encaps(std::span<const uint8_t> inner, const EncapParams &p, std::span<uint8_t> out) {
    const size_t n = p.segs.size();
    if (!valid_ipv6(inner) || n == 0 || n > 127) return 0;
    const size_t inner_len = kIpv6Header + be16(&inner[4]); // no trailing garbage
    const size_t srh_len = 8 + 16 * n;
    const size_t total = kIpv6Header + srh_len + inner_len;
    if (total > out.size() || srh_len + inner_len > 0xffff) return 0;
    uint8_t *o = out.data();
    // Outer header: ip6_flow_hdr(hdr, tclass(inner), flowlabel).
    const uint32_t inner_word = static_cast<uint32_t>(inner[0]) << 24 | static_cast<uint32_t>(inner[1]) << 16 |
                                static_cast<uint32_t>(inner[2]) << 8 | inner[3];
    const uint32_t tclass = (inner_word >> 20) & 0xff;
    uint32_t label = 0;
    if (p.flowlabel == FlowLabel::copy) label = inner_word & 0xfffff;
    else if (p.flowlabel == FlowLabel::hash) label = ((p.flow_hash << 16) | (p.flow_hash >> 16)) & 0xfffff;
    const uint32_t word = 6u << 28 | tclass << 20 | label;
    o[0] = static_cast<uint8_t>(word >> 24);
    o[1] = static_cast<uint8_t>(word >> 16);
    o[2] = static_cast<uint8_t>(word >> 8);
    o[3] = static_cast<uint8_t>(word);
    put16(o + 4, static_cast<uint16_t>(srh_len + inner_len));
    o[6] = kNextRouting;
    o[7] = p.hop_limit;
    std::memcpy(o + 8, &p.src, 16);
    std::memcpy(o + 24, &p.segs[0], 16);
    // SRH (RFC 8754 §2): segment list[0] is the last segment.
    uint8_t *s = o + kIpv6Header;
    s[0] = kNextIpv6;
    s[1] = static_cast<uint8_t>(2 * n); // in 8-octet units, not counting the first 8
    s[2] = kRoutingSrh;
    s[3] = static_cast<uint8_t>(n - 1); // segments left
    s[4] = static_cast<uint8_t>(n - 1); // last entry
    s[5] = 0;                           // flags
    s[6] = s[7] = 0;                    // tag
    for (size_t i = 0; i < n; ++i) std::memcpy(s + 8 + 16 * i, &p.segs[n - 1 - i], 16);
    std::memcpy(s + srh_len, inner.data(), inner_len);
    return total;
}

Decap end_dt6(std::span<const uint8_t> pkt, const in6_addr &sid) {
    Decap d;
    if (!valid_ipv6(pkt)) {
        d.error = DecapError::malformed;
        return d;
    }
    if (std::memcmp(&pkt[24], &sid, 16) != 0) {
        d.error = DecapError::not_for_sid;
        return d;
    }
    const size_t end = kIpv6Header + be16(&pkt[4]);
    uint8_t nh = pkt[6];
    size_t off = kIpv6Header;
    bool seen_srh = false;
    // Hop-by-hop and destination options may precede the SRH (RFC 8200 §4.1);
    // at most one SRH; anything else ends the walk.
    for (int guard = 0; guard < 8; ++guard) {
        if (nh == kNextIpv6) break;
        if (nh != 0 && nh != 60 && nh != kNextRouting) {
            d.error = DecapError::not_ipv6_inside;
            return d;
        }
        if (off + 8 > end) {
            d.error = DecapError::malformed;
            return d;
        }
        const size_t len = 8 + 8 * static_cast<size_t>(pkt[off + 1]);
        if (off + len > end) {
            d.error = DecapError::malformed;
            return d;
        }
        if (nh == kNextRouting) {
            if (seen_srh || pkt[off + 2] != kRoutingSrh) {
                d.error = DecapError::not_ipv6_inside;
                return d;
            }
            if (pkt[off + 3] != 0) {
                d.error = DecapError::segments_left;
                return d;
            }
            seen_srh = true;
        }
        nh = pkt[off];
        off += len;
    }
    if (nh != kNextIpv6) {
        d.error = DecapError::not_ipv6_inside;
        return d;
    }
    std::span<const uint8_t> inner = pkt.subspan(off, end - off);
    if (!valid_ipv6(inner)) {
        d.error = DecapError::malformed;
        return d;
    }
    d.inner_offset = off;
    d.inner_len = kIpv6Header + be16(&inner[4]);
    return d;
}

bool flow_key(std::span<const uint8_t> pkt, sched::FlowKey &k) {
    if (!valid_ipv6(pkt)) return false;
    std::memcpy(k.src.data(), &pkt[8], 16);
    std::memcpy(k.dst.data(), &pkt[24], 16);
    k.src_port = k.dst_port = 0;
    const size_t end = kIpv6Header + be16(&pkt[4]);
    uint8_t nh = pkt[6];
    size_t off = kIpv6Header;
    for (int guard = 0; guard < 8 && is_ext(nh); ++guard) {
        if (off + 8 > end) break;
        if (nh == 44) { // fragment: only the first carries ports; hash all alike
            k.proto = pkt[off];
            return true;
        }
        const size_t len = nh == 51 ? 4 * (static_cast<size_t>(pkt[off + 1]) + 2)
                                    : 8 + 8 * static_cast<size_t>(pkt[off + 1]);
        nh = pkt[off];
        off += len;
    }
    k.proto = nh;
    if ((nh == IPPROTO_TCP || nh == IPPROTO_UDP || nh == 132 /* SCTP */ || nh == 136 /* UDP-Lite */) &&
        off + 4 <= end) {
        k.src_port = be16(&pkt[off]);
        k.dst_port = be16(&pkt[off + 2]);
    }
    return true;
}

} // namespace aisid::gw::srv6
