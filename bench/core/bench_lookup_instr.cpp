// A fixed workload for valgrind --tool=callgrind: instructions per in-process
// resolution are repeatable where wall time on a shared machine is not.
//   valgrind --tool=callgrind bench_lookup_instr [N]   (lookups: 200000)
#include "gen_zone.hpp"
#include "aisid/core/zone_set.hpp"

#include <cstdio>
#include <cstdlib>
#include <random>

using namespace aisid;

__attribute__((noinline)) static int resolve_all(const ZoneSet &set, const std::vector<std::string> &names, int n) {
    int found = 0;
    for (int i = 0; i < n; ++i) {
        WireName w;
        name_from_text(names[static_cast<size_t>(i) & 4095], w);
        found += set.lookup(w).kind == Match::Kind::Synthesized;
    }
    return found;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? std::atoi(argv[1]) : 200000;
    ZoneSet set;
    auto z = load_zone_text(bench::generate_zone(1000), "bench");
    if (!z) return 1;
    set.add(*z);
    std::mt19937_64 rng(42);
    std::vector<std::string> names;
    for (int i = 0; i < 4096; ++i) names.push_back("p5000." + bench::service_name(1000, rng() % 1000) + ".bench.example");
    int found = resolve_all(set, names, n);
    std::printf("%d of %d synthesized\n", found, n);
    return found == n ? 0 : 1;
}
