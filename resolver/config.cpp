#include "aisid/resolver/config.hpp"

#include "aisid/transport/transport.hpp"

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace aisid::resolver {

const char *usage_text() {
    return "usage: aisidd [--config FILE] [--listen ADDR:PORT]... [--zone FILE]...\n"
           "              [--upstream ADDR[:PORT]|tls://ADDR[:PORT][#NAME]|https://HOST[:PORT]/PATH]... [--allow CIDR]... [--deny CIDR]... [--state-dir DIR]\n"
           "              [--log-level error|warn|info|debug] [--metrics ADDR:PORT]\n"
           "              [--threads N] [--cache-size MB|NK] [--stale-seconds S]\n"
           "              [--upstream-timeout MS] [--tcp-idle-timeout MS]\n"
           "              [--key NAME:BASE64]... [--update-key NAME]...\n"
           "              [--secondary ZONE=ADDR[:PORT]]... [--notify ADDR[:PORT]]... [--ca-file FILE]\n"
           "              [--zone-include-dir DIR]... [--zone-max-includes N] [--zone-max-bytes MB]\n"
           "              [--max-records-per-name N]\n"
           "              [--control-socket PATH|none]\n"
           "              [--zone-url ZONE=https://HOST/PATH]... [--trust-anchor ZONE=FILE]...\n"
           "              [--require-zonemd yes|no] [--zone-fetch-timeout S]\n"
           "              [--user NAME] [--rate-limit N] [--rate-limit-errors N] [--rate-limit-slip N]\n"
           "              [--rate-limit-window S] [--rate-limit-ipv4-prefix BITS] [--rate-limit-ipv6-prefix BITS]\n"
           "              [--rate-limit-exempt CIDR]... [--rate-limit-table-size N]\n"
           "              [--hide-version yes|no] [--hide-identity yes|no]\n"
           "              [--tcp-output-limit BYTES] [--tcp-connections N] [--tcp-connections-per-client N]\n"
           "              [--max-inflight N] [--max-inflight-per-client N] [--authority-queue N]\n"
           "              [--cache-max-ttl S] [--cache-max-negative-ttl S]\n"
           "The local DNS stub resolver: answers AISID domains from its zones (authoritative)\n"
           "and forwards and caches every other name.\n"
           "Defaults: --listen 127.0.0.1:53 --listen [::1]:53; upstreams from /etc/resolv.conf;\n"
           "only loopback clients are answered (others get REFUSED); --allow adds networks,\n"
           "--deny removes loopback ones (--allow wins over --deny).\n"
           "--user: after binding its sockets, a root aisidd becomes NAME (and its group),\n"
           "with no capabilities left.\n"
           "--rate-limit N: at most N UDP replies per second for one answer to one client\n"
           "network (/24, /56); over it replies are dropped, every --rate-limit-slip-th sent\n"
           "truncated (TCP is never limited). Off by default.\n"
           "Limits (aisidd(8)): a TCP client whose replies are not read stops being read once\n"
           "--tcp-output-limit bytes wait (256K) and is closed after --tcp-idle-timeout;\n"
           "--tcp-connections (4096) in all, --tcp-connections-per-client (64), idle ones\n"
           "closed first; --max-inflight (4096) queries upstream, --max-inflight-per-client\n"
           "(256), beyond them SERVFAIL; --authority-queue (256) messages, beyond it dropped.\n"
           "--control-socket PATH: aisid-control(8) talks to aisidd there (root, aisidd's\n"
           "user and group aisid only); off unless given.\n"
           "--zone-url: fetch ZONE over HTTPS (several mirrors: failover in turn), verify it\n"
           "(ZONEMD; DNSSEC with --trust-anchor, a file of DS or DNSKEY records) and serve it;\n"
           "--require-zonemd yes: every zone (files, transfers, mirrors) must carry a ZONEMD\n"
           "that verifies. --ca-file also names the CAs for the mirrors' certificates.\n"
           "Signals: SIGHUP reloads the config file and zones; SIGTERM exits.\n";
}

namespace {
// Port 53 unless given; port 0 refused (each worker would bind its own port).
const AddressRules kDnsPort{.default_port = 53};


ConfigError err(std::string m) { return ConfigError{std::move(m)}; }

bool parse_uint(const std::string &s, uint64_t max, uint64_t &out) {
    if (s.empty() || s.size() > 12) return false;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + uint64_t(c - '0');
    }
    if (v > max) return false;
    out = v;
    return true;
}

std::string trim(const std::string &s) {
    size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return {};
    size_t e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

bool is_repeatable(const std::string &k) {
    static const std::set<std::string> r = {"listen", "zone", "upstream", "allow", "deny", "key",
                                            "update-key", "secondary", "notify", "rate-limit-exempt",
                                            "zone-include-dir", "zone-url", "trust-anchor"};
    return r.count(k) > 0;
}

void clear_list(Config &c, const std::string &k) {
    if (k == "listen") c.listen.clear();
    else if (k == "zone") c.zones.clear();
    else if (k == "upstream") c.upstreams.clear();
    else if (k == "allow") c.allow.clear();
    else if (k == "deny") c.deny.clear();
    else if (k == "key") c.keys.clear();
    else if (k == "update-key") c.update_keys.clear();
    else if (k == "secondary") c.secondaries.clear();
    else if (k == "notify") c.notify.clear();
    else if (k == "rate-limit-exempt") c.rrl.exempt.clear();
    else if (k == "zone-include-dir") c.zone_limits.include_dirs.clear();
    else if (k == "zone-url") c.zone_urls.clear();
    else if (k == "trust-anchor") c.trust_anchors.clear();
}

} // namespace

Expected<bool, ConfigError> apply_option(Config &c, const std::string &key, const std::string &v) {
    uint64_t n = 0;
    if (key == "listen") {
        auto a = parse_sockaddr(v, kDnsPort);
        if (!a) return unexpected(err("bad listen address '" + v + "' (want ADDR:PORT or [V6]:PORT)"));
        c.listen.push_back(*a);
    } else if (key == "zone") {
        if (v.empty()) return unexpected(err("--zone needs a file"));
        c.zones.push_back(v);
    } else if (key == "upstream") {
        if (transport::is_encrypted_uri(v) || v.rfind("http://", 0) == 0) {  // DoT / DoH (sdk/transport)
            auto ep = transport::parse_upstream(v);
            if (!ep) return unexpected(err("bad upstream '" + v + "': " + ep.error().reason));
            UpstreamConfig u{v, {}, true};
            if (ep->kind == transport::UpstreamEndpoint::Kind::dot) {
                bool v6 = ep->host.find(':') != std::string::npos;
                auto a = parse_sockaddr((v6 ? "[" + ep->host + "]" : ep->host) + ":" + std::to_string(ep->port), kDnsPort);
                if (a) u.addr = *a;
            }
            c.upstreams.push_back(u);
            c.upstreams_given = true;
            return true;
        }
        if (v.find("://") != std::string::npos)
            return unexpected(err("upstream '" + v + "': unknown scheme (want ADDR[:PORT])"));
        auto a = parse_sockaddr(v, kDnsPort);
        if (!a) return unexpected(err("bad upstream '" + v + "' (want ADDR[:PORT])"));
        c.upstreams.push_back(UpstreamConfig{v, *a});
        c.upstreams_given = true;
    } else if (key == "allow") {
        auto p = parse_cidr(v);
        if (!p) return unexpected(err("bad --allow '" + v + "' (want a CIDR like 192.0.2.0/24)"));
        c.allow.push_back(*p);
    } else if (key == "deny") {
        auto p = parse_cidr(v);
        if (!p) return unexpected(err("bad --deny '" + v + "' (want a CIDR like 127.0.0.2/32)"));
        c.deny.push_back(*p);
    } else if (key == "log-level") {
        auto l = parse_log_level(v);
        if (!l) return unexpected(err("bad --log-level '" + v + "' (want error, warn, info or debug)"));
        c.log_level = *l;
    } else if (key == "metrics") {
        auto a = parse_sockaddr(v, AddressRules{.default_port = 9153});
        if (!a) return unexpected(err("bad --metrics address '" + v + "'"));
        c.metrics = *a;
        c.metrics_text = v;
    } else if (key == "threads") {
        if (!parse_uint(v, 64, n) || n == 0) return unexpected(err("bad --threads '" + v + "' (1..64)"));
        c.threads = unsigned(n);
    } else if (key == "cache-size") {
        // MB by default; a K or M suffix says it.
        std::string num = v;
        unsigned shift = 20;
        if (!num.empty() && (num.back() == 'K' || num.back() == 'k')) shift = 10, num.pop_back();
        else if (!num.empty() && (num.back() == 'M' || num.back() == 'm')) num.pop_back();
        if (!parse_uint(num, 1 << 16, n)) return unexpected(err("bad --cache-size '" + v + "' (MB, or with a K/M suffix)"));
        c.cache_bytes = size_t(n) << shift;
    } else if (key == "hide-version" || key == "hide-identity") {
        if (v != "yes" && v != "no") return unexpected(err("bad --" + key + " '" + v + "' (yes or no)"));
        (key == "hide-version" ? c.hide_version : c.hide_identity) = v == "yes";
    } else if (key == "stale-seconds") {
        if (!parse_uint(v, 7 * 86400, n)) return unexpected(err("bad --stale-seconds '" + v + "'"));
        c.stale_seconds = uint32_t(n);
    } else if (key == "upstream-timeout") {
        if (!parse_uint(v, 60000, n) || n < 10) return unexpected(err("bad --upstream-timeout '" + v + "' (ms)"));
        c.upstream_timeout_ms = uint32_t(n);
    } else if (key == "tcp-idle-timeout") {
        if (!parse_uint(v, 3600000, n) || n < 100) return unexpected(err("bad --tcp-idle-timeout '" + v + "' (ms)"));
        c.tcp_idle_ms = uint32_t(n);
    } else if (key == "tcp-output-limit") {
        if (!parse_uint(v, 64u << 20, n) || n < 4096)
            return unexpected(err("bad --tcp-output-limit '" + v + "' (bytes, 4096..67108864)"));
        c.tcp_output_limit = size_t(n);
    } else if (key == "tcp-connections") {
        if (!parse_uint(v, 1000000, n) || n < 1) return unexpected(err("bad --tcp-connections '" + v + "' (1..1000000)"));
        c.tcp_connections = uint32_t(n);
    } else if (key == "tcp-connections-per-client") {
        if (!parse_uint(v, 1000000, n))
            return unexpected(err("bad --tcp-connections-per-client '" + v + "' (0..1000000; 0: no limit)"));
        c.tcp_connections_per_client = uint32_t(n);
    } else if (key == "max-inflight") {
        if (!parse_uint(v, 1000000, n) || n < 1) return unexpected(err("bad --max-inflight '" + v + "' (1..1000000)"));
        c.max_inflight = uint32_t(n);
    } else if (key == "max-inflight-per-client") {
        if (!parse_uint(v, 1000000, n))
            return unexpected(err("bad --max-inflight-per-client '" + v + "' (0..1000000; 0: no limit)"));
        c.max_inflight_per_client = uint32_t(n);
    } else if (key == "authority-queue") {
        if (!parse_uint(v, 1000000, n) || n < 1) return unexpected(err("bad --authority-queue '" + v + "' (1..1000000)"));
        c.authority_queue = uint32_t(n);
    } else if (key == "cache-max-ttl") {
        if (!parse_uint(v, 0x7fffffff, n) || n < 1) return unexpected(err("bad --cache-max-ttl '" + v + "' (seconds, 1..2147483647)"));
        c.cache_max_ttl = uint32_t(n);
    } else if (key == "cache-max-negative-ttl") {
        if (!parse_uint(v, 0x7fffffff, n) || n < 1)
            return unexpected(err("bad --cache-max-negative-ttl '" + v + "' (seconds, 1..2147483647)"));
        c.cache_max_negative_ttl = uint32_t(n);
    } else if (key == "key") {
        size_t colon = v.find(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == v.size())
            return unexpected(err("bad --key '" + v + "' (want NAME:BASE64SECRET)"));
        c.keys.push_back(v);
    } else if (key == "update-key") {
        if (v.empty()) return unexpected(err("--update-key needs a key name"));
        c.update_keys.push_back(v);
    } else if (key == "secondary") {
        size_t eq = v.find('=');
        if (eq == std::string::npos || eq == 0 || !parse_sockaddr(v.substr(eq + 1), kDnsPort))
            return unexpected(err("bad --secondary '" + v + "' (want ZONE=ADDR[:PORT])"));
        c.secondaries.push_back(v);
    } else if (key == "notify") {
        if (!parse_sockaddr(v, kDnsPort)) return unexpected(err("bad --notify '" + v + "' (want ADDR[:PORT])"));
        c.notify.push_back(v);
    } else if (key == "state-dir") {
        if (v.empty()) return unexpected(err("--state-dir needs a directory"));
        c.state_dir = v;
    } else if (key == "control-socket") {
        // A path ("none": off). The directory must exist; aisidd makes only the socket.
        if (v.empty()) return unexpected(err("--control-socket needs a path (or none)"));
        if (v != "none" && v.size() >= 108) return unexpected(err("--control-socket path too long (at most 107 bytes)"));
        c.control_socket = v == "none" ? "" : v;
    } else if (key == "user") {
        if (v.empty()) return unexpected(err("--user needs a user name"));
        c.user = v;
    } else if (key == "zone-include-dir") {
        if (v.empty()) return unexpected(err("--zone-include-dir needs a directory"));
        c.zone_limits.include_dirs.push_back(v);
    } else if (key == "zone-max-includes") {
        if (!parse_uint(v, 100000, n)) return unexpected(err("bad --zone-max-includes '" + v + "' (0..100000)"));
        c.zone_limits.max_includes = unsigned(n);
    } else if (key == "zone-max-bytes") {
        if (!parse_uint(v, 1 << 16, n) || n == 0)
            return unexpected(err("bad --zone-max-bytes '" + v + "' (MB, 1..65536)"));
        c.zone_limits.max_bytes = uint64_t(n) << 20;
    } else if (key == "max-records-per-name") {
        if (!parse_uint(v, 1000000, n) || n == 0)
            return unexpected(err("bad --max-records-per-name '" + v + "' (1..1000000)"));
        c.max_records_per_name = size_t(n);
    } else if (key == "rate-limit") {
        if (!parse_uint(v, kRrlMaxRate, n))
            return unexpected(err("bad --rate-limit '" + v + "' (replies per second, 0..10000; 0 is off)"));
        c.rrl.responses_per_second = uint32_t(n);
    } else if (key == "rate-limit-errors") {
        if (!parse_uint(v, kRrlMaxRate, n))
            return unexpected(err("bad --rate-limit-errors '" + v + "' (replies per second, 0..10000; 0: as --rate-limit)"));
        c.rrl.errors_per_second = uint32_t(n);
    } else if (key == "rate-limit-slip") {
        if (!parse_uint(v, 10, n)) return unexpected(err("bad --rate-limit-slip '" + v + "' (0..10; 0 drops every limited reply)"));
        c.rrl.slip = uint32_t(n);
    } else if (key == "rate-limit-window") {
        if (!parse_uint(v, kRrlMaxWindow, n) || n == 0)
            return unexpected(err("bad --rate-limit-window '" + v + "' (seconds, 1..60)"));
        c.rrl.window = uint32_t(n);
    } else if (key == "rate-limit-ipv4-prefix") {
        if (!parse_uint(v, 32, n) || n < 8) return unexpected(err("bad --rate-limit-ipv4-prefix '" + v + "' (8..32)"));
        c.rrl.ipv4_prefix = uint8_t(n);
    } else if (key == "rate-limit-ipv6-prefix") {
        if (!parse_uint(v, 128, n) || n < 16) return unexpected(err("bad --rate-limit-ipv6-prefix '" + v + "' (16..128)"));
        c.rrl.ipv6_prefix = uint8_t(n);
    } else if (key == "rate-limit-exempt") {
        auto p = parse_cidr(v);
        if (!p) return unexpected(err("bad --rate-limit-exempt '" + v + "' (want a CIDR like 192.0.2.0/24)"));
        c.rrl.exempt.push_back(*p);
    } else if (key == "rate-limit-table-size") {
        if (!parse_uint(v, 1u << 24, n) || n < 1024)
            return unexpected(err("bad --rate-limit-table-size '" + v + "' (buckets, 1024..16777216)"));
        c.rrl_table_size = size_t(n);
    } else if (key == "zone-url") {
        size_t eq = v.find('=');
        if (eq == std::string::npos || eq == 0 || v.compare(eq + 1, 8, "https://") != 0 || v.size() <= eq + 9)
            return unexpected(err("bad --zone-url '" + v + "' (want ZONE=https://HOST[:PORT]/PATH)"));
        c.zone_urls.push_back(v);
    } else if (key == "trust-anchor") {
        size_t eq = v.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
            return unexpected(err("bad --trust-anchor '" + v + "' (want ZONE=FILE of DS or DNSKEY records)"));
        c.trust_anchors.push_back(v);
    } else if (key == "require-zonemd") {
        if (v != "yes" && v != "no") return unexpected(err("bad --require-zonemd '" + v + "' (yes or no)"));
        c.require_zonemd = v == "yes";
    } else if (key == "zone-fetch-timeout") {
        if (!parse_uint(v, 3600, n) || n == 0)
            return unexpected(err("bad --zone-fetch-timeout '" + v + "' (seconds, 1..3600)"));
        c.zone_fetch_timeout_s = uint32_t(n);
    } else if (key == "ca-file") {
        if (v.empty()) return unexpected(err("--ca-file needs a file"));
        c.ca_file = v;
    } else {
        return unexpected(err("unknown option '" + key + "'"));
    }
    return true;
}

std::string redacted_upstream(const std::string &text) {
    size_t scheme = text.find("://");
    if (scheme == std::string::npos) return text;
    size_t host = scheme + 3;
    size_t path = text.find_first_of("/?#", host);
    std::string authority = text.substr(host, path == std::string::npos ? std::string::npos : path - host);
    size_t at = authority.rfind('@');
    std::string out = text.substr(0, host) + (at == std::string::npos ? authority : "REDACTED@" + authority.substr(at + 1));
    if (path == std::string::npos) return out;
    std::string rest = text.substr(path);  // the path, a query, a fragment (DoT: the TLS name)
    size_t q = rest.find('?');
    if (q == std::string::npos) return out + rest;
    size_t frag = rest.find('#', q);
    return out + rest.substr(0, q) + "?REDACTED" + (frag == std::string::npos ? "" : rest.substr(frag));
}

Expected<bool, ConfigError> read_config_file(const std::string &path, Config &out) {
    std::ifstream f(path);
    if (!f) return unexpected(err(path + ": cannot read the config file"));
    std::string line;
    int ln = 0;
    while (std::getline(f, line)) {
        ++ln;
        size_t hash = line.find('#');
        if (hash != std::string::npos) line.resize(hash);
        line = trim(line);
        if (line.empty()) continue;
        size_t eq = line.find('=');
        if (eq == std::string::npos)
            return unexpected(err(path + ":" + std::to_string(ln) + ": expected 'key = value'"));
        std::string k = trim(line.substr(0, eq)), v = trim(line.substr(eq + 1));
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
        if (k == "config") return unexpected(err(path + ":" + std::to_string(ln) + ": 'config' cannot be nested"));
        auto r = apply_option(out, k, v);
        if (!r) return unexpected(err(path + ":" + std::to_string(ln) + ": " + r.error().message));
    }
    return true;
}

Expected<ParseOutcome, ConfigError> parse_command_line(int argc, char **argv, Config &out) {
    std::vector<std::pair<std::string, std::string>> opts;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") return ParseOutcome::help;
        if (a == "--version") return ParseOutcome::version;
        if (a.rfind("--", 0) != 0) return unexpected(err("unexpected argument '" + a + "'"));
        std::string k = a.substr(2), v;
        size_t eq = k.find('=');
        if (eq != std::string::npos) {
            v = k.substr(eq + 1);
            k.resize(eq);
        } else {
            if (i + 1 >= argc) return unexpected(err("option --" + k + " needs a value"));
            v = argv[++i];
        }
        opts.emplace_back(k, v);
    }
    for (auto &[k, v] : opts)
        if (k == "config") out.config_file = v;
    if (!out.config_file.empty()) {
        auto r = read_config_file(out.config_file, out);
        if (!r) return unexpected(r.error());
    }
    std::set<std::string> seen;
    for (auto &[k, v] : opts) {
        if (k == "config") continue;
        if (is_repeatable(k) && seen.insert(k).second) clear_list(out, k);
        if (k == "upstream") out.upstreams_given = true;
        auto r = apply_option(out, k, v);
        if (!r) return unexpected(r.error());
    }
    return ParseOutcome::ok;
}

