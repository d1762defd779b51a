// aisid-ingress: programs the kernel's SRv6 routes for AISID prefixes toward
// the egress gateways (gateway/README.md "aisid-ingress").
//
// Data path: entirely in the kernel. Each egress gateway is a nexthop object
// that encapsulates in SRv6 toward its SID (`encap seg6 mode encap`); the
// prefixes route to a *resilient* nexthop group of them. The daemon feeds the
// load reports it receives (UDP control input) to aisid_sched's PathSet and
// turns the path weights into the group's weights.
//
// Why established flows survive a weight change: a resilient group maps the
// flow hash to a fixed table of buckets, each bucket owned by one nexthop. A
// weight change only re-assigns buckets that have been idle for idle_timer
// seconds, so a bucket carrying a live flow keeps its egress gateway; only a
// gateway that is removed (down) gives up its buckets at once — its flows are
// lost anyway. (A plain multipath route uses hash-threshold: changing one
// weight shifts every region boundary and moves live flows.)
//
// Why iproute2 rather than libmnl: every change is one `ip` call, i.e. one
// RTM_NEWNEXTHOP or RTM_NEWROUTE with NLM_F_REPLACE, applied atomically by the
// kernel; changes happen at most a few times a second, so spawning ip costs
// nothing that matters, and iproute2 is the reference encoder of the seg6 and
// nexthop-group attributes (one less dependency, one less place to get wrong).
#include "aisid/dataplane/gateway_cli.hpp"
#include "aisid/dataplane/dataplane.hpp"
#include "aisid/dataplane/encap_plane.hpp"
#include "aisid/core/log.hpp"
#include "aisid/egress/net_util.hpp"

#include <aisid/address.hpp>
#include <aisid/sched/ingress.hpp>

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "aisid/version.h"

