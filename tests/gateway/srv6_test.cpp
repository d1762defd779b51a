// The userspace data plane's SRv6 packet operations (gateway/dataplane/include/aisid/dataplane/srv6.hpp):
// the bytes H.Encaps writes (RFC 8754 §2, as Linux's seg6 encap writes them),
// End.DT6's checks, and the 5-tuple the flow table keys on. No I/O.
#include "aisid/dataplane/srv6.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <vector>

using namespace aisid::gw;

namespace {

in6_addr a6(const char *s) {
    in6_addr a{};
    REQUIRE(inet_pton(AF_INET6, s, &a) == 1);
    return a;
}

// An IPv6 UDP packet: traffic class 0x28, flow label 0x12345, hop limit 61.
std::vector<uint8_t> udp_packet(const char *src, const char *dst, uint16_t sport, uint16_t dport,
                                const std::string &payload) {
    std::vector<uint8_t> p(40 + 8 + payload.size());
    const uint32_t w = 6u << 28 | 0x28u << 20 | 0x12345u;
    p[0] = w >> 24, p[1] = w >> 16 & 0xff, p[2] = w >> 8 & 0xff, p[3] = w & 0xff;
    p[4] = static_cast<uint8_t>((8 + payload.size()) >> 8), p[5] = static_cast<uint8_t>(8 + payload.size());
    p[6] = 17, p[7] = 61;
    in6_addr s = a6(src), d = a6(dst);
    std::memcpy(&p[8], &s, 16);
    std::memcpy(&p[24], &d, 16);
    p[40] = sport >> 8, p[41] = sport & 0xff, p[42] = dport >> 8, p[43] = dport & 0xff;
    p[44] = p[4], p[45] = p[5];
    std::memcpy(&p[48], payload.data(), payload.size());
    return p;
}

} // namespace

TEST_CASE("H.Encaps with one segment: the bytes Linux's seg6 encap (mode encap) writes") {
    auto inner = udp_packet("2001:db8:1::10", "2001:db8:abcd:12:1:2:1:0", 40000, 5300, "hello");
    const in6_addr sid = a6("2001:db8:e1::100");
    srv6::EncapParams p;
    p.src = a6("2001:db8:f1::1");
    p.segs = std::span<const in6_addr>(&sid, 1);
    p.hop_limit = 64;
    std::vector<uint8_t> out(2048);
    const size_t n = srv6::h_encaps(inner, p, out);
    REQUIRE(n == 40 + 24 + inner.size());
    const uint8_t hdr[8] = {0x62, 0x81, 0x23, 0x45, // version 6, tclass 0x28, flow label 0x12345 (copied)
                            0x00, static_cast<uint8_t>(24 + inner.size()), 43, 64};
    CHECK(std::memcmp(out.data(), hdr, 8) == 0);
    CHECK(std::memcmp(&out[8], &p.src, 16) == 0);
    CHECK(std::memcmp(&out[24], &sid, 16) == 0);
    const uint8_t srh[8] = {41, 2, 4, 0, 0, 0, 0, 0};
    CHECK(std::memcmp(&out[40], srh, 8) == 0);
    CHECK(std::memcmp(&out[48], &sid, 16) == 0);
    CHECK(std::memcmp(&out[64], inner.data(), inner.size()) == 0);

    SUBCASE("seg6_flowlabel -1 zeroes the outer flow label, 1 derives it from the flow hash") {
        p.flowlabel = srv6::FlowLabel::zero;
        REQUIRE(srv6::h_encaps(inner, p, out) == n);
        CHECK((out[1] & 0x0f) == 0);
        CHECK(out[2] == 0);
        CHECK(out[3] == 0);
        CHECK((out[1] >> 4) == 0x8); // traffic class still copied
        p.flowlabel = srv6::FlowLabel::hash;
        p.flow_hash = 0xabcd1234;
        REQUIRE(srv6::h_encaps(inner, p, out) == n);
        const uint32_t label = static_cast<uint32_t>(out[1] & 0x0f) << 16 | out[2] << 8 | out[3];
        CHECK(label == ((0xabcd1234u << 16 | 0xabcd1234u >> 16) & 0xfffff));
    }
}

