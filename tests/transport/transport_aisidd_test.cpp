// aisidd forwarding over DoT and DoH (SPEC §4 `--upstream tls://…`,
// `https://…`, `--ca-file`): real aisidd, real Unbound and dnsdist, a CA the
// test makes. A broken encrypted upstream is logged with its reason and the
// next one answers; nothing ever goes out in clear text.
#include <doctest/doctest.h>

#include <poll.h>

#include <set>

#include "aisidd.hpp"
#include "tls_peers.hpp"

using namespace aisid::test;

namespace {

/// Asks 127.0.0.1:port over UDP; the answer, or empty after `ms`.
std::vector<uint8_t> ask_udp(int port, const std::vector<uint8_t> &q, int ms = 4000) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::vector<uint8_t> out;
    if (connect(s, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 && send(s, q.data(), q.size(), 0) == ssize_t(q.size())) {
        pollfd p{s, POLLIN, 0};
        if (poll(&p, 1, ms) == 1) {
            uint8_t buf[4096];
            ssize_t n = recv(s, buf, sizeof buf, 0);
            if (n > 0) out.assign(buf, buf + n);
        }
    }
    close(s);
    return out;
}

/// aisidd with one worker and a 1 s upstream timeout, forwarding as `args` say.
AisiddOptions forwarder(const TempDir &tmp, std::vector<std::string> args) {
    static int n = 0;
    return AisiddOptions()
        .in(tmp, "aisidd-" + std::to_string(++n))
        .workers(1)
        .args({"--upstream-timeout", "1000"})
        .args(args);
}

} // namespace

TEST_CASE("aisidd forwards over DoT and over DoH with --ca-file") {
    TempDir tmp;
    Pki pki(tmp.path);
    Unbound ub(tls_upstream(tmp, pki));
    Dnsdist dd(DnsdistOptions().in(tmp).tls(pki).backend(ub.port));
    for (const std::string &up : {ub.dot_uri(), ub.doh_uri(), dd.dot_uri(), dd.doh_uri()}) {
        CAPTURE(up);
        Aisidd d(forwarder(tmp, {"--upstream", up, "--ca-file", pki.ca}));
        auto r = ask_udp(d.port, make_query("q9.legacy.example", 0x1111));
        REQUIRE(!r.empty());
        CHECK(msg_id(r) == 0x1111);
        CHECK(answer_a(r) == std::vector<std::string>{"198.51.100.9"});
        // Many names at once: all answered (one connection, pipelined).
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(uint16_t(d.port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(connect(s, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        for (int i = 1; i <= 50; ++i) {
            auto q = make_query("q" + std::to_string(i) + ".legacy.example", uint16_t(i));
            REQUIRE(send(s, q.data(), q.size(), 0) == ssize_t(q.size()));
        }
        std::set<int> got;
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (got.size() < 50 && std::chrono::steady_clock::now() < end) {
            pollfd p{s, POLLIN, 0};
            if (poll(&p, 1, 200) != 1) continue;
            uint8_t buf[4096];
            ssize_t n = recv(s, buf, sizeof buf, 0);
            if (n <= 0) continue;
            std::vector<uint8_t> m(buf, buf + n);
            int id = msg_id(m);
            if (answer_a(m) == std::vector<std::string>{"198.51.100." + std::to_string(id)}) got.insert(id);
        }
        close(s);
        CHECK(got.size() == 50);
    }
}

TEST_CASE("aisidd: a bad certificate is logged with its reason and the next upstream answers") {
    TempDir tmp;
    Pki pki(tmp.path);
    Unbound ub(tls_upstream(tmp, pki));
    Aisidd d(
        forwarder(tmp, {"--upstream", ub.dot_uri("wrong.example"), "--upstream", ub.doh_uri(), "--ca-file", pki.ca}));
    auto r = ask_udp(d.port, make_query("a.legacy.example", 7));
    REQUIRE(!r.empty());
    CHECK(answer_a(r) == std::vector<std::string>{"192.0.2.1"});
    d.proc.stop();
    std::string log = d.log();
    CHECK_MESSAGE(log.find(ub.dot_uri("wrong.example") + ": certificate verification failed: hostname mismatch") !=
                      std::string::npos,
                  log);
}

TEST_CASE("aisidd: an untrusted upstream gives SERVFAIL with the reason and never a clear-text answer") {
    TempDir tmp;
    Pki pki(tmp.path);
    Unbound ub(tls_upstream(tmp, pki));
    // No --ca-file: the system store does not trust the test CA.
    Aisidd d(forwarder(tmp, {"--upstream", ub.dot_uri()}));
    auto r = ask_udp(d.port, make_query("a.legacy.example", 8));
    REQUIRE(!r.empty());
    CHECK(msg_rcode(r) == 2);  // SERVFAIL
    CHECK(answer_a(r).empty());
    d.proc.stop();
    std::string log = d.log();
    CHECK_MESSAGE(log.find("certificate verification failed: unable to get local issuer certificate") !=
                      std::string::npos,
                  log);
}

TEST_CASE("aisidd: a DoH answer is cached no longer than its HTTP max-age") {
    TempDir tmp;
    Pki pki(tmp.path);
    Unbound ub(tls_upstream(tmp, pki));
    Dnsdist dd(DnsdistOptions().in(tmp).tls(pki).backend(ub.port).doh_options(
        "sendCacheControlHeaders=false, customResponseHeaders={[\"cache-control\"]=\"max-age=42\"}"));
    Aisidd d(forwarder(tmp, {"--upstream", dd.doh_uri(), "--ca-file", pki.ca}));
    for (uint16_t id : {1, 2}) {  // the second answer comes from aisidd's cache
        auto r = ask_udp(d.port, make_query("a.legacy.example", id));
        uint32_t ttl = 0;
        REQUIRE(answer_a(r, &ttl) == std::vector<std::string>{"192.0.2.1"});
        CHECK(ttl <= 42);
    }
}
