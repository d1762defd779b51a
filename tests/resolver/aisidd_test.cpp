// aisidd end to end: the real daemon, a real Unbound upstream, and real clients
// (dig, kdig, drill) on free loopback ports.
#include "aisidd.hpp"
#include "dns_query.hpp"
#include "legacy_upstream.hpp"
#include "net.hpp"
#include "paths.hpp"
#include "skip.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <regex>
#include <set>
#include <thread>

using namespace aisid::test;
using namespace std::chrono_literals;

TEST_CASE("AISID names are answered authoritatively, over UDP and TCP, by dig, kdig and drill") {
    skip_unless_program("kdig", "package knot-dnsutils");
    skip_unless_program("drill", "package ldnsutils");
    Unbound ub(legacy_upstream());
    Aisidd d(AisiddOptions().example_zone().upstream(ub.addr()));
    for (const char *tcp : {"+notcp", "+tcp"}) {
        CAPTURE(tcp);
        // Rule 1: a registered service's explicit AAAA.
        std::string o = dig(d.port, {tcp, "yolo.detection.image.ai.example", "AAAA"});
        CHECK(status_of(o) == "NOERROR");
        CHECK(has_flag(o, "aa"));
        CHECK(o.find("IN\tAAAA\t2001:db8:abcd:12:1:2:1:0") != std::string::npos);
        CHECK(o.find("udp: 1232") != std::string::npos);  // EDNS0, our payload size
        // Rule 2: synthesized, with performance and a wildcard method.
        o = dig(d.port, {tcp, "+short", "P5000.Detection.image.ai.example", "AAAA"});
        CHECK(o == "2001:db8:abcd:12:1:2:0:1388\n");
        // SVCB, TXT, SOA, NS of the zone.
        CHECK(dig(d.port, {tcp, "+short", "yolo.detection.image.ai.example", "SVCB"}) ==
              "1 yolo-detection-image.legacy.provider.example. port=443\n");
        CHECK(dig(d.port, {tcp, "+short", "_aisid.ai.example", "TXT"}) == "\"v=aisid1\" \"prefix=2001:db8:abcd:12::/64\"\n");
        CHECK(dig(d.port, {tcp, "+short", "ai.example", "SOA"}) == "ns.ai.example. admin.ai.example. 2026112501 3600 600 86400 60\n");
        CHECK(dig(d.port, {tcp, "+short", "ai.example", "NS"}) == "ns.ai.example.\n");
        // Another type at an existing name: NODATA with the SOA.
        o = dig(d.port, {tcp, "yolo.detection.image.ai.example", "A"});
        CHECK(status_of(o) == "NOERROR");
        CHECK(o.find("ANSWER: 0, AUTHORITY: 1") != std::string::npos);
        CHECK(o.find("ai.example.\t\t60\tIN\tSOA") != std::string::npos);
        // Unknown names: NXDOMAIN with the SOA, never forwarded.
        o = dig(d.port, {tcp, "nope.detection.image.ai.example", "AAAA"});
        CHECK(status_of(o) == "NXDOMAIN");
        CHECK(has_flag(o, "aa"));
        CHECK(o.find("IN\tSOA\tns.ai.example.") != std::string::npos);
        // A triple with no registered service.
        CHECK(status_of(dig(d.port, {tcp, "yolo.detection.text.ai.example", "AAAA"})) == "NXDOMAIN");
        // PTR for addresses inside the prefix.
        CHECK(dig(d.port, {tcp, "+short", "-x", "2001:db8:abcd:12:1:2:1:1388"}) == "p5000.yolo.detection.image.ai.example.\n");
        CHECK(dig(d.port, {tcp, "+short", "-x", "2001:db8:abcd:12:1:2::"}) == "detection.image.ai.example.\n");
        o = dig(d.port, {tcp, "-x", "2001:db8:abcd:12:7:7:7:0"});
        CHECK(status_of(o) == "NXDOMAIN");
        CHECK(has_flag(o, "aa"));
    }
    // kdig and drill, UDP and TCP.
    auto k = run({"kdig", "@127.0.0.1", "-p", std::to_string(d.port), "+short", "yolo.detection.video.ai.example", "AAAA"});
    CHECK(k.out == "2001:db8:abcd:12:4:2:1:0\n");
    k = run({"kdig", "@127.0.0.1", "-p", std::to_string(d.port), "+tcp", "+short", "yolo.detection.video.ai.example", "AAAA"});
    CHECK(k.out == "2001:db8:abcd:12:4:2:1:0\n");
    k = run({"kdig", "@127.0.0.1", "-p", std::to_string(d.port), "+tcp", "missing.ai.example", "AAAA"});
    CHECK(k.out.find("status: NXDOMAIN") != std::string::npos);
    auto dr = run({"drill", "-p", std::to_string(d.port), "clip.captioning.video.ai.example", "@127.0.0.1", "AAAA"});
    CHECK(dr.out.find("rcode: NOERROR") != std::string::npos);
    CHECK(dr.out.find("2001:db8:abcd:12:4:9:c:0") != std::string::npos);
    CHECK(dr.out.find("flags: qr aa") != std::string::npos);
    dr = run({"drill", "-t", "-p", std::to_string(d.port), "gpt.generation.text.ai.example", "@127.0.0.1", "SVCB"});
    CHECK(dr.out.find("gpt-generation-text.legacy.provider.example.") != std::string::npos);
    // Nothing about AISID names reached Unbound: it logs nothing, but aisidd's metrics would show
    // forwards; checked in the metrics test. Clean exit on SIGTERM.
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("aisidd listens on IPv6 loopback too") {
    skip_unless_program("kdig", "package knot-dnsutils");
    Aisidd p(AisiddOptions().listen("[::1]:" + std::to_string(free_port())).example_zone().upstream("127.0.0.1:9"));
    const int port = p.port;
    auto r = run({"dig", "@::1", "-p", std::to_string(port), "+short", "yolo.detection.image.ai.example", "AAAA"});
    CHECK(r.out == "2001:db8:abcd:12:1:2:1:0\n");
    r = run({"kdig", "@::1", "-p", std::to_string(port), "+tcp", "+short", "yolo.detection.image.ai.example", "AAAA"});
    CHECK(r.out == "2001:db8:abcd:12:1:2:1:0\n");
    CHECK(p.stop() == 0);
}

TEST_CASE("legacy names are forwarded to Unbound, cached with TTLs counting down, negative answers cached") {
    Unbound ub(legacy_upstream());
    Aisidd d(AisiddOptions().example_zone().upstream(ub.addr()).workers(1).metrics());
    std::string o = dig(d.port, {"www.legacy.example", "A"});
    CHECK(status_of(o) == "NOERROR");
    CHECK(!has_flag(o, "aa"));  // not ours
    CHECK(has_flag(o, "ra"));
    CHECK(o.find("www.legacy.example.\t300\tIN\tA\t192.0.2.10") != std::string::npos);
    CHECK(dig(d.port, {"+tcp", "+short", "WWW.Legacy.Example", "AAAA"}) == "2001:db8:1::10\n");
    o = dig(d.port, {"nx.legacy.example", "A"});
    CHECK(status_of(o) == "NXDOMAIN");
    CHECK(o.find("legacy.example.\t\t120\tIN\tSOA") != std::string::npos);
    std::this_thread::sleep_for(2100ms);
    // Unbound stops: the cache answers, TTLs counted down.
    ub.stop();
    o = dig(d.port, {"www.legacy.example", "A"});
    CHECK(status_of(o) == "NOERROR");
    std::smatch m;
    REQUIRE(std::regex_search(o, m, std::regex("www.legacy.example.\t([0-9]+)\tIN\tA")));
    int ttl = std::stoi(m[1]);
    CHECK(ttl <= 298);
    CHECK(ttl >= 290);
    // RFC 2308: the NXDOMAIN is cached as well.
    o = dig(d.port, {"nx.legacy.example", "A"});
    CHECK(status_of(o) == "NXDOMAIN");
    CHECK(o.find("\tIN\tSOA\t") != std::string::npos);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("upstream stopped: cache, then serve-stale, then SERVFAIL") {
    Unbound ub(legacy_upstream());
    Aisidd d(
        AisiddOptions().example_zone().upstream(ub.addr()).workers(1).arg("--upstream-timeout").arg("300").metrics());
    CHECK(dig(d.port, {"+short", "short.legacy.example", "A"}) == "192.0.2.11\n");  // TTL 2
    ub.stop();
    CHECK(dig(d.port, {"+short", "short.legacy.example", "A"}) == "192.0.2.11\n");  // still fresh: cache
    std::this_thread::sleep_for(2500ms);
    // Expired and no upstream answers: RFC 8767 stale answer with TTL 30.
    std::string o = dig(d.port, {"short.legacy.example", "A"});
    CHECK(status_of(o) == "NOERROR");
    CHECK(o.find("short.legacy.example.\t2\tIN\tA\t192.0.2.11") != std::string::npos);  // min(orig, 30)
    // Never seen: nothing to serve.
    o = dig(d.port, {"www.legacy.example", "A"});
    CHECK(status_of(o) == "SERVFAIL");
    std::string met = d.metrics();
    CHECK(metric(met, "aisidd_queries_total{outcome=\"stale\"}") == 1);
    CHECK(metric(met, "aisidd_queries_total{outcome=\"servfail\"}") == 1);
    CHECK(metric(met, "aisidd_upstream_up{upstream=\"" + ub.addr() + "\"}") == 0);
    // Unbound comes back: answers again.
    ub.start();
    // Its first answer may race Unbound's start under load: a client retries.
    std::string back;
    for (int i = 0; i < 5 && back != "192.0.2.10\n"; ++i) {
        if (i) std::this_thread::sleep_for(200ms);
        back = dig(d.port, {"+short", "www.legacy.example", "A"});
    }
    CHECK(back == "192.0.2.10\n");
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("failover: a dead and a silent upstream before a working one") {
    Unbound ub(legacy_upstream());
    // A UDP socket that never answers: a timeout, not a refusal.
    int silent = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    bind(silent, reinterpret_cast<sockaddr *>(&a), sizeof a);
    socklen_t l = sizeof a;
    getsockname(silent, reinterpret_cast<sockaddr *>(&a), &l);
    int dead = free_port();  // nothing listens: ICMP port unreachable
    Aisidd d(AisiddOptions()
                 .example_zone()
                 .upstream("127.0.0.1:" + std::to_string(ntohs(a.sin_port)))
                 .upstream("127.0.0.1:" + std::to_string(dead))
                 .upstream(ub.addr())
                 .args({"--upstream-timeout", "300"})
                 .workers(1));
    CHECK(dig(d.port, {"+short", "www.legacy.example", "A"}) == "192.0.2.10\n");
    // The silent one saw our query with a random ID, and only the server asked may answer:
    // a forged answer from elsewhere is ignored (checked via the core in unit tests).
    char buf[512];
    ssize_t n = recv(silent, buf, sizeof buf, MSG_DONTWAIT);
    CHECK(n > 12);
    close(silent);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("truncation over UDP, then the full answer over TCP (local zone and forwarded)") {
    skip_unless_program("kdig", "package knot-dnsutils");
    std::string big;
    for (int i = 0; i < 12; ++i) big += " \"" + std::string(100, char('a' + i)) + "\"";
    TempDir z;
    std::string zone = read_file(example_zone_path()) + "big TXT" + big + "\nbig TXT \"another\"" + big + "\n";
    write_file(z.file("ai.example.zone"), zone);
    std::vector<std::string> ld;
    ld.push_back("bigtxt.legacy.example. 300 IN TXT" + big);
    ld.push_back("bigtxt.legacy.example. 300 IN TXT \"x\"" + big);
    Unbound ub(legacy_upstream(ld));
    Aisidd d(AisiddOptions().upstream(ub.addr()).zone(z.file("ai.example.zone")));
    for (std::string name : {"big.ai.example", "bigtxt.legacy.example"}) {
        CAPTURE(name);
        std::string o = dig(d.port, {"+ignore", "+notcp", name, "TXT"});
        CHECK(has_flag(o, "tc"));
        CHECK(o.find("ANSWER: 0") != std::string::npos);
        o = dig(d.port, {"+bufsize=512", "+ignore", "+notcp", name, "TXT"});
        CHECK(has_flag(o, "tc"));
        // dig retries over TCP on TC by default.
        o = dig(d.port, {name, "TXT"});
        CHECK(!has_flag(o, "tc"));
        CHECK(o.find("ANSWER: 2") != std::string::npos);
        auto k = run({"kdig", "@127.0.0.1", "-p", std::to_string(d.port), "+tcp", name, "TXT"});
        CHECK(k.out.find("ANSWER: 2") != std::string::npos);
    }
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("malformed queries get FORMERR or are dropped - the daemon keeps answering") {
    Aisidd d(AisiddOptions().example_zone().upstream("127.0.0.1:9"));
    // Shorter than a header: dropped.
    CHECK(udp_ask(d.port, std::string("\x12\x34\x01", 3), 300).empty());
    // A response (QR set): dropped, never answered (no reflection loops).
    CHECK(udp_ask(d.port, raw_query(7, "ai.example", 6, 0x8100), 300).empty());
    // A compression loop in the question: FORMERR with the same ID.
    std::string loop = std::string("\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", 18);
    std::string r = udp_ask(d.port, loop);
    CHECK(msg_id(r) == 0xabcd);
    CHECK(msg_rcode(r) == 1);
    // Two questions: FORMERR.
    std::string two = raw_query(9, "ai.example", 6);
    two[5] = 2;
    CHECK(msg_rcode(udp_ask(d.port, two)) == 1);
    // Truncated mid-question and trailing garbage: FORMERR.
    std::string q = raw_query(10, "yolo.detection.image.ai.example", 28);
    CHECK(msg_rcode(udp_ask(d.port, q.substr(0, q.size() - 3))) == 1);
    CHECK(msg_rcode(udp_ask(d.port, q + "junk")) == 1);
    // EDNS version 1: BADVERS (extended rcode 16 → 0 in the header, 1 in the OPT).
    std::string v1 = raw_query(11, "ai.example", 6, 0x0100, true);
    v1[v1.size() - 5] = 1;
    r = udp_ask(d.port, v1);
    REQUIRE(r.size() > 12);
    CHECK(msg_rcode(r) == 0);
    CHECK(uint8_t(r[r.size() - 6]) == 1);
    // Random bytes.
    for (int i = 0; i < 200; ++i) {
        std::string junk(12 + size_t(i % 50), '\0');
        for (auto &c : junk) c = char(rand());
        junk[2] &= 0x7f;
        udp_ask(d.port, junk, 5);
    }
    // A broken message over TCP closes that connection only.
    int fd = tcp_connect(d.port);
    REQUIRE(fd >= 0);
    send_all(fd, framed(std::string("\x00\x01\x01\x00\x00\x01\x00\x00", 8)));
    std::string t = tcp_read_msg(fd);
    CHECK((t.empty() || msg_rcode(t) == 1));
    close(fd);
    // Still answering, UDP and TCP.
    CHECK(dig(d.port, {"+short", "yolo.detection.image.ai.example", "AAAA"}) == "2001:db8:abcd:12:1:2:1:0\n");
    CHECK(dig(d.port, {"+tcp", "+short", "yolo.detection.image.ai.example", "AAAA"}) == "2001:db8:abcd:12:1:2:1:0\n");
    CHECK(d.proc.running());
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("UPDATE/NOTIFY get NOTIMP and AXFR/IXFR REFUSED without an authority side") {
    Aisidd d(AisiddOptions().example_zone().upstream("127.0.0.1:9"));
    CHECK(msg_rcode(udp_ask(d.port, raw_query(1, "ai.example", 6, 0x2800))) == 4);  // UPDATE
    CHECK(msg_rcode(udp_ask(d.port, raw_query(2, "ai.example", 6, 0x2000))) == 4);  // NOTIFY
    int fd = tcp_connect(d.port);
    REQUIRE(fd >= 0);
    send_all(fd, framed(raw_query(3, "ai.example", 252, 0)));
    CHECK(msg_rcode(tcp_read_msg(fd)) == 5);
    send_all(fd, framed(raw_query(4, "ai.example", 251, 0)));
    CHECK(msg_rcode(tcp_read_msg(fd)) == 5);
    close(fd);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("TCP: pipelined queries on one connection, idle connections closed") {
    Unbound ub(legacy_upstream());
    Aisidd d(AisiddOptions().example_zone().upstream(ub.addr()).args({"--tcp-idle-timeout", "400"}));
    int fd = tcp_connect(d.port);
    REQUIRE(fd >= 0);
    // Three queries in one write, one of them forwarded (its answer may come last).
    send_all(fd, framed(raw_query(101, "www.legacy.example", 1)) + framed(raw_query(102, "yolo.detection.image.ai.example", 28)) +
                     framed(raw_query(103, "nope.ai.example", 28)));
    std::set<uint16_t> ids;
    for (int i = 0; i < 3; ++i) {
        std::string m = tcp_read_msg(fd);
        REQUIRE(!m.empty());
        ids.insert(msg_id(m));
        if (msg_id(m) == 101) CHECK(msg_ancount(m) == 1);
        if (msg_id(m) == 102) CHECK(msg_ancount(m) == 1);
        if (msg_id(m) == 103) CHECK(msg_rcode(m) == 3);
    }
    CHECK(ids == std::set<uint16_t>{101, 102, 103});
    // RFC 7766 §6.2.3: the server closes an idle connection.
    auto t0 = std::chrono::steady_clock::now();
    CHECK(tcp_read_msg(fd, 3000).empty());
    auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited < 2500ms);
    char c;
    CHECK(recv(fd, &c, 1, MSG_DONTWAIT) == 0);  // EOF, not a timeout
    close(fd);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("access control: loopback by default, --deny and --allow, REFUSED otherwise") {
    Aisidd d(AisiddOptions()
                 .example_zone()
                 .upstream("127.0.0.1:9")
                 .args({"--deny", "127.0.0.0/8", "--allow", "127.0.0.3/32"}));
    std::string q = raw_query(5, "yolo.detection.image.ai.example", 28);
    CHECK(msg_rcode(udp_ask(d.port, q, 1000, "127.0.0.2")) == 5);
    CHECK(msg_rcode(udp_ask(d.port, q, 1000, "127.0.0.1")) == 5);
    std::string ok = udp_ask(d.port, q, 1000, "127.0.0.3");
    CHECK(msg_rcode(ok) == 0);
    CHECK(msg_ancount(ok) == 1);
    auto r = run({"dig", "@127.0.0.1", "-p", std::to_string(d.port), "-b", "127.0.0.2", "yolo.detection.image.ai.example", "AAAA"});
    CHECK(status_of(r.out) == "REFUSED");
    r = run({"dig", "@127.0.0.1", "-p", std::to_string(d.port), "-b", "127.0.0.3", "+tcp", "+short", "yolo.detection.image.ai.example", "AAAA"});
    CHECK(r.out == "2001:db8:abcd:12:1:2:1:0\n");
    CHECK(d.proc.stop() == 0);

    Aisidd plain(AisiddOptions().example_zone().upstream("127.0.0.1:9")); // the default: every loopback client
    CHECK(msg_rcode(udp_ask(plain.port, q, 1000, "127.0.0.2")) == 0);
    CHECK(plain.proc.stop() == 0);
}

TEST_CASE("SIGHUP reloads zones and config atomically - a broken zone keeps the old data") {
    TempDir z;
    std::string path = z.file("ai.example.zone");
    std::string good = read_file(example_zone_path());
    write_file(path, good);
    write_file(z.file("aisidd.conf"), "# test config\nzone = " + path + "\nupstream = 127.0.0.1:9\nlog-level = info\n");
    Aisidd d(AisiddOptions().args({"--config", z.file("aisidd.conf")}));
    CHECK(dig(d.port, {"+short", "sam.segmentation.text.ai.example", "AAAA"}).empty());
    // Register a service and reload.
    write_file(path, good + "sam.segmentation.text AAAA 2001:db8:abcd:12:2:3:b:0\n");
    d.proc.signal(SIGHUP);
    std::string o;
    for (int i = 0; i < 50 && o.empty(); ++i) {
        std::this_thread::sleep_for(50ms);
        o = dig(d.port, {"+short", "sam.segmentation.text.ai.example", "AAAA"});
    }
    CHECK(o == "2001:db8:abcd:12:2:3:b:0\n");
    // Break the zone: a syntax error on a known line.
    int lines = int(std::count(good.begin(), good.end(), '\n'));
    write_file(path, good + "broken AAAA not-an-address\n");
    d.proc.signal(SIGHUP);
    std::string err;
    for (int i = 0; i < 50; ++i) {
        std::this_thread::sleep_for(50ms);
        err = d.proc.err();
        if (err.find("reload failed") != std::string::npos) break;
    }
    CHECK(err.find("reload failed") != std::string::npos);
    CHECK(err.find(path + ":" + std::to_string(lines + 1) + ":") != std::string::npos);
    // The old data is still served, all of it.
    CHECK(dig(d.port, {"+short", "sam.segmentation.text.ai.example", "AAAA"}) == "2001:db8:abcd:12:2:3:b:0\n");
    CHECK(dig(d.port, {"+short", "yolo.detection.image.ai.example", "AAAA"}) == "2001:db8:abcd:12:1:2:1:0\n");
    // A broken config file is refused as well.
    write_file(z.file("aisidd.conf"), "zone = " + path + "\nupstream = not an address\n");
    d.proc.signal(SIGHUP);
    for (int i = 0; i < 50; ++i) {
        std::this_thread::sleep_for(50ms);
        if (d.proc.err().find("aisidd.conf:2:") != std::string::npos) break;
    }
    CHECK(d.proc.err().find("aisidd.conf:2:") != std::string::npos);
    CHECK(dig(d.port, {"+short", "yolo.detection.image.ai.example", "AAAA"}) == "2001:db8:abcd:12:1:2:1:0\n");
    CHECK(d.proc.stop() == 0);
    CHECK(d.proc.err().find("exiting on SIGTERM") != std::string::npos);
}

TEST_CASE("metrics: Prometheus text with outcomes, latency, cache, upstreams and zones") {
    Unbound ub(legacy_upstream());
    Aisidd d(AisiddOptions().example_zone().upstream(ub.addr()).metrics());
    dig(d.port, {"yolo.detection.image.ai.example", "AAAA"});
    dig(d.port, {"nope.ai.example", "AAAA"});
    dig(d.port, {"www.legacy.example", "A"});
    dig(d.port, {"+tcp", "www.legacy.example", "A"});
    dig(d.port, {"+tcp", "www.legacy.example", "A"});
    std::string m = d.metrics();
    CHECK(m.rfind("HTTP/1.1 200 OK", 0) == 0);
    CHECK(m.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    CHECK(metric(m, "aisidd_queries_total{outcome=\"aisid\"}") == 1);
    CHECK(metric(m, "aisidd_queries_total{outcome=\"aisid_nxdomain\"}") == 1);
    double fwd = metric(m, "aisidd_queries_total{outcome=\"forwarded\"}"), hit = metric(m, "aisidd_queries_total{outcome=\"cache_hit\"}");
    CHECK(fwd >= 1);
    CHECK(fwd + hit == 3);
    CHECK(metric(m, "aisidd_query_duration_seconds_count") == 5);
    CHECK(metric(m, "aisidd_query_duration_seconds_bucket{le=\"+Inf\"}") == 5);
    CHECK(metric(m, "aisidd_cache_entries") >= 1);
    CHECK(metric(m, "aisidd_cache_evictions_total") == 0);
    CHECK(metric(m, "aisidd_upstream_up{upstream=\"" + ub.addr() + "\"}") == 1);
    CHECK(metric(m, "aisidd_upstream_rtt_seconds{upstream=\"" + ub.addr() + "\"}") > 0);
    CHECK(metric(m, "aisidd_zone_serial{zone=\"ai.example.\"}") == 2026112501);
    CHECK(metric(m, "aisidd_zone_loaded_timestamp_seconds{zone=\"ai.example.\"}") > 1.7e9);
    CHECK(metric(m, "aisidd_zone_services{zone=\"ai.example.\"}") == 20);
    CHECK(http_get(d.metrics_port, "/other").rfind("HTTP/1.1 404", 0) == 0);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("the cache keeps to its memory bound by evicting") {
    std::vector<std::string> ld;
    for (int i = 0; i < 60; ++i) ld.push_back("n" + std::to_string(i) + ".legacy.example. 300 IN TXT \"" + std::string(200, 'x') + "\"");
    Unbound ub(legacy_upstream(ld));
    Aisidd d(AisiddOptions().example_zone().upstream(ub.addr()).workers(1).arg("--cache-size").arg("8K").metrics());
    for (int i = 0; i < 60; ++i) CHECK(!dig(d.port, {"+short", "n" + std::to_string(i) + ".legacy.example", "TXT"}).empty());
    std::this_thread::sleep_for(100ms);  // cache gauges are published every 20 ms
    std::string m = d.metrics();
    CHECK(metric(m, "aisidd_cache_bytes") <= 8192);
    CHECK(metric(m, "aisidd_cache_entries") >= 5);
    CHECK(metric(m, "aisidd_cache_entries") < 60);
    CHECK(metric(m, "aisidd_cache_evictions_total") >= 60 - metric(m, "aisidd_cache_entries"));
    // The most recent names are still cached: no new forward.
    double fwd = metric(m, "aisidd_queries_total{outcome=\"forwarded\"}");
    CHECK(fwd == 60);
    dig(d.port, {"+short", "n59.legacy.example", "TXT"});
    std::this_thread::sleep_for(100ms);
    m = d.metrics();
    CHECK(metric(m, "aisidd_queries_total{outcome=\"cache_hit\"}") == 1);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("command line and config errors: exit 2 with 'aisidd: ...'") {
    auto r = run({aisidd_path(), "--bogus", "x"});
    CHECK(r.code == 2);
    CHECK(r.err.rfind("aisidd: unknown option 'bogus'", 0) == 0);
    r = run({aisidd_path(), "--upstream", "tls://dns.example:853"});
    CHECK(r.code == 2);
    CHECK(r.err.find("not an IP address") != std::string::npos);
    r = run({aisidd_path(), "--upstream", "http://127.0.0.1/dns-query"});
    CHECK(r.code == 2);
    CHECK(r.err.find("clear-text") != std::string::npos);
    r = run({aisidd_path(), "--ca-file", "/nonexistent/ca.pem", "--upstream", "tls://127.0.0.1:853", "--listen", "127.0.0.1:" + std::to_string(free_port())});
    CHECK(r.code == 2);
    CHECK(r.err.find("--ca-file") != std::string::npos);
    TempDir z;
    write_file(z.file("bad.zone"), "$ORIGIN bad.example.\n$TTL 60\n@ SOA ns admin 1 1 1 1 1\nx AAAA nope\n");
    r = run({aisidd_path(), "--zone", z.file("bad.zone"), "--listen", "127.0.0.1:" + std::to_string(free_port()), "--upstream", "127.0.0.1:9"});
    CHECK(r.code == 2);
    CHECK(r.err.rfind("aisidd: " + z.file("bad.zone") + ":4:", 0) == 0);
    int port = free_port();
    r = run({aisidd_path(), "--listen", "127.0.0.1:" + std::to_string(port), "--upstream", "127.0.0.1:" + std::to_string(port)});
    CHECK(r.code == 2);
    CHECK(r.err.find("forwarding loop") != std::string::npos);
    r = run({aisidd_path(), "--version"});
    CHECK(r.code == 0);
    CHECK(r.out.rfind("aisidd ", 0) == 0);
    r = run({aisidd_path(), "--help"});
    CHECK(r.code == 0);
    CHECK(r.out.find("--upstream") != std::string::npos);
    // The authority options are accepted (their behaviour is tested in tests/lifecycle).
    Aisidd p(AisiddOptions()
                 .upstream("127.0.0.1:9")
                 .state_dir()
                 .args({"--key", "k1:c2VjcmV0c2VjcmV0", "--update-key", "k1", "--secondary",
                        "sec.example=127.0.0.1:5300", "--notify", "127.0.0.1:5301"}));
    CHECK(p.stop() == 0);
}

TEST_CASE("aisid-lookup --server asks aisidd") {
    Unbound ub(legacy_upstream());
    Aisidd d(AisiddOptions().example_zone().upstream(ub.addr()));
    auto r = run({aisid_lookup_path(), "--server", d.addr(), "--json", "p5000.yolo.detection.image.ai.example"});
    CHECK(r.code == 0);
    CHECK(r.out.find("2001:db8:abcd:12:1:2:1:1388") != std::string::npos);
    CHECK(r.out.find("\"source\"") != std::string::npos);
    CHECK(r.out.find("\"prefix\":\"2001:db8:abcd:12::/64\"") != std::string::npos);
    r = run({aisid_lookup_path(), "--server", d.addr(), "nothere.ai.example"});
    CHECK(r.code == 1);
    r = run({aisid_lookup_path(), "--server", d.addr(), "2001:db8:abcd:12:2:4:5:0"});
    CHECK(r.code == 0);
    CHECK(r.out.find("llama.generation.text.ai.example") != std::string::npos);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("a wildcard listener answers from the address it was asked on (PKTINFO)") {
    Unbound ub(legacy_upstream());
    const int port = free_port();
    Aisidd p(AisiddOptions().listen("0.0.0.0:" + std::to_string(port)).example_zone().upstream(ub.addr()));
    // dig rejects a reply from another source address ("reply from unexpected source").
    for (const char *dst : {"127.0.0.2", "127.0.0.3"}) {
        CAPTURE(dst);
        auto r = run({"dig", std::string("@") + dst, "-p", std::to_string(port), "+tries=1", "+time=2", "+short",
                      "yolo.detection.image.ai.example", "AAAA"});
        CHECK(r.out == "2001:db8:abcd:12:1:2:1:0\n");
        r = run({"dig", std::string("@") + dst, "-p", std::to_string(port), "+tries=1", "+time=2", "+short",
                 "www.legacy.example", "A"});
        CHECK(r.out == "192.0.2.10\n");
    }
    CHECK(p.stop() == 0);

    // With the authority on, a signed query is answered by the authority side
    // (another thread, replies handed back): from the address asked too.
    const std::string secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";
    Aisidd a(AisiddOptions()
                 .listen("0.0.0.0:" + std::to_string(port))
                 .example_zone()
                 .upstream(ub.addr())
                 .args({"--key", "k:" + secret, "--update-key", "k"})
                 .state_dir());
    for (const char *dst : {"127.0.0.2", "127.0.0.3"}) {
        CAPTURE(dst);
        auto r = run({"dig", std::string("@") + dst, "-p", std::to_string(port), "+tries=1", "+time=2", "-y",
                      "hmac-sha256:k:" + secret, "yolo.detection.image.ai.example", "AAAA"});
        CHECK(r.out.find("unexpected source") == std::string::npos);
        CHECK(r.out.find("2001:db8:abcd:12:1:2:1:0") != std::string::npos);
        CHECK(r.out.find("TSIG") != std::string::npos);  // signed back
    }
    CHECK(a.stop() == 0);
}

TEST_CASE("TCP: more pipelined forwarded queries than may be in flight are all answered") {
    std::vector<std::string> ld;
    for (int i = 0; i < 150; ++i) ld.push_back("p" + std::to_string(i) + ".legacy.example. 300 IN A 192.0.2." + std::to_string(i % 250 + 1));
    Unbound ub(legacy_upstream(ld));
    Aisidd d(AisiddOptions().example_zone().upstream(ub.addr()).workers(1));
    int fd = tcp_connect(d.port);
    REQUIRE(fd >= 0);
    std::string all;
    for (int i = 0; i < 150; ++i) all += framed(raw_query(uint16_t(1000 + i), "p" + std::to_string(i) + ".legacy.example", 1));
    REQUIRE(send_all(fd, all));
    std::set<uint16_t> ids;
    for (int i = 0; i < 150; ++i) {
        std::string m = tcp_read_msg(fd, 3000);
        if (m.empty()) break;
        CHECK(msg_rcode(m) == 0);
        CHECK(msg_ancount(m) == 1);
        ids.insert(msg_id(m));
    }
    CHECK(ids.size() == 150);
    close(fd);
    CHECK(d.proc.stop() == 0);
}

TEST_CASE("identical questions in flight share one upstream query, in one worker and across four") {
  for (std::string threads : {"1", "4"}) {
    CAPTURE(threads);
    // A slow upstream made here: it answers what it got after 300 ms.
    int up = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    REQUIRE(bind(up, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    socklen_t l = sizeof a;
    getsockname(up, reinterpret_cast<sockaddr *>(&a), &l);
    Aisidd d(AisiddOptions()
                 .example_zone()
                 .upstream("127.0.0.1:" + std::to_string(ntohs(a.sin_port)))
                 .workers(std::stoi(threads)));
    std::vector<int> clients;
    sockaddr_in srv{};
    srv.sin_family = AF_INET;
    srv.sin_port = htons(uint16_t(d.port));
    inet_pton(AF_INET, "127.0.0.1", &srv.sin_addr);
    for (int i = 0; i < 10; ++i) {
        int c = socket(AF_INET, SOCK_DGRAM, 0);
        std::string q = raw_query(uint16_t(500 + i), i % 2 ? "Slow.Legacy.example" : "slow.legacy.example", 1);
        sendto(c, q.data(), q.size(), 0, reinterpret_cast<sockaddr *>(&srv), sizeof srv);
        clients.push_back(c);
    }
    std::vector<std::pair<std::string, sockaddr_in>> got;
    auto end = std::chrono::steady_clock::now() + 300ms;
    while (std::chrono::steady_clock::now() < end) {
        pollfd p{up, POLLIN, 0};
        if (poll(&p, 1, 50) != 1) continue;
        char buf[512];
        sockaddr_in from{};
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(up, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&from), &fl);
        if (n > 12) got.emplace_back(std::string(buf, size_t(n)), from);
    }
    CHECK(got.size() == 1);
    for (auto &[q, from] : got) {
        // Ten clients on ten source ports: with four workers SO_REUSEPORT spreads
    // them, and the first worker to miss asks for all (InflightRegistry).
    // The answer: the question as asked (its OPT dropped), one A record.
        std::string r = q;
        r[2] = char(0x81);
        r[3] = char(0x80);
        r[7] = 1;   // ANCOUNT
        r[11] = 0;  // no OPT
        size_t qend = 12;
        while (r[qend]) qend += size_t(uint8_t(r[qend])) + 1;
        qend += 5;
        r.resize(qend);
        r += std::string("\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x63", 16);
        sendto(up, r.data(), r.size(), 0, reinterpret_cast<sockaddr *>(&from), sizeof from);
    }
    int answered = 0;
    for (size_t i = 0; i < clients.size(); ++i) {
        pollfd p{clients[i], POLLIN, 0};
        if (poll(&p, 1, 2000) == 1) {
            char buf[512];
            ssize_t n = recv(clients[i], buf, sizeof buf, 0);
            std::string m(buf, size_t(std::max<ssize_t>(n, 0)));
            CHECK(msg_id(m) == 500 + i);
            CHECK(msg_ancount(m) == 1);
            answered += msg_ancount(m) == 1;
        }
        close(clients[i]);
    }
    CHECK(answered == 10);
    close(up);
    CHECK(d.proc.stop() == 0);
  }
}

TEST_CASE("one cache for every worker: cached names keep answering when the upstream goes away, same hit ratio "
          "with 1, 2 and 4 workers") {
    std::vector<std::string> data = {"cache1.legacy.example. 3600 IN A 198.51.100.12"};
    for (int i = 0; i < 10; ++i)
        data.push_back("n" + std::to_string(i) + ".legacy.example. 3600 IN A 198.51.100." + std::to_string(20 + i));
    for (std::string threads : {"1", "2", "4"}) {
        CAPTURE(threads);
        Unbound ub(legacy_upstream(data));
        Aisidd d(AisiddOptions()
                     .example_zone()
                     .upstream(ub.addr())
                     .workers(std::stoi(threads))
                     .arg("--upstream-timeout")
                     .arg("1000")
                     .metrics());
        // The upstream answers before the stream starts (not counted below).
        std::string warm;
        for (int i = 0; i < 5 && warm.empty(); ++i) warm = dig(d.port, {"+short", "www.legacy.example", "A"});
        REQUIRE(warm == "192.0.2.10\n");
        std::string met0 = d.metrics();
        // The same query stream for every worker count: 10 names, each asked 3
        // times from new source ports (dig), which SO_REUSEPORT spreads over
        // the workers.
        for (int round = 0; round < 3; ++round)
            for (int i = 0; i < 10; ++i)
                CHECK(dig(d.port, {"+short", "n" + std::to_string(i) + ".legacy.example", "A"}) ==
                      "198.51.100." + std::to_string(20 + i) + "\n");
        std::string met = d.metrics();
        auto delta = [&](const char *m) { return metric(met, m) - metric(met0, m); };
        CHECK(delta("aisidd_queries_total{outcome=\"cache_hit\"}") == 20);
        CHECK(delta("aisidd_queries_total{outcome=\"forwarded\"}") == 10);
        // Asked once, then the upstream goes away: every later answer comes
        // from the cache, whichever worker the query lands on.
        CHECK(dig(d.port, {"+short", "cache1.legacy.example", "A"}) == "198.51.100.12\n");
        ub.stop();
        int noerror = 0;
        for (int i = 0; i < 10; ++i) {
            std::string o = dig(d.port, {"cache1.legacy.example", "A"});
            noerror += status_of(o) == "NOERROR" && o.find("198.51.100.12") != std::string::npos;
        }
        CHECK(noerror == 10);
        CHECK(d.proc.stop() == 0);
    }
}

TEST_CASE("a CNAME from an AISID zone to a legacy name is answered whole: the chain, then the target's records") {
    TempDir z;
    write_file(z.file("ai.example.zone"), read_file(example_zone_path()) +
                                              "web CNAME www.legacy.example.\n"
                                              "gone CNAME nothing.legacy.example.\n");
    Unbound ub(legacy_upstream());
    Aisidd d(AisiddOptions().upstream(ub.addr()).zone(z.file("ai.example.zone")).workers(2));
    for (int round = 0; round < 2; ++round) {  // asked upstream, then from the cache
        CAPTURE(round);
        std::string o = dig(d.port, {"web.ai.example", "A"});
        CHECK(status_of(o) == "NOERROR");
        CHECK(!has_flag(o, "aa"));  // not all of it is our data
        CHECK(o.find("web.ai.example.\t\t300\tIN\tCNAME\twww.legacy.example.") != std::string::npos);
        CHECK(o.find("www.legacy.example.\t") != std::string::npos);
        CHECK(o.find("192.0.2.10") != std::string::npos);
        CHECK(o.find("ANSWER: 2") != std::string::npos);
        // Over TCP too, and for another type.
        o = dig(d.port, {"+tcp", "web.ai.example", "AAAA"});
        CHECK(o.find("2001:db8:1::10") != std::string::npos);
        // The target does not exist: its NXDOMAIN and its zone's SOA after the chain.
        o = dig(d.port, {"gone.ai.example", "A"});
        CHECK(status_of(o) == "NXDOMAIN");
        CHECK(o.find("CNAME\tnothing.legacy.example.") != std::string::npos);
        CHECK(o.find("legacy.example.\t") != std::string::npos);
        CHECK(o.find("SOA") != std::string::npos);
    }
    // Without recursion: the chain alone.
    std::string o = dig(d.port, {"+norecurse", "web.ai.example", "A"});
    CHECK(o.find("ANSWER: 1") != std::string::npos);
    CHECK(d.proc.stop() == 0);
}
