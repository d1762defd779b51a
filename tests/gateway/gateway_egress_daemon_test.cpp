// aisid-egress as a process, on loopback (no namespace, no route: `routes off`
// and legacy listeners on [::1]): the TCP path through its relay threads —
// retry past a dead node, a refusal as RST, the log lines other tests grep,
// and SIGTERM ending an open flow. Needs CAP_NET_ADMIN (the listeners are
// IPV6_TRANSPARENT); exits 77 (skip) without it.
#include "proc.hpp"
#include "skip.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace aisid::test;

namespace {

int dial6(int port) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    sa.sin6_port = htons(static_cast<uint16_t>(port));
    REQUIRE(connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

std::string read_line(int fd) {
    std::string s;
    char c;
    while (recv(fd, &c, 1, 0) == 1 && c != '\n') s += c;
    return s;
}

bool can_transparent() {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    int one = 1;
    bool ok = setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof one) == 0;
    close(fd);
    return ok;
}

bool wait_text(Process &p, const std::string &text, int ms = 5000) {
    for (int i = 0; i < ms / 10; ++i) {
        if (p.err().find(text) != std::string::npos) return true;
        usleep(10000);
    }
    return p.err().find(text) != std::string::npos;
}

} // namespace

TEST_CASE("aisid-egress: retry past a dead node, RST when none serves, SIGTERM ends open flows") {
    aisid::test::skip_unless(can_transparent(), "IPV6_TRANSPARENT needs CAP_NET_ADMIN");
    TempDir dir;
    const int live = free_port(), dead = free_port(), served = free_port(),
              unserved = free_port();
    Process node({AISID_BINARY_DIR "/gateway/testbed/aisid-testnode", "--name", "n1", "--listen",
                  "[::1]:" + std::to_string(live)},
                 dir.path, "node");
    REQUIRE(wait_listening(node, {{live, true}}));
    write_file(dir.file("egress.conf"), "name t\n"
                                        "prefix 2001:db8:abcd:12::/64\n"
                                        "routes off\n"
                                        "relay-threads 2\n"
                                        "connect-timeout 200\n"
                                        "probe-interval 60000\n"
                                        "legacy [::1]:" + std::to_string(served) + " 2001:db8:abcd:12:1:2:1:0\n"
                                        "legacy [::1]:" + std::to_string(unserved) + " 2001:db8:abcd:12:9:9:9:0\n"
                                        // SED tries the heavy (dead) node first.
                                        "node dead [::1]:" + std::to_string(dead) + " weight=9 latency=20 serves=1:2:1\n"
                                        "node n1 [::1]:" + std::to_string(live) + " weight=1 latency=20 serves=1:2:1\n");
    Process eg({AISID_BINARY_DIR "/gateway/egress/aisid-egress", "--config", dir.file("egress.conf")}, dir.path,
               "egress");
    REQUIRE_MESSAGE(wait_text(eg, "ready: 2 nodes, policy sed, 2 relay threads"), eg.err());

    // The dead node costs a delay, not an error.
    int c = dial6(served);
    REQUIRE(send(c, "HELLO\n", 6, MSG_NOSIGNAL) == 6);
    CHECK(read_line(c) == "node=n1");
    const std::string err = eg.err();
    CHECK_MESSAGE(err.find("aisid-egress: warning: node dead [::1]:" + std::to_string(dead) +
                           " down: connect: Connection refused") != std::string::npos,
                  err);
    CHECK_MESSAGE(err.find(" -> [::1]:" + std::to_string(served) +
                           " (legacy endpoint of 2001:db8:abcd:12:1:2:1:0) [object 1 function 2 method 1 "
                           "performance 0] -> node n1 [::1]:" + std::to_string(live)) != std::string::npos,
                  err);
    CHECK(err.find("aisid-egress: info: tcp [::1]:") != std::string::npos);

    // Nothing serves 9:9:9: an RST right after the handshake.
    int r = dial6(unserved);
    char b;
    errno = 0;
    CHECK(recv(r, &b, 1, 0) < 0);
    CHECK(errno == ECONNRESET);
    close(r);
    CHECK(wait_text(eg, "refused: no node up serves object 9 function 9 method 9 performance 0"));

    // SIGTERM with the first flow still open: the client sees EOF, exit 0.
    CHECK(eg.stop(5000) == 0);
    CHECK(recv(c, &b, 1, 0) == 0);
    close(c);
}
