// The public API against the core it wraps, in one run, no root needed:
//
//   core/lookup     name_from_text + ZoneSet::lookup (bench/core's BM_ResolveText)
//   api/resolve     aisid_resolve + aisid_result_free (what an application calls)
//
// on the same zone (origin bench.example., 1k and 1M registered services, the
// names p5000.<method>.<function>.<object>.bench.example. drawn at random),
// then the ratio api/core per size from the medians of the repetitions.
//
// The zone is written to a file for the client (aisid_client_add_zone_file),
// in a compact form (a $ORIGIN per object, the SVCB with a blank owner) so
// that 1M services stay under the 64 MiB a zone file may have; the core reads
// the same text.
#include "aisid/aisid.h"
#include "gen_zone.hpp"
#include "aisid/core/zone_set.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <unistd.h>

using namespace aisid;

namespace {

std::string compact_zone(size_t n) {
    unsigned k = bench::cube_side(n);
    std::string z;
    z.reserve(n * 70 + 4096);
    z += "$ORIGIN bench.example.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\n";
    z += "_aisid TXT \"v=aisid1\" \"prefix=2001:db8:beef:1::/64\"\n";
    char buf[160];
    for (const char *label : {"_object", "_function", "_method"})
        for (unsigned i = 1; i <= k; ++i) {
            std::snprintf(buf, sizeof buf, "%c%u.%s TXT \"code=%u\"\n", label[1], i, label, i);
            z += buf;
        }
    size_t cur_o = 0;
    for (size_t i = 0; i < n; ++i) {
        size_t o = i / (size_t{k} * k) + 1, f = (i / k) % k + 1, m = i % k + 1;
        if (o != cur_o) {
            std::snprintf(buf, sizeof buf, "$ORIGIN o%zu.bench.example.\n", o);
            z += buf;
            cur_o = o;
        }
        std::snprintf(buf, sizeof buf, "m%zu.f%zu AAAA 2001:db8:beef:1:%zx:%zx:%zx:0\n SVCB 1 s.l. port=8443\n", m, f,
                      o, f, m);
        z += buf;
    }
    return z;
}

struct Fixture {
    ZoneSet set;
    aisid_client_t *client = nullptr;
    std::vector<std::string> names;
};

const Fixture &fixture(size_t n) {
    static std::map<size_t, Fixture> cache;
    auto it = cache.find(n);
    if (it != cache.end()) return it->second;
    Fixture &f = cache[n];
    std::string text = compact_zone(n);
    ZoneLoadLimits lim;
    lim.max_bytes = uint64_t{1} << 30;
    auto z = load_zone_text(text, "bench", {}, lim);
    if (!z) {
        std::fprintf(stderr, "sdk_api_bench: %s\n", z.error().to_string().c_str());
        std::exit(1);
    }
    f.set.add(*z);
    char path[] = "/tmp/aisid-api-bench-XXXXXX";
    int fd = ::mkstemp(path);
    if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) std::exit(1);
    ::close(fd);
    if (aisid_client_new_flags(&f.client, AISID_CLIENT_NO_HOST_ZONES | AISID_CLIENT_NO_WATCH) != AISID_OK ||
        aisid_client_add_zone_file(f.client, path) != AISID_OK) {
        std::fprintf(stderr, "sdk_api_bench: %s\n", aisid_last_error());
        std::exit(1);
    }
    ::unlink(path);
    std::mt19937_64 rng(42);
    for (int i = 0; i < 4096; ++i) f.names.push_back("p5000." + bench::service_name(n, rng() % n) + ".bench.example");
    return f;
}

void BM_core(benchmark::State &st) {
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

void BM_api(benchmark::State &st) {
    const Fixture &f = fixture(static_cast<size_t>(st.range(0)));
    size_t i = 0;
    for (auto _ : st) {
        aisid_result_t *r = nullptr;
        if (aisid_resolve(f.client, f.names[i++ & 4095].c_str(), &r) != AISID_OK) st.SkipWithError("not resolved");
        benchmark::DoNotOptimize(r);
        aisid_result_free(r);
    }
}

// Each case runs kRounds times, the cases of one size taking turns, so that a
// change in the machine's load hits them alike; the summary takes medians.
constexpr int kRounds = 7;

struct Case {
    const char *name;
    void (*fn)(benchmark::State &);
};
const Case kCases[] = {{"core/lookup", BM_core}, {"api/resolve", BM_api}};

// Keeps every run's time per case and size ("api/resolve/1000").
class Reporter : public benchmark::ConsoleReporter {
public:
    Reporter() : ConsoleReporter(OO_Tabular) {}                            // no colours: the table goes to logs
    std::map<std::string, std::vector<std::pair<double, double>>> runs_ns; // (wall, CPU)
    void ReportRuns(const std::vector<Run> &runs) override {
        for (const Run &r : runs)
            if (r.run_type == Run::RT_Iteration && !r.error_occurred)
                runs_ns[r.run_name.function_name].emplace_back(r.GetAdjustedRealTime(), r.GetAdjustedCPUTime());
        ConsoleReporter::ReportRuns(runs);
    }
    std::pair<double, double> median(const std::string &key) const {
        auto it = runs_ns.find(key);
        if (it == runs_ns.end() || it->second.empty()) return {0, 0};
        std::vector<double> w, c;
        for (auto [a, b] : it->second) w.push_back(a), c.push_back(b);
        std::sort(w.begin(), w.end());
        std::sort(c.begin(), c.end());
        return {w[w.size() / 2], c[c.size() / 2]};
    }
};

} // namespace

int main(int argc, char **argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    const size_t sizes[] = {1000, 1000000};
    for (size_t n : sizes)
        for (int round = 0; round < kRounds; ++round)
            for (const Case &c : kCases)
                benchmark::RegisterBenchmark((std::string(c.name) + "/" + std::to_string(n)).c_str(), c.fn)
                    ->Arg(static_cast<int64_t>(n));
    Reporter rep;
    benchmark::RunSpecifiedBenchmarks(&rep);
    // CPU time as well as wall clock: on a shared machine the wall clock also
    // counts the time spent waiting for a core.
    std::printf("\nmedians of %d rounds, ns per lookup: the public API against the core lookup (goal: ratio <= 1.25)\n",
                kRounds);
    std::printf("  %-22s %8s %8s %10s %10s %7s %7s\n", "", "wall", "cpu", "core wall", "core cpu", "wall x", "cpu x");
    for (size_t n : sizes) {
        auto [cw, cc] = rep.median("core/lookup/" + std::to_string(n));
        if (cw == 0) continue;
        for (const Case &c : kCases) {
            std::string key = std::string(c.name) + "/" + std::to_string(n);
            if (key.rfind("api/", 0) != 0) continue;
            auto [w, cpu] = rep.median(key);
            if (w == 0) continue;
            std::printf("  %-22s %8.1f %8.1f %10.1f %10.1f %7.2f %7.2f\n", key.c_str(), w, cpu, cw, cc, w / cw,
                        cpu / cc);
        }
    }
    benchmark::Shutdown();
    return 0;
}
