// Wire messages the fuzz targets keep away from ldns (docs/reliability.md §1).
#pragma once

#include "aisid/resolver/query_wire.hpp"

#include <cstddef>
#include <cstdint>

namespace aisid::fuzz {

/// ldns_wire2pkt leaks the first TSIG record of a message with two
/// (ldns_pkt_set_tsig does not free the one it replaces): such messages are
/// not given to ldns, or LeakSanitizer would report ldns's leak as ours.
inline bool two_tsigs(const uint8_t *m, size_t n) {
    using namespace aisid::resolver;
    if (n < kHeaderLen) return false;
    WireReader r(m, n, kHeaderLen);
    unsigned qd = rd16(m + 4), rrs = unsigned(rd16(m + 6)) + rd16(m + 8) + rd16(m + 10), tsigs = 0;
    for (unsigned i = 0; i < qd && r.ok(); ++i) r.skip_name(), r.skip(4);
    for (unsigned i = 0; i < rrs && r.ok(); ++i) {
        r.skip_name();
        tsigs += r.u16() == 250;
        r.skip(6);
        r.skip(r.u16());
    }
    return tsigs >= 2;
}

} // namespace aisid::fuzz
