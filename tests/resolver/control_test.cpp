// aisidd's control commands without a socket: control_execute against a
// Shared with a real cache (answers stored by the query core, as a worker
// does), upstream health as the Forwarder keeps it, zones and a fake
// authority side. The socket, permissions and aisid-control itself are in
// tests/resolver/control_integration_test.cpp.
#include "resolver_test_util.hpp"

#include "aisid/resolver/control.hpp"
#include "aisid/resolver/metrics.hpp"
#include "aisid/core/zone_set.hpp"

#include <doctest/doctest.h>

#include <sstream>

using namespace aisid;
using namespace aisid::resolver;
using namespace aisid::resolver::test;

namespace {

struct Ctl {
    Shared sh;
    std::string reload_error;
    int reloads = 0;
    explicit Ctl(std::vector<std::string> upstreams = {"192.0.2.53", "192.0.2.54:5353"}) {
        auto rt = std::make_shared<Runtime>();
        for (const std::string &u : upstreams) {
            auto h = std::make_shared<UpstreamHealth>();
            h->up.text = u;
            rt->upstreams.push_back(h);
        }
        sh.set_runtime(rt);
    }
    std::string ask(std::string_view line) {
        std::string out;
        control_execute(
            sh, line,
            [&](std::string &summary) {
                ++reloads;
                if (reload_error.empty()) summary = "reloaded: 1 zone(s), 2 upstream(s)";
                return reload_error;
            },
            [&](std::string_view s) {
                out += s;
                return true;
            });
        return out;
    }
    // Stores an upstream answer the way a worker does (QueryCore::answer_from_upstream).
    void store(const std::string &qname, uint16_t qtype, ldns_pkt_rcode rcode, const std::vector<std::string> &answer,
               const std::vector<std::string> &authority, uint64_t now_ms, bool do_bit = false) {
        CoreSettings settings;
        QueryCore core(sh.cache, settings);
        ZoneSet none;
        core.set_zones(&none);
        std::string msg = query(7, qname, qtype, true, 0x0100, 1232, do_bit);
        Query q;
        uint8_t out[4096];
        REQUIRE(core.handle(u8(msg), msg.size(), peer("127.0.0.1"), false, now_ms, out, sizeof out, q).verdict ==
                Verdict::Pass);
        std::string resp = upstream_answer(9, qname, qtype, rcode, answer, authority);
        REQUIRE(core.answer_from_upstream(q, u8(msg), u8(resp), resp.size(), false, now_ms, out, sizeof out).len > 0);
    }
};

struct FakeAuthority : AuthorityHook {
    std::vector<AuthorityZoneStatus> zones;
    void handle(const uint8_t *, size_t, const sockaddr_storage &, bool, std::vector<std::string> &) override {}
    std::vector<AuthorityZoneStatus> zone_status() const override { return zones; }
};

} // namespace

TEST_CASE("control: a request is checked before anything runs") {
    Ctl c;
    CHECK(c.ask("") == "error empty request; commands: stats, flush NAME, flush-all, reload, zone-status, upstreams, "
                       "dump-cache\n");
    CHECK(c.ask("  \t ").rfind("error empty request", 0) == 0);
    CHECK(c.ask("reload\x1b[2J") == "error malformed request: control characters or non-ASCII bytes\n");
    CHECK(c.ask("flush caf\xc3\xa9.example") == "error malformed request: control characters or non-ASCII bytes\n");
    CHECK(c.ask(std::string(513, 'x')) == "error request longer than 512 bytes\n");
    CHECK(c.ask("RELOAD") == "error unknown command 'RELOAD'; commands: stats, flush NAME, flush-all, reload, "
                             "zone-status, upstreams, dump-cache\n");
    CHECK(c.ask("reload now") == "error reload takes no arguments\n");
    CHECK(c.ask("flush") == "error flush takes 1 argument\n");
    CHECK(c.ask("flush a b") == "error flush takes 1 argument\n");
    CHECK(c.ask("flush a..b") == "error bad name 'a..b'\n");
    CHECK(c.ask("flush " + std::string(64, 'a') + ".example") == "error bad name '" + std::string(64, 'a') + ".example'\n");
    CHECK(c.reloads == 0);
}

TEST_CASE("control: reload runs the daemon's reload, and a failure is the reply") {
    Ctl c;
    CHECK(c.ask("reload") == "ok\nreloaded: 1 zone(s), 2 upstream(s)\n");
    c.reload_error = "/etc/aisid/zones/ai.example.zone:12: bad AAAA";
    CHECK(c.ask(" reload\t") == "error reload failed, nothing changed: /etc/aisid/zones/ai.example.zone:12: bad AAAA\n");
    CHECK(c.reloads == 2);
}

