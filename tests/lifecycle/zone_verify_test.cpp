// zone_verify without signing tools: trust anchor files, and the verdicts a
// zone gets before any signature is looked at (the signed cases, made with
// ldns-signzone at test time, are in lifecycle_mirror_test.cpp).
#include "proc.hpp"  // first: ldns's headers (below) define false and true as macros
#include "lifecycle_support.hpp"
#include "aisid/authority/zone_verify.hpp"

#include <doctest/doctest.h>

using namespace aisid::resolver;
using namespace aisid::proto;
using aisid::test::TempDir;
using aisid::test::write_file;

namespace {

const char *kDs = "ai.example. 3600 IN DS 44703 13 2 36ee8a47df41e869797148e1fe75f9dd08fb6fdb7761d47beefe6fbdb75e1bbf\n";

std::string origin(const char *text) {
    std::string w;
    REQUIRE(wire_from_text(text, w));
    return w;
}

} // namespace

TEST_CASE("trust anchor: DS or DNSKEY records of the zone - anything else is a clear error") {
    TempDir d;
    std::string f = d.file("ai.ds");
    write_file(f, std::string("; from ldns-keygen\n") + kDs);
    auto a = load_trust_anchor("ai.example", f);
    REQUIRE(a);
    CHECK(a->origin_wire == origin("ai.example."));
    CHECK(a->key_tags == std::vector<uint16_t>{44703});

    const std::vector<std::pair<std::string, std::string>> bad = {
        {"ai.example. 3600 IN A 192.0.2.1\n", "ai.ds:1: a trust anchor is DS or DNSKEY records"},
        {"other.example. 3600 IN DS 44703 13 2 36ee8a47df41e869797148e1fe75f9dd08fb6fdb7761d47beefe6fbdb75e1bbf\n",
         "the record is not for ai.example."},
        {"; nothing\n", "no DS or DNSKEY record"},
        {"ai.example. IN DS not-a-key-tag\n", "ai.ds:1: "},
    };
    for (const auto &item : bad) {
        CAPTURE(item.first);
        write_file(f, item.first);
        auto r = load_trust_anchor("ai.example", f);
        REQUIRE(!r);
        CHECK_MESSAGE(r.error().find(item.second) != std::string::npos, r.error());
    }
    CHECK(load_trust_anchor("ai.example", d.file("missing.ds")).error().find("No such file") != std::string::npos);

    write_file(f, kDs);
    auto p = ZonePolicy::make(false, {"ai.example=" + f});
    REQUIRE(p);
    CHECK((*p)->active(origin("ai.example.")));
    CHECK(!(*p)->active(origin("other.example.")));
    CHECK(ZonePolicy::make(false, {"ai.example"}).error().find("want ZONE=FILE") != std::string::npos);
    CHECK(ZonePolicy::make(false, {"ai.example=" + f, "ai.example=" + f}).error().find("has an anchor already") !=
          std::string::npos);
}

TEST_CASE("verdicts before signatures: parse errors - $INCLUDE - the wrong zone - no ZONEMD when required") {
    const std::string zone = aisid::test::kTestZone;
    const std::string ai = origin("ai.example.");
    VerifyPolicy lax, strict;
    strict.require_zonemd = true;

    ZoneVerdict v = verify_zone_text(zone, ai, lax);
    CHECK(v.ok);
    CHECK(!v.verified());  // nothing to verify: no ZONEMD, no anchor
    CHECK(v.serial == 2026112501);

    v = verify_zone_text(zone, ai, strict);
    CHECK(!v.ok);
    CHECK(v.reason == "no_zonemd");

    v = verify_zone_text(zone, origin("other.example."), lax);
    CHECK(v.reason == "wrong_zone");
    CHECK(v.message.find("the data is zone ai.example., not other.example.") != std::string::npos);

    CHECK(verify_zone_text("", ai, lax).reason == "parse");
    CHECK(verify_zone_text("@ IN SOA garbage\n", ai, lax).reason == "parse");
    // A fetched zone reads nothing from this host's disk.
    CHECK(verify_zone_text("$INCLUDE /etc/passwd\n" + zone, ai, lax).reason == "parse");

    // A ZONEMD with a digest that does not match the data.
    std::string bad = zone + "@ 300 IN ZONEMD 2026112501 1 1 " + std::string(96, 'a') + "\n";
    v = verify_zone_text(bad, ai, strict);
    CHECK(v.reason == "zonemd_mismatch");
    // Only SIMPLE with SHA-384 counts (RFC 8976 §2.2: SHA-512 is allowed, this verifier asks for SHA-384).
    std::string sha512 = zone + "@ 300 IN ZONEMD 2026112501 1 2 " + std::string(128, 'a') + "\n";
    CHECK(verify_zone_text(sha512, ai, strict).reason == "zonemd_unsupported");

    // The same answers through a loaded zone's records (transfers, files).
    auto z = aisid::load_zone_text(zone, "ai.example.zone");
    REQUIRE(z);
    CHECK(verify_zone_records(zone_records(**z), ai, strict).reason == "no_zonemd");
    CHECK(verify_zone_records(zone_records(**z), ai, lax).ok);

    // The line written at the top of a verified state file.
    ZoneVerdict ok;
    ok.ok = true;
    ok.origin_wire = ai;
    ok.serial = 7;
    ok.zonemd = true;
    ok.key_tag = 44703;
    CHECK(verified_line(ok, 0, "/etc/aisid/ai example.ds", "https://m1.example/z") ==
          "; aisid-verified: time=1970-01-01T00:00:00Z zone=ai.example. serial=7 zonemd=sha384 key-tag=44703 "
          "anchor=/etc/aisid/ai_example.ds source=https://m1.example/z\n");
}
