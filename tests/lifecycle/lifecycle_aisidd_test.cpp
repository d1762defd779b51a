// aisidd as primary (and secondary): the SPEC §3 lifecycle with aisid-admin
// and nsupdate, TSIG refusals, durability across kill -9, torn journals,
// NOTIFY → IXFR to a secondary, the secondary surviving its primary.
#include "lifecycle_fixture.hpp"

#include <cstdio>
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
    Aisidd p(d, "primary", primary_args(zone_file(d)));
    p.start();
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
    Aisidd p(d, "primary", primary_args(zone_file(d)));
    p.start();
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
    Aisidd p(d, "primary", primary_args(zone_file(d)));
    p.start();
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

TEST_CASE("aisidd primary: 1000 acknowledged updates survive kill -9") {
    TempDir d;
    Aisidd p(d, "primary", primary_args(zone_file(d)));
    p.start();
    const int n = 1000;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        UpdateReply u = send_update(p.port, "ai.example.", {},
                                    {rr("h" + std::to_string(i) + ".hosts.ai.example. 300 IN AAAA 2001:db8:99::" +
                                        std::to_string(i % 9999 + 1))});
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
        if (!query(p.port, "h" + std::to_string(i) + ".hosts.ai.example.", kTypeAAAA).has(kTypeAAAA)) ++missing;
    CHECK(missing == 0);
    CHECK(p.log().find("replayed") != std::string::npos);
}

TEST_CASE("aisidd primary: a journal with a torn last entry recovers to the last whole entry, and says so") {
    TempDir d;
    Aisidd p(d, "primary", primary_args(zone_file(d)));
    p.start();
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
    Aisidd s(d, "secondary", {});
    Aisidd p(d, "primary", primary_args(zone_file(d)));
    p.extra.push_back("--notify");
    p.extra.push_back("127.0.0.1:" + std::to_string(s.port));
    s.extra = {"--key", key_arg(), "--secondary", "ai.example=127.0.0.1:" + std::to_string(p.port)};
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
    p.proc->stop(3000);
    CHECK(query(s.port, "n4.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA));
    s.proc->stop(3000);
    s.start();
    CHECK(wait_until([&] { return query(s.port, "n4.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA); }, 2000) >= 0);
    CHECK(s.log().find("serving the last good copy") != std::string::npos);
}

TEST_CASE("aisidd: SIGHUP keeps acknowledged updates and pulled zones") {
    TempDir d;
    Aisidd s(d, "secondary", {});
    Aisidd p(d, "primary", primary_args(zone_file(d)));
    s.extra = {"--key", key_arg(), "--secondary", "ai.example=127.0.0.1:" + std::to_string(p.port)};
    p.extra.push_back("--notify");
    p.extra.push_back("127.0.0.1:" + std::to_string(s.port));
    p.start();
    s.start();
    REQUIRE(wait_until([&] { return serial_of(s.port) == 2026112501u; }, 5000) >= 0);
    REQUIRE(send_update(p.port, "ai.example.", {}, {rr("h1.hosts.ai.example. 300 IN AAAA 2001:db8:99::1")}).rcode == 0);
    REQUIRE(wait_until([&] { return serial_of(s.port) == 2026112502u; }, 1000) >= 0);
    // The reload reads the older zone file again: the journaled copy must stay served.
    p.proc->signal(SIGHUP);
    s.proc->signal(SIGHUP);
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
    std::string text = kZone;
    text.replace(text.find("3600 600 86400 60"), 17, "1 1 86400 60");  // refresh 1 s, retry 1 s
    std::string zf = d.file("fast.zone");
    write_file(zf, text);
    Aisidd p(d, "primary", primary_args(zf));
    Aisidd s(d, "secondary", {});
    s.extra = {"--key", key_arg(), "--secondary", "ai.example=127.0.0.1:" + std::to_string(p.port)};
    p.start();
    s.start();
    REQUIRE(wait_until([&] { return serial_of(s.port) == 2026112501u; }, 5000) >= 0);
    REQUIRE(send_update(p.port, "ai.example.", {}, {rr("t.hosts.ai.example. 300 IN AAAA 2001:db8:99::1")}).rcode == 0);
    CHECK(wait_until([&] { return query(s.port, "t.hosts.ai.example.", kTypeAAAA).has(kTypeAAAA); }, 3000) >= 0);
    // primary away: retries on the retry timer, keeps serving, catches up when it is back
    p.proc->stop(3000);
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
    CHECK(run({bin("cli/aisid-admin"), "--help"}).code == 0);
    CHECK(run({bin("cli/aisid-admin"), "--version"}).out.find("aisid-admin ") == 0);
    CHECK(run({bin("cli/aisid-admin"), "query", "x"}).code == 2);       // no --server
}
