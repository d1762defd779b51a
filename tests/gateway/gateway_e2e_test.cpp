// End to end: the gateway testbed (gateway/testbed/run) in network namespaces,
// driven by real sockets opened inside the client namespaces (setns per
// thread). Label e2e: needs root. Every case builds its own testbed and tears
// it down, whatever happens.
//
// Each case runs once per SRv6 data plane ("userspace: ...", "kernel: ...",
// and the two mixes "interop ...: "). A case whose data plane this machine
// cannot run (not root, no /dev/net/tun, a kernel without seg6) exits 77 with
// the reason, which ctest reports as skipped (SKIP_RETURN_CODE), never passed.
#include "skip.hpp"
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string sh(const std::string &cmd, int *rc = nullptr) {
    std::string out;
    FILE *p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = pclose(p);
    if (rc) *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

std::string slurp(const std::string &path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

size_t count_of(const std::string &hay, const std::string &needle) {
    size_t n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}

// Runs f in a thread that has joined network namespace `ns`.
template <class F> auto in_netns(const std::string &ns, F f) {
    decltype(f()) result{};
    std::thread t([&] {
        int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE_MESSAGE(fd >= 0, "no namespace " << ns);
        REQUIRE(setns(fd, CLONE_NEWNET) == 0);
        close(fd);
        result = f();
    });
    t.join();
    return result;
}

sockaddr_in6 addr6(const char *text, uint16_t port) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    inet_pton(AF_INET6, text, &sa.sin6_addr);
    sa.sin6_port = htons(port);
    return sa;
}

int tcp_connect(const char *addr, uint16_t port, int timeout_ms = 2000) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in6 sa = addr6(addr, port);
    if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

std::string read_line(int fd) {
    std::string s;
    char c;
    while (s.size() < 512 && recv(fd, &c, 1, 0) == 1 && c != '\n') s += c;
    return s;
}

// "HELLO": the node answers "node=NAME" and holds the connection. "" on failure.
std::string hello(int fd) {
    if (send(fd, "HELLO\n", 6, MSG_NOSIGNAL) != 6) return "";
    std::string l = read_line(fd);
    return l.rfind("node=", 0) == 0 ? l.substr(5) : "";
}

// One request, a fresh connection each time: the node's name or "".
std::string ask(const char *addr, uint16_t port = 80) {
    int fd = tcp_connect(addr, port);
    if (fd < 0) return "";
    std::string n = hello(fd);
    close(fd);
    return n;
}

// The data plane of each gateway in a case.
struct Plane {
    const char *ingress, *egress;
    bool kernel_ingress() const { return std::strcmp(ingress, "kernel") == 0; }
};
constexpr Plane kUserspace{"userspace", "userspace"};
constexpr Plane kKernel{"kernel", "kernel"};
constexpr Plane kUserIngressKernelEgress{"userspace", "kernel"};
constexpr Plane kKernelIngressUserEgress{"kernel", "userspace"};

using aisid::test::skip_unless;

// What this machine lacks for the plane ("" when it has everything): tried in
// a scratch namespace, as the daemons' auto mode tries it.
std::string missing_for(const Plane &p) {
    if (geteuid() != 0) return "the gateway e2e tests need root (network namespaces)";
    bool want_kernel = std::strcmp(p.ingress, "kernel") == 0 || std::strcmp(p.egress, "kernel") == 0;
    bool want_user = std::strcmp(p.ingress, "userspace") == 0 || std::strcmp(p.egress, "userspace") == 0;
    if (want_user && access("/dev/net/tun", R_OK | W_OK) != 0)
        return "the userspace data plane needs /dev/net/tun (CONFIG_TUN)";
    if (want_kernel) {
        const std::string ns = "aisid-probe-" + std::to_string(getpid());
        int rc = 0;
        sh("ip netns add " + ns + " && ip -n " + ns + " link set lo up");
        std::string out = sh("ip -n " + ns + " -6 route add 2001:db8:ffff::1/128 encap seg6 mode encap segs "
                             "2001:db8:ffff::2 dev lo && ip -n " + ns + " -6 route add 2001:db8:ffff::3/128 encap "
                             "seg6local action End.DT6 table local dev lo", &rc);
        sh("ip netns del " + ns);
        if (rc != 0)
            return "the kernel data plane needs SRv6 lightweight tunnels (CONFIG_IPV6_SEG6_LWTUNNEL): " + out;
    }
    return "";
}

class Testbed {
public:
    explicit Testbed(const Plane &plane, const std::string &extra_env = "") : plane_(plane) {
        std::string why = missing_for(plane);
        skip_unless(why.empty(), why);
        id_ = "e" + std::to_string(getpid() % 100000);
        state_ = "/tmp/aisid-testbed-" + id_;
        env_ = extra_env + " AISID_TESTBED_INGRESS_DATAPLANE=" + plane.ingress +
               " AISID_TESTBED_EGRESS_DATAPLANE=" + plane.egress + " AISID_BUILD_DIR=" AISID_BINARY_DIR
               " AISID_TESTBED_ID=" + id_ + " AISID_TESTBED_STATE=" + state_;
        int rc = 0;
        std::string out = sh(env_ + " " AISID_SOURCE_DIR "/gateway/testbed/run up", &rc);
        up_ = rc == 0;
        REQUIRE_MESSAGE(up_, "testbed up failed: " << out);
    }
    ~Testbed() {
        int rc = 0;
        std::string out = sh(env_ + " " AISID_SOURCE_DIR "/gateway/testbed/run down", &rc);
        CHECK_MESSAGE(rc == 0, out);
        CHECK_MESSAGE(sh("ip netns list | grep -c 'tb" + id_ + "-' || true").find('0') == 0,
                      "namespaces left behind");
    }
    std::string ns(const std::string &role) const { return "tb" + id_ + "-" + role; }
    std::string log(const std::string &name) const { return slurp(state_ + "/" + name + ".log"); }
    std::string run(const std::string &role, const std::string &cmd, int *rc = nullptr) const {
        return sh("ip netns exec " + ns(role) + " " + cmd, rc);
    }
    pid_t pid(const std::string &name) const { return std::atoi(slurp(state_ + "/" + name + ".pid").c_str()); }
    const Plane &plane() const { return plane_; }
    // The ingress's weights now: its last "weights eg1=A eg2=B" log line (both
    // data planes log each change they apply), as {A, B}; {-1, -1} if none.
    std::array<int, 2> weights() const {
        const std::string l = log("ingress");
        const size_t at = l.rfind("weights eg1=");
        if (at == std::string::npos) return {-1, -1};
        const size_t e2 = l.find("eg2=", at);
        return {std::atoi(l.c_str() + at + 12), e2 == std::string::npos ? -1 : std::atoi(l.c_str() + e2 + 4)};
    }
    void restart_node(int i) const {
        std::string cmd = "ip netns exec " + ns("dc") + " " AISID_BINARY_DIR "/gateway/testbed/aisid-testnode --name n" +
                          std::to_string(i) + " --listen [2001:db8:d::" + std::to_string(i) +
                          "]:8080 --report [2001:db8:c1::1]:9400 --report [2001:db8:c2::1]:9400 --capacity " +
                          std::to_string(i * 1000) + " --report-interval 20 >>" + state_ + "/n" + std::to_string(i) + ".log 2>&1 & echo $! >" +
                          state_ + "/n" + std::to_string(i) + ".pid";
        std::system(cmd.c_str());
    }

private:
    Plane plane_;
    std::string id_, state_, env_;
    bool up_ = false;
};

constexpr const char *kYolo = "2001:db8:abcd:12:1:2:1:0";      // yolo.detection.image, best effort
constexpr const char *kYoloP60 = "2001:db8:abcd:12:1:2:1:3c";  // ... within 60 ms
constexpr const char *kYoloP10 = "2001:db8:abcd:12:1:2:1:a";   // ... within 10 ms: no node
constexpr const char *kTextGen = "2001:db8:abcd:12:2:4:0:0";   // generation.text, any method

} // namespace

