// Zone loading and the SPEC §3 checks, table-driven from zone-file text.
#include "aisid/core/zone.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

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

namespace {

struct IncDir {
    std::filesystem::path dir;
    explicit IncDir(const std::string &tag) {
        dir = std::filesystem::temp_directory_path() / ("aisid-inc-" + tag + "-" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
    }
    ~IncDir() { std::filesystem::remove_all(dir); }
    std::string write(const std::string &name, const std::string &text) const {
        std::ofstream(dir / name) << text;
        return (dir / name).string();
    }
};

const char *kIncHead = "$ORIGIN ai.example.\n@ SOA ns admin 1 2 3 4 5\n@ NS ns\nns AAAA 2001:db8::1\n";

} // namespace

TEST_CASE("$INCLUDE fan-out: ten includes per file seven deep stops at the file limit at once") {
    IncDir d("fanout");
    for (int level = 0; level < 7; ++level) {
        std::string t;
        for (int i = 0; i < 10; ++i) t += "$INCLUDE l" + std::to_string(level + 1) + ".inc\n";
        d.write("l" + std::to_string(level) + ".inc", t);
    }
    d.write("l7.inc", "x TXT \"leaf\"\n");
    std::string main = d.write("main.zone", std::string(kIncHead) + "$INCLUDE l0.inc\n");
    auto t0 = std::chrono::steady_clock::now();
    auto z = load_zone_file(main);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE_FALSE(z);
    CHECK_MESSAGE(z.error().message.find("more than 64 $INCLUDE files") != std::string::npos, z.error().to_string());
    CHECK(secs < 2.0);
    // The limit is the caller's: 1000 files is not enough either, 8 levels of 1 are fine.
    ZoneLoadLimits lim;
    lim.max_includes = 1000;
    z = load_zone_file(main, lim);
    REQUIRE_FALSE(z);
    CHECK(z.error().message.find("more than 1000 $INCLUDE files") != std::string::npos);
    d.write("one.inc", "y TXT \"one\"\n");
    z = load_zone_file(d.write("ok.zone", std::string(kIncHead) + "$INCLUDE one.inc\n$INCLUDE one.inc\n"));
    CHECK_MESSAGE(z, (z ? "" : z.error().to_string()));
}

TEST_CASE("$INCLUDE bytes: the zone file and its includes together stay under the byte limit") {
    IncDir d("bytes");
    std::string big;
    for (int i = 0; i < 200; ++i) big += "b" + std::to_string(i) + " TXT \"" + std::string(40, 'x') + "\"\n";
    d.write("big.inc", big);
    std::string main = d.write("main.zone", std::string(kIncHead) + "$INCLUDE big.inc\n$INCLUDE big.inc\n");
    ZoneLoadLimits lim;
    lim.max_bytes = big.size() + 200;  // the main file and one include fit, not two
    auto z = load_zone_file(main, lim);
    REQUIRE_FALSE(z);
    CHECK_MESSAGE(z.error().message.find("zone-max-bytes") != std::string::npos, z.error().to_string());
    CHECK(z.error().line == 6);
    lim.max_bytes = 2 * big.size() + 200;
    z = load_zone_file(main, lim);
    CHECK_MESSAGE(z, (z ? "" : z.error().to_string()));
    lim.max_bytes = 10;  // the zone file alone is over
    z = load_zone_file(main, lim);
    REQUIRE_FALSE(z);
    CHECK(z.error().message.find("zone-max-bytes") != std::string::npos);
}

TEST_CASE("$INCLUDE outside the zone file's directory is refused unless allowed - errors quote at most a token's start") {
    IncDir d("zone"), other("other");
    const std::string secret = "root:$6$saltsalt$hashhashhashhashhashhash:20228:0:99999:7:::";
    std::string outside = other.write("shadow", secret + "\n");
    std::string main = d.write("main.zone", "$INCLUDE " + outside + "\n" + kIncHead);
    auto z = load_zone_file(main);
    REQUIRE_FALSE(z);
    CHECK_MESSAGE(z.error().message.find("outside the zone file's directory") != std::string::npos, z.error().to_string());
    CHECK(z.error().file == main);
    // Through a symbolic link in the zone's directory: the same.
    std::filesystem::create_symlink(outside, d.dir / "link.inc");
    z = load_zone_file(d.write("link.zone", "$INCLUDE link.inc\n" + std::string(kIncHead)));
    REQUIRE_FALSE(z);
    CHECK(z.error().message.find("outside the zone file's directory") != std::string::npos);
    // Allowed: read, and the error quotes no more than the token's first 20 bytes.
    ZoneLoadLimits lim;
    lim.include_dirs = {other.dir.string()};
    z = load_zone_file(main, lim);
    REQUIRE_FALSE(z);
    std::string e = z.error().to_string();
    CHECK(z.error().file == outside);
    CHECK(e.find("root:$6$saltsalt$has") != std::string::npos);
    CHECK(e.find("hashhashhashhash") == std::string::npos);
    CHECK(e.find(":20228:") == std::string::npos);
    // Relative includes into a subdirectory of the zone's directory stay fine.
    std::filesystem::create_directories(d.dir / "sub");
    d.write("sub/x.inc", "x TXT \"x\"\n");
    z = load_zone_file(d.write("subdir.zone", std::string(kIncHead) + "$INCLUDE sub/x.inc\n"));
    CHECK_MESSAGE(z, (z ? "" : z.error().to_string()));
}
