// SPEC §2: the resolution order and the reverse, table-driven.
#include "test_zone.hpp"
#include "aisid/core/zone_set.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace aisid;

namespace {

// The test zone, with more terms and services.
const std::string kZone = std::string(aisid::test::kTestZone) + R"(text._object         TXT  "code=2"
generation._function TXT  "code=4"
resnet._method       TXT  "code=2"
llama._method        TXT  "code=5"
llama.generation.text AAAA 2001:db8:abcd:12:2:4:5:0
notes.generation.text TXT "explicit records win over synthesis"
generation.text      TXT  "also explicit"
)";

ZoneSet make_set() {
    ZoneSet s;
    auto z = load_zone_text(kZone, "t.zone");
    REQUIRE_MESSAGE(z, (z ? "" : z.error().to_string()));
    s.add(*z);
    auto sub = load_zone_text("$ORIGIN sub.ai.example.\n@ SOA ns admin 1 2 3 4 5\nwww A 192.0.2.1\n", "sub.zone");
    REQUIRE(sub);
    s.add(*sub);
    return s;
}

Match look(const ZoneSet &s, const char *name) {
    WireName n;
    REQUIRE(name_from_text(name, n));
    return s.lookup(n);
}

} // namespace

TEST_CASE("resolution order: explicit, synthesized, NXDOMAIN, legacy") {
    ZoneSet s = make_set();
    using K = Match::Kind;
    struct Case {
        const char *name;
        K kind;
        const char *aisid;  // for service or synthesized answers
    } cases[] = {
        // Rule 1: records at the exact name.
        {"yolo.detection.image.ai.example", K::Explicit, "2001:db8:abcd:12:1:2:1:0"},
        {"YOLO.Detection.Image.AI.example.", K::Explicit, "2001:db8:abcd:12:1:2:1:0"},
        {"ns.ai.example", K::Explicit, nullptr},
        {"_aisid.ai.example", K::Explicit, nullptr},
        {"ai.example", K::Explicit, nullptr},
        {"image._object.ai.example", K::Explicit, nullptr},
        {"_object.ai.example", K::Explicit, nullptr},  // empty non-terminal: exists, no records
        {"generation.text.ai.example", K::Explicit, nullptr},  // a TXT there wins over synthesis
        // Rule 2: synthesized from the codebook and the registered services.
        {"p5000.yolo.detection.image.ai.example", K::Synthesized, "2001:db8:abcd:12:1:2:1:1388"},
        {"detection.image.ai.example", K::Synthesized, "2001:db8:abcd:12:1:2::"},
        {"p5000.detection.image.ai.example", K::Synthesized, "2001:db8:abcd:12:1:2:0:1388"},
        {"image.ai.example", K::Synthesized, "2001:db8:abcd:12:1::"},
        {"p1.image.ai.example", K::Synthesized, "2001:db8:abcd:12:1::1"},
        {"p65535.text.ai.example", K::Synthesized, "2001:db8:abcd:12:2::ffff"},
        {"p10.llama.generation.text.ai.example", K::Synthesized, "2001:db8:abcd:12:2:4:5:a"},
        // Rule 3: NXDOMAIN.
        {"resnet.detection.image.ai.example", K::NxDomain, nullptr},    // terms known, not registered
        {"bert.detection.image.ai.example", K::NxDomain, nullptr},      // not a term
        {"generation.image.ai.example", K::NxDomain, nullptr},          // no image generation registered
        {"detection.text.ai.example", K::NxDomain, nullptr},
        {"any.image.ai.example", K::NxDomain, nullptr},
        {"p0.image.ai.example", K::NxDomain, nullptr},
        {"p65536.image.ai.example", K::NxDomain, nullptr},
        {"p05000.image.ai.example", K::NxDomain, nullptr},
        {"p5000.ai.example", K::NxDomain, nullptr},
        {"p5000.p5000.image.ai.example", K::NxDomain, nullptr},
        {"x.p5000.yolo.detection.image.ai.example", K::NxDomain, nullptr},  // too many labels
        {"image.yolo.detection.ai.example", K::NxDomain, nullptr},          // wrong order
        {"video.ai.example", K::NxDomain, nullptr},
        // Outside every local zone: legacy DNS.
        {"www.example.com", K::NotLocal, nullptr},
        {"example", K::NotLocal, nullptr},
        {"ai.example.com", K::NotLocal, nullptr},
    };
    for (const Case &c : cases) {
        std::string name = c.name;
        CAPTURE(name);
        Match m = look(s, c.name);
        CHECK(m.kind == c.kind);
        if (c.aisid) CHECK(m.aisid.to_string() == std::string(c.aisid));
    }
    // The registered service's own name carries its service entry and codes.
    Match svc = look(s, "yolo.detection.image.ai.example");
    REQUIRE(svc.service);
    CHECK(svc.parsed.code[0] == 1);
    CHECK(svc.parsed.code[1] == 2);
    CHECK(svc.parsed.code[2] == 1);
    CHECK(look(s, "ns.ai.example").node->find(kTypeAAAA));
    CHECK(look(s, "_object.ai.example").node == nullptr);
}

