// Unit tests of the transport library's parts that need no peer: upstream
// URIs, RFC 7830/8467 padding, OPT stripping, TTL capping, question matching.
#include <doctest/doctest.h>

#include "aisid/transport/address_lookup.hpp"
#include "tls_peers.hpp"
#include "aisid/transport/transport.hpp"

using namespace aisid::transport;
using aisid::test::answer_a;
using aisid::test::make_query;

TEST_CASE("upstream URIs: tls:// and https:// parse and everything else is refused") {
    auto a = parse_upstream("tls://192.0.2.53#dns.example");
    REQUIRE(a);
    CHECK(a->kind == UpstreamEndpoint::Kind::dot);
    CHECK(a->host == "192.0.2.53");
    CHECK(a->port == 853);  // RFC 7858 §3.1
    CHECK(a->auth_name == "dns.example");

    auto b = parse_upstream("tls://[2001:db8::53]:8853");
    REQUIRE(b);
    CHECK(b->host == "2001:db8::53");
    CHECK(b->port == 8853);
    CHECK(b->auth_name.empty());

    auto c = parse_upstream("https://dns.example:8443/dns-query");
    REQUIRE(c);
    CHECK(c->kind == UpstreamEndpoint::Kind::doh);
    CHECK(c->host == "dns.example");
    CHECK(c->port == 8443);
    CHECK(c->url == "https://dns.example:8443/dns-query");

    for (const char *bad : {"http://dns.example/dns-query", "192.0.2.1:53", "udp://192.0.2.1", "tls://dns.example",
                            "tls://192.0.2.1:0", "tls://192.0.2.1:70000", "tls://192.0.2.1#bad name",
                            "https://dns.example", "https://:443/x", "tls://[2001:db8::1"}) {
        auto r = parse_upstream(bad);
        CHECK_MESSAGE(!r, bad);
        if (!r) CHECK(r.error().kind == ErrorKind::bad_uri);
    }
    auto h = parse_upstream("http://dns.example/dns-query");
    REQUIRE(!h);
    CHECK(h.error().reason.find("clear-text") != std::string::npos);
    CHECK(is_encrypted_uri("tls://192.0.2.1"));
    CHECK(!is_encrypted_uri("192.0.2.1"));
}

TEST_CASE("padding: queries become a multiple of 128 bytes (RFC 8467 §4.1)") {
    for (const std::string &name : std::vector<std::string>{"a.example", "q1.legacy.example",
                                   "a-rather-long-label-to-make-the-query-bigger.and-another-one-here.example",
                                   std::string(60, 'x') + "." + std::string(60, 'y') + "." + std::string(10, 'z')}) {
        for (bool edns : {false, true}) {
            auto q = make_query(name, 0x1234, 1, edns);
            bool added = false;
            auto p = pad_query(q, 128, added);
            REQUIRE(p);
            CHECK(p->size() % 128 == 0);
            CHECK(added == !edns);
            CHECK((*p)[11] == 1);  // one OPT in the additional section
            // Idempotent: a padded query is left alone.
            bool again = false;
            auto p2 = pad_query(*p, 128, again);
            REQUIRE(p2);
            CHECK(*p2 == *p);
            CHECK(!again);
            // The question is untouched.
            CHECK(same_question(q, *p));
        }
    }
    // A query that is exactly 124 bytes + option header lands on 128 with 0 padding.
    auto q = make_query("a.example", 1, 1, true);
    bool added = false;
    std::vector<uint8_t> trailing = q;
    trailing.push_back(0);
    CHECK(!pad_query(trailing, 128, added));  // trailing garbage is refused
    std::vector<uint8_t> truncated(q.begin(), q.end() - 3);
    CHECK(!pad_query(truncated, 128, added));
}

