// What it costs to verify a fetched zone before serving it (zone_verify.hpp):
// one step per process, so the peak RSS is that step's.
//   bench_zonemd verify FILE ZONE [ANCHOR]  ldns: parse, ZONEMD SHA-384, apex signatures
//   bench_zonemd load   FILE                aisid's Zone from the text (SPEC §3 rules), no verification
//   bench_zonemd accept FILE ZONE [ANCHOR]  verify the text, then load it (two parses)
//   bench_zonemd served FILE ZONE [ANCHOR]  what the mirror does with a fetched copy: load, then verify the
//                                           loaded Zone's records (what is served is what verified)
// Prints one line: step, records, MB of text, wall and CPU milliseconds (CPU
// is the figure to compare on a shared machine), peak RSS (MB).
#include "aisid/proto/records.hpp"
#include "aisid/authority/zone_verify.hpp"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>

using namespace aisid;
using namespace aisid::resolver;
using namespace aisid::proto;

namespace {

double cpu_ms() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

double peak_mb() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_maxrss) / 1024.0;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: bench_zonemd verify|load|accept FILE [ZONE [ANCHOR]]\n");
        return 2;
    }
    std::string step = argv[1], file = argv[2];
    // One copy of the text, as aisidd holds a fetched body.
    std::ifstream f(file, std::ios::binary | std::ios::ate);
    std::string text(size_t(f.tellg()), '\0');
    f.seekg(0);
    f.read(text.data(), std::streamsize(text.size()));
    size_t records = 0;
    for (char c : text) records += c == '\n';
    std::string origin;
    if (argc > 3) {
        std::string z = argv[3];
        if (z.back() != '.') z += '.';
        if (!wire_from_text(z, origin)) return 2;
    }
    auto policy = ZonePolicy::make(true, argc > 4 ? std::vector<std::string>{std::string(argv[3]) + "=" + argv[4]}
                                                  : std::vector<std::string>{});
    if (!policy) {
        std::fprintf(stderr, "%s\n", policy.error().c_str());
        return 2;
    }
    const double base = peak_mb(), cpu0 = cpu_ms();
    auto t0 = std::chrono::steady_clock::now();
    std::string verdict = "-";
    if (step == "verify" || step == "accept") {
        ZoneVerdict v = verify_zone_text(text, origin, (*policy)->policy(origin));
        verdict = v.ok ? (v.key_tag ? "ok(zonemd+dnssec)" : "ok(zonemd)") : "refused(" + v.reason + ")";
        if (!v.ok) std::fprintf(stderr, "%s\n", v.message.c_str());
    }
    if (step == "load" || step == "accept" || step == "served") {
        ZoneLoadLimits limits;
        limits.max_includes = 0;
        limits.max_bytes = uint64_t{1} << 32;
        auto z = load_zone_text(text, file, {}, limits);
        if (!z) {
            std::fprintf(stderr, "%s\n", z.error().to_string().c_str());
            return 1;
        }
        if (step == "served") {
            ZoneVerdict v = (*policy)->check(**z);
            verdict = v.ok ? (v.key_tag ? "ok(zonemd+dnssec)" : "ok(zonemd)") : "refused(" + v.reason + ")";
            if (!v.ok) std::fprintf(stderr, "%s\n", v.message.c_str());
        }
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-7s records=%-8zu text=%.1fMB wall=%.0fms cpu=%.0fms peak_rss=%.0fMB (text alone %.0fMB) %s\n",
                step.c_str(), records, double(text.size()) / 1e6, ms, cpu_ms() - cpu0, peak_mb(), base, verdict.c_str());
    return 0;
}
