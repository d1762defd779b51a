// aisidd's options and config file (SPEC §4).
#include "aisid/resolver/config.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <unistd.h>

using namespace aisid;
using namespace aisid::resolver;

namespace {
aisid::Expected<ParseOutcome, ConfigError> parse(std::vector<std::string> args, Config &c) {
    std::vector<char *> av{const_cast<char *>("aisidd")};
    for (auto &a : args) av.push_back(a.data());
    return parse_command_line(int(av.size()), av.data(), c);
}
std::string tmpfile_with(const std::string &text) {
    char path[] = "/tmp/aisidd-conf-XXXXXX";
    int fd = mkstemp(path);
    (void)!write(fd, text.data(), text.size());
    close(fd);
    return path;
}
} // namespace

TEST_CASE("options") {
    Config c;
    auto r = parse({"--listen", "127.0.0.1:5353", "--listen=[::1]:5353", "--zone", "a.zone", "--upstream", "192.0.2.1",
                    "--upstream", "[2001:db8::1]:5300", "--allow", "192.0.2.0/24", "--log-level", "debug", "--metrics",
                    "127.0.0.1:9153", "--key", "k:c2VjcmV0", "--update-key", "k", "--secondary", "s.example=192.0.2.9",
                    "--notify", "192.0.2.8:53", "--state-dir", "/var/lib/aisid", "--threads", "3", "--cache-size", "16K"},
                   c);
    REQUIRE(r);
    CHECK(*r == ParseOutcome::ok);
    CHECK(c.listen.size() == 2);
    CHECK(c.listen[1].to_string() == "[::1]:5353");
    CHECK(c.upstreams.size() == 2);
    CHECK(c.upstreams[0].addr.to_string() == "192.0.2.1:53");
    CHECK(c.upstreams[1].addr.to_string() == "[2001:db8::1]:5300");
    CHECK(c.log_level == LogLevel::debug);
    CHECK(c.metrics->to_string() == "127.0.0.1:9153");
    CHECK(c.keys == std::vector<std::string>{"k:c2VjcmV0"});
    CHECK(c.update_keys == std::vector<std::string>{"k"});
    CHECK(c.secondaries == std::vector<std::string>{"s.example=192.0.2.9"});
    CHECK(c.notify == std::vector<std::string>{"192.0.2.8:53"});
    CHECK(c.state_dir == "/var/lib/aisid");
    CHECK(c.threads == 3);
    CHECK(c.cache_bytes == 16 * 1024);
}

TEST_CASE("rate limiting options - off by default") {
    Config d;
    CHECK(!d.rrl.enabled());
    Config c;
    auto r = parse({"--rate-limit", "20", "--rate-limit-errors", "5", "--rate-limit-slip", "0", "--rate-limit-window",
                    "5", "--rate-limit-ipv4-prefix", "32", "--rate-limit-ipv6-prefix", "64", "--rate-limit-exempt",
                    "10.0.0.0/8", "--rate-limit-exempt", "2001:db8::/32", "--rate-limit-table-size", "4096"},
                   c);
    REQUIRE(r);
    CHECK(c.rrl.enabled());
    CHECK(c.rrl.responses_per_second == 20);
    CHECK(c.rrl.errors_per_second == 5);
    CHECK(c.rrl.slip == 0);
    CHECK(c.rrl.window == 5);
    CHECK(c.rrl.ipv4_prefix == 32);
    CHECK(c.rrl.ipv6_prefix == 64);
    CHECK(c.rrl.exempt.size() == 2);
    CHECK(c.rrl_table_size == 4096);
}

