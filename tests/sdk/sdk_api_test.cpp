// The SDK's API calls without a network: client lifecycle, zone files, AISID
// resolution and result accessors, argument checks, counters, zone changes on
// disk, threads sharing one client. (Legacy DNS and connect: sdk_legacy_test,
// sdk_connect_e2e_test.)
#include "aisid/aisid.h"
#include "aisid/aisid.hpp"
#include "paths.hpp"
#include "proc.hpp"
#include "zone_store.hpp"

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
    aisid::sdk::ZoneStore store(false, true);
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
