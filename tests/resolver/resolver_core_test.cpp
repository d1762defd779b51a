// The query core without I/O: zone answers (table-driven, records as zone
// text), golden wire vectors, the cache with a fake clock, upstream checks,
// access control, the authority dispatch point.
#include "resolver_test_util.hpp"
#include "test_zone.hpp"

#include "aisid/core/zone_set.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include <algorithm>
#include <cstring>

using namespace aisid;
using namespace aisid::resolver;
using namespace aisid::resolver::test;

namespace {

// The test zone with a CNAME inside it.
const std::string kZone = std::string(aisid::test::kTestZone) + "www                  CNAME ns\n";

struct Core {
    std::shared_ptr<ZoneSet> zones = std::make_shared<ZoneSet>();
    Cache cache{1 << 20};
    CoreSettings settings;
    QueryCore core{cache, settings};
    uint8_t out[65535];
    Core(const std::string &zone_text = kZone) {
        auto z = load_zone_text(zone_text, "test.zone");
        REQUIRE_MESSAGE(z, (z ? "" : z.error().to_string()));
        zones->add(*z);
        core.set_zones(zones.get());
    }
    CoreResult ask(const std::string &msg, const char *from = "127.0.0.1", bool tcp = false, uint64_t now = 1000) {
        Query q;
        return core.handle(u8(msg), msg.size(), peer(from), tcp, now, out, sizeof out, q);
    }
    LdnsPktPtr reply(const CoreResult &r) { return parse(out, r.len); }
};

struct Case {
    const char *name;
    uint16_t type;
    ldns_pkt_rcode rcode;
    std::vector<std::string> answer;
    std::vector<std::string> authority;
};

const std::string kSoa = "ai.example. 60 IN SOA ns.ai.example. admin.ai.example. 2026112501 3600 600 86400 60";
const std::string kRevSoa = "2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa. 60 IN SOA ns.ai.example. admin.ai.example. "
                            "2026112501 3600 600 86400 60";

} // namespace

TEST_CASE("local zone answers (SPEC §2, RFC 2308)") {
    Core c;
    const Case cases[] = {
        {"yolo.detection.image.ai.example.", 28, LDNS_RCODE_NOERROR,
         {"yolo.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:1:0"}, {}},
        {"YOLO.Detection.image.ai.example.", 28, LDNS_RCODE_NOERROR,
         {"YOLO.Detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:1:0"}, {}},
        {"p5000.yolo.detection.image.ai.example.", 28, LDNS_RCODE_NOERROR,
         {"p5000.yolo.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:1:1388"}, {}},
        {"detection.image.ai.example.", 28, LDNS_RCODE_NOERROR,
         {"detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2::"}, {}},
        {"image.ai.example.", 28, LDNS_RCODE_NOERROR, {"image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1::"}, {}},
        {"yolo.detection.image.ai.example.", 64, LDNS_RCODE_NOERROR,
         {"yolo.detection.image.ai.example. 300 IN SVCB 1 yolo-legacy.provider.example. port=8443"}, {}},
        {"yolo.detection.image.ai.example.", 1, LDNS_RCODE_NOERROR, {}, {kSoa}},
        {"p5000.yolo.detection.image.ai.example.", 16, LDNS_RCODE_NOERROR, {}, {kSoa}},
        {"ai.example.", 6, LDNS_RCODE_NOERROR, {"ai.example. 300 IN SOA ns.ai.example. admin.ai.example. 2026112501 3600 600 86400 60"}, {}},
        {"ai.example.", 2, LDNS_RCODE_NOERROR, {"ai.example. 300 IN NS ns.ai.example."}, {}},
        {"_aisid.ai.example.", 16, LDNS_RCODE_NOERROR,
         {"_aisid.ai.example. 300 IN TXT \"v=aisid1\" \"prefix=2001:db8:abcd:12::/64\""}, {}},
        {"www.ai.example.", 28, LDNS_RCODE_NOERROR,
         {"ns.ai.example. 300 IN AAAA 2001:db8:53::1", "www.ai.example. 300 IN CNAME ns.ai.example."}, {}},
        {"_object.ai.example.", 16, LDNS_RCODE_NOERROR, {}, {kSoa}},  // an empty non-terminal
        {"nope.ai.example.", 28, LDNS_RCODE_NXDOMAIN, {}, {kSoa}},
        {"p0.image.ai.example.", 28, LDNS_RCODE_NXDOMAIN, {}, {kSoa}},
        {"yolo.image.ai.example.", 28, LDNS_RCODE_NXDOMAIN, {}, {kSoa}},  // no function: not a service name
        {"a.b.c.d.ai.example.", 28, LDNS_RCODE_NXDOMAIN, {}, {kSoa}},
        {"8.8.3.1.1.0.0.0.2.0.0.0.1.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.", 12, LDNS_RCODE_NOERROR,
         {"8.8.3.1.1.0.0.0.2.0.0.0.1.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR "
          "p5000.yolo.detection.image.ai.example."},
         {}},
        // Negative answers under ip6.arpa carry the SOA of the reverse zone
        // synthesized for the prefix (RFC 2308 §3: an ancestor of the name).
        {"0.0.0.0.0.0.0.0.0.0.0.0.7.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.", 12, LDNS_RCODE_NXDOMAIN,
         {}, {kRevSoa}},
        {"8.8.3.1.1.0.0.0.2.0.0.0.1.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.", 28, LDNS_RCODE_NOERROR,
         {}, {kRevSoa}},
        // The reverse apex answers SOA and NS; the names between it and the
        // addresses are empty non-terminals (RFC 8020): NODATA, not NXDOMAIN.
        {"2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.", 6, LDNS_RCODE_NOERROR,
         {"2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN SOA ns.ai.example. admin.ai.example. 2026112501 3600 "
          "600 86400 60"},
         {}},
        {"2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.", 2, LDNS_RCODE_NOERROR,
         {"2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN NS ns.ai.example."}, {}},
        {"2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.", 12, LDNS_RCODE_NOERROR, {}, {kRevSoa}},
        {"1.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.", 12, LDNS_RCODE_NOERROR, {}, {kRevSoa}},
        {"0.0.0.2.0.0.0.1.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.", 12, LDNS_RCODE_NOERROR, {}, {kRevSoa}},
    };
    for (const Case &k : cases) {
        std::string name = k.name;
        CAPTURE(name);
        CAPTURE(k.type);
        CoreResult r = c.ask(query(0x4242, k.name, k.type));
        REQUIRE(r.verdict == Verdict::Answered);
        auto p = c.reply(r);
        REQUIRE(p);
        CHECK(ldns_pkt_id(p.get()) == 0x4242);
        CHECK(ldns_pkt_qr(p.get()));
        CHECK(ldns_pkt_aa(p.get()));
        CHECK(ldns_pkt_get_rcode(p.get()) == k.rcode);
        CHECK(ldns_pkt_edns_udp_size(p.get()) == 1232);
        CHECK(section(ldns_pkt_answer(p.get())) == k.answer);
        CHECK(section(ldns_pkt_authority(p.get())) == k.authority);
        CHECK(r.outcome == (k.rcode == LDNS_RCODE_NXDOMAIN ? Outcome::aisid_nxdomain : Outcome::aisid));
    }
}