TEST_CASE("strip_opt removes the OPT RR we added and cap_ttls caps every TTL but OPT's") {
    // An answer: header, question, one A RR with TTL 300, one OPT.
    auto m = make_query("a.example", 7, 1, false);
    m[2] |= 0x80;
    m[7] = 1;  // ANCOUNT
    const uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1};
    m.insert(m.end(), rr, rr + sizeof rr);
    bool added = false;
    auto withopt = pad_query(m, 0, added);  // block 0: no padding
    REQUIRE(withopt);
    std::vector<uint8_t> w = m;
    const uint8_t opt[] = {0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0};
    w.insert(w.end(), opt, opt + sizeof opt);
    w[11] = 1;
    uint32_t ttl = 0;
    REQUIRE(cap_ttls(w, 60));
    CHECK(answer_a(w, &ttl) == std::vector<std::string>{"192.0.2.1"});
    CHECK(ttl == 60);
    REQUIRE(strip_opt(w));
    CHECK(w[11] == 0);
    CHECK(w.size() == m.size());
    REQUIRE(cap_ttls(w, 600));  // a larger cap changes nothing
    CHECK(answer_a(w, &ttl).size() == 1);
    CHECK(ttl == 60);
}

TEST_CASE("the wire helpers refuse what they cannot edit safely (found by fuzz_dns_wire)") {
    // An answer: header, question, one A RR (TTL 300) whose owner points back
    // to the question name.
    auto m = make_query("a.example", 7, 1, false);
    m[2] |= 0x80;
    m[7] = 1;
    const uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1};
    m.insert(m.end(), rr, rr + sizeof rr);
    const uint8_t opt[] = {0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0};
    bool added = false;

    // RFC 1035 §4.1.4: a pointer into the header (whose counts we change) or
    // forward (to bytes we move) is refused, and the message left untouched.
    for (uint8_t target : {uint8_t(4), uint8_t(m.size())}) {
        auto bad = m;
        bad[m.size() - sizeof rr + 1] = target;
        CHECK(!pad_query(bad, 128, added));
        auto w = bad;
        w.insert(w.end(), opt, opt + sizeof opt);
        w[11] = 1;
        auto before = w;
        CHECK(!strip_opt(w));
        CHECK(!cap_ttls(w, 60));
        CHECK(w == before);
    }

    // RFC 6891 §6.1.1: one OPT, in the additional section. An OPT in the
    // answer section is not stripped, and its TTL is a TTL (capped).
    {
        auto w = m;
        w.insert(w.end(), opt, opt + sizeof opt);
        w[7] = 2;
        auto before = w;
        CHECK(!strip_opt(w));
        CHECK(w == before);
        CHECK(!pad_query(w, 128, added));
        w[w.size() - 6] = 0x7f; // the OPT's TTL: 0x7f000000
        REQUIRE(cap_ttls(w, 60));
        CHECK(w[w.size() - 6] == 0);
        CHECK(w[w.size() - 3] == 60);
        // Two OPTs: neither is stripped.
        w = m;
        w.insert(w.end(), opt, opt + sizeof opt);
        w.insert(w.end(), opt, opt + sizeof opt);
        w[11] = 2;
        CHECK(!strip_opt(w));
    }

    // An OPT whose options overrun its RDATA could hide a padding option:
    // the query is malformed.
    {
        auto q = make_query("a.example", 7, 1, true);
        q[q.size() - 1] = 4;                    // RDLENGTH 4
        const uint8_t option[] = {0, 10, 0, 8}; // COOKIE, 8 bytes, none there
        q.insert(q.end(), option, option + sizeof option);
        CHECK(!pad_query(q, 128, added));
    }
}

TEST_CASE("read_answer: addresses once, AAAA and A, the smallest TTL, a TTL with the top bit set is 0") {
    auto m = make_query("a.example", 7, 1, false);
    m[2] |= 0x80;
    m[7] = 3;
    // A 192.0.2.1 with TTL 300, the same A with TTL 60, AAAA 2001:db8::1 with TTL 3600.
    const uint8_t a300[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1};
    const uint8_t a60[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0x00, 0x3c, 0, 4, 192, 0, 2, 1};
    const uint8_t aaaa[] = {0xc0, 12,   0, 28, 0, 1, 0, 0, 0x0e, 0x10, 0, 16, 0x20, 0x01,
                            0x0d, 0xb8, 0, 0,  0, 0, 0, 0, 0,    0,    0, 0,  0,    1};
    const size_t first_ttl = m.size() + 6;
    m.insert(m.end(), a300, a300 + sizeof a300);
    m.insert(m.end(), a60, a60 + sizeof a60);
    m.insert(m.end(), aaaa, aaaa + sizeof aaaa);
    int rcode = -1;
    std::vector<in6_addr> addrs;
    int64_t ttl = -1;
    REQUIRE(read_answer(m, rcode, addrs, ttl));
    CHECK(rcode == 0);
    CHECK(addrs.size() == 2);
    CHECK(ttl == 60);
    // RFC 2181 §8: 0x80000000 and above mean 0, not two billion seconds.
    m[first_ttl] = 0x80;
    addrs.clear();
    ttl = -1;
    REQUIRE(read_answer(m, rcode, addrs, ttl));
    CHECK(ttl == 0);
    m.pop_back();
    CHECK(!read_answer(m, rcode, addrs, ttl));
}

