// The encrypted transports against real servers on loopback: Unbound (DoT and
// DoH, HTTP/2 only) and dnsdist (DoT and DoH), with a CA and certificates made
// at test time. Every server is stopped by its destructor.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "aisid/transport/address_lookup.hpp"
#include "tls_peers.hpp"
#include "aisid/transport/transport.hpp"

using namespace aisid::transport;
using namespace aisid::test;

namespace {

struct Peers {
    TempDir tmp;
    Pki pki{tmp.path};
};

Options opts(const Pki &pki, uint32_t timeout_ms = 2000) {
    Options o;
    o.ca_file = pki.ca;
    o.timeout_ms = timeout_ms;
    return o;
}

std::unique_ptr<UpstreamPool> pool(std::vector<std::string> uris, const Options &o) {
    auto p = UpstreamPool::create(uris, o);
    REQUIRE_MESSAGE(p, (p ? "" : p.error().text()));
    return std::move(*p);
}

/// Runs the pool's event loop until `done()` or `ms` pass.
template <class F> bool drive(UpstreamPool &p, F done, int ms = 10000) {
    auto end = Clock::now() + std::chrono::milliseconds(ms);
    while (!done()) {
        if (Clock::now() > end) return false;
        std::vector<pollfd> pf;
        for (const PollFd &f : p.fds()) pf.push_back({f.fd, f.events, 0});
        int t = p.next_timeout_ms();
        poll(pf.data(), nfds_t(pf.size()), t < 0 || t > 100 ? 100 : t);
        for (const pollfd &f : pf)
            if (f.revents) p.process(f.fd, f.revents);
        p.process_timeouts();
    }
    return true;
}

void check_a(const UpstreamResult &r, const std::string &want, uint16_t id) {
    REQUIRE_MESSAGE(r, (r ? "" : r.error().text()));
    CHECK(msg_id(r->wire) == id);  // the caller's ID, whatever went on the wire
    CHECK(msg_rcode(r->wire) == 0);
    CHECK(answer_a(r->wire) == std::vector<std::string>{want});
    CHECK(msg_count(r->wire, 3) == 0);  // the OPT we added for padding is gone (RFC 6891 §7)
}

} // namespace

TEST_CASE("DoT and DoH to Unbound answer right with the caller's ID") {
    Peers p;
    Unbound ub(tls_upstream(p.tmp, p.pki));
    auto o = opts(p.pki);
    {
        auto pl = pool({ub.dot_uri()}, o);
        auto r = pl->query_blocking(make_query("a.legacy.example", 0xbeef));
        check_a(r, "192.0.2.1", 0xbeef);
        CHECK(r->upstream == ub.dot_uri());
        // Without #NAME the address is what the certificate must carry (IP SAN).
        auto pl2 = pool({ub.dot_uri("")}, o);
        check_a(pl2->query_blocking(make_query("q7.legacy.example", 7)), "198.51.100.7", 7);
        // With EDNS from the caller, the OPT is the caller's and stays.
        auto r3 = pl2->query_blocking(make_query("q8.legacy.example", 8, 1, true));
        REQUIRE(r3);
        CHECK(msg_count(r3->wire, 3) == 1);
        CHECK(answer_a(r3->wire) == std::vector<std::string>{"198.51.100.8"});
    }
    {
        auto pl = pool({ub.doh_uri()}, o);
        auto r = pl->query_blocking(make_query("a.legacy.example", 0x4242));
        check_a(r, "192.0.2.1", 0x4242);
        CHECK(r->upstream == ub.doh_uri());
        // RFC 8484 §5.1: Unbound sends Cache-Control max-age; the TTLs are capped at it.
        uint32_t ttl = 0;
        answer_a(r->wire, &ttl);
        if (r->http_max_age >= 0) CHECK(ttl <= uint32_t(r->http_max_age));
        // An unknown name under a static zone: NXDOMAIN passes through.
        auto nx = pl->query_blocking(make_query("nope.legacy.example", 9));
        REQUIRE(nx);
        CHECK(msg_rcode(nx->wire) == 3);
    }
}

TEST_CASE("DoT and DoH to dnsdist answer right") {
    Peers p;
    Unbound ub(tls_upstream(p.tmp, p.pki));
    Dnsdist dd(DnsdistOptions().in(p.tmp).tls(p.pki).backend(ub.port));
    auto o = opts(p.pki);
    auto dot = pool({dd.dot_uri()}, o);
    check_a(dot->query_blocking(make_query("q3.legacy.example", 3)), "198.51.100.3", 3);
    auto doh = pool({dd.doh_uri()}, o);
    check_a(doh->query_blocking(make_query("q4.legacy.example", 4)), "198.51.100.4", 4);
    check_a(doh->query_blocking(make_query("x.bench.example", 5)), "192.0.2.9", 5);
}

