// ns per in-process resolution (text name → AISID) with 1k, 100k and 1M
// registered services: 4-label names (p<perf>.<method>.<function>.<object>).
#include "gen_zone.hpp"
#include "aisid/core/zone_set.hpp"

#include <benchmark/benchmark.h>

#include <map>
#include <random>

using namespace aisid;

namespace {

struct Fixture {
    ZoneSet set;
    std::vector<std::string> names;
};

const Fixture &fixture(size_t n) {
    static std::map<size_t, Fixture> cache;
    auto it = cache.find(n);
    if (it != cache.end()) return it->second;
    Fixture &f = cache[n];
    ZoneLoadLimits lim;
    lim.max_bytes = uint64_t{1} << 30;  // the 1M zone is over the 64 MiB default
    auto z = load_zone_text(bench::generate_zone(n), "bench", {}, lim);
    if (!z) std::abort();
    f.set.add(*z);
    std::mt19937_64 rng(42);
    for (int i = 0; i < 4096; ++i)
        f.names.push_back("p5000." + bench::service_name(n, rng() % n) + ".bench.example");
    return f;
}

void BM_ResolveText(benchmark::State &st) {
    const Fixture &f = fixture(static_cast<size_t>(st.range(0)));
    size_t i = 0;
    for (auto _ : st) {
        WireName n;
        name_from_text(f.names[i++ & 4095], n);
        Match m = f.set.lookup(n);
        if (m.kind != Match::Kind::Synthesized) st.SkipWithError("not synthesized");
        benchmark::DoNotOptimize(m.aisid);
    }
}
BENCHMARK(BM_ResolveText)->Arg(1000)->Arg(100000)->Arg(1000000)->Repetitions(5)->ReportAggregatesOnly(true);

void BM_Reverse(benchmark::State &st) {
    const Fixture &f = fixture(static_cast<size_t>(st.range(0)));
    std::vector<Aisid> addrs;
    for (const std::string &s : f.names) {
        WireName n;
        name_from_text(s, n);
        addrs.push_back(f.set.lookup(n).aisid);
    }
    size_t i = 0;
    std::string out;
    out.reserve(256);
    for (auto _ : st) {
        bool ok = f.set.reverse(addrs[i++ & 4095], out);
        benchmark::DoNotOptimize(ok);
    }
}
BENCHMARK(BM_Reverse)->Arg(1000)->Arg(1000000)->Repetitions(3)->ReportAggregatesOnly(true);

} // namespace

BENCHMARK_MAIN();