TEST_CASE("zone mirrors: several URLs per zone - anchors - require-zonemd - fetch timeout - config keys too") {
    Config c;
    auto r = parse({"--zone-url", "ai.example=https://m1.example/ai.example.zone", "--zone-url",
                    "ai.example=https://m2.example/ai.example.zone", "--trust-anchor", "ai.example=/etc/aisid/ai.ds",
                    "--require-zonemd", "yes", "--zone-fetch-timeout", "7"},
                   c);
    REQUIRE(r);
    CHECK(c.zone_urls == std::vector<std::string>{"ai.example=https://m1.example/ai.example.zone",
                                                  "ai.example=https://m2.example/ai.example.zone"});
    CHECK(c.trust_anchors == std::vector<std::string>{"ai.example=/etc/aisid/ai.ds"});
    CHECK(c.require_zonemd);
    CHECK(c.zone_fetch_timeout_s == 7);
    Config d;
    CHECK(!d.require_zonemd);
    CHECK(d.zone_fetch_timeout_s == 30);
    std::string f = tmpfile_with("zone-url = ai.example=https://m1.example/z\nrequire-zonemd = yes\n");
    Config e;
    REQUIRE(parse({"--config", f, "--zone-url", "ai.example=https://m3.example/z"}, e));
    CHECK(e.zone_urls == std::vector<std::string>{"ai.example=https://m3.example/z"});  // the command line replaces the list
    CHECK(e.require_zonemd);
    unlink(f.c_str());
}

TEST_CASE("bad options say what is wrong") {
    const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
        {{"--listen", "nowhere"}, "bad listen address 'nowhere'"},
        {{"--listen", "127.0.0.1:99999"}, "bad listen address"},
        {{"--upstream", "tls://dns.example"}, "not an IP address"},
        {{"--upstream", "http://dns.example/dns-query"}, "clear-text HTTP is not allowed"},
        {{"--upstream", "ftp://x"}, "unknown scheme"},
        {{"--allow", "192.0.2.0/33"}, "bad --allow"},
        {{"--log-level", "loud"}, "bad --log-level"},
        {{"--key", "nosecret"}, "bad --key"},
        {{"--secondary", "zone"}, "bad --secondary"},
        {{"--frobnicate", "1"}, "unknown option 'frobnicate'"},
        {{"--zone"}, "needs a value"},
        {{"stray"}, "unexpected argument"},
        {{"--rate-limit", "10001"}, "bad --rate-limit '10001'"},
        {{"--rate-limit", "-1"}, "bad --rate-limit"},
        {{"--rate-limit-slip", "11"}, "bad --rate-limit-slip"},
        {{"--rate-limit-window", "0"}, "bad --rate-limit-window"},
        {{"--rate-limit-window", "61"}, "bad --rate-limit-window"},
        {{"--rate-limit-ipv4-prefix", "33"}, "bad --rate-limit-ipv4-prefix"},
        {{"--rate-limit-ipv6-prefix", "8"}, "bad --rate-limit-ipv6-prefix"},
        {{"--rate-limit-exempt", "10.0.0.0/33"}, "bad --rate-limit-exempt"},
        {{"--rate-limit-table-size", "100"}, "bad --rate-limit-table-size"},
        {{"--zone-url", "ai.example"}, "bad --zone-url 'ai.example' (want ZONE=https://"},
        {{"--zone-url", "ai.example=http://192.0.2.1/z"}, "bad --zone-url"},
        {{"--zone-url", "=https://192.0.2.1/z"}, "bad --zone-url"},
        {{"--zone-url", "ai.example=https://"}, "bad --zone-url"},
        {{"--trust-anchor", "ai.example"}, "bad --trust-anchor 'ai.example' (want ZONE=FILE"},
        {{"--trust-anchor", "ai.example="}, "bad --trust-anchor"},
        {{"--require-zonemd", "maybe"}, "bad --require-zonemd 'maybe' (yes or no)"},
        {{"--zone-fetch-timeout", "0"}, "bad --zone-fetch-timeout '0' (seconds, 1..3600)"},
        {{"--zone-fetch-timeout", "3601"}, "bad --zone-fetch-timeout"},
    };
    for (auto &item : bad) {
        const auto &args = item.first;  // not a structured binding: clang 14 cannot capture one
        const auto &msg = item.second;
        CAPTURE(args[0]);
        Config c;
        auto r = parse(args, c);
        REQUIRE(!r);
        CHECK(r.error().message.find(msg) != std::string::npos);
    }
}

