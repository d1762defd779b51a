// The SDK's legacy path over DoT and DoH (issue 8 item 4):
// aisid_client_set_upstreams() with tls:// and https:// entries, against a
// real Unbound with a CA the test makes ($AISID_CA_FILE).
#include <doctest/doctest.h>

#include <aisid/aisid.h>

#include "tls_peers.hpp"

using namespace aisid::tls_test;

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
    Unbound ub(tmp, pki);
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
        std::string list = ub.dot_uri("wrong.example") + ",127.0.0.1:" + std::to_string(ub.udp);
        REQUIRE(aisid_client_set_upstreams(cl.c, list.c_str()) == AISID_OK);
        aisid_status_t st;
        CHECK(addresses(cl.c, "q6.legacy.example", st) == std::vector<std::string>{"::ffff:198.51.100.6"});
    }
    Client cl;
    CHECK(aisid_client_set_upstreams(cl.c, "http://127.0.0.1/dns-query") == AISID_EINVAL);
    CHECK(aisid_client_set_upstreams(cl.c, "tls://dns.example") == AISID_EINVAL);
    unsetenv("AISID_CA_FILE");
}