TEST_CASE("a certificate for another name is refused with the reason") {
    Peers p;
    Unbound ub(tls_upstream(p.tmp, p.pki));
    Dnsdist dd(DnsdistOptions().in(p.tmp).tls(p.pki).backend(ub.port));
    auto o = opts(p.pki);
    for (const std::string &uri : {ub.dot_uri("wrong.example"), dd.dot_uri("wrong.example")}) {
        auto pl = pool({uri}, o);
        auto r = pl->query_blocking(make_query("a.legacy.example", 1));
        REQUIRE(!r);
        CHECK(r.error().kind == ErrorKind::tls_verify);
        CHECK(r.error().upstream == uri);
        CHECK_MESSAGE(r.error().reason.find("hostname mismatch") != std::string::npos, r.error().text());
        CHECK(pl->upstream(0).stats().handshakes == 0);
    }
    // DoH to "localhost": the certificate names dns.example and 127.0.0.1 only.
    for (const std::string &uri : {ub.doh_uri("localhost"), dd.doh_uri("localhost")}) {
        auto pl = pool({uri}, o);
        auto r = pl->query_blocking(make_query("a.legacy.example", 1));
        REQUIRE(!r);
        CHECK(r.error().kind == ErrorKind::tls_verify);
        CHECK_MESSAGE(r.error().reason.find("localhost") != std::string::npos, r.error().text());
    }
    // The DoH host name is verified when it matches: dns.example bootstrapped to 127.0.0.1.
    Options ob = o;
    ob.resolve = {"dns.example:" + std::to_string(ub.doh) + ":127.0.0.1"};
    auto good = pool({"https://dns.example:" + std::to_string(ub.doh) + "/dns-query"}, ob);
    check_a(good->query_blocking(make_query("a.legacy.example", 2)), "192.0.2.1", 2);
}

TEST_CASE("an untrusted certificate is refused with the reason and never retried in clear text") {
    Peers p;
    Unbound ub(tls_upstream(p.tmp, p.pki));
    Options rogue = opts(p.pki);
    rogue.ca_file = p.pki.rogue_ca;
    Options system_store = opts(p.pki);
    system_store.ca_file.clear();  // the system store does not know the test CA
    for (const Options &o : {rogue, system_store}) {
        for (const std::string &uri : {ub.dot_uri(), ub.doh_uri()}) {
            auto pl = pool({uri}, o);
            auto r = pl->query_blocking(make_query("a.legacy.example", 1));
            REQUIRE(!r);
            CHECK(r.error().kind == ErrorKind::tls_verify);
            const std::string &why = r.error().reason;
            CHECK_MESSAGE((why.find("unable to get local issuer") != std::string::npos ||
                           why.find("self-signed") != std::string::npos ||
                           why.find("self signed") != std::string::npos),
                          r.error().text());
            CHECK(pl->upstream(0).stats().answers == 0);
        }
    }
}

