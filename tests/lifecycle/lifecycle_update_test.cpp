// RFC 2136 UPDATE logic on zones, no network: prerequisites, the SPEC §3
// lifecycle through ZoneBuilder, serials, diffs.
#include "lifecycle_support.hpp"
#include "aisid/proto/update.hpp"
#include "aisid/proto/xfr.hpp"
#include "aisid/authority/xfr_out.hpp"
#include "aisid/core/zone_builder.hpp"

#include <doctest/doctest.h>

using namespace aisid;
using namespace aisid::proto;
using aisid::resolver::axfr_stream;
using aisid::resolver::ixfr_stream;
using lifecycle_test::bare;
using aisid::test::kTestZone;
using lifecycle_test::rr;

namespace {

ZonePtr base() {
    auto z = load_zone_text(kTestZone, "test");
    REQUIRE_MESSAGE(z.has_value(), (z ? "" : z.error().to_string()));
    return *z;
}

bool has(const Zone &z, const std::string &text) {
    Record want = rr(text);
    for (const Record &r : records_at(z, want.owner))
        if (r.same_rr(want)) return true;
    return false;
}

} // namespace

TEST_CASE("update: define, register, migrate, decommission") {
    ZonePtr z = base();
    // define: a new method term with a free code
    auto r = apply_update(*z, {bare("resnet._method.ai.example.", kTypeTXT, proto::kClassNONE)},
                          {rr("resnet._method.ai.example. 300 IN TXT \"code=2\"")});
    REQUIRE_MESSAGE(r.rcode == kRcodeNoError, r.why);
    REQUIRE(r.changed);
    CHECK(r.zone->serial() == 2026112502);
    CHECK(r.zone->dim(Dim::method).code("resnet") == 2);
    CHECK(r.diff.from == 2026112501);
    CHECK(r.diff.to == 2026112502);
    CHECK(r.diff.add.size() == 2);
    z = r.zone;

    // register
    r = apply_update(*z, {bare("resnet.detection.image.ai.example.", kTypeANY, proto::kClassNONE)},
                     {rr("resnet.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:2:0"),
                      rr("resnet.detection.image.ai.example. 300 IN SVCB 1 resnet.provider.example. port=443")});
    REQUIRE_MESSAGE(r.rcode == kRcodeNoError, r.why);
    z = r.zone;
    CHECK(z->service(1, 2, 2) != nullptr);
    CHECK(z->service_count() == 2);

    // migrate: the SVCB moves, the AAAA stays
    r = apply_update(*z, {bare("resnet.detection.image.ai.example.", kTypeAAAA, proto::kClassANY)},
                     {bare("resnet.detection.image.ai.example.", kTypeSVCB, proto::kClassANY),
                      rr("resnet.detection.image.ai.example. 300 IN SVCB 1 other.provider.example. port=8443")});
    REQUIRE_MESSAGE(r.rcode == kRcodeNoError, r.why);
    z = r.zone;
    CHECK(has(*z, "resnet.detection.image.ai.example. 300 IN SVCB 1 other.provider.example. port=8443"));
    CHECK_FALSE(has(*z, "resnet.detection.image.ai.example. 300 IN SVCB 1 resnet.provider.example. port=443"));
    CHECK(has(*z, "resnet.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:2:0"));

    // decommission
    r = apply_update(*z, {}, {bare("resnet.detection.image.ai.example.", kTypeANY, proto::kClassANY)});
    REQUIRE_MESSAGE(r.rcode == kRcodeNoError, r.why);
    z = r.zone;
    CHECK(z->service(1, 2, 2) == nullptr);
    CHECK(z->service_count() == 1);
    CHECK(records_at(*z, rr("resnet.detection.image.ai.example. 300 IN A 192.0.2.1").owner).empty());
    CHECK(z->serial() == 2026112505);
}

