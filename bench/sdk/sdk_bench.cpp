// SDK benchmarks: what in-process resolution buys an application.
//
//   resolve/*   the same AISID name three ways: libaisid in process (no packet),
//               getaddrinfo() through a local stub resolver (Unbound answering
//               it from local data, i.e. a warm cache), c-ares to that stub.
//   connect/*   time to a connected TCP socket: aisid_connect on an AISID name
//               vs resolve-then-connect of a legacy name whose answer takes two
//               round trips (app -> stub Unbound -> authoritative Unbound, TTL 0
//               so the stub cannot cache it).
//
// Isolation: the process unshares a network and a mount namespace first (root
// needed). In it: lo up, the AISID prefix routed locally (AnyIP), Unbound on
// 127.0.0.1:53 (stub) and 127.0.0.2:53 (authoritative), and /etc/resolv.conf
// bind-mounted to "nameserver 127.0.0.1" so getaddrinfo() really asks the stub
// (glibc's resolv.conf has no port syntax, hence port 53 in a private netns).
// Nothing leaves the namespace. Each benchmark records per-call latencies; the
// summary compares medians.
#include "aisid/aisid.h"
#include "aisid/aisid.hpp"
#include "paths.hpp"
#include "proc.hpp"
#include "unbound.hpp"

#include <ares.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <netdb.h>
#include <sched.h>
#include <sys/mount.h>

using namespace aisid::test;
using Clock = std::chrono::steady_clock;

namespace {

const char *kAisidName = "p5000.yolo.detection.image.ai.example";
const char *kTwoRttName = "svc.two.example";
constexpr uint16_t kPort = 8080;

aisid_client_t *g_client = nullptr;
std::map<std::string, double> g_median_ns;

struct Latencies {
    std::vector<double> ns;
    void add(Clock::time_point a, Clock::time_point b) {
        ns.push_back(std::chrono::duration<double, std::nano>(b - a).count());
    }
    void report(benchmark::State &st, const std::string &key) {
        if (ns.empty()) return;
        std::sort(ns.begin(), ns.end());
        double p50 = ns[ns.size() / 2], p99 = ns[std::min(ns.size() - 1, ns.size() * 99 / 100)];
        st.counters["p50_us"] = p50 / 1000;
        st.counters["p99_us"] = p99 / 1000;
        // Keep the largest run's median (Google Benchmark calls a function several times while sizing it).
        g_median_ns[key] = p50;
    }
};

// A call takes less than a quarter microsecond: two clock reads per call would
// be a good part of what is measured, so each sample is a batch of kBatch
// calls (an iteration here is one batch; p50/p99 are per call).
constexpr int kBatch = 64;
void BM_sdk_resolve_aisid(benchmark::State &st) {
    Latencies l;
    for (auto _ : st) {
        auto t0 = Clock::now();
        aisid_status_t s = AISID_OK;
        for (int i = 0; i < kBatch; ++i) {
            aisid_result_t *r = nullptr;
            s = aisid_resolve(g_client, kAisidName, &r);
            aisid_result_free(r);
        }
        auto t1 = Clock::now();
        l.ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / kBatch);
        if (s != AISID_OK) st.SkipWithError("aisid_resolve failed");
    }
    st.SetItemsProcessed(st.iterations() * kBatch);
    l.report(st, "sdk");
}
BENCHMARK(BM_sdk_resolve_aisid)->Name("resolve/aisid_resolve (in process, 64 per iteration)");

void BM_getaddrinfo(benchmark::State &st) {
    Latencies l;
    addrinfo h{};
    h.ai_family = AF_INET6;
    h.ai_socktype = SOCK_STREAM;
    for (auto _ : st) {
        auto t0 = Clock::now();
        addrinfo *res = nullptr;
        int rc = getaddrinfo(kAisidName, nullptr, &h, &res);
        if (res) freeaddrinfo(res);
        l.add(t0, Clock::now());
        if (rc != 0) st.SkipWithError(gai_strerror(rc));
    }
    l.report(st, "getaddrinfo");
}
BENCHMARK(BM_getaddrinfo)->Name("resolve/getaddrinfo (local stub)")->Iterations(3000);

