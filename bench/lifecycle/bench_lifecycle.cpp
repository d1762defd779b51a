// Lifecycle performance: acknowledged UPDATEs per second (each one
// fdatasync'ed to the journal before NOERROR) and the time from an update's
// acknowledgement at the primary to the secondary answering it, for aisidd →
// aisidd, named → aisidd and aisidd → named. Results on stderr.
//   AISID_BENCH_UPDATES (default 2000), AISID_BENCH_PROPAGATIONS (default 50),
//   AISID_BENCH_DIR (default /var/tmp: a real disk, not tmpfs),
//   AISID_BENCH_ZONE_SIZE (default 0: extra records in the primary's zone; each
//   UPDATE copies the zone, so this shows how the cost grows with it).
#include "lifecycle_fixture.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace lifecycle_test;

namespace {

int env_int(const char *name, int def) {
    const char *v = std::getenv(name);
    return v && *v ? std::atoi(v) : def;
}

struct Stats {
    std::vector<double> v;
    void print(const char *what) {
        std::sort(v.begin(), v.end());
        if (v.empty()) return;
        auto pct = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))]; };
        std::fprintf(stderr, "%-28s n=%zu  median %.2f ms  p95 %.2f ms  max %.2f ms\n", what, v.size(), pct(0.5),
                     pct(0.95), v.back());
    }
};

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void throughput(int port, int n, const char *what) {
    double t0 = now_ms();
    for (int i = 0; i < n; ++i) {
        UpdateReply u = send_update(port, "ai.example.", {},
                                    {rr("b" + std::to_string(i) + ".tp.ai.example. 300 IN AAAA 2001:db8:77::" +
                                        std::to_string(i % 9999 + 1))});
        REQUIRE(u.rcode == 0);
    }
    double s = (now_ms() - t0) / 1000;
    std::fprintf(stderr, "%-28s %d acknowledged updates in %.2f s = %.0f updates/s\n", what, n, s, n / s);
}

void propagation(int primary, int secondary, int n, const char *what) {
    Stats st;
    for (int i = 0; i < n; ++i) {
        std::string name = "p" + std::to_string(i) + ".prop.ai.example.";
        UpdateReply u = send_update(primary, "ai.example.", {}, {rr(name + " 300 IN AAAA 2001:db8:78::1")});
        REQUIRE(u.rcode == 0);
        double acked = now_ms();
        double seen = -1;
        while (now_ms() - acked < 5000) {
            if (query(secondary, name, aisid::kTypeAAAA, 200).has(aisid::kTypeAAAA)) {
                seen = now_ms();
                break;
            }
        }
        REQUIRE_MESSAGE(seen > 0, "update " << i << " never reached the secondary");
        st.v.push_back(seen - acked);
    }
    st.print(what);
}

} // namespace

TEST_CASE("bench: lifecycle") {
    const char *base = std::getenv("AISID_BENCH_DIR");
    setenv("TMPDIR", base && *base ? base : "/var/tmp", 1);
    int n = env_int("AISID_BENCH_UPDATES", 2000), m = env_int("AISID_BENCH_PROPAGATIONS", 50);
    TempDir d;
    {
        Aisidd s(authority(d, "secondary"), deferred);
        std::string zf = write_test_zone(d);
        if (int extra = env_int("AISID_BENCH_ZONE_SIZE", 0); extra > 0) {
            std::string text = read_file(zf);
            for (int i = 0; i < extra; ++i)
                text += "x" + std::to_string(i) + ".bulk AAAA 2001:db8:76::" + std::to_string(i % 9999 + 1) + "\n";
            write_file(zf, text);
            std::fprintf(stderr, "zone: %d extra records\n", extra);
        }
        Aisidd p(authority(d, "primary")
                     .args({"--zone", zf, "--key", key_arg(), "--update-key", "k1", "--notify",
                            "127.0.0.1:" + std::to_string(s.port)}),
                 deferred);
        s.add_args(secondary_args(p.port));
        p.start();
        s.start();
        REQUIRE(wait_until([&] { return serial_of(s.port) == 2026112501u; }, 5000) >= 0);
        throughput(p.port, n, "aisidd primary:");
        REQUIRE(wait_until([&] { return serial_of(s.port) == serial_of(p.port); }, 10000) >= 0);
        propagation(p.port, s.port, m, "aisidd -> aisidd:");
    }
    {
        Aisidd s(authority(d, "secondary2"), deferred);
        Named nm(named_primary(d, s.port), deferred);
        s.add_args(secondary_args(nm.port));
        nm.start();
        s.start();
        REQUIRE(wait_until([&] { return serial_of(s.port) == 2026112501u; }, 5000) >= 0);
        throughput(nm.port, std::min(n, 500), "named primary (reference):");
        REQUIRE(wait_until([&] { return serial_of(s.port) == serial_of(nm.port); }, 20000) >= 0);
        propagation(nm.port, s.port, std::min(m, 20), "named -> aisidd:");
    }
    {
        Aisidd p(authority(d, "primary3")
                     .args({"--zone", write_test_zone(d, "z3.zone"), "--key", key_arg(), "--update-key", "k1"}),
                 deferred);
        Named nm(named_secondary(d, p.port), deferred);
        p.add_args({"--notify", "127.0.0.1:" + std::to_string(nm.port)});
        p.start();
        nm.start();
        REQUIRE(wait_until([&] { return serial_of(nm.port) == 2026112501u; }, 10000) >= 0);
        propagation(p.port, nm.port, std::min(m, 20), "aisidd -> named:");
    }
}