TEST_CASE("update: SPEC §3 conflicts are refused and change nothing") {
    ZonePtr z = base();
    SUBCASE("duplicate term") {
        auto r = apply_update(*z, {}, {rr("yolo._method.ai.example. 300 IN TXT \"code=7\"")});
        CHECK(r.rcode == kRcodeRefused);
        CHECK(r.why.find("already defined") != std::string::npos);
        CHECK_FALSE(r.zone);
    }
    SUBCASE("duplicate code") {
        auto r = apply_update(*z, {}, {rr("vit._method.ai.example. 300 IN TXT \"code=1\"")});
        CHECK(r.rcode == kRcodeRefused);
        CHECK(r.why.find("already used") != std::string::npos);
    }
    SUBCASE("duplicate registration") {
        auto r = apply_update(*z, {}, {rr("yolo.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:1:0")});
        CHECK(r.rcode == kRcodeRefused);
    }
    SUBCASE("an AAAA that is not the service's AISID") {
        auto r = apply_update(*z, {}, {bare("yolo.detection.image.ai.example.", kTypeANY, proto::kClassANY)});
        REQUIRE(r.rcode == kRcodeNoError);
        REQUIRE(r.zone);
        auto r2 = apply_update(*r.zone, {}, {rr("yolo.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:9:0")});
        CHECK(r2.rcode == kRcodeRefused);
        CHECK(r2.why.find("disagrees") != std::string::npos);
    }
    SUBCASE("deleting a term a service uses") {
        auto r = apply_update(*z, {}, {bare("yolo._method.ai.example.", kTypeTXT, proto::kClassANY)});
        CHECK(r.rcode == kRcodeRefused);
        CHECK(r.why.find("in use") != std::string::npos);
    }
    SUBCASE("deleting the _aisid record") {
        auto r = apply_update(*z, {}, {bare("_aisid.ai.example.", kTypeTXT, proto::kClassANY)});
        CHECK(r.rcode == kRcodeRefused);
    }
    SUBCASE("an invalid term") {
        auto r = apply_update(*z, {}, {rr("p100._method.ai.example. 300 IN TXT \"code=9\"")});
        CHECK(r.rcode == kRcodeRefused);
    }
    CHECK(z->serial() == 2026112501);
    CHECK(z->dim(Dim::method).code("yolo") == 1);
}

TEST_CASE("update: RFC 2136 §3.2 prerequisites") {
    ZonePtr z = base();
    auto add = std::vector<Record>{rr("vit._method.ai.example. 300 IN TXT \"code=3\"")};
    CHECK(apply_update(*z, {bare("yolo._method.ai.example.", kTypeTXT, proto::kClassNONE)}, add).rcode ==
          kRcodeYxRrset);
    CHECK(apply_update(*z, {bare("yolo.detection.image.ai.example.", kTypeANY, proto::kClassNONE)}, add).rcode ==
          kRcodeYxDomain);
    CHECK(apply_update(*z, {bare("nope.ai.example.", kTypeANY, proto::kClassANY)}, add).rcode == kRcodeNxDomain);
    CHECK(apply_update(*z, {bare("vit._method.ai.example.", kTypeTXT, proto::kClassANY)}, add).rcode ==
          kRcodeNxRrset);
    Record wrong_ttl = bare("yolo._method.ai.example.", kTypeTXT, proto::kClassANY);
    wrong_ttl.ttl = 5;
    CHECK(apply_update(*z, {wrong_ttl}, add).rcode == kRcodeFormErr);
    CHECK(apply_update(*z, {bare("x.other.example.", kTypeANY, proto::kClassANY)}, add).rcode == kRcodeNotZone);
    // value-dependent: exact set
    Record v = rr("yolo._method.ai.example. 0 IN TXT \"code=1\"");
    v.ttl = 0;
    CHECK(apply_update(*z, {v}, add).rcode == kRcodeNoError);
    Record w = rr("yolo._method.ai.example. 0 IN TXT \"code=2\"");
    w.ttl = 0;
    CHECK(apply_update(*z, {w}, add).rcode == kRcodeNxRrset);
    // prerequisites pass for a registered service's AAAA (held in the service index)
    CHECK(apply_update(*z, {bare("yolo.detection.image.ai.example.", kTypeAAAA, proto::kClassANY)}, add).rcode ==
          kRcodeNoError);
}

TEST_CASE("update: apex SOA and NS survive deletes - a no-op keeps the serial") {
    ZonePtr z = base();
    auto r = apply_update(*z, {}, {bare("ai.example.", kTypeANY, proto::kClassANY)});
    REQUIRE(r.rcode == kRcodeNoError);
    // The _aisid TXT is not at the apex, so nothing at the apex but SOA/NS: no change.
    CHECK_FALSE(r.changed);
    r = apply_update(*z, {}, {bare("ai.example.", kTypeNS, proto::kClassANY)});
    CHECK_FALSE(r.changed);
    r = apply_update(*z, {}, {bare("nothing.ai.example.", kTypeA, proto::kClassANY)});
    CHECK(r.rcode == kRcodeNoError);
    CHECK_FALSE(r.changed);
}

