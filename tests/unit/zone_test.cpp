// Zone loading and the SPEC §3 checks, table-driven from zone-file text.
#include "zone.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

using namespace aisid;

namespace {

const char *kHead = R"($ORIGIN ai.example.
$TTL 300
@                    SOA  ns admin 2026112501 3600 600 86400 60
@                    NS   ns
_aisid               TXT  "v=aisid1" "prefix=2001:db8:abcd:12::/64"
image._object        TXT  "code=1"
detection._function  TXT  "code=2"
yolo._method         TXT  "code=1"
)";  // 8 lines: the next line is line 9

Expected<ZonePtr, ZoneError> load(const std::string &text) { return load_zone_text(text, "t.zone"); }

} // namespace

TEST_CASE("the example zone loads with its codebook and services") {
    auto z = load_zone_file(AISID_SOURCE_DIR "/zones/ai.example.zone");
    REQUIRE_MESSAGE(z, (z ? "" : z.error().to_string()));
    const Zone &zone = **z;
    CHECK(zone.origin_text() == "ai.example.");
    CHECK(zone.is_aisid());
    CHECK(format_prefix64(zone.prefix()) == "2001:db8:abcd:12::/64");
    CHECK(zone.dim(Dim::object).size() >= 4);
    CHECK(zone.dim(Dim::function).size() >= 8);
    CHECK(zone.dim(Dim::method).size() >= 10);
    CHECK(zone.service_count() >= 20);
    CHECK(zone.serial() == 2026112501u);
    CHECK(zone.soa_minimum() == 60u);
    CHECK(zone.dim(Dim::object).code("image") == 1);
    CHECK(*zone.dim(Dim::method).term(1) == "yolo");
    const Service *s = zone.service(1, 2, 1);
    REQUIRE(s);
    CHECK(s->svcb_count == 1);
    CHECK(zone.matches(1, 0, 0));
    CHECK(zone.matches(1, 2, 0));
    CHECK(zone.matches(1, 2, 1));
    CHECK_FALSE(zone.matches(1, 0, 1));  // no method without a function
    CHECK_FALSE(zone.matches(0, 2, 1));
}

TEST_CASE("a valid zone: services, wildcards, SVCB before AAAA, codebook after services") {
    auto z = load(std::string(kHead) + R"(
yolo.detection.image SVCB 1 yolo.provider.example. port=8443
yolo.detection.image SVCB 2 yolo2.provider.example. port=443
yolo.detection.image AAAA 2001:db8:abcd:12:1:2:1:0
resnet.detection.image AAAA 2001:db8:abcd:12:1:2:2:0
resnet._method TXT "code=2"
)");
    REQUIRE_MESSAGE(z, (z ? "" : z.error().to_string()));
    CHECK((*z)->service_count() == 2);
    CHECK((*z)->service(1, 2, 1)->svcb_count == 2);
    CHECK((*z)->service(1, 2, 2)->svcb_count == 0);
}

TEST_CASE("$INCLUDE, continuation lines, blank owners and comments") {
    auto dir = std::filesystem::temp_directory_path() / ("aisid-zone-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    {
        std::ofstream(dir / "codebook.inc") << "image._object TXT \"code=1\"\ndetection._function TXT \"code=2\"\n"
                                               "yolo._method TXT \"code=1\" ; the method\n";
        std::ofstream(dir / "main.zone") << "$ORIGIN ai.example.\n"
                                            "@ 300 IN SOA ns admin (\n"
                                            "      1 ; serial\n"
                                            "      3600 600 86400 60 )\n"
                                            "_aisid TXT \"v=aisid1 prefix=2001:db8:abcd:12::/64\"\n"
                                            "$INCLUDE codebook.inc\n"
                                            "yolo.detection.image AAAA 2001:db8:abcd:12:1:2:1:0\n"
                                            "     SVCB 1 yolo.provider.example. port=8443\n";
        std::ofstream(dir / "bad.zone") << "$ORIGIN ai.example.\n@ SOA ns admin 1 2 3 4 5\n$INCLUDE broken.inc\n";
        std::ofstream(dir / "broken.inc") << "; fine\n\nx TXT \"a\"\nx AAAA not-an-address\n";
    }
    auto z = load_zone_file((dir / "main.zone").string());
    REQUIRE_MESSAGE(z, (z ? "" : z.error().to_string()));
    CHECK((*z)->serial() == 1);
    CHECK((*z)->service_count() == 1);
    CHECK((*z)->service(1, 2, 1)->svcb_count == 1);  // the blank owner continued yolo.detection.image
    auto bad = load_zone_file((dir / "bad.zone").string());
    REQUIRE_FALSE(bad);
    CHECK(bad.error().file == (dir / "broken.inc").string());  // errors name the included file
    CHECK(bad.error().line == 4);
    std::filesystem::remove_all(dir);
}