TEST_CASE("H.Encaps with three segments: reversed segment list, segments left 2, destination the first") {
    auto inner = udp_packet("2001:db8:1::10", "2001:db8:abcd:12::1", 1, 2, "x");
    const in6_addr segs[3] = {a6("2001:db8:a::1"), a6("2001:db8:b::1"), a6("2001:db8:c::1")};
    srv6::EncapParams p;
    p.src = a6("2001:db8:f1::1");
    p.segs = segs;
    std::vector<uint8_t> out(2048);
    REQUIRE(srv6::h_encaps(inner, p, out) == 40 + 8 + 48 + inner.size());
    CHECK(std::memcmp(&out[24], &segs[0], 16) == 0);
    CHECK(out[41] == 6); // 3 segments: 48 bytes = 6 units of 8
    CHECK(out[43] == 2); // segments left
    CHECK(out[44] == 2); // last entry
    CHECK(std::memcmp(&out[48], &segs[2], 16) == 0);
    CHECK(std::memcmp(&out[64], &segs[1], 16) == 0);
    CHECK(std::memcmp(&out[80], &segs[0], 16) == 0);
    // End.DT6 at the first segment refuses it: it is not the last segment.
    CHECK(srv6::end_dt6(std::span<const uint8_t>(out.data(), 40 + 56 + inner.size()), segs[0]).error ==
          srv6::DecapError::segments_left);
}

TEST_CASE("H.Encaps refuses what it cannot encapsulate") {
    auto inner = udp_packet("2001:db8:1::10", "2001:db8:abcd:12::1", 1, 2, "x");
    const in6_addr sid = a6("2001:db8:e1::100");
    srv6::EncapParams p;
    p.segs = std::span<const in6_addr>(&sid, 1);
    std::vector<uint8_t> out(2048);
    CHECK(srv6::h_encaps(std::span<const uint8_t>(inner.data(), 39), p, out) == 0); // truncated
    auto v4 = inner;
    v4[0] = 0x45;
    CHECK(srv6::h_encaps(v4, p, out) == 0);                                         // not IPv6
    auto lying = inner;
    lying[5] += 10;
    CHECK(srv6::h_encaps(lying, p, out) == 0);                                      // payload length > buffer
    CHECK(srv6::h_encaps(inner, p, std::span<uint8_t>(out.data(), 100)) == 0);       // no room
    srv6::EncapParams none = p;
    none.segs = {};
    CHECK(srv6::h_encaps(inner, none, out) == 0);
    // Trailing bytes beyond the payload length are not carried.
    auto padded = inner;
    padded.resize(inner.size() + 7, 0xee);
    CHECK(srv6::h_encaps(padded, p, out) == 64 + inner.size());
}

TEST_CASE("End.DT6: encap then decap gives the inner packet back, and what it refuses") {
    auto inner = udp_packet("2001:db8:1::10", "2001:db8:abcd:12:1:2:1:0", 40000, 5300, "payload");
    const in6_addr sid = a6("2001:db8:e1::100");
    srv6::EncapParams p;
    p.src = a6("2001:db8:f1::1");
    p.segs = std::span<const in6_addr>(&sid, 1);
    std::vector<uint8_t> out(2048);
    const size_t n = srv6::h_encaps(inner, p, out);
    std::span<const uint8_t> pkt(out.data(), n);
    srv6::Decap d = srv6::end_dt6(pkt, sid);
    REQUIRE(d.error == srv6::DecapError::none);
    CHECK(d.inner_offset == 64);
    REQUIRE(d.inner_len == inner.size());
    CHECK(std::memcmp(&out[d.inner_offset], inner.data(), inner.size()) == 0);

    CHECK(srv6::end_dt6(pkt, a6("2001:db8:e2::100")).error == srv6::DecapError::not_for_sid);
    CHECK(srv6::end_dt6(pkt.first(63), sid).error == srv6::DecapError::malformed);
    auto sl = std::vector<uint8_t>(pkt.begin(), pkt.end());
    sl[43] = 1;
    CHECK(srv6::end_dt6(sl, sid).error == srv6::DecapError::segments_left);
    auto type0 = std::vector<uint8_t>(pkt.begin(), pkt.end());
    type0[42] = 0; // a type 0 routing header (deprecated, RFC 5095)
    CHECK(srv6::end_dt6(type0, sid).error == srv6::DecapError::not_ipv6_inside);
    auto tcp_inside = std::vector<uint8_t>(pkt.begin(), pkt.end());
    tcp_inside[40] = 6;
    CHECK(srv6::end_dt6(tcp_inside, sid).error == srv6::DecapError::not_ipv6_inside);
    auto srh_overruns = std::vector<uint8_t>(pkt.begin(), pkt.end());
    srh_overruns[41] = 200;
    CHECK(srv6::end_dt6(srh_overruns, sid).error == srv6::DecapError::malformed);
    auto inner_lies = std::vector<uint8_t>(pkt.begin(), pkt.end());
    inner_lies[64 + 5] += 1; // inner payload length one past the outer's end
    CHECK(srv6::end_dt6(inner_lies, sid).error == srv6::DecapError::malformed);
}