TEST_CASE("update: an explicit newer SOA serial is used - serials wrap per RFC 1982") {
    ZonePtr z = base();
    auto soa = [](uint32_t s) {
        return rr("ai.example. 300 IN SOA ns.ai.example. admin.ai.example. " + std::to_string(s) + " 3600 600 86400 60");
    };
    // 2^31 or more ahead is not "newer" (RFC 1982 §3.2): ignored, the serial just moves on by one.
    auto r0 = apply_update(*z, {}, {soa(4294967295u), rr("vit._method.ai.example. 300 IN TXT \"code=3\"")});
    REQUIRE(r0.rcode == kRcodeNoError);
    CHECK(r0.zone->serial() == 2026112502u);
    auto r = apply_update(*z, {}, {soa(4173596148u), rr("vit._method.ai.example. 300 IN TXT \"code=3\"")});
    REQUIRE(r.rcode == kRcodeNoError);
    CHECK(r.zone->serial() == 4173596148u);
    r = apply_update(*r.zone, {}, {soa(4294967295u)});
    REQUIRE(r.changed);
    CHECK(r.zone->serial() == 4294967295u);
    auto r2 = apply_update(*r.zone, {}, {rr("x._method.ai.example. 300 IN TXT \"code=4\"")});
    REQUIRE(r2.rcode == kRcodeNoError);
    CHECK(r2.zone->serial() == 1u);
    CHECK(serial_gt(1u, 4294967295u));
    CHECK_FALSE(serial_gt(4294967295u, 1u));
}

TEST_CASE("update: a diff replays to the same zone (journal replay, IXFR)") {
    ZonePtr z = base();
    auto r = apply_update(*z, {}, {rr("vit._method.ai.example. 300 IN TXT \"code=3\""),
                                   rr("vit.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:3:0"),
                                   rr("vit.detection.image.ai.example. 300 IN SVCB 1 vit.provider.example.")});
    REQUIRE_MESSAGE(r.rcode == kRcodeNoError, r.why);
    ZonePtr replayed;
    std::string why;
    REQUIRE_MESSAGE(apply_diff(*z, r.diff, replayed, why), why);
    CHECK(zone_to_text(*replayed) == zone_to_text(*r.zone));
    // and it refuses to apply to the wrong serial
    CHECK_FALSE(apply_diff(*r.zone, r.diff, replayed, why));
}

TEST_CASE("xfr: zone text round-trips - transfer streams parse") {
    ZonePtr z = base();
    auto again = load_zone_text(zone_to_text(*z), "again");
    REQUIRE_MESSAGE(again.has_value(), (again ? "" : again.error().to_string()));
    CHECK(zone_to_text(**again) == zone_to_text(*z));
    CHECK((*again)->service_count() == 1);

    auto recs = zone_records(*z);
    auto full = parse_xfr_stream(axfr_stream(recs), false, std::nullopt, false);
    REQUIRE(full);
    CHECK(full->kind == XfrResult::Kind::full);
    CHECK(full->full.size() == recs.size());

    auto r = apply_update(*z, {}, {rr("vit._method.ai.example. 300 IN TXT \"code=3\"")});
    REQUIRE(r.changed);
    Record soa = r.diff.add.front();
    auto inc = parse_xfr_stream(ixfr_stream(soa, {&r.diff}), true, 2026112501u, false);
    REQUIRE(inc);
    CHECK(inc->kind == XfrResult::Kind::incremental);
    REQUIRE(inc->diffs.size() == 1);
    CHECK(inc->diffs[0].add.size() == 2);
    auto partial = ixfr_stream(soa, {&r.diff});
    partial.pop_back();
    CHECK_FALSE(parse_xfr_stream(partial, true, 2026112501u, false));
    auto up = parse_xfr_stream({soa}, true, soa_serial(soa.rdata), true);
    REQUIRE(up);
    CHECK(up->kind == XfrResult::Kind::up_to_date);
}

TEST_CASE("update: a codebook TXT with two codes is refused - in a zone file too") {
    ZonePtr z = base();
    UpdateResult u = apply_update(*z, {}, {rr("vit._method.ai.example. 300 IN TXT \"code=600\" \"code=601\"")});
    CHECK(u.rcode == kRcodeRefused);
    CHECK_MESSAGE(u.why.find("more than one") != std::string::npos, u.why);
    CHECK(z->dim(Dim::method).code("vit") == 0);
    auto f = load_zone_text(std::string(kTestZone) + "vit._method TXT \"code=600\" \"code=601\"\n", "two.zone");
    REQUIRE_FALSE(f);
    CHECK(f.error().line == 12);
    // one code, other strings beside it: fine
    CHECK(apply_update(*z, {}, {rr("vit._method.ai.example. 300 IN TXT \"code=600\" \"note=x\"")}).rcode == kRcodeNoError);
}

