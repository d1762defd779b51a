// The SDK's API calls without a network: client lifecycle, zone files, AISID
// resolution and result accessors, argument checks, counters, zone changes on
// disk, threads sharing one client. (Legacy DNS and connect: sdk_legacy_test,
// sdk_connect_e2e_test.)
#include "aisid/aisid.h"
#include "aisid/aisid.hpp"
#include "paths.hpp"
#include "proc.hpp"
#include "aisid/client/zone_watcher.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <atomic>
#include <cstring>
#include <thread>

using namespace aisid::test;

namespace {

std::string zone_text(const std::string &origin, const std::string &prefix, const std::string &extra = "") {
    return "$ORIGIN " + origin + "\n$TTL 300\n"
           "@ SOA ns admin 1 3600 600 86400 60\n"
           "@ NS ns\n"
           "_aisid TXT \"v=aisid1\" \"prefix=" + prefix + "\"\n"
           "image._object TXT \"code=1\"\n"
           "detection._function TXT \"code=2\"\n"
           "yolo._method TXT \"code=1\"\n"
           "resnet._method TXT \"code=2\"\n"
           "yolo.detection.image AAAA " + prefix.substr(0, prefix.find("::")) + "::1:2:1:0\n"
           "yolo.detection.image SVCB 2 second.legacy.example. port=8443\n"
           "yolo.detection.image SVCB 1 first.legacy.example.\n"
           "plain AAAA 2001:db8:ffff::1\n"
           "plain A 192.0.2.1\n"
           "nodata TXT \"x\"\n" + extra;
}

std::string addr_text(const in6_addr &a) {
    char b[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a, b, sizeof b);
    return b;
}

aisid_client_t *empty_client(unsigned flags = AISID_CLIENT_NO_WATCH) {
    aisid_client_t *c = nullptr;
    REQUIRE(aisid_client_new_flags(&c, AISID_CLIENT_NO_HOST_ZONES | flags) == AISID_OK);
    REQUIRE(c);
    return c;
}

template <class F> bool eventually(F f, int ms = 3000) {
    for (int i = 0; i < ms / 10; ++i) {
        if (f()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return f();
}

} // namespace

TEST_CASE("aisid_client_new with host defaults and free") {
    aisid_client_t *c = nullptr;
    REQUIRE(aisid_client_new(&c) == AISID_OK);
    REQUIRE(c);
    // Whatever the host has, a name under no zone is not answered locally as AISID.
    aisid_client_free(c);
    aisid_client_free(nullptr);
    CHECK(aisid_client_new(nullptr) == AISID_EINVAL);
}

TEST_CASE("aisid_resolve: a registered service, from the example zone, no packet") {
    aisid_client_t *c = empty_client();
    REQUIRE(aisid_client_add_zone_file(c, example_zone_path().c_str()) == AISID_OK);
    aisid_result_t *r = nullptr;
    REQUIRE(aisid_resolve(c, "YOLO.detection.image.ai.example", &r) == AISID_OK);
    CHECK(aisid_result_is_aisid(r) == 1);
    CHECK(aisid_result_source(r) == AISID_SOURCE_AISID);
    CHECK(std::string(aisid_result_name(r)) == "yolo.detection.image.ai.example.");
    REQUIRE(aisid_result_count(r) == 1);
    in6_addr a;
    REQUIRE(aisid_result_address(r, 0, &a) == 0);
    CHECK(addr_text(a) == "2001:db8:abcd:12:1:2:1:0");
    CHECK(aisid_result_address(r, 1, &a) == -1);
    aisid_fields_t f;
    REQUIRE(aisid_result_fields(r, &f) == 0);
    CHECK(f.prefix == 0x20010db8abcd0012ull);
    CHECK(f.object == 1);
    CHECK(f.function == 2);
    CHECK(f.method == 1);
    CHECK(f.performance == 0);
    CHECK(std::string(aisid_result_term(r, AISID_DIM_OBJECT)) == "image");
    CHECK(std::string(aisid_result_term(r, AISID_DIM_FUNCTION)) == "detection");
    CHECK(std::string(aisid_result_term(r, AISID_DIM_METHOD)) == "yolo");
    CHECK(std::string(aisid_result_zone(r)) == "ai.example.");
    CHECK(aisid_result_ttl(r) == 300);
    REQUIRE(aisid_result_fallback_count(r) == 1);
    const char *t = nullptr;
    uint16_t port = 0;
    REQUIRE(aisid_result_fallback(r, 0, &t, &port) == 0);
    CHECK(std::string(t) == "yolo-detection-image.legacy.provider.example.");
    CHECK(port == 443);
    CHECK(aisid_result_fallback(r, 1, &t, &port) == -1);
    aisid_result_free(r);
    aisid_client_free(c);
}

TEST_CASE("aisid_resolve: synthesized names, performance, wildcards, NXDOMAIN, NODATA, literals") {
    TempDir d;
    aisid_client_t *c = empty_client();
    REQUIRE(aisid_client_add_zone_file(c, d.write("t.zone", zone_text("t.example.", "2001:db8:77::/64")).c_str()) ==
            AISID_OK);
    aisid_result_t *r = nullptr;
    in6_addr a;
    aisid_fields_t f;

    REQUIRE(aisid_resolve(c, "p5000.yolo.detection.image.t.example.", &r) == AISID_OK);
    aisid_result_address(r, 0, &a);
    CHECK(addr_text(a) == "2001:db8:77:0:1:2:1:1388");
    REQUIRE(aisid_result_fields(r, &f) == 0);
    CHECK(f.performance == 5000);
    aisid_result_free(r);

    // "any method": code 0, no term, still the service's fallbacks? no: a wildcard has none of its own.
    REQUIRE(aisid_resolve(c, "detection.image.t.example", &r) == AISID_OK);
    aisid_result_address(r, 0, &a);
    CHECK(addr_text(a) == "2001:db8:77:0:1:2::");
    CHECK(aisid_result_term(r, AISID_DIM_METHOD) == nullptr);
    CHECK(aisid_result_fallback_count(r) == 0);
    aisid_result_free(r);

    // SVCB endpoints come in priority order (RFC 9460 §2.4.1).
    REQUIRE(aisid_resolve(c, "yolo.detection.image.t.example", &r) == AISID_OK);
    REQUIRE(aisid_result_fallback_count(r) == 2);
    const char *t;
    uint16_t port;
    aisid_result_fallback(r, 0, &t, &port);
    CHECK(std::string(t) == "first.legacy.example.");
    CHECK(port == 0);
    aisid_result_fallback(r, 1, &t, &port);
    CHECK(std::string(t) == "second.legacy.example.");
    CHECK(port == 8443);
    aisid_result_free(r);

    // Rule 3: inside the domain, neither records nor a matching service.
    r = reinterpret_cast<aisid_result_t *>(1);
    CHECK(aisid_resolve(c, "resnet.detection.image.t.example", &r) == AISID_ENOTFOUND);
    CHECK(r == nullptr);
    CHECK(aisid_resolve(c, "nosuch.t.example", &r) == AISID_ENOTFOUND);
    CHECK(aisid_resolve(c, "nodata.t.example", &r) == AISID_ENODATA);

    // Rule 1 with AAAA and A: IPv4 answers are IPv4-mapped.
    REQUIRE(aisid_resolve(c, "plain.t.example", &r) == AISID_OK);
    REQUIRE(aisid_result_count(r) == 2);
    aisid_result_address(r, 0, &a);
    CHECK(addr_text(a) == "2001:db8:ffff::1");
    aisid_result_address(r, 1, &a);
    CHECK(addr_text(a) == "::ffff:192.0.2.1");
    CHECK(aisid_result_is_aisid(r) == 1);
    CHECK(aisid_result_fields(r, &f) == -1);  // not inside the AISID prefix
    aisid_result_free(r);

    // Literal addresses resolve to themselves; inside a loaded prefix they are decoded.
    REQUIRE(aisid_resolve(c, "2001:db8:77::1:2:1:0", &r) == AISID_OK);
    CHECK(aisid_result_is_aisid(r) == 1);
    REQUIRE(aisid_result_fields(r, &f) == 0);
    CHECK(f.object == 1);
    aisid_result_free(r);
    REQUIRE(aisid_resolve(c, "192.0.2.7", &r) == AISID_OK);
    aisid_result_address(r, 0, &a);
    CHECK(addr_text(a) == "::ffff:192.0.2.7");
    CHECK(aisid_result_is_aisid(r) == 0);
    aisid_result_free(r);

    CHECK(aisid_resolve(c, "bad..name", &r) == AISID_EINVAL);
    CHECK(aisid_resolve(c, nullptr, &r) == AISID_EINVAL);
    CHECK(aisid_resolve(nullptr, "x.example", &r) == AISID_EINVAL);
    CHECK(aisid_resolve(c, "x.example", nullptr) == AISID_EINVAL);

    aisid_counters_t k;
    aisid_client_counters(c, &k, sizeof k);
    CHECK(k.resolve_aisid == 8);
    CHECK(k.resolve_legacy == 1);  // the IPv4 literal
    aisid_client_free(c);
}

TEST_CASE("aisid_client_add_zone_file: errors with FILE:LINE and replaces a zone of the same origin") {
    TempDir d;
    aisid_client_t *c = empty_client();
    std::string bad = d.write("bad.zone", "$ORIGIN b.example.\n$TTL 60\n@ SOA ns admin 1 2 3 4 5\n@ NS ns\n"
                                          "_aisid TXT \"v=aisid1\" \"prefix=2001:db8:1::/48\"\n");
    CHECK(aisid_client_add_zone_file(c, bad.c_str()) == AISID_EZONE);
    std::string msg = aisid_last_error();
    CHECK(msg.find(bad + ":") == 0);
    CHECK(aisid_client_add_zone_file(c, d.file("missing.zone").c_str()) == AISID_EZONE);
    CHECK(aisid_client_add_zone_file(c, nullptr) == AISID_EINVAL);

    std::string one = d.write("one.zone", zone_text("t.example.", "2001:db8:1::/64"));
    std::string two = d.write("two.zone", zone_text("t.example.", "2001:db8:2::/64"));
    REQUIRE(aisid_client_add_zone_file(c, one.c_str()) == AISID_OK);
    uint64_t g1 = aisid_client_zone_generation(c);
    REQUIRE(aisid_client_add_zone_file(c, two.c_str()) == AISID_OK);
    CHECK(aisid_client_zone_generation(c) > g1);
    aisid_result_t *r;
    REQUIRE(aisid_resolve(c, "yolo.detection.image.t.example", &r) == AISID_OK);
    in6_addr a;
    aisid_result_address(r, 0, &a);
    CHECK(addr_text(a) == "2001:db8:2:0:1:2:1:0");
    aisid_result_free(r);
    aisid_client_free(c);
}

TEST_CASE("an application's zone file replaces a host zone of the same name") {
    // Host zone directories are fixed paths; this checks the order of replacement
    // through two files of the same origin, the second named by the application.
    TempDir d;
    aisid_client_t *c = empty_client();
    REQUIRE(aisid_client_add_zone_file(c, example_zone_path().c_str()) == AISID_OK);
    std::string mine = d.write("mine.zone", zone_text("ai.example.", "2001:db8:99::/64"));
    REQUIRE(aisid_client_add_zone_file(c, mine.c_str()) == AISID_OK);
    aisid_result_t *r;
    REQUIRE(aisid_resolve(c, "yolo.detection.image.ai.example", &r) == AISID_OK);
    in6_addr a;
    aisid_result_address(r, 0, &a);
    CHECK(addr_text(a) == "2001:db8:99:0:1:2:1:0");
    aisid_result_free(r);
    CHECK(aisid_resolve(c, "llama.generation.text.ai.example", &r) == AISID_ENOTFOUND);
    aisid_client_free(c);
}

TEST_CASE("argument checks: upstreams, attempt delay, legacy timeout, strerror") {
    aisid_client_t *c = empty_client();
    CHECK(aisid_client_set_upstreams(c, "127.0.0.1:5353") == AISID_OK);
    CHECK(aisid_client_set_upstreams(c, "127.0.0.1,[::1]:53,2001:db8::1") == AISID_OK);
    CHECK(aisid_client_set_upstreams(c, "") == AISID_OK);
    CHECK(aisid_client_set_upstreams(c, "dns.example:53") == AISID_EINVAL);
    CHECK(aisid_client_set_upstreams(c, "127.0.0.1:99999") == AISID_EINVAL);
    CHECK(aisid_client_set_upstreams(c, "127.0.0.1,,::1") == AISID_EINVAL);
    CHECK(aisid_client_set_upstreams(c, "[::1]x") == AISID_EINVAL);
    CHECK(aisid_client_set_upstreams(c, nullptr) == AISID_EINVAL);
    CHECK(aisid_client_set_attempt_delay(c, 100) == AISID_OK);
    CHECK(aisid_client_set_attempt_delay(c, 0) == AISID_EINVAL);
    CHECK(aisid_client_set_attempt_delay(c, 20000) == AISID_EINVAL);
    CHECK(aisid_client_set_legacy_timeout(c, 500) == AISID_OK);
    CHECK(aisid_client_set_legacy_timeout(c, 0) == AISID_EINVAL);
    CHECK(std::string(aisid_strerror(AISID_OK)) == "success");
    CHECK(std::string(aisid_strerror(AISID_ENOTFOUND)) == "name not found");
    CHECK(std::string(aisid_strerror(static_cast<aisid_status_t>(999))) == "unknown status");
    CHECK(std::string(aisid_version()) == "0.1.0");
    // Connect without a port or name fails cleanly.
    aisid_status_t e = AISID_OK;
    CHECK(aisid_connect(c, "x.example", 0, 100, &e) == -1);
    CHECK(e == AISID_EINVAL);
    CHECK(aisid_connect(c, nullptr, 80, 100, &e) == -1);
    CHECK(e == AISID_EINVAL);
    aisid_client_free(c);
}

TEST_CASE("aisid_resolve_async: AISID names answer before it returns") {
    aisid_client_t *c = empty_client();
    REQUIRE(aisid_client_add_zone_file(c, example_zone_path().c_str()) == AISID_OK);
    struct Got {
        int calls = 0;
        aisid_status_t st = AISID_EAGAIN;
        std::string addr;
    } got;
    auto cb = [](void *arg, aisid_status_t st, aisid_result_t *r) {
        auto *g = static_cast<Got *>(arg);
        ++g->calls;
        g->st = st;
        if (r) {
            in6_addr a;
            aisid_result_address(r, 0, &a);
            g->addr = addr_text(a);
            aisid_result_free(r);
        }
    };
    REQUIRE(aisid_resolve_async(c, "llama.generation.text.ai.example", cb, &got) == AISID_OK);
    CHECK(got.calls == 1);
    CHECK(got.st == AISID_OK);
    CHECK(got.addr == "2001:db8:abcd:12:2:4:5:0");
    REQUIRE(aisid_resolve_async(c, "nope.text.ai.example", cb, &got) == AISID_OK);
    CHECK(got.calls == 2);
    CHECK(got.st == AISID_ENOTFOUND);
    CHECK(aisid_resolve_async(c, "a..b", cb, &got) == AISID_EINVAL);
    CHECK(got.calls == 2);
    CHECK(aisid_async_pending(c) == 0);
    CHECK(aisid_async_timeout(c) == -1);
    pollfd p[4];
    CHECK(aisid_async_fds(c, p, 4) == 0);
    aisid_client_free(c);
}

TEST_CASE("zone changes on disk are picked up without a restart and a broken edit keeps the last good data") {
    TempDir d;
    aisid_client_t *c = empty_client(0);  // watching
    std::string path = d.write("w.zone", zone_text("w.example.", "2001:db8:5::/64"));
    REQUIRE(aisid_client_add_zone_file(c, path.c_str()) == AISID_OK);
    aisid_result_t *r;
    REQUIRE(aisid_resolve(c, "yolo.detection.image.w.example", &r) == AISID_OK);
    aisid_result_free(r);
    CHECK(aisid_resolve(c, "resnet.detection.image.w.example", &r) == AISID_ENOTFOUND);
    uint64_t g = aisid_client_zone_generation(c);

    // Register resnet.detection.image (an atomic rename, as editors do).
    d.write("w.zone", zone_text("w.example.", "2001:db8:5::/64", "resnet.detection.image AAAA 2001:db8:5:0:1:2:2:0\n"));
    CHECK(eventually([&] {
        aisid_result_t *x = nullptr;
        bool ok = aisid_resolve(c, "resnet.detection.image.w.example", &x) == AISID_OK;
        aisid_result_free(x);
        return ok;
    }));
    CHECK(aisid_client_zone_generation(c) > g);

    // An in-place write (no rename) is seen too: decommission it again.
    d.write("w.zone", zone_text("w.example.", "2001:db8:5::/64"), false);
    CHECK(eventually([&] {
        aisid_result_t *x = nullptr;
        aisid_status_t st = aisid_resolve(c, "resnet.detection.image.w.example", &x);
        aisid_result_free(x);
        return st == AISID_ENOTFOUND;
    }));

    // A broken edit: the old data stays, the error is counted.
    aisid_counters_t k0;
    aisid_client_counters(c, &k0, sizeof k0);
    d.write("w.zone", "$ORIGIN w.example.\nthis is not a zone\n");
    CHECK(eventually([&] {
        aisid_counters_t k;
        aisid_client_counters(c, &k, sizeof k);
        return k.zone_reload_errors > k0.zone_reload_errors;
    }));
    REQUIRE(aisid_resolve(c, "yolo.detection.image.w.example", &r) == AISID_OK);
    aisid_result_free(r);

    // Deleting the file takes the zone away: the name becomes a legacy name,
    // and the legacy upstream here (the discard port) never answers.
    std::remove(path.c_str());
    aisid_client_set_legacy_timeout(c, 50);
    aisid_client_set_upstreams(c, "127.0.0.1:9");  // discard port: nothing answers
    CHECK(eventually([&] {
        aisid_result_t *x = nullptr;
        aisid_status_t s = aisid_resolve(c, "yolo.detection.image.w.example", &x);
        aisid_result_free(x);
        return s != AISID_OK;
    }));
    aisid_client_free(c);
}

TEST_CASE("aisid_client_reload publishes changes at once without the watcher") {
    TempDir d;
    aisid_client_t *c = empty_client(AISID_CLIENT_NO_WATCH);
    std::string path = d.write("w.zone", zone_text("w.example.", "2001:db8:5::/64"));
    REQUIRE(aisid_client_add_zone_file(c, path.c_str()) == AISID_OK);
    aisid_result_t *r;
    d.write("w.zone", zone_text("w.example.", "2001:db8:6::/64"));
    REQUIRE(aisid_resolve(c, "yolo.detection.image.w.example", &r) == AISID_OK);
    in6_addr a;
    aisid_result_address(r, 0, &a);
    CHECK(addr_text(a) == "2001:db8:5:0:1:2:1:0");  // not watching: the old snapshot
    aisid_result_free(r);
    CHECK(aisid_client_reload(c) == AISID_OK);
    REQUIRE(aisid_resolve(c, "yolo.detection.image.w.example", &r) == AISID_OK);
    aisid_result_address(r, 0, &a);
    CHECK(addr_text(a) == "2001:db8:6:0:1:2:1:0");
    aisid_result_free(r);
    d.write("w.zone", "garbage\n");
    CHECK(aisid_client_reload(c) == AISID_EZONE);
    CHECK(std::string(aisid_last_error()).find(path) != std::string::npos);
    aisid_client_free(c);
}

TEST_CASE("threads share one client while zones reload under them") {
    TempDir d;
    aisid_client_t *c = empty_client(0);
    std::string path = d.write("m.zone", zone_text("m.example.", "2001:db8:5::/64"));
    REQUIRE(aisid_client_add_zone_file(c, path.c_str()) == AISID_OK);
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> ok{0}, bad{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&] {
            while (!stop.load()) {
                aisid_result_t *r = nullptr;
                if (aisid_resolve(c, "yolo.detection.image.m.example", &r) != AISID_OK) {
                    ++bad;
                    continue;
                }
                in6_addr a;
                aisid_result_address(r, 0, &a);
                std::string s = addr_text(a);
                // Either version of the zone, never a torn one.
                if (s == "2001:db8:5:0:1:2:1:0" || s == "2001:db8:6:0:1:2:1:0") ++ok;
                else ++bad;
                aisid_result_free(r);
            }
        });
    for (int i = 0; i < 20; ++i) {
        d.write("m.zone", zone_text("m.example.", i % 2 ? "2001:db8:5::/64" : "2001:db8:6::/64"));
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    stop = true;
    for (auto &t : ts) t.join();
    CHECK(bad.load() == 0);
    CHECK(ok.load() > 1000);
    aisid_counters_t k;
    aisid_client_counters(c, &k, sizeof k);
    CHECK(k.zone_reloads >= 2);
    aisid_client_free(c);
}

TEST_CASE("a thread reuses the results it frees: nothing of the last answer stays in the next") {
    TempDir d;
    aisid_client_t *c = empty_client();
    REQUIRE(aisid_client_add_zone_file(c, d.write("t.zone", zone_text("t.example.", "2001:db8:77::/64")).c_str()) ==
            AISID_OK);
    aisid_result_t *r = nullptr;
    aisid_fields_t f;
    const char *t = nullptr;
    uint16_t port = 0;
    for (int round = 0; round < 3; ++round) {
        // A registered service, everything asked (its text is made on first use).
        REQUIRE(aisid_resolve(c, "yolo.detection.image.t.example", &r) == AISID_OK);
        CHECK(std::string(aisid_result_name(r)) == "yolo.detection.image.t.example.");
        CHECK(std::string(aisid_result_zone(r)) == "t.example.");
        CHECK(aisid_result_fallback_count(r) == 2);
        CHECK(std::string(aisid_result_term(r, AISID_DIM_METHOD)) == "yolo");
        aisid_result_free(r);
        // A wildcard: its own name and no endpoints, not the last answer's.
        REQUIRE(aisid_resolve(c, "p7.detection.image.t.example", &r) == AISID_OK);
        CHECK(std::string(aisid_result_name(r)) == "p7.detection.image.t.example.");
        CHECK(aisid_result_fallback_count(r) == 0);
        CHECK(aisid_result_term(r, AISID_DIM_METHOD) == nullptr);
        REQUIRE(aisid_result_fields(r, &f) == 0);
        CHECK(f.performance == 7);
        CHECK(f.method == 0);
        aisid_result_free(r);
        // A literal outside every prefix: no zone, no fields, no endpoints.
        REQUIRE(aisid_resolve(c, "192.0.2.7", &r) == AISID_OK);
        CHECK(std::string(aisid_result_name(r)) == "192.0.2.7");
        CHECK(aisid_result_zone(r) == nullptr);
        CHECK(aisid_result_fields(r, &f) == -1);
        CHECK(aisid_result_term(r, AISID_DIM_OBJECT) == nullptr);
        CHECK(aisid_result_fallback_count(r) == 0);
        CHECK(aisid_result_ttl(r) == 0);
        CHECK(aisid_result_source(r) == AISID_SOURCE_LEGACY);
        aisid_result_free(r);
        // Two addresses, then one.
        REQUIRE(aisid_resolve(c, "plain.t.example", &r) == AISID_OK);
        CHECK(aisid_result_count(r) == 2);
        aisid_result_free(r);
        REQUIRE(aisid_resolve(c, "resnet.image.t.example", &r) == AISID_ENOTFOUND);
        REQUIRE(aisid_resolve(c, "image.t.example", &r) == AISID_OK);
        CHECK(aisid_result_count(r) == 1);
        CHECK(aisid_result_fallback(r, 0, &t, &port) == -1);
        aisid_result_free(r);
    }

    // More results at once than a thread keeps: each its own.
    std::vector<aisid_result_t *> many;
    for (int i = 0; i < 40; ++i) {
        aisid_result_t *x = nullptr;
        std::string name = "p" + std::to_string(i + 1) + ".yolo.detection.image.t.example";
        REQUIRE(aisid_resolve(c, name.c_str(), &x) == AISID_OK);
        many.push_back(x);
    }
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 40; ++i) {
            REQUIRE(aisid_result_fields(many[i], &f) == 0);
            CHECK(f.performance == i + 1);
            CHECK(std::string(aisid_result_name(many[i])) ==
                  "p" + std::to_string(i + 1) + ".yolo.detection.image.t.example.");
        }
        for (aisid_result_t *x : many) aisid_result_free(x);
        for (int i = 0; i < 40; ++i) {
            std::string name = "p" + std::to_string(i + 1) + ".yolo.detection.image.t.example";
            REQUIRE(aisid_resolve(c, name.c_str(), &many[i]) == AISID_OK);
        }
    }
    // Freed on another thread (which keeps them for its own resolutions).
    std::thread([&] {
        for (aisid_result_t *x : many) aisid_result_free(x);
        aisid_result_t *y = nullptr;
        REQUIRE(aisid_resolve(c, "yolo.detection.image.t.example", &y) == AISID_OK);
        CHECK(std::string(aisid_result_name(y)) == "yolo.detection.image.t.example.");
        CHECK(aisid_result_fallback_count(y) == 2);
        aisid_result_free(y);
    }).join();
    aisid_client_free(c);
}

