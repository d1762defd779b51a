#include "aisid/address.hpp"

#include <doctest/doctest.h>

using namespace aisid;

TEST_CASE("the paper's test vector decodes") {
    auto a = Aisid::parse("2001:0db8:abcd:0012:0001:0002:0001:1388");
    REQUIRE(a);
    CHECK(format_prefix64(a->prefix()) == "2001:db8:abcd:12::/64");
    CHECK(a->object() == 1);
    CHECK(a->function() == 2);
    CHECK(a->method() == 1);
    CHECK(a->performance() == 5000);
    CHECK(a->to_string() == "2001:db8:abcd:12:1:2:1:1388");
}

TEST_CASE("every field round-trips through set, get and text") {
    struct Case {
        uint64_t prefix;
        uint16_t o, f, m, p;
    } cases[] = {
        {0x20010db8abcd0012ULL, 1, 2, 1, 5000},
        {0x20010db800000000ULL, 0, 0, 0, 0},
        {0xffffffffffffffffULL, 0xfffe, 0xfffe, 0xfffe, 0xffff},
        {0x20010db8abcd0012ULL, 0xffff, 1, 0, 65535},
        {0x1ULL, 0x8000, 0x0001, 0x7fff, 1},
    };
    for (const Case &c : cases) {
        Aisid a = Aisid::make(c.prefix, c.o, c.f, c.m, c.p);
        CHECK(a.prefix() == c.prefix);
        CHECK(a.object() == c.o);
        CHECK(a.function() == c.f);
        CHECK(a.method() == c.m);
        CHECK(a.performance() == c.p);
        auto back = Aisid::parse(a.to_string());
        REQUIRE(back);
        CHECK(*back == a);
        // Setters change one field and leave the others alone.
        Aisid b = a;
        b.set_method(0x1234);
        CHECK(b.method() == 0x1234);
        CHECK(b.object() == c.o);
        CHECK(b.performance() == c.p);
        CHECK(b.prefix() == c.prefix);
    }
}

TEST_CASE("text: RFC 5952 out, any valid IPv6 text in") {
    struct Case {
        const char *in, *out;
    } cases[] = {
        {"2001:0DB8:ABCD:0012:0000:0000:0000:0000", "2001:db8:abcd:12::"},
        {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},      // first of two equal runs
        {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},    // one zero field is not shortened
        {"2001:db8:abcd:12:1:2:1:0", "2001:db8:abcd:12:1:2:1:0"},
        {"::", "::"},
        {"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
    };
    for (const Case &c : cases) {
        auto a = Aisid::parse(c.in);
        REQUIRE_MESSAGE(a, c.in);
        CHECK(a->to_string() == c.out);
    }
    for (const char *bad : {"", "2001:db8", "2001:db8::g", "1.2.3.4", "2001:db8:::1", "2001:db8::1/64",
                            "2001:0db8:abcd:0012:0001:0002:0001:1388:1"})
        CHECK_FALSE(Aisid::parse(bad));
}

TEST_CASE("prefixes are /64 with no host bits") {
    CHECK(parse_prefix64("2001:db8:abcd:12::/64") == 0x20010db8abcd0012ULL);
    CHECK_FALSE(parse_prefix64("2001:db8:abcd:12::/48"));
    CHECK_FALSE(parse_prefix64("2001:db8:abcd:12::1/64"));
    CHECK_FALSE(parse_prefix64("2001:db8:abcd:12::"));
    CHECK(format_prefix64(0x20010db8abcd0012ULL) == "2001:db8:abcd:12::/64");
}