void reach(const Plane &plane) {
    Testbed tb(plane);
    // The ingress routes the prefix to the resilient group of SRv6 encap nexthops.
    // The ingress routes the prefix to the resilient group of SRv6 encap
    // nexthops (kernel) or to the TUN device of its userspace data plane.
    std::string route = sh("ip -n " + tb.ns("ing") + " -6 route get " + kYolo + " from 2001:db8:1::10");
    if (plane.kernel_ingress())
        CHECK_MESSAGE(route.find("encap seg6 mode encap") != std::string::npos, route);
    else
        CHECK_MESSAGE(route.find("dev aisid-in") != std::string::npos, route);
    CHECK(tb.log("ingress").find(std::string("data plane: ") + plane.ingress) != std::string::npos);
    CHECK(tb.log("eg1").find(std::string("data plane: ") + plane.egress) != std::string::npos);

    std::set<std::string> any = {"n1", "n2", "n3", "n4"};
    std::string n = in_netns(tb.ns("cl"), [] { return ask(kYolo); });
    CHECK(any.count(n) == 1);
    // Semantic match: generation.text is served by n3 and n4 only.
    for (int i = 0; i < 6; ++i) {
        std::string t = in_netns(tb.ns("cl"), [] { return ask(kTextGen); });
        CHECK((t == "n3" || t == "n4"));
    }
    // Performance: 60 ms is met by n1 (20) and n2 (50) only.
    for (int i = 0; i < 6; ++i) {
        std::string p = in_netns(tb.ns("cl"), [] { return ask(kYoloP60); });
        CHECK((p == "n1" || p == "n2"));
    }
    // The egress saw the AISID the client dialled, decapsulated from SRv6.
    std::string logs = tb.log("eg1") + tb.log("eg2");
    CHECK(logs.find("tcp [2001:db8:1::10]") != std::string::npos);
    CHECK(logs.find("[object 2 function 4 method 0 performance 0] -> node n") != std::string::npos);
    CHECK(logs.find("performance 60] -> node n") != std::string::npos);
    // Both egress SIDs decapsulated packets (End.DT6 counters are per route, so
    // look at the gateways' logs instead: over 13 flows both are used w.h.p.;
    // a 5-tuple hash puts each on one of two equal paths).

    // UDP: the reply comes back from the AISID itself.
    auto udp = in_netns(tb.ns("cl"), [] {
        int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        timeval tv{2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in6 to = addr6(kYolo, 5300);
        sendto(fd, "ping", 4, 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
        char buf[256] = {};
        sockaddr_in6 from{};
        socklen_t len = sizeof from;
        ssize_t r = recvfrom(fd, buf, sizeof buf - 1, 0, reinterpret_cast<sockaddr *>(&from), &len);
        close(fd);
        char a[INET6_ADDRSTRLEN] = {};
        inet_ntop(AF_INET6, &from.sin6_addr, a, sizeof a);
        return std::array<std::string, 2>{r > 0 ? std::string(buf) : "", a};
    });
    CHECK(udp[0].rfind("node=n", 0) == 0);
    CHECK(udp[0].find("ping") != std::string::npos);
    CHECK(udp[1] == kYolo);

    // Plain tools: curl over HTTP, nc.
    int rc = 0;
    std::string c = tb.run("cl", std::string("curl -sS --max-time 3 http://[") + kYolo + "]/x", &rc);
    CHECK(rc == 0);
    CHECK(c.find("node=n") == 0);
    c = tb.run("cl", std::string("sh -c 'printf HELLO\\\\n | nc -N -w 2 ") + kYolo + " 80'", &rc);
    CHECK(rc == 0);
    CHECK(c.find("node=n") == 0);
    // Through aisidd on the AISID host: the name gives the AISID, curl goes there.
    std::string a = tb.run("cl", "dig +short @::1 p60.yolo.detection.image.ai.example AAAA");
    CHECK(a.find("2001:db8:abcd:12:1:2:1:3c") == 0);
    c = tb.run("cl", "curl -sS --max-time 3 http://[2001:db8:abcd:12:1:2:1:3c]/via-aisidd", &rc);
    CHECK(rc == 0);
    CHECK((c.find("node=n1") == 0 || c.find("node=n2") == 0));
}

void legacy(const Plane &plane) {
    Testbed tb(plane);
    // No route to the AISID prefix on the legacy network.
    int rc = 0;
    std::string out = tb.run("lc", std::string("curl -sS --connect-timeout 1 http://[") + kYolo + "]/x", &rc);
    CHECK(rc != 0);
    // The SVCB fallback name, through Unbound.
    std::string aaaa = tb.run("lc", "dig +short +time=2 @2001:db8:53::53 yolo-detection-image.legacy.provider.example AAAA");
    CHECK(aaaa.find("2001:db8:3::443") == 0);
    out = tb.run("lc", "curl -sS --max-time 3 http://[2001:db8:3::443]:443/legacy", &rc);
    CHECK(rc == 0);
    CHECK(out.find("node=n") == 0);
    CHECK(tb.log("eg2").find("(legacy endpoint of 2001:db8:abcd:12:1:2:1:0)") != std::string::npos);
    CHECK(tb.log("unbound").find("yolo-detection-image.legacy.provider.example") != std::string::npos);
    // Through aisidd on the legacy host: the AISID (authoritative), then the
    // SVCB fallback, then its address forwarded to Unbound.
    out = tb.run("lc", "dig +short @::1 yolo.detection.image.ai.example AAAA");
    CHECK(out.find(kYolo) == 0);
    out = tb.run("lc", "dig +short @::1 yolo.detection.image.ai.example SVCB");
    CHECK(out.find("1 yolo-detection-image.legacy.provider.example. port=443") == 0);
    out = tb.run("lc", "dig +short @::1 yolo-detection-image.legacy.provider.example AAAA");
    CHECK(out.find("2001:db8:3::443") == 0);
    // The SDK (aisid_connect_ex) on its own: straight to the AISID on the AISID
    // network, the SVCB fallback through Unbound on the legacy one.
    const std::string client = AISID_BINARY_DIR "/gateway/testbed/aisid-testclient";
    const std::string args = " --zone " AISID_SOURCE_DIR "/zones/ai.example.zone --upstream 2001:db8:53::53 "
                             "yolo.detection.image.ai.example 80";
    out = tb.run("lc", client + args, &rc);
    CHECK_MESSAGE(rc == 0, out);
    CHECK_MESSAGE(out.find("path=fallback") == 0, out);
    CHECK_MESSAGE(out.find("peer=[2001:db8:3::443]:443") != std::string::npos, out);
    CHECK_MESSAGE(out.find("reply=node=n") != std::string::npos, out);
    out = tb.run("cl", client + args, &rc);
    CHECK_MESSAGE(rc == 0, out);
    CHECK_MESSAGE(out.find("path=aisid") == 0, out);
    CHECK_MESSAGE(out.find("reply=node=n") != std::string::npos, out);
}

void spread(const Plane &plane) {
    Testbed tb(plane);
    // Held open, so each pick sees the ones before it (least connections).
    auto counts = in_netns(tb.ns("cl"), [] {
        std::map<std::string, int> c;
        std::vector<int> fds;
        for (int i = 0; i < 1000; ++i) {
            int fd = tcp_connect(kYolo, 80);
            std::string n = fd >= 0 ? hello(fd) : "";
            c[n.empty() ? "failed" : n]++;
            if (fd >= 0) fds.push_back(fd);
        }
        for (int fd : fds) close(fd);
        return c;
    });
    MESSAGE("spread: n1=" << counts["n1"] << " n2=" << counts["n2"] << " n3=" << counts["n3"] << " n4=" << counts["n4"]
                          << " failed=" << counts["failed"]);
    CHECK(counts["failed"] == 0);
    // Weights 1:2:3:4 → 100, 200, 300, 400, each within 5 %.
    for (int i = 1; i <= 4; ++i) {
        const double want = 100.0 * i;
        CHECK_MESSAGE(std::abs(counts["n" + std::to_string(i)] - want) <= 0.05 * want, "n" << i);
    }
    // Both egress gateways took part (the ingress spreads flows over both).
    CHECK(count_of(tb.log("eg1"), " -> node n") > 100);
    CHECK(count_of(tb.log("eg2"), " -> node n") > 100);
}

void node_killed(const Plane &plane) {
    Testbed tb(plane);
    auto result = in_netns(tb.ns("cl"), [&] {
        std::map<std::string, int> before, after;
        int lost = 0, retried = 0;
        std::vector<int> held; // flows in progress on the node when it dies
        for (int i = 0; i < 300; ++i) {
            if (i == 100) {
                for (int k = 0; k < 8; ++k) {
                    int fd = tcp_connect(kYolo, 80);
                    if (fd >= 0 && hello(fd) == "n4") held.push_back(fd);
                    else if (fd >= 0) close(fd);
                }
                kill(tb.pid("n4"), SIGKILL);
            }
            std::string n;
            for (int attempt = 0; attempt < 3 && n.empty(); ++attempt) {
                if (attempt) ++retried;
                n = ask(kYolo);
            }
            if (n.empty()) ++lost;
            (i < 100 ? before : after)[n]++;
        }
        // The killed node's flows were cut (the client would retry them).
        // The client retries each of them on a new connection: served elsewhere.
        int cut = 0;
        for (int fd : held) {
            char c;
            if (recv(fd, &c, 1, 0) <= 0) {
                ++cut;
                ++retried;
                std::string n = ask(kYolo);
                if (n.empty() || n == "n4") ++lost;
            }
            close(fd);
        }
        return std::make_tuple(before, after, lost, retried, cut, static_cast<int>(held.size()));
    });
    auto &[before, after, lost, retried, cut, held] = result;
    MESSAGE("before: n4=" << before["n4"] << "; after: n1=" << after["n1"] << " n2=" << after["n2"]
                          << " n3=" << after["n3"] << " n4=" << after["n4"] << "; retried=" << retried
                          << " held=" << held << " cut=" << cut);
    CHECK(lost == 0);
    CHECK(before["n4"] > 0);
    CHECK(after["n4"] == 0);
    CHECK(after["n1"] + after["n2"] + after["n3"] == 200);
    CHECK(cut == held);
    CHECK(held > 0);
    // Marked down by a failed connect, or by the probe of a node whose reports stopped.
    bool marked = false;
    for (int i = 0; i < 30 && !marked; ++i) {
        marked = (tb.log("eg1") + tb.log("eg2")).find("node n4 [2001:db8:d::4]:8080 down") != std::string::npos;
        if (!marked) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(marked);

    // Back up: a probe sees it and new flows reach it again.
    tb.restart_node(4);
    bool back = false, probed = false;
    for (int i = 0; i < 50 && !(back && probed); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        back = back || in_netns(tb.ns("cl"), [] { return ask(kYolo); }) == "n4";
        probed = (tb.log("eg1") + tb.log("eg2")).find("node n4 [2001:db8:d::4]:8080 up again (probe)") != std::string::npos;
    }
    CHECK(back);
    CHECK(probed);
}

void egress_stopped(const Plane &plane) {
    Testbed tb(plane);
    auto w = tb.weights();
    REQUIRE(w[0] > 0);
    REQUIRE(w[1] > 0);
    if (plane.kernel_ingress()) {
        std::string group = sh("ip -n " + tb.ns("ing") + " nexthop show id 4200");
        REQUIRE(group.find("4201,") != std::string::npos);
        REQUIRE(group.find("4202,") != std::string::npos);
    }
    kill(tb.pid("eg1"), SIGTERM);
    bool moved = false;
    for (int i = 0; i < 50 && !moved; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        w = tb.weights();
        moved = w[0] == 0 && w[1] > 0;
    }
    CHECK_MESSAGE(moved, "weights eg1=" << w[0] << " eg2=" << w[1]);
    if (plane.kernel_ingress()) {
        std::string group = sh("ip -n " + tb.ns("ing") + " nexthop show id 4200");
        CHECK_MESSAGE((group.find("4201") == std::string::npos && group.find("4202") != std::string::npos), group);
    }
    CHECK(tb.log("ingress").find("path eg1 down: no report") != std::string::npos);
    const size_t eg2_before = count_of(tb.log("eg2"), " -> node n");
    int ok = in_netns(tb.ns("cl"), [] {
        int n = 0;
        for (int i = 0; i < 50; ++i) n += !ask(kYolo).empty();
        return n;
    });
    CHECK(ok == 50);
    CHECK(count_of(tb.log("eg2"), " -> node n") - eg2_before == 50);
}

// n echo sessions to the AISID (aisid-testnode's ECHO), each confirmed by its
// first line; fewer if some failed.
std::vector<int> open_echo_flows(int n) {
    std::vector<int> fds;
    for (int i = 0; i < n; ++i) {
        int fd = tcp_connect(kYolo, 80);
        if (fd >= 0 && send(fd, "ECHO\n", 5, MSG_NOSIGNAL) == 5 && read_line(fd).rfind("node=", 0) == 0)
            fds.push_back(fd);
    }
    return fds;
}

// How many of the sessions echo a line back now.
int echo_count(const std::vector<int> &held) {
    int ok = 0;
    for (int fd : held) {
        char b[8] = {};
        if (send(fd, "ping\n", 5, MSG_NOSIGNAL) == 5 && recv(fd, b, 5, MSG_WAITALL) == 5 && std::string(b, 5) == "ping\n")
            ++ok;
    }
    return ok;
}

void weights_move(const Plane &plane) {
    Testbed tb(plane, "AISID_TESTBED_IDLE_TIMER=1");
    // Established flows: echo sessions that stay busy (a resilient bucket moves
    // only once idle for idle_timer).
    const int kHeld = 12;
    auto run = [&](auto f) { return in_netns(tb.ns("cl"), f); };
    std::vector<int> held = run([&] { return open_echo_flows(kHeld); });
    REQUIRE(held.size() == static_cast<size_t>(kHeld));
    CHECK(count_of(tb.log("eg1"), " -> node n") > 0); // some of them do go through eg1
    auto echo_all = [&] { return echo_count(held); };
    // The control side reports eg1's path 90 % utilized (link=): weight 255 → ~26.
    auto control = [&] {
        int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in6 to = addr6("2001:db8:1::1", 9500);
        const char msg[] = "aisid-gw gw=eg1 link=0.9";
        sendto(fd, msg, sizeof msg - 1, 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
        close(fd);
        return 0;
    };
    // Busy for longer than idle_timer first: had the flows been idle, their
    // buckets would be as movable as any other (and these flows would break).
    int survived_min = kHeld;
    for (int i = 0; i < 15; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        survived_min = std::min(survived_min, run(echo_all));
    }
    run(control);
    bool changed = false;
    for (int i = 0; i < 25; ++i) { // 2.5 s: past idle_timer, flows kept busy
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        survived_min = std::min(survived_min, run(echo_all));
        changed = changed || tb.weights()[0] != 255;
    }
    CHECK(changed);
    if (plane.kernel_ingress()) {
        std::string group = sh("ip -n " + tb.ns("ing") + " nexthop show id 4200");
        CHECK_MESSAGE(group.find("4201,255") == std::string::npos, group);
    }
    const std::string ilog = tb.log("ingress");
    const size_t at = ilog.rfind("weights eg1=");
    REQUIRE(at != std::string::npos);
    const int w1 = std::atoi(ilog.c_str() + at + 12);
    MESSAGE(ilog.substr(at, ilog.find('\n', at) - at));
    CHECK(w1 >= 20);
    CHECK(w1 <= 30); // 255 * (1 - 0.9)
    CHECK(ilog.find("eg2=255", at) != std::string::npos);
    CHECK(survived_min == kHeld);
    // New flows now mostly take eg2 (eg1 keeps at most ~26/281 of the idle buckets).
    const size_t eg1_before = count_of(tb.log("eg1"), " -> node n");
    const size_t eg2_before = count_of(tb.log("eg2"), " -> node n");
    int ok = run([] {
        int n = 0;
        for (int i = 0; i < 100; ++i) n += !ask(kYolo).empty();
        return n;
    });
    CHECK(ok == 100);
    const size_t via1 = count_of(tb.log("eg1"), " -> node n") - eg1_before;
    const size_t via2 = count_of(tb.log("eg2"), " -> node n") - eg2_before;
    MESSAGE("new flows after the change: eg1=" << via1 << " eg2=" << via2);
    CHECK(via2 >= 70);
    CHECK(run(echo_all) == kHeld);
    for (int fd : held) close(fd);
}

void refused(const Plane &plane) {
    Testbed tb(plane);
    auto r = in_netns(tb.ns("cl"), [] {
        // The handshake itself must succeed (the refusal is an RST after it);
        // a SYN lost on a loaded machine is retried, as a client would.
        int fd = -1;
        for (int i = 0; i < 3 && fd < 0; ++i) fd = tcp_connect(kYoloP10, 80);
        if (fd < 0) return std::string("connect failed");
        std::string n = hello(fd);
        close(fd);
        return n;
    });
    CHECK(r.empty());
    CHECK((tb.log("eg1") + tb.log("eg2")).find("refused: no node up serves object 1 function 2 method 1 performance 10") !=
          std::string::npos);
    // UDP: no answer at all.
    auto udp = in_netns(tb.ns("cl"), [] {
        int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        timeval tv{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in6 to = addr6(kYoloP10, 5300);
        sendto(fd, "ping", 4, 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
        char buf[64];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        close(fd);
        return n;
    });
    CHECK(udp < 0);
}


// Flow stickiness: established flows keep their egress gateway through many
// weight changes (the kernel's resilient group; the userspace flow table).
void ten_weight_changes(const Plane &plane) {
    Testbed tb(plane, "AISID_TESTBED_IDLE_TIMER=1");
    const int kHeld = 16;
    auto run = [&](auto f) { return in_netns(tb.ns("cl"), f); };
    std::vector<int> held = run([&] { return open_echo_flows(kHeld); });
    REQUIRE(held.size() == static_cast<size_t>(kHeld));
    const size_t on_eg1 = count_of(tb.log("eg1"), " -> node n"), on_eg2 = count_of(tb.log("eg2"), " -> node n");
    MESSAGE("held flows: " << on_eg1 << " via eg1, " << on_eg2 << " via eg2");
    CHECK(on_eg1 > 0); // the changes below move weight to and from eg1: flows on both sides are at stake
    CHECK(on_eg2 > 0);
    auto echo_all = [&] { return echo_count(held); };
    auto control = [&](const char *link) {
        return run([&] {
            int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            sockaddr_in6 to = addr6("2001:db8:1::1", 9500);
            const std::string msg = std::string("aisid-gw gw=eg1 link=") + link;
            sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
            close(fd);
            return 0;
        });
    };
    int survived_min = kHeld, applied = 0;
    for (int change = 0; change < 10; ++change) {
        const bool low = change % 2 == 0; // eg1 at 90 % link utilization, then idle again
        control(low ? "0.9" : "0.0");
        bool seen = false;
        // 1.5 s per change, the flows busy every 100 ms: past idle_timer (1 s),
        // so anything that could move an idle flow has had its chance.
        for (int i = 0; i < 15; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            survived_min = std::min(survived_min, run(echo_all));
            const int w1 = tb.weights()[0];
            seen = seen || (low ? (w1 > 0 && w1 < 40) : w1 == 255);
        }
        applied += seen;
    }
    MESSAGE("weight changes applied: " << applied << "/10; established flows alive throughout: " << survived_min
                                       << "/" << kHeld);
    CHECK(applied == 10);
    CHECK(survived_min == kHeld);
    // No flow moved: each egress still logged exactly the flows it had.
    CHECK(count_of(tb.log("eg1"), " -> node n") == on_eg1);
    CHECK(count_of(tb.log("eg2"), " -> node n") == on_eg2);
    for (int fd : held) close(fd);
}

// The outer packet on the link from the ingress to an egress gateway, field by
// field: what Linux's seg6 encap (mode encap) puts there, so a userspace and a
// kernel data plane are interchangeable on the wire.
void wire_format(const Plane &plane) {
    Testbed tb(plane);
    std::atomic<bool> stop{false};
    std::vector<uint8_t> pkt;
    std::thread cap([&] {
        pkt = in_netns(tb.ns("eg1"), [&] {
            std::vector<uint8_t> got;
            int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IPV6));
            if (fd < 0) return got;
            sockaddr_ll ll{};
            ll.sll_family = AF_PACKET;
            ll.sll_protocol = htons(ETH_P_IPV6);
            ll.sll_ifindex = static_cast<int>(if_nametoindex("eg1-ing"));
            bind(fd, reinterpret_cast<sockaddr *>(&ll), sizeof ll);
            timeval tv{0, 100000};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            uint8_t buf[2048];
            while (!stop.load()) {
                sockaddr_ll from{};
                socklen_t fl = sizeof from;
                ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&from), &fl);
                // Incoming (from the ingress), IPv6 with next header 43 (routing),
                // carrying one of our datagrams (not, say, the client's ICMPv6
                // port unreachable for a late reply to a closed socket).
                if (n == 116 && from.sll_pkttype == PACKET_HOST && buf[6] == 43 && buf[64 + 6] == 17 &&
                    std::memcmp(buf + 112, "wire", 4) == 0) {
                    got.assign(buf, buf + n);
                    break;
                }
            }
            close(fd);
            return got;
        });
        stop = true;
    });
    // Datagrams from new source ports until one flow is sent through eg1.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    in_netns(tb.ns("cl"), [&] {
        for (int i = 0; i < 100 && !stop.load(); ++i) {
            int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            int tclass = 0x28;
            setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof tclass);
            sockaddr_in6 to = addr6(kYolo, 5300);
            sendto(fd, "wire", 4, 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
            close(fd);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        stop = true;
        return 0;
    });
    cap.join();
    REQUIRE_MESSAGE(pkt.size() == 40 + 24 + 40 + 8 + 4, "captured " << pkt.size() << " bytes");
    auto addr = [&](size_t off) {
        char a[INET6_ADDRSTRLEN] = {};
        inet_ntop(AF_INET6, &pkt[off], a, sizeof a);
        return std::string(a);
    };
    auto word = [&](size_t off) {
        return static_cast<uint32_t>(pkt[off]) << 24 | static_cast<uint32_t>(pkt[off + 1]) << 16 |
               static_cast<uint32_t>(pkt[off + 2]) << 8 | pkt[off + 3];
    };
    const size_t in = 40 + 24; // the inner packet
    // Outer IPv6 header.
    CHECK((pkt[0] >> 4) == 6);
    CHECK(((word(0) >> 20) & 0xff) == 0x28);                      // traffic class copied from the inner packet
    CHECK((word(0) & 0xfffff) == (word(in) & 0xfffff));           // flow label copied (seg6_flowlabel 0)
    CHECK((pkt[4] << 8 | pkt[5]) == 24 + 40 + 8 + 4);             // payload length
    CHECK(pkt[6] == 43);                                          // routing header
    CHECK(pkt[7] == 63);                                          // hop limit 64, one forwarding hop
    CHECK(addr(8) == "2001:db8:f1::1");                           // the ingress's address toward the SID
    CHECK(addr(24) == "2001:db8:e1::100");                        // the SID
    // SRH (RFC 8754): next header IPv6, length 2, type 4, segments left 0,
    // last entry 0, flags 0, tag 0, segment list [SID].
    const uint8_t srh[8] = {41, 2, 4, 0, 0, 0, 0, 0};
    CHECK(std::memcmp(&pkt[40], srh, 8) == 0);
    CHECK(addr(48) == "2001:db8:e1::100");
    // The inner packet, as the client sent it.
    CHECK((pkt[in] >> 4) == 6);
    CHECK(((word(in) >> 20) & 0xff) == 0x28);
    CHECK(pkt[in + 6] == 17);
    CHECK(pkt[in + 7] == 64);                                     // untouched: encap is not a forwarding hop
    CHECK(addr(in + 8) == "2001:db8:1::10");
    CHECK(addr(in + 24) == kYolo);
    CHECK(std::memcmp(&pkt[in + 48], "wire", 4) == 0);
}

// Every case through each data plane (see the top of this file).
#define PLANE_CASES(title, fn)                                            \
    TEST_CASE("userspace: " title) { fn(kUserspace); }                    \
    TEST_CASE("kernel: " title) { fn(kKernel); }

PLANE_CASES("aisid client reaches services at their AISIDs through SRv6, TCP and UDP", reach)
PLANE_CASES("legacy client reaches the service through DNS fallback (Unbound, legacy endpoint)", legacy)
PLANE_CASES("1000 connections spread over the nodes by weight", spread)
PLANE_CASES("a node killed mid-run: new flows go elsewhere, nothing lost after a retry, probes bring it back", node_killed)
PLANE_CASES("an egress gateway stopped: the ingress moves its weight away, flows keep being served", egress_stopped)
PLANE_CASES("the control side moves the ingress weights: new flows follow, established flows are not broken", weights_move)
PLANE_CASES("a request whose performance no node meets is refused and logged", refused)
PLANE_CASES("established TCP flows survive ten weight changes", ten_weight_changes)
PLANE_CASES("the SRv6 packet on the wire is what Linux's seg6 encap sends", wire_format)
TEST_CASE("interop userspace ingress, kernel egress: " "aisid client reaches services through SRv6") {
    reach(kUserIngressKernelEgress);
}
TEST_CASE("interop kernel ingress, userspace egress: " "aisid client reaches services through SRv6") {
    reach(kKernelIngressUserEgress);
}

TEST_CASE("daemons: --help, --version, config errors with FILE:LINE and exit 2") {
    int rc = 0;
    std::string out = sh(AISID_BINARY_DIR "/gateway/egress/aisid-egress --version", &rc);
    CHECK(rc == 0);
    CHECK(out.rfind("aisid-egress ", 0) == 0);
    out = sh(AISID_BINARY_DIR "/gateway/ingress/aisid-ingress --help", &rc);
    CHECK(rc == 0);
    CHECK(out.find("usage: aisid-ingress") == 0);
    char path[] = "/tmp/aisid-gw-conf-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    const char bad[] = "prefix 2001:db8:abcd:12::/64\ntcp 80\nnode n1 [2001:db8:d::1]:8080 weight=x serves=1:2:1\n";
    CHECK(write(fd, bad, sizeof bad - 1) == static_cast<ssize_t>(sizeof bad - 1));
    close(fd);
    out = sh(std::string(AISID_BINARY_DIR "/gateway/egress/aisid-egress --check --config ") + path, &rc);
    CHECK(rc == 2);
    CHECK(out.find(std::string("aisid-egress: ") + path + ":3: bad weight 'x'") == 0);
    out = sh(std::string(AISID_BINARY_DIR "/gateway/ingress/aisid-ingress --check --config ") + path, &rc);
    CHECK(rc == 2);
    CHECK(out.find(std::string("aisid-ingress: ") + path + ":2: ") == 0);
    out = sh(AISID_BINARY_DIR "/gateway/egress/aisid-egress --bogus", &rc);
    CHECK(rc == 2);
    unlink(path);
}