TEST_CASE("a result stays valid until it is freed, across reloads and after its client") {
    TempDir d;
    aisid_client_t *c = empty_client();
    std::string path = d.write("v.zone", zone_text("v.example.", "2001:db8:5::/64"));
    REQUIRE(aisid_client_add_zone_file(c, path.c_str()) == AISID_OK);
    aisid_result_t *old = nullptr;
    REQUIRE(aisid_resolve(c, "p9.yolo.detection.image.v.example", &old) == AISID_OK);
    // The zone changes: another prefix, other endpoints, yolo renamed.
    std::string changed = zone_text("v.example.", "2001:db8:6::/64");
    for (auto [from, to] : {std::pair<std::string, std::string>{"first.legacy", "third.legacy"},
                            {"yolo._method", "yolo2._method"},
                            {"yolo.detection.image", "yolo2.detection.image"}})
        for (size_t at; (at = changed.find(from)) != std::string::npos;) changed.replace(at, from.size(), to);
    d.write("v.zone", changed);
    REQUIRE(aisid_client_reload(c) == AISID_OK);
    // Resolutions on the new data, freed and reused meanwhile.
    for (int i = 0; i < 20; ++i) {
        aisid_result_t *x = nullptr;
        REQUIRE(aisid_resolve(c, "yolo2.detection.image.v.example", &x) == AISID_OK);
        CHECK(std::string(aisid_result_term(x, AISID_DIM_METHOD)) == "yolo2");
        aisid_result_free(x);
    }
    CHECK(aisid_resolve(c, "yolo.detection.image.v.example", nullptr) == AISID_EINVAL);
    aisid_result_t *gone = nullptr;
    CHECK(aisid_resolve(c, "yolo.detection.image.v.example", &gone) == AISID_ENOTFOUND);
    // The old result answers from the data it came from, text made only now.
    auto check_old = [&] {
        in6_addr a;
        REQUIRE(aisid_result_address(old, 0, &a) == 0);
        CHECK(addr_text(a) == "2001:db8:5:0:1:2:1:9");
        CHECK(std::string(aisid_result_name(old)) == "p9.yolo.detection.image.v.example.");
        CHECK(std::string(aisid_result_zone(old)) == "v.example.");
        CHECK(std::string(aisid_result_term(old, AISID_DIM_METHOD)) == "yolo");
        REQUIRE(aisid_result_fallback_count(old) == 2);
        const char *t = nullptr;
        aisid_result_fallback(old, 0, &t, nullptr);
        CHECK(std::string(t) == "first.legacy.example.");
    };
    check_old();
    aisid_client_free(c); // and after the client is gone
    check_old();
    aisid_result_free(old);
}