TEST_CASE("golden wire vector: AAAA of a registered service, EDNS") {
    Core c;
    // Query, annotated:
    //   1234 0100 0001 0000 0000 0001      ID, RD, QD=1, AR=1
    //   04 796f6c6f 09 646574656374696f6e 05 696d616765 02 6169 07 6578616d706c65 00   yolo.detection.image.ai.example.
    //   001c 0001                          AAAA IN
    //   00 0029 04d0 00000000 0000         OPT: 1232, v0, no flags
    std::string q = query(0x1234, "yolo.detection.image.ai.example", 28);
    CoreResult r = c.ask(q);
    REQUIRE(r.verdict == Verdict::Answered);
    // Reply: ID; QR AA RD RA; QD=1 AN=1 NS=0 AR=1; the question as sent; AAAA with
    // its owner compressed to the question (c00c), TTL 300, 16 bytes; our OPT.
    const std::string expected = "1234" "8580" "0001" "0001" "0000" "0001" +
        std::string("04796f6c6f09646574656374696f6e05696d616765026169076578616d706c6500" "001c0001") +
        "c00c" "001c" "0001" "0000012c" "0010" "20010db8abcd00120001000200010000" +
        "00" "0029" "04d0" "00000000" "0000";
    std::string got;
    char hx[3];
    for (size_t i = 0; i < r.len; ++i) {
        snprintf(hx, sizeof hx, "%02x", c.out[i]);
        got += hx;
    }
    CHECK(got == expected);
    // Parsed → written (ldns) → re-parsed: the same message.
    auto p = c.reply(r);
    REQUIRE(p);
    uint8_t *w = nullptr;
    size_t wn = 0;
    REQUIRE(ldns_pkt2wire(&w, p.get(), &wn) == LDNS_STATUS_OK);
    auto p2 = parse(w, wn);
    free(w);
    REQUIRE(p2);
    CHECK(section(ldns_pkt_answer(p.get())) == section(ldns_pkt_answer(p2.get())));
}

TEST_CASE("no EDNS: no OPT in the reply - a 512-byte limit with TC - TCP gets it all") {
    std::string zone = kZone;
    for (int i = 0; i < 8; ++i) zone += "big TXT \"" + std::string(100, char('a' + i)) + "\"\n";
    Core c(zone.c_str());
    CoreResult r = c.ask(query(1, "big.ai.example", 16, false));
    auto p = c.reply(r);
    REQUIRE(p);
    CHECK(ldns_pkt_tc(p.get()));
    CHECK(ldns_pkt_ancount(p.get()) == 0);
    CHECK(r.len <= 512);
    CHECK(ldns_pkt_edns(p.get()) == false);
    r = c.ask(query(1, "big.ai.example", 16, true, 0x0100, 1232));
    p = c.reply(r);
    CHECK(!ldns_pkt_tc(p.get()));
    CHECK(ldns_pkt_ancount(p.get()) == 8);
    r = c.ask(query(1, "big.ai.example", 16, true, 0x0100, 600));  // the client's smaller size is honoured
    CHECK(c.reply(r) != nullptr);
    CHECK(ldns_pkt_tc(c.reply(r).get()));
    r = c.ask(query(1, "big.ai.example", 16, false), "127.0.0.1", true);
    CHECK(ldns_pkt_ancount(c.reply(r).get()) == 8);
}

TEST_CASE("malformed and unusual messages") {
    Core c;
    Query q;
    uint8_t out[512];
    auto handle = [&](const std::string &m) { return c.core.handle(u8(m), m.size(), peer("127.0.0.1"), false, 0, out, sizeof out, q); };
    CHECK(handle(std::string(5, '\0')).verdict == Verdict::Drop);
    CHECK(handle(query(1, "ai.example", 6, true, 0x8100)).verdict == Verdict::Drop);  // a response
    std::string two = query(1, "ai.example", 6);
    two[5] = 2;
    CoreResult r = handle(two);
    CHECK(r.outcome == Outcome::formerr);
    CHECK((out[3] & 0xf) == 1);
    std::string trailing = query(1, "ai.example", 6) + "x";
    CHECK(handle(trailing).outcome == Outcome::formerr);
    std::string two_opt = query(1, "ai.example", 6);
    two_opt += two_opt.substr(two_opt.size() - 11);
    two_opt[11] = 2;
    CHECK(handle(two_opt).outcome == Outcome::formerr);
    std::string v1 = query(1, "ai.example", 6);
    v1[v1.size() - 5] = 1;  // EDNS version 1
    r = handle(v1);
    CHECK(r.outcome == Outcome::formerr);
    auto p = parse(out, r.len);
    REQUIRE(p);
    CHECK(ldns_pkt_get_rcode(p.get()) == 0);  // BADVERS lives in the OPT's extended rcode
    CHECK(ldns_pkt_edns_extended_rcode(p.get()) == 1);
    CHECK(handle(query(1, "ai.example", 41)).outcome == Outcome::formerr);  // qtype OPT is meta
    // IQUERY: NOTIMP.
    CHECK(handle(query(1, "ai.example", 6, true, 0x0900)).outcome == Outcome::notimp);
    // CHAOS class in a local zone: REFUSED, not forwarded.
    std::string ch = query(1, "ai.example", 6);
    ch[ch.size() - 12] = 3;
    CHECK(handle(ch).outcome == Outcome::refused);
}

