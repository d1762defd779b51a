// Helpers for the resolver core's unit tests: queries built by hand, replies
// read back with ldns so expectations are written as zone-file text.
#pragma once

#include "aisid/core/ldns_ptr.hpp"
#include "dns_query.hpp"
#include "aisid/resolver/query_core.hpp"
#include "aisid/core/zone.hpp"

#include <arpa/inet.h>
#include <algorithm>
#include <ldns/ldns.h>

#include <memory>
#include <string>
#include <vector>

namespace aisid::resolver::test {

using aisid::test::wire_name;

inline std::string query(uint16_t id, const std::string &name, uint16_t type, bool edns = true, uint16_t flags = 0x0100,
                         uint16_t bufsize = 1232, bool do_bit = false) {
    return aisid::test::build_query(id, name, type, edns, flags, bufsize, do_bit);
}

inline sockaddr_storage peer(const char *ip) {
    sockaddr_storage ss{};
    if (std::string(ip).find(':') != std::string::npos) {
        auto &s6 = reinterpret_cast<sockaddr_in6 &>(ss);
        s6.sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &s6.sin6_addr);
    } else {
        auto &s4 = reinterpret_cast<sockaddr_in &>(ss);
        s4.sin_family = AF_INET;
        inet_pton(AF_INET, ip, &s4.sin_addr);
    }
    return ss;
}

inline LdnsPktPtr parse(const uint8_t *b, size_t n) {
    ldns_pkt *p = nullptr;
    if (ldns_wire2pkt(&p, b, n) != LDNS_STATUS_OK) return nullptr;
    return LdnsPktPtr(p);
}

/// Records of a section as sorted zone-file lines ("name ttl IN TYPE rdata").
inline std::vector<std::string> section(ldns_rr_list *l) {
    std::vector<std::string> out;
    for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); ++i) {
        char *s = ldns_rr2str(ldns_rr_list_rr(l, i));
        std::string t = s;
        free(s);
        while (!t.empty() && t.back() == '\n') t.pop_back();
        for (auto &c : t)
            if (c == '\t') c = ' ';
        out.push_back(t);
    }
    std::sort(out.begin(), out.end());
    return out;
}

/// An upstream answer built with ldns: the question of `q`, records as text.
inline std::string upstream_answer(uint16_t id, const std::string &qname, uint16_t qtype, ldns_pkt_rcode rcode,
                                   const std::vector<std::string> &answer, const std::vector<std::string> &authority,
                                   bool tc = false, bool edns = true) {
    ldns_pkt *p = nullptr;
    ldns_pkt_query_new_frm_str(&p, qname.c_str(), ldns_rr_type(qtype), LDNS_RR_CLASS_IN, LDNS_RD);
    ldns_pkt_set_id(p, id);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_ra(p, true);
    ldns_pkt_set_tc(p, tc);
    ldns_pkt_set_rcode(p, uint8_t(rcode));
    for (const auto &t : answer) {
        ldns_rr *rr = nullptr;
        ldns_rr_new_frm_str(&rr, t.c_str(), 0, nullptr, nullptr);
        ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
    }
    for (const auto &t : authority) {
        ldns_rr *rr = nullptr;
        ldns_rr_new_frm_str(&rr, t.c_str(), 0, nullptr, nullptr);
        ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, rr);
    }
    if (edns) ldns_pkt_set_edns_udp_size(p, 1232);
    uint8_t *buf = nullptr;
    size_t n = 0;
    ldns_pkt2wire(&buf, p, &n);
    std::string s(reinterpret_cast<char *>(buf), n);
    free(buf);
    ldns_pkt_free(p);
    return s;
}

inline const uint8_t *u8(const std::string &s) { return reinterpret_cast<const uint8_t *>(s.data()); }

} // namespace aisid::resolver::test