TEST_CASE("the resolve counters add up over threads, those that ended and those still running") {
    TempDir d;
    aisid_client_t *c = empty_client();
    REQUIRE(aisid_client_add_zone_file(c, d.write("t.zone", zone_text("t.example.", "2001:db8:77::/64")).c_str()) ==
            AISID_OK);
    auto resolve_n = [&](int n) {
        for (int i = 0; i < n; ++i) {
            aisid_result_t *r = nullptr;
            REQUIRE(aisid_resolve(c, "yolo.detection.image.t.example", &r) == AISID_OK);
            aisid_result_free(r);
        }
        aisid_result_t *r = nullptr;
        REQUIRE(aisid_resolve(c, "192.0.2.1", &r) == AISID_OK); // a legacy answer
        aisid_result_free(r);
    };
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i) ts.emplace_back(resolve_n, 1000);
    for (auto &t : ts) t.join();
    ts.clear();
    for (int i = 0; i < 10; ++i) std::thread(resolve_n, 10).join(); // threads come and go: their counts stay
    resolve_n(5);
    aisid_counters_t k;
    aisid_client_counters(c, &k, sizeof k);
    CHECK(k.resolve_aisid == 4 * 1000 + 10 * 10 + 5);
    CHECK(k.resolve_legacy == 4 + 10 + 1);

    // A thread that outlives the client it counted for.
    std::atomic<int> step{0};
    std::thread late([&] {
        resolve_n(3);
        step = 1;
        while (step.load() != 2) std::this_thread::yield();
    });
    while (step.load() != 1) std::this_thread::yield();
    aisid_client_counters(c, &k, sizeof k);
    CHECK(k.resolve_aisid == 4 * 1000 + 10 * 10 + 5 + 3);
    aisid_client_free(c);
    step = 2;
    late.join();
}