TEST_CASE("access control: loopback, --allow, --deny") {
    Core c;
    std::string q = query(1, "yolo.detection.image.ai.example", 28);
    CHECK(c.ask(q, "127.0.0.1").outcome == Outcome::aisid);
    CHECK(c.ask(q, "::1").outcome == Outcome::aisid);
    CHECK(c.ask(q, "::ffff:127.0.0.9").outcome == Outcome::aisid);
    CoreResult r = c.ask(q, "192.0.2.1");
    CHECK(r.outcome == Outcome::refused);
    CHECK((c.out[3] & 0xf) == 5);
    CHECK(c.ask(q, "2001:db8::1").outcome == Outcome::refused);
    c.settings.allow.push_back(*parse_cidr("192.0.2.0/24"));
    c.settings.allow.push_back(*parse_cidr("2001:db8::/32"));
    CHECK(c.ask(q, "192.0.2.1").outcome == Outcome::aisid);
    CHECK(c.ask(q, "::ffff:192.0.2.77").outcome == Outcome::aisid);
    CHECK(c.ask(q, "2001:db8::1").outcome == Outcome::aisid);
    CHECK(c.ask(q, "192.0.3.1").outcome == Outcome::refused);
    c.settings.deny.push_back(*parse_cidr("127.0.0.2"));
    CHECK(c.ask(q, "127.0.0.2").outcome == Outcome::refused);
    CHECK(c.ask(q, "127.0.0.1").outcome == Outcome::aisid);
}

TEST_CASE("the authority dispatch point: UPDATE, NOTIFY, AXFR, IXFR") {
    Core c;
    CHECK(c.ask(query(1, "ai.example", 6, false, 0x2800)).outcome == Outcome::notimp);
    CHECK(c.ask(query(1, "ai.example", 6, false, 0x2000)).outcome == Outcome::notimp);
    CHECK(c.ask(query(1, "ai.example", 252, false, 0)).outcome == Outcome::refused);
    CHECK(c.ask(query(1, "ai.example", 251, false, 0)).outcome == Outcome::refused);
    c.settings.has_authority = true;
    for (auto [t, f] : {std::pair<uint16_t, uint16_t>{6, 0x2800}, {6, 0x2000}, {252, 0}, {251, 0}}) {
        CoreResult r = c.ask(query(1, "ai.example", t, false, f));
        CHECK(r.verdict == Verdict::Pass);
        CHECK(r.to_authority);
    }
    // Not for strangers, even with a hook.
    CHECK(c.ask(query(1, "ai.example", 252, false, 0), "192.0.2.1").outcome == Outcome::refused);
}

TEST_CASE("forwarding: upstream query, answer checks, cache with TTL countdown, stale, SERVFAIL") {
    Core c;
    c.settings.stale_seconds = 60;
    std::string cq = query(0x7777, "WWW.legacy.example", 1, true);
    Query q;
    uint8_t out[4096];
    CoreResult r = c.core.handle(u8(cq), cq.size(), peer("127.0.0.1"), false, 1000, out, sizeof out, q);
    CHECK(r.verdict == Verdict::Pass);
    CHECK(!r.to_authority);
    // The query we send: our ID, RD, the client's question, our OPT.
    size_t n = c.core.upstream_query(q, u8(cq), 0xbeef, out, sizeof out);
    auto up = parse(out, n);
    REQUIRE(up);
    CHECK(ldns_pkt_id(up.get()) == 0xbeef);
    CHECK(ldns_pkt_rd(up.get()));
    CHECK(ldns_pkt_edns_udp_size(up.get()) == 1232);

    std::string ans = upstream_answer(0xbeef, "www.legacy.example.", 1, LDNS_RCODE_NOERROR,
                                      {"www.legacy.example. 100 IN A 192.0.2.10"}, {});
    CHECK(QueryCore::check_upstream(q, 0xbeef, u8(ans), ans.size()) == QueryCore::Check::ok);
    CHECK(QueryCore::check_upstream(q, 0xbeee, u8(ans), ans.size()) == QueryCore::Check::ignore);  // wrong ID
    std::string other = upstream_answer(0xbeef, "evil.example.", 1, LDNS_RCODE_NOERROR, {"evil.example. 100 IN A 192.0.2.66"}, {});
    CHECK(QueryCore::check_upstream(q, 0xbeef, u8(other), other.size()) == QueryCore::Check::ignore);  // wrong question
    std::string aaaa = upstream_answer(0xbeef, "www.legacy.example.", 28, LDNS_RCODE_NOERROR, {}, {});
    CHECK(QueryCore::check_upstream(q, 0xbeef, u8(aaaa), aaaa.size()) == QueryCore::Check::ignore);  // wrong type
    std::string tc = upstream_answer(0xbeef, "www.legacy.example.", 1, LDNS_RCODE_NOERROR, {}, {}, true);
    CHECK(QueryCore::check_upstream(q, 0xbeef, u8(tc), tc.size()) == QueryCore::Check::truncated);
    std::string sf = upstream_answer(0xbeef, "www.legacy.example.", 1, LDNS_RCODE_SERVFAIL, {}, {});
    CHECK(QueryCore::check_upstream(q, 0xbeef, u8(sf), sf.size()) == QueryCore::Check::failed);

    r = c.core.answer_from_upstream(q, u8(cq), u8(ans), ans.size(), false, 1000, out, sizeof out);
    CHECK(r.outcome == Outcome::forwarded);
    auto p = parse(out, r.len);
    REQUIRE(p);
    CHECK(ldns_pkt_id(p.get()) == 0x7777);
    CHECK(!ldns_pkt_aa(p.get()));
    CHECK(section(ldns_pkt_answer(p.get())) == std::vector<std::string>{"WWW.legacy.example. 100 IN A 192.0.2.10"});

    // 40 s later: a cache hit with the TTL counted down, in the new client's letter case.
    std::string cq2 = query(0x0102, "www.LEGACY.example", 1, false);
    r = c.ask(cq2, "127.0.0.1", false, 41000);
    CHECK(r.outcome == Outcome::cache_hit);
    p = c.reply(r);
    CHECK(ldns_pkt_id(p.get()) == 0x0102);
    CHECK(ldns_pkt_edns(p.get()) == false);  // the client sent no OPT
    CHECK(section(ldns_pkt_answer(p.get())) == std::vector<std::string>{"www.LEGACY.example. 60 IN A 192.0.2.10"});
    // Expired: forwarded again.
    CHECK(c.ask(cq2, "127.0.0.1", false, 101000).verdict == Verdict::Pass);
    // Every upstream failed: RFC 8767 stale answer (TTL ≤ 30).
    r = c.core.answer_failure(q, u8(cq), false, 101000, out, sizeof out);
    CHECK(r.outcome == Outcome::stale);
    p = parse(out, r.len);
    CHECK(section(ldns_pkt_answer(p.get())) == std::vector<std::string>{"WWW.legacy.example. 30 IN A 192.0.2.10"});
    // Past the stale window: SERVFAIL.
    r = c.core.answer_failure(q, u8(cq), false, 101000 + 61000, out, sizeof out);
    CHECK(r.outcome == Outcome::servfail);
    CHECK(ldns_pkt_get_rcode(parse(out, r.len).get()) == LDNS_RCODE_SERVFAIL);
}

