// The hot path allocates nothing: AISID answers and cache hits, counted with a
// replaced global operator new (its own binary for that reason).
#include "resolver_test_util.hpp"

#include "aisid/core/zone_set.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

static std::atomic<long> g_allocs{0};
void *operator new(size_t n) {
    ++g_allocs;
    if (void *p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
// gcc 12 takes these replacements for a mismatch of the library's new and free.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

using namespace aisid;
using namespace aisid::resolver;
using namespace aisid::resolver::test;

TEST_CASE("AISID answers and cache hits do not allocate") {
    auto z = load_zone_file(AISID_SOURCE_DIR "/zones/ai.example.zone");
    REQUIRE(z);
    ZoneSet zs;
    zs.add(*z);
    Cache cache(1 << 20);
    CoreSettings settings;
    QueryCore core(cache, settings);
    core.set_zones(&zs);
    std::vector<std::string> qs = {
        query(1, "yolo.detection.image.ai.example", 28), query(2, "p5000.detection.image.ai.example", 28),
        query(3, "nope.ai.example", 28, false), query(4, "yolo.detection.image.ai.example", 64),
        query(5, "yolo.detection.image.ai.example", 1),
        query(6, "8.8.3.1.1.0.0.0.2.0.0.0.1.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa", 12),
        query(7, "www.legacy.example", 1)};
    // Put www.legacy.example in the cache.
    Query q;
    uint8_t out[4096];
    CoreResult r = core.handle(u8(qs.back()), qs.back().size(), peer("127.0.0.1"), false, 0, out, sizeof out, q);
    REQUIRE(r.verdict == Verdict::Pass);
    std::string ans = upstream_answer(9, "www.legacy.example.", 1, LDNS_RCODE_NOERROR, {"www.legacy.example. 300 IN A 192.0.2.10"}, {});
    core.answer_from_upstream(q, u8(qs.back()), u8(ans), ans.size(), false, 0, out, sizeof out);
    sockaddr_storage lo = peer("127.0.0.1");
    for (const auto &m : qs) core.handle(u8(m), m.size(), lo, false, 10, out, sizeof out, q);  // warm up
    long before = g_allocs.load();
    int answered = 0;
    for (int i = 0; i < 1000; ++i)
        for (const auto &m : qs) {
            CoreResult x = core.handle(u8(m), m.size(), lo, false, 1000 + uint64_t(i), out, sizeof out, q);
            answered += x.verdict == Verdict::Answered;
        }
    CHECK(g_allocs.load() - before == 0);
    CHECK(answered == 7000);
}