TEST_CASE("aisid_explain: the rule and the zone that decided, also on failure, and addresses in reverse") {
    TempDir d;
    const std::string verified = "; aisid-verified: time=2026-01-02T03:04:05Z zone=t.example. serial=1 zonemd=sha384 "
                                 "key-tag=44703 anchor=/etc/aisid/t.ds  source=https://mirror.example/t.zone\n";
    std::string path = d.write("t.zone", verified + zone_text("t.example.", "2001:db8:77::/64",
                                                              "yolo.detection.image SVCB 0 alias.legacy.example.\n"));
    std::string plain = d.write("p.zone", "$ORIGIN p.example.\n$TTL 60\n@ SOA ns admin 1 2 3 4 5\n@ NS ns\n"
                                          "www AAAA 2001:db8:5::5\n");
    aisid_client_t *c = empty_client();
    REQUIRE(aisid_client_add_zone_file(c, path.c_str()) == AISID_OK);
    REQUIRE(aisid_client_add_zone_file(c, plain.c_str()) == AISID_OK);
    aisid_client_set_upstreams(c, "127.0.0.1:9"); // the discard port: nothing answers
    aisid_client_set_legacy_timeout(c, 50);
    aisid_result_t *r = nullptr;
    in6_addr a;
    aisid_fields_t f;
    const char *k = nullptr, *v = nullptr, *t = nullptr;
    uint16_t prio = 9, port = 9;

    // A registered service: its SVCB records as the zone has them, the zone's verification.
    REQUIRE(aisid_explain(c, "Yolo.detection.image.t.example", &r) == AISID_OK);
    CHECK(aisid_result_rule(r) == AISID_RULE_SERVICE);
    CHECK(std::string(aisid_result_name(r)) == "yolo.detection.image.t.example.");
    CHECK(std::string(aisid_result_local_zone(r)) == "t.example.");
    CHECK(std::string(aisid_result_zone(r)) == "t.example.");
    CHECK(std::string(aisid_result_zone_file(r)) == path);
    REQUIRE(aisid_result_verification_count(r) == 7);
    REQUIRE(aisid_result_verification(r, 0, &k, &v) == 0);
    CHECK(std::string(k) == "time");
    CHECK(std::string(v) == "2026-01-02T03:04:05Z");
    REQUIRE(aisid_result_verification(r, 4, &k, &v) == 0);
    CHECK(std::string(k) == "key-tag");
    CHECK(std::string(v) == "44703");
    REQUIRE(aisid_result_verification(r, 6, &k, &v) == 0);
    CHECK(std::string(k) == "source");
    CHECK(aisid_result_verification(r, 7, &k, &v) == -1);
    REQUIRE(aisid_result_svcb_count(r) == 3);
    REQUIRE(aisid_result_svcb(r, 0, &prio, &t, &port) == 0);
    CHECK(prio == 2);
    CHECK(std::string(t) == "second.legacy.example.");
    CHECK(port == 8443);
    REQUIRE(aisid_result_svcb(r, 2, &prio, &t, &port) == 0);
    CHECK(prio == 0);
    CHECK(std::string(t) == "alias.legacy.example.");
    CHECK(port == 0);
    CHECK(aisid_result_svcb(r, 3, &prio, &t, &port) == -1);
    CHECK(aisid_result_fallback_count(r) == 2); // AliasMode names no endpoint
    aisid_result_free(r);

    // Rule 2, with a wildcard; aisid_resolve's results say their rule too.
    REQUIRE(aisid_explain(c, "p5.detection.image.t.example", &r) == AISID_OK);
    CHECK(aisid_result_rule(r) == AISID_RULE_SYNTHESIZED);
    REQUIRE(aisid_result_fields(r, &f) == 0);
    CHECK((f.performance == 5 && f.function == 2 && f.method == 0));
    CHECK(aisid_result_svcb_count(r) == 0);
    aisid_result_free(r);
    REQUIRE(aisid_resolve(c, "p5.yolo.detection.image.t.example", &r) == AISID_OK);
    CHECK(aisid_result_rule(r) == AISID_RULE_SYNTHESIZED);
    CHECK(aisid_result_svcb_count(r) == 3);
    aisid_result_free(r);

    // Rule 1 records, in an AISID domain and in a zone that is none.
    REQUIRE(aisid_explain(c, "plain.t.example", &r) == AISID_OK);
    CHECK(aisid_result_rule(r) == AISID_RULE_RECORDS);
    CHECK(aisid_result_count(r) == 2);
    aisid_result_free(r);
    REQUIRE(aisid_explain(c, "www.p.example", &r) == AISID_OK);
    CHECK(aisid_result_rule(r) == AISID_RULE_RECORDS);
    CHECK(aisid_result_source(r) == AISID_SOURCE_LEGACY);
    CHECK(aisid_result_zone(r) == nullptr);
    CHECK(std::string(aisid_result_local_zone(r)) == "p.example.");
    CHECK(std::string(aisid_result_zone_file(r)) == plain);
    CHECK(aisid_result_verification_count(r) == 0);
    aisid_result_free(r);

    // Failures inside a local zone still come with a result: which zone said so.
    CHECK(aisid_explain(c, "nodata.t.example", &r) == AISID_ENODATA);
    REQUIRE(r);
    CHECK(aisid_result_rule(r) == AISID_RULE_RECORDS);
    CHECK(aisid_result_count(r) == 0);
    aisid_result_free(r);
    CHECK(aisid_explain(c, "NoSuch.t.example", &r) == AISID_ENOTFOUND);
    REQUIRE(r);
    CHECK(aisid_result_rule(r) == AISID_RULE_NXDOMAIN);
    CHECK(std::string(aisid_result_name(r)) == "nosuch.t.example.");
    CHECK(std::string(aisid_result_local_zone(r)) == "t.example.");
    CHECK(aisid_result_count(r) == 0);
    aisid_result_free(r);

    // Addresses in reverse: a service name, or which prefix has none.
    REQUIRE(aisid_explain(c, "2001:db8:77::1:2:1:5", &r) == AISID_OK);
    CHECK(aisid_result_rule(r) == AISID_RULE_REVERSE);
    CHECK(std::string(aisid_result_name(r)) == "p5.yolo.detection.image.t.example.");
    REQUIRE(aisid_result_count(r) == 1);
    aisid_result_address(r, 0, &a);
    CHECK(addr_text(a) == "2001:db8:77:0:1:2:1:5");
    CHECK(std::string(aisid_result_term(r, AISID_DIM_METHOD)) == "yolo");
    CHECK(aisid_result_svcb_count(r) == 3);
    CHECK(std::string(aisid_result_zone_file(r)) == path);
    aisid_result_free(r);
    CHECK(aisid_explain(c, "2001:db8:77::7:7:7:0", &r) == AISID_ENOTFOUND);
    REQUIRE(r);
    CHECK(aisid_result_rule(r) == AISID_RULE_REVERSE);
    CHECK(std::string(aisid_result_local_zone(r)) == "t.example.");
    CHECK(std::string(aisid_result_name(r)).empty());
    CHECK(aisid_result_count(r) == 0);
    REQUIRE(aisid_result_fields(r, &f) == 0);
    CHECK(f.object == 7);
    aisid_result_free(r);
    CHECK(aisid_explain(c, "2001:db8:9999::1", &r) == AISID_ENOTFOUND);
    REQUIRE(r);
    CHECK(aisid_result_local_zone(r) == nullptr);
    aisid_result_free(r);

    // Under no local zone: legacy DNS (here failing), or a literal IPv4 address.
    aisid_status_t st = aisid_explain(c, "www.legacy.example", &r);
    CHECK((st == AISID_ENETWORK || st == AISID_ETIMEOUT || st == AISID_ESERVFAIL));
    REQUIRE(r);
    CHECK(aisid_result_rule(r) == AISID_RULE_NONE);
    CHECK(std::string(aisid_result_name(r)) == "www.legacy.example.");
    CHECK(aisid_result_local_zone(r) == nullptr);
    aisid_result_free(r);
    REQUIRE(aisid_explain(c, "192.0.2.7", &r) == AISID_OK);
    CHECK(std::string(aisid_result_name(r)) == "192.0.2.7.");
    aisid_result_address(r, 0, &a);
    CHECK(addr_text(a) == "::ffff:192.0.2.7");
    aisid_result_free(r);
    CHECK(aisid_explain(c, ".", &r) == AISID_EINVAL); // a name, but none to resolve
    REQUIRE(r);
    CHECK(std::string(aisid_result_name(r)) == ".");
    aisid_result_free(r);

    // Neither a name nor an address; argument checks; NULL results.
    r = reinterpret_cast<aisid_result_t *>(1);
    CHECK(aisid_explain(c, "bad..name", &r) == AISID_EINVAL);
    CHECK(r == nullptr);
    CHECK(aisid_explain(nullptr, "x.example", &r) == AISID_EINVAL);
    CHECK(aisid_explain(c, nullptr, &r) == AISID_EINVAL);
    CHECK(aisid_explain(c, "x.example", nullptr) == AISID_EINVAL);
    CHECK(aisid_result_rule(nullptr) == AISID_RULE_NONE);
    CHECK(aisid_result_local_zone(nullptr) == nullptr);
    CHECK(aisid_result_zone_file(nullptr) == nullptr);
    CHECK(aisid_result_verification_count(nullptr) == 0);
    CHECK(aisid_result_verification(nullptr, 0, &k, &v) == -1);
    CHECK(aisid_result_svcb_count(nullptr) == 0);
    CHECK(aisid_result_svcb(nullptr, 0, &prio, &t, &port) == -1);
    aisid_client_free(c);
}