TEST_CASE("RFC 2308 negative caching: min(SOA TTL, SOA minimum) - no SOA, no caching") {
    Core c;
    std::string cq = query(9, "nx.legacy.example", 1);
    Query q;
    uint8_t out[4096];
    c.core.handle(u8(cq), cq.size(), peer("127.0.0.1"), false, 0, out, sizeof out, q);
    std::string nx = upstream_answer(5, "nx.legacy.example.", 1, LDNS_RCODE_NXDOMAIN, {},
                                     {"legacy.example. 120 IN SOA ns.legacy.example. admin.legacy.example. 1 3600 600 86400 30"});
    CoreResult r = c.core.answer_from_upstream(q, u8(cq), u8(nx), nx.size(), false, 0, out, sizeof out);
    CHECK(ldns_pkt_get_rcode(parse(out, r.len).get()) == LDNS_RCODE_NXDOMAIN);
    r = c.ask(cq, "127.0.0.1", false, 29000);
    CHECK(r.outcome == Outcome::cache_hit);
    CHECK(ldns_pkt_get_rcode(c.reply(r).get()) == LDNS_RCODE_NXDOMAIN);
    CHECK(c.ask(cq, "127.0.0.1", false, 30500).verdict == Verdict::Pass);  // 30 s, the SOA minimum

    std::string cq2 = query(9, "nosoa.legacy.example", 1);
    c.core.handle(u8(cq2), cq2.size(), peer("127.0.0.1"), false, 0, out, sizeof out, q);
    std::string nosoa = upstream_answer(5, "nosoa.legacy.example.", 1, LDNS_RCODE_NXDOMAIN, {}, {});
    c.core.answer_from_upstream(q, u8(cq2), u8(nosoa), nosoa.size(), false, 0, out, sizeof out);
    CHECK(c.ask(cq2, "127.0.0.1", false, 10).verdict == Verdict::Pass);
}

TEST_CASE("local zones shadow the cache and are never forwarded") {
    Core c;
    for (const char *n : {"nope.ai.example", "x.y.z.ai.example", "ai.example"}) {
        CoreResult r = c.ask(query(1, n, 1));
        CHECK(r.verdict == Verdict::Answered);
    }
    CHECK(c.ask(query(1, "example", 1)).verdict == Verdict::Pass);
    CHECK(c.ask(query(1, "other.example", 28)).verdict == Verdict::Pass);
}

TEST_CASE("cache: LRU eviction keeps the memory bound, per shard") {
    // 3 entries of ~20 KB fit in each shard's share of the bound.
    const size_t bound = Cache::kShards * Cache::kMinShardBytes;
    Cache cache(bound);
    REQUIRE(cache.shards() == Cache::kShards);
    auto entry = [](const std::string &key) {
        CacheEntry e;
        e.key = key;
        e.body.assign(20000, 'x');
        e.expires_ms = 1000000;
        e.stale_until_ms = 2000000;
        return e;
    };
    auto has = [&](const std::string &key) { return cache.visit(key, 0, false, [](const CacheEntry &) {}); };
    for (int i = 0; i < 1000; ++i) {
        cache.insert(entry("k" + std::to_string(i)));
        CHECK(cache.bytes() <= bound);
    }
    CHECK(cache.entries() > Cache::kShards);
    CHECK(cache.entries() <= 3 * Cache::kShards);
    CHECK(cache.evictions() == 1000 - cache.entries());
    CHECK(has("k999"));
    CHECK_FALSE(has("k0"));
    // Keys of one shard: a use moves an entry to the front of its shard's LRU,
    // so it survives the next insertion there; the one behind it does not.
    std::vector<std::string> same;
    for (int i = 0; same.size() < 6; ++i) {
        std::string k = "s" + std::to_string(i);
        if (cache.shard_index(k) == cache.shard_index("k999")) same.push_back(k);
    }
    cache.insert(entry(same[0]));
    cache.insert(entry(same[1]));
    cache.insert(entry(same[2])); // the shard is now same[2], same[1], same[0]
    CHECK(has(same[0]));          // now same[0], same[2], same[1]
    cache.insert(entry(same[3])); // evicts same[1]
    CHECK(has(same[0]));
    CHECK_FALSE(has(same[1]));
    cache.set_max_bytes(0);
    CHECK(cache.entries() == 0);
    CHECK(cache.bytes() == 0);
    // A small cache is one shard, so an answer still fits.
    Cache small(8 << 10);
    CHECK(small.shards() == 1);
    small.insert(entry("x"));
    CHECK_FALSE(small.visit("x", 0, false, [](const CacheEntry &) {})); // 20 KB > 8 KiB: refused
    CacheEntry e = entry("y");
    e.body.assign(1000, 'y');
    small.insert(std::move(e));
    CHECK(small.visit("y", 0, false, [](const CacheEntry &) {}));
}