TEST_CASE("bad zones: each error names FILE:LINE") {
    struct Case {
        const char *what;
        std::string text;
        int line;
        const char *says;
    } cases[] = {
        {"duplicate code in a dimension", std::string(kHead) + "text._object TXT \"code=1\"\n", 9,
         "object code 1 of 'text' is already used by 'image' (line 6)"},
        {"duplicate term", std::string(kHead) + "image._object TXT \"code=7\"\n", 9, "already defined"},
        {"term breaks the grammar: digit first", std::string(kHead) + "9lives._object TXT \"code=9\"\n", 9,
         "not a valid object term"},
        {"term 'any'", std::string(kHead) + "any._method TXT \"code=9\"\n", 9, "not a valid method term"},
        {"term p<digits>", std::string(kHead) + "p100._function TXT \"code=9\"\n", 9, "not a valid function term"},
        {"term with underscore", std::string(kHead) + "a_b._function TXT \"code=9\"\n", 9, "not a valid"},
        {"code out of range", std::string(kHead) + "text._object TXT \"code=65535\"\n", 9, "out of range"},
        {"code zero", std::string(kHead) + "text._object TXT \"code=0\"\n", 9, "out of range"},
        {"codebook TXT without code", std::string(kHead) + "text._object TXT \"hello\"\n", 9, "without \"code=N\""},
        {"AAAA disagrees with the codebook", std::string(kHead) + "yolo.detection.image AAAA 2001:db8:abcd:12:1:2:2:0\n",
         9, "disagrees with the codebook (want 2001:db8:abcd:12:1:2:1:0)"},
        {"AAAA with a performance", std::string(kHead) + "yolo.detection.image AAAA 2001:db8:abcd:12:1:2:1:5\n", 9,
         "disagrees with the codebook"},
        {"AAAA outside the prefix", std::string(kHead) + "yolo.detection.image AAAA 2001:db8:ffff:12:1:2:1:0\n", 9,
         "lies outside the AISID prefix 2001:db8:abcd:12::/64"},
        {"AAAA in the prefix at an unknown term",
         std::string(kHead) + "\n\nbert.detection.image AAAA 2001:db8:abcd:12:1:2:7:0\n", 11,
         "'bert' is not a method term"},
        {"service registered twice",
         std::string(kHead) + "yolo.detection.image AAAA 2001:db8:abcd:12:1:2:1:0\n"
                              "YOLO.detection.image AAAA 2001:db8:abcd:12:1:2:1:0\n",
         10, "registered twice"},
        {"codebook without _aisid",
         "$ORIGIN x.example.\n@ SOA ns admin 1 2 3 4 5\n\nimage._object TXT \"code=1\"\n", 4,
         "without an _aisid TXT record"},
        {"_aisid without v=aisid1", "$ORIGIN x.example.\n@ SOA ns admin 1 2 3 4 5\n_aisid TXT \"prefix=2001:db8::/64\"\n",
         3, "without \"v=aisid1\""},
        {"_aisid with a /48", "$ORIGIN x.example.\n@ SOA ns admin 1 2 3 4 5\n_aisid TXT \"v=aisid1\" \"prefix=2001:db8::/48\"\n",
         3, "want a /64"},
        {"no SOA first", "$ORIGIN x.example.\nwww A 192.0.2.1\n", 2, "first record must be the zone's SOA"},
        {"second SOA", std::string(kHead) + "@ SOA ns admin 2 3600 600 86400 60\n", 9, "a second SOA"},
        {"name outside the zone", std::string(kHead) + "www.other.example. A 192.0.2.1\n", 9, "outside the zone"},
        {"ldns syntax error", std::string(kHead) + "www A 999.1.1.1\n", 9, ""},
        {"unknown directive", std::string(kHead) + "$GENERATE 1-2 x A 192.0.2.$\n", 9, "unknown directive"},
        {"unbalanced parenthesis", std::string(kHead) + "www TXT ( \"a\"\n", 9, "unbalanced"},
        {"relative name without origin", "@ SOA ns admin 1 2 3 4 5\n", 1, ""},
        {"class other than IN", std::string(kHead) + "www CH TXT \"x\"\n", 9, "only class IN"},
        {"empty zone", "; nothing\n", 0, "no SOA"},
    };
    for (const Case &c : cases) {
        std::string what = c.what;
        CAPTURE(what);
        auto z = load(c.text);
        REQUIRE_FALSE(z);
        CHECK(z.error().file == "t.zone");
        CHECK(z.error().line == c.line);
        CHECK_MESSAGE(z.error().message.find(c.says) != std::string::npos, z.error().to_string());
        std::string s = z.error().to_string();
        std::string want = c.line ? "t.zone:" + std::to_string(c.line) + ": " : "t.zone: ";
        CHECK(s.rfind(want, 0) == 0);
    }
}

TEST_CASE("terms") {
    for (const char *ok : {"image", "a", "stable-diffusion", "t5", "p", "px1", "p1x", "gpt-4o"}) CHECK_MESSAGE(valid_term(ok), ok);
    for (const char *bad : {"", "any", "p0", "p5000", "5g", "-a", "Image", "a_b", "a.b"}) CHECK_MESSAGE(!valid_term(bad), bad);
    CHECK(!valid_term(std::string(64, 'a')));
    CHECK(valid_term(std::string(63, 'a')));
    CHECK(parse_perf_label("p5000") == 5000);
    CHECK(parse_perf_label("p1") == 1);
    CHECK(parse_perf_label("p65535") == 65535);
    CHECK(parse_perf_label("p65536") == 0);
    CHECK(parse_perf_label("p0") == 0);
    CHECK(parse_perf_label("p05") == 0);
    CHECK(parse_perf_label("p") == 0);
    CHECK(parse_perf_label("q5") == 0);
}
