// aisid-gw-bench: what the egress proxy costs against a direct connection to
// the same service node, in one run: bulk throughput (both directions),
// round-trip latency of small messages, connections per second, and N
// concurrent flows held open (the egress's threads, RSS and descriptors per
// flow, and whether every flow still relays a byte after the hold).
// The node is aisid-testnode (SOURCE / SINK / ECHO / HELLO protocol); the
// held flows go to `aisid-gw-bench --serve [ADDR]:PORT`, an epoll echo server
// (a thread per connection, as in aisid-testnode, would not hold 10 000).
#include "aisid/egress/net_util.hpp"

#include <dirent.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <optional>

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

int dial(const NetEndpoint &ep) {
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
double download(const NetEndpoint &ep, uint64_t bytes) {
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
double upload(const NetEndpoint &ep, uint64_t bytes) {
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
std::vector<double> rtts(const NetEndpoint &ep, int count) {
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
double cps(const NetEndpoint &ep, int threads, double seconds) {
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

// --- the held-flows phase ---------------------------------------------------------

// An echo server that holds any number of connections on one thread; runs
// until killed.
int serve(const NetEndpoint &ep) {
    int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, reinterpret_cast<const sockaddr *>(&ep.sa), sizeof ep.sa) != 0 || listen(lfd, 65535) != 0) {
        std::fprintf(stderr, "aisid-gw-bench: --serve %s: %s\n", ep.to_string().c_str(), std::strerror(errno));
        return 3;
    }
    int ep_fd = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(ep_fd, EPOLL_CTL_ADD, lfd, &ev);
    epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep_fd, evs, 256, -1);
        for (int i = 0; i < n; ++i) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    epoll_event cev{};
                    cev.events = EPOLLIN;
                    cev.data.fd = c;
                    epoll_ctl(ep_fd, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            char buf[4096];
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r > 0) send_all(fd, buf, static_cast<size_t>(r));
            else if (r == 0 || errno != EAGAIN) close(fd);
        }
    }
}

// A /proc/PID/status field in kB (VmRSS) or as a count (Threads); -1 if absent.
long status_field(int pid, const char *key) {
    std::ifstream st("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    const size_t k = std::strlen(key);
    while (std::getline(st, line))
        if (line.compare(0, k, key) == 0 && line.size() > k && line[k] == ':') return std::atol(line.c_str() + k + 1);
    return -1;
}

long open_fds(int pid) {
    DIR *d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d) return -1;
    long n = 0;
    while (dirent *e = readdir(d))
        if (e->d_name[0] != '.') ++n;
    closedir(d);
    return n;
}

long meminfo_kb(const char *key) {
    std::ifstream st("/proc/meminfo");
    std::string line;
    const size_t k = std::strlen(key);
    while (std::getline(st, line))
        if (line.compare(0, k, key) == 0 && line[k] == ':') return std::atol(line.c_str() + k + 1);
    return -1;
}

struct Held {
    std::vector<int> fds;
    double open_s = 0;
};

Held open_flows(const NetEndpoint &ep, int n) {
    Held h;
    h.fds.reserve(static_cast<size_t>(n));
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
        int fd = connect_timeout(ep, 5000);
        if (fd < 0) {
            std::fprintf(stderr, "aisid-gw-bench: flow %d of %d to %s: %s\n", i, n, ep.to_string().c_str(),
                         std::strerror(errno));
            break;
        }
        timeval tv{10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        h.fds.push_back(fd);
    }
    h.open_s = secs(Clock::now() - t0);
    return h;
}

// One byte out and back on every flow (all sent first, then all read); how
// many came back right.
int echo_all(const Held &h, char tag) {
    for (int fd : h.fds) send(fd, &tag, 1, MSG_NOSIGNAL);
    int ok = 0;
    for (int fd : h.fds) {
        char c = 0;
        if (recv(fd, &c, 1, 0) == 1 && c == tag) ++ok;
    }
    return ok;
}

void close_all(Held &h) {
    for (int fd : h.fds) close(fd);
    h.fds.clear();
}

// Every held client sees EOF or a reset (a receive timeout, 10 s, is not
// counted): how many did.
int wait_closed(const Held &h) {
    int ok = 0;
    for (int fd : h.fds) {
        char c;
        errno = 0;
        ssize_t n = recv(fd, &c, 1, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) ++ok;
    }
    return ok;
}