TEST_CASE("config file: same keys - the command line replaces lists - FILE:LINE errors") {
    std::string f = tmpfile_with("# aisidd\nlisten = 127.0.0.1:5353\nzone = /a.zone\nzone = \"/b.zone\"\n\nupstream = 192.0.2.1 # comment\nallow = 10.0.0.0/8\n");
    Config c;
    auto r = parse({"--config", f, "--upstream", "192.0.2.2"}, c);
    REQUIRE(r);
    CHECK(c.zones == std::vector<std::string>{"/a.zone", "/b.zone"});
    CHECK(c.upstreams.size() == 1);
    CHECK(c.upstreams[0].text == "192.0.2.2");
    CHECK(c.allow.size() == 1);
    unlink(f.c_str());
    f = tmpfile_with("listen = 127.0.0.1:5353\n\nbogus line\n");
    Config d;
    r = parse({"--config", f}, d);
    REQUIRE(!r);
    CHECK(r.error().message == f + ":3: expected 'key = value'");
    unlink(f.c_str());
    f = tmpfile_with("upstream = tls://x\n");
    Config e;
    r = parse({"--config", f}, e);
    REQUIRE(!r);
    CHECK(r.error().message.rfind(f + ":1: ", 0) == 0);
    unlink(f.c_str());
    Config g;
    r = parse({"--config", "/nonexistent/aisidd.conf"}, g);
    CHECK(!r);
}

TEST_CASE("control-socket: off unless given, none turns it off, a path too long for a Unix socket is refused") {
    Config a;
    REQUIRE(parse({}, a));
    CHECK(a.control_socket.empty());  // nothing under /run unless asked for
    Config b;
    REQUIRE(parse({"--control-socket", "/run/aisid/control"}, b));
    CHECK(b.control_socket == "/run/aisid/control");
    std::string f = tmpfile_with("control-socket = /run/aisid/control\n");
    Config c;
    REQUIRE(parse({"--config", f, "--control-socket", "none"}, c));
    CHECK(c.control_socket.empty());
    unlink(f.c_str());
    Config d;
    auto r = parse({"--control-socket", "/" + std::string(120, 'x')}, d);
    REQUIRE(!r);
    CHECK(r.error().message == "--control-socket path too long (at most 107 bytes)");
    Config e;
    r = parse({"--control-socket", ""}, e);
    REQUIRE(!r);
    CHECK(r.error().message == "--control-socket needs a path (or none)");
}

TEST_CASE("defaults: listen on both loopbacks - upstreams from resolv.conf minus ourselves") {
    std::string rc = tmpfile_with("# x\nsearch example\nnameserver 127.0.0.1\nnameserver 192.0.2.53\nnameserver fe80::1%1\nnameserver fe80::2%nosuchif0\nnameserver ::1\n");
    Config c;
    REQUIRE(parse({}, c));
    REQUIRE(finish_config(c, rc));
    CHECK(c.listen.size() == 2);
    CHECK(c.listen[0].to_string() == "127.0.0.1:53");
    CHECK(c.listen[1].to_string() == "[::1]:53");
    // 127.0.0.1:53 and [::1]:53 are aisidd itself: forwarding there would loop.
    // A link-local server keeps its scope (index 1 is always loopback); one on
    // an interface this host does not have is skipped.
    REQUIRE(c.upstreams.size() == 2);
    CHECK(c.upstreams[0].addr.to_string() == "192.0.2.53:53");
    CHECK(c.upstreams[1].addr.to_string() == "[fe80::1%lo]:53");
    Config d;
    REQUIRE(parse({"--listen", "127.0.0.1:5300"}, d));
    REQUIRE(finish_config(d, rc));
    CHECK(d.upstreams.size() == 4);  // 127.0.0.1:53 is not us now
    Config w;
    REQUIRE(parse({"--listen", "0.0.0.0:53"}, w));
    REQUIRE(finish_config(w, rc));
    CHECK(w.upstreams.size() == 3);  // a wildcard listener covers 127.0.0.1:53
    Config loop;
    REQUIRE(parse({"--listen", "127.0.0.1:5300", "--upstream", "127.0.0.1:5300"}, loop));
    auto r = finish_config(loop, rc);
    REQUIRE(!r);
    CHECK(r.error().message.find("forwarding loop") != std::string::npos);
    unlink(rc.c_str());
}