TEST_CASE("aisid_explain: a result keeps its zone, file, verification and SVCB across reloads") {
    TempDir d;
    std::string path =
        d.write("t.zone", "; aisid-verified: serial=1 zonemd=sha384\n" + zone_text("t.example.", "2001:db8:77::/64"));
    aisid_client_t *c = empty_client();
    REQUIRE(aisid_client_add_zone_file(c, path.c_str()) == AISID_OK);
    aisid_result_t *service = nullptr, *reverse = nullptr;
    REQUIRE(aisid_explain(c, "yolo.detection.image.t.example", &service) == AISID_OK);
    REQUIRE(aisid_explain(c, "2001:db8:77::1:2:1:0", &reverse) == AISID_OK);
    // The file changes: no verification, other endpoints, another prefix.
    std::string changed = zone_text("t.example.", "2001:db8:78::/64");
    changed.replace(changed.find("second.legacy"), 13, "other.legacy");
    d.write("t.zone", changed);
    REQUIRE(aisid_client_reload(c) == AISID_OK);
    aisid_result_t *now = nullptr;
    REQUIRE(aisid_explain(c, "yolo.detection.image.t.example", &now) == AISID_OK);
    CHECK(aisid_result_verification_count(now) == 0);
    aisid_result_free(now);
    CHECK(aisid_explain(c, "2001:db8:77::1:2:1:0", &now) == AISID_ENOTFOUND);
    aisid_result_free(now);
    aisid_client_free(c);
    // What the old results say, asked only now: the data they came from.
    for (aisid_result_t *r : {service, reverse}) {
        CHECK(std::string(aisid_result_local_zone(r)) == "t.example.");
        CHECK(std::string(aisid_result_zone_file(r)) == path);
        const char *k = nullptr, *v = nullptr;
        REQUIRE(aisid_result_verification_count(r) == 2);
        aisid_result_verification(r, 0, &k, &v);
        CHECK(std::string(k) + "=" + v == "serial=1");
        REQUIRE(aisid_result_svcb_count(r) == 2);
        const char *t = nullptr;
        aisid_result_svcb(r, 0, nullptr, &t, nullptr);
        CHECK(std::string(t) == "second.legacy.example.");
    }
    CHECK(std::string(aisid_result_name(reverse)) == "yolo.detection.image.t.example.");
    aisid_result_free(service);
    aisid_result_free(reverse);
}

