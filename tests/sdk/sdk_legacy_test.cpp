// Legacy names through the SDK against a real Unbound on loopback: AAAA and A
// (IPv4-mapped), negative answers, the TTL cache, the asynchronous API in a
// poll loop, threads sharing one client, and Happy Eyeballs connects to
// loopback listeners.
#include "aisid/aisid.h"
#include "aisid/aisid.hpp"
#include "sdk_upstream.hpp"
#include "paths.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <atomic>
#include <map>
#include <thread>

using namespace aisid::test;

namespace {

std::string addr_text(const in6_addr &a) {
    char b[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a, b, sizeof b);
    return b;
}

std::vector<std::string> addrs(const aisid_result_t *r) {
    std::vector<std::string> v;
    for (size_t i = 0; i < aisid_result_count(r); ++i) {
        in6_addr a;
        aisid_result_address(r, i, &a);
        v.push_back(addr_text(a));
    }
    return v;
}

aisid_client_t *client_for(const Unbound &u) {
    aisid_client_t *c = nullptr;
    REQUIRE(aisid_client_new_flags(&c, AISID_CLIENT_NO_HOST_ZONES | AISID_CLIENT_NO_WATCH) == AISID_OK);
    REQUIRE(aisid_client_set_upstreams(c, u.addr().c_str()) == AISID_OK);
    REQUIRE(aisid_client_add_zone_file(c, example_zone_path().c_str()) == AISID_OK);
    return c;
}

aisid_counters_t counters(aisid_client_t *c) {
    aisid_counters_t k;
    aisid_client_counters(c, &k, sizeof k);
    return k;
}

// A TCP listener on a loopback address and a free port.
struct Listener {
    int fd = -1;
    uint16_t port = 0;
    Listener(const char *addr, uint16_t want = 0) {
        in6_addr a6;
        bool v6 = inet_pton(AF_INET6, addr, &a6) == 1;
        fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (v6) {
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
            sockaddr_in6 s{};
            s.sin6_family = AF_INET6;
            s.sin6_addr = a6;
            s.sin6_port = htons(want);
            REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&s), sizeof s) == 0);
        } else {
            sockaddr_in s{};
            s.sin_family = AF_INET;
            inet_pton(AF_INET, addr, &s.sin_addr);
            s.sin_port = htons(want);
            REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&s), sizeof s) == 0);
        }
        REQUIRE(::listen(fd, 16) == 0);
        sockaddr_storage ss;
        socklen_t l = sizeof ss;
        getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &l);
        port = ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
    }
    ~Listener() { ::close(fd); }
};

} // namespace

TEST_CASE("legacy names: AAAA and A through c-ares, IPv4 mapped, source legacy") {
    Unbound u(sdk_legacy_upstream());
    aisid_client_t *c = client_for(u);
    aisid_result_t *r = nullptr;
    REQUIRE(aisid_resolve(c, "www.legacy.example", &r) == AISID_OK);
    CHECK(aisid_result_is_aisid(r) == 0);
    CHECK(aisid_result_source(r) == AISID_SOURCE_LEGACY);
    CHECK(std::string(aisid_result_name(r)) == "www.legacy.example.");
    CHECK(addrs(r) == std::vector<std::string>{"2001:db8:1::10", "::ffff:192.0.2.10"});
    CHECK(aisid_result_ttl(r) <= 300);
    CHECK(aisid_result_ttl(r) >= 290);
    aisid_fields_t f;
    CHECK(aisid_result_fields(r, &f) == -1);
    CHECK(aisid_result_zone(r) == nullptr);
    CHECK(aisid_result_fallback_count(r) == 0);
    aisid_result_free(r);

    REQUIRE(aisid_resolve(c, "V4ONLY.legacy.example.", &r) == AISID_OK);
    CHECK(addrs(r) == std::vector<std::string>{"::ffff:192.0.2.11"});
    aisid_result_free(r);

    // NXDOMAIN inside the static zone; REFUSED for everything else.
    CHECK(aisid_resolve(c, "nosuch.legacy.example", &r) == AISID_ENOTFOUND);
    // c-ares 1.18 turns an upstream's REFUSED into ARES_ECONNREFUSED (as if no
    // server were reachable), so a refusal reads as a network failure.
    CHECK(aisid_resolve(c, "www.elsewhere.example", &r) == AISID_ENETWORK);
    // AISID names never reach the upstream, even when it could answer.
    REQUIRE(aisid_resolve(c, "yolo.detection.image.ai.example", &r) == AISID_OK);
    CHECK(aisid_result_is_aisid(r) == 1);
    aisid_result_free(r);
    auto k = counters(c);
    CHECK(k.legacy_queries == 4);
    CHECK(k.resolve_legacy == 4);
    CHECK(k.resolve_aisid == 1);
    aisid_client_free(c);
}

