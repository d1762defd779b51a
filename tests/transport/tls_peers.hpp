// The peers of the transport tests and the transport benchmark: Unbound
// with DoT and DoH listeners and the data below, dnsdist in front of it
// (support/tls.hpp), a CA the test makes (Pki); and the DNS messages the tests
// send and read.
#pragma once

#include "dns_query.hpp"
#include "proc.hpp"
#include "tls.hpp"
#include "unbound.hpp"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace aisid::test {

/// Unbound on loopback with plain DNS (`port`), DoT (`dot`) and DoH (`doh`).
/// Data: a.legacy.example A 192.0.2.1 and AAAA 2001:db8::1, qN.legacy.example
/// A 198.51.100.N (N = 1..250), and anything under bench.example A 192.0.2.9
/// (a redirect zone: every name is answered from local data, no cache hit
/// possible). `verbosity` 4 logs every query's length ("Reading ssl tcp query
/// of length N").
inline UnboundOptions tls_upstream(const TempDir &tmp, const Pki &pki, const std::string &tag = "unbound",
                                   int verbosity = 1) {
    UnboundOptions o = UnboundOptions()
                           .in(tmp, tag)
                           .tls(pki)
                           .verbosity(verbosity)
                           .server("incoming-num-tcp: 64")
                           .local_zone("legacy.example.")
                           .local_data("a.legacy.example. 300 IN A 192.0.2.1")
                           .local_data("a.legacy.example. 300 IN AAAA 2001:db8::1");
    for (int i = 1; i <= 250; ++i)
        o.local_data("q" + std::to_string(i) + ".legacy.example. 300 IN A 198.51.100." + std::to_string(i));
    return o.local_zone("bench.example.", "redirect").local_data("bench.example. 60 IN A 192.0.2.9");
}

/// Established TCP connections whose local port is `port` (the server side),
/// counted with ss(8); -1 when ss cannot run.
inline int established_to(int port) {
    std::string cmd = "ss -Htn state established '( sport = :" + std::to_string(port) + " )' 2>/dev/null";
    FILE *f = popen(cmd.c_str(), "r");
    if (!f) return -1;
    int lines = 0;
    char buf[512];
    while (std::fgets(buf, sizeof buf, f))
        if (buf[0] != '\n') ++lines;
    return pclose(f) == 0 ? lines : -1;
}

// --- DNS messages for the tests (hand-built; the library is what is tested) --

/// A query for NAME TYPE (A), RD set; with EDNS an OPT of 1232 octets.
inline std::vector<uint8_t> make_query(const std::string &name, uint16_t id, uint16_t qtype = 1, bool edns = false) {
    std::string q = build_query(id, name, qtype, edns);
    return std::vector<uint8_t>(q.begin(), q.end());
}

/// The A addresses in the answer section, as text ("192.0.2.1"), and the
/// lowest answer TTL in `min_ttl`.
inline std::vector<std::string> answer_a(const std::vector<uint8_t> &m, uint32_t *min_ttl = nullptr) {
    std::vector<std::string> out;
    if (m.size() < 12) return out;
    auto skip = [&](size_t o) -> size_t {
        while (o < m.size()) {
            uint8_t l = m[o];
            if (l == 0) return o + 1;
            if ((l & 0xc0) == 0xc0) return o + 2;
            o += 1 + l;
        }
        return size_t(-1);
    };
    size_t o = 12;
    for (int i = 0; i < msg_count(m, 0); ++i) {
        o = skip(o);
        if (o == size_t(-1)) return out;
        o += 4;
    }
    if (min_ttl) *min_ttl = UINT32_MAX;
    for (int i = 0; i < msg_count(m, 1); ++i) {
        o = skip(o);
        if (o == size_t(-1) || o + 10 > m.size()) return out;
        uint16_t type = uint16_t(m[o] << 8 | m[o + 1]);
        uint32_t ttl = uint32_t(m[o + 4]) << 24 | uint32_t(m[o + 5]) << 16 | uint32_t(m[o + 6]) << 8 | m[o + 7];
        uint16_t len = uint16_t(m[o + 8] << 8 | m[o + 9]);
        o += 10;
        if (o + len > m.size()) return out;
        if (type == 1 && len == 4) {
            out.push_back(std::to_string(m[o]) + "." + std::to_string(m[o + 1]) + "." + std::to_string(m[o + 2]) +
                          "." + std::to_string(m[o + 3]));
            if (min_ttl && ttl < *min_ttl) *min_ttl = ttl;
        }
        o += len;
    }
    return out;
}

} // namespace aisid::test
