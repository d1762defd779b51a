// Interop with BIND 9: named as primary with aisidd as secondary, aisidd as
// primary with named as secondary; aisid-admin and nsupdate against both.
#include "lifecycle_fixture.hpp"

#include <cstdio>

using namespace lifecycle_test;
using aisid::kTypeAAAA;
using aisid::kTypeSVCB;
using aisid::kTypeTXT;

namespace {
const std::string kSvc = "bert.detection.image.ai.example.";
}

TEST_CASE("named primary, aisidd secondary: lifecycle with aisid-admin and nsupdate - NOTIFY reaches aisidd") {
    TempDir d;
    Aisidd s(authority(d, "secondary"), deferred);
    Named n(named_primary(d, s.port), deferred);
    s.add_args(secondary_args(n.port));
    n.start();
    s.start();
    REQUIRE_MESSAGE(wait_until([&] { return serial_of(s.port) == 2026112501u; }, 5000) >= 0, s.log());

    auto r = admin(n.port, {"--zone", "ai.example", "define", "method", "bert"});
    REQUIRE_MESSAGE(r.code == 0, (r.err + n.log()));
    CHECK(r.out == "method bert code 2\n");
    r = admin(n.port, {"register", kSvc, "--fallback", "bert.provider.example:8443"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "2001:db8:abcd:12:1:2:2:0\n");
    // BIND paces its NOTIFYs (one at a time per zone and target): a NOTIFY can
    // leave named up to ~0.5 s after the update; aisidd pulls within ms of it.
    double ms = wait_until([&] { return query(s.port, kSvc, kTypeAAAA).has(kTypeAAAA, "2001:db8:abcd:12:1:2:2:0"); }, 2000);
    CHECK_MESSAGE(ms >= 0, (s.log() + n.log()));
    std::fprintf(stderr, "lifecycle: named→aisidd: registration answered by the secondary after %.1f ms\n", ms);
    // conflicts are caught before sending (BIND knows no codebook)
    CHECK(admin(n.port, {"register", kSvc}).code == 1);
    CHECK(admin(n.port, {"--zone", "ai.example", "define", "method", "bert"}).code == 1);
    CHECK(admin(n.port, {"--zone", "ai.example", "define", "method", "other", "--code", "2"}).code == 1);
    CHECK(admin(n.port, {"--zone", "ai.example", "define", "method", "x"}, std::string("k1:") + kOtherSecret).code == 4);

    r = admin(n.port, {"migrate", kSvc, "--fallback", "new.provider.example:443"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(wait_until([&] { return query(s.port, kSvc, kTypeSVCB).has(kTypeSVCB, "new.provider.example"); }, 2000) >= 0);
    r = admin(n.port, {"query", kSvc});
    CHECK(r.out.find("fallback: new.provider.example:443") != std::string::npos);

    // nsupdate to named, seen by aisidd (through IXFR)
    auto u = nsupdate(n.port, "update add ns2.ai.example. 300 AAAA 2001:db8:53::2\n");
    REQUIRE_MESSAGE(u.code == 0, u.err);
    CHECK(wait_until([&] { return query(s.port, "ns2.ai.example.", kTypeAAAA).has(kTypeAAAA); }, 2000) >= 0);

    r = admin(n.port, {"decommission", kSvc});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(wait_until([&] { return query(s.port, kSvc, kTypeAAAA).rcode == 3; }, 2000) >= 0);
    CHECK(s.log().find("by IXFR") != std::string::npos);

    // named stopped: aisidd keeps answering from its copy (and its file)
    n.proc.stop(5000);
    CHECK(query(s.port, "ns2.ai.example.", kTypeAAAA).has(kTypeAAAA));
    CHECK(read_file(s.state_dir + "/ai.example.zone").find("ns2.ai.example.") != std::string::npos);
}

TEST_CASE("aisidd primary, named secondary: nsupdate and aisid-admin changes reach named") {
    TempDir d;
    Aisidd p(authority(d, "primary").args({"--zone", write_test_zone(d), "--key", key_arg(), "--update-key", "k1"}),
             deferred);
    Named n(named_secondary(d, p.port), deferred);
    p.add_args({"--notify", "127.0.0.1:" + std::to_string(n.port)});
    p.start();
    n.start();
    REQUIRE_MESSAGE(wait_until([&] { return serial_of(n.port) == 2026112501u; }, 10000) >= 0, n.log());

    auto u = nsupdate(p.port, "update add ns2.ai.example. 300 AAAA 2001:db8:53::2\n");
    REQUIRE_MESSAGE(u.code == 0, (u.err + p.log()));
    double ms = wait_until([&] { return query(n.port, "ns2.ai.example.", kTypeAAAA).has(kTypeAAAA); }, 3000);
    CHECK_MESSAGE(ms >= 0, n.log());
    std::fprintf(stderr, "lifecycle: aisidd→named: update answered by named after %.1f ms\n", ms);

    auto r = admin(p.port, {"--zone", "ai.example", "define", "method", "bert"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    r = admin(p.port, {"register", kSvc, "--fallback", "bert.provider.example:8443"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(wait_until([&] { return query(n.port, kSvc, kTypeAAAA).has(kTypeAAAA, "2001:db8:abcd:12:1:2:2:0"); }, 3000) >= 0);
    CHECK(query(n.port, kSvc, kTypeSVCB).has(kTypeSVCB, "bert.provider.example"));
    r = admin(p.port, {"decommission", kSvc});
    REQUIRE(r.code == 0);
    CHECK(wait_until([&] { return query(n.port, kSvc, kTypeAAAA).rcode == 3; }, 3000) >= 0);
    // named used IXFR from aisidd's journal
    CHECK(p.log().find("IXFR ai.example. to key k1.: incremental") != std::string::npos);
}
