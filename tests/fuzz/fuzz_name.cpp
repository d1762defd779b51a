// The name parsers: presentation text and wire form into WireName, then the
// SPEC §2 service-name grammar and lookup against a small AISID zone.
#include "aisid/core/zone_set.hpp"

#include <cstring>
#include <string>

using namespace aisid;

static const ZoneSet &zones() {
    static ZoneSet set = [] {
        ZoneSet s;
        auto z = load_zone_text(R"($ORIGIN ai.example.
@ SOA ns admin 1 3600 600 86400 60
_aisid TXT "v=aisid1" "prefix=2001:db8:abcd:12::/64"
image._object TXT "code=1"
detection._function TXT "code=2"
yolo._method TXT "code=1"
yolo.detection.image AAAA 2001:db8:abcd:12:1:2:1:0
yolo.detection.image SVCB 1 yolo.provider.example. port=8443
)",
                                "fuzz");
        if (z) s.add(*z);
        return s;
    }();
    return set;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const ZoneSet &zs = zones();
    WireName n;
    std::string_view text(reinterpret_cast<const char *>(data), size);
    if (name_from_text(text, n)) {
        // A parsed name must print and re-parse to itself.
        std::string back = name_to_text(n.wire());
        WireName again;
        if (!name_from_text(back, again) || again.wire() != n.wire()) __builtin_trap();
        Match m = zs.lookup(n);
        if (m.kind == Match::Kind::Synthesized && m.aisid.prefix() != m.zone->prefix()) __builtin_trap();
    }
    size_t pos = 0;
    if (name_from_wire(data, size, pos, n)) {
        if (pos > size) __builtin_trap();
        zs.lookup(n);
        Aisid a;
        if (parse_ip6_arpa(n, a)) {
            std::string out;
            zs.reverse(a, out);
        }
    }
    if (size == 16) {
        std::array<uint8_t, 16> b;
        std::memcpy(b.data(), data, 16);
        std::string out;
        zs.reverse(Aisid(b), out);
    }
    return 0;
}