// One c-ares channel kept across lookups, as an application would keep it.
struct Cares {
    ares_channel ch = nullptr;
    Cares() {
        ares_options o{};
        o.timeout = 1000;
        o.tries = 2;
        ares_init_options(&ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
        ares_set_servers_ports_csv(ch, "127.0.0.1:53");
    }
    ~Cares() { ares_destroy(ch); }
    // Blocking lookup on the channel; returns the first address or false.
    bool lookup(const char *name, int family, sockaddr_storage *out) {
        struct Q {
            bool done = false, ok = false;
            sockaddr_storage a{};
        } q;
        ares_addrinfo_hints h{};
        h.ai_family = family;
        h.ai_flags = ARES_AI_NOSORT;
        ares_getaddrinfo(
            ch, name, nullptr, &h,
            [](void *arg, int status, int, ares_addrinfo *res) {
                auto *q = static_cast<Q *>(arg);
                q->done = true;
                if (status == ARES_SUCCESS && res && res->nodes) {
                    q->ok = true;
                    std::memcpy(&q->a, res->nodes->ai_addr, res->nodes->ai_addrlen);
                }
                if (res) ares_freeaddrinfo(res);
            },
            &q);
        while (!q.done) {
            ares_socket_t socks[ARES_GETSOCK_MAXNUM];
            int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
            pollfd p[ARES_GETSOCK_MAXNUM];
            nfds_t n = 0;
            for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i)
                if (ARES_GETSOCK_READABLE(bits, i)) p[n++] = {socks[i], POLLIN, 0};
            timeval tv{}, *t = ares_timeout(ch, nullptr, &tv);
            int r = ::poll(p, n, t ? static_cast<int>(t->tv_sec * 1000 + t->tv_usec / 1000) : 1000);
            if (r <= 0) ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            for (nfds_t i = 0; r > 0 && i < n; ++i)
                if (p[i].revents) ares_process_fd(ch, p[i].fd, ARES_SOCKET_BAD);
        }
        if (out) *out = q.a;
        return q.ok;
    }
};

void BM_cares(benchmark::State &st) {
    Cares c;
    Latencies l;
    for (auto _ : st) {
        auto t0 = Clock::now();
        bool ok = c.lookup(kAisidName, AF_INET6, nullptr);
        l.add(t0, Clock::now());
        if (!ok) st.SkipWithError("c-ares lookup failed");
    }
    l.report(st, "cares");
}
BENCHMARK(BM_cares)->Name("resolve/c-ares (local Unbound cache)")->Iterations(3000);

int connect_to(const sockaddr_storage &ss) {
    int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t len = ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (::connect(fd, reinterpret_cast<const sockaddr *>(&ss), len) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void BM_connect_sdk_aisid(benchmark::State &st) {
    Latencies l;
    for (auto _ : st) {
        auto t0 = Clock::now();
        aisid_status_t e;
        int fd = aisid_connect(g_client, kAisidName, kPort, 2000, &e);
        l.add(t0, Clock::now());
        if (fd < 0) st.SkipWithError("aisid_connect failed");
        ::close(fd);
    }
    l.report(st, "connect_sdk");
}
BENCHMARK(BM_connect_sdk_aisid)->Name("connect/aisid_connect AISID name")->Iterations(2000);

void BM_connect_gai(benchmark::State &st) {
    Latencies l;
    addrinfo h{};
    h.ai_family = AF_UNSPEC;
    h.ai_socktype = SOCK_STREAM;
    for (auto _ : st) {
        auto t0 = Clock::now();
        addrinfo *res = nullptr;
        int rc = getaddrinfo(kTwoRttName, "8080", &h, &res);
        int fd = -1;
        for (addrinfo *a = res; rc == 0 && a && fd < 0; a = a->ai_next) {
            sockaddr_storage ss{};
            std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
            fd = connect_to(ss);
        }
        if (res) freeaddrinfo(res);
        l.add(t0, Clock::now());
        if (fd < 0) st.SkipWithError("getaddrinfo+connect failed");
        ::close(fd);
    }
    l.report(st, "connect_gai");
}
BENCHMARK(BM_connect_gai)->Name("connect/getaddrinfo+connect legacy (2 RTT)")->Iterations(1000);

void BM_connect_cares(benchmark::State &st) {
    Cares c;
    Latencies l;
    for (auto _ : st) {
        auto t0 = Clock::now();
        sockaddr_storage ss{};
        int fd = -1;
        if (c.lookup(kTwoRttName, AF_INET6, &ss)) {
            reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port = htons(kPort);
            fd = connect_to(ss);
        }
        l.add(t0, Clock::now());
        if (fd < 0) st.SkipWithError("c-ares+connect failed");
        ::close(fd);
    }
    l.report(st, "connect_cares");
}
BENCHMARK(BM_connect_cares)->Name("connect/c-ares+connect legacy (2 RTT)")->Iterations(1000);

void BM_connect_sdk_legacy(benchmark::State &st) {
    Latencies l;
    for (auto _ : st) {
        auto t0 = Clock::now();
        aisid_status_t e;
        int fd = aisid_connect(g_client, kTwoRttName, kPort, 2000, &e);
        l.add(t0, Clock::now());
        if (fd < 0) st.SkipWithError("aisid_connect legacy failed");
        ::close(fd);
    }
    l.report(st, "connect_sdk_legacy");
}
BENCHMARK(BM_connect_sdk_legacy)->Name("connect/aisid_connect legacy (2 RTT, TTL 0)")->Iterations(1000);

// Accepts and closes connections on [::]:kPort (dual stack, FREEBIND for the AISID).
struct Acceptor {
    int fd = -1;
    std::atomic<bool> stop{false};
    std::thread t;
    Acceptor() {
        fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1, zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(kPort);
        if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || ::listen(fd, 1024) != 0)
            throw std::runtime_error("listen");
        t = std::thread([this] {
            while (!stop) {
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 50) > 0) {
                    int c = ::accept(fd, nullptr, nullptr);
                    if (c >= 0) ::close(c);
                }
            }
        });
    }
    ~Acceptor() {
        stop = true;
        t.join();
        ::close(fd);
    }
};