TEST_CASE("update: a CNAME beside a service's AAAA/SVCB or beside other data is refused (RFC 1034 §3.6.2)") {
    ZonePtr z = base();
    UpdateResult u = apply_update(*z, {}, {rr("yolo.detection.image.ai.example. 300 IN CNAME other.example.")});
    CHECK(u.rcode == kRcodeRefused);
    CHECK_MESSAGE(u.why.find("RFC 1034") != std::string::npos, u.why);
    u = apply_update(*z, {}, {rr("ns.ai.example. 300 IN CNAME other.example.")});
    CHECK(u.rcode == kRcodeRefused);
    // and the other way round: data added beside an existing CNAME
    u = apply_update(*z, {}, {rr("www.ai.example. 300 IN CNAME ns.ai.example.")});
    REQUIRE(u.rcode == kRcodeNoError);
    CHECK(apply_update(*u.zone, {}, {rr("www.ai.example. 300 IN A 192.0.2.1")}).rcode == kRcodeRefused);
    // A service whose name is a CNAME cannot be registered either.
    ZonePtr with_cname = u.zone;
    u = apply_update(*with_cname, {}, {rr("sam._method.ai.example. 300 IN TXT \"code=7\""),
                                       rr("sam.detection.image.ai.example. 300 IN CNAME x.example.")});
    REQUIRE(u.rcode == kRcodeNoError);
    CHECK(apply_update(*u.zone, {}, {rr("sam.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:7:0")})
              .rcode == kRcodeRefused);
}

TEST_CASE("update: a name whose every record is deleted is gone (NXDOMAIN) - an empty non-terminal stays") {
    ZonePtr z = base();
    std::string rel_a, rel_b;
    {
        WireName n;
        REQUIRE(name_from_text("a.b.hosts", n));
        rel_a = std::string(n.prefix_labels(n.nlabels));
        REQUIRE(name_from_text("b.hosts", n));
        rel_b = std::string(n.prefix_labels(n.nlabels));
    }
    UpdateResult u = apply_update(*z, {}, {rr("tmp.hosts.ai.example. 300 IN A 192.0.2.1"),
                                           rr("tmp.hosts.ai.example. 300 IN TXT \"x\"")});
    REQUIRE(u.rcode == kRcodeNoError);
    u = apply_update(*u.zone, {}, {bare("tmp.hosts.ai.example.", kTypeANY, kClassANY)});
    REQUIRE(u.rcode == kRcodeNoError);
    WireName n;
    REQUIRE(name_from_text("tmp.hosts", n));
    CHECK(u.zone->node(n.prefix_labels(n.nlabels)) == nullptr);
    REQUIRE(name_from_text("hosts", n));
    CHECK(u.zone->node(n.prefix_labels(n.nlabels)) == nullptr);  // its empty parent went with it
    // b.hosts has a child: deleting its own records leaves an empty non-terminal.
    u = apply_update(*u.zone, {}, {rr("b.hosts.ai.example. 300 IN A 192.0.2.2"),
                                   rr("a.b.hosts.ai.example. 300 IN A 192.0.2.3")});
    REQUIRE(u.rcode == kRcodeNoError);
    u = apply_update(*u.zone, {}, {bare("b.hosts.ai.example.", kTypeANY, kClassANY)});
    REQUIRE(u.rcode == kRcodeNoError);
    REQUIRE(u.zone->node(rel_b) != nullptr);
    CHECK(u.zone->node(rel_b)->rrsets.empty());
    CHECK(u.zone->node(rel_a) != nullptr);
    // and once the child goes too, both are gone
    u = apply_update(*u.zone, {}, {bare("a.b.hosts.ai.example.", kTypeANY, kClassANY)});
    REQUIRE(u.rcode == kRcodeNoError);
    CHECK(u.zone->node(rel_a) == nullptr);
    CHECK(u.zone->node(rel_b) == nullptr);
}

TEST_CASE("update: at most max-records-per-name records of one type at a name (CVE-2024-1737)") {
    ZonePtr z = base();
    std::vector<Record> hundred;
    for (int i = 0; i < 100; ++i) hundred.push_back(rr("many.ai.example. 300 IN TXT \"t" + std::to_string(i) + "\""));
    UpdateResult u = apply_update(*z, {}, hundred);
    REQUIRE(u.rcode == kRcodeNoError);
    UpdateResult more = apply_update(*u.zone, {}, {rr("many.ai.example. 300 IN TXT \"one more\"")});
    CHECK(more.rcode == kRcodeRefused);
    CHECK_MESSAGE(more.why.find("more than 100") != std::string::npos, more.why);
    CHECK_FALSE(more.zone);
    // another type at the name, or the same again, is fine; the limit is the caller's
    CHECK(apply_update(*u.zone, {}, {rr("many.ai.example. 300 IN A 192.0.2.1")}).rcode == kRcodeNoError);
    CHECK(apply_update(*u.zone, {}, {rr("many.ai.example. 300 IN TXT \"t5\"")}).rcode == kRcodeNoError);
    CHECK(apply_update(*z, {}, hundred, 50).rcode == kRcodeRefused);
}
