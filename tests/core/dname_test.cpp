#include "aisid/core/dname.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace aisid;

TEST_CASE("text names become lowercase wire names") {
    WireName n;
    REQUIRE(name_from_text("YOLO.Detection.image.ai.example.", n));
    CHECK(n.nlabels == 5);
    CHECK(n.wire() == std::string_view("\x04yolo\x09" "detection\x05image\x02" "ai\x07" "example\x00", 33));
    CHECK(n.label(1) == "detection");
    CHECK(n.suffix(3) == std::string_view("\x02" "ai\x07" "example\x00", 12));
    CHECK(n.prefix_labels(3) == std::string_view("\x04yolo\x09" "detection\x05image", 21));
    WireName m;
    REQUIRE(name_from_text("yolo.detection.image.ai.example", m));  // trailing dot optional
    CHECK(m.wire() == n.wire());
}

TEST_CASE("root, escapes and limits") {
    WireName n;
    REQUIRE(name_from_text(".", n));
    CHECK(n.nlabels == 0);
    CHECK(n.len == 1);
    REQUIRE(name_from_text("a\\.b.example", n));
    CHECK(n.nlabels == 2);
    CHECK(n.label(0) == "a.b");
    REQUIRE(name_from_text("x\\065y.example", n));
    CHECK(n.label(0) == "xay");  // \065 is 'A', lowercased
    CHECK(name_to_text(n.wire()) == "xay.example.");
    REQUIRE(name_from_text("a\\032b.example", n));
    CHECK(name_to_text(n.wire()) == "a\\032b.example.");

    for (const char *bad : {"..", "a..b", ".a", "a\\", "a\\25", "a\\999.b"}) CHECK_MESSAGE(!name_from_text(bad, n), bad);
    std::string l63(63, 'a'), l64(64, 'a');
    CHECK(name_from_text(l63 + ".example", n));
    CHECK_FALSE(name_from_text(l64 + ".example", n));
    std::string long_name;
    for (int i = 0; i < 4; ++i) long_name += l63 + ".";  // 4*64 = 256 bytes > 255
    CHECK_FALSE(name_from_text(long_name, n));
}

TEST_CASE("wire names: compression, loops, bounds") {
    // A message with "example." at 12 and "ai" + pointer to it at 21.
    const uint8_t msg[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 0, 2, 'A', 'I', 0xc0, 12};
    WireName n;
    size_t pos = 21;
    REQUIRE(name_from_wire(msg, sizeof msg, pos, n));
    CHECK(pos == sizeof msg);
    CHECK(name_to_text(n.wire()) == "ai.example.");
    const uint8_t loop[] = {0xc0, 0x00};
    pos = 0;
    CHECK_FALSE(name_from_wire(loop, sizeof loop, pos, n));
    const uint8_t fwd[] = {0xc0, 0x02, 0x00};
    pos = 0;
    CHECK_FALSE(name_from_wire(fwd, sizeof fwd, pos, n));  // forward pointers refused
    const uint8_t cut[] = {5, 'a', 'b'};
    pos = 0;
    CHECK_FALSE(name_from_wire(cut, sizeof cut, pos, n));
    const uint8_t ext[] = {0x41, 0};
    pos = 0;
    CHECK_FALSE(name_from_wire(ext, sizeof ext, pos, n));
}