Expected<bool, ConfigError> finish_config(Config &c, const std::string &resolv_conf) {
    if (c.listen.empty()) {
        c.listen.push_back(*parse_sockaddr("127.0.0.1:53", kDnsPort));
        c.listen.push_back(*parse_sockaddr("[::1]:53", kDnsPort));
    }
    if (c.threads == 0) c.threads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
    auto is_self = [&](const SockAddr &u) {
        for (const SockAddr &l : c.listen) {
            if (u.port() != l.port()) continue;
            if (u.same_host(l)) return true;
            // A wildcard listener answers on every local address; loopback is surely one.
            bool wild = false;
            if (l.family() == AF_INET)
                wild = reinterpret_cast<const sockaddr_in &>(l.ss).sin_addr.s_addr == 0;
            else
                wild = IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6 &>(l.ss).sin6_addr);
            if (wild && u.family() == l.family() && is_loopback(u.ss)) return true;
        }
        return false;
    };
    if (!c.upstreams_given) {
        std::ifstream f(resolv_conf);
        std::string line;
        while (std::getline(f, line)) {
            std::istringstream is(line);
            std::string kw, addr;
            if (!(is >> kw >> addr) || kw != "nameserver") continue;
            auto a = parse_sockaddr(addr, kDnsPort);  // a link-local scope (fe80::1%eth0) included
            if (!a || is_self(*a)) continue;  // ourselves: forwarding there would loop
            c.upstreams.push_back(UpstreamConfig{addr, *a});
        }
    } else {
        // An explicit upstream that is one of our own listeners is a loop.
        for (const UpstreamConfig &u : c.upstreams)
            if (is_self(u.addr))
                return unexpected(err("upstream " + u.text + " is aisidd itself (a forwarding loop)"));
    }
    return true;
}

} // namespace aisid::resolver
