// Transport benchmark: the same Unbound asked over UDP, DoT and DoH
// in one run. Per transport: queries per second with a window of queries in
// flight, Unbound's CPU time per query (from /proc/PID/stat), and queries per
// TLS handshake. Every name is new (N.RUN.bench.example, a redirect zone), so
// no answer comes from a cache: Unbound answers each from local data.
//
//   bench_transport [--seconds S] [--window W]
#include <poll.h>
#include <sys/resource.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "aisidd.hpp"
#include "tls_peers.hpp"
#include "aisid/transport/transport.hpp"

using namespace aisid::test;
namespace tr = aisid::transport;

namespace {

struct Row {
    std::string name;
    uint64_t sent = 0, answered = 0, failed = 0;
    double seconds = 0, server_cpu = 0, client_cpu = 0;
    uint64_t connections = 0, handshakes = 0, resumed = 0;
};

double self_cpu() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string qname(uint64_t n, const char *run) { return std::to_string(n) + "." + run + ".bench.example"; }

Row bench_udp(int port, const char *run, const Process &p, double secs, int window, const Process *also = nullptr) {
    Row row;
    row.name = "UDP";
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(s, reinterpret_cast<sockaddr *>(&a), sizeof a);
    std::unordered_map<uint16_t, tr::Clock::time_point> inflight;
    uint64_t n = 0;
    uint16_t next_id = 1;
    auto send_one = [&] {
        uint16_t id = next_id++;
        auto q = make_query(qname(n++, run), id);
        if (send(s, q.data(), q.size(), 0) == ssize_t(q.size())) {
            inflight[id] = tr::Clock::now();
            ++row.sent;
        }
    };
    double cpu0 = p.cpu_seconds(), self0 = self_cpu(), also0 = also ? also->cpu_seconds() : 0;
    auto t0 = tr::Clock::now();
    auto end = t0 + std::chrono::duration_cast<tr::Clock::duration>(std::chrono::duration<double>(secs));
    while (tr::Clock::now() < end) {
        while (int(inflight.size()) < window) send_one();
        pollfd pf{s, POLLIN, 0};
        poll(&pf, 1, 100);
        uint8_t buf[2048];
        for (;;) {
            ssize_t k = recv(s, buf, sizeof buf, 0);
            if (k < 12) break;
            uint16_t id = uint16_t(buf[0] << 8 | buf[1]);
            if (inflight.erase(id)) ++row.answered;
        }
        // A lost datagram: count it failed after a second and move on.
        auto now = tr::Clock::now();
        for (auto it = inflight.begin(); it != inflight.end();)
            if (now - it->second > std::chrono::seconds(1)) {
                ++row.failed;
                it = inflight.erase(it);
            } else {
                ++it;
            }
    }
    row.seconds = std::chrono::duration<double>(tr::Clock::now() - t0).count();
    row.server_cpu = p.cpu_seconds() - cpu0;
    row.client_cpu = self_cpu() - self0;
    if (also) row.client_cpu = also->cpu_seconds() - also0;  // the forwarder's CPU, not ours
    close(s);
    return row;
}

Row bench_pool(const std::string &label, const std::string &uri, const char *run, const Pki &pki, const Process &p,
               double secs, int window) {
    Row row;
    row.name = label;
    tr::Options o;
    o.ca_file = pki.ca;
    o.timeout_ms = 5000;
    auto pool = tr::UpstreamPool::create({uri}, o);
    if (!pool) {
        std::fprintf(stderr, "bench_transport: %s\n", pool.error().text().c_str());
        std::exit(3);
    }
    auto &pl = **pool;
    uint64_t n = 0;
    int inflight = 0;
    bool stop = false;
    std::string last_error;
    std::function<void()> send_one = [&] {
        ++inflight;
        ++row.sent;
        uint64_t k = n++;
        pl.submit(make_query(qname(k, run), uint16_t(k)), [&](tr::UpstreamResult r) {
            --inflight;
            if (r)
                ++row.answered;
            else {
                ++row.failed;
                last_error = r.error().text();
            }
            if (!stop) send_one();
        });
    };
    double cpu0 = p.cpu_seconds(), self0 = self_cpu();
    auto t0 = tr::Clock::now();
    auto end = t0 + std::chrono::duration_cast<tr::Clock::duration>(std::chrono::duration<double>(secs));
    for (int i = 0; i < window; ++i) send_one();
    std::vector<pollfd> pf;
    while (true) {
        if (tr::Clock::now() >= end) stop = true;
        if (stop && inflight == 0) break;
        pf.clear();
        for (const tr::PollFd &f : pl.fds()) pf.push_back({f.fd, f.events, 0});
        int t = pl.next_timeout_ms();
        poll(pf.data(), nfds_t(pf.size()), t < 0 || t > 100 ? 100 : t);
        for (const pollfd &f : pf)
            if (f.revents) pl.process(f.fd, f.revents);
        pl.process_timeouts();
    }
    row.seconds = std::chrono::duration<double>(tr::Clock::now() - t0).count();
    row.server_cpu = p.cpu_seconds() - cpu0;
    row.client_cpu = self_cpu() - self0;
    const tr::Stats &s = pl.upstream(0).stats();
    row.connections = s.connections;
    row.handshakes = s.handshakes;
    row.resumed = s.resumed;
    if (!last_error.empty()) std::fprintf(stderr, "bench_transport: %s: last failure: %s\n", label.c_str(), last_error.c_str());
    return row;
}

} // namespace