TEST_CASE("legacy cache: answers served until their TTL runs out, also with the upstream gone") {
    auto u = std::make_unique<Unbound>(sdk_legacy_upstream());
    aisid_client_t *c = client_for(*u);
    aisid_result_t *r = nullptr;
    REQUIRE(aisid_resolve(c, "www.legacy.example", &r) == AISID_OK);
    aisid_result_free(r);
    REQUIRE(aisid_resolve(c, "short.legacy.example", &r) == AISID_OK);
    CHECK(aisid_result_ttl(r) == 1);
    aisid_result_free(r);
    CHECK(aisid_resolve(c, "nosuch.legacy.example", &r) == AISID_ENOTFOUND);
    auto k0 = counters(c);
    CHECK(k0.legacy_queries == 3);

    // Within the TTL: from the cache, case-insensitively, with or without the root dot.
    REQUIRE(aisid_resolve(c, "WWW.legacy.example.", &r) == AISID_OK);
    CHECK(addrs(r).size() == 2);
    CHECK(aisid_result_ttl(r) <= 300);
    aisid_result_free(r);
    CHECK(aisid_resolve(c, "nosuch.legacy.example", &r) == AISID_ENOTFOUND);  // negative cache
    auto k1 = counters(c);
    CHECK(k1.legacy_queries == 3);
    CHECK(k1.legacy_cache_hits == 2);

    // The TTL-1 answer expires and is asked again.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    REQUIRE(aisid_resolve(c, "short.legacy.example", &r) == AISID_OK);
    aisid_result_free(r);
    CHECK(counters(c).legacy_queries == 4);

    // The upstream goes away: the cached answer still serves, an uncached name fails.
    u.reset();
    aisid_client_set_legacy_timeout(c, 300);
    REQUIRE(aisid_resolve(c, "www.legacy.example", &r) == AISID_OK);
    aisid_result_free(r);
    aisid_status_t s = aisid_resolve(c, "v4only.legacy.example", &r);
    CHECK((s == AISID_ETIMEOUT || s == AISID_ENETWORK));

    // Changing upstreams drops the cache.
    CHECK(aisid_client_set_upstreams(c, "127.0.0.1:9") == AISID_OK);
    s = aisid_resolve(c, "www.legacy.example", &r);
    CHECK(s != AISID_OK);
    aisid_client_free(c);
}

TEST_CASE("asynchronous API: fds + process in the application's poll loop") {
    Unbound u(sdk_legacy_upstream());
    aisid_client_t *c = client_for(u);
    struct Out {
        std::map<std::string, std::pair<aisid_status_t, std::vector<std::string>>> got;
    } out;
    struct Ctx {
        Out *out;
        std::string name;
    };
    auto cb = [](void *arg, aisid_status_t st, aisid_result_t *r) {
        std::unique_ptr<Ctx> x(static_cast<Ctx *>(arg));
        x->out->got[x->name] = {st, r ? addrs(r) : std::vector<std::string>{}};
        aisid_result_free(r);
    };
    const char *names[] = {"www.legacy.example", "v4only.legacy.example", "nosuch.legacy.example",
                           "llama.generation.text.ai.example", "lo.legacy.example"};
    for (const char *n : names) REQUIRE(aisid_resolve_async(c, n, cb, new Ctx{&out, n}) == AISID_OK);
    // The AISID name answered at once; the legacy ones are pending.
    CHECK(out.got.size() == 1);
    CHECK(aisid_async_pending(c) == 4);
    int rounds = 0;
    while (aisid_async_pending(c) > 0 && rounds++ < 1000) {
        pollfd p[16];
        size_t n = aisid_async_fds(c, p, 16);
        int t = aisid_async_timeout(c);
        REQUIRE(t >= 0);
        int rc = ::poll(p, n, t);
        aisid_async_process(c, p, rc > 0 ? n : 0);
    }
    REQUIRE(out.got.size() == 5);
    CHECK(out.got["www.legacy.example"].first == AISID_OK);
    CHECK(out.got["www.legacy.example"].second == std::vector<std::string>{"2001:db8:1::10", "::ffff:192.0.2.10"});
    CHECK(out.got["v4only.legacy.example"].second == std::vector<std::string>{"::ffff:192.0.2.11"});
    CHECK(out.got["nosuch.legacy.example"].first == AISID_ENOTFOUND);
    CHECK(out.got["llama.generation.text.ai.example"].second == std::vector<std::string>{"2001:db8:abcd:12:2:4:5:0"});
    CHECK(aisid_async_timeout(c) == -1);

    // A second round hits the cache: answered before the call returns.
    out.got.clear();
    REQUIRE(aisid_resolve_async(c, "www.legacy.example", cb, new Ctx{&out, "www.legacy.example"}) == AISID_OK);
    CHECK(out.got.size() == 1);

    // Cancel: pending callbacks run with AISID_ECANCELLED.
    aisid_client_set_upstreams(c, "127.0.0.1:9");  // nobody answers there
    out.got.clear();
    REQUIRE(aisid_resolve_async(c, "slow.legacy.example", cb, new Ctx{&out, "slow"}) == AISID_OK);
    CHECK(aisid_async_pending(c) == 1);
    aisid_async_cancel(c);
    CHECK(out.got["slow"].first == AISID_ECANCELLED);
    CHECK(aisid_async_pending(c) == 0);

    // Freeing the client with a query in flight cancels it too.
    REQUIRE(aisid_resolve_async(c, "slow2.legacy.example", cb, new Ctx{&out, "slow2"}) == AISID_OK);
    aisid_client_free(c);
    CHECK(out.got["slow2"].first == AISID_ECANCELLED);
}

