// The one ADDR[:PORT] grammar every aisid program uses (sdk/core/socket_address).
#include "aisid/core/socket_address.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace aisid;

namespace {
const AddressRules kDns{.default_port = 53};

std::string parsed(std::string_view text, const AddressRules &r = kDns) {
    auto a = parse_sockaddr(text, r);
    return a ? a->to_string() : "refused";
}
} // namespace

TEST_CASE("ADDR[:PORT]: the accepted spellings") {
    CHECK(parsed("192.0.2.1") == "192.0.2.1:53");
    CHECK(parsed("192.0.2.1:5300") == "192.0.2.1:5300");
    CHECK(parsed("::1") == "[::1]:53");  // bare IPv6: no port
    CHECK(parsed("[::1]") == "[::1]:53");
    CHECK(parsed("[2001:db8::1]:853") == "[2001:db8::1]:853");
    CHECK(parsed("2001:db8::1:53") == "[2001:db8::1:53]:53");  // still an address, not a port
    CHECK(parsed("[::ffff:192.0.2.1]:53") == "[::ffff:192.0.2.1]:53");
    CHECK(parsed("1.2.3.4:65535") == "1.2.3.4:65535");
    CHECK(parsed("1.2.3.4:00053") == "1.2.3.4:53");
    auto a = parse_sockaddr("[::1]:53", kDns);
    REQUIRE(a);
    CHECK(a->family() == AF_INET6);
    CHECK(a->len == sizeof(sockaddr_in6));
    CHECK(a->port() == 53);
    CHECK(a->host_text() == "::1");
}

TEST_CASE("ADDR[:PORT]: what is refused, for every caller alike") {
    for (const char *bad : {"", ":", ":53", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:123456",
                            "1.2.3.4:5x", "1.2.3.4:-1", "1.2.3.4: 53", "[::1", "[::1]53", "[::1]:", "[::1]:x",
                            "[1.2.3.4]:53", "localhost", "localhost:53", "example.com", "1.2.3", "256.1.1.1",
                            "[::1]:53 ", " 1.2.3.4", "::1%", "2001:db8::1%1", "fe80::1%", "fe80::1%nosuchif0",
                            "fe80::1%0", "fe80::1%99999999999"}) {
        CAPTURE(std::string(bad));
        CHECK(parsed(bad) == "refused");
    }
}

TEST_CASE("ADDR[:PORT]: the caller's rules") {
    // Port required.
    CHECK(parsed("192.0.2.1", AddressRules{}) == "refused");
    CHECK(parsed("192.0.2.1:1", AddressRules{}) == "192.0.2.1:1");
    // Port 0 only where the caller says it means something.
    CHECK(parsed("[::1]:0", AddressRules{.port_zero = true}) == "[::1]:0");
    CHECK(parsed("[::1]", AddressRules{.default_port = 0, .port_zero = true}) == "[::1]:0");
    CHECK(parsed("[::1]", AddressRules{.default_port = 0}) == "refused");
    // IPv6 only.
    CHECK(parsed("192.0.2.1:53", AddressRules{.default_port = 53, .ipv6_only = true}) == "refused");
    CHECK(parsed("[2001:db8::5]:9", AddressRules{.ipv6_only = true}) == "[2001:db8::5]:9");
}

TEST_CASE("ADDR[:PORT]: a link-local address keeps its scope") {
    // Interface index 1 is the loopback on Linux.
    auto a = parse_sockaddr("[fe80::1%1]:53", kDns);
    REQUIRE(a);
    CHECK(reinterpret_cast<const sockaddr_in6 &>(a->ss).sin6_scope_id == 1);
    CHECK(a->to_string() == "[fe80::1%lo]:53");
    CHECK(parsed("fe80::1%lo") == "[fe80::1%lo]:53");
    CHECK(parsed("ff02::1%lo") == "[ff02::1%lo]:53");
    // Same host ignores the port; IPv4 and v4-mapped are the same host.
    auto v4 = parse_sockaddr("192.0.2.1:53", kDns), mapped = parse_sockaddr("[::ffff:192.0.2.1]:54", kDns);
    REQUIRE(v4);
    REQUIRE(mapped);
    CHECK(v4->same_host(*mapped));
    CHECK(!v4->same(*mapped));
}

TEST_CASE("CIDR prefixes") {
    auto c = parse_cidr("192.0.2.0/24");
    REQUIRE(c);
    auto in = parse_sockaddr("192.0.2.77", kDns), out = parse_sockaddr("192.0.3.1", kDns);
    auto mapped = parse_sockaddr("::ffff:192.0.2.9", kDns);
    CHECK(c->contains(in->ss));
    CHECK(c->contains(mapped->ss));
    CHECK(!c->contains(out->ss));
    for (const char *bad : {"192.0.2.0/33", "192.0.2.0/", "::/129", "x/8", "192.0.2.0/2x"}) {
        CAPTURE(std::string(bad));
        CHECK(!parse_cidr(bad));
    }
    CHECK(is_loopback(parse_sockaddr("127.3.4.5", kDns)->ss));
    CHECK(is_loopback(parse_sockaddr("::1", kDns)->ss));
    CHECK(!is_loopback(parse_sockaddr("192.0.2.1", kDns)->ss));
}
