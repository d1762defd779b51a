// Response rate limiting (resolver/include/aisid/resolver/rrl.hpp) with a fake clock: buckets per
// client network and answer, the rate and the window's debt, slip, exemptions,
// the categories (answers, negative answers by zone, errors), concurrent workers.
#include "aisid/resolver/rrl.hpp"
#include "aisid/resolver/query_wire.hpp"

#include "dns_query.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace aisid;
using namespace aisid::resolver;
using aisid::test::build_query;
using aisid::test::wire_name;

namespace {

sockaddr_storage addr(const char *text, uint16_t port = 40000) {
    sockaddr_storage s{};
    if (inet_pton(AF_INET, text, &reinterpret_cast<sockaddr_in &>(s).sin_addr) == 1) {
        s.ss_family = AF_INET;
        reinterpret_cast<sockaddr_in &>(s).sin_port = htons(port);
    } else {
        REQUIRE(inet_pton(AF_INET6, text, &reinterpret_cast<sockaddr_in6 &>(s).sin6_addr) == 1);
        s.ss_family = AF_INET6;
        reinterpret_cast<sockaddr_in6 &>(s).sin6_port = htons(port);
    }
    return s;
}

void put16(std::string &m, uint16_t v) {
    m += char(v >> 8);
    m += char(v & 0xff);
}

// A reply to (name, type): rcode, `answers` AAAA records, and for a negative
// reply the SOA of `zone` in the authority section.
std::string reply(const std::string &name, uint16_t type, uint8_t rcode, int answers, const std::string &zone = "") {
    std::string m = build_query(0x1234, name, type, false);
    m[2] = char(0x81);  // QR, RD
    m[3] = char(0x80 | rcode);
    m[7] = char(answers);
    for (int i = 0; i < answers; ++i) {
        put16(m, 0xc00c);
        put16(m, 28);
        put16(m, 1);
        put16(m, 0);
        put16(m, 300);
        put16(m, 16);
        m += std::string(16, char(i));
    }
    if (!zone.empty()) {
        m[9] = 1;
        m += wire_name(zone);
        put16(m, 6);
        put16(m, 1);
        put16(m, 0);
        put16(m, 60);
        std::string rd = wire_name("ns." + zone) + wire_name("admin." + zone) + std::string(20, '\1');
        put16(m, uint16_t(rd.size()));
        m += rd;
    }
    return m;
}

struct Run {
    int sent = 0, dropped = 0, slipped = 0;
};

Run fire(RateLimiter &rl, const RrlSettings &s, const sockaddr_storage &peer, const std::string &msg, int n,
         uint64_t now_ms) {
    Run r;
    for (int i = 0; i < n; ++i) {
        std::string m = msg;
        size_t len = m.size();
        switch (rl.check(s, peer, reinterpret_cast<uint8_t *>(m.data()), len, now_ms)) {
        case RrlAction::send: ++r.sent; CHECK(len == msg.size()); break;
        case RrlAction::drop: ++r.dropped; break;
        case RrlAction::slip: ++r.slipped; break;
        }
    }
    return r;
}

RrlSettings limit(uint32_t rate, uint32_t slip = 2, uint32_t window = 15) {
    RrlSettings s;
    s.responses_per_second = rate;
    s.slip = slip;
    s.window = window;
    return s;
}

} // namespace

TEST_CASE("rrl: off by default - every reply is sent") {
    RateLimiter rl(1024);
    RrlSettings s;
    CHECK(!s.enabled());
    Run r = fire(rl, s, addr("192.0.2.1"), reply("a.example", 28, 0, 1), 1000, 5000);
    CHECK(r.sent == 1000);
}

TEST_CASE("rrl: a bucket sends its rate per second then drops and slips alternately") {
    RateLimiter rl(1024);
    auto s = limit(5, 2);
    const std::string m = reply("yolo.detection.image.ai.example", 28, 0, 2);
    Run r = fire(rl, s, addr("192.0.2.1"), m, 25, 10000);
    CHECK(r.sent == 5);
    CHECK(r.slipped == 10);
    CHECK(r.dropped == 10);
}

