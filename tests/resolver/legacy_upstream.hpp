// The upstream of the resolver's integration tests: Unbound serving
// legacy.example. (static: anything else in it is NXDOMAIN, with the SOA's
// negative TTL 120) and refusing every other name.
#pragma once

#include "unbound.hpp"

#include <string>
#include <vector>

namespace aisid::test {

/// www.legacy.example. A 192.0.2.10 and AAAA 2001:db8:1::10 (TTL 300),
/// short.legacy.example. A 192.0.2.11 (TTL 2), and the records in `more`.
inline UnboundOptions legacy_upstream(const std::vector<std::string> &more = {}) {
    return UnboundOptions()
        .local_zone("legacy.example.")
        .local_data("legacy.example. 300 IN SOA ns.legacy.example. admin.legacy.example. 1 3600 600 86400 120")
        .local_data("www.legacy.example. 300 IN A 192.0.2.10")
        .local_data("www.legacy.example. 300 IN AAAA 2001:db8:1::10")
        .local_data("short.legacy.example. 2 IN A 192.0.2.11")
        .local_data(more);
}

} // namespace aisid::test
