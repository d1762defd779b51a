// ldns as the reference reader for the fuzz targets of sdk/transport (which
// must not include resolver/ headers, unlike ldns_quirks.hpp).
#pragma once

#include <ldns/ldns.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace aisid::fuzz {

using PktPtr = std::unique_ptr<ldns_pkt, decltype(&ldns_pkt_free)>;

/// Messages ldns cannot be the reference for, which are not given to it:
///  - two TSIG or two OPT records: ldns_wire2pkt leaks the first (the setter
///    does not free the one it replaces), and LeakSanitizer would report it;
///    likewise a TSIG or OPT followed by a record ldns cannot read;
///  - an RR whose RDATA ldns reads to another length than its RDLENGTH
///    (ldns_wire2rdf stops after the type's last field and leaves the rest to
///    be read as the next record): ldns then reads another message.
inline bool ldns_unreliable(const uint8_t *m, size_t n) {
    if (n < 12) return false;
    size_t o = 12;
    auto skip_name = [&]() -> bool {
        for (int i = 0; i < 128 && o < n; ++i) {
            uint8_t l = m[o];
            if (l == 0) return ++o, true;
            if ((l & 0xc0) == 0xc0) return o += 2, o <= n;
            o += 1 + l;
        }
        return false;
    };
    unsigned qd = unsigned(m[4] << 8 | m[5]);
    unsigned rrs = unsigned(m[6] << 8 | m[7]) + unsigned(m[8] << 8 | m[9]) + unsigned(m[10] << 8 | m[11]);
    for (unsigned i = 0; i < qd; ++i)
        if (!skip_name() || (o += 4) > n) return false;
    // A message ldns gives up on after a TSIG or an OPT leaks that record too.
    unsigned tsig = 0, opt = 0;
    for (unsigned i = 0; i < rrs; ++i) {
        if (!skip_name() || o + 10 > n) return tsig + opt > 0;
        uint16_t type = uint16_t(m[o] << 8 | m[o + 1]);
        tsig += type == 250;
        opt += type == 41;
        size_t rdlen = size_t(m[o + 8] << 8 | m[o + 9]), pos = o + 8;
        if (o + 10 + rdlen > n) return tsig + opt > 0;
        ldns_rr *rr = ldns_rr_new();
        if (!rr) return true;
        ldns_rr_set_type(rr, ldns_rr_type(type));
        ldns_status st = ldns_wire2rdf(rr, m, n, &pos);
        ldns_rr_free(rr);
        if (st == LDNS_STATUS_OK && pos != o + 10 + rdlen) return true;
        o += 10 + rdlen;
    }
    return tsig >= 2 || opt >= 2;
}

/// The message as ldns reads it, or null.
inline PktPtr ldns_parse(const uint8_t *m, size_t n) {
    ldns_pkt *p = nullptr;
    if (ldns_unreliable(m, n)) return PktPtr(nullptr, ldns_pkt_free);
    if (ldns_wire2pkt(&p, m, n) != LDNS_STATUS_OK) {
        if (p) ldns_pkt_free(p);
        p = nullptr;
    }
    return PktPtr(p, ldns_pkt_free);
}

} // namespace aisid::fuzz