TEST_CASE("C++ API: legacy resolve and resolve_async with process()") {
    Unbound u(sdk_legacy_upstream());
    auto c = aisid::Client::create({.host_zones = false, .watch = false});
    REQUIRE(c);
    REQUIRE(c->set_upstreams(u.addr()) == aisid::Status::ok);
    auto a = c->resolve("www.legacy.example");
    REQUIRE(a);
    CHECK(a->source() == aisid::Source::legacy);
    CHECK(!a->aisid());
    CHECK(a->size() == 2);
    int done = 0;
    REQUIRE(c->resolve_async("v4only.legacy.example", [&](aisid::Outcome<aisid::Answer> r) {
        ++done;
        REQUIRE(r);
        CHECK(addr_text(r->address(0)) == "::ffff:192.0.2.11");
    }) == aisid::Status::ok);
    while (c->async_pending()) {
        auto fds = c->async_fds();
        ::poll(fds.data(), fds.size(), c->async_timeout());
        c->process(fds);
    }
    CHECK(done == 1);
}

TEST_CASE("threads share one client: AISID and legacy names at once") {
    Unbound u(sdk_legacy_upstream());
    aisid_client_t *c = client_for(u);
    std::atomic<int> bad{0}, ok{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 6; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                const char *n = (i + t) % 3 == 0   ? "www.legacy.example"
                                : (i + t) % 3 == 1 ? "yolo.detection.image.ai.example"
                                                   : "v4only.legacy.example";
                aisid_result_t *r = nullptr;
                if (aisid_resolve(c, n, &r) != AISID_OK) {
                    ++bad;
                    continue;
                }
                auto v = addrs(r);
                bool good = (std::string(n) == "www.legacy.example" && v.size() == 2) ||
                            (std::string(n) == "v4only.legacy.example" && v == std::vector<std::string>{"::ffff:192.0.2.11"}) ||
                            (n[0] == 'y' && v == std::vector<std::string>{"2001:db8:abcd:12:1:2:1:0"});
                good ? ++ok : ++bad;
                aisid_result_free(r);
            }
        });
    for (auto &t : ts) t.join();
    CHECK(bad.load() == 0);
    CHECK(ok.load() == 1200);
    auto k = counters(c);
    CHECK(k.resolve_aisid + k.resolve_legacy == 1200);
    // Two names, asked a handful of times at most before the cache holds them.
    CHECK(k.legacy_queries < 20);
    aisid_client_free(c);
}

TEST_CASE("connect to a legacy name: Happy Eyeballs from AAAA to A") {
    Unbound u(sdk_legacy_upstream());
    aisid_client_t *c = client_for(u);
    Listener v4("127.0.0.1");
    // ::1 on the same port refuses (nobody listens there): the A address gets its turn at once.
    aisid_connect_info_t info{};
    aisid_status_t e;
    int fd = aisid_connect_ex(c, "lo.legacy.example", v4.port, 2000, &e, &info);
    REQUIRE(fd >= 0);
    CHECK(e == AISID_OK);
    CHECK(info.path == AISID_PATH_LEGACY);
    CHECK(info.attempts == 2);
    CHECK(addr_text(info.peer.sin6_addr) == "::ffff:127.0.0.1");
    CHECK(info.elapsed_us < 200000);
    ::close(fd);

    // With a listener on ::1 too, IPv6 wins (RFC 8305 §4: IPv6 first).
    Listener v6("::1", v4.port);
    fd = aisid_connect_ex(c, "lo.legacy.example", v4.port, 2000, &e, &info);
    REQUIRE(fd >= 0);
    CHECK(info.attempts == 1);
    CHECK(addr_text(info.peer.sin6_addr) == "::1");
    ::close(fd);

    // Nothing listens: every address refused, -1 and ECONNECT.
    Listener gone("127.0.0.1");
    uint16_t dead = gone.port;
    ::close(gone.fd);
    gone.fd = ::socket(AF_INET, SOCK_STREAM, 0);
    CHECK(aisid_connect(c, "lo4.legacy.example", dead, 1000, &e) == -1);
    CHECK(e == AISID_ECONNECT);
    CHECK(aisid_connect(c, "nosuch.legacy.example", dead, 1000, &e) == -1);
    CHECK(e == AISID_ENOTFOUND);
    auto k = counters(c);
    CHECK(k.connect_legacy == 2);
    CHECK(k.connect_failed == 2);
    aisid_client_free(c);
}