TEST_CASE("End.DT6 accepts plain IPv6-in-IPv6 and options before the SRH, as the kernel does") {
    auto inner = udp_packet("2001:db8:1::10", "2001:db8:abcd:12::7", 1, 2, "abc");
    const in6_addr sid = a6("2001:db8:e1::100");
    // No SRH: next header 41 straight away.
    std::vector<uint8_t> p(40 + inner.size());
    p[0] = 0x60, p[4] = static_cast<uint8_t>(inner.size() >> 8), p[5] = static_cast<uint8_t>(inner.size());
    p[6] = 41, p[7] = 64;
    std::memcpy(&p[24], &sid, 16);
    std::memcpy(&p[40], inner.data(), inner.size());
    auto d = srv6::end_dt6(p, sid);
    CHECK(d.error == srv6::DecapError::none);
    CHECK(d.inner_offset == 40);
    // Hop-by-hop options (8 bytes of PadN), then the SRH.
    std::vector<uint8_t> q(40 + 8 + 24 + inner.size());
    q[0] = 0x60, q[4] = static_cast<uint8_t>((q.size() - 40) >> 8), q[5] = static_cast<uint8_t>(q.size() - 40);
    q[6] = 0, q[7] = 64;
    std::memcpy(&q[24], &sid, 16);
    q[40] = 43, q[41] = 0, q[42] = 1, q[43] = 4; // next: routing; PadN of 4
    q[48] = 41, q[49] = 2, q[50] = 4;            // SRH, segments left 0
    std::memcpy(&q[56], &sid, 16);
    std::memcpy(&q[72], inner.data(), inner.size());
    d = srv6::end_dt6(q, sid);
    CHECK(d.error == srv6::DecapError::none);
    CHECK(d.inner_offset == 72);
    // Two SRHs: refused.
    std::vector<uint8_t> r(40 + 24 + 24 + inner.size());
    r[0] = 0x60, r[4] = static_cast<uint8_t>((r.size() - 40) >> 8), r[5] = static_cast<uint8_t>(r.size() - 40);
    r[6] = 43;
    std::memcpy(&r[24], &sid, 16);
    r[40] = 43, r[41] = 2, r[42] = 4;
    r[64] = 41, r[65] = 2, r[66] = 4;
    std::memcpy(&r[88], inner.data(), inner.size());
    CHECK(srv6::end_dt6(r, sid).error == srv6::DecapError::not_ipv6_inside);
}

TEST_CASE("flow_key: the 5-tuple, through extension headers, fragments hash without ports") {
    auto pkt = udp_packet("2001:db8:1::10", "2001:db8:abcd:12::7", 40000, 5300, "abc");
    aisid::sched::FlowKey k;
    REQUIRE(srv6::flow_key(pkt, k));
    CHECK(k.proto == 17);
    CHECK(k.src_port == 40000);
    CHECK(k.dst_port == 5300);
    in6_addr s = a6("2001:db8:1::10");
    CHECK(std::memcmp(k.src.data(), &s, 16) == 0);
    // Behind a destination options header.
    std::vector<uint8_t> d(pkt.size() + 8);
    std::memcpy(d.data(), pkt.data(), 40);
    d[5] = static_cast<uint8_t>(pkt[5] + 8);
    d[6] = 60;
    d[40] = 17, d[41] = 0, d[42] = 1, d[43] = 4;
    std::memcpy(&d[48], &pkt[40], pkt.size() - 40);
    aisid::sched::FlowKey k2;
    REQUIRE(srv6::flow_key(d, k2));
    CHECK(k2 == k);
    // A fragment: no ports, so every fragment of a datagram hashes alike.
    std::vector<uint8_t> f(pkt.size() + 8);
    std::memcpy(f.data(), pkt.data(), 40);
    f[5] = static_cast<uint8_t>(pkt[5] + 8);
    f[6] = 44;
    f[40] = 17;
    std::memcpy(&f[48], &pkt[40], pkt.size() - 40);
    aisid::sched::FlowKey k3;
    REQUIRE(srv6::flow_key(f, k3));
    CHECK(k3.proto == 17);
    CHECK(k3.src_port == 0);
    CHECK(k3.dst_port == 0);
    CHECK_FALSE(srv6::flow_key(std::span<const uint8_t>(pkt.data(), 20), k3));
}
