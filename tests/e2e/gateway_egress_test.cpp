// aisid-egress internals without a network: the splice relay (over AF_UNIX
// socket pairs) and the configuration parser.
#include "egress_config.hpp"
#include "splice_relay.hpp"

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

using namespace aisid::gw;

namespace {

std::string write_temp(const std::string &text) {
    char path[] = "/tmp/aisid-egress-conf-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
    return path;
}

} // namespace

TEST_CASE("splice relay: bytes both ways, half-close passed on, counts") {
    int left[2], right[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, left) == 0);
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, right) == 0);
    // client = left[0] ... relay(left[1], right[0]) ... server = right[1]
    RelayResult res;
    std::thread relay([&] { res = splice_relay(left[1], right[0]); });

    const size_t kBytes = 8u << 20;
    std::string up(kBytes, '\0');
    for (size_t i = 0; i < kBytes; ++i) up[i] = static_cast<char>(i * 7 + (i >> 12));
    std::thread client([&] {
        size_t off = 0;
        while (off < up.size()) {
            ssize_t n = write(left[0], up.data() + off, up.size() - off);
            REQUIRE(n > 0);
            off += static_cast<size_t>(n);
        }
        shutdown(left[0], SHUT_WR);
    });
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = read(right[1], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    client.join();
    CHECK(n == 0); // the client's half-close reached the server as EOF
    CHECK(got == up);
    // The other direction still works after the first one closed.
    const std::string reply = "node=n1 bytes=8388608\n";
    REQUIRE(write(right[1], reply.data(), reply.size()) == static_cast<ssize_t>(reply.size()));
    shutdown(right[1], SHUT_WR);
    std::string back;
    while ((n = read(left[0], buf, sizeof buf)) > 0) back.append(buf, static_cast<size_t>(n));
    relay.join();
    CHECK(back == reply);
    CHECK(res.up == kBytes);
    CHECK(res.down == reply.size());
    CHECK(res.error == 0);
    for (int fd : {left[0], left[1], right[0], right[1]}) close(fd);
}

TEST_CASE("splice relay: a peer that goes away ends the relay") {
    std::signal(SIGPIPE, SIG_IGN); // as in aisid-egress: splice(2) has no MSG_NOSIGNAL
    int left[2], right[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, left) == 0);
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, right) == 0);
    RelayResult res;
    std::thread relay([&] { res = splice_relay(left[1], right[0]); });
    close(right[1]); // the server vanishes
    REQUIRE(write(left[0], "x", 1) == 1);
    relay.join(); // returns (EOF one way, EPIPE or EOF the other) instead of hanging
    CHECK(res.down == 0);
    for (int fd : {left[0], left[1], right[0]}) close(fd);
}

TEST_CASE("egress config: a full file") {
    std::string path = write_temp(R"(# comment
name eg1
prefix 2001:db8:abcd:12::/64
tcp 80 443
udp 5300
sid 2001:db8:e1::100 eg1-ing
report [2001:db8:c1::1]:9400
ingress [2001:db8:f1::1]:9500
policy wlc
probe-interval 250
node-timeout 700
legacy [2001:db8:3::443]:443 2001:db8:abcd:12:1:2:1:0
node n1 [2001:db8:d::1]:8080 weight=1 latency=20 serves=1:2:1,1:1:2   # trailing comment
node n2 [2001:db8:d::2]:8080 weight=3 serves=0:4:0
)");
    EgressConfig c;
    std::string err;
    REQUIRE_MESSAGE(load_egress_config(path, c, err), err);
    CHECK(c.name == "eg1");
    CHECK(aisid::format_prefix64(c.prefix) == "2001:db8:abcd:12::/64");
    CHECK(c.tcp_ports == std::vector<uint16_t>{80, 443});
    CHECK(c.udp_ports == std::vector<uint16_t>{5300});
    CHECK(c.sid == "2001:db8:e1::100");
    CHECK(c.sid_dev == "eg1-ing");
    CHECK(c.report_listen.at(0).to_string() == "[2001:db8:c1::1]:9400");
    CHECK(c.ingress_report.at(0).to_string() == "[2001:db8:f1::1]:9500");
    CHECK(c.policy == aisid::sched::Policy::wlc);
    CHECK(c.probe_interval_ms == 250);
    CHECK(c.node_timeout_ms == 700);
    REQUIRE(c.legacy.size() == 1);
    CHECK(c.legacy[0].aisid.method() == 1);
    REQUIRE(c.nodes.size() == 2);
    CHECK(c.nodes[0].spec.name == "n1");
    CHECK(c.nodes[0].addr.to_string() == "[2001:db8:d::1]:8080");
    CHECK(c.nodes[0].spec.latency_ms == 20);
    REQUIRE(c.nodes[0].spec.serves.size() == 2);
    CHECK(c.nodes[0].spec.serves[1] == aisid::sched::ServiceCodes{1, 1, 2});
    CHECK(c.nodes[1].spec.weight == 3);
    CHECK(c.nodes[1].spec.latency_ms == 0);
    CHECK(c.nodes[1].spec.serves[0] == aisid::sched::ServiceCodes{0, 4, 0});
    unlink(path.c_str());
}

TEST_CASE("egress config: errors name FILE:LINE") {
    struct Case {
        const char *text;
        const char *want;
    } cases[] = {
        {"prefix 2001:db8:abcd:12::/48\ntcp 80\n", ":1: bad prefix"},
        {"prefix 2001:db8:abcd:12::/64\ntcp 0\n", ":2: bad port '0'"},
        {"prefix 2001:db8:abcd:12::/64\ntcp 80\nnode n1 2001:db8:d::1 serves=1:2:1\n", ":3: bad node address"},
        {"prefix 2001:db8:abcd:12::/64\ntcp 80\nnode n1 [2001:db8:d::1]:80 serves=1:2\n", ":3: bad codes '1:2'"},
        {"prefix 2001:db8:abcd:12::/64\ntcp 80\nnode n1 [2001:db8:d::1]:80\n", ":3: node n1 serves nothing"},
        {"prefix 2001:db8:abcd:12::/64\ntcp 80\nnode n1 [::1]:80 serves=1:1:1\nnode n1 [::1]:81 serves=1:1:1\n",
         ":4: duplicate node n1"},
        {"prefix 2001:db8:abcd:12::/64\ntcp 80\nfrobnicate 1\n", ":3: unknown or malformed line 'frobnicate'"},
        {"tcp 80\n", ":0: no prefix line"},
        {"prefix 2001:db8:abcd:12::/64\n", ":0: nothing to serve"},
    };
    for (const auto &tc : cases) {
        std::string path = write_temp(tc.text);
        EgressConfig c;
        std::string err;
        CHECK_FALSE(load_egress_config(path, c, err));
        CHECK_MESSAGE(err.find(path + tc.want) == 0, err);
        unlink(path.c_str());
    }
}