TEST_CASE("rrl: a slipped reply is the header and question with TC and NOERROR") {
    RateLimiter rl(1024);
    auto s = limit(1, 1);
    std::string m = reply("gone.ai.example", 28, 3 /* NXDOMAIN */, 0, "ai.example");
    const size_t qend = 12 + wire_name("gone.ai.example").size() + 4;
    auto peer = addr("192.0.2.1");
    std::string first = m;
    size_t len = first.size();
    REQUIRE(rl.check(s, peer, reinterpret_cast<uint8_t *>(first.data()), len, 1000) == RrlAction::send);
    std::string cut = m;
    len = cut.size();
    REQUIRE(rl.check(s, peer, reinterpret_cast<uint8_t *>(cut.data()), len, 1000) == RrlAction::slip);
    REQUIRE(len == qend);
    const auto *b = reinterpret_cast<const uint8_t *>(cut.data());
    CHECK(rd16(b) == 0x1234);
    CHECK((b[2] & 0x80) != 0);  // QR
    CHECK((b[2] & 0x02) != 0);  // TC
    CHECK((b[3] & 0x0f) == 0);  // NOERROR: nothing negative to cache from it
    CHECK(rd16(b + 4) == 1);
    CHECK(rd16(b + 6) == 0);
    CHECK(rd16(b + 8) == 0);
    CHECK(rd16(b + 10) == 0);
    CHECK(std::memcmp(b + 12, m.data() + 12, qend - 12) == 0);
}

TEST_CASE("rrl: slip 0 drops every limited reply and slip 1 truncates every one") {
    const std::string m = reply("a.example", 1, 0, 1);
    {
        RateLimiter rl(1024);
        Run r = fire(rl, limit(3, 0), addr("192.0.2.1"), m, 20, 1000);
        CHECK(r.sent == 3);
        CHECK(r.dropped == 17);
        CHECK(r.slipped == 0);
    }
    {
        RateLimiter rl(1024);
        Run r = fire(rl, limit(3, 1), addr("192.0.2.1"), m, 20, 1000);
        CHECK(r.sent == 3);
        CHECK(r.slipped == 17);
    }
}

TEST_CASE("rrl: replies earn back at the rate and a flood owes up to its window") {
    RateLimiter rl(1024);
    auto peer = addr("198.51.100.7");
    const std::string m = reply("a.example", 28, 0, 1);
    SUBCASE("steady clients at the rate are never limited") {
        auto s = limit(10, 2, 15);
        int sent = 0;
        for (int t = 0; t < 5000; t += 100) sent += fire(rl, s, peer, m, 1, 100000 + uint64_t(t)).sent;
        CHECK(sent == 50);
    }
    SUBCASE("half a second earns half the rate") {
        auto s = limit(10, 0, 15);
        CHECK(fire(rl, s, peer, m, 100, 100000).sent == 10);
        CHECK(fire(rl, s, peer, m, 100, 100500).sent == 0);  // the flood ran up debt: still owing
    }
    SUBCASE("after a flood the bucket stays limited for the window, then recovers") {
        auto s = limit(10, 0, 2);
        CHECK(fire(rl, s, peer, m, 1000, 100000).sent == 10);  // owes 2 s worth (20) now
        CHECK(fire(rl, s, peer, m, 1, 101000).sent == 0);      // 10 earned: still -10
        CHECK(fire(rl, s, peer, m, 1, 101900).sent == 0);      // 9 more: -2, then -3 for this one
        Run r = fire(rl, s, peer, m, 20, 103200);              // +13 (capped at one second's worth: 10)
        CHECK(r.sent == 10);
    }
    SUBCASE("a quiet bucket holds no more than one second's worth") {
        auto s = limit(10, 0, 15);
        CHECK(fire(rl, s, peer, m, 1, 100000).sent == 1);
        CHECK(fire(rl, s, peer, m, 100, 160000).sent == 10);
    }
}

