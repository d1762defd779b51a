// aisid-testnode: a service node for the testbed, the e2e tests and the bench.
// It serves TCP and UDP on one address and reports its load to egress gateways.
//
// TCP, by the first bytes the client sends:
//   "GET ..."      an HTTP/1.0 answer whose body names the node
//   "HELLO\n"      "node=NAME\n", then holds the connection until the client closes
//   "ECHO\n"       "node=NAME\n", then echoes every byte
//   "SOURCE N\n"   N bytes of payload, then close
//   "SINK\n"       reads to EOF, then answers "node=NAME bytes=N\n"
// UDP: every datagram is answered with "node=NAME " + the datagram.
// Reports (UDP, every --report-interval ms): "aisid-load node=NAME active=N util=U"
// with util = active / --capacity.
#include "aisid/egress/net_util.hpp"

#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace aisid::gw;

namespace {

std::string g_name = "node";
std::atomic<unsigned> g_active{0};
constexpr const char *kProg = "aisid-testnode";

bool send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

void serve(int fd) {
    ++g_active;
    char buf[65536];
    std::string head;
    // Read the first line (or an HTTP request head).
    while (head.find('\n') == std::string::npos && head.size() < 4096) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
    }
    const std::string hello = "node=" + g_name + "\n";
    if (head.rfind("GET ", 0) == 0) {
        while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            head.append(buf, static_cast<size_t>(n));
        }
        std::string path = head.substr(4, head.find(' ', 4) - 4);
        std::string body = "node=" + g_name + " path=" + path + "\n";
        std::string resp = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nX-Aisid-Node: " + g_name +
                           "\r\nConnection: close\r\n\r\n" + body;
        send_all(fd, resp.data(), resp.size());
    } else if (head.rfind("HELLO", 0) == 0) {
        send_all(fd, hello.data(), hello.size());
        while (recv(fd, buf, sizeof buf, 0) > 0) {
        }
    } else if (head.rfind("ECHO", 0) == 0) {
        send_all(fd, hello.data(), hello.size());
        std::string rest = head.substr(head.find('\n') + 1);
        bool ok = send_all(fd, rest.data(), rest.size());
        ssize_t n;
        while (ok && (n = recv(fd, buf, sizeof buf, 0)) > 0) ok = send_all(fd, buf, static_cast<size_t>(n));
    } else if (head.rfind("SOURCE ", 0) == 0) {
        unsigned long long left = std::strtoull(head.c_str() + 7, nullptr, 10);
        std::memset(buf, 'x', sizeof buf);
        while (left > 0) {
            size_t chunk = left < sizeof buf ? static_cast<size_t>(left) : sizeof buf;
            if (!send_all(fd, buf, chunk)) break;
            left -= chunk;
        }
    } else if (head.rfind("SINK", 0) == 0) {
        unsigned long long total = head.size() - (head.find('\n') + 1);
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0) total += static_cast<unsigned long long>(n);
        std::string r = "node=" + g_name + " bytes=" + std::to_string(total) + "\n";
        send_all(fd, r.data(), r.size());
    }
    close(fd);
    --g_active;
}

void *serve_thread(void *p) {
    serve(static_cast<int>(reinterpret_cast<intptr_t>(p)));
    return nullptr;
}

void usage(FILE *out) {
    std::fprintf(out, "usage: aisid-testnode --name NAME --listen [ADDR]:PORT [--report [ADDR]:PORT]...\n"
                      "                      [--capacity N] [--report-interval MS]\n"
                      "A service node for the aisid gateway testbed (see the source for its protocol).\n");
}

} // namespace

int main(int argc, char **argv) {
    std::optional<NetEndpoint> listen_ep;
    std::vector<NetEndpoint> reports;
    unsigned capacity = 100;
    int interval = 100;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help") {
            usage(stdout);
            return 0;
        }
        if (a == "--version") {
            std::printf("%s 0\n", kProg);
            return 0;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "%s: %s needs a value\n", kProg, a.c_str());
            return 2;
        }
        std::string v = argv[++i];
        if (a == "--name") g_name = v;
        else if (a == "--listen") listen_ep = parse_endpoint(v);
        else if (a == "--report") {
            auto ep = parse_endpoint(v);
            if (!ep) {
                std::fprintf(stderr, "%s: bad report address '%s'\n", kProg, v.c_str());
                return 2;
            }
            reports.push_back(*ep);
        } else if (a == "--capacity") capacity = static_cast<unsigned>(std::max(1, std::atoi(v.c_str())));
        else if (a == "--report-interval") interval = std::max(10, std::atoi(v.c_str()));
        else {
            std::fprintf(stderr, "%s: unknown argument '%s'\n", kProg, a.c_str());
            return 2;
        }
    }
    if (!listen_ep) {
        std::fprintf(stderr, "%s: --listen [ADDR]:PORT is required\n", kProg);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    raise_nofile_limit();
    int one = 1;
    int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int ufd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (bind(lfd, reinterpret_cast<sockaddr *>(&listen_ep->sa), sizeof listen_ep->sa) != 0 || listen(lfd, 4096) != 0 ||
        bind(ufd, reinterpret_cast<sockaddr *>(&listen_ep->sa), sizeof listen_ep->sa) != 0) {
        std::fprintf(stderr, "%s: cannot listen on %s: %s\n", kProg, listen_ep->to_string().c_str(),
                     std::strerror(errno));
        return 3;
    }
    std::thread([ufd] {
        char buf[65536];
        for (;;) {
            sockaddr_in6 peer{};
            socklen_t len = sizeof peer;
            ssize_t n = recvfrom(ufd, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&peer), &len);
            if (n < 0) continue;
            std::string r = "node=" + g_name + " " + std::string(buf, static_cast<size_t>(n));
            sendto(ufd, r.data(), r.size(), 0, reinterpret_cast<sockaddr *>(&peer), len);
        }
    }).detach();
    std::thread([reports, capacity, interval] {
        int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        for (;;) {
            unsigned a = g_active.load();
            char msg[200];
            int n = std::snprintf(msg, sizeof msg, "aisid-load node=%s active=%u util=%.3f", g_name.c_str(), a,
                                  std::min(1.0, static_cast<double>(a) / capacity));
            for (const auto &ep : reports)
                sendto(fd, msg, static_cast<size_t>(n), MSG_DONTWAIT, reinterpret_cast<const sockaddr *>(&ep.sa),
                       sizeof ep.sa);
            std::this_thread::sleep_for(std::chrono::milliseconds(interval));
        }
    }).detach();
    for (;;) {
        int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        pthread_t t;
        if (pthread_create(&t, &attr, serve_thread, reinterpret_cast<void *>(static_cast<intptr_t>(fd))) != 0)
            close(fd);
        pthread_attr_destroy(&attr);
    }
}