TEST_CASE("control: dump-cache writes zone-file text with the TTL left, negative and stale answers marked") {
    Ctl c;
    const uint64_t now = now_ms_monotonic();
    c.store("www.example.org.", 1, LDNS_RCODE_NOERROR, {"www.example.org. 300 IN A 192.0.2.1", "www.example.org. 300 IN A 192.0.2.2"},
            {}, now - 100000);  // 100 s ago
    c.store("nx.example.org.", 28, LDNS_RCODE_NXDOMAIN, {},
            {"example.org. 600 IN SOA ns.example.org. admin.example.org. 7 3600 600 86400 60"}, now);
    c.store("old.example.org.", 16, LDNS_RCODE_NOERROR, {"old.example.org. 60 IN TXT \"x\""}, {}, now - 100000);
    c.store("www.example.org.", 1, LDNS_RCODE_NOERROR, {"www.example.org. 300 IN A 192.0.2.1"}, {}, now, true);
    std::string d = c.ask("dump-cache");
    REQUIRE(d.rfind("ok\n; aisidd cache: 4 answer(s)", 0) == 0);
    // The two records after the comment, with 200 s left of 300 (the body's
    // names are compressed against the question: read back whole).
    CHECK(d.find("; www.example.org. IN A rcode=NOERROR expires-in=200\n"
                 "www.example.org.\t200\tIN\tA\t192.0.2.1\n"
                 "www.example.org.\t200\tIN\tA\t192.0.2.2\n") != std::string::npos);
    CHECK(d.find("; www.example.org. IN A rcode=NOERROR +do expires-in=300\n"
                 "www.example.org.\t300\tIN\tA\t192.0.2.1\n") != std::string::npos);
    // RFC 2308 §5: cached for min(SOA TTL, SOA minimum) = 60 s.
    CHECK(d.find("; nx.example.org. IN AAAA rcode=NXDOMAIN negative expires-in=60\n"
                 "example.org.\t600\tIN\tSOA\tns.example.org. admin.example.org. 7 3600 600 86400 60\n") !=
          std::string::npos);
    // Expired 40 s ago, kept for serve-stale until a day after expiry; TTL 0.
    CHECK(d.find("; old.example.org. IN TXT rcode=NOERROR stale expired-ago=40 stale-for=86360\n"
                 "old.example.org.\t0\tIN\tTXT\t\"x\"\n") != std::string::npos);

    CHECK(c.ask("flush WWW.Example.ORG") == "ok\nflushed 2 answer(s) for www.example.org.\n");
    d = c.ask("dump-cache");
    CHECK(d.find("www.example.org.") == std::string::npos);
    CHECK(d.find("; nx.example.org.") != std::string::npos);
    CHECK(c.ask("flush-all") == "ok\nflushed 2 answer(s)\n");
    CHECK(c.ask("dump-cache") == "ok\n; aisidd cache: 0 answer(s); TTLs as a client would get them now\n");
}

TEST_CASE("control: upstreams show the health the Forwarder keeps, and which is asked first") {
    Ctl c;
    auto rt = c.sh.runtime();
    rt->upstreams[0]->queries = 9;
    rt->upstreams[0]->failures = 4;
    rt->upstreams[0]->consecutive_failures = 3;  // healthy() is false from 3 on
    rt->upstreams[1]->queries = 5;
    rt->upstreams[1]->answers = 5;
    rt->upstreams[1]->rtt_us_ewma = 1500;
    c.sh.preferred_upstream = 1;
    CHECK(c.ask("upstreams") ==
          "ok\n"
          "192.0.2.53 state=down queries=9 answers=0 failures=4 failures-in-a-row=3 rtt-ms=0.000\n"
          "192.0.2.54:5353 state=up queries=5 answers=5 failures=0 failures-in-a-row=0 rtt-ms=1.500 asked-first\n");
    Ctl none(std::vector<std::string>{});
    CHECK(none.ask("upstreams") == "ok\n; no upstreams: names outside the local zones get SERVFAIL\n");
}

TEST_CASE("control: zone-status joins the served zones, the files loaded and the authority side") {
    Ctl c;
    auto z = load_zone_text("$ORIGIN ai.example.\n$TTL 300\n@ SOA ns admin 2026112502 3600 600 86400 60\n@ NS ns\n"
                            "ns AAAA 2001:db8:53::1\n_aisid TXT \"v=aisid1\" \"prefix=2001:db8:abcd:12::/64\"\n",
                            "ai.example.zone");
    REQUIRE(z);
    auto set = std::make_shared<ZoneSet>();
    set->add(*z);
    c.sh.zones.replace_all(set);
    // The file said 2026112501 when it was loaded; an UPDATE has moved it since.
    c.sh.set_zone_info({ZoneInfo{"ai.example.", "/etc/aisid/zones/ai.example.zone", 2026112501, 1764921600, 0}});
    CHECK(c.ask("zone-status") ==
          "ok\nai.example. serial=2026112502 source=file:/etc/aisid/zones/ai.example.zone loaded=2025-12-05T08:00:00Z\n");
    FakeAuthority a;
    a.zones.push_back({"ai.example.", "primary", "/var/lib/aisid/ai.example.jnl", 2026112502, true, 1764925200, 0, 0, "", 3});
    a.zones.push_back({"sec.example.", "secondary", "192.0.2.1:53", 0, false, 0, 1764921660, 2,
                       "connect: \"refused\"\n", 0});
    c.sh.authority = &a;
    CHECK(c.ask("zone-status") ==
          "ok\n"
          "ai.example. serial=2026112502 source=file:/etc/aisid/zones/ai.example.zone loaded=2025-12-05T08:00:00Z "
          "journal=/var/lib/aisid/ai.example.jnl updated=2025-12-05T09:00:00Z unsaved-changes=3\n"
          "sec.example. serial=none source=axfr:192.0.2.1:53 refreshed=never next-refresh=2025-12-05T08:01:00Z "
          "failures=2 last-error=\"connect: \\\"refused\\\"\\x0a\"\n");
}

TEST_CASE("control: stats are the /metrics series without their comments") {
    Ctl c;
    std::string s = c.ask("stats");
    REQUIRE(s.rfind("ok\n", 0) == 0);
    CHECK(s.find('#') == std::string::npos);
    CHECK(s.find("\naisidd_cache_entries 0\n") != std::string::npos);
    CHECK(s.find("\naisidd_upstream_up{upstream=\"192.0.2.53\"} 1\n") != std::string::npos);
    // Every series line of /metrics, in its order.
    std::string m = render_metrics(c.sh), series;
    std::istringstream in(m);
    for (std::string l; std::getline(in, l);)
        if (!l.empty() && l[0] != '#') series += l + "\n";
    CHECK(s == "ok\n" + series);
}