int main(int argc, char **argv) {
    double secs = 5;
    int window = 64;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--seconds" && i + 1 < argc)
            secs = std::atof(argv[++i]);
        else if (a == "--window" && i + 1 < argc)
            window = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: bench_transport [--seconds S] [--window W]\n");
            return 2;
        }
    }
    TempDir tmp;
    Pki pki(tmp.path);
    Unbound ub(tls_upstream(tmp, pki));
    std::vector<Row> rows;
    rows.push_back(bench_udp(ub.port, "udp", ub.proc, secs, window));
    rows.push_back(bench_pool("DoT", ub.dot_uri(), "dot", pki, ub.proc, secs, window));
    rows.push_back(bench_pool("DoH", ub.doh_uri(), "doh", pki, ub.proc, secs, window));
    std::printf("Unbound %s, one thread, unique names (no cache hits), window %d, %.0f s each\n",
                "1.17 (local-data redirect zone)", window, secs);
    std::printf("%-5s %9s %7s %8s %12s %12s %12s %11s %9s\n", "", "answered", "failed", "qps", "server µs/q",
                "client µs/q", "connections", "handshakes", "q/hshake");
    for (const Row &r : rows) {
        double qps = r.answered / r.seconds;
        double us = r.answered ? r.server_cpu * 1e6 / double(r.answered) : 0;
        double cus = r.answered ? r.client_cpu * 1e6 / double(r.answered) : 0;
        std::string qph = r.handshakes ? std::to_string(r.answered / r.handshakes) : "-";
        std::string conns = r.name == "UDP" ? "-" : std::to_string(r.connections);
        std::string hs = r.name == "UDP" ? "-" : std::to_string(r.handshakes) + (r.resumed ? " (" + std::to_string(r.resumed) + " resumed)" : "");
        std::printf("%-5s %9llu %7llu %8.0f %12.1f %12.1f %12s %11s %9s\n", r.name.c_str(),
                    (unsigned long long)r.answered, (unsigned long long)r.failed, qps, us, cus, conns.c_str(),
                    hs.c_str(), qph.c_str());
    }
    // The same through aisidd: clients ask aisidd over UDP, aisidd forwards
    // each (uncached) name to Unbound over UDP, DoT or DoH.
    std::printf("\naisidd (1 worker) forwarding to the same Unbound, clients over UDP, window %d, %.0f s each\n",
                window, secs);
    std::printf("%-14s %9s %7s %8s %12s %12s\n", "upstream", "answered", "failed", "qps", "unbound µs/q",
                "aisidd µs/q");
    const std::pair<const char *, std::string> ups[] = {{"UDP", "127.0.0.1:" + std::to_string(ub.port)},
                                                        {"DoT", ub.dot_uri()},
                                                        {"DoH", ub.doh_uri()}};
    for (const auto &[label, up] : ups) {
        Aisidd d(AisiddOptions()
                     .in(tmp, std::string("aisidd-") + label)
                     .workers(1)
                     .upstream(up)
                     .args({"--ca-file", pki.ca, "--log-level", "error"}));
        const int port = d.port;
        std::string run = std::string("via-") + label;
        for (char &c : run) c = char(std::tolower(static_cast<unsigned char>(c)));
        Row r = bench_udp(port, run.c_str(), ub.proc, secs, window, &d.proc);
        std::printf("%-14s %9llu %7llu %8.0f %12.1f %12.1f\n", label, (unsigned long long)r.answered,
                    (unsigned long long)r.failed, r.answered / r.seconds,
                    r.answered ? r.server_cpu * 1e6 / double(r.answered) : 0,
                    r.answered ? r.client_cpu * 1e6 / double(r.answered) : 0);
    }
    return 0;
}