void hold_phase(const NetEndpoint &direct, const NetEndpoint &via, int n, int pid, double hold_s, bool stop_egress) {
    std::printf("\n%d concurrent flows held open (echo server `aisid-gw-bench --serve`):\n", n);
    {
        Held d = open_flows(direct, n);
        int ok = echo_all(d, 'd');
        std::printf("%-34s %d of %d opened in %.2f s, %d relayed a byte\n", "direct", static_cast<int>(d.fds.size()),
                    n, d.open_s, ok);
        close_all(d);
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const long rss0 = status_field(pid, "VmRSS"), thr0 = status_field(pid, "Threads"), fd0 = open_fds(pid);
    const long slab0 = meminfo_kb("Slab");
    Held v = open_flows(via, n);
    const int ok1 = echo_all(v, 'v');
    const long rss1 = status_field(pid, "VmRSS"), thr1 = status_field(pid, "Threads"), fd1 = open_fds(pid);
    const long slab1 = meminfo_kb("Slab");
    std::printf("%-34s %d of %d opened in %.2f s, %d relayed a byte\n", "via egress", static_cast<int>(v.fds.size()),
                n, v.open_s, ok1);
    const double per = static_cast<double>(v.fds.size() ? v.fds.size() : 1);
    std::printf("%-34s %ld idle, %ld with the flows\n", "egress threads", thr0, thr1);
    std::printf("%-34s %ld -> %ld KiB: %.1f KiB per flow\n", "egress RSS", rss0, rss1, (rss1 - rss0) / per);
    std::printf("%-34s %ld -> %ld: %.2f per flow\n", "egress open descriptors", fd0, fd1, (fd1 - fd0) / per);
    std::printf("%-34s %+.1f KiB per flow (all three processes; noisy)\n", "kernel slab, system-wide",
                (slab1 - slab0) / per);
    std::this_thread::sleep_for(std::chrono::duration<double>(hold_s));
    const int ok2 = echo_all(v, 'w');
    std::printf("%-34s %d of %d relayed a byte after %.0f s\n", "at the end", ok2, n, hold_s);
    if (stop_egress) {
        auto t0 = Clock::now();
        kill(pid, SIGTERM);
        const int closed = wait_closed(v);
        std::printf("%-34s %d of %d clients saw EOF or RST (10 s timeout each) in %.0f ms\n", "SIGTERM to the egress", closed,
                    static_cast<int>(v.fds.size()), secs(Clock::now() - t0) * 1e3);
    }
    close_all(v);
    if (!stop_egress) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        std::printf("%-34s %ld after the flows closed\n", "egress threads", status_field(pid, "Threads"));
    }
}

} // namespace

int main(int argc, char **argv) {
    std::optional<NetEndpoint> direct, via, hold_direct, hold_via, serve_at;
    uint64_t bytes = 1ull << 30;
    int pings = 20000, threads = 4, egress_pid = 0;
    std::vector<int> holds;
    double seconds = 3, hold_seconds = 5;
    bool stop_egress = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i], v = argv[i + 1];
        if (a == "--direct") direct = parse_endpoint(v);
        else if (a == "--via") via = parse_endpoint(v);
        else if (a == "--bytes") bytes = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--pings") pings = std::atoi(v.c_str());
        else if (a == "--threads") threads = std::atoi(v.c_str());
        else if (a == "--seconds") seconds = std::atof(v.c_str());
        else if (a == "--serve") serve_at = parse_endpoint(v);
        else if (a == "--hold") {
            for (size_t at = 0; at < v.size();) { // N[,N...]: one phase per count
                size_t comma = std::min(v.find(',', at), v.size());
                holds.push_back(std::atoi(v.substr(at, comma - at).c_str()));
                at = comma + 1;
            }
        }
        else if (a == "--hold-direct") hold_direct = parse_endpoint(v);
        else if (a == "--hold-via") hold_via = parse_endpoint(v);
        else if (a == "--hold-seconds") hold_seconds = std::atof(v.c_str());
        else if (a == "--egress-pid") egress_pid = std::atoi(v.c_str());
        else if (a == "--stop-egress") stop_egress = v == "1";
    }
    raise_nofile_limit();
    if (serve_at) return serve(*serve_at);
    bool bad_hold = false;
    for (int h : holds) bad_hold |= h < 1;
    if (!direct || !via || pings < 1 || threads < 1 || bad_hold ||
        (!holds.empty() && (!hold_direct || !hold_via || egress_pid <= 0))) {
        std::fprintf(stderr, "usage: aisid-gw-bench --direct [NODE]:PORT --via [AISID]:PORT [--bytes N] [--pings N]\n"
                             "                      [--threads N] [--seconds S]\n"
                             "                      [--hold N[,N...] --hold-direct [ECHO]:PORT --hold-via [AISID]:PORT\n"
                             "                       --egress-pid PID [--hold-seconds S] [--stop-egress 1]]\n"
                             "       aisid-gw-bench --serve [ADDR]:PORT    (the echo server for --hold)\n");
        return 2;
    }
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
    std::fflush(stdout);
    for (size_t i = 0; i < holds.size(); ++i) {
        hold_phase(*hold_direct, *hold_via, holds[i], egress_pid, hold_seconds, stop_egress && i + 1 == holds.size());
        std::fflush(stdout);
    }
    return 0;
}