TEST_CASE("cache: shared by threads - concurrent inserts and hits keep the bound and never tear an entry") {
    Cache cache(Cache::kShards * 4000);
    std::atomic<int> bad{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) {
        ts.emplace_back([&, t] {
            for (int i = 0; i < 20000; ++i) {
                std::string key = "k" + std::to_string((i * 7 + t) % 500);
                if (i % 3 == 0) {
                    CacheEntry e;
                    e.key = key;
                    e.body.assign(50 + (i % 200), static_cast<char>('a' + t));
                    e.expires_ms = 1000000;
                    cache.insert(std::move(e));
                } else {
                    cache.visit(key, 0, false, [&](const CacheEntry &e) {
                        // Every byte of a body was written by one thread.
                        if (e.key != key || e.body.find_first_not_of(e.body[0]) != std::string::npos) ++bad;
                    });
                }
            }
        });
    }
    for (auto &t : ts) t.join();
    CHECK(bad == 0);
    CHECK(cache.bytes() <= Cache::kShards * 4000);
}

namespace {
// A cache entry for qname/qtype (DO and CD as given), alive until expires_ms
// and stale until stale_ms.
CacheEntry named_entry(const std::string &qname, uint16_t qtype, bool do_bit, uint64_t expires_ms, uint64_t stale_ms) {
    WireName n;
    REQUIRE(name_from_text(qname, n));
    uint8_t key[kMaxNameLen + 8];
    size_t klen = make_cache_key(n.wire(), qtype, 1, do_bit, false, key);
    CacheEntry e;
    e.key.assign(reinterpret_cast<const char *>(key), klen);
    e.body = "x";
    e.expires_ms = expires_ms;
    e.stale_until_ms = stale_ms;
    return e;
}
} // namespace

TEST_CASE("cache: erase_name removes every type and variant of that name, and only that name") {
    Cache cache(1 << 20);
    for (const char *n : {"www.legacy.example", "WWW.Legacy.Example.", "a.www.legacy.example", "legacy.example"})
        for (uint16_t t : {uint16_t(1), uint16_t(28), uint16_t(15)})
            for (bool d : {false, true}) cache.insert(named_entry(n, t, d, 1000, 2000));
    // The first two names are one name (case-insensitive): 6 entries each for 3 names.
    REQUIRE(cache.entries() == 18);
    WireName www;
    REQUIRE(name_from_text("www.LEGACY.example.", www));
    CHECK(cache.erase_name(www.wire()) == 6);
    CHECK(cache.entries() == 12);
    CHECK(cache.erase_name(www.wire()) == 0);
    auto has = [&](const char *n, uint16_t t) {
        CacheEntry e = named_entry(n, t, false, 0, 0);
        return cache.visit(e.key, 0, false, [](const CacheEntry &) {});
    };
    CHECK_FALSE(has("www.legacy.example", 1));
    CHECK_FALSE(has("www.legacy.example", 28));
    CHECK(has("a.www.legacy.example", 1));  // a name below is another name
    CHECK(has("legacy.example", 15));       // and so is its parent
    size_t before = cache.bytes();
    CHECK(before > 0);
    WireName root;
    REQUIRE(name_from_text(".", root));
    CHECK(cache.erase_name(root.wire()) == 0);
    CHECK(cache.bytes() == before);
}

TEST_CASE("cache: for_each visits every live entry once, stale ones too, never the dead") {
    Cache cache(Cache::kShards * Cache::kMinShardBytes);
    for (int i = 0; i < 100; ++i)
        cache.insert(named_entry("n" + std::to_string(i) + ".example", 1, false, 1000, 5000));
    cache.insert(named_entry("stale.example", 1, false, 100, 5000));  // expired, inside its stale window
    cache.insert(named_entry("dead.example", 1, false, 100, 200));    // past any use
    std::set<std::string> seen;
    size_t calls = 0;
    // f may call back into the cache: no shard is locked while it runs.
    cache.for_each(500, [&](const CacheEntry &e) {
        ++calls;
        seen.insert(name_to_text(e.key.substr(0, e.key.size() - Cache::kKeyTail)));
        cache.visit(e.key, 500, true, [](const CacheEntry &) {});
    });
    CHECK(calls == 101);
    CHECK(seen.size() == 101);
    CHECK(seen.count("n0.example.") == 1);
    CHECK(seen.count("n99.example.") == 1);
    CHECK(seen.count("stale.example.") == 1);
    CHECK(seen.count("dead.example.") == 0);
    calls = 0;
    cache.for_each(6000, [&](const CacheEntry &) { ++calls; });
    CHECK(calls == 0);
}

TEST_CASE("upstream answers: a top-bit TTL is relayed as 0, a pointer into a TTL is refused") {
    Core c;
    std::string cq = query(0x55, "www.legacy.example", 1, false);
    Query q;
    uint8_t out[4096];
    REQUIRE(c.core.handle(u8(cq), cq.size(), peer("127.0.0.1"), false, 0, out, sizeof out, q).verdict == Verdict::Pass);
    // ID 0x0101, QR RD RA, 1 question, 1 answer: www.legacy.example A, TTL 0xf0000000.
    std::string head = std::string("\x01\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00", 12) + wire_name("www.legacy.example") +
                       std::string("\x00\x01\x00\x01", 4);
    std::string top = head + std::string("\xc0\x0c\x00\x01\x00\x01\xf0\x00\x00\x00\x00\x04\xc0\x00\x02\x0a", 16);
    REQUIRE(QueryCore::check_upstream(q, 0x0101, u8(top), top.size()) == QueryCore::Check::ok);
    CoreResult r = c.core.answer_from_upstream(q, u8(cq), u8(top), top.size(), false, 0, out, sizeof out);
    auto p = parse(out, r.len);
    REQUIRE(p);
    CHECK(section(ldns_pkt_answer(p.get())) == std::vector<std::string>{"www.legacy.example. 0 IN A 192.0.2.10"});
    // Two records; the second's owner points at the first record's TTL (offset 12+20+4+6 = 42).
    std::string two = head + std::string("\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x0a", 16) +
                      std::string("\xc0\x2a\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x0b", 16);
    two[7] = 2;
    CHECK(QueryCore::check_upstream(q, 0x0101, u8(two), two.size()) == QueryCore::Check::failed);
    // The same pointing at the question's name: fine.
    two[12 + 20 + 4 + 16 + 1] = 0x0c;
    CHECK(QueryCore::check_upstream(q, 0x0101, u8(two), two.size()) == QueryCore::Check::ok);
}

