// The SDK's legacy path over DoT and DoH:
// aisid_client_set_upstreams() with tls:// and https:// entries, against a
// real Unbound with a CA the test makes ($AISID_CA_FILE).
#include <doctest/doctest.h>

#include <aisid/aisid.h>
#include <poll.h>

#include "tls_peers.hpp"

using namespace aisid::test;

namespace {

struct Client {
    aisid_client_t *c = nullptr;
    Client() { REQUIRE(aisid_client_new(&c) == AISID_OK); }
    ~Client() { aisid_client_free(c); }
};

std::vector<std::string> addresses(aisid_client_t *c, const char *name, aisid_status_t &st) {
    std::vector<std::string> out;
    aisid_result_t *r = nullptr;
    st = aisid_resolve(c, name, &r);
    if (st != AISID_OK) return out;
    for (size_t i = 0; i < aisid_result_count(r); ++i) {
        in6_addr a{};
        aisid_result_address(r, i, &a);
        char txt[INET6_ADDRSTRLEN];
        out.push_back(inet_ntop(AF_INET6, &a, txt, sizeof txt));
    }
    CHECK(!aisid_result_is_aisid(r));
    aisid_result_free(r);
    return out;
}

} // namespace

TEST_CASE("SDK: aisid_client_set_upstreams takes tls:// and https:// upstreams") {
    TempDir tmp;
    Pki pki(tmp.path);
    Unbound ub(tls_upstream(tmp, pki));
    setenv("AISID_CA_FILE", pki.ca.c_str(), 1);
    for (const std::string &up : {ub.dot_uri(), ub.doh_uri()}) {
        CAPTURE(up);
        Client cl;
        REQUIRE(aisid_client_set_upstreams(cl.c, up.c_str()) == AISID_OK);
        aisid_status_t st;
        auto a = addresses(cl.c, "a.legacy.example", st);
        CHECK(st == AISID_OK);
        CHECK(a == std::vector<std::string>{"2001:db8::1", "::ffff:192.0.2.1"});
        addresses(cl.c, "nope.legacy.example", st);
        CHECK(st == AISID_ENOTFOUND);
    }
    // A failing encrypted upstream fails over to the next one in the list.
    {
        Client cl;
        std::string list = ub.dot_uri("wrong.example") + "," + ub.doh_uri();
        REQUIRE(aisid_client_set_upstreams(cl.c, list.c_str()) == AISID_OK);
        aisid_status_t st;
        CHECK(addresses(cl.c, "q5.legacy.example", st) == std::vector<std::string>{"::ffff:198.51.100.5"});
        CHECK(st == AISID_OK);
    }
    // Only a broken encrypted upstream: a network failure, never resolv.conf.
    {
        Client cl;
        REQUIRE(aisid_client_set_upstreams(cl.c, ub.dot_uri("wrong.example").c_str()) == AISID_OK);
        aisid_status_t st;
        CHECK(addresses(cl.c, "a.legacy.example", st).empty());
        CHECK(st == AISID_ENETWORK);
    }
    // Plain upstreams listed after the encrypted one are the caller's failover.
    {
        Client cl;
        std::string list = ub.dot_uri("wrong.example") + ",127.0.0.1:" + std::to_string(ub.port);
        REQUIRE(aisid_client_set_upstreams(cl.c, list.c_str()) == AISID_OK);
        aisid_status_t st;
        CHECK(addresses(cl.c, "q6.legacy.example", st) == std::vector<std::string>{"::ffff:198.51.100.6"});
    }
    Client cl;
    CHECK(aisid_client_set_upstreams(cl.c, "http://127.0.0.1/dns-query") == AISID_EINVAL);
    CHECK(aisid_client_set_upstreams(cl.c, "tls://dns.example") == AISID_EINVAL);
    unsetenv("AISID_CA_FILE");
}

namespace {
struct AsyncOut {
    int calls = 0;
    aisid_status_t status = AISID_EAGAIN;
    size_t count = 0;
};
void on_result(void *arg, aisid_status_t st, aisid_result_t *r) {
    auto *o = static_cast<AsyncOut *>(arg);
    ++o->calls;
    o->status = st;
    if (r) {
        o->count = aisid_result_count(r);
        aisid_result_free(r);
    }
}
} // namespace

TEST_CASE("SDK: asynchronous lookups over DoT and DoH run on the caller's event loop") {
    TempDir tmp;
    Pki pki(tmp.path);
    Unbound ub(tls_upstream(tmp, pki));
    setenv("AISID_CA_FILE", pki.ca.c_str(), 1);
    for (const std::string &up : {ub.dot_uri(), ub.doh_uri()}) {
        CAPTURE(up);
        Client cl;
        REQUIRE(aisid_client_set_upstreams(cl.c, up.c_str()) == AISID_OK);
        std::vector<AsyncOut> outs(20);
        for (int i = 0; i < 20; ++i) {
            std::string n = "q" + std::to_string(i + 1) + ".legacy.example";
            REQUIRE(aisid_resolve_async(cl.c, n.c_str(), on_result, &outs[size_t(i)]) == AISID_OK);
        }
        // Nothing answered inside aisid_resolve_async: the answers need I/O.
        int before = 0;
        for (auto &o : outs) before += o.calls;
        CHECK(before == 0);
        CHECK(aisid_async_pending(cl.c) == 20);
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (aisid_async_pending(cl.c) && std::chrono::steady_clock::now() < end) {
            pollfd fds[16];
            size_t n = aisid_async_fds(cl.c, fds, 16);
            int t = aisid_async_timeout(cl.c);
            CHECK(n > 0);
            poll(fds, n, t < 0 || t > 200 ? 200 : t);
            aisid_async_process(cl.c, fds, n);
        }
        for (auto &o : outs) {
            CHECK(o.calls == 1);
            CHECK(o.status == AISID_OK);
            CHECK(o.count == 1);
        }
        // Cancelled lookups complete once with AISID_ECANCELLED.
        AsyncOut c;
        REQUIRE(aisid_resolve_async(cl.c, "q200.legacy.example", on_result, &c) == AISID_OK);
        aisid_async_cancel(cl.c);
        CHECK(c.calls == 1);
        CHECK(c.status == AISID_ECANCELLED);
        CHECK(aisid_async_pending(cl.c) == 0);
    }
    unsetenv("AISID_CA_FILE");
}
