// aisid-egress internals: the event-loop splice relay (AF_UNIX socket pairs
// and TCP on loopback, no root) and the configuration parser.
#include "aisid/egress/egress_config.hpp"
#include "aisid/egress/relay_loop.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
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

// What the loop told a flow, for the test to wait on.
struct Record {
    std::mutex mu;
    std::vector<std::string> events;
    std::promise<RelayResult> result;
    std::promise<void> gone;
    std::future<void> gone_f = gone.get_future();
    bool attached = false;
    // The flow is destroyed on the relay thread, a moment after finished():
    // it must not outlive the record it writes to.
    ~Record() {
        if (attached) gone_f.wait_for(std::chrono::seconds(10));
    }
    void note(std::string e) {
        std::lock_guard lk(mu);
        events.push_back(std::move(e));
    }
    std::vector<std::string> get() {
        std::lock_guard lk(mu);
        return events;
    }
};

// Tries the given upstreams in order, recording each hook.
class TestFlow : public RelayFlow {
public:
    TestFlow(Record *rec, std::vector<sockaddr_in6> ups = {}) : rec_(rec), ups_(std::move(ups)) {
        if (rec_) rec_->attached = true;
    }
    ~TestFlow() override {
        if (rec_) rec_->gone.set_value();
    }
    bool next_upstream(sockaddr_in6 &to) override {
        if (next_ >= ups_.size()) {
            if (rec_) rec_->note("none");
            return false;
        }
        to = ups_[next_++];
        if (rec_) rec_->note("try " + std::to_string(ntohs(to.sin6_port)));
        return true;
    }
    void connect_failed(int err) override {
        if (rec_) rec_->note(std::string("failed ") + std::strerror(err));
    }
    void established() override {
        if (rec_) rec_->note("established");
    }
    void finished(const RelayResult &r) override {
        if (rec_) rec_->result.set_value(r);
    }

private:
    Record *rec_;
    std::vector<sockaddr_in6> ups_;
    size_t next_ = 0;
};

sockaddr_in6 loopback(uint16_t port) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    sa.sin6_port = htons(port);
    return sa;
}

// A TCP listener on [::1]:0; its port in *port.
int listen_tcp(uint16_t *port, int backlog = 4096) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in6 sa = loopback(0);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0);
    REQUIRE(listen(fd, backlog) == 0);
    socklen_t len = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &len);
    *port = ntohs(sa.sin6_port);
    return fd;
}

// A port on ::1 where nothing listens (bound, never listening: connects are refused).
int closed_port(uint16_t *port) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in6 sa = loopback(0);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0);
    socklen_t len = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &len);
    *port = ntohs(sa.sin6_port);
    return fd;
}

