// aisid_connect end to end, in network namespaces this test creates (root):
//
//   srv  owns the AISID prefix (ip -6 route add local PREFIX dev lo, a listener
//        bound with IPV6_FREEBIND) and the service's legacy endpoint; runs Unbound.
//   cr   the prefix is routed to srv: the AISID path wins.
//   cl   no route to the prefix (ENETUNREACH at once): the SVCB fallback wins,
//        then the network is remembered as legacy-only.
//   cd   a route to the prefix whose next hop never answers (silent loss): the
//        fallback starts after the attempt delay (RFC 8305 §5) and wins.
//
// Each server writes a tag on accept, so the test knows which one it reached.
#include "skip.hpp"
#include "aisid/aisid.h"
#include "netns.hpp"
#include "paths.hpp"
#include "proc.hpp"
#include "unbound.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <atomic>
#include <thread>

using namespace aisid::test;

namespace {

const std::string kSuffix = std::to_string(::getpid());
const std::string S = "aisid-srv-" + kSuffix, CR = "aisid-cr-" + kSuffix, CL = "aisid-cl-" + kSuffix,
                  CD = "aisid-cd-" + kSuffix;
constexpr uint16_t kAisidPort = 8080;   // the application's port
constexpr uint16_t kLegacyPort = 18443; // the SVCB port=
const char *kAisid = "2001:db8:abcd:12:1:2:1:0";

int sh(const std::string &cmd) {
    int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The namespaces and links; removed whatever happens.
struct Topology {
    bool ok = true;
    std::vector<std::pair<std::string, std::string>> links;  // (netns, device)
    Topology() {
        for (const std::string &n : {S, CR, CL, CD}) {
            sh("ip netns del " + n);
            ok &= sh("ip netns add " + n) == 0;
            ok &= sh("ip -n " + n + " link set lo up") == 0;
        }
        // The server owns the AISID prefix (AnyIP) and the legacy endpoint's addresses.
        ok &= sh("ip -n " + S + " -6 route add local 2001:db8:abcd:12::/64 dev lo") == 0;
        ok &= sh("ip -n " + S + " addr add 2001:db8:fb::1/128 dev lo") == 0;
        ok &= sh("ip -n " + S + " addr add 198.51.100.1/32 dev lo") == 0;
        ok &= sh("ip -n " + S + " addr add 198.51.100.53/32 dev lo") == 0;
        int i = 1;
        for (const std::string &c : {CR, CL, CD}) {
            std::string n = std::to_string(i), v4 = std::to_string(4 * i);
            std::string cv = "v" + n, sv = "s" + n;
            ok &= sh("ip link add " + cv + "-" + kSuffix.substr(0, 6) + " netns " + c + " type veth peer name " + sv +
                     "-" + kSuffix.substr(0, 6) + " netns " + S) == 0;
            cv += "-" + kSuffix.substr(0, 6);
            sv += "-" + kSuffix.substr(0, 6);
            ok &= sh("ip -n " + c + " addr add 2001:db8:f0:" + n + "::2/64 dev " + cv + " nodad") == 0;
            ok &= sh("ip -n " + S + " addr add 2001:db8:f0:" + n + "::1/64 dev " + sv + " nodad") == 0;
            ok &= sh("ip -n " + c + " addr add 203.0.113." + std::to_string(4 * i + 2) + "/30 dev " + cv) == 0;
            ok &= sh("ip -n " + S + " addr add 203.0.113." + std::to_string(4 * i + 1) + "/30 dev " + sv) == 0;
            ok &= sh("ip -n " + c + " link set " + cv + " up") == 0;
            ok &= sh("ip -n " + S + " link set " + sv + " up") == 0;
            links.emplace_back(c, cv);
            links.emplace_back(S, sv);
            // Every client reaches the legacy endpoint and the DNS server.
            ok &= sh("ip -n " + c + " -6 route add 2001:db8:fb::/64 via 2001:db8:f0:" + n + "::1") == 0;
            ok &= sh("ip -n " + c + " route add 198.51.100.0/24 via 203.0.113." + std::to_string(4 * i + 1)) == 0;
            ++i;
        }
        // cr: the prefix is routed to its owner.
        ok &= sh("ip -n " + CR + " -6 route add 2001:db8:abcd:12::/64 via 2001:db8:f0:1::1") == 0;
        // cd: routed toward a next hop that never answers neighbour discovery.
        ok &= sh("ip -n " + CD + " -6 route add 2001:db8:abcd:12::/64 via 2001:db8:f0:3::99") == 0;
        ok &= sh("ip -n " + CD + " -6 route add 2001:db8:dead::/64 via 2001:db8:f0:3::99") == 0;
        // A new veth drops what it is given until the kernel's link watcher has
        // marked it up and given it a queue (up to a second): wait for that, or
        // the first SYN is lost and retried a second later.
        for (const auto &[ns, dev] : links) {
            bool up = false;
            for (int i = 0; i < 300 && !up; ++i) {
                up = sh("ip -n " + ns + " -o link show dev " + dev + " | grep -q 'qdisc noqueue.*state UP'") == 0;
                if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            ok &= up;
        }
    }
    ~Topology() {
        for (const std::string &n : {S, CR, CL, CD}) sh("ip netns del " + n);
    }
};

// Listeners in srv that write their tag to each connection.
struct Servers {
    std::vector<std::pair<int, std::string>> socks;
    std::atomic<bool> stop{false};
    std::thread t;
    void listen_on(const char *addr, uint16_t port, const std::string &tag) {
        NetnsGuard in(S);
        in6_addr a6;
        bool v6 = inet_pton(AF_INET6, addr, &a6) == 1;
        int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        int rc;
        if (v6) {
            // The AISID is not an address of any interface: FREEBIND lets us bind it.
            setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
            sockaddr_in6 s{};
            s.sin6_family = AF_INET6;
            s.sin6_addr = a6;
            s.sin6_port = htons(port);
            rc = ::bind(fd, reinterpret_cast<sockaddr *>(&s), sizeof s);
        } else {
            setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
            sockaddr_in s{};
            s.sin_family = AF_INET;
            inet_pton(AF_INET, addr, &s.sin_addr);
            s.sin_port = htons(port);
            rc = ::bind(fd, reinterpret_cast<sockaddr *>(&s), sizeof s);
        }
        REQUIRE(rc == 0);
        REQUIRE(::listen(fd, 64) == 0);
        socks.emplace_back(fd, tag);
    }
    void start() {
        t = std::thread([this] {
            while (!stop.load()) {
                std::vector<pollfd> p;
                for (auto &[fd, tag] : socks) p.push_back({fd, POLLIN, 0});
                if (::poll(p.data(), p.size(), 50) <= 0) continue;
                for (size_t i = 0; i < p.size(); ++i)
                    if (p[i].revents & POLLIN) {
                        int c = ::accept(p[i].fd, nullptr, nullptr);
                        if (c < 0) continue;
                        std::string tag = socks[i].second + "\n";
                        (void)!::write(c, tag.data(), tag.size());
                        ::close(c);
                    }
            }
        });
    }
    ~Servers() {
        stop = true;
        if (t.joinable()) t.join();
        for (auto &[fd, tag] : socks) ::close(fd);
    }
};

std::string read_tag(int fd) {
    char b[32];
    ssize_t n = ::read(fd, b, sizeof b - 1);
    std::string s(b, n > 0 ? static_cast<size_t>(n) : 0);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

std::string zone(uint16_t svcb_port) {
    return "$ORIGIN ai.example.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\n"
           "_aisid TXT \"v=aisid1\" \"prefix=2001:db8:abcd:12::/64\"\n"
           "image._object TXT \"code=1\"\ndetection._function TXT \"code=2\"\nyolo._method TXT \"code=1\"\n"
           "yolo.detection.image AAAA 2001:db8:abcd:12:1:2:1:0\n"
           "yolo.detection.image SVCB 1 yolo.legacy.example. port=" + std::to_string(svcb_port) + "\n";
}

struct Attempt {
    int fd = -1;
    aisid_connect_info_t info{};
    aisid_status_t err = AISID_EINVAL;
    std::string tag;
};

// aisid_connect from inside a client namespace.
Attempt connect_in(const std::string &ns, aisid_client_t *c, const char *name, uint16_t port, int timeout = 3000) {
    NetnsGuard in(ns);
    Attempt a;
    a.fd = aisid_connect_ex(c, name, port, timeout, &a.err, &a.info);
    if (a.fd >= 0) {
        a.tag = read_tag(a.fd);
        ::close(a.fd);
    }
    return a;
}

double ms(const Attempt &a) { return a.info.elapsed_us / 1000.0; }

std::string peer(const Attempt &a) {
    char b[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a.info.peer.sin6_addr, b, sizeof b);
    return b;
}

} // namespace

TEST_CASE("aisid_connect in namespaces: AISID routed, not routed, silently lost, remembered per network") {
    aisid::test::skip_unless_root("for network namespaces");
    Topology topo;
    REQUIRE(topo.ok);
    Unbound dns(UnboundOptions()
                    .netns(S)
                    .interface("198.51.100.53")
                    .local_zone("legacy.example.")
                    .local_data({"yolo.legacy.example. 300 IN AAAA 2001:db8:fb::1",
                                 "yolo.legacy.example. 300 IN A 198.51.100.1",
                                 "he.legacy.example. 300 IN AAAA 2001:db8:dead::1",
                                 "he.legacy.example. 300 IN A 198.51.100.1"}));
    Servers srv;
    srv.listen_on(kAisid, kAisidPort, "aisid");
    srv.listen_on("2001:db8:fb::1", kLegacyPort, "legacy");
    srv.listen_on("198.51.100.1", kLegacyPort, "legacy4");
    srv.start();

    TempDir d;
    aisid_client_t *c = nullptr;
    REQUIRE(aisid_client_new_flags(&c, AISID_CLIENT_NO_HOST_ZONES | AISID_CLIENT_NO_WATCH) == AISID_OK);
    REQUIRE(aisid_client_add_zone_file(c, d.write("ai.zone", zone(kLegacyPort)).c_str()) == AISID_OK);
    REQUIRE(aisid_client_set_upstreams(c, dns.addr().c_str()) == AISID_OK);
    const char *name = "yolo.detection.image.ai.example";

    SUBCASE("routed: straight to the AISID, no DNS packet") {
        Attempt a = connect_in(CR, c, name, kAisidPort);
        REQUIRE(a.err == AISID_OK);
        CHECK(a.tag == "aisid");
        CHECK(a.info.path == AISID_PATH_AISID);
        CHECK(a.info.reason == AISID_FALLBACK_NONE);
        CHECK(peer(a) == kAisid);
        CHECK(a.info.attempts == 1);
        MESSAGE("AISID path: " << ms(a) << " ms");
        CHECK(ms(a) < 200);  // generous for a loaded CI host; it is well under a millisecond
        aisid_counters_t k;
        aisid_client_counters(c, &k, sizeof k);
        CHECK(k.connect_aisid_won == 1);
        CHECK(k.legacy_queries == 0);

        // The AISID refuses (nothing on that port): the fallback at once, on its SVCB port.
        aisid_client_forget(c);
        REQUIRE(aisid_client_add_zone_file(c, d.write("ai.zone", zone(kLegacyPort)).c_str()) == AISID_OK);
        Attempt r = connect_in(CR, c, name, kAisidPort + 1);
        REQUIRE(r.err == AISID_OK);
        CHECK(r.tag == "legacy");
        CHECK(r.info.path == AISID_PATH_FALLBACK);
        CHECK(r.info.reason == AISID_FALLBACK_REFUSED);
        CHECK(ntohs(r.info.peer.sin6_port) == kLegacyPort);
        MESSAGE("refused → fallback: " << ms(r) << " ms");
        CHECK(ms(r) < 200);
        // A refusal does not brand the network: the next connect tries the AISID again.
        Attempt again = connect_in(CR, c, name, kAisidPort);
        CHECK(again.tag == "aisid");
    }

    SUBCASE("not routed: ENETUNREACH, the fallback at once, then remembered, then forgotten on a network change") {
        Attempt a = connect_in(CL, c, name, kAisidPort);
        REQUIRE(a.err == AISID_OK);
        CHECK(a.tag == "legacy");
        CHECK(a.info.path == AISID_PATH_FALLBACK);
        CHECK(a.info.reason == AISID_FALLBACK_UNREACHABLE);
        CHECK(peer(a) == "2001:db8:fb::1");
        MESSAGE("unreachable → fallback: " << ms(a) << " ms (includes the legacy DNS lookup)");
        CHECK(ms(a) < 200);  // well under the 250 ms attempt delay: no waiting

        Attempt b = connect_in(CL, c, name, kAisidPort);
        REQUIRE(b.err == AISID_OK);
        CHECK(b.tag == "legacy");
        CHECK(b.info.reason == AISID_FALLBACK_REMEMBERED);
        CHECK(b.info.attempts == 1);  // the AISID was not tried
        MESSAGE("remembered legacy-only network: " << ms(b) << " ms");
        CHECK(ms(b) < 100);

        // The network changes: now it routes the prefix; the client tries the AISID again.
        REQUIRE(sh("ip -n " + CL + " -6 route add 2001:db8:abcd:12::/64 via 2001:db8:f0:2::1") == 0);
        Attempt n = connect_in(CL, c, name, kAisidPort);
        REQUIRE(n.err == AISID_OK);
        CHECK(n.tag == "aisid");
        CHECK(n.info.path == AISID_PATH_AISID);

        aisid_counters_t k;
        aisid_client_counters(c, &k, sizeof k);
        CHECK(k.connect_fallback_won == 2);
        CHECK(k.connect_aisid_won == 1);
        CHECK(k.fallback_unreachable == 1);
        CHECK(k.fallback_remembered == 1);
    }

    SUBCASE("silently lost: the fallback after the attempt delay, raced, the first connected wins") {
        Attempt a = connect_in(CD, c, name, kAisidPort);
        REQUIRE(a.err == AISID_OK);
        CHECK(a.tag == "legacy");
        CHECK(a.info.path == AISID_PATH_FALLBACK);
        CHECK(a.info.reason == AISID_FALLBACK_DELAY);
        CHECK(a.info.attempts == 2);
        MESSAGE("no answer → fallback after the delay: " << ms(a) << " ms");
        CHECK(ms(a) >= 250);
        CHECK(ms(a) < 1000);

        Attempt b = connect_in(CD, c, name, kAisidPort);
        CHECK(b.info.reason == AISID_FALLBACK_REMEMBERED);
        MESSAGE("then remembered: " << ms(b) << " ms");
        CHECK(ms(b) < 100);

        // A shorter attempt delay is honoured (configurable).
        aisid_client_forget(c);
        REQUIRE(aisid_client_set_attempt_delay(c, 100) == AISID_OK);
        Attempt s = connect_in(CD, c, name, kAisidPort);
        CHECK(s.info.reason == AISID_FALLBACK_DELAY);
        MESSAGE("with a 100 ms delay: " << ms(s) << " ms");
        CHECK(ms(s) >= 100);
        CHECK(ms(s) < 250);
        aisid_counters_t k;
        aisid_client_counters(c, &k, sizeof k);
        CHECK(k.fallback_delay == 2);
        CHECK(k.fallback_remembered == 1);
    }

    SUBCASE("legacy name: Happy Eyeballs v2 from a lost AAAA to the A after the attempt delay") {
        Attempt a = connect_in(CD, c, "he.legacy.example", kLegacyPort);
        REQUIRE(a.err == AISID_OK);
        CHECK(a.tag == "legacy4");
        CHECK(a.info.path == AISID_PATH_LEGACY);
        CHECK(peer(a) == "::ffff:198.51.100.1");
        CHECK(a.info.attempts == 2);
        MESSAGE("Happy Eyeballs AAAA→A: " << ms(a) << " ms");
        CHECK(ms(a) >= 250);
        CHECK(ms(a) < 1000);
    }

    SUBCASE("one client, many threads, three networks at once") {
        std::atomic<int> right{0}, wrong{0};
        std::vector<std::thread> ts;
        for (int t = 0; t < 6; ++t)
            ts.emplace_back([&, t] {
                const std::string &ns = t % 2 ? CR : CL;
                for (int i = 0; i < 10; ++i) {
                    Attempt a = connect_in(ns, c, name, kAisidPort);
                    bool ok = a.err == AISID_OK && a.tag == (t % 2 ? "aisid" : "legacy");
                    ok ? ++right : ++wrong;
                }
            });
        for (auto &t : ts) t.join();
        CHECK(wrong.load() == 0);
        CHECK(right.load() == 60);
    }
    aisid_client_free(c);
}
