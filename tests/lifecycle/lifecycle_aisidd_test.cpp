// aisidd as primary (and secondary): the SPEC §3 lifecycle with aisid-admin
// and nsupdate, TSIG refusals, durability across kill -9, torn journals,
// NOTIFY → IXFR to a secondary, the secondary surviving its primary.
#include "lifecycle_fixture.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace lifecycle_test;
using aisid::kTypeAAAA;
using aisid::kTypeSOA;
using aisid::kTypeSVCB;
using aisid::kTypeTXT;

namespace {

const std::string kSvc = "bert.detection.image.ai.example.";

std::vector<std::string> primary_args(const std::string &zone) {
    return {"--zone", zone, "--key", key_arg(), "--update-key", "k1"};
}

} // namespace

TEST_CASE("aisidd primary: define, register, query, migrate, decommission with aisid-admin") {
    TempDir d;
    Aisidd p(authority(d, "primary").args(primary_args(write_test_zone(d))));
    uint32_t s0 = serial_of(p.port);
    REQUIRE(s0 == 2026112501u);

    auto r = admin(p.port, {"--zone", "ai.example", "define", "method", "bert"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "method bert code 2\n");  // the lowest free code
    CHECK(serial_of(p.port) == s0 + 1);

    r = admin(p.port, {"register", kSvc, "--fallback", "bert.provider.example:8443"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "2001:db8:abcd:12:1:2:2:0\n");
    // aisidd's own answers change at once (no stale AISID answer)
    Answer a = query(p.port, kSvc, kTypeAAAA);
    CHECK(a.rcode == 0);
    CHECK(a.aa);
    CHECK(a.has(kTypeAAAA, "2001:db8:abcd:12:1:2:2:0"));
    CHECK(query(p.port, kSvc, kTypeSVCB).has(kTypeSVCB, "bert.provider.example. port=8443"));
    CHECK(query(p.port, "p100.bert.detection.image.ai.example.", kTypeAAAA).has(kTypeAAAA, "2001:db8:abcd:12:1:2:2:64"));

    r = admin(p.port, {"query", kSvc});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out.find("2001:db8:abcd:12:1:2:2:0") == 0);
    CHECK(r.out.find("fallback: bert.provider.example:8443") != std::string::npos);

    r = admin(p.port, {"migrate", kSvc, "--fallback", "new.provider.example:443"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "2001:db8:abcd:12:1:2:2:0\n");
    CHECK(query(p.port, kSvc, kTypeSVCB).has(kTypeSVCB, "new.provider.example. port=443"));
    CHECK_FALSE(query(p.port, kSvc, kTypeSVCB).has(kTypeSVCB, "bert.provider.example"));
    CHECK(query(p.port, kSvc, kTypeAAAA).has(kTypeAAAA, "2001:db8:abcd:12:1:2:2:0"));

    r = admin(p.port, {"decommission", kSvc});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(query(p.port, kSvc, kTypeAAAA).rcode == 3);  // NXDOMAIN at once
    CHECK(admin(p.port, {"query", kSvc}).code == 1);
    CHECK(serial_of(p.port) == s0 + 4);
}

TEST_CASE("aisidd primary: duplicate registration, term and code are refused - nothing changes") {
    TempDir d;
    Aisidd p(authority(d, "primary").args(primary_args(write_test_zone(d))));
    uint32_t s0 = serial_of(p.port);
    // aisid-admin checks first (exit 1, a clear message)
    auto r = admin(p.port, {"register", "yolo.detection.image.ai.example"});
    CHECK(r.code == 1);
    CHECK(r.err.find("already registered") != std::string::npos);
    r = admin(p.port, {"--zone", "ai.example", "define", "method", "yolo"});
    CHECK(r.code == 1);
    CHECK(r.err.find("already defined") != std::string::npos);
    r = admin(p.port, {"--zone", "ai.example", "define", "function", "tracking", "--code", "2"});
    CHECK(r.code == 1);
    CHECK(r.err.find("already used by 'detection'") != std::string::npos);
    r = admin(p.port, {"register", "nosuch.detection.image.ai.example"});
    CHECK(r.code == 1);
    CHECK(r.err.find("not in the codebook") != std::string::npos);
    // and aisidd refuses the same changes sent raw, without prerequisites
    CHECK(send_update(p.port, "ai.example.", {}, {rr("yolo.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:1:0")})
              .rcode == kRcodeRefused);
    CHECK(send_update(p.port, "ai.example.", {}, {rr("yolo._method.ai.example. 300 IN TXT \"code=9\"")}).rcode ==
          kRcodeRefused);
    CHECK(send_update(p.port, "ai.example.", {}, {rr("tracking._function.ai.example. 300 IN TXT \"code=2\"")}).rcode ==
          kRcodeRefused);
    // nsupdate gets the same answer
    auto n = nsupdate(p.port, "update add other._method.ai.example. 300 TXT \"code=1\"\n");
    CHECK(n.code != 0);
    CHECK((n.out + n.err).find("REFUSED") != std::string::npos);
    CHECK(serial_of(p.port) == s0);
    CHECK(query(p.port, "tracking._function.ai.example.", kTypeTXT).rcode == 3);
    CHECK(p.log().find("already used by 'detection'") != std::string::npos);
}

TEST_CASE("aisidd primary: unsigned, wrongly signed and out-of-window updates are refused - nothing changes") {
    TempDir d;
    Aisidd p(authority(d, "primary").args(primary_args(write_test_zone(d))));
    uint32_t s0 = serial_of(p.port);
    std::vector<Record> add{rr("vit._method.ai.example. 300 IN TXT \"code=3\"")};

    UpdateReply u = send_update(p.port, "ai.example.", {}, add, Signing::none);
    CHECK(u.rcode == kRcodeRefused);
    u = send_update(p.port, "ai.example.", {}, add, Signing::wrong_secret);
    CHECK(u.rcode == kRcodeNotAuth);
    CHECK(u.tsig_error == kTsigBadSig);
    u = send_update(p.port, "ai.example.", {}, add, Signing::unknown_key);
    CHECK(u.rcode == kRcodeNotAuth);
    CHECK(u.tsig_error == kTsigBadKey);
    u = send_update(p.port, "ai.example.", {}, add, Signing::skewed, -1000);
    CHECK(u.rcode == kRcodeNotAuth);
    CHECK(u.tsig_error == kTsigBadTime);
    u = send_update(p.port, "ai.example.", {}, add, Signing::skewed, +1000);
    CHECK(u.rcode == kRcodeNotAuth);
    CHECK(u.tsig_error == kTsigBadTime);
    CHECK(serial_of(p.port) == s0);
    CHECK(query(p.port, "vit._method.ai.example.", kTypeTXT).rcode == 3);

    // nsupdate with a wrong secret, and aisid-admin (exit 4)
    auto r = admin(p.port, {"--zone", "ai.example", "define", "method", "vit"}, std::string("k1:") + kOtherSecret);
    CHECK(r.code == 4);
    r = admin(p.port, {"--zone", "ai.example", "define", "method", "vit"}, std::string("nobody:") + kSecret);
    CHECK(r.code == 4);
    CHECK(serial_of(p.port) == s0);

    // within the window (skew < fudge) it goes through, signed back
    u = send_update(p.port, "ai.example.", {}, add, Signing::good);
    CHECK(u.rcode == 0);
    CHECK(u.verified);
    CHECK(serial_of(p.port) == s0 + 1);
}

TEST_CASE("aisidd primary: a signed UPDATE sent again (replay or retransmission) gets the first reply and changes nothing") {
    TempDir d;
    Aisidd p(authority(d, "primary").args(primary_args(write_test_zone(d))));
    uint32_t s0 = serial_of(p.port);
    const std::string svc = "yolo.detection.image.ai.example.";
    auto migrate = [&](const std::string &target) {
        return std::vector<Record>{bare(svc, kTypeSVCB, aisid::proto::kClassANY),
                                   rr(svc + " 300 IN SVCB 1 " + target + " port=443")};
    };
    auto svcb_target = [&] {
        Answer a = query(p.port, svc, kTypeSVCB);
        return a.answer.size() == 1 ? record_to_text(a.answer[0]) : std::string("?");
    };
    // Migrate to a.provider, then on to b.provider.
    std::string req, first;
    LdnsRdfPtr mac;
    UpdateReply u = send_update(p.port, "ai.example.", {}, migrate("a.provider.example."), Signing::good, 0, &req, &mac,
                                &first);
    REQUIRE(u.rcode == 0);
    u = send_update(p.port, "ai.example.", {}, migrate("b.provider.example."));
    REQUIRE(u.rcode == 0);
    CHECK(serial_of(p.port) == s0 + 2);
    CHECK(svcb_target().find("b.provider.example.") != std::string::npos);
    // A captured copy of the first, sent again within its time window, does
    // not roll the service back: the first reply, byte for byte, and no change.
    for (int i = 0; i < 3; ++i) {
        std::string again;
        UpdateReply r = exchange_update(p.port, req, mac.get(), &again);
        CHECK(r.rcode == 0);
        CHECK(r.verified);
        CHECK(again == first);
    }
    CHECK(serial_of(p.port) == s0 + 2);
    CHECK(svcb_target().find("b.provider.example.") != std::string::npos);
    CHECK(p.log().find("the same signed message again") != std::string::npos);
    // The same change signed anew (a new MAC) is a new update and applies.
    u = send_update(p.port, "ai.example.", {}, migrate("a.provider.example."));
    CHECK(u.rcode == 0);
    CHECK(serial_of(p.port) == s0 + 3);
    CHECK(svcb_target().find("a.provider.example.") != std::string::npos);
    // After a restart (kill -9, then a clean one) the capture of the
    // second change is still refused - NOTAUTH, BADTIME - and changes nothing.
    std::string second_req;
    LdnsRdfPtr second_mac;
    REQUIRE(send_update(p.port, "ai.example.", {}, migrate("b.provider.example."), Signing::good, 0, &second_req,
                        &second_mac)
                .rcode == 0);
    REQUIRE(send_update(p.port, "ai.example.", {}, migrate("c.provider.example.")).rcode == 0);
    for (bool crash : {true, false}) {
        if (crash) p.kill9();
        else REQUIRE(p.proc.stop(5000) == 0);
        p.start();
        CHECK(serial_of(p.port) == s0 + 5);
        UpdateReply r = exchange_update(p.port, second_req, second_mac.get());
        CHECK(r.rcode == 9);
        CHECK(r.tsig_error == 18);
        CHECK(r.verified);
        CHECK(serial_of(p.port) == s0 + 5);
        CHECK(svcb_target().find("c.provider.example.") != std::string::npos);
    }
}

TEST_CASE("aisidd primary: 1000 acknowledged updates survive kill -9") {
    TempDir d;
    Aisidd p(authority(d, "primary").args(primary_args(write_test_zone(d))));
    const int n = 1000;
    // Every tenth owner needs escaping in a zone file: compaction
    // (every 200 changes) writes them, the restart reads them back.
    auto owner = [](int i) {
        static const char *odd[] = {"q\\\"uote", "sp\\032ace", "semi\\;colon", "pa\\(ren\\)", "dot\\.in",
                                    "\\@", "\\$INCLUDE", "b\\255yte", "back\\\\slash", "\\$ORIGIN"};
        std::string l = i % 10 == 0 ? std::string(odd[(i / 10) % 10]) + std::to_string(i) : "h" + std::to_string(i);
        return l + ".hosts.ai.example.";
    };
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        UpdateReply u = send_update(p.port, "ai.example.", {},
                                    {rr(owner(i) + " 300 IN AAAA 2001:db8:99::" + std::to_string(i % 9999 + 1))});
        REQUIRE_MESSAGE(u.rcode == 0, "update " << i << " " << p.log());
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "lifecycle: %d acknowledged updates in %.2f s = %.0f updates/s (fdatasync each)\n", n, secs,
                 n / secs);
    p.kill9();  // right after the last acknowledgement
    p.start();
    CHECK(serial_of(p.port) == 2026112501u + n);
    int missing = 0;
    for (int i = 0; i < n; ++i)
        if (!query(p.port, owner(i), kTypeAAAA).has(kTypeAAAA)) ++missing;
    CHECK(missing == 0);
    CHECK(p.log().find("replayed") != std::string::npos);
    CHECK(read_file(p.state_dir + "/ai.example.zone").find("q\\\"uote0.hosts") != std::string::npos);
}

TEST_CASE("aisidd primary: a journal with a torn last entry recovers to the last whole entry, and says so") {
    TempDir d;
    Aisidd p(authority(d, "primary").args(primary_args(write_test_zone(d))));
    for (int i = 0; i < 5; ++i)
        REQUIRE(send_update(p.port, "ai.example.", {},
                            {rr("t" + std::to_string(i) + ".hosts.ai.example. 300 IN AAAA 2001:db8:99::" +
                                std::to_string(i + 1))})
                    .rcode == 0);
    p.kill9();
    // A crash in the middle of the sixth append: half an entry at the end.
    std::string jnl = p.state_dir + "/ai.example.jnl";
    std::string data = read_file(jnl);
    REQUIRE(data.size() > 100);
    size_t last = data.rfind("AJN1");
    REQUIRE(last != std::string::npos);
    std::string torn = data.substr(last, (data.size() - last) / 2);
    write_file(jnl, data.substr(0, last) + data.substr(last) + torn);
    p.start();
    CHECK(serial_of(p.port) == 2026112506u);
    CHECK(query(p.port, "t4.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA));
    CHECK(p.log().find("dropped a torn last entry") != std::string::npos);
    CHECK(read_file(jnl).size() == data.size());
    // Truncated inside the last whole entry: that one is lost (never acknowledged
    // if the crash came before its sync), the rest stay.
    p.kill9();
    write_file(jnl, data.substr(0, last + 20));
    p.start();
    CHECK(serial_of(p.port) == 2026112505u);
    CHECK_FALSE(query(p.port, "t4.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA));
    CHECK(query(p.port, "t3.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA));
    CHECK(p.log().find("dropped a torn last entry") != std::string::npos);
    // and updates go on from there
    CHECK(send_update(p.port, "ai.example.", {}, {rr("t9.hosts.ai.example. 300 IN AAAA 2001:db8:99::9")}).rcode == 0);
    CHECK(serial_of(p.port) == 2026112506u);
}

TEST_CASE("aisidd secondary of aisidd: NOTIFY + IXFR within 1 s - keeps answering without its primary") {
    TempDir d;
    Aisidd s(authority(d, "secondary"), deferred);
    Aisidd p(authority(d, "primary").args(primary_args(write_test_zone(d))), deferred);
    p.add_args({"--notify", "127.0.0.1:" + std::to_string(s.port)});
    s.add_args(secondary_args(p.port));
    p.start();
    s.start();
    REQUIRE_MESSAGE(wait_until([&] { return serial_of(s.port) == 2026112501u; }, 5000) >= 0, s.log());
    CHECK(query(s.port, "yolo.detection.image.ai.example.", kTypeAAAA).aa);

    double worst = 0;
    for (int i = 0; i < 5; ++i) {
        std::string name = "n" + std::to_string(i) + ".hosts.ai.example.";
        REQUIRE(send_update(p.port, "ai.example.", {}, {rr(name + " 300 IN AAAA 2001:db8:99::1")}).rcode == 0);
        double ms = wait_until([&] { return query(s.port, name, kTypeAAAA).has(kTypeAAAA); }, 1000);
        CHECK_MESSAGE(ms >= 0, s.log());
        worst = std::max(worst, ms);
    }
    std::fprintf(stderr, "lifecycle: aisidd→aisidd: acknowledged update answered by the secondary within %.1f ms (worst of 5)\n", worst);
    CHECK(s.log().find("by IXFR") != std::string::npos);
    // the last good copy is on disk for the SDK and NSS
    CHECK(wait_until([&] { return read_file(s.state_dir + "/ai.example.zone").find("n4.hosts.ai.example.") != std::string::npos; }, 1000) >= 0);

    // lifecycle through aisid-admin reaches the secondary too
    auto r = admin(p.port, {"--zone", "ai.example", "define", "method", "bert"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    r = admin(p.port, {"register", kSvc, "--fallback", "bert.provider.example:8443"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(wait_until([&] { return query(s.port, kSvc, kTypeAAAA).has(kTypeAAAA, "2001:db8:abcd:12:1:2:2:0"); }, 1000) >= 0);
    r = admin(p.port, {"decommission", kSvc});
    REQUIRE(r.code == 0);
    CHECK(wait_until([&] { return query(s.port, kSvc, kTypeAAAA).rcode == 3; }, 1000) >= 0);

    // primary gone: the secondary keeps answering, and across its own restart
    p.proc.stop(3000);
    CHECK(query(s.port, "n4.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA));
    s.proc.stop(3000);
    s.start();
    CHECK(wait_until([&] { return query(s.port, "n4.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA); }, 2000) >= 0);
    CHECK(s.log().find("serving the last good copy") != std::string::npos);
}

TEST_CASE("aisidd: SIGHUP keeps acknowledged updates and pulled zones") {
    TempDir d;
    Aisidd s(authority(d, "secondary"), deferred);
    Aisidd p(authority(d, "primary").args(primary_args(write_test_zone(d))), deferred);
    s.add_args(secondary_args(p.port));
    p.add_args({"--notify", "127.0.0.1:" + std::to_string(s.port)});
    p.start();
    s.start();
    REQUIRE(wait_until([&] { return serial_of(s.port) == 2026112501u; }, 5000) >= 0);
    REQUIRE(send_update(p.port, "ai.example.", {}, {rr("h1.hosts.ai.example. 300 IN AAAA 2001:db8:99::1")}).rcode == 0);
    REQUIRE(wait_until([&] { return serial_of(s.port) == 2026112502u; }, 1000) >= 0);
    // The reload reads the older zone file again: the journaled copy must stay served.
    p.proc.signal(SIGHUP);
    s.proc.signal(SIGHUP);
    CHECK(wait_until([&] { return p.log().find("reloaded") != std::string::npos && s.log().find("reloaded") != std::string::npos; }, 3000) >= 0);
    CHECK(wait_until([&] {
              return query(p.port, "h1.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA) &&
                     query(s.port, "h1.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA);
          }, 1000) >= 0);
    // and updates go on from the journaled serial
    REQUIRE(send_update(p.port, "ai.example.", {}, {rr("h2.hosts.ai.example. 300 IN AAAA 2001:db8:99::2")}).rcode == 0);
    CHECK(serial_of(p.port) == 2026112503u);
    CHECK(wait_until([&] { return query(s.port, "h2.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA); }, 1000) >= 0);
}

TEST_CASE("aisidd secondary: the SOA refresh timer pulls changes without NOTIFY") {
    TempDir d;
    std::string text = kTestZone;
    text.replace(text.find("3600 600 86400 60"), 17, "1 1 86400 60");  // refresh 1 s, retry 1 s
    std::string zf = d.file("fast.zone");
    write_file(zf, text);
    Aisidd p(authority(d, "primary").args(primary_args(zf)), deferred);
    Aisidd s(authority(d, "secondary"), deferred);
    s.add_args(secondary_args(p.port));
    p.start();
    s.start();
    REQUIRE(wait_until([&] { return serial_of(s.port) == 2026112501u; }, 5000) >= 0);
    REQUIRE(send_update(p.port, "ai.example.", {}, {rr("t.hosts.ai.example. 300 IN AAAA 2001:db8:99::1")}).rcode == 0);
    CHECK(wait_until([&] { return query(s.port, "t.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA); }, 3000) >= 0);
    // primary away: retries on the retry timer, keeps serving, catches up when it is back
    p.proc.stop(3000);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK(query(s.port, "t.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA));
    CHECK(s.log().find("failed") != std::string::npos);
    p.start();
    REQUIRE(send_update(p.port, "ai.example.", {}, {rr("u.hosts.ai.example. 300 IN AAAA 2001:db8:99::2")}).rcode == 0);
    CHECK(wait_until([&] { return query(s.port, "u.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA); }, 4000) >= 0);
}

TEST_CASE("aisid-admin: usage and network errors") {
    TempDir d;
    int port = free_port();  // nothing listens there
    auto r = admin(port, {"--zone", "ai.example", "define", "method", "x", "--timeout", "300"});
    CHECK(r.code == 3);
    CHECK(r.err.find("aisid-admin: ") == 0);
    CHECK(admin(port, {"define", "method", "x"}).code == 2);            // define needs --zone
    CHECK(admin(port, {"--zone", "ai.example", "define", "thing", "x"}).code == 2);
    CHECK(admin(port, {"--zone", "ai.example", "define", "method", "p100"}).code == 2);
    CHECK(admin(port, {"migrate", "a.b.c.ai.example"}).code == 2);      // needs --fallback
    CHECK(admin(port, {"frobnicate"}).code == 2);
    CHECK(run({aisid_admin_path(), "--help"}).code == 0);
    CHECK(run({aisid_admin_path(), "--version"}).out.find("aisid-admin ") == 0);
    CHECK(run({aisid_admin_path(), "query", "x"}).code == 2);       // no --server
}

namespace {

// One query to aisidd, signed with the test key (ldns, real clock) or not,
// with EDNS or not, over UDP or TCP; the reply's header, sections and TSIG.
struct Reply {
    int rcode = -1;
    uint16_t flags = 0;  // the reply's header flags (QR AA TC RD RA ... rcode)
    std::vector<std::string> answer, authority;  // record_to_text, sorted
    std::string first_owner;                     // as sent (letter case kept)
    bool has_tsig = false, verified = false;
    bool has_opt = false;
};

Reply ask(int port, const std::string &name, uint16_t type, bool sign, bool edns = false, bool tcp = false) {
    ldns_rdf *owner = nullptr;
    REQUIRE(ldns_str2rdf_dname(&owner, name.c_str()) == LDNS_STATUS_OK);  // letter case as given
    LdnsPktPtr q(ldns_pkt_query_new(owner, static_cast<ldns_rr_type>(type), LDNS_RR_CLASS_IN, LDNS_RD));
    ldns_pkt_set_random_id(q.get());
    if (edns) ldns_pkt_set_edns_udp_size(q.get(), 1232);
    auto key = parse_tsig_key(key_arg());
    REQUIRE(key);
    std::string req, err;
    LdnsRdfPtr mac;
    if (sign) {
        REQUIRE(tsig_sign_pkt(q.get(), *key, nullptr, false, req, &mac));
    } else {
        uint8_t *buf = nullptr;
        size_t n = 0;
        REQUIRE(ldns_pkt2wire(&buf, q.get(), &n) == LDNS_STATUS_OK);
        req.assign(reinterpret_cast<char *>(buf), n);
        free(buf);
    }
    socklen_t l;
    sockaddr_storage ss = loopback(port, l);
    std::string resp;
    Reply r;
    if (tcp) {
        std::vector<std::string> rs;
        if (!tcp_exchange(ss, l, req, rs, 2000, err) || rs.empty()) return r;
        resp = rs.front();
    } else if (!udp_exchange(ss, l, req, resp, 2000, err)) {
        return r;
    }
    ldns_pkt *raw = nullptr;
    if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t *>(resp.data()), resp.size()) != LDNS_STATUS_OK) return r;
    LdnsPktPtr p(raw);
    r.rcode = ldns_pkt_get_rcode(p.get());
    r.flags = static_cast<uint16_t>((static_cast<uint8_t>(resp[2]) << 8) | static_cast<uint8_t>(resp[3]));
    for (const Record &rec : records_of(ldns_pkt_answer(p.get()))) r.answer.push_back(record_to_text(rec));
    for (const Record &rec : records_of(ldns_pkt_authority(p.get()))) r.authority.push_back(record_to_text(rec));
    std::sort(r.answer.begin(), r.answer.end());
    std::sort(r.authority.begin(), r.authority.end());
    if (ldns_rr_list_rr_count(ldns_pkt_answer(p.get())))
        if (char *s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0)))) {
            r.first_owner = s;
            free(s);
        }
    r.has_opt = ldns_pkt_edns(p.get());
    r.has_tsig = ldns_pkt_tsig(p.get()) != nullptr;
    if (mac && r.has_tsig)
        r.verified = tsig_verify_response(p.get(), reinterpret_cast<const uint8_t *>(resp.data()), resp.size(), *key,
                                          mac.get(), false, nullptr);
    return r;
}

std::string join(const std::vector<std::string> &v) {
    std::string s;
    for (auto &x : v) s += x;  // each ends with a newline
    return s;
}

// The signed answer is the unsigned one plus a TSIG that verifies.
void same_answer_signed(int port, const std::string &name, uint16_t type, bool edns = false, bool tcp = false) {
    CAPTURE(name);
    CAPTURE(type);
    CAPTURE(edns);
    CAPTURE(tcp);
    Reply u = ask(port, name, type, false, edns, tcp);
    Reply s = ask(port, name, type, true, edns, tcp);
    REQUIRE(u.rcode >= 0);
    REQUIRE(s.rcode >= 0);
    CHECK((u.flags & 0x0400) != 0);  // AA: the name is in a local zone
    CHECK(s.rcode == u.rcode);
    CHECK(s.flags == u.flags);  // AA, RD, RA, rcode: the same header
    CHECK(join(s.answer) == join(u.answer));
    CHECK(join(s.authority) == join(u.authority));
    CHECK(s.first_owner == u.first_owner);
    CHECK(s.has_opt == u.has_opt);
    CHECK_FALSE(u.has_tsig);
    CHECK(s.has_tsig);
    CHECK(s.verified);  // RFC 8945 §5.3: signed with the request's MAC
}

} // namespace

TEST_CASE("aisidd: a TSIG-signed query gets the unsigned answer (SPEC §2: synthesized, wildcard, reverse), signed") {
    TempDir d;
    Aisidd p(authority(d, "primary").args(primary_args(write_test_zone(d))));
    const std::string rev = "4.6.0.0.1.0.0.0.2.0.0.0.1.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.";
    // the cases the signed path used to get wrong
    Reply perf = ask(p.port, "p100.yolo.detection.image.ai.example.", kTypeAAAA, true);
    CHECK(perf.rcode == 0);
    CHECK(join(perf.answer) == "p100.yolo.detection.image.ai.example.\t300\tIN\tAAAA\t2001:db8:abcd:12:1:2:1:64\n");
    Reply wild = ask(p.port, "detection.image.ai.example.", kTypeAAAA, true);
    CHECK(join(wild.answer) == "detection.image.ai.example.\t300\tIN\tAAAA\t2001:db8:abcd:12:1:2::\n");
    Reply ptr = ask(p.port, rev, aisid::kTypePTR, true);
    CHECK(ptr.rcode == 0);
    CHECK(join(ptr.answer) == rev + "\t300\tIN\tPTR\tp100.yolo.detection.image.ai.example.\n");
    CHECK(ptr.verified);

    for (bool edns : {false, true}) {
        same_answer_signed(p.port, "p100.yolo.detection.image.ai.example.", kTypeAAAA, edns);  // synthesized
        same_answer_signed(p.port, "detection.image.ai.example.", kTypeAAAA, edns);            // wildcard (any method)
        same_answer_signed(p.port, "image.ai.example.", kTypeAAAA, edns);                      // wildcard (object only)
        same_answer_signed(p.port, rev, aisid::kTypePTR, edns);                                // reverse
        same_answer_signed(p.port, "yolo.detection.image.ai.example.", kTypeAAAA, edns);       // explicit service
        same_answer_signed(p.port, "yolo.detection.image.ai.example.", kTypeSVCB, edns);
        same_answer_signed(p.port, "ns.ai.example.", kTypeAAAA, edns);                         // explicit record
        same_answer_signed(p.port, "ai.example.", kTypeSOA, edns);                             // a secondary's refresh
        same_answer_signed(p.port, "yolo.detection.image.ai.example.", kTypeTXT, edns);        // NODATA
        same_answer_signed(p.port, "p100.yolo.detection.image.ai.example.", kTypeTXT, edns);   // NODATA, synthesized
        same_answer_signed(p.port, rev, kTypeAAAA, edns);                                      // NODATA, reverse
        same_answer_signed(p.port, "nosuch.ai.example.", kTypeAAAA, edns);                     // NXDOMAIN
        same_answer_signed(p.port, "nosuch.detection.image.ai.example.", kTypeAAAA, edns);     // NXDOMAIN (codebook)
        same_answer_signed(p.port, "YOLO.Detection.Image.AI.example.", kTypeAAAA, edns);       // letter case kept
        same_answer_signed(p.port, "P100.yolo.DETECTION.image.ai.example.", kTypeAAAA, edns);
        same_answer_signed(p.port, "yolo.detection.image.ai.example.", aisid::kTypeANY, edns);
        same_answer_signed(p.port, "ai.example.", aisid::kTypeANY, edns);
        same_answer_signed(p.port, "p100.yolo.detection.image.ai.example.", aisid::kTypeANY, edns);
    }
    same_answer_signed(p.port, "detection.image.ai.example.", kTypeAAAA, true, true);  // TCP
    same_answer_signed(p.port, rev, aisid::kTypePTR, false, true);

    // an NXDOMAIN and a NODATA say so, with the SOA (RFC 2308 §3)
    Reply nx = ask(p.port, "nosuch.ai.example.", kTypeAAAA, true);
    CHECK(nx.rcode == 3);
    CHECK(nx.answer.empty());
    REQUIRE(nx.authority.size() == 1);
    CHECK(nx.authority[0].find("\t60\tIN\tSOA\t") != std::string::npos);  // min(SOA TTL, MINIMUM)
    Reply nodata = ask(p.port, "p100.yolo.detection.image.ai.example.", kTypeTXT, true);
    CHECK(nodata.rcode == 0);
    CHECK(nodata.answer.empty());
    CHECK(nodata.authority.size() == 1);

    // outside every local zone: REFUSED (an authority does not recurse), still signed
    Reply out = ask(p.port, "www.legacy.example.", kTypeAAAA, true);
    CHECK(out.rcode == kRcodeRefused);
    CHECK(out.verified);
}

TEST_CASE("aisidd primary: names that need escaping survive compaction and restarts - an unreadable compacted copy refuses the start and keeps the journal") {
    TempDir d;
    Aisidd p(authority(d, "primary").args(primary_args(write_test_zone(d))));
    const std::vector<std::string> names = {"q\\\"uote", "back\\\\slash", "sp\\032ace", "semi\\;colon", "pa\\(re\\)n",
                                            "dot\\.inside", "\\@", "\\$INCLUDE", "\\$x", "b\\200\\255yte"};
    uint32_t s0 = serial_of(p.port);
    for (size_t i = 0; i < names.size(); ++i)
        REQUIRE(send_update(p.port, "ai.example.", {},
                            {rr(names[i] + ".hosts.ai.example. 300 IN TXT \"v\\\"" + std::to_string(i) + "; (x)\"")})
                    .rcode == 0);
    auto all_there = [&] {
        for (const std::string &n : names)
            if (!query(p.port, n + ".hosts.ai.example.", kTypeTXT).has(kTypeTXT)) return false;
        return true;
    };
    // Quiet for a second: the writer compacts the zone file.
    std::string zf = p.state_dir + "/ai.example.zone";
    REQUIRE(wait_until([&] { return read_file(zf).find("q\\\"uote") != std::string::npos; }, 5000) >= 0);
    // More after the compaction, then kill -9: compacted copy + journal.
    REQUIRE(send_update(p.port, "ai.example.", {}, {rr("after\\\"kill.hosts.ai.example. 300 IN AAAA 2001:db8:99::1")})
                .rcode == 0);
    p.kill9();
    p.start();
    CHECK(serial_of(p.port) == s0 + names.size() + 1);
    CHECK(all_there());
    CHECK(query(p.port, "after\\\"kill.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA));
    // A clean stop compacts again; the restart reads it.
    REQUIRE(p.proc.stop(5000) == 0);
    p.start();
    CHECK(serial_of(p.port) == s0 + names.size() + 1);
    CHECK(all_there());
    REQUIRE(send_update(p.port, "ai.example.", {}, {rr("last.hosts.ai.example. 300 IN AAAA 2001:db8:99::2")}).rcode == 0);
    p.kill9();
    // The compacted copy broken (as an unescaped writer left it): aisidd must
    // refuse to start, name the file and line, and leave the journal alone.
    std::string jnl = p.state_dir + "/ai.example.jnl";
    std::string journal = read_file(jnl);
    REQUIRE(!journal.empty());
    write_file(zf, read_file(zf) + "q\"uote.hosts.ai.example. 300 IN TXT \"x\"\n");
    std::vector<std::string> argv{aisidd_path(), "--listen", "127.0.0.1:" + std::to_string(p.port),
                                  "--upstream", "127.0.0.1:9", "--state-dir", p.state_dir, "--threads", "1"};
    for (auto &a : primary_args(d.file("ai.example.zone"))) argv.push_back(a);
    CmdResult r = run(argv, 10000);
    CHECK(r.code == 2);
    CHECK_MESSAGE(r.err.find(zf + ":") != std::string::npos, r.err);
    CHECK_MESSAGE(r.err.find("unterminated quoted string") != std::string::npos, r.err);
    CHECK_MESSAGE(r.err.find("refusing to start") != std::string::npos, r.err);
    CHECK(read_file(jnl) == journal);
    // A journal over a base it does not follow (the copy moved away, the
    // journal's first entry gone): the same refusal, nothing cut.
    std::filesystem::rename(zf, zf + ".moved");
    size_t second = journal.find("AJN1", 4);
    REQUIRE(second != std::string::npos);
    write_file(jnl, journal.substr(second));
    r = run(argv, 10000);
    CHECK(r.code == 2);
    CHECK_MESSAGE(r.err.find("does not follow serial") != std::string::npos, r.err);
    CHECK(read_file(jnl) == journal.substr(second));
    // Repaired, it starts with everything.
    write_file(jnl, journal);
    std::filesystem::rename(zf + ".moved", zf);
    std::string text = read_file(zf);
    text.resize(text.rfind("q\"uote.hosts"));
    write_file(zf, text);
    p.start();
    CHECK(serial_of(p.port) == s0 + names.size() + 2);
    CHECK(all_there());
    CHECK(query(p.port, "last.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA));
}
