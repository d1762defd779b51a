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

TEST_CASE("aisid-lookup: the whole output of each rule, text and JSON, from the public API") {
    TempDir d;
    const std::string x =
        "$ORIGIN x.example.\n$TTL 300\n@ SOA ns admin 7 3600 600 86400 60\n@ NS ns\n"
        "_aisid TXT \"v=aisid1\" \"prefix=2001:db8:aaaa:1::/64\"\n"
        "image._object TXT \"code=1\"\ndetection._function TXT \"code=2\"\nyolo._method TXT \"code=1\"\n"
        "yolo.detection.image AAAA 2001:db8:aaaa:1:1:2:1:0\n"
        "yolo.detection.image SVCB 2 second.legacy.example. port=8443\n"
        "yolo.detection.image SVCB 1 first.legacy.example.\n"
        "yolo.detection.image SVCB 0 alias.legacy.example.\n"
        "plain AAAA 2001:db8:ffff::1\nplain AAAA 2001:db8:aaaa:1:1:2:1:5\nplain A 192.0.2.1\n"
        "v4only A 192.0.2.7\n";
    std::string xf = d.write("x.zone", x);
    std::string vf = d.write(
        "v.zone", "; aisid-verified: time=2026-01-02T03:04:05Z zone=v.example. serial=42 "
                  "zonemd=sha384 key-tag=44703 anchor=/etc/aisid/anchor.ds "
                  "sig-expires=1767225600 source=https://mirror.example/v.zone\n" +
                      [&] {
                          std::string v = x;
                          for (size_t at; (at = v.find("x.example.")) != std::string::npos;)
                              v.replace(at, 10, "v.example.");
                          for (size_t at; (at = v.find("aaaa:1")) != std::string::npos;) v.replace(at, 6, "bbbb:2");
                          return v;
                      }());
    std::string pf = d.write("p.zone", "$ORIGIN plain.example.\n$TTL 60\n@ SOA ns admin 1 3600 600 86400 60\n"
                                       "@ NS ns\nwww AAAA 2001:db8:5::5\nwww A 198.51.100.5\n");
    std::string zones = "--zone " + xf + " --zone " + vf + " --zone " + pf + " --upstream 127.0.0.1:9 ";

    Run r = lookup(zones + "yolo.detection.image.x.example");
    CHECK(r.rc == 0);
    CHECK(r.out == "yolo.detection.image.x.example.\n"
                   "  source:      aisid\n"
                   "  address:     2001:db8:aaaa:1:1:2:1:0\n"
                   "  prefix:      2001:db8:aaaa:1::/64\n"
                   "  object:      1 (image)\n"
                   "  function:    2 (detection)\n"
                   "  method:      1 (yolo)\n"
                   "  performance: 0 (best effort)\n"
                   "  fallback:    second.legacy.example.:8443 (legacy endpoint, SVCB)\n"
                   "  fallback:    first.legacy.example. (legacy endpoint, SVCB)\n"
                   "  fallback:    alias.legacy.example. (legacy endpoint, SVCB)\n"
                   "  zone:        x.example.\n"
                   "  why:         rule 1: registered service (AAAA and SVCB records at the name)\n"
                   "  verified:    no (" +
                       xf + " carries no verification by aisidd)\n");

    r = lookup(zones + "2001:db8:aaaa:1:1:2:1:0");
    CHECK(r.rc == 0);
    CHECK(r.out.find("yolo.detection.image.x.example.\n") == 0);
    CHECK(r.out.find("  why:         reverse: codes decoded with the codebook of x.example.\n") != std::string::npos);
    CHECK(r.out.find("  fallback:    alias.legacy.example. (legacy endpoint, SVCB)\n") != std::string::npos);

    r = lookup(zones + "--json detection.image.x.example");
    CHECK(r.rc == 0);
    CHECK(r.out ==
          "{\"query\":\"detection.image.x.example\",\"name\":\"detection.image.x.example.\",\"source\":\"aisid\","
          "\"addresses\":[\"2001:db8:aaaa:1:1:2::\"],\"aisid\":{\"address\":\"2001:db8:aaaa:1:1:2::\","
          "\"prefix\":\"2001:db8:aaaa:1::/64\",\"object\":1,\"function\":2,\"method\":0,\"performance\":0,"
          "\"terms\":{\"object\":\"image\",\"function\":\"detection\",\"method\":null}},\"fallbacks\":[],"
          "\"zone\":\"x.example.\",\"why\":\"rule 2: synthesized from the codebook (0 = any: the egress "
          "gateway picks a matching service)\",\"zone_file\":\"" +
              xf + "\",\"verified\":null}\n");

    // Rule 1 records: the AAAA records, not the A.
    r = lookup(zones + "--json plain.x.example");
    CHECK(r.rc == 0);
    CHECK(r.out == "{\"query\":\"plain.x.example\",\"name\":\"plain.x.example.\",\"source\":\"aisid\",\"addresses\":"
                   "[\"2001:db8:ffff::1\",\"2001:db8:aaaa:1:1:2:1:5\"],\"fallbacks\":[],\"zone\":\"x.example.\","
                   "\"why\":\"rule 1: records at the name\",\"zone_file\":\"" +
                       xf + "\",\"verified\":null}\n");
    r = lookup(zones + "www.plain.example");
    CHECK(r.rc == 0);
    CHECK(r.out == "www.plain.example.\n  source:      legacy\n  address:     2001:db8:5::5\n"
                   "  zone:        plain.example.\n  why:         rule 1: records at the name\n"
                   "  verified:    no (" +
                       pf + " carries no verification by aisidd)\n");

    // Verified zone data, as aisidd writes it.
    r = lookup(zones + "yolo.detection.image.v.example");
    CHECK(r.rc == 0);
    CHECK(r.out.find("  verified:    yes, ZONEMD SHA-384, DNSSEC key tag 44703 (anchor /etc/aisid/anchor.ds), at "
                     "2026-01-02T03:04:05Z, serial 42, from https://mirror.example/v.zone\n") != std::string::npos);
    r = lookup(zones + "--json yolo.detection.image.v.example");
    CHECK(r.rc == 0);
    CHECK(r.out.find(",\"zone_file\":\"" + vf +
                     "\",\"verified\":{\"time\":\"2026-01-02T03:04:05Z\",\"zone\":"
                     "\"v.example.\",\"serial\":42,\"zonemd\":\"sha384\",\"key_tag\":44703,\"anchor\":"
                     "\"/etc/aisid/anchor.ds\",\"sig_expires\":1767225600,\"source\":"
                     "\"https://mirror.example/v.zone\"}}\n") != std::string::npos);

    // Why a name or an address has no answer, and the exit codes (SPEC §4).
    r = lookup(zones + "v4only.x.example");
    CHECK(r.rc == 1);
    CHECK(r.out == "aisid-lookup: v4only.x.example. has no AAAA record (NODATA)\n");
    r = lookup(zones + "Missing.X.example");
    CHECK(r.rc == 1);
    CHECK(r.out == "aisid-lookup: missing.x.example. does not exist (NXDOMAIN from x.example.)\n");
    r = lookup(zones + "2001:db8:aaaa:1:7:7:7:0");
    CHECK(r.rc == 1);
    CHECK(r.out == "aisid-lookup: no registered service at 2001:db8:aaaa:1:7:7:7:0 in x.example.\n");
    r = lookup(zones + "2001:db8:9999::1");
    CHECK(r.rc == 1);
    CHECK(r.out == "aisid-lookup: 2001:db8:9999::1 is inside no AISID prefix\n");
    r = lookup(zones + "a..b");
    CHECK(r.rc == 2);
    CHECK(r.out == "aisid-lookup: 'a..b' is neither a domain name nor an IPv6 address\n");
    r = lookup(zones + "--json 192.0.2.1");
    CHECK(r.rc == 0);
    CHECK(r.out == "{\"query\":\"192.0.2.1\",\"name\":\"192.0.2.1.\",\"source\":\"legacy\",\"addresses\":"
                   "[\"192.0.2.1\"],\"fallbacks\":[],\"why\":\"under no AISID domain: legacy DNS (c-ares), TTL 0\"}\n");
}