namespace aisid::gw {
namespace {

constexpr const char *kProg = "aisid-ingress";

struct GatewayConfig {
    std::string name, sid, via, dev;
    double weight = 1.0;
};

struct IngressConfig {
    std::vector<std::string> prefixes;
    std::vector<NetEndpoint> control;
    std::vector<GatewayConfig> gateways;
    int report_timeout_ms = 1000;
    int buckets = 128;
    int idle_timer_s = 10;
    uint32_t nexthop_id = 4200;
    uint32_t max_weight = 255;
    uint32_t hysteresis = 8; // integer weight change that triggers a reprogram
    Dataplane dataplane = Dataplane::automatic;
    std::string tun_name = "aisid-in%d"; // the userspace data plane's device
    int tun_mtu = 0;                      // 0: the smallest gateway device's MTU less the SRv6 overhead
    sched::WeightParams params;
};

bool parse_num(const std::string &s, double &out) {
    char *end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return !s.empty() && end && *end == 0 && std::isfinite(out);
}

bool load_config(const std::string &path, IngressConfig &cfg, std::string &err) {
    const bool read = read_config_file(path, err, [&](const std::vector<std::string> &t, const auto &fail) {
        const std::string &k = t[0];
        double v = 0;
        if (k == "prefix" && t.size() == 2) {
            if (!parse_prefix64(t[1])) return fail("bad prefix '" + t[1] + "' (want an IPv6 /64)");
            cfg.prefixes.push_back(format_prefix64(*parse_prefix64(t[1])));
        } else if (k == "control" && t.size() == 2) {
            auto ep = parse_endpoint(t[1]);
            if (!ep) return fail("bad address '" + t[1] + "' (want [ADDR]:PORT)");
            cfg.control.push_back(*ep);
        } else if (k == "gateway" && t.size() >= 3) {
            GatewayConfig g;
            g.name = t[1];
            for (size_t i = 2; i < t.size(); ++i) {
                auto eq = t[i].find('=');
                if (eq == std::string::npos) return fail("bad gateway field '" + t[i] + "'");
                std::string key = t[i].substr(0, eq), val = t[i].substr(eq + 1);
                if (key == "sid" || key == "via") {
                    if (!parse_endpoint(val, 0)) return fail("bad address '" + val + "'");
                    (key == "sid" ? g.sid : g.via) = val;
                } else if (key == "dev") {
                    g.dev = val;
                } else if (key == "weight") {
                    if (!parse_num(val, g.weight) || g.weight <= 0) return fail("bad weight '" + val + "'");
                } else {
                    return fail("unknown gateway field '" + key + "'");
                }
            }
            if (g.sid.empty() || g.dev.empty()) return fail("gateway " + g.name + " needs sid= and dev=");
            cfg.gateways.push_back(g);
        } else if (k == "dataplane" && t.size() == 2) {
            auto d = parse_dataplane(t[1]);
            if (!d) return fail("bad dataplane '" + t[1] + "' (want kernel, userspace or auto)");
            cfg.dataplane = *d;
        } else if (k == "tun" && t.size() == 2) {
            if (t[1].size() > 15) return fail("bad TUN device name '" + t[1] + "' (1 to 15 characters)");
            cfg.tun_name = t[1];
        } else if (t.size() == 2 && parse_num(t[1], v) && v >= 0) {
            if (k == "report-timeout") cfg.report_timeout_ms = static_cast<int>(v);
            else if (k == "buckets" && v >= 2 && v <= 65535) cfg.buckets = static_cast<int>(v);
            else if (k == "idle-timer" && v >= 1) cfg.idle_timer_s = static_cast<int>(v);
            else if (k == "nexthop-id" && v >= 1 && v < 4e9) cfg.nexthop_id = static_cast<uint32_t>(v);
            else if (k == "max-weight" && v >= 2 && v <= 255) cfg.max_weight = static_cast<uint32_t>(v);
            else if (k == "hysteresis" && v <= 255) cfg.hysteresis = static_cast<uint32_t>(v);
            else if (k == "weight-floor" && v > 0 && v <= 1) cfg.params.floor = v;
            else if (k == "weight-alpha" && v > 0) cfg.params.alpha = v;
            else if (k == "delay-ref" ) cfg.params.delay_ref_ms = v;
            else if (k == "tun-mtu" && v >= 1280 && v <= 65535) cfg.tun_mtu = static_cast<int>(v);
            else return fail("unknown or malformed line '" + k + "'");
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
    if (cfg.prefixes.empty()) return fail("no prefix line");
    if (cfg.gateways.empty()) return fail("no gateway line");
    return true;
}

class Ingress {
public:
    explicit Ingress(IngressConfig c) : cfg_(std::move(c)), paths_(cfg_.params) {
        for (const auto &g : cfg_.gateways) {
            sched::PathSpec p;
            p.id = sched::hash_name(g.sid);
            p.name = g.name;
            p.base_weight = g.weight;
            paths_.add_path(p);
            heard_.push_back(0);
        }
        programmed_.assign(cfg_.gateways.size(), 0);
    }
    int run();

private:
    uint32_t nh_id(size_t i) const { return cfg_.nexthop_id + 1 + static_cast<uint32_t>(i); }
    uint32_t group_id() const { return cfg_.nexthop_id; }
    int ip(std::vector<std::string> args, bool quiet = false);
    int install_nexthops();
    int apply(bool force);
    void cleanup();
    void on_control(int fd);
    void check_timeouts();

    int start_userspace();
    bool userspace() const { return encap_ != nullptr; }

    IngressConfig cfg_;
    std::unique_ptr<EncapPlane> encap_; // the userspace data plane, when it runs
    sched::PathSet paths_;
    std::vector<uint64_t> heard_;
    std::vector<uint32_t> programmed_; // integer weights in the kernel (0 = not a member)
    bool group_exists_ = false;
    bool route_unreachable_ = false;
};

int Ingress::ip(std::vector<std::string> args, bool quiet) {
    args.insert(args.begin(), "ip");
    std::string err;
    int rc = run_program(args, &err);
    if (rc != 0 && !quiet) {
        std::string cmd;
        for (const auto &a : args) cmd += (cmd.empty() ? "" : " ") + a;
        logf(LogLevel::error, "'%s' failed: %s", cmd.c_str(), err.c_str());
    }
    return rc;
}

// The userspace data plane (gateway/dataplane/include/aisid/dataplane/encap_plane.hpp): the prefixes
// route to a TUN device whose reader does H.Encaps toward the chosen SID.
int Ingress::start_userspace() {
    std::vector<EncapPlane::Path> paths;
    for (const auto &g : cfg_.gateways) {
        EncapPlane::Path p;
        p.name = g.name;
        p.sid = parse_endpoint(g.sid, 0)->sa.sin6_addr;
        p.id = sched::hash_name(g.sid);
        p.dev = g.dev;
        paths.push_back(p);
    }
    EncapPlane::Options o;
    o.tun_pattern = cfg_.tun_name;
    o.mtu = cfg_.tun_mtu;
    o.flow_idle_ms = static_cast<uint64_t>(cfg_.idle_timer_s) * 1000;
    std::string err;
    encap_ = EncapPlane::create(std::move(paths), o, err);
    if (!encap_) {
        logf(LogLevel::error, "cannot start the userspace data plane: %s", err.c_str());
        return 3;
    }
    for (size_t i = 0; i < cfg_.gateways.size(); ++i)
        logf(LogLevel::info, "path %s: userspace SRv6 H.Encaps toward SID %s from %s", cfg_.gateways[i].name.c_str(),
             cfg_.gateways[i].sid.c_str(), format_addr(encap_->source_of(i)).c_str());
    logf(LogLevel::info, "userspace data plane on %s (mtu %d), flows pinned until idle %d s", encap_->tun_name().c_str(),
         encap_->mtu(), cfg_.idle_timer_s);
    encap_->start();
    return 0;
}

int Ingress::install_nexthops() {
    if (userspace()) return 0;
    for (size_t i = 0; i < cfg_.gateways.size(); ++i) {
        const auto &g = cfg_.gateways[i];
        std::vector<std::string> a = {"-6", "nexthop", "replace", "id", std::to_string(nh_id(i)), "encap", "seg6",
                                      "mode", "encap", "segs", g.sid};
        if (!g.via.empty()) a.insert(a.end(), {"via", g.via});
        a.insert(a.end(), {"dev", g.dev});
        if (ip(a) != 0) return 3;
        logf(LogLevel::info, "path %s: nexthop %u = SRv6 encap toward SID %s via %s dev %s", g.name.c_str(), nh_id(i),
             g.sid.c_str(), g.via.empty() ? "-" : g.via.c_str(), g.dev.c_str());
    }
    return 0;
}

// Brings the kernel in line with the PathSet's weights. Membership changes
// always apply; weight-only changes apply past the hysteresis (each one costs
// nothing to live flows, but churn helps nobody).
int Ingress::apply(bool force) {
    std::vector<uint32_t> w = paths_.integer_weights(cfg_.max_weight);
    bool member_change = false, big_change = false;
    for (size_t i = 0; i < w.size(); ++i) {
        if ((w[i] > 0) != (programmed_[i] > 0)) member_change = true;
        uint32_t d = w[i] > programmed_[i] ? w[i] - programmed_[i] : programmed_[i] - w[i];
        if (d > cfg_.hysteresis) big_change = true;
    }
    if (!force && !member_change && !big_change) return 0;

    std::string group, desc;
    for (size_t i = 0; i < w.size(); ++i) {
        desc += (desc.empty() ? "" : " ") + cfg_.gateways[i].name + "=" + std::to_string(w[i]);
        if (w[i] == 0) continue;
        group += (group.empty() ? "" : "/") + std::to_string(nh_id(i)) + "," + std::to_string(w[i]);
    }
    if (userspace()) encap_->set_weights(w);
    if (group.empty()) {
        // No egress gateway left: an unreachable route makes clients fail at
        // once (ICMPv6 no route), so the SDK falls back to the legacy endpoint.
        for (const auto &p : cfg_.prefixes)
            if (ip({"-6", "route", "replace", "unreachable", p}) != 0) return 3;
        if (group_exists_ && !userspace()) ip({"nexthop", "del", "id", std::to_string(group_id())}, true);
        group_exists_ = false;
        route_unreachable_ = true;
        logf(LogLevel::warn, "no egress gateway is up: %zu prefix(es) unreachable", cfg_.prefixes.size());
    } else if (userspace()) {
        if (!group_exists_ || route_unreachable_ || force) {
            for (const auto &p : cfg_.prefixes)
                if (ip({"-6", "route", "replace", p, "dev", encap_->tun_name()}) != 0) return 3;
        }
    } else {
        std::vector<std::string> a = {"nexthop", group_exists_ ? "replace" : "add", "id", std::to_string(group_id()),
                                      "group", group, "type", "resilient", "buckets", std::to_string(cfg_.buckets),
                                      "idle_timer", std::to_string(cfg_.idle_timer_s)};
        if (ip(a) != 0) return 3;
        if (!group_exists_ || route_unreachable_ || force) {
            for (const auto &p : cfg_.prefixes)
                if (ip({"-6", "route", "replace", p, "nhid", std::to_string(group_id())}) != 0) return 3;
        }
    }
    if (!group.empty()) {
        group_exists_ = true;
        route_unreachable_ = false;
        std::string loads;
        for (size_t i = 0; i < w.size(); ++i) {
            const auto &r = paths_.report_of(static_cast<sched::PathId>(i));
            char b[128];
            std::snprintf(b, sizeof b, "%s%s %s load %.2f link %.2f", loads.empty() ? "" : ", ",
                          cfg_.gateways[i].name.c_str(), r.up ? "up" : "down", r.load, r.link_util);
            loads += b;
        }
        logf(LogLevel::info, "weights %s (%s)", desc.c_str(), loads.c_str());
    }
    programmed_ = w;
    return 0;
}

void Ingress::cleanup() {
    for (const auto &p : cfg_.prefixes) ip({"-6", "route", "del", p}, true);
    if (userspace()) {
        encap_->stop();
        auto st = encap_->stats();
        logf(LogLevel::info, "userspace data plane: %llu packets, %llu encapsulated, %llu without a path, %llu malformed, "
                "%llu write errors, %llu flows moved off a removed path",
             static_cast<unsigned long long>(st.packets), static_cast<unsigned long long>(st.encapsulated),
             static_cast<unsigned long long>(st.no_path), static_cast<unsigned long long>(st.malformed),
             static_cast<unsigned long long>(st.write_errors), static_cast<unsigned long long>(st.flows_moved));
        encap_.reset();
        return;
    }
    ip({"nexthop", "del", "id", std::to_string(group_id())}, true);
    for (size_t i = 0; i < cfg_.gateways.size(); ++i) ip({"nexthop", "del", "id", std::to_string(nh_id(i))}, true);
}

// "aisid-gw gw=NAME up=0|1 load=L [link=U] [delay=MS]" (gateway/README.md).
void Ingress::on_control(int fd) {
    for (int burst = 0; burst < 64; ++burst) {
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0) return;
        std::string_view line(buf, static_cast<size_t>(n));
        auto gw = field(line, "gw");
        if (line.substr(0, 8) != "aisid-gw" || !gw) {
            logf(LogLevel::debug, "malformed control message ignored");
            continue;
        }
        for (size_t i = 0; i < cfg_.gateways.size(); ++i) {
            if (cfg_.gateways[i].name != *gw) continue;
            sched::PathReport r = paths_.report_of(static_cast<sched::PathId>(i));
            auto num = [&](const char *k, double &dst) {
                if (auto v = field(line, k)) {
                    double d;
                    if (parse_num(*v, d)) dst = d;
                }
            };
            double up = 1;
            num("up", up);
            bool was_up = r.up;
            r.up = up != 0;
            num("load", r.load);
            num("link", r.link_util);
            num("delay", r.delay_ms);
            paths_.report(static_cast<sched::PathId>(i), r);
            heard_[i] = now_ms();
            if (was_up != r.up) logf(LogLevel::info, "path %s %s (reported)", gw->c_str(), r.up ? "up" : "down");
        }
    }
}

void Ingress::check_timeouts() {
    if (cfg_.report_timeout_ms <= 0) return;
    const uint64_t now = now_ms();
    for (size_t i = 0; i < heard_.size(); ++i) {
        auto id = static_cast<sched::PathId>(i);
        if (paths_.report_of(id).up && now - heard_[i] > static_cast<uint64_t>(cfg_.report_timeout_ms)) {
            paths_.set_up(id, false);
            logf(LogLevel::warn, "path %s down: no report for %d ms", cfg_.gateways[i].name.c_str(), cfg_.report_timeout_ms);
        }
    }
}

int Ingress::run() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = sfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    std::vector<int> ctl;
    for (const auto &c : cfg_.control) {
        int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
        if (bind(fd, reinterpret_cast<const sockaddr *>(&c.sa), sizeof c.sa) != 0) {
            logf(LogLevel::error, "cannot listen on udp %s: %s", c.to_string().c_str(), std::strerror(errno));
            return 3;
        }
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        ctl.push_back(fd);
    }
    // Gateways start up: the first report (or its absence past the timeout)
    // corrects that.
    const uint64_t start = now_ms();
    for (auto &h : heard_) h = start;
    // Hash on the 5-tuple and nothing else: policy 3 (custom) with fields
    // src/dst address, protocol, src/dst port (0x37). Not policy 0: it hashes
    // the flow label, which a sender may change inside a connection (Linux does
    // on RTO). Not policy 1: it takes a hash the packet already carries
    // (skb->l4_hash) as is, and over veth that is the sending socket's txhash,
    // which Linux also re-rolls on RTO; either would move a live TCP flow to
    // another egress gateway. Policy 1 is the fallback on kernels without 3.
    {
        std::ofstream f("/proc/sys/net/ipv6/fib_multipath_hash_fields");
        f << "0x0037\n";
        f.close();
        std::ofstream hp("/proc/sys/net/ipv6/fib_multipath_hash_policy");
        hp << (f ? "3\n" : "1\n");
        hp.close();
        if (!f || !hp) logf(LogLevel::warn, "cannot set net.ipv6.fib_multipath_hash_policy=3 (5-tuple fields)%s",
                            f ? "" : ": using policy 1");
    }
    const DataplaneChoice dp = choose_dataplane(cfg_.dataplane, false);
    if (!dp.error.empty()) {
        logf(LogLevel::error, "%s", dp.error.c_str());
        return 3;
    }
    logf(LogLevel::info, "data plane: %s", dp.reason.c_str());
    if (dp.plane == Dataplane::userspace) {
        if (int rc = start_userspace()) return rc;
    }
    if (int rc = install_nexthops()) {
        cleanup();
        return rc;
    }
    if (int rc = apply(true)) {
        cleanup();
        return rc;
    }
    if (userspace())
        logf(LogLevel::info, "ready: %zu prefix(es), %zu egress gateway(s), userspace SRv6 on %s (flow idle %d s)",
             cfg_.prefixes.size(), cfg_.gateways.size(), encap_->tun_name().c_str(), cfg_.idle_timer_s);
    else
        logf(LogLevel::info, "ready: %zu prefix(es), %zu egress gateway(s), resilient group %u (%d buckets, idle %d s)",
             cfg_.prefixes.size(), cfg_.gateways.size(), group_id(), cfg_.buckets, cfg_.idle_timer_s);
    int rc = 0;
    for (bool running = true; running;) {
        epoll_event evs[16];
        int n = epoll_wait(ep, evs, 16, 100);
        for (int i = 0; i < n; ++i) {
            if (evs[i].data.fd == sfd) running = false;
            else on_control(evs[i].data.fd);
        }
        check_timeouts();
        if ((rc = apply(false)) != 0) break;
    }
    logf(LogLevel::info, "stopping: removing routes and nexthops");
    cleanup();
    for (int fd : ctl) close(fd);
    return rc;
}

void usage(FILE *out) {
    std::fprintf(out,
                 "usage: aisid-ingress --config FILE [--dataplane kernel|userspace|auto] [--log-level LEVEL] [--check]\n"
                 "Steers AISID prefixes over SRv6 toward the egress gateways' SIDs, per flow, with\n"
                 "weights that follow the load the egress gateways (or a controller) report on the\n"
                 "UDP control input. Kernel data plane: a resilient nexthop group of `encap seg6`\n"
                 "nexthops. Userspace data plane: H.Encaps over a TUN device, flows pinned.\n"
                 "Config format: gateway/README.md.\n"
                 "  --config FILE     the ingress configuration (required)\n"
                 "  --dataplane D     kernel (seg6 lwtunnel), userspace (TUN device), auto (default:\n"
                 "                    the kernel when it accepts a seg6 route, else userspace)\n"
                 "  --log-level L     debug, info (default), warning, error\n"
                 "  --check           parse the configuration and exit\n"
                 "  --help, --version\n"
                 "Exit: 0 ok, 2 usage or bad configuration, 3 route programming failed.\n");
}

} // namespace
} // namespace aisid::gw

int main(int argc, char **argv) {
    using namespace aisid::gw;
    using namespace aisid;
    set_log_program(kProg);
    GatewayArgs args;
    if (auto code = parse_gateway_args(argc, argv, kProg, usage, args)) return *code;
    IngressConfig cfg;
    std::string err;
    if (!load_config(args.config, cfg, err)) {
        std::fprintf(stderr, "%s: %s\n", kProg, err.c_str());
        return 2;
    }
    if (args.dataplane) cfg.dataplane = *args.dataplane; // the command line wins
    if (args.check) return 0;
    setvbuf(stderr, nullptr, _IOLBF, 0);
    try {
        Ingress ing(std::move(cfg));
        return ing.run();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s: %s\n", kProg, e.what());
        return 3;
    }
}