TEST_CASE("upstream answers: TTLs are capped (cache-max-ttl, cache-max-negative-ttl), in the reply and from the cache") {
    Core c;
    c.settings.max_ttl = 600;
    c.settings.max_negative_ttl = 60;
    uint8_t out[4096];
    // www: an A with TTL 2147483647.
    std::string cq = query(0x55, "www.legacy.example", 1, false);
    Query q;
    REQUIRE(c.core.handle(u8(cq), cq.size(), peer("127.0.0.1"), false, 0, out, sizeof out, q).verdict == Verdict::Pass);
    std::string a = std::string("\x01\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00", 12) + wire_name("www.legacy.example") +
                    std::string("\x00\x01\x00\x01", 4) + std::string("\xc0\x0c\x00\x01\x00\x01\x7f\xff\xff\xff\x00\x04\xc0\x00\x02\x0a", 16);
    REQUIRE(QueryCore::check_upstream(q, 0x0101, u8(a), a.size()) == QueryCore::Check::ok);
    CoreResult r = c.core.answer_from_upstream(q, u8(cq), u8(a), a.size(), false, 0, out, sizeof out);
    auto p = parse(out, r.len);
    REQUIRE(p);
    CHECK(section(ldns_pkt_answer(p.get())) == std::vector<std::string>{"www.legacy.example. 600 IN A 192.0.2.10"});
    r = c.core.handle(u8(cq), cq.size(), peer("127.0.0.1"), false, 100000, out, sizeof out, q);
    CHECK(r.outcome == Outcome::cache_hit);
    p = parse(out, r.len);
    REQUIRE(p);
    CHECK(section(ldns_pkt_answer(p.get())) == std::vector<std::string>{"www.legacy.example. 500 IN A 192.0.2.10"});
    // nx: NXDOMAIN with an SOA of TTL 100000 (minimum 100000): 60.
    std::string nq = query(0x56, "nx.legacy.example", 1, false);
    REQUIRE(c.core.handle(u8(nq), nq.size(), peer("127.0.0.1"), false, 0, out, sizeof out, q).verdict == Verdict::Pass);
    std::string soa = wire_name("ns.legacy.example") + wire_name("admin.legacy.example") +
                      std::string("\x00\x00\x00\x01\x00\x00\x0e\x10\x00\x00\x02\x58\x00\x01\x51\x80\x00\x01\x86\xa0", 20);
    std::string n = std::string("\x01\x02\x81\x83\x00\x01\x00\x00\x00\x01\x00\x00", 12) + wire_name("nx.legacy.example") +
                    std::string("\x00\x01\x00\x01", 4) + wire_name("legacy.example") +
                    std::string("\x00\x06\x00\x01\x00\x01\x86\xa0", 8) + char(0) + char(soa.size()) + soa;
    REQUIRE(QueryCore::check_upstream(q, 0x0102, u8(n), n.size()) == QueryCore::Check::ok);
    r = c.core.answer_from_upstream(q, u8(nq), u8(n), n.size(), false, 0, out, sizeof out);
    p = parse(out, r.len);
    REQUIRE(p);
    REQUIRE(ldns_rr_list_rr_count(ldns_pkt_authority(p.get())) == 1);
    CHECK(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_authority(p.get()), 0)) == 60);
}

TEST_CASE("protocol edges: unknown opcodes NOTIMP, FORMERR keeps OPT, CHAOS, RD=0, DS at the apex") {
    Core c;
    c.settings.version = "aisidd 9.9.9";
    c.settings.identity = "host1";
    SUBCASE("an unknown opcode gets NOTIMP, header only, RD/CD not echoed (RFC 8906 §3.1.4)") {
        for (uint16_t opcode : {1, 2, 3, 6, 15}) {
            CAPTURE(opcode);
            // No question at all (DSO keepalive style), RD and CD set.
            std::string m(12, '\0');
            m[0] = 0x12, m[1] = 0x34;
            uint16_t flags = static_cast<uint16_t>(opcode << 11 | 0x0100 | 0x0010);
            m[2] = static_cast<char>(flags >> 8), m[3] = static_cast<char>(flags);
            CoreResult r = c.ask(m);
            REQUIRE(r.verdict == Verdict::Answered);
            REQUIRE(r.len == 12);
            CHECK(c.out[0] == 0x12);
            CHECK(c.out[1] == 0x34);
            const uint16_t f = static_cast<uint16_t>(c.out[2] << 8 | c.out[3]);
            CHECK((f & 0x8000) != 0);              // QR
            CHECK(((f >> 11) & 0xf) == opcode);    // the opcode echoed
            CHECK((f & 0x000f) == 4);              // NOTIMP
            CHECK((f & (0x0100 | 0x0010)) == 0);   // no RD, no CD
            CHECK(r.outcome == Outcome::notimp);
        }
        // Over TCP too (DSO is a TCP thing).
        std::string dso(12, '\0');
        dso[2] = static_cast<char>(6 << 3);
        CoreResult r = c.ask(dso, "127.0.0.1", true);
        REQUIRE(r.len == 12);
        CHECK((c.out[3] & 0xf) == 4);
    }
    SUBCASE("FORMERR carries OPT when the query's OPT was valid (RFC 6891 §6.1.1)") {
        std::string q = query(7, "www.legacy.example", 1, true);
        q += "junk"; // trailing garbage after a valid OPT
        CoreResult r = c.ask(q);
        REQUIRE(r.verdict == Verdict::Answered);
        auto p = c.reply(r);
        REQUIRE(p);
        CHECK(ldns_pkt_get_rcode(p.get()) == LDNS_RCODE_FORMERR);
        CHECK(ldns_pkt_edns(p.get()));
        CHECK(ldns_pkt_edns_udp_size(p.get()) == 1232);
    }
    SUBCASE("CHAOS: version.bind and id.server answer for aisidd, other CH names REFUSED, hidden when asked") {
        std::string q = query(9, "version.bind", 16);
        q[q.size() - 11 - 1] = 3; // class: the question's last two bytes before the OPT (11 bytes)
        CoreResult r = c.ask(q);
        auto p = c.reply(r);
        REQUIRE(p);
        CHECK(ldns_pkt_get_rcode(p.get()) == LDNS_RCODE_NOERROR);
        REQUIRE(ldns_pkt_ancount(p.get()) == 1);
        char *t = ldns_rr2str(ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0));
        CHECK(std::string(t).find("CH\tTXT\t\"aisidd 9.9.9\"") != std::string::npos);
        free(t);
        std::string id = query(10, "id.server", 16);
        id[id.size() - 12] = 3;
        p = c.reply(c.ask(id));
        REQUIRE(p);
        REQUIRE(ldns_pkt_ancount(p.get()) == 1);
        t = ldns_rr2str(ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0));
        CHECK(std::string(t).find("\"host1\"") != std::string::npos);
        free(t);
        std::string other = query(11, "authors.bind", 16);
        other[other.size() - 12] = 3;
        p = c.reply(c.ask(other));
        REQUIRE(p);
        CHECK(ldns_pkt_get_rcode(p.get()) == LDNS_RCODE_REFUSED);
        c.settings.version.clear(); // --hide-version yes
        p = c.reply(c.ask(q));
        REQUIRE(p);
        CHECK(ldns_pkt_get_rcode(p.get()) == LDNS_RCODE_REFUSED);
    }
    SUBCASE("RD=0 for a forwarded name: the cache or REFUSED, never forwarded (RFC 1034 §4.3.1)") {
        CoreResult r = c.ask(query(12, "www.legacy.example", 1, true, 0x0000));
        CHECK(r.verdict == Verdict::Answered);
        auto p = c.reply(r);
        REQUIRE(p);
        CHECK(ldns_pkt_get_rcode(p.get()) == LDNS_RCODE_REFUSED);
        // With RD it is forwarded; local names answer whatever RD says.
        CHECK(c.ask(query(13, "www.legacy.example", 1, true, 0x0100)).verdict == Verdict::Pass);
        CHECK(c.ask(query(14, "yolo.detection.image.ai.example", 28, true, 0x0000)).verdict == Verdict::Answered);
    }
    SUBCASE("DS at a zone apex is forwarded (it lives in the parent), DS below it is answered here") {
        CHECK(c.ask(query(15, "ai.example", 43)).verdict == Verdict::Pass);
        CoreResult r = c.ask(query(16, "yolo.detection.image.ai.example", 43));
        CHECK(r.verdict == Verdict::Answered);
    }
}