TEST_CASE("same_question: case-insensitive name and exact type and class") {
    auto q = make_query("Q1.Legacy.Example", 1);
    auto r = make_query("q1.legacy.example", 2);
    CHECK(same_question(q, r));
    CHECK(!same_question(q, make_query("q2.legacy.example", 1)));
    CHECK(!same_question(q, make_query("q1.legacy.example", 1, 28)));
    CHECK(!same_question(q, std::vector<uint8_t>(q.begin(), q.begin() + 14)));
}

TEST_CASE("a pool refuses a clear-text upstream and a missing CA file up front") {
    auto p = UpstreamPool::create({"tls://127.0.0.1:853", "192.0.2.1"}, Options{});
    REQUIRE(!p);
    CHECK(p.error().kind == ErrorKind::bad_uri);
    Options o;
    o.ca_file = "/nonexistent/ca.pem";
    auto p2 = UpstreamPool::create({"tls://127.0.0.1:853"}, o);
    REQUIRE(!p2);
    CHECK(p2.error().text().find("cannot load CA file") != std::string::npos);
}

TEST_CASE("SDK upstream lists split into encrypted and plain entries") {
    std::vector<std::string> enc;
    std::string plain;
    AddressLookup::split_upstreams("192.0.2.1, tls://192.0.2.2#dns.example,https://dns.example/dns-query,[2001:db8::1]:53",
                                   enc, plain);
    CHECK(enc == std::vector<std::string>{"tls://192.0.2.2#dns.example", "https://dns.example/dns-query"});
    CHECK(plain == "192.0.2.1,[2001:db8::1]:53");
    enc.clear();
    plain.clear();
    AddressLookup::split_upstreams("http://dns.example/x", enc, plain);
    CHECK(enc.size() == 1);  // kept so parse_upstream refuses it, never sent to c-ares
    CHECK(plain.empty());
}

TEST_CASE("build_query writes the name as labels and refuses bad names") {
    auto q = build_query("www.Example.", 28, 0x0102);
    REQUIRE(q);
    CHECK(*q == make_query("www.Example", 0x0102, 28));
    CHECK(!build_query("", 1, 0));
    CHECK(!build_query("a..b", 1, 0));
    CHECK(!build_query(std::string(64, 'x') + ".example", 1, 0));
    std::string longname;
    for (int i = 0; i < 50; ++i) longname += "abcd.";
    longname += "example";
    CHECK(!build_query(longname, 1, 0));
}

TEST_CASE("wire helpers survive mutated and truncated messages") {
    // Bounds checks under random damage (run under ASan in the sanitizer CI).
    std::vector<std::vector<uint8_t>> seeds = {make_query("a.example", 1), make_query("q1.legacy.example", 2, 28, true)};
    {
        auto m = make_query("a.example", 7);
        m[2] |= 0x80;
        m[7] = 1;
        const uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1};
        m.insert(m.end(), rr, rr + sizeof rr);
        seeds.push_back(m);
    }
    uint32_t x = 12345;
    auto rnd = [&] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return x;
    };
    int padded = 0;
    for (int i = 0; i < 20000; ++i) {
        std::vector<uint8_t> m = seeds[rnd() % seeds.size()];
        for (int k = 0, n = int(rnd() % 4); k < n; ++k) m[rnd() % m.size()] = uint8_t(rnd());
        if (rnd() % 4 == 0) m.resize(rnd() % (m.size() + 1));
        bool added = false;
        auto p = pad_query(m, 128, added);
        if (p && p->size() != m.size()) {
            CHECK(p->size() % 128 == 0);
            ++padded;
        }
        std::vector<uint8_t> w = m;
        strip_opt(w);
        CHECK(w.size() <= m.size());
        w = m;
        cap_ttls(w, 10);
        CHECK(w.size() == m.size());
        same_question(m, seeds[0]);
    }
    CHECK(padded > 1000);  // most damage still leaves a message we can pad
}