TEST_CASE("refused connections and timeouts are reported per upstream") {
    Peers p;
    int closed = free_port();
    auto o = opts(p.pki, 700);
    auto pl = pool({"tls://127.0.0.1:" + std::to_string(closed) + "#dns.example",
                    "https://127.0.0.1:" + std::to_string(closed) + "/dns-query"},
                   o);
    auto t0 = Clock::now();
    auto r = pl->query_blocking(make_query("a.legacy.example", 1));
    REQUIRE(!r);
    CHECK(r.error().kind == ErrorKind::all_failed);
    CHECK_MESSAGE(r.error().reason.find("Connection refused") != std::string::npos, r.error().text());
    REQUIRE(pl->last_error(0));
    REQUIRE(pl->last_error(1));
    CHECK(pl->last_error(0)->kind == ErrorKind::connect);
    CHECK(pl->last_error(1)->kind == ErrorKind::connect);
    CHECK(Clock::now() - t0 < std::chrono::milliseconds(700));  // refused is immediate, not a timeout

    // A listener that accepts TCP and never speaks TLS: a handshake timeout.
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    REQUIRE(bind(s, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    REQUIRE(listen(s, 8) == 0);
    getsockname(s, reinterpret_cast<sockaddr *>(&a), &l);
    auto mute = pool({"tls://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "#dns.example"}, o);
    auto rt = mute->query_blocking(make_query("a.legacy.example", 1));
    close(s);
    REQUIRE(!rt);
    CHECK(rt.error().kind == ErrorKind::timeout);
    CHECK_MESSAGE(rt.error().reason.find("TLS handshake") != std::string::npos, rt.error().text());
}

TEST_CASE("an upstream stopped mid-stream fails over to the next") {
    Peers p;
    Unbound ub(tls_upstream(p.tmp, p.pki));
    Dnsdist dd(DnsdistOptions().in(p.tmp).tls(p.pki).backend(ub.port));
    Unbound ub2(tls_upstream(p.tmp, p.pki, "unbound2"));
    auto o = opts(p.pki, 800);

    SUBCASE("killed (connection reset then refused)") {
        // A write to the reset connection must not raise SIGPIPE (the library
        // may run in an application that keeps the default disposition).
        signal(SIGPIPE, SIG_DFL);
        auto pl = pool({ub2.dot_uri(), dd.dot_uri(), dd.doh_uri()}, o);
        check_a(pl->query_blocking(make_query("q1.legacy.example", 1)), "198.51.100.1", 1);
        CHECK(pl->upstream(0).stats().answers == 1);
        // Queries in flight while the first upstream dies.
        std::map<uint16_t, UpstreamResult> got;
        for (uint16_t i = 10; i < 30; ++i)
            pl->submit(make_query("q" + std::to_string(i) + ".legacy.example", i),
                       [&got, i](UpstreamResult r) { got.emplace(i, std::move(r)); });
        ub2.proc.signal(SIGKILL);
        REQUIRE(drive(*pl, [&] { return got.size() == 20; }));
        for (auto &[i, r] : got) check_a(r, "198.51.100." + std::to_string(i), i);
        // Later queries: the dead one is refused (and then skipped), dnsdist answers.
        ub2.proc.stop();
        auto r = pl->query_blocking(make_query("q2.legacy.example", 2));
        check_a(r, "198.51.100.2", 2);
        CHECK(r->upstream == dd.dot_uri());
        REQUIRE(pl->last_error(0));
        CHECK_MESSAGE(pl->last_error(0)->kind != ErrorKind::tls_verify, pl->last_error(0)->text());
        CHECK(pl->upstream(1).stats().answers >= 1);
    }
    SUBCASE("frozen (SIGSTOP): timeout then the next") {
        auto pl = pool({ub2.doh_uri(), ub.dot_uri()}, o);
        check_a(pl->query_blocking(make_query("q1.legacy.example", 1)), "198.51.100.1", 1);
        ub2.proc.signal(SIGSTOP);
        auto t0 = Clock::now();
        auto r = pl->query_blocking(make_query("q5.legacy.example", 5));
        check_a(r, "198.51.100.5", 5);
        CHECK(r->upstream == ub.dot_uri());
        CHECK(Clock::now() - t0 >= std::chrono::milliseconds(700));
        REQUIRE(pl->last_error(0));
        CHECK(pl->last_error(0)->kind == ErrorKind::timeout);
        // In backoff, the frozen one is tried last: the next query is fast.
        auto t1 = Clock::now();
        check_a(pl->query_blocking(make_query("q6.legacy.example", 6)), "198.51.100.6", 6);
        CHECK(Clock::now() - t1 < std::chrono::milliseconds(500));
        ub2.proc.signal(SIGCONT);
    }
}

TEST_CASE("many concurrent queries share one connection and one handshake") {
    Peers p;
    Unbound ub(tls_upstream(p.tmp, p.pki));
    Dnsdist dd(DnsdistOptions().in(p.tmp).tls(p.pki).backend(ub.port));
    auto o = opts(p.pki, 5000);
    const std::pair<std::string, int> cases[] = {
        {ub.dot_uri(), ub.dot}, {dd.dot_uri(), dd.dot}, {ub.doh_uri(), ub.doh}, {dd.doh_uri(), dd.doh}};
    for (const auto &c : cases) {
        const std::string &uri = c.first;  // not a structured binding: clang 14 cannot capture one
        const int port = c.second;
        CAPTURE(uri);
        auto pl = pool({uri}, o);
        const int n = 200;
        std::map<uint16_t, UpstreamResult> got;
        for (int i = 0; i < n; ++i) {
            uint16_t id = uint16_t(1000 + i);
            int k = 1 + i % 250;
            pl->submit(make_query("q" + std::to_string(k) + ".legacy.example", id),
                       [&got, id](UpstreamResult r) { got.emplace(id, std::move(r)); });
        }
        REQUIRE(drive(*pl, [&] { return got.size() == size_t(n); }, 20000));
        int ok = 0;
        for (auto &entry : got) {
            const uint16_t id = entry.first;
            const UpstreamResult &r = entry.second;
            REQUIRE_MESSAGE(r, (r ? "" : r.error().text()));
            // Matched by ID even when answers come back out of order.
            CHECK(msg_id(r->wire) == id);
            if (answer_a(r->wire) == std::vector<std::string>{"198.51.100." + std::to_string(1 + (id - 1000) % 250)})
                ++ok;
        }
        CHECK(ok == n);
        const Stats &s = pl->upstream(0).stats();
        CHECK(s.answers == uint64_t(n));
        CHECK(s.connections == 1);
        CHECK(s.handshakes == 1);
        CHECK(established_to(port) == 1);  // the server's view: one connection
    }
}

TEST_CASE("DoT: idle close then reconnect with TLS session resumption") {
    Peers p;
    Unbound ub(tls_upstream(p.tmp, p.pki));
    Dnsdist dd(DnsdistOptions().in(p.tmp).tls(p.pki).backend(ub.port));
    auto o = opts(p.pki);
    o.idle_timeout_ms = 200;
    for (const std::string &uri : {dd.dot_uri(), ub.dot_uri()}) {
        CAPTURE(uri);
        auto pl = pool({uri}, o);
        auto r1 = pl->query_blocking(make_query("q1.legacy.example", 1));
        check_a(r1, "198.51.100.1", 1);
        CHECK(!r1->resumed);
        // Let the session ticket arrive and the connection go idle.
        drive(*pl, [] { return false; }, 400);
        std::vector<PollFd> idle;
        pl->upstream(0).fds(idle);
        CHECK(idle.empty());  // RFC 7858 §3.4: closed while idle
        auto r2 = pl->query_blocking(make_query("q2.legacy.example", 2));
        check_a(r2, "198.51.100.2", 2);
        const Stats &s = pl->upstream(0).stats();
        CHECK(s.connections == 2);
        CHECK(s.handshakes == 2);
        CHECK(r2->resumed);
        CHECK(s.resumed == 1);
    }
}

TEST_CASE("address lookups for the SDK: AAAA then A with TTLs and NXDOMAIN and the failure reason") {
    Peers p;
    Unbound ub(tls_upstream(p.tmp, p.pki));
    auto o = opts(p.pki, 1000);
    auto deadline = [] { return Clock::now() + std::chrono::seconds(3); };
    for (const std::string &uri : {ub.dot_uri(), ub.doh_uri()}) {
        CAPTURE(uri);
        auto l = AddressLookup::create({uri}, o);
        REQUIRE(l);
        auto a = (*l)->resolve("a.legacy.example", deadline());
        REQUIRE(a.status == AddressLookup::Status::ok);
        REQUIRE(a.addrs.size() == 2);
        char txt[INET6_ADDRSTRLEN];
        CHECK(std::string(inet_ntop(AF_INET6, &a.addrs[0], txt, sizeof txt)) == "2001:db8::1");
        CHECK(std::string(inet_ntop(AF_INET6, &a.addrs[1], txt, sizeof txt)) == "::ffff:192.0.2.1");
        CHECK(a.ttl <= 300);
        CHECK(a.ttl > 0);
        CHECK((*l)->resolve("nope.legacy.example", deadline()).status == AddressLookup::Status::nxdomain);
        CHECK((*l)->resolve("q1.legacy.example", deadline()).addrs.size() == 1);
    }
    auto bad = AddressLookup::create({ub.dot_uri("wrong.example")}, o);
    REQUIRE(bad);
    auto r = (*bad)->resolve("a.legacy.example", deadline());
    CHECK(r.status == AddressLookup::Status::network);
    CHECK_MESSAGE(r.failure.find("hostname mismatch") != std::string::npos, r.failure);
    CHECK(r.addrs.empty());
}

TEST_CASE("DoH: answer TTLs are capped at the HTTP freshness lifetime (RFC 8484 §5.1)") {
    Peers p;
    Unbound ub(tls_upstream(p.tmp, p.pki));
    Dnsdist plain(DnsdistOptions().in(p.tmp).tls(p.pki).backend(ub.port));
    Dnsdist short_lived(
        DnsdistOptions()
            .in(p.tmp, "dnsdist-maxage")
            .tls(p.pki)
            .backend(ub.port)
            .doh_options("sendCacheControlHeaders=false, customResponseHeaders={[\"cache-control\"]=\"max-age=42\"}"));
    auto o = opts(p.pki);
    uint32_t ttl = 0;
    auto a = pool({plain.doh_uri()}, o)->query_blocking(make_query("a.legacy.example", 1));
    REQUIRE(a);
    CHECK(a->http_max_age == 300);  // dnsdist: max-age = the smallest TTL
    answer_a(a->wire, &ttl);
    CHECK(ttl == 300);
    auto b = pool({short_lived.doh_uri()}, o)->query_blocking(make_query("a.legacy.example", 2));
    REQUIRE(b);
    CHECK(b->http_max_age == 42);
    answer_a(b->wire, &ttl);
    CHECK(ttl == 42);
    // Unbound sends no Cache-Control: the TTLs stay as they are.
    auto c = pool({ub.doh_uri()}, o)->query_blocking(make_query("a.legacy.example", 3));
    REQUIRE(c);
    CHECK(c->http_max_age == -1);
    answer_a(c->wire, &ttl);
    CHECK(ttl == 300);
}

TEST_CASE("DoT queries reach the server padded to 128 octets (RFC 8467 §4.1)") {
    Peers p;
    Unbound ub(tls_upstream(p.tmp, p.pki, "unbound-v4", 4));
    auto pl = pool({ub.dot_uri()}, opts(p.pki));
    // A short name, a long one, and one with the caller's own EDNS OPT.
    check_a(pl->query_blocking(make_query("q1.legacy.example", 1)), "198.51.100.1", 1);
    auto r = pl->query_blocking(make_query("q2.legacy.example", 2, 1, true));
    REQUIRE(r);
    auto big = pl->query_blocking(make_query(std::string(60, 'x') + "." + std::string(60, 'y') + ".legacy.example", 3));
    REQUIRE(big);
    CHECK(msg_rcode(big->wire) == 3);
    ub.proc.stop();  // flush the log
    std::string log = ub.log();
    size_t lens = 0, ok = 0;
    for (size_t at = log.find("Reading ssl tcp query of length "); at != std::string::npos;
         at = log.find("Reading ssl tcp query of length ", at + 1)) {
        ++lens;
        if (std::stoul(log.substr(at + 32)) % 128 == 0) ++ok;
    }
    CHECK(lens == 3);
    CHECK(ok == lens);
    CHECK(log.find("Reading ssl tcp query of length 256") != std::string::npos);  // the long name
}

TEST_CASE("DoH: a server without HTTP/2 is refused (RFC 8484 §5.2)") {
    Peers p;
    // An HTTP/1.1-only DoH server (Python's http.server over TLS) that would
    // answer every POST: the answer is refused because of the protocol.
    write_file(p.tmp.file("h1.py"),
         "import http.server, ssl, sys\n"
         "class H(http.server.BaseHTTPRequestHandler):\n"
         "    protocol_version = 'HTTP/1.1'\n"
         "    def do_POST(self):\n"
         "        q = self.rfile.read(int(self.headers['Content-Length']))\n"
         "        a = q[:2] + bytes([0x81, 0x80]) + q[4:]\n"
         "        self.send_response(200)\n"
         "        self.send_header('Content-Type', 'application/dns-message')\n"
         "        self.send_header('Content-Length', str(len(a)))\n"
         "        self.end_headers()\n"
         "        self.wfile.write(a)\n"
         "    def log_message(self, *a): pass\n"
         "s = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H)\n"
         "c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
         "c.load_cert_chain(sys.argv[2], sys.argv[3])\n"
         "c.set_alpn_protocols(['http/1.1'])\n"
         "s.socket = c.wrap_socket(s.socket, server_side=True)\n"
         "s.serve_forever()\n");
    Process srv;
    int port = 0;
    start_retrying(srv, p.tmp.file("h1.log"), [&] {
        port = free_port();
        srv = Process({"python3", p.tmp.file("h1.py"), std::to_string(port), p.pki.cert, p.pki.key},
                      p.tmp.file("h1.log"));
        return wait_listening(srv, {{port, true}});
    }, "python3 http.server");
    std::string uri = "https://127.0.0.1:" + std::to_string(port) + "/dns-query";
    auto pl = pool({uri}, opts(p.pki));
    auto r = pl->query_blocking(make_query("a.legacy.example", 1));
    REQUIRE(!r);
    CHECK(r.error().kind == ErrorKind::http);
    CHECK_MESSAGE(r.error().reason.find("did not negotiate HTTP/2") != std::string::npos, r.error().text());
    // The same server is fine when HTTP/1.1 is allowed: the refusal was the protocol's.
    Options o = opts(p.pki);
    o.require_h2 = false;
    auto r1 = pool({uri}, o)->query_blocking(make_query("a.legacy.example", 2));
    CHECK_MESSAGE(r1, (r1 ? "" : r1.error().text()));
}