TEST_CASE("limit options - safe defaults, ranges checked") {
    Config c;
    CHECK(c.tcp_output_limit == 256u << 10);
    CHECK(c.tcp_connections == 4096);
    CHECK(c.tcp_connections_per_client == 64);
    CHECK(c.max_inflight == 4096);
    CHECK(c.max_inflight_per_client == 256);
    CHECK(c.authority_queue == 256);
    CHECK(c.cache_max_ttl == 86400);
    CHECK(c.cache_max_negative_ttl == 10800);
    auto r = parse({"--tcp-output-limit", "65536", "--tcp-connections", "100", "--tcp-connections-per-client", "0",
                    "--max-inflight", "50", "--max-inflight-per-client", "5", "--authority-queue", "8",
                    "--cache-max-ttl", "600", "--cache-max-negative-ttl", "60"},
                   c);
    REQUIRE(r);
    CHECK(c.tcp_output_limit == 65536);
    CHECK(c.tcp_connections == 100);
    CHECK(c.tcp_connections_per_client == 0);
    CHECK(c.max_inflight == 50);
    CHECK(c.max_inflight_per_client == 5);
    CHECK(c.authority_queue == 8);
    CHECK(c.cache_max_ttl == 600);
    CHECK(c.cache_max_negative_ttl == 60);
    for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
             {"--tcp-output-limit", "100"}, {"--tcp-connections", "0"}, {"--max-inflight", "0"},
             {"--authority-queue", "x"}, {"--cache-max-ttl", "0"}, {"--cache-max-negative-ttl", "-1"}}) {
        Config d;
        auto e = parse(bad, d);
        REQUIRE(!e);
        CHECK(e.error().message.find(bad[0].substr(2)) != std::string::npos);
    }
}

TEST_CASE("upstreams in metrics and logs: a DoH URL without its query string or user information") {
    CHECK(redacted_upstream("192.0.2.1:53") == "192.0.2.1:53");
    CHECK(redacted_upstream("tls://192.0.2.1#dns.example") == "tls://192.0.2.1#dns.example");
    CHECK(redacted_upstream("https://dns.example/dns-query") == "https://dns.example/dns-query");
    CHECK(redacted_upstream("https://dns.example/dns-query?token=s3cret") == "https://dns.example/dns-query?REDACTED");
    CHECK(redacted_upstream("https://user:pw@dns.example:8443/q?a=1#f") == "https://REDACTED@dns.example:8443/q?REDACTED#f");
    CHECK(redacted_upstream("https://dns.example?token=x") == "https://dns.example?REDACTED");
}

TEST_CASE("zone and authority limits - safe defaults") {
    Config d;
    CHECK(d.zone_limits.max_includes == 64);
    CHECK(d.zone_limits.max_bytes == 64u << 20);
    CHECK(d.zone_limits.include_dirs.empty());
    CHECK(d.max_records_per_name == 100);
    Config c;
    auto r = parse({"--zone-include-dir", "/etc/aisid/inc", "--zone-include-dir", "/srv/zones", "--zone-max-includes",
                    "10", "--zone-max-bytes", "2", "--max-records-per-name", "500"},
                   c);
    REQUIRE(r);
    CHECK(c.zone_limits.include_dirs.size() == 2);
    CHECK(c.zone_limits.max_includes == 10);
    CHECK(c.zone_limits.max_bytes == 2u << 20);
    CHECK(c.max_records_per_name == 500);
    Config bad;
    CHECK_FALSE(parse({"--zone-max-bytes", "0"}, bad));
    CHECK_FALSE(parse({"--max-records-per-name", "0"}, bad));
    CHECK_FALSE(parse({"--zone-max-includes", "x"}, bad));
}
