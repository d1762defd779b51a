// aisid-testclient: connects to a service name through the SDK (aisid_connect_ex:
// the AISID first, the SVCB legacy endpoint when this network cannot reach it),
// sends one line and prints what came back, with the path the SDK took.
//   aisid-testclient --zone FILE --upstream ADDR[:PORT] NAME PORT [REQUEST]
#include <aisid/aisid.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char **argv) {
    const char *zone = nullptr, *upstream = nullptr;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-' && argv[i][1] == '-'; i += 2) {
        if (std::strcmp(argv[i], "--zone") == 0) zone = argv[i + 1];
        else if (std::strcmp(argv[i], "--upstream") == 0) upstream = argv[i + 1];
        else break;
    }
    if (argc - i < 2 || argc - i > 3) {
        std::fprintf(stderr, "usage: aisid-testclient --zone FILE --upstream ADDR[:PORT] NAME PORT [REQUEST]\n");
        return 2;
    }
    const char *name = argv[i];
    int port = std::atoi(argv[i + 1]);
    std::string req = argc - i == 3 ? std::string(argv[i + 2]) + "\n" : "GET /sdk HTTP/1.0\r\n\r\n";
    aisid_client_t *c = nullptr;
    if (aisid_client_new_flags(&c, AISID_CLIENT_NO_HOST_ZONES | AISID_CLIENT_NO_WATCH) != AISID_OK) {
        std::fprintf(stderr, "aisid-testclient: cannot create a client\n");
        return 3;
    }
    if (zone && aisid_client_add_zone_file(c, zone) != AISID_OK) {
        std::fprintf(stderr, "aisid-testclient: %s: cannot load\n", zone);
        return 2;
    }
    if (upstream) aisid_client_set_upstreams(c, upstream);
    aisid_client_set_attempt_delay(c, 300);
    aisid_connect_info_t info{};
    aisid_status_t st = AISID_OK;
    int fd = aisid_connect_ex(c, name, static_cast<uint16_t>(port), 5000, &st, &info);
    if (fd < 0) {
        std::printf("path=none error=%s\n", aisid_strerror(st));
        aisid_client_free(c);
        return st == AISID_ENOTFOUND ? 1 : 3;
    }
    char peer[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &info.peer.sin6_addr, peer, sizeof peer);
    static const char *paths[] = {"none", "aisid", "fallback", "legacy"};
    static const char *reasons[] = {"none", "unreachable", "refused", "delay", "remembered", "error"};
    std::string out;
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
        shutdown(fd, SHUT_WR);
        char buf[4096];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    auto body = out.find("\r\n\r\n");
    if (body != std::string::npos) out = out.substr(body + 4);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    std::printf("path=%s reason=%s peer=[%s]:%u elapsed_ms=%.1f reply=%s\n", paths[info.path < 4 ? info.path : 0],
                reasons[info.reason < 6 ? info.reason : 0], peer, ntohs(info.peer.sin6_port),
                info.elapsed_us / 1000.0, out.c_str());
    aisid_client_free(c);
    return 0;
}
