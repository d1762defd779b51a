// aisid-gw-bench: what the egress proxy costs against a direct connection to
// the same service node, in one run: bulk throughput (both directions),
// round-trip latency of small messages, and connections per second.
// The node is aisid-testnode (SOURCE / SINK / ECHO / HELLO protocol).
#include "net_util.hpp"

#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace aisid::gw;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int dial(const Endpoint &ep) {
    int fd = connect_timeout(ep, 2000);
    if (fd < 0) {
        std::fprintf(stderr, "aisid-gw-bench: connect %s: %s\n", ep.to_string().c_str(), std::strerror(errno));
        std::exit(3);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

bool send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

std::string line(int fd) {
    std::string s;
    char c;
    while (recv(fd, &c, 1, 0) == 1 && c != '\n') s += c;
    return s;
}

// Download: the node sends `bytes`; Gbit/s at the client.
double download(const Endpoint &ep, uint64_t bytes) {
    int fd = dial(ep);
    std::string req = "SOURCE " + std::to_string(bytes) + "\n";
    auto t0 = Clock::now();
    send_all(fd, req.data(), req.size());
    static char buf[1 << 18];
    uint64_t got = 0;
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) got += static_cast<uint64_t>(n);
    double s = secs(Clock::now() - t0);
    close(fd);
    if (got != bytes) {
        std::fprintf(stderr, "aisid-gw-bench: short download (%llu of %llu)\n", (unsigned long long)got,
                     (unsigned long long)bytes);
        std::exit(3);
    }
    return got * 8 / s / 1e9;
}

// Upload: the client sends `bytes`, the node counts them and answers.
double upload(const Endpoint &ep, uint64_t bytes) {
    int fd = dial(ep);
    static char buf[1 << 18];
    std::memset(buf, 'y', sizeof buf);
    auto t0 = Clock::now();
    send_all(fd, "SINK\n", 5);
    for (uint64_t left = bytes; left;) {
        size_t c = std::min<uint64_t>(left, sizeof buf);
        if (!send_all(fd, buf, c)) std::exit(3);
        left -= c;
    }
    shutdown(fd, SHUT_WR);
    std::string r = line(fd);
    double s = secs(Clock::now() - t0);
    close(fd);
    if (r.find("bytes=" + std::to_string(bytes)) == std::string::npos) {
        std::fprintf(stderr, "aisid-gw-bench: upload not acknowledged: %s\n", r.c_str());
        std::exit(3);
    }
    return bytes * 8 / s / 1e9;
}

// Round trips of a 64-byte message on one connection; microseconds, sorted.
std::vector<double> rtts(const Endpoint &ep, int count) {
    int fd = dial(ep);
    send_all(fd, "ECHO\n", 5);
    line(fd);
    char msg[64], back[64];
    std::memset(msg, 'p', sizeof msg);
    std::vector<double> v;
    for (int i = 0; i < count + 100; ++i) {
        auto t0 = Clock::now();
        send_all(fd, msg, sizeof msg);
        size_t got = 0;
        while (got < sizeof back) {
            ssize_t n = recv(fd, back + got, sizeof back - got, 0);
            if (n <= 0) std::exit(3);
            got += static_cast<size_t>(n);
        }
        if (i >= 100) v.push_back(secs(Clock::now() - t0) * 1e6); // first 100: warm-up
    }
    close(fd);
    std::sort(v.begin(), v.end());
    return v;
}

// Connections per second: connect, HELLO, read the greeting, close; `threads`
// clients for `seconds`.
double cps(const Endpoint &ep, int threads, double seconds) {
    std::atomic<uint64_t> done{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed)) {
                int fd = dial(ep);
                send_all(fd, "HELLO\n", 6);
                if (line(fd).rfind("node=", 0) != 0) std::exit(3);
                // RST-free close from the client side; TIME_WAIT stays with us.
                close(fd);
                done.fetch_add(1, std::memory_order_relaxed);
            }
        });
    auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto &t : ts) t.join();
    return done.load() / secs(Clock::now() - t0);
}

double pct(const std::vector<double> &v, double p) { return v[std::min(v.size() - 1, size_t(p * v.size()))]; }

} // namespace

int main(int argc, char **argv) {
    std::optional<Endpoint> direct, via;
    uint64_t bytes = 1ull << 30;
    int pings = 20000, threads = 4;
    double seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i], v = argv[i + 1];
        if (a == "--direct") direct = parse_endpoint(v);
        else if (a == "--via") via = parse_endpoint(v);
        else if (a == "--bytes") bytes = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--pings") pings = std::atoi(v.c_str());
        else if (a == "--threads") threads = std::atoi(v.c_str());
        else if (a == "--seconds") seconds = std::atof(v.c_str());
    }
    if (!direct || !via || pings < 1 || threads < 1) {
        std::fprintf(stderr, "usage: aisid-gw-bench --direct [NODE]:PORT --via [AISID]:PORT [--bytes N] [--pings N]\n"
                             "                      [--threads N] [--seconds S]\n");
        return 2;
    }
    raise_nofile_limit();
    std::printf("%-34s %14s %14s %10s\n", "metric", "direct", "via egress", "ratio");
    auto row = [](const char *m, double d, double p, const char *unit) {
        std::printf("%-34s %10.2f %-3s %10.2f %-3s %9.2fx\n", m, d, unit, p, unit, p / d);
    };
    double dd = 0, pd = 0, du = 0, pu = 0;
    for (int r = 0; r < 3; ++r) { // best of 3: the machine is shared
        dd = std::max(dd, download(*direct, bytes));
        pd = std::max(pd, download(*via, bytes));
        du = std::max(du, upload(*direct, bytes));
        pu = std::max(pu, upload(*via, bytes));
    }
    char m[64];
    std::snprintf(m, sizeof m, "download %llu MiB (best of 3)", (unsigned long long)(bytes >> 20));
    row(m, dd, pd, "Gb/s");
    std::snprintf(m, sizeof m, "upload %llu MiB (best of 3)", (unsigned long long)(bytes >> 20));
    row(m, du, pu, "Gb/s");
    auto rd = rtts(*direct, pings), rp = rtts(*via, pings);
    row("rtt 64 B p50", pct(rd, 0.5), pct(rp, 0.5), "us");
    row("rtt 64 B p99", pct(rd, 0.99), pct(rp, 0.99), "us");
    std::printf("%-34s %10.2f us (p50), %.2f us (p99)\n", "added latency per round trip", pct(rp, 0.5) - pct(rd, 0.5),
                pct(rp, 0.99) - pct(rd, 0.99));
    row("connections/s, 1 client", cps(*direct, 1, seconds), cps(*via, 1, seconds), "/s");
    std::snprintf(m, sizeof m, "connections/s, %d clients", threads);
    row(m, cps(*direct, threads, seconds), cps(*via, threads, seconds), "/s");
    return 0;
}