TEST_CASE("aisid_name_canonical") {
    char b[AISID_NAME_TEXT_MAX];
    REQUIRE(aisid_name_canonical("WWW.Example", b, sizeof b) == AISID_OK);
    CHECK(std::string(b) == "www.example.");
    REQUIRE(aisid_name_canonical("x\\065y.a\\.b.example.", b, sizeof b) == AISID_OK);
    CHECK(std::string(b) == "xay.a\\.b.example.");
    REQUIRE(aisid_name_canonical(".", b, sizeof b) == AISID_OK);
    CHECK(std::string(b) == ".");
    CHECK(aisid_name_canonical("a..b", b, sizeof b) == AISID_EINVAL);
    CHECK(aisid_name_canonical(std::string(64, 'a').c_str(), b, sizeof b) == AISID_EINVAL);
    CHECK(aisid_name_canonical("", b, sizeof b) == AISID_EINVAL);
    CHECK(aisid_name_canonical("www.example", b, 12) == AISID_EINVAL); // "www.example." needs 13
    CHECK(aisid_name_canonical("www.example", b, 13) == AISID_OK);
    CHECK(aisid_name_canonical(nullptr, b, sizeof b) == AISID_EINVAL);
    CHECK(aisid_name_canonical("x", nullptr, 0) == AISID_EINVAL);
    // The longest: 255 wire bytes of bytes that all need \DDD.
    std::string longest;
    for (int i = 0; i < 4; ++i) longest += std::string(i < 3 ? 63 : 61, 'x') + ".";
    for (size_t at = 0; (at = longest.find('x', at)) != std::string::npos;) longest.replace(at, 1, "\\001");
    REQUIRE(aisid_name_canonical(longest.c_str(), b, sizeof b) == AISID_OK);
    CHECK(std::strlen(b) == longest.size());
    CHECK(aisid::canonical_name("A.B").value() == "a.b.");
    CHECK(aisid::canonical_name("a..b").status() == aisid::Status::invalid);
}