bool isolate(std::string &why, const TempDir &dir) {
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
        why = std::string("unshare: ") + std::strerror(errno) + " (run as root)";
        return false;
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        why = "mount --make-rprivate /";
        return false;
    }
    std::string rc = dir.write("resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n", false);
    if (::mount(rc.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0) {
        why = "bind-mount resolv.conf";
        return false;
    }
    if (std::system("ip link set lo up && ip addr add 127.0.0.2/8 dev lo 2>/dev/null;"
                    "ip -6 route add local 2001:db8:abcd:12::/64 dev lo") != 0) {
        why = "ip setup";
        return false;
    }
    return true;
}

} // namespace

int main(int argc, char **argv) {
    TempDir dir;
    std::string why;
    if (!isolate(why, dir)) {
        std::fprintf(stderr, "sdk_bench: %s\n", why.c_str());
        return 1;
    }
    // The authoritative side of the two-round-trip name: TTL 0, never cached.
    Unbound auth(UnboundOptions()
                     .interface("127.0.0.2")
                     .port(53)
                     .local_zone("two.example.")
                     .local_data({"svc.two.example. 0 IN A 127.0.0.1", "svc.two.example. 0 IN AAAA ::1"}));
    // The stub: answers the AISID name from local data (a warm cache), forwards two.example.
    Unbound stub_resolver(UnboundOptions()
                     .interface("127.0.0.1")
                     .port(53)
                     .local_zone("ai.example.")
                     .local_data(std::string(kAisidName) + ". 300 IN AAAA 2001:db8:abcd:12:1:2:1:1388")
                     .server("local-zone: \"two.example.\" transparent")
                     .clause("forward-zone:\n  name: \"two.example.\"\n  forward-addr: 127.0.0.2@53\n"));
    Acceptor acc;
    if (aisid_client_new_flags(&g_client, AISID_CLIENT_NO_HOST_ZONES | AISID_CLIENT_NO_WATCH) != AISID_OK ||
        aisid_client_add_zone_file(g_client, example_zone_path().c_str()) != AISID_OK ||
        aisid_client_set_upstreams(g_client, "127.0.0.1:53") != AISID_OK) {
        std::fprintf(stderr, "sdk_bench: client setup: %s\n", aisid_last_error());
        return 1;
    }
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();

    auto ratio = [](const char *a, const char *b) {
        if (!g_median_ns.count(a) || !g_median_ns.count(b) || g_median_ns[b] == 0) return 0.0;
        return g_median_ns[a] / g_median_ns[b];
    };
    std::printf("\nmedians (ns): ");
    for (auto &[k, v] : g_median_ns) std::printf("%s=%.0f ", k.c_str(), v);
    std::printf("\nresolve: getaddrinfo/sdk = %.0fx (goal >= 200x)  c-ares/sdk = %.0fx\n", ratio("getaddrinfo", "sdk"),
                ratio("cares", "sdk"));
    std::printf("connect: getaddrinfo+connect/aisid_connect = %.1fx  c-ares+connect/aisid_connect = %.1fx  "
                "aisid_connect legacy/aisid_connect AISID = %.1fx\n",
                ratio("connect_gai", "connect_sdk"), ratio("connect_cares", "connect_sdk"),
                ratio("connect_sdk_legacy", "connect_sdk"));
    aisid_counters_t k;
    aisid_client_counters(g_client, &k, sizeof k);
    std::printf("sdk counters: resolve_aisid=%llu connect_aisid_won=%llu connect_legacy=%llu legacy_queries=%llu "
                "legacy_cache_hits=%llu\n",
                (unsigned long long)k.resolve_aisid, (unsigned long long)k.connect_aisid_won,
                (unsigned long long)k.connect_legacy, (unsigned long long)k.legacy_queries,
                (unsigned long long)k.legacy_cache_hits);
    aisid_client_free(g_client);
    return 0;
}
