// aisid-lookup through the SDK (no --server): AISID names from zone data,
// legacy names through the SDK's legacy path against a real Unbound.
#include "sdk_upstream.hpp"
#include "paths.hpp"

#include <doctest/doctest.h>

#include <array>

using namespace aisid::test;

namespace {

struct Run {
    int rc = -1;
    std::string out;
};

Run lookup(const std::string &args) {
    Run r;
    std::string cmd = aisid_lookup_path() + " " + args + " 2>&1";
    FILE *p = ::popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::array<char, 4096> b;
    size_t n;
    while ((n = std::fread(b.data(), 1, b.size(), p)) > 0) r.out.append(b.data(), n);
    int st = ::pclose(p);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

} // namespace

TEST_CASE("aisid-lookup: legacy names through the SDK with --upstream") {
    Unbound u(sdk_legacy_upstream());
    std::string zone = "--zone " + example_zone_path() + " --upstream " + u.addr();

    Run r = lookup(zone + " www.legacy.example");
    CHECK(r.rc == 0);
    CHECK(r.out.find("www.legacy.example.\n") == 0);
    CHECK(r.out.find("  source:      legacy\n") != std::string::npos);
    CHECK(r.out.find("  address:     2001:db8:1::10\n") != std::string::npos);
    CHECK(r.out.find("  address:     192.0.2.10\n") != std::string::npos);

    r = lookup(zone + " --json v4only.legacy.example");
    CHECK(r.rc == 0);
    CHECK(r.out.find("\"name\":\"v4only.legacy.example.\"") != std::string::npos);
    CHECK(r.out.find("\"source\":\"legacy\"") != std::string::npos);
    CHECK(r.out.find("\"addresses\":[\"192.0.2.11\"]") != std::string::npos);
    CHECK(r.out.find("\"aisid\":") == std::string::npos);

    // SPEC §4 exit codes: 1 no such name, 3 upstream failure, 2 usage.
    r = lookup(zone + " nosuch.legacy.example");
    CHECK(r.rc == 1);
    CHECK(r.out.find("aisid-lookup: nosuch.legacy.example. does not exist") == 0);
    r = lookup(zone + " www.refused.example");
    CHECK(r.rc == 3);
    CHECK(r.out.find("aisid-lookup: ") == 0);
    r = lookup(zone + " --upstream");
    CHECK(r.rc == 2);
    r = lookup("--upstream not-an-address x.example");
    CHECK(r.rc == 2);

    // AISID names stay in process (and say so), whatever the upstream.
    r = lookup(zone + " --json p5000.yolo.detection.image.ai.example");
    CHECK(r.rc == 0);
    CHECK(r.out.find("\"source\":\"aisid\"") != std::string::npos);
    CHECK(r.out.find("\"addresses\":[\"2001:db8:abcd:12:1:2:1:1388\"]") != std::string::npos);
    CHECK(r.out.find("\"performance\":5000") != std::string::npos);
    // The prefix is text: as a number (2306139570997886994 > 2^53) jq and
    // JavaScript would round it to another prefix.
    CHECK(r.out.find("\"prefix\":\"2001:db8:abcd:12::/64\"") != std::string::npos);
    CHECK(r.out.find("2306139570997886994") == std::string::npos);
    r = lookup(zone + " nope.image.ai.example");
    CHECK(r.rc == 1);

    // Zone errors name FILE:LINE and exit 2.
    TempDir d;
    std::string bad = d.write("bad.zone", "$ORIGIN b.example.\n@ 300 SOA ns admin 1 2 3 4 5\n@ 300 NS ns\nx 300 AAAA nope\n");
    r = lookup("--zone " + bad + " x.b.example");
    CHECK(r.rc == 2);
    CHECK(r.out.find("aisid-lookup: " + bad + ":4:") == 0);
}