TEST_CASE("C++ API: explain, rule, local zone, SVCB, verification") {
    TempDir d;
    std::string path = d.write("t.zone", "; aisid-verified: serial=3\n" + zone_text("t.example.", "2001:db8:77::/64"));
    auto c = aisid::Client::create({.host_zones = false, .watch = false});
    REQUIRE(c);
    REQUIRE(c->add_zone_file(path) == aisid::Status::ok);
    aisid::Explanation e = c->explain("yolo.detection.image.t.example");
    CHECK(e.status == aisid::Status::ok);
    REQUIRE(e.answer);
    CHECK(e.answer->rule() == aisid::Rule::service);
    CHECK(e.answer->local_zone() == "t.example.");
    CHECK(e.answer->zone_file() == path);
    REQUIRE(e.answer->verification().size() == 1);
    CHECK(e.answer->verification()[0] == std::pair<std::string, std::string>("serial", "3"));
    REQUIRE(e.answer->svcb().size() == 2);
    CHECK(e.answer->svcb()[1].priority == 1);
    CHECK(e.answer->svcb()[1].target == "first.legacy.example.");
    e = c->explain("gone.t.example");
    CHECK(e.status == aisid::Status::not_found);
    REQUIRE(e.answer);
    CHECK(e.answer->rule() == aisid::Rule::nxdomain);
    e = c->explain("2001:db8:77::1:2:1:0");
    REQUIRE(e.answer);
    CHECK(e.answer->rule() == aisid::Rule::reverse);
    CHECK(e.answer->name() == "yolo.detection.image.t.example.");
    e = c->explain("not..a name");
    CHECK(e.status == aisid::Status::invalid);
    CHECK(!e.answer);
}