TEST_CASE("a TSIG-signed query to a server without keys: NOTAUTH with TSIG error BADKEY, unsigned (RFC 8945 §5.2)") {
    Core c; // no authority side: no keys
    ldns_pkt *pkt = nullptr;
    REQUIRE(ldns_pkt_query_new_frm_str(&pkt, "yolo.detection.image.ai.example.", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN,
                                       LDNS_RD) == LDNS_STATUS_OK);
    ldns_pkt_set_id(pkt, 0x7777);
    REQUIRE(ldns_pkt_tsig_sign(pkt, "k1.", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", 300, "hmac-sha256.", nullptr) ==
            LDNS_STATUS_OK);
    uint8_t *wire = nullptr;
    size_t wlen = 0;
    REQUIRE(ldns_pkt2wire(&wire, pkt, &wlen) == LDNS_STATUS_OK);
    std::string msg(reinterpret_cast<char *>(wire), wlen);
    free(wire);
    CoreResult r = c.ask(msg);
    REQUIRE(r.verdict == Verdict::Answered);
    auto p = c.reply(r);
    REQUIRE(p);
    CHECK(ldns_pkt_id(p.get()) == 0x7777);
    CHECK(ldns_pkt_get_rcode(p.get()) == LDNS_RCODE_NOTAUTH);
    CHECK(ldns_pkt_ancount(p.get()) == 0); // no data, signed or not
    ldns_rr *tsig = ldns_pkt_tsig(p.get());
    REQUIRE(tsig != nullptr);
    char *owner = ldns_rdf2str(ldns_rr_owner(tsig));
    CHECK(std::string(owner) == "k1.");
    free(owner);
    // rdata: algorithm, time, fudge, MAC size, MAC, original ID, error, other;
    // ldns leaves out the empty MAC field.
    REQUIRE(ldns_rr_rd_count(tsig) == 7);
    char *alg = ldns_rdf2str(ldns_rr_rdf(tsig, 0));
    CHECK(std::string(alg) == "hmac-sha256.");
    free(alg);
    CHECK(ldns_rdf2native_int16(ldns_rr_rdf(tsig, 3)) == 0);      // MAC size: unsigned
    CHECK(ldns_rdf2native_int16(ldns_rr_rdf(tsig, 4)) == 0x7777); // original ID
    CHECK(ldns_rdf2native_int16(ldns_rr_rdf(tsig, 5)) == 17);     // BADKEY
    // The same time as the request, so the client can match it.
    CHECK(ldns_rdf_compare(ldns_rr_rdf(tsig, 1), ldns_rr_rdf(ldns_pkt_tsig(pkt), 1)) == 0);
    ldns_pkt_free(pkt);
}

TEST_CASE("CNAME chains inside our zones are answered whole (RFC 1034 §4.3.2), with a loop limit") {
    const std::string zone = std::string(kZone) + R"(
svc                  CNAME yolo.detection.image
fast                 CNAME p60.yolo.detection.image
two                  CNAME www
gone                 CNAME nothing-here
loop1                CNAME loop2
loop2                CNAME loop1
out                  CNAME www.legacy.example.
)";
    Core c(zone.c_str());
    auto ask = [&](const char *name, uint16_t type) {
        CoreResult r = c.ask(query(0x99, name, type));
        REQUIRE(r.verdict == Verdict::Answered);
        auto p = c.reply(r);
        REQUIRE(p);
        return std::make_tuple(ldns_pkt_get_rcode(p.get()), section(ldns_pkt_answer(p.get())),
                               section(ldns_pkt_authority(p.get())));
    };
    auto [rc, an, ns] = ask("svc.ai.example.", 28);
    CHECK(rc == LDNS_RCODE_NOERROR);
    CHECK(an == std::vector<std::string>{"svc.ai.example. 300 IN CNAME yolo.detection.image.ai.example.",
                                         "yolo.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:1:0"});
    std::tie(rc, an, ns) = ask("fast.ai.example.", 28); // to a synthesized name
    CHECK(an == std::vector<std::string>{"fast.ai.example. 300 IN CNAME p60.yolo.detection.image.ai.example.",
                                         "p60.yolo.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:1:3c"});
    std::tie(rc, an, ns) = ask("two.ai.example.", 28); // two links
    CHECK(an.size() == 3);
    CHECK(an[0] == "ns.ai.example. 300 IN AAAA 2001:db8:53::1");
    std::tie(rc, an, ns) = ask("gone.ai.example.", 28); // ends in NXDOMAIN: the last name's rcode
    CHECK(rc == LDNS_RCODE_NXDOMAIN);
    CHECK(an == std::vector<std::string>{"gone.ai.example. 300 IN CNAME nothing-here.ai.example."});
    CHECK(ns == std::vector<std::string>{kSoa});
    std::tie(rc, an, ns) = ask("svc.ai.example.", 16); // ends in NODATA: the SOA
    CHECK(rc == LDNS_RCODE_NOERROR);
    CHECK(an.size() == 1);
    CHECK(ns == std::vector<std::string>{kSoa});
    std::tie(rc, an, ns) = ask("loop1.ai.example.", 28); // a loop ends, each link once
    CHECK(rc == LDNS_RCODE_NOERROR);
    CHECK(an == std::vector<std::string>{"loop1.ai.example. 300 IN CNAME loop2.ai.example.",
                                         "loop2.ai.example. 300 IN CNAME loop1.ai.example."});
    // Out of our zones: while the target is not cached, the chain goes to the
    // worker (Pass, cname_out), which asks for the target...
    Query q;
    std::string msg = query(0x99, "out.ai.example.", 1);
    CoreResult r = c.core.handle(u8(msg), msg.size(), peer("127.0.0.1"), false, 1000, c.out, sizeof c.out, q);
    REQUIRE(r.verdict == Verdict::Pass);
    CHECK(r.cname_out);
    auto chain_pkt = c.reply(r);
    REQUIRE(chain_pkt);
    CHECK(section(ldns_pkt_answer(chain_pkt.get())) ==
          std::vector<std::string>{"out.ai.example. 300 IN CNAME www.legacy.example."});
    std::string chain(reinterpret_cast<const char *>(c.out), r.len);
    Query tq;
    std::string tmsg;
    REQUIRE(cname_target_query(q, u8(chain), chain.size(), tq, tmsg));
    CHECK(tq.qname.wire() == std::string_view("\3www\6legacy\7example\0", 20));
    CHECK(tq.qtype == 1);
    CHECK(tq.id == 0x99);
    // ...whose answer (here put straight into the cache) completes it: the
    // whole chain, then the target's records, not authoritative.
    ldns_pkt *up = nullptr;
    REQUIRE(ldns_wire2pkt(&up, u8(tmsg), tmsg.size()) == LDNS_STATUS_OK);
    ldns_pkt_set_qr(up, true);
    ldns_pkt_set_ra(up, true);
    ldns_rr *rr = nullptr;
    REQUIRE(ldns_rr_new_frm_str(&rr, "www.legacy.example. 60 IN A 192.0.2.7", 0, nullptr, nullptr) == LDNS_STATUS_OK);
    ldns_pkt_push_rr(up, LDNS_SECTION_ANSWER, rr);
    uint8_t *wire = nullptr;
    size_t wlen = 0;
    REQUIRE(ldns_pkt2wire(&wire, up, &wlen) == LDNS_STATUS_OK);
    uint8_t scratch[4096];
    CHECK(c.core.answer_from_upstream(tq, u8(tmsg), wire, wlen, false, 1000, scratch, sizeof scratch).verdict ==
          Verdict::Answered);
    free(wire);
    ldns_pkt_free(up);
    r = c.ask(msg);
    REQUIRE(r.verdict == Verdict::Answered);
    CHECK(r.outcome == Outcome::cache_hit);
    auto whole = c.reply(r);
    REQUIRE(whole);
    CHECK(ldns_pkt_id(whole.get()) == 0x99);
    CHECK(!ldns_pkt_aa(whole.get()));
    CHECK(ldns_pkt_get_rcode(whole.get()) == LDNS_RCODE_NOERROR);
    CHECK(section(ldns_pkt_answer(whole.get())) ==
          std::vector<std::string>{"out.ai.example. 300 IN CNAME www.legacy.example.",
                                   "www.legacy.example. 60 IN A 192.0.2.7"});
    // Without recursion asked for, the chain alone, as an authoritative server gives it.
    std::string norec = query(0x9a, "out.ai.example.", 1);
    norec[2] &= ~1;  // RD off
    r = c.ask(norec);
    REQUIRE(r.verdict == Verdict::Answered);
    CHECK(section(ldns_pkt_answer(c.reply(r).get())) ==
          std::vector<std::string>{"out.ai.example. 300 IN CNAME www.legacy.example."});
}

