// Faults and security: aisidd against an upstream that misbehaves
// (a fake one the test controls), TCP peers that stall or send half a
// message, bailiwick, upstream ID/port entropy, a client from a non-loopback
// address (a network namespace the test creates), and the journal's disk full
// (a tmpfs the test mounts). Each fault asserts the expected behaviour and
// that the daemon still answers afterwards.
#include "aisidd.hpp"
#include "dns_query.hpp"
#include "fake_upstream.hpp"
#include "net.hpp"
#include "paths.hpp"
#include "skip.hpp"

#include <doctest/doctest.h>

#include <sys/mount.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <set>

using namespace aisid::test;

namespace {

const std::string kAisidName = "yolo.detection.image.ai.example";
const std::string kAisidAddr = "2001:db8:abcd:12:1:2:1:0\n";

// The daemon is alive and still serves its own zone.
void check_alive(Aisidd &d) {
    REQUIRE(d.proc.running());
    CHECK(dig(d.port, {"+short", kAisidName, "AAAA"}) == kAisidAddr);
}

AisiddOptions fast_options(const FakeUpstream &up) {
    return AisiddOptions().example_zone().upstream(up.addr()).args({"--upstream-timeout", "400"}).workers(2);
}

long ms_since(std::chrono::steady_clock::time_point t0) {
    return long(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
}

// The upstream faults, each asserted the same way over IPv4 and IPv6: an
// aisidd forwarding to `up` (with fast_options' 400 ms timeout), asked through
// `ask` (dig at its address), `tag` keeping names apart. `asked(name, tcp)`
// checks how the upstream was asked for a name (IPv6: only ever from ::1).
struct UpstreamFaults {
    FakeUpstream &up;
    std::function<std::string(std::vector<std::string>)> ask;
    std::string tag;
    std::function<bool(const std::string &, bool)> asked;
    const std::string good = std::string(FakeUpstream::kGood) + "\n";

    std::string name(const std::string &base) const { return base + tag + ".legacy.example"; }

    // Silent: SERVFAIL within two tries of 400 ms, not dig's 3 s.
    void silent() {
        up.mode = FakeUpstream::Mode::silent;
        auto t0 = std::chrono::steady_clock::now();
        std::string o = ask({name("silent"), "A"});
        CHECK(status_of(o) == "SERVFAIL");
        CHECK(ms_since(t0) < 2500);
        CHECK(asked(name("silent") + ".", false));
    }
    // Random bytes carrying our ID: SERVFAIL, never an answer section.
    void garbage(int rounds) {
        up.mode = FakeUpstream::Mode::garbage;
        for (int i = 0; i < rounds; ++i) {
            std::string n = name("g" + std::to_string(i));
            std::string o = ask({n, "A"});
            // garbage with a readable header may be a FORMERR/NOTIMP from the upstream
            // → failed, or unparseable → failed/ignored: always SERVFAIL, never data.
            CHECK(status_of(o) == "SERVFAIL");
            CHECK(o.find("ANSWER SECTION") == std::string::npos);
            CHECK(asked(n + ".", false));
        }
    }
    // A bogus answer with another ID, or for another question, first: ignored,
    // the right one served, and nothing cached under the bogus question.
    void mismatched() {
        up.mode = FakeUpstream::Mode::wrong_id_first;
        CHECK(ask({"+short", name("id"), "A"}) == good);
        CHECK(asked(name("id") + ".", false));
        up.mode = FakeUpstream::Mode::wrong_q_first;
        CHECK(ask({"+short", name("q"), "A"}) == good);
        CHECK(asked(name("q") + ".", false));
        up.mode = FakeUpstream::Mode::answer;
        up.clear();
        CHECK(ask({"+short", "bogus.legacy.example", "A"}) == good);
        CHECK(up.count("bogus.legacy.example.") == 1);
    }
    // Right ID from another port: ignored (connected socket); alone, SERVFAIL and never its data.
    void spoofed() {
        up.mode = FakeUpstream::Mode::spoof_first;
        CHECK(ask({"+short", name("spoof1"), "A"}) == good);
        up.mode = FakeUpstream::Mode::spoof_only;
        std::string o = ask({name("spoof2"), "A"});
        CHECK(status_of(o) == "SERVFAIL");
        CHECK(o.find(FakeUpstream::kBogus) == std::string::npos);
        CHECK(asked(name("spoof2") + ".", false));
    }
    // TC over UDP: retried over TCP and answered; half an answer over TCP, then a stall: SERVFAIL in < 4 s.
    void truncated() {
        up.mode = FakeUpstream::Mode::tc_then_tcp;
        CHECK(ask({"+short", name("tc1"), "A"}) == good);
        CHECK(asked(name("tc1") + ".", true));
        up.mode = FakeUpstream::Mode::tc_then_tcp_half;
        auto t0 = std::chrono::steady_clock::now();
        std::string o = ask({"+time=5", name("tc2"), "A"});
        CHECK(status_of(o) == "SERVFAIL");
        CHECK(ms_since(t0) < 4000);
        CHECK(asked(name("tc2") + ".", true));
    }
};

// Over IPv4: asked at least once (over TCP when `tcp`).
UpstreamFaults faults_v4(FakeUpstream &up, int port) {
    return UpstreamFaults{up, [port](std::vector<std::string> a) { return dig(port, std::move(a)); }, "",
                          [&up](const std::string &n, bool tcp) {
                              for (auto &s : up.seen())
                                  if (s.name == n && (!tcp || s.tcp)) return true;
                              return false;
                          }};
}

} // namespace

TEST_CASE("fault: silent upstream gives SERVFAIL within the retry budget and the daemon keeps answering") {
    FakeUpstream up;
    Aisidd d(fast_options(up));
    faults_v4(up, d.port).silent();
    check_alive(d);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("fault: slow upstream within the timeout is answered and beyond it SERVFAIL") {
    FakeUpstream up;
    up.mode = FakeUpstream::Mode::slow;
    up.delay_ms = 200;
    Aisidd d(fast_options(up));
    CHECK(dig(d.port, {"+short", "slow1.legacy.example", "A"}) == std::string(FakeUpstream::kGood) + "\n");
    up.delay_ms = 1500;  // past both tries
    std::string o = dig(d.port, {"+time=5", "slow2.legacy.example", "A"});
    CHECK(status_of(o) == "SERVFAIL");
    up.mode = FakeUpstream::Mode::answer;
    // The late answers that arrive now are for closed sockets: nothing breaks.
    std::this_thread::sleep_for(std::chrono::milliseconds(1600));
    CHECK(dig(d.port, {"+short", "slow3.legacy.example", "A"}) == std::string(FakeUpstream::kGood) + "\n");
    check_alive(d);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("fault: garbage from the upstream is never relayed") {
    FakeUpstream up;
    Aisidd d(fast_options(up));
    faults_v4(up, d.port).garbage(8);
    check_alive(d);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("fault: an answer with a mismatched ID or question is ignored and the right one is used") {
    FakeUpstream up;
    Aisidd d(fast_options(up));
    faults_v4(up, d.port).mismatched();
    check_alive(d);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("fault: spoofed answers from another port are ignored") {
    FakeUpstream up;
    Aisidd d(fast_options(up));
    faults_v4(up, d.port).spoofed();
    check_alive(d);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("fault: truncated upstream answer retried over TCP and a TCP upstream that stalls mid-answer gives SERVFAIL") {
    FakeUpstream up;
    Aisidd d(fast_options(up));
    faults_v4(up, d.port).truncated();
    check_alive(d);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("security: records for other names in an upstream answer are not served from the cache") {
    FakeUpstream up;
    Aisidd d(fast_options(up));
    up.mode = FakeUpstream::Mode::extra_records;
    std::string o = dig(d.port, {"+short", "www.legacy.example", "A"});
    CHECK(o.find(FakeUpstream::kGood) != std::string::npos);
    up.mode = FakeUpstream::Mode::answer;
    up.clear();
    // The victims' names must be asked upstream, and get the upstream's real answer.
    CHECK(dig(d.port, {"+short", "victim.legacy.example", "A"}) == std::string(FakeUpstream::kGood) + "\n");
    CHECK(dig(d.port, {"+short", "victim2.legacy.example", "A"}) == std::string(FakeUpstream::kGood) + "\n");
    CHECK(up.count("victim.legacy.example.") == 1);
    CHECK(up.count("victim2.legacy.example.") == 1);
    // And another type of the question's name (carried in the additional section).
    o = dig(d.port, {"+short", "www.legacy.example", "AAAA"});
    CHECK(o.empty());
    CHECK(up.count("www.legacy.example.") == 1);
    check_alive(d);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("security: upstream query IDs and source ports over 10000 queries") {
    FakeUpstream up;
    Aisidd d(AisiddOptions().example_zone().upstream(up.addr()).args({"--upstream-timeout", "2000"}).workers(2));
    // 10000 distinct names (no cache hits), 64 in flight from one client socket.
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(d.port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    const int total = 10000, window = 64;
    int sent = 0, got = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (got < total && std::chrono::steady_clock::now() < deadline) {
        while (sent < total && sent - got < window) {
            std::string q = raw_query(uint16_t(sent), "e" + std::to_string(sent) + ".legacy.example", 1);
            sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr *>(&a), sizeof a);
            ++sent;
        }
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 3000) != 1) {
            // A lost reply: count it as answered to move the window; the
            // assertion on seen queries below catches real losses.
            got = sent;
            continue;
        }
        char buf[2048];
        if (recv(fd, buf, sizeof buf, 0) > 0) ++got;
    }
    close(fd);
    auto seen = up.seen();
    REQUIRE(seen.size() >= size_t(total * 0.99));
    std::set<uint16_t> ids, ports;
    std::vector<double> hi(256), lo(256);
    std::map<uint16_t, int> port_count;
    for (auto &s : seen) {
        ids.insert(s.id);
        ports.insert(s.src_port);
        hi[s.id >> 8] += 1;
        lo[s.id & 0xff] += 1;
    }
    // Chi-square of each ID byte against uniform (255 degrees of freedom;
    // 330.5 is the 0.1 % critical value), and Shannon entropy of the IDs.
    auto chi2 = [&](const std::vector<double> &bins) {
        double e = double(seen.size()) / 256, x = 0;
        for (double o : bins) x += (o - e) * (o - e) / e;
        return x;
    };
    auto entropy = [&](const auto &values) {
        std::map<uint32_t, double> c;
        for (auto v : values) c[v] += 1;
        double h = 0, n = double(values.size());
        for (auto &[k, v] : c) h -= v / n * std::log2(v / n);
        return h;
    };
    std::vector<uint32_t> idv, portv;
    for (auto &s : seen) idv.push_back(s.id), portv.push_back(s.src_port);
    double n = double(seen.size());
    // For n uniform draws from N values, E[unique] = N(1 - exp(-n/N)).
    double expect_ids = 65536.0 * (1 - std::exp(-n / 65536.0));
    uint16_t pmin = *ports.begin(), pmax = *ports.rbegin();
    MESSAGE("upstream queries: " << seen.size() << "; unique IDs " << ids.size() << " (uniform: " << int(expect_ids)
                                 << "); ID entropy " << entropy(idv) << " bits (max " << std::log2(n) << ")"
                                 << "; chi2 high byte " << chi2(hi) << ", low byte " << chi2(lo)
                                 << "; unique source ports " << ports.size() << " in [" << pmin << ", " << pmax
                                 << "]; port entropy " << entropy(portv) << " bits");
    CHECK(double(ids.size()) > expect_ids * 0.97);
    CHECK(chi2(hi) < 330.5);
    CHECK(chi2(lo) < 330.5);
    CHECK(entropy(idv) > 13.0);
    // A fresh kernel-chosen port per query: most ports are distinct and spread.
    CHECK(ports.size() > seen.size() / 2);
    CHECK(entropy(portv) > 12.0);
    CHECK(pmax - pmin > 10000);
    check_alive(d);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("fault: TCP peers that stall or send half a message are closed at the idle timeout while others are served") {
    FakeUpstream up;
    Aisidd d(AisiddOptions().example_zone().upstream(up.addr()).args({"--tcp-idle-timeout", "1000"}).workers(1));
    std::string q = raw_query(77, kAisidName, 28);
    std::string f = framed(q);
    int silent = tcp_connect(d.port);           // connects, sends nothing
    int one_byte = tcp_connect(d.port);         // half the length prefix
    int half_msg = tcp_connect(d.port);         // the length and half the message
    int lies = tcp_connect(d.port);             // a length far past what it sends
    REQUIRE(silent >= 0);
    REQUIRE(one_byte >= 0);
    REQUIRE(half_msg >= 0);
    REQUIRE(lies >= 0);
    CHECK(send_all(one_byte, f.substr(0, 1)));
    CHECK(send_all(half_msg, f.substr(0, 2 + q.size() / 2)));
    CHECK(send_all(lies, std::string("\xff\xff", 2) + q));
    // Others are served meanwhile, over UDP and TCP (one worker thread: the
    // stalled peers must not block it).
    CHECK(dig(d.port, {"+short", kAisidName, "AAAA"}) == kAisidAddr);
    int good = tcp_connect(d.port);
    REQUIRE(good >= 0);
    CHECK(send_all(good, f));
    CHECK(msg_id(tcp_read_msg(good)) == 77);
    close(good);
    // Each stalled peer is closed (EOF) by the idle timeout: 1 s, allow 4 s.
    for (int fd : {silent, one_byte, half_msg, lies}) {
        pollfd p{fd, POLLIN, 0};
        bool closed = false;
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(4);
        while (!closed && std::chrono::steady_clock::now() < end) {
            if (poll(&p, 1, 200) == 1) {
                char b[512];
                ssize_t k = recv(fd, b, sizeof b, 0);
                closed = k <= 0;  // a reply to half a message would be a bug too
                CHECK(k <= 0);
            }
        }
        CHECK(closed);
        close(fd);
    }
    // Many stalled peers at once do not stop new ones being served.
    std::vector<int> many;
    for (int i = 0; i < 200; ++i) {
        int fd = tcp_connect(d.port);
        if (fd >= 0) many.push_back(fd), send_all(fd, f.substr(0, 3));
    }
    CHECK(many.size() == 200);
    CHECK(dig(d.port, {"+tcp", "+short", kAisidName, "AAAA"}) == kAisidAddr);
    for (int fd : many) close(fd);
    check_alive(d);
    CHECK(d.proc.stop() == 0);
}

namespace {

// A network namespace with lo up and a TEST-NET address on it, deleted by the destructor.
struct NetNs {
    std::string name;
    bool ok = false;
    NetNs() {
        name = "aisidrel" + std::to_string(getpid());
        ok = run({"ip", "netns", "add", name}).code == 0 &&
             run({"ip", "-n", name, "link", "set", "lo", "up"}).code == 0 &&
             run({"ip", "-n", name, "addr", "add", "192.0.2.53/32", "dev", "lo"}).code == 0;
    }
    ~NetNs() { (void)run({"ip", "netns", "del", name}); }
};

} // namespace

TEST_CASE("security: not an open resolver by default (a non-loopback client gets REFUSED)") {
    skip_unless_root("for a network namespace");
    skip_unless_program("ip", "package iproute2");
    NetNs ns;
    REQUIRE(ns.ok);
    int port = 5300 + getpid() % 1000;  // a fresh namespace: every port is free
    Aisidd d(AisiddOptions()
                 .netns(ns.name)
                 .listen("192.0.2.53:" + std::to_string(port))
                 .listen("127.0.0.1:" + std::to_string(port))
                 .example_zone()
                 .upstream("127.0.0.1:9"));
    auto ask = [&](const std::string &server, const std::string &src, const std::string &name, bool tcp) {
        std::vector<std::string> argv = {"ip", "netns", "exec", ns.name, "dig", "@" + server, "-p", std::to_string(port),
                                         "-b", src, "+tries=1", "+time=2", name, "AAAA"};
        if (tcp) argv.push_back("+tcp");
        return run(argv).out;
    };
    std::string o = ask("127.0.0.1", "127.0.0.1", kAisidName, false);
    REQUIRE_MESSAGE(status_of(o) == "NOERROR", d.log());
    for (bool tcp : {false, true}) {
        // From 192.0.2.53 (not loopback): REFUSED, for AISID and legacy names alike.
        CHECK(status_of(ask("192.0.2.53", "192.0.2.53", kAisidName, tcp)) == "REFUSED");
        CHECK(status_of(ask("192.0.2.53", "192.0.2.53", "www.legacy.example", tcp)) == "REFUSED");
        CHECK(status_of(ask("127.0.0.1", "127.0.0.1", kAisidName, tcp)) == "NOERROR");
    }
    CHECK(d.stop() == 0);
}

namespace {

// A tiny tmpfs mounted on a fresh directory, unmounted by the destructor.
struct TinyFs {
    TempDir dir;
    std::string path;
    bool ok = false;
    explicit TinyFs(const std::string &size) {
        path = dir.file("state");
        mkdir(path.c_str(), 0755);
        ok = mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    }
    ~TinyFs() {
        if (ok) umount2(path.c_str(), MNT_DETACH);
    }
    // Fills the file system but `leave` bytes; the filler file is `fill`.
    void fill(size_t leave) {
        struct statvfs s {};
        statvfs(path.c_str(), &s);
        size_t avail = size_t(s.f_bavail) * s.f_frsize;
        std::string f = path + "/fill";
        int fd = open(f.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        std::string chunk(4096, 'x');
        for (size_t w = 0; w + leave + chunk.size() <= avail;) {
            ssize_t k = write(fd, chunk.data(), chunk.size());
            if (k <= 0) break;
            w += size_t(k);
        }
        close(fd);
    }
    void unfill() { unlink((path + "/fill").c_str()); }
};

const char *kSecret = "c2VjcmV0LWZvci1haXNpZC1yZWxpYWJpbGl0eS10ZXN0cyE=";

CmdResult admin(int port, std::vector<std::string> args) {
    std::vector<std::string> argv{aisid_admin_path(), "--server", "127.0.0.1:" + std::to_string(port), "--key",
                                  std::string("k1:") + kSecret, "--zone", "ai.example"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 20000);
}

} // namespace

TEST_CASE("fault: the journal's disk full refuses updates with SERVFAIL and half-applies nothing") {
    skip_unless_root("to mount a tmpfs");
    TinyFs fs("256k");
    REQUIRE(fs.ok);
    TempDir z;
    std::string zone = z.file("ai.example.zone");
    write_file(zone, read_file(example_zone_path()));
    const AisiddOptions options = AisiddOptions()
                                      .zone(zone)
                                      .upstream("127.0.0.1:9")
                                      .workers(1)
                                      .state_dir(fs.path)
                                      .args({"--key", std::string("k1:") + kSecret, "--update-key", "k1"});
    std::vector<std::string> acked, refused;
    {
        Aisidd d(options);
        auto r = admin(d.port, {"define", "method", "before"});
        REQUIRE_MESSAGE(r.code == 0, r.err);
        acked.push_back("before");
        fs.fill(0);
        // Updates until the disk is full: each is acknowledged or refused, never lost.
        for (int i = 0; i < 40; ++i) {
            std::string term = "full" + std::to_string(i);
            r = admin(d.port, {"define", "method", term});
            if (r.code == 0) acked.push_back(term);
            else {
                refused.push_back(term);
                MESSAGE("refused " << term << ": exit " << r.code << " " << r.err);
            }
            if (refused.size() >= 3) break;
        }
        CHECK(refused.size() >= 1);  // a full disk must refuse
        // The daemon answers; a refused change is nowhere (not in the served zone).
        check_alive(d);
        for (auto &t : refused)
            CHECK(status_of(dig(d.port, {t + "._method.ai.example", "TXT"})) == "NXDOMAIN");
        for (auto &t : acked)
            CHECK(dig(d.port, {"+short", t + "._method.ai.example", "TXT"}).find("code=") != std::string::npos);
        // Space again: updates work again.
        fs.unfill();
        r = admin(d.port, {"define", "method", "after"});
        CHECK_MESSAGE(r.code == 0, r.err);
        if (r.code == 0) acked.push_back("after");
        d.proc.signal(SIGKILL);
        d.proc.wait();
    }
    // After kill -9: every acknowledged change is back, no refused one.
    Aisidd d2(options);
    for (auto &t : acked)
        CHECK_MESSAGE(dig(d2.port, {"+short", t + "._method.ai.example", "TXT"}).find("code=") != std::string::npos, t);
    for (auto &t : refused)
        CHECK(status_of(dig(d2.port, {t + "._method.ai.example", "TXT"})) == "NXDOMAIN");
    check_alive(d2);
    CHECK(d2.proc.stop() == 0);
}

TEST_CASE("fault: kill -9 at random points during updates loses nothing acknowledged and half-applies nothing") {
    TempDir z;
    std::string zone = z.file("ai.example.zone");
    write_file(zone, read_file(example_zone_path()));
    std::string state = z.file("state");
    mkdir(state.c_str(), 0755);
    const AisiddOptions options = AisiddOptions()
                                      .zone(zone)
                                      .upstream("127.0.0.1:9")
                                      .workers(2)
                                      .state_dir(state)
                                      .args({"--key", std::string("k1:") + kSecret, "--update-key", "k1"});
    // Asked until a reply comes (a lost datagram or a slow start must not read
    // as "absent"): present when the reply holds the term's code.
    auto present = [](int port, const std::string &t) {
        std::string o;
        for (int i = 0; i < 5; ++i) {
            o = dig(port, {t + "._method.ai.example", "TXT"});
            if (status_of(o) != "(none)") break;
        }
        INFO("dig for " << t << ": " << o);
        REQUIRE(status_of(o) != "(none)");
        return o.find("code=") != std::string::npos;
    };
    auto serial = [](int port) {
        std::istringstream in(dig(port, {"+short", "ai.example", "SOA"}));
        std::string ns, admin_name;
        unsigned long s = 0;
        in >> ns >> admin_name >> s;
        return s;
    };
    std::mt19937 rng(std::random_device{}());
    std::vector<std::string> acked_all, maybe_all;  // maybe: in flight when killed
    // Each round also adds a name that a zone file must escape and
    // lets the writer compact it, so every restart reads such names back.
    const std::vector<std::string> odd = {"q\\\"uote", "back\\\\slash", "sp\\032ace", "semi\\;colon", "\\$INCLUDE"};
    std::vector<std::string> odd_acked;
    unsigned long escaped = 0;
    unsigned long base = 0;
    for (int round = 0; round < 5; ++round) {
        Aisidd d(options);
        if (round == 0) base = serial(d.port);
        for (auto &t : acked_all)
            CHECK_MESSAGE(present(d.port, t), "acknowledged and lost: " << t << " (round " << round << "); aisidd's log:\n"
                                                                        << d.proc.err());
        for (auto &n : odd_acked)
            CHECK_MESSAGE(dig(d.port, {"+short", n, "TXT"}).find("odd") != std::string::npos,
                          "acknowledged and lost: " << n << " (round " << round << "); aisidd's log:\n" << d.proc.err());
        {
            std::string n = odd[static_cast<size_t>(round) % odd.size()] + std::to_string(round) + ".hosts.ai.example.";
            std::string script = "/tmp/aisid-faults-nsupdate-" + std::to_string(::getpid()) + ".txt";
            write_file(script, "server 127.0.0.1 " + std::to_string(d.port) + "\nzone ai.example.\nupdate add " + n +
                                   " 300 TXT \"odd\"\nsend\n");
            CmdResult r = run({"nsupdate", "-y", std::string("hmac-sha256:k1:") + kSecret, script}, 20000);
            ::unlink(script.c_str());
            REQUIRE_MESSAGE(r.code == 0, r.err);
            odd_acked.push_back(n);
            ++escaped;
            // Quiet for a second: the writer compacts it into the zone file.
            auto t0 = std::chrono::steady_clock::now();
            while (read_file(state + "/ai.example.zone").find(odd[static_cast<size_t>(round) % odd.size()]) ==
                       std::string::npos &&
                   std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        std::atomic<bool> stop{false};
        std::mutex mu;
        std::vector<std::string> acked;
        std::string inflight;
        std::thread th([&] {
            for (int i = 0; !stop; ++i) {
                std::string t = "kill" + std::to_string(round) + "x" + std::to_string(i);
                {
                    std::lock_guard<std::mutex> g(mu);
                    inflight = t;
                }
                auto r = admin(d.port, {"define", "method", t});
                std::lock_guard<std::mutex> g(mu);
                if (r.code == 0) acked.push_back(t), inflight.clear();  // a failed one may still have landed
            }
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 700));
        stop = true;
        d.proc.signal(SIGKILL);
        th.join();
        d.proc.wait();
        std::lock_guard<std::mutex> g(mu);
        acked_all.insert(acked_all.end(), acked.begin(), acked.end());
        if (!inflight.empty()) maybe_all.push_back(inflight);
        MESSAGE("round " << round << ": " << acked.size() << " acknowledged before kill -9"
                         << (inflight.empty() ? "" : ", one in flight: " + inflight));
    }
    CHECK(acked_all.size() >= 5);
    Aisidd d(options);
    size_t n_present = 0;
    for (auto &t : acked_all) {
        bool p = present(d.port, t);
        CHECK_MESSAGE(p, "acknowledged and lost: " << t << "; aisidd's log:\n" << d.proc.err());
        n_present += p;
    }
    for (auto &t : maybe_all) n_present += present(d.port, t);
    for (auto &n : odd_acked)
        CHECK_MESSAGE(dig(d.port, {"+short", n, "TXT"}).find("odd") != std::string::npos, "acknowledged and lost: " << n);
    // Nothing half-applied: each define is one serial step, and the serial
    // counts exactly the changes that are there.
    CHECK(serial(d.port) - base == n_present + escaped);
    check_alive(d);
    CHECK(d.proc.stop() == 0);
}

namespace {

// SIGHUPs spaced 0.2–4 ms apart, so some land while a reload is running
// (back-to-back ones merge into one pending signal and prove nothing).
void sighup_storm(Aisidd &d) {
    int rounds = 0;
    for (; rounds < 400 && d.proc.running(); ++rounds) {
        d.proc.signal(SIGHUP);
        std::this_thread::sleep_for(std::chrono::microseconds(200 + (rounds * 397) % 3800));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK_MESSAGE(d.proc.running(), "aisidd died after " << rounds << " SIGHUPs, exit " << d.proc.exit_code());
    if (d.proc.running()) {
        check_alive(d);
        CHECK(d.proc.stop() == 0);
    }
}

} // namespace

TEST_CASE("fault: SIGHUP storm - the daemon survives every reload") {
    Aisidd d(AisiddOptions().example_zone().upstream("127.0.0.1:9"));
    sighup_storm(d);
}

TEST_CASE("fault: SIGHUP storm with the authority on - the daemon survives every reload") {
    // Signals must reach only the main thread's sigwait: a thread started
    // before the mask is set (the authority's) takes a SIGHUP that arrives
    // mid-reload and the process dies of it (default action).
    TempDir z;
    std::string zone = z.file("ai.example.zone");
    write_file(zone, read_file(example_zone_path()));
    std::string state = z.file("state");
    mkdir(state.c_str(), 0755);
    Aisidd d(AisiddOptions()
                 .zone(zone)
                 .upstream("127.0.0.1:9")
                 .state_dir(state)
                 .args({"--key", std::string("k1:") + kSecret, "--update-key", "k1"}));
    sighup_storm(d);
}

namespace {

// A free privileged TCP+UDP port on 127.0.0.1 (root binds it), or 0.
int free_low_port() {
    for (int p = 999; p > 600; --p) {
        int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(p));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = bind(t, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 &&
                  bind(u, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
        close(t);
        close(u);
        if (ok) return p;
    }
    return 0;
}

std::string status_line(pid_t pid, const std::string &key) {
    std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
    return "";
}

} // namespace

TEST_CASE("security: privileges dropped after binding a privileged port (--user)") {
    skip_unless_root("to bind a privileged port and drop to nobody");
    int low = free_low_port();
    REQUIRE(low != 0);
    Aisidd d(AisiddOptions()
                 .example_zone()
                 .upstream("127.0.0.1:9")
                 .args({"--listen", "127.0.0.1:" + std::to_string(low), "--user", "nobody"}));
    // Bound as root, then running as nobody with no capabilities left. The
    // drop may still be under way when the daemon first answers: wait for it.
    for (int i = 0; i < 100 && status_line(d.proc.pid(), "Uid").find("65534") == std::string::npos; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::istringstream uid(status_line(d.proc.pid(), "Uid"));
    std::string real, eff, saved;
    uid >> real >> eff >> saved;
    CHECK(real == "65534");
    CHECK(eff == "65534");
    CHECK(saved == "65534");
    CHECK(status_line(d.proc.pid(), "CapEff").find("0000000000000000") != std::string::npos);
    CHECK(status_line(d.proc.pid(), "CapPrm").find("0000000000000000") != std::string::npos);
    CHECK(dig(low, {"+short", kAisidName, "AAAA"}) == kAisidAddr);
    d.proc.signal(SIGHUP);  // a reload as the unprivileged user still works
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    check_alive(d);
    CHECK(d.proc.stop() == 0);

    CmdResult bad = run({aisidd_path(), "--listen", "127.0.0.1:" + std::to_string(free_port()), "--upstream",
                         "127.0.0.1:9", "--user", "no-such-user-aisid"});
    CHECK(bad.code == 2);
    CHECK(bad.err.find("aisidd: --user no-such-user-aisid: no such user") != std::string::npos);
}

TEST_CASE("security: a SIGHUP onto an $INCLUDE fan-out or an $INCLUDE outside the zone's directory fails at once and keeps the old zones") {
    TempDir z;
    std::string zone = z.file("ai.example.zone");
    const std::string text = read_file(example_zone_path());
    write_file(zone, text);
    Aisidd d(AisiddOptions().zone(zone).upstream("127.0.0.1:9"));
    // Ten includes per file, seven deep: 10^7 files inside the depth limit.
    for (int level = 0; level < 7; ++level) {
        std::string t;
        for (int i = 0; i < 10; ++i) t += "$INCLUDE l" + std::to_string(level + 1) + ".inc\n";
        write_file(z.file("l" + std::to_string(level) + ".inc"), t);
    }
    write_file(z.file("l7.inc"), "leaf TXT \"x\"\n");
    auto reload_fails_with = [&](const std::string &what) {
        size_t before = d.proc.err().size();
        d.proc.signal(SIGHUP);
        auto t0 = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3) &&
               d.proc.err().find("reload failed", before) == std::string::npos)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        std::string log = d.proc.err().substr(before);
        CHECK_MESSAGE(log.find("reload failed, keeping the old zones") != std::string::npos, log);
        CHECK_MESSAGE(log.find(what) != std::string::npos, log);
        check_alive(d);
        return log;
    };
    write_file(zone, text + "$INCLUDE l0.inc\n");
    reload_fails_with("more than 64 $INCLUDE files");
    write_file(zone, text + "$INCLUDE /etc/passwd\n");
    std::string log = reload_fails_with("outside the zone file's directory");
    CHECK(log.find("root:") == std::string::npos);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("security: --user with --state-dir - the dropped user owns the state directory and compaction works") {
    skip_unless_root("to drop to nobody");
    TempDir z;
    REQUIRE(::chmod(z.path.c_str(), 0755) == 0);
    std::string zone = z.file("ai.example.zone");
    write_file(zone, read_file(example_zone_path()));
    std::string state = z.file("state");  // not there yet: aisidd creates it, as root
    Aisidd d(AisiddOptions()
                 .zone(zone)
                 .upstream("127.0.0.1:9")
                 .state_dir(state)
                 .args({"--key", std::string("k1:") + kSecret, "--update-key", "k1", "--user", "nobody"}));
    struct stat st {};
    REQUIRE(::stat(state.c_str(), &st) == 0);
    CHECK(st.st_uid == 65534);
    CmdResult r = admin(d.port, {"define", "method", "usertest"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    // Quiet for a second: the writer compacts, as nobody, into the directory.
    bool compacted = false;
    for (int i = 0; i < 100 && !compacted; ++i) {
        compacted = read_file(state + "/ai.example.zone").find("usertest") != std::string::npos;
        if (!compacted) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK_MESSAGE(compacted, d.proc.err());
    CHECK_MESSAGE(d.proc.err().find("Permission denied") == std::string::npos, d.proc.err());
    CHECK(d.proc.stop() == 0);
    CHECK(d.proc.err().find("compaction failed") == std::string::npos);
}

namespace {

struct Burst {
    int full = 0, truncated = 0, other = 0, lost = 0;
    double seconds = 0;  // from the first query sent to the last reply read
};

// `n` UDP queries from one socket, sent in rounds of 50 with what has come
// back read in between (the socket buffer never overflows), then up to 1.5 s
// of waiting for the rest; replies classified.
Burst udp_burst(int port, const std::function<std::string(int)> &query, int n) {
    Burst b;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    int got = 0;
    auto t0 = std::chrono::steady_clock::now();
    auto t_last = t0;
    auto drain = [&](int wait_ms) {
        for (;;) {
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, wait_ms) != 1) return;
            char buf[4096];
            ssize_t k = recv(fd, buf, sizeof buf, 0);
            if (k <= 0) return;
            t_last = std::chrono::steady_clock::now();
            std::string m(buf, size_t(k));
            ++got;
            if (uint8_t(m[2]) & 0x02) ++b.truncated;
            else if (msg_rcode(m) == 0 && msg_ancount(m) > 0) ++b.full;
            else ++b.other;
        }
    };
    for (int sent = 0; sent < n;) {
        int round = std::min(50, n - sent);
        for (int i = 0; i < round; ++i) {
            std::string q = query(sent + i);
            REQUIRE(send(fd, q.data(), q.size(), 0) == ssize_t(q.size()));
        }
        sent += round;
        drain(5);
    }
    drain(1500);
    b.lost = n - got;
    b.seconds = std::chrono::duration<double>(t_last - t0).count();
    close(fd);
    return b;
}

} // namespace

TEST_CASE("security: response rate limiting drops and slips UDP replies over the rate - TCP and exempt clients unaffected") {
    Aisidd d(AisiddOptions()
                 .example_zone()
                 .upstream("127.0.0.1:9")
                 .workers(2)
                 .metrics()
                 .args({"--rate-limit", "20", "--rate-limit-slip", "2", "--rate-limit-window", "1"}));
    // One AISID answer asked 300 times in about a second: 20 replies, then
    // every other one truncated (TC) and the rest dropped.
    Burst b = udp_burst(d.port, [](int i) { return raw_query(uint16_t(i), kAisidName, 28); }, 300);
    MESSAGE("full " << b.full << ", truncated " << b.truncated << ", other " << b.other << ", not answered " << b.lost
                    << " in " << b.seconds << " s");
    CHECK(b.full >= 20);
    CHECK(b.full <= 22 + int(20 * b.seconds));  // the rate earns 20 a second, the burst lasts b.seconds
    CHECK(b.other == 0);
    CHECK(b.truncated >= (300 - b.full) / 2 - 2);
    CHECK(b.truncated <= (300 - b.full) / 2 + 2);
    CHECK(b.lost == 300 - b.full - b.truncated);
    std::string met = d.metrics();
    CHECK(metric(met, "aisidd_rate_limited_total{action=\"dropped\"}") == double(b.lost));
    CHECK(metric(met, "aisidd_rate_limited_total{action=\"slipped\"}") == double(b.truncated));
    CHECK(d.proc.err().find("rate limit: ") != std::string::npos);  // the operator sees it in the log
    CHECK(d.proc.err().find("UDP replies held back (dropped or truncated), the last to 127.0.0.1:") != std::string::npos);
    // Over TCP (what a real client does after TC) the answer comes at once.
    CHECK(dig(d.port, {"+tcp", "+short", kAisidName, "AAAA"}) == kAisidAddr);
    // Another answer has its own bucket.
    CHECK(dig(d.port, {"+short", "sam.segmentation.image.ai.example", "AAAA"}) != "");
    // Errors (SERVFAIL: upstream port 9 refuses) for random names share one bucket per client.
    Burst e = udp_burst(d.port, [](int i) { return raw_query(uint16_t(i), "r" + std::to_string(i) + ".legacy.example", 1); }, 60);
    MESSAGE("errors: full " << e.full << ", truncated " << e.truncated << ", other " << e.other << ", not answered "
                            << e.lost << " in " << e.seconds << " s");
    CHECK(e.full == 0);
    CHECK(e.other >= 20);
    CHECK(e.other <= 22 + int(20 * e.seconds));
    CHECK(e.truncated >= 12);
    // A quiet second (the window) pays the flood's debt back.
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    CHECK(dig(d.port, {"+short", kAisidName, "AAAA"}) == kAisidAddr);
    check_alive(d);
    CHECK(d.proc.stop() == 0);

    Aisidd x(AisiddOptions()
                 .example_zone()
                 .upstream("127.0.0.1:9")
                 .args({"--rate-limit", "20", "--rate-limit-exempt", "127.0.0.0/8"}));
    Burst f = udp_burst(x.port, [](int i) { return raw_query(uint16_t(i), kAisidName, 28); }, 300);
    CHECK(f.full == 300);
    CHECK(x.proc.stop() == 0);
}

namespace {

// IPv6 loopback present: `ip -6 addr show lo` lists ::1 (when ip(8) is
// there) and a socket can actually bind [::1].
bool have_ipv6_loopback() {
    if (have_program("ip") && run({"ip", "-6", "addr", "show", "lo"}).out.find("inet6 ::1/") == std::string::npos)
        return false;
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0) return false;
    socklen_t len = 0;
    sockaddr_storage a = loopback_sockaddr(true, 0, len);
    bool ok = bind(fd, reinterpret_cast<sockaddr *>(&a), len) == 0;
    close(fd);
    return ok;
}

// A [::1] port free for both UDP and TCP right now (the kernel picks it).
int free_port6() {
    for (int attempt = 0; attempt < 50; ++attempt) {
        int u = socket(AF_INET6, SOCK_DGRAM, 0), t = socket(AF_INET6, SOCK_STREAM, 0);
        socklen_t len = 0;
        sockaddr_storage a = loopback_sockaddr(true, 0, len);
        socklen_t l = sizeof a;
        int one = 1;
        setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        bool ok = bind(u, reinterpret_cast<sockaddr *>(&a), len) == 0 &&
                  getsockname(u, reinterpret_cast<sockaddr *>(&a), &l) == 0 &&
                  bind(t, reinterpret_cast<sockaddr *>(&a), len) == 0;
        close(t);
        close(u);
        if (ok) return sockaddr_port(a);
    }
    throw std::runtime_error("no free [::1] port");
}

/// dig against [::1]:port; stdout.
std::string dig6(int port, std::vector<std::string> args) {
    std::vector<std::string> argv = {"dig", "@::1", "-p", std::to_string(port), "+tries=1", "+time=3"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv).out;
}

// Queries for `name` reached the fake upstream, every one of them from ::1.
bool asked_over_v6(FakeUpstream &up, const std::string &name, bool want_tcp = false) {
    size_t n = 0;
    bool tcp = false;
    for (auto &s : up.seen()) {
        if (s.name != name) continue;
        if (s.src != "::1") return false;
        ++n;
        tcp |= s.tcp;
    }
    return n >= 1 && (!want_tcp || tcp);
}

} // namespace

TEST_CASE("fault: over IPv6 - silent, mismatched, spoofed, garbage and truncated upstream answers are handled as over IPv4") {
    skip_unless(have_ipv6_loopback(), "no IPv6 loopback");
    const std::string good = std::string(FakeUpstream::kGood) + "\n";
    FakeUpstream up(FakeUpstream::Family::v6);
    REQUIRE(up.addr() == "[::1]:" + std::to_string(up.port));
    // aisidd listens on [::1] only: every client query below travels over IPv6.
    Aisidd d(AisiddOptions()
                 .listen("[::1]:" + std::to_string(free_port6()))
                 .example_zone()
                 .upstream(up.addr())
                 .args({"--upstream-timeout", "400"})
                 .workers(2));
    const int port = d.port;
    CHECK(dig6(port, {"+short", kAisidName, "AAAA"}) == kAisidAddr);
    CHECK(dig6(port, {"+short", "ok6.legacy.example", "A"}) == good);
    CHECK(asked_over_v6(up, "ok6.legacy.example."));

    UpstreamFaults f{up, [port](std::vector<std::string> a) { return dig6(port, std::move(a)); }, "6",
                     [&up](const std::string &n, bool tcp) { return asked_over_v6(up, n, tcp); }};
    f.silent();
    f.mismatched();
    f.spoofed();
    f.garbage(4);
    f.truncated();

    // Still alive: the AISID name over IPv6, UDP and TCP; a clean exit.
    REQUIRE(d.proc.running());
    CHECK(dig6(port, {"+short", kAisidName, "AAAA"}) == kAisidAddr);
    CHECK(dig6(port, {"+tcp", "+short", kAisidName, "AAAA"}) == kAisidAddr);
    CHECK_MESSAGE(d.stop() == 0, d.log());
}