TEST_CASE("rrl: buckets are per client network - IPv4 /24 and IPv6 /56 by default") {
    // Slots are chosen by a keyed hash with a random seed: in a 1024-slot
    // table two of the networks below shared a slot about one run in 300 (a
    // later network then takes the slot over and the v4-mapped check sees a
    // fresh bucket). 2^18 slots make that one run in ~10^5.
    RateLimiter rl(1 << 18);
    auto s = limit(4, 0);
    const std::string m = reply("a.example", 28, 0, 1);
    CHECK(fire(rl, s, addr("192.0.2.1"), m, 10, 1000).sent == 4);
    CHECK(fire(rl, s, addr("192.0.2.200", 999), m, 10, 1000).sent == 0);  // same /24, other host and port
    CHECK(fire(rl, s, addr("192.0.3.1"), m, 10, 1000).sent == 4);
    CHECK(fire(rl, s, addr("2001:db8:0:100::1"), m, 10, 1000).sent == 4);
    CHECK(fire(rl, s, addr("2001:db8:0:1ff::2"), m, 10, 1000).sent == 0);  // same /56
    CHECK(fire(rl, s, addr("2001:db8:0:200::1"), m, 10, 1000).sent == 4);
    CHECK(fire(rl, s, addr("::ffff:192.0.2.9"), m, 10, 1000).sent == 0);  // v4-mapped: the v4 /24
    s.ipv4_prefix = 32;
    RateLimiter rl32(1024);
    CHECK(fire(rl32, s, addr("192.0.2.1"), m, 10, 1000).sent == 4);
    CHECK(fire(rl32, s, addr("192.0.2.2"), m, 10, 1000).sent == 4);
}

TEST_CASE("rrl: answers are counted per name and type - negative answers per zone - errors per client") {
    RateLimiter rl(1024);
    auto s = limit(3, 0);
    auto peer = addr("192.0.2.1");
    CHECK(fire(rl, s, peer, reply("a.example", 28, 0, 1), 10, 1000).sent == 3);
    CHECK(fire(rl, s, peer, reply("A.Example", 28, 0, 1), 10, 1000).sent == 0);  // case folds
    CHECK(fire(rl, s, peer, reply("yolo.detection-z.image.ai.example", 28, 0, 1), 2, 1000).sent == 2);
    CHECK(fire(rl, s, peer, reply("YOLO.Detection-Z.IMAGE.ai.EXAMPLE", 28, 0, 1), 10, 1000).sent == 1);
    // Only A-Z fold: '@' and '[' (just outside it) stay apart from '`' and '{'.
    CHECK(fire(rl, s, peer, reply("x@y[z.example", 28, 0, 1), 10, 1000).sent == 3);
    CHECK(fire(rl, s, peer, reply("x`y{z.example", 28, 0, 1), 10, 1000).sent == 3);
    CHECK(fire(rl, s, peer, reply("a.example", 1, 0, 1), 10, 1000).sent == 3);
    CHECK(fire(rl, s, peer, reply("b.example", 28, 0, 1), 10, 1000).sent == 3);
    // Random subdomains of one zone: one bucket (the SOA owner), NXDOMAIN and NODATA apart.
    int nx = 0;
    for (int i = 0; i < 20; ++i)
        nx += fire(rl, s, peer, reply("r" + std::to_string(i) + ".ai.example", 28, 3, 0, "ai.example"), 1, 1000).sent;
    CHECK(nx == 3);
    CHECK(fire(rl, s, peer, reply("r99.other.example", 28, 3, 0, "other.example"), 5, 1000).sent == 3);
    CHECK(fire(rl, s, peer, reply("x.ai.example", 16, 0, 0, "ai.example"), 5, 1000).sent == 3);
    // Errors: one bucket per client network whatever the name.
    int sf = 0;
    for (int i = 0; i < 20; ++i) sf += fire(rl, s, peer, reply("e" + std::to_string(i) + ".example", 1, 2, 0), 1, 1000).sent;
    CHECK(sf == 3);
    CHECK(fire(rl, s, peer, reply("e.example", 1, 5 /* REFUSED */, 0), 5, 1000).sent == 3);
}