TEST_CASE("C++ API: Client, Answer, Outcome, counters") {
    auto c = aisid::Client::create({.host_zones = false, .watch = false});
    REQUIRE(c);
    CHECK(c->add_zone_file(example_zone_path()) == aisid::Status::ok);
    CHECK(c->add_zone_file("/nonexistent/x.zone") == aisid::Status::zone);
    CHECK(aisid::last_error().find("/nonexistent/x.zone") != std::string::npos);
    auto a = c->resolve("p250.whisper.recognition.speech.ai.example");
    REQUIRE(a);
    CHECK(a->is_aisid());
    CHECK(a->source() == aisid::Source::aisid);
    CHECK(a->name() == "p250.whisper.recognition.speech.ai.example.");
    REQUIRE(a->aisid());
    CHECK(a->aisid()->to_string() == "2001:db8:abcd:12:3:7:9:fa");
    CHECK(a->aisid()->performance() == 250);
    CHECK(a->term(aisid::Dim::method) == "whisper");
    CHECK(a->zone() == "ai.example.");
    REQUIRE(a->fallbacks().size() == 1);
    CHECK(a->fallbacks()[0].target == "whisper-recognition-speech.legacy.provider.example.");
    CHECK(a->fallbacks()[0].port == 8443);
    CHECK(a->addresses().size() == 1);
    auto n = c->resolve("nope.speech.ai.example");
    CHECK(!n);
    CHECK(n.status() == aisid::Status::not_found);
    CHECK(std::string(aisid::to_string(n.status())) == "name not found");
    CHECK(c->set_upstreams("bad") == aisid::Status::invalid);
    CHECK(c->set_attempt_delay(std::chrono::milliseconds(300)) == aisid::Status::ok);
    int called = 0;
    CHECK(c->resolve_async("vit.classification.video.ai.example", [&](aisid::Outcome<aisid::Answer> r) {
        ++called;
        CHECK(r);
        CHECK(r->aisid()->object() == 4);
    }) == aisid::Status::ok);
    CHECK(called == 1);
    auto k = c->counters();
    CHECK(k.resolve_aisid == 3);
    aisid::Client moved = std::move(*c);
    CHECK(moved.resolve("yolo.detection.image.ai.example"));
}

TEST_CASE("replaced snapshots are freed by the store, not by the resolving thread") {
    TempDir d;
    std::string path = d.write("r.zone", zone_text("r.example.", "2001:db8:5::/64"));
    aisid::sdk::ZoneWatcher store(false, true);
    std::string err;
    REQUIRE(store.add_file(path, err));
    const aisid::ZoneSet *first = store.current();  // this thread caches the snapshot
    REQUIRE(first);
    std::weak_ptr<const aisid::ZoneSet> old = store.snapshot();
    uint64_t g = store.generation();
    d.write("r.zone", zone_text("r.example.", "2001:db8:6::/64"));
    REQUIRE(eventually([&] { return store.generation() > g; }));
    // The new snapshot is picked up; dropping this thread's reference to the
    // old one must not free it here: the store still has it.
    CHECK(store.current() != first);
    CHECK(!old.expired());
    // The watcher frees it within about a second.
    CHECK(eventually([&] { return old.expired(); }, 3000));
}

TEST_CASE("aisid_parse_sockaddr: the ADDR[:PORT] grammar of every aisid program") {
    sockaddr_storage ss{};
    socklen_t len = 0;
    REQUIRE(aisid_parse_sockaddr("192.0.2.1", 53, &ss, &len) == AISID_OK);
    CHECK(ss.ss_family == AF_INET);
    CHECK(len == sizeof(sockaddr_in));
    CHECK(ntohs(reinterpret_cast<sockaddr_in &>(ss).sin_port) == 53);
    REQUIRE(aisid_parse_sockaddr("192.0.2.1:5353", 53, &ss, &len) == AISID_OK);
    CHECK(ntohs(reinterpret_cast<sockaddr_in &>(ss).sin_port) == 5353);
    REQUIRE(aisid_parse_sockaddr("[2001:db8::1]:853", 53, &ss, &len) == AISID_OK);
    CHECK(ss.ss_family == AF_INET6);
    CHECK(ntohs(reinterpret_cast<sockaddr_in6 &>(ss).sin6_port) == 853);
    REQUIRE(aisid_parse_sockaddr("2001:db8::1", 53, &ss, &len) == AISID_OK);
    CHECK(ntohs(reinterpret_cast<sockaddr_in6 &>(ss).sin6_port) == 53);
    REQUIRE(aisid_parse_sockaddr("fe80::1%1", 53, &ss, &len) == AISID_OK);
    CHECK(reinterpret_cast<sockaddr_in6 &>(ss).sin6_scope_id == 1);
    for (const char *bad : {"", "192.0.2.1:0", "192.0.2.1:65536", "192.0.2.1:", "[192.0.2.1]:53", "dns.example",
                            "192.0.2.1:53x", "[2001:db8::1", "fe80::1%no-such-interface0"})
        CHECK_MESSAGE(aisid_parse_sockaddr(bad, 53, &ss, &len) == AISID_EINVAL, bad);
    CHECK(aisid_parse_sockaddr(nullptr, 53, &ss, &len) == AISID_EINVAL);
    CHECK(aisid_parse_sockaddr("192.0.2.1", 0, &ss, &len) == AISID_EINVAL);
}
