#include "aisid/egress/egress_config.hpp"

#include "aisid/dataplane/gateway_cli.hpp"

#include <charconv>
#include <fstream>

namespace aisid::gw {
namespace {

bool parse_uint(std::string_view s, uint64_t max, uint64_t &out) {
    uint64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v > max) return false;
    out = v;
    return true;
}

// "1:2:1" (object:function:method, decimal; 0 = any in that dimension).
bool parse_codes(std::string_view s, sched::ServiceCodes &c) {
    uint64_t v[3];
    for (int i = 0; i < 3; ++i) {
        size_t colon = i < 2 ? s.find(':') : s.size();
        if (colon == std::string_view::npos) return false;
        if (!parse_uint(s.substr(0, colon), 0xfffe, v[i])) return false;
        s = i < 2 ? s.substr(colon + 1) : std::string_view{};
    }
    c = {static_cast<uint16_t>(v[0]), static_cast<uint16_t>(v[1]), static_cast<uint16_t>(v[2])};
    return true;
}

} // namespace

bool load_egress_config(const std::string &path, EgressConfig &cfg, std::string &err) {
    const bool read = read_config_file(path, err, [&](const std::vector<std::string> &t, const auto &fail) {
        const std::string &k = t[0];
        auto want = [&](size_t n) { return t.size() == n; };
        uint64_t v = 0;
        if (k == "name" && want(2)) {
            cfg.name = t[1];
        } else if (k == "prefix" && want(2)) {
            auto p = parse_prefix64(t[1]);
            if (!p) return fail("bad prefix '" + t[1] + "' (want an IPv6 /64)");
            cfg.prefix = *p;
            cfg.have_prefix = true;
        } else if ((k == "tcp" || k == "udp") && t.size() >= 2) {
            for (size_t i = 1; i < t.size(); ++i) {
                if (!parse_uint(t[i], 65535, v) || v == 0) return fail("bad port '" + t[i] + "'");
                (k == "tcp" ? cfg.tcp_ports : cfg.udp_ports).push_back(static_cast<uint16_t>(v));
            }
        } else if ((k == "report" || k == "ingress") && want(2)) {
            auto ep = parse_endpoint(t[1]);
            if (!ep) return fail("bad address '" + t[1] + "' (want [ADDR]:PORT)");
            (k == "report" ? cfg.report_listen : cfg.ingress_report).push_back(*ep);
        } else if (k == "sid" && want(3)) {
            if (!parse_endpoint(t[1], 0)) return fail("bad SID '" + t[1] + "'");
            cfg.sid = t[1];
            cfg.sid_dev = t[2];
        } else if (k == "dataplane" && want(2)) {
            auto d = parse_dataplane(t[1]);
            if (!d) return fail("bad dataplane '" + t[1] + "' (want kernel, userspace or auto)");
            cfg.dataplane = *d;
        } else if (k == "tun" && want(2)) {
            if (t[1].empty() || t[1].size() > 15) return fail("bad TUN device name '" + t[1] + "' (1 to 15 characters)");
            cfg.tun_name = t[1];
        } else if (k == "routes" && want(2) && (t[1] == "on" || t[1] == "off")) {
            cfg.install_routes = t[1] == "on";
        } else if (k == "policy" && want(2) && (t[1] == "sed" || t[1] == "wlc")) {
            cfg.policy = t[1] == "sed" ? sched::Policy::sed : sched::Policy::wlc;
        } else if (k == "overload" && want(2)) {
            try {
                cfg.overload = std::stod(t[1]);
            } catch (...) {
                return fail("bad overload '" + t[1] + "'");
            }
        } else if ((k == "probe-interval" || k == "connect-timeout" || k == "report-interval" ||
                    k == "udp-idle" || k == "node-timeout") && want(2)) {
            if (!parse_uint(t[1], 3600000, v) || v == 0) return fail("bad milliseconds '" + t[1] + "'");
            int ms = static_cast<int>(v);
            if (k == "probe-interval") cfg.probe_interval_ms = ms;
            else if (k == "connect-timeout") cfg.connect_timeout_ms = ms;
            else if (k == "report-interval") cfg.report_interval_ms = ms;
            else if (k == "udp-idle") cfg.udp_idle_ms = ms;
            else cfg.node_timeout_ms = ms;
        } else if (k == "relay-threads" && want(2)) {
            if (!parse_uint(t[1], 1024, v)) return fail("bad relay-threads '" + t[1] + "' (0..1024, 0: one per CPU)");
            cfg.relay_threads = static_cast<unsigned>(v);
        } else if (k == "legacy" && want(3)) {
            auto ep = parse_endpoint(t[1]);
            auto a = Aisid::parse(t[2]);
            if (!ep) return fail("bad address '" + t[1] + "' (want [ADDR]:PORT)");
            if (!a) return fail("bad AISID '" + t[2] + "'");
            cfg.legacy.push_back({*ep, *a});
        } else if (k == "node" && t.size() >= 3) {
            NodeConfig n;
            n.spec.name = t[1];
            auto ep = parse_endpoint(t[2]);
            if (!ep) return fail("bad node address '" + t[2] + "' (want [ADDR]:PORT)");
            n.addr = *ep;
            for (size_t i = 3; i < t.size(); ++i) {
                const std::string &kv = t[i];
                auto eq = kv.find('=');
                if (eq == std::string::npos) return fail("bad node field '" + kv + "'");
                std::string key = kv.substr(0, eq), val = kv.substr(eq + 1);
                if (key == "weight") {
                    if (!parse_uint(val, 65535, v)) return fail("bad weight '" + val + "'");
                    n.spec.weight = static_cast<uint32_t>(v);
                } else if (key == "latency") {
                    if (!parse_uint(val, 65535, v)) return fail("bad latency '" + val + "'");
                    n.spec.latency_ms = static_cast<uint16_t>(v);
                } else if (key == "serves") {
                    size_t s = 0;
                    while (s <= val.size()) {
                        size_t c = val.find(',', s);
                        if (c == std::string::npos) c = val.size();
                        sched::ServiceCodes codes;
                        if (!parse_codes(std::string_view(val).substr(s, c - s), codes))
                            return fail("bad codes '" + val.substr(s, c - s) + "' (want OBJECT:FUNCTION:METHOD)");
                        n.spec.serves.push_back(codes);
                        s = c + 1;
                    }
                } else {
                    return fail("unknown node field '" + key + "'");
                }
            }
            if (n.spec.serves.empty()) return fail("node " + n.spec.name + " serves nothing (serves=O:F:M,...)");
            for (const auto &o : cfg.nodes)
                if (o.spec.name == n.spec.name) return fail("duplicate node " + n.spec.name);
            cfg.nodes.push_back(std::move(n));
        } else {
            return fail("unknown or malformed line '" + k + "'");
        }
        return true;
    });
    if (!read) return false;
    // Whole-file checks name line 0.
    auto fail = [&](const std::string &what) {
        err = path + ":0: " + what;
        return false;
    };
    if (!cfg.have_prefix) return fail("no prefix line");
    if (cfg.tcp_ports.empty() && cfg.udp_ports.empty() && cfg.legacy.empty())
        return fail("nothing to serve (no tcp, udp or legacy line)");
    return true;
}

} // namespace aisid::gw
