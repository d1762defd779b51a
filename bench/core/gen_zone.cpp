#include "gen_zone.hpp"

#include <cmath>
#include <cstdio>

namespace aisid::bench {

unsigned cube_side(size_t n) {
    unsigned k = static_cast<unsigned>(std::ceil(std::cbrt(static_cast<double>(n))));
    while (static_cast<size_t>(k) * k * k < n) ++k;
    return k;
}

std::string service_name(size_t n, size_t i) {
    unsigned k = cube_side(n);
    size_t o = i / (size_t{k} * k), f = (i / k) % k, m = i % k;
    char buf[64];
    std::snprintf(buf, sizeof buf, "m%zu.f%zu.o%zu", m + 1, f + 1, o + 1);
    return buf;
}

std::string generate_zone(size_t n) {
    unsigned k = cube_side(n);
    std::string z;
    z.reserve(n * 110 + 4096);
    z += "$ORIGIN bench.example.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\n";
    z += "_aisid TXT \"v=aisid1\" \"prefix=2001:db8:beef:1::/64\"\n";
    char buf[160];
    for (const char *dim : {"o", "f", "m"})
        for (unsigned i = 1; i <= k; ++i) {
            const char *label = dim[0] == 'o' ? "_object" : dim[0] == 'f' ? "_function" : "_method";
            std::snprintf(buf, sizeof buf, "%s%u.%s TXT \"code=%u\"\n", dim, i, label, i);
            z += buf;
        }
    for (size_t i = 0; i < n; ++i) {
        size_t o = i / (size_t{k} * k), f = (i / k) % k, m = i % k;
        std::snprintf(buf, sizeof buf, "m%zu.f%zu.o%zu AAAA 2001:db8:beef:1:%zx:%zx:%zx:0\n", m + 1, f + 1, o + 1,
                      o + 1, f + 1, m + 1);
        z += buf;
        std::snprintf(buf, sizeof buf, "m%zu.f%zu.o%zu SVCB 1 s%zu.legacy.example. port=8443\n", m + 1, f + 1, o + 1, i);
        z += buf;
    }
    return z;
}

} // namespace aisid::bench
