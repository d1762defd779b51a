// In-process resolution allocates nothing: counts global operator new calls
// around lookups (its own binary, since it replaces operator new).
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
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, size_t) noexcept { std::free(p); }

using namespace aisid;

TEST_CASE("lookups and reverse lookups do not allocate") {
    auto z = load_zone_file(AISID_SOURCE_DIR "/zones/ai.example.zone");
    REQUIRE(z);
    ZoneSet s;
    s.add(*z);
    const char *names[] = {"p5000.yolo.detection.image.ai.example", "yolo.detection.image.ai.example.",
                           "detection.image.ai.example", "nope.ai.example", "www.example.com", "_aisid.ai.example"};
    Aisid a = *Aisid::parse("2001:db8:abcd:12:1:2:1:1388");
    std::string out;
    out.reserve(256);
    long before = g_allocs.load();
    int found = 0;
    for (int i = 0; i < 1000; ++i)
        for (const char *n : names) {
            WireName w;
            name_from_text(n, w);
            found += s.lookup(w).kind != Match::Kind::NotLocal;
        }
    for (int i = 0; i < 100; ++i) found += s.reverse(a, out);
    CHECK(g_allocs.load() - before == 0);
    CHECK(found == 5 * 1000 + 100);
}