TEST_CASE("each RRSIG is answered with the TTL of the RRset it covers (RFC 4034 §3)") {
    // The zone keeps one TTL per name and type; the two signatures at the
    // apex cover sets with different TTLs.
    static const char kSigned[] = "$ORIGIN sig.example.\n"
                                  "@ 3600 IN SOA ns.sig.example. h.sig.example. 1 3600 600 86400 300\n"
                                  "@ 3600 IN NS ns.sig.example.\n"
                                  "@ 300 IN DNSKEY 257 3 8 AwEAAQ==\n"
                                  "@ 3600 IN RRSIG SOA 8 2 3600 20300101000000 20200101000000 1 sig.example. AAEC\n"
                                  "@ 300 IN RRSIG DNSKEY 8 2 300 20300101000000 20200101000000 1 sig.example. AAEC\n"
                                  "ns 600 IN AAAA 2001:db8::53\n";
    Core c(kSigned);
    CoreResult r = c.ask(query(7, "sig.example.", 46));
    auto p = c.reply(r);
    REQUIRE(p);
    std::vector<std::string> got = section(ldns_pkt_answer(p.get()));
    REQUIRE(got.size() == 2);
    CHECK(got[0].rfind("sig.example. 300 IN RRSIG DNSKEY", 0) == 0);
    CHECK(got[1].rfind("sig.example. 3600 IN RRSIG SOA", 0) == 0);
}