TEST_CASE("the closest enclosing zone answers") {
    ZoneSet s = make_set();
    Match m = look(s, "www.sub.ai.example");
    REQUIRE(m.kind == Match::Kind::Explicit);
    CHECK(m.zone->origin_text() == "sub.ai.example.");
    CHECK(look(s, "nope.sub.ai.example").kind == Match::Kind::NxDomain);
    CHECK(look(s, "nope.sub.ai.example").zone->origin_text() == "sub.ai.example.");
    // Replacing a zone by origin keeps one copy.
    auto again = load_zone_text("$ORIGIN sub.ai.example.\n@ SOA ns admin 2 2 3 4 5\n", "sub2.zone");
    REQUIRE(again);
    s.add(*again);
    CHECK(s.zones().size() == 2);
    CHECK(look(s, "www.sub.ai.example").kind == Match::Kind::NxDomain);
}

TEST_CASE("reverse: address to service name") {
    ZoneSet s = make_set();
    struct Case {
        const char *addr;
        const char *name;  // nullptr: NXDOMAIN
    } cases[] = {
        {"2001:db8:abcd:12:1:2:1:1388", "p5000.yolo.detection.image.ai.example."},
        {"2001:db8:abcd:12:1:2:1:0", "yolo.detection.image.ai.example."},
        {"2001:db8:abcd:12:1:2::", "detection.image.ai.example."},
        {"2001:db8:abcd:12:1::", "image.ai.example."},
        {"2001:db8:abcd:12:2:0:0:64", "p100.text.ai.example."},
        {"2001:db8:abcd:12:9:2:1:0", nullptr},   // object code not in the codebook
        {"2001:db8:abcd:12:1:2:2:0", nullptr},   // resnet: a term, but not registered here
        {"2001:db8:abcd:12:1:0:1:0", nullptr},   // a method without a function has no name
        {"2001:db8:abcd:12::", nullptr},         // no object
        {"2001:db8:abcd:13:1:2:1:0", nullptr},   // another prefix
    };
    for (const Case &c : cases) {
        std::string addr = c.addr;
        CAPTURE(addr);
        std::string out;
        bool ok = s.reverse(*Aisid::parse(c.addr), out);
        CHECK(ok == (c.name != nullptr));
        if (c.name) CHECK(out == c.name);
    }
}

TEST_CASE("ip6.arpa names parse to addresses") {
    WireName n;
    REQUIRE(name_from_text("8.8.3.1.1.0.0.0.2.0.0.0.1.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.", n));
    Aisid a;
    REQUIRE(parse_ip6_arpa(n, a));
    CHECK(a.to_string() == "2001:db8:abcd:12:1:2:1:1388");
    REQUIRE(name_from_text("8.8.3.1.ip6.arpa.", n));
    CHECK_FALSE(parse_ip6_arpa(n, a));
    REQUIRE(name_from_text("g.8.3.1.1.0.0.0.2.0.0.0.1.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.", n));
    CHECK_FALSE(parse_ip6_arpa(n, a));
}