TEST_CASE("rrl: errors have their own rate when set") {
    RateLimiter rl(1024);
    auto s = limit(2, 0);
    s.errors_per_second = 7;
    auto peer = addr("192.0.2.1");
    CHECK(fire(rl, s, peer, reply("e.example", 1, 2, 0), 20, 1000).sent == 7);
    CHECK(fire(rl, s, peer, reply("a.example", 1, 0, 1), 20, 1000).sent == 2);
}

TEST_CASE("rrl: exempt networks are never limited") {
    RateLimiter rl(1024);
    auto s = limit(2, 0);
    s.exempt.push_back(*parse_cidr("10.0.0.0/8"));
    s.exempt.push_back(*parse_cidr("2001:db8:1::/48"));
    const std::string m = reply("a.example", 28, 0, 1);
    CHECK(fire(rl, s, addr("10.1.2.3"), m, 100, 1000).sent == 100);
    CHECK(fire(rl, s, addr("2001:db8:1:2::3"), m, 100, 1000).sent == 100);
    CHECK(fire(rl, s, addr("11.1.2.3"), m, 100, 1000).sent == 2);
}

TEST_CASE("rrl: replies it cannot parse are still counted and never overread") {
    RateLimiter rl(1024);
    auto s = limit(2, 1);
    auto peer = addr("192.0.2.1");
    std::string hdr(12, '\0');
    hdr[2] = char(0x80);
    hdr[5] = 1;  // a question that is not there
    CHECK(fire(rl, s, peer, hdr, 10, 1000).sent == 2);
    std::string cut = hdr;
    size_t len = cut.size();
    CHECK(rl.check(s, peer, reinterpret_cast<uint8_t *>(cut.data()), len, 1000) == RrlAction::slip);
    CHECK(len == 12);
    CHECK(cut[5] == 0);  // no question claimed in the truncated reply
    std::string tiny(5, '\xff');
    len = tiny.size();
    CHECK(rl.check(s, peer, reinterpret_cast<uint8_t *>(tiny.data()), len, 1000) == RrlAction::send);
    // A negative reply whose sections lie about their counts.
    std::string liar = reply("x.example", 1, 3, 0, "example");
    liar[7] = 40;
    fire(rl, s, peer, liar, 5, 1000);
}

TEST_CASE("rrl: the clock is per call and a worker's older reading never moves a bucket back") {
    RateLimiter rl(1024);
    auto s = limit(5, 0);
    auto peer = addr("192.0.2.1");
    const std::string m = reply("a.example", 28, 0, 1);
    CHECK(fire(rl, s, peer, m, 5, 50000).sent == 5);
    CHECK(fire(rl, s, peer, m, 5, 49990).sent == 0);  // another worker's clock, 10 ms behind
    CHECK(fire(rl, s, peer, m, 1, 50200).sent == 0);  // 1 earned, 5 owed from the 49990 flood
}

TEST_CASE("rrl: workers sharing a table together send no more than the rate") {
    RateLimiter rl(1 << 16);
    auto s = limit(100, 0);
    auto peer = addr("192.0.2.1");
    const std::string m = reply("a.example", 28, 0, 1);
    std::atomic<int> sent{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&] {
            int k = 0;
            for (int i = 0; i < 20000; ++i) {
                std::string c = m;
                size_t len = c.size();
                if (rl.check(s, peer, reinterpret_cast<uint8_t *>(c.data()), len, 7000) == RrlAction::send) ++k;
            }
            sent += k;
        });
    for (auto &t : ts) t.join();
    CHECK(sent.load() >= 100);
    CHECK(sent.load() <= 104);  // the bucket is claimed once, then compare-and-swap: at most a racing claim or so
}