// A connected TCP pair on loopback: *client dialled, *server accepted.
void tcp_pair(int lfd, uint16_t port, int *client, int *server) {
    *client = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(*client >= 0);
    sockaddr_in6 sa = loopback(port);
    REQUIRE(connect(*client, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0);
    *server = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(*server >= 0);
}

void set_timeout(int fd, int ms) {
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

bool wait_for(const std::function<bool()> &cond, int ms = 5000) {
    for (int i = 0; i < ms / 5; ++i) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return cond();
}

int thread_count() {
    std::ifstream st("/proc/self/status");
    std::string line;
    while (std::getline(st, line))
        if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
    return -1;
}

template <class T> T get_within(std::future<T> &f, int ms = 5000) {
    REQUIRE(f.wait_for(std::chrono::milliseconds(ms)) == std::future_status::ready);
    if constexpr (std::is_void_v<T>) f.wait();
    else return f.get();
}

} // namespace

TEST_CASE("relay loop: bytes both ways, half-close passed on, counts") {
    int left[2], right[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, left) == 0);
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, right) == 0);
    // client = left[0] ... relay(left[1], right[0]) ... server = right[1]
    RelayLoop loop({.threads = 1});
    Record rec;
    auto result = rec.result.get_future();
    loop.add_connected(left[1], right[0], std::make_unique<TestFlow>(&rec));

    const size_t kBytes = 8u << 20;
    std::string up(kBytes, '\0');
    for (size_t i = 0; i < kBytes; ++i) up[i] = static_cast<char>(i * 7 + (i >> 12));
    std::thread client([&] {
        size_t off = 0;
        while (off < up.size()) {
            ssize_t n = write(left[0], up.data() + off, up.size() - off);
            if (n <= 0) break;
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
    CHECK(back == reply);
    RelayResult res = get_within(result);
    CHECK(res.up == kBytes);
    CHECK(res.down == reply.size());
    CHECK(res.error == 0);
    CHECK(wait_for([&] { return loop.flows() == 0; }));
    CHECK(rec.get() == std::vector<std::string>{"established"});
    for (int fd : {left[0], right[1]}) close(fd);
}

TEST_CASE("relay loop: a reset is passed on as a reset, even after a half-close") {
    std::signal(SIGPIPE, SIG_IGN);
    uint16_t port;
    int lfd = listen_tcp(&port);
    RelayLoop loop({.threads = 1});
    for (bool half_closed_first : {false, true}) {
        CAPTURE(half_closed_first);
        int client, a, b, server;
        tcp_pair(lfd, port, &client, &a); // client ... a
        tcp_pair(lfd, port, &b, &server); // b ... server
        Record rec;
        auto result = rec.result.get_future();
        loop.add_connected(a, b, std::make_unique<TestFlow>(&rec));
        REQUIRE(write(client, "hi", 2) == 2);
        char buf[16];
        set_timeout(server, 5000);
        REQUIRE(read(server, buf, sizeof buf) == 2);
        if (half_closed_first) {
            // The client is done sending: that direction is finished, and only
            // the reset itself can tell the relay that the client is gone.
            shutdown(client, SHUT_WR);
            REQUIRE(read(server, buf, sizeof buf) == 0);
        }
        linger lg{1, 0};
        setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(client); // RST
        RelayResult res = get_within(result);
        CHECK(res.error == (half_closed_first ? EPIPE : ECONNRESET)); // EPIPE: reset in CLOSE_WAIT
        CHECK(res.up == 2);
        // The server sees the reset (POLLERR), not a FIN: ECONNRESET, or EPIPE
        // when it had already read the client's EOF (CLOSE_WAIT).
        pollfd p{server, 0, 0};
        REQUIRE(poll(&p, 1, 5000) == 1);
        CHECK((p.revents & POLLERR) != 0);
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(server, SOL_SOCKET, SO_ERROR, &err, &len);
        CHECK(err == (half_closed_first ? EPIPE : ECONNRESET));
        close(server);
    }
    close(lfd);
}

TEST_CASE("relay loop: connect retries the next upstream, a timeout counts as a failure, none left resets") {
    std::signal(SIGPIPE, SIG_IGN);
    uint16_t refused_port, slow_port, good_port, front_port;
    int refused = closed_port(&refused_port);
    // A listener whose accept queue is full drops SYNs: the connect hangs.
    int slow = listen_tcp(&slow_port, 0);
    int filler = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 ss = loopback(slow_port);
    REQUIRE(connect(filler, reinterpret_cast<sockaddr *>(&ss), sizeof ss) == 0);
    int good = listen_tcp(&good_port);
    int front = listen_tcp(&front_port);
    RelayLoop loop({.threads = 2, .connect_timeout_ms = 150});

    SUBCASE("the client sees a delay, not an error") {
        int client, accepted;
        tcp_pair(front, front_port, &client, &accepted);
        Record rec;
        auto result = rec.result.get_future();
        auto t0 = std::chrono::steady_clock::now();
        loop.add(accepted, std::make_unique<TestFlow>(
                               &rec, std::vector{loopback(refused_port), loopback(slow_port), loopback(good_port)}));
        REQUIRE(write(client, "ping", 4) == 4); // before the upstream exists: must not be lost
        int server = accept4(good, nullptr, nullptr, SOCK_CLOEXEC);
        REQUIRE(server >= 0);
        auto waited = std::chrono::steady_clock::now() - t0;
        CHECK(waited >= std::chrono::milliseconds(140)); // the timeout ran
        CHECK(waited < std::chrono::milliseconds(2000));
        char buf[16];
        set_timeout(server, 5000);
        REQUIRE(read(server, buf, sizeof buf) == 4);
        REQUIRE(write(server, "pong", 4) == 4);
        set_timeout(client, 5000);
        REQUIRE(read(client, buf, sizeof buf) == 4);
        CHECK(std::string(buf, 4) == "pong");
        close(client);
        close(server);
        CHECK(get_within(result).error == 0);
        CHECK(rec.get() == std::vector<std::string>{"try " + std::to_string(refused_port),
                                                    std::string("failed ") + std::strerror(ECONNREFUSED),
                                                    "try " + std::to_string(slow_port),
                                                    std::string("failed ") + std::strerror(ETIMEDOUT),
                                                    "try " + std::to_string(good_port), "established"});
    }
    SUBCASE("no upstream left: the client gets an RST") {
        int client, accepted;
        tcp_pair(front, front_port, &client, &accepted);
        Record rec;
        auto &gone = rec.gone_f;
        loop.add(accepted, std::make_unique<TestFlow>(&rec, std::vector{loopback(refused_port)}));
        get_within(gone);
        char buf[4];
        set_timeout(client, 5000);
        errno = 0;
        CHECK(read(client, buf, sizeof buf) < 0);
        CHECK(errno == ECONNRESET);
        close(client);
        CHECK(rec.get() == std::vector<std::string>{"try " + std::to_string(refused_port),
                                                    std::string("failed ") + std::strerror(ECONNREFUSED), "none"});
    }
    loop.stop();
    CHECK(loop.flows() == 0);
    for (int fd : {refused, slow, filler, good, front}) close(fd);
}

TEST_CASE("relay loop: 1000 flows on 2 threads, idle flows hold no pipe, stop ends them all") {
    std::signal(SIGPIPE, SIG_IGN);
    constexpr int kFlows = 1000;
    raise_nofile_limit(); // four descriptors per flow in this process
    uint16_t node_port, front_port;
    int node = listen_tcp(&node_port);
    int front = listen_tcp(&front_port);
    const int threads_before = thread_count();
    RelayLoop loop({.threads = 2, .connect_timeout_ms = 2000});
    std::vector<int> clients, servers;
    std::vector<std::unique_ptr<Record>> recs;
    std::vector<std::future<RelayResult>> results;
    for (int i = 0; i < kFlows; ++i) {
        int client, accepted;
        tcp_pair(front, front_port, &client, &accepted);
        recs.push_back(std::make_unique<Record>());
        results.push_back(recs.back()->result.get_future());
        loop.add(accepted, std::make_unique<TestFlow>(recs.back().get(), std::vector{loopback(node_port)}));
        int server = accept4(node, nullptr, nullptr, SOCK_CLOEXEC);
        REQUIRE(server >= 0);
        clients.push_back(client);
        servers.push_back(server);
    }
    CHECK(thread_count() == threads_before + 2);
    CHECK(loop.flows() == kFlows);
    // One byte each way on every flow, interleaved.
    for (int i = 0; i < kFlows; ++i) {
        char c = static_cast<char>(i);
        REQUIRE(write(clients[i], &c, 1) == 1);
    }
    for (int i = 0; i < kFlows; ++i) {
        char c = 0;
        set_timeout(servers[i], 5000);
        REQUIRE(read(servers[i], &c, 1) == 1);
        CHECK(c == static_cast<char>(i));
        c = static_cast<char>(~i);
        REQUIRE(write(servers[i], &c, 1) == 1);
    }
    for (int i = 0; i < kFlows; ++i) {
        char c = 0;
        set_timeout(clients[i], 5000);
        REQUIRE(read(clients[i], &c, 1) == 1);
        CHECK(c == static_cast<char>(~i));
    }
    // Every pipe went back to a pool: at most pool_max per thread stay open.
    CHECK(loop.pipes() <= 2 * RelayLoop::Options{}.pool_max);
    loop.stop();
    CHECK(loop.flows() == 0);
    for (int i = 0; i < kFlows; ++i) {
        char c;
        set_timeout(clients[i], 5000);
        set_timeout(servers[i], 5000);
        CHECK(read(clients[i], &c, 1) == 0); // stop: both peers see EOF
        CHECK(read(servers[i], &c, 1) == 0);
        CHECK(get_within(results[i]).error == ECANCELED);
        close(clients[i]);
        close(servers[i]);
    }
    CHECK(thread_count() == threads_before);
    close(node);
    close(front);
}

TEST_CASE("relay loop: add() after stop() resets the client at once") {
    uint16_t port;
    int lfd = listen_tcp(&port);
    RelayLoop loop({.threads = 1});
    loop.stop();
    int client, accepted;
    tcp_pair(lfd, port, &client, &accepted);
    Record rec;
    auto &gone = rec.gone_f;
    loop.add(accepted, std::make_unique<TestFlow>(&rec, std::vector{loopback(port)}));
    get_within(gone, 0);
    char c;
    set_timeout(client, 5000);
    errno = 0;
    CHECK(read(client, &c, 1) < 0);
    CHECK(errno == ECONNRESET);
    CHECK(rec.get().empty());
    close(client);
    close(lfd);
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
relay-threads 3
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
    CHECK(c.relay_threads == 3);
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
        {"prefix 2001:db8:abcd:12::/64\ntcp 80\nrelay-threads 1025\n", ":3: bad relay-threads '1025'"},
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
