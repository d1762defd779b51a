#include "aisid/resolver/daemon.hpp"
#include "aisid/authority/wiring.hpp"

#include "aisid/resolver/config.hpp"
#include "aisid/resolver/control.hpp"
#include "aisid/core/log.hpp"
#include "aisid/resolver/metrics.hpp"
#include "aisid/resolver/sd_notify.hpp"
#include "aisid/resolver/worker.hpp"

#include <grp.h>
#include <pwd.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "aisid/version.h"

namespace aisid::resolver {

namespace {

// Becomes `user` (its uid, its primary group, no supplementary groups).
// Returns an error message and sets code (SPEC §4: 2 bad input, 4 refused).
std::string drop_privileges(const std::string &user, int &code) {
    errno = 0;
    struct passwd *pw = getpwnam(user.c_str());
    if (!pw) {
        code = 2;
        return "--user " + user + ": no such user";
    }
    if (geteuid() != 0) {
        if (geteuid() == pw->pw_uid) return {};
        code = 4;
        return "--user " + user + ": only root can change its user";
    }
    gid_t gid = pw->pw_gid;
    if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(pw->pw_uid) != 0) {
        code = 4;
        return "--user " + user + ": " + std::strerror(errno);
    }
    if (pw->pw_uid != 0 && setuid(0) == 0) {
        code = 4;
        return "--user " + user + ": root could be regained";
    }
    AISID_LOG(LogLevel::info, "running as user " + user + " (uid " + std::to_string(pw->pw_uid) + ")");
    return {};
}

// The authority's state directory (journals, compacted zone
// files) was created and opened as root; after --user the daemon must still
// write there (compaction renames files in it). Hands the directory and the
// regular files in it to the user, before privileges go. Symbolic links are
// neither followed nor changed.
std::string give_state_dir(const std::string &dir, const std::string &user) {
    struct passwd *pw = getpwnam(user.c_str());
    if (!pw || geteuid() != 0 || pw->pw_uid == 0) return {};
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return "--state-dir " + dir + ": " + std::strerror(errno);
    std::string err;
    if (fchown(dfd, pw->pw_uid, pw->pw_gid) != 0) err = "--state-dir " + dir + ": " + std::strerror(errno);
    if (DIR *d = fdopendir(dup(dfd))) {
        while (struct dirent *e = readdir(d)) {
            struct stat st;
            if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
            if (fchownat(dfd, e->d_name, pw->pw_uid, pw->pw_gid, AT_SYMLINK_NOFOLLOW) != 0 && err.empty())
                err = "--state-dir " + dir + "/" + e->d_name + ": " + std::strerror(errno);
        }
        closedir(d);
    }
    ::close(dfd);
    return err;
}

} // namespace

namespace {

double now_unix() {
    timeval tv;
    gettimeofday(&tv, nullptr);
    return double(tv.tv_sec) + double(tv.tv_usec) / 1e6;
}

// Loads every zone file; the first error (FILE:LINE: ...) fails the whole set,
// so a reload is all or nothing.
// With --require-zonemd (or a trust anchor for the zone) a file must verify
// too. `extra`: the mirrored zones, kept across a reload.
Expected<std::shared_ptr<const ZoneSet>, std::string> load_zones(const Config &c, std::vector<ZoneInfo> &info,
                                                                 const ZonePolicy &policy,
                                                                 const std::vector<ZonePtr> &extra = {}) {
    auto set = std::make_shared<ZoneSet>();
    double t = now_unix();
    for (const std::string &f : c.zones) {
        auto z = load_zone_file(f, c.zone_limits);
        if (!z) return unexpected(z.error().to_string());
        ZonePtr zp = *z;
        if (set->find(zp->origin_wire()))
            return unexpected(f + ": zone " + zp->origin_text() + " is loaded twice");
        if (policy.active(zp->origin_wire())) {
            ZoneVerdict v = policy.check(*zp);
            if (!v.ok) {
                policy.count_refusal(zp->origin_wire(), v.reason);
                return unexpected(f + ": zone " + zp->origin_text() + " refused (" + v.reason + "): " + v.message);
            }
        }
        info.push_back(ZoneInfo{zp->origin_text(), f, zp->serial(), t, zp->service_count()});
        set->add(std::move(zp));
    }
    for (const ZonePtr &z : extra)
        if (!set->find(z->origin_wire())) set->add(z);
    return std::shared_ptr<const ZoneSet>(std::move(set));
}

std::shared_ptr<const Runtime> make_runtime(const Config &c, const std::shared_ptr<const Runtime> &old,
                                            bool has_authority) {
    auto rt = std::make_shared<Runtime>();
    rt->core.allow = c.allow;
    rt->core.deny = c.deny;
    rt->core.stale_seconds = c.stale_seconds;
    rt->core.has_authority = has_authority;
    // CHAOS TXT (version.bind, id.server): who answers, unless hidden.
    rt->core.version = c.hide_version ? "" : "aisidd " AISID_VERSION;
    if (!c.hide_identity) {
        char host[256] = {};
        if (gethostname(host, sizeof host - 1) == 0) rt->core.identity = host;
    }
    rt->timeout_ms = c.upstream_timeout_ms;
    rt->tcp_idle_ms = c.tcp_idle_ms;
    rt->cache_bytes = c.cache_bytes;
    rt->ca_file = c.ca_file;
    rt->rrl = c.rrl;
    rt->core.max_ttl = c.cache_max_ttl;
    rt->core.max_negative_ttl = c.cache_max_negative_ttl;
    rt->tcp_output_limit = c.tcp_output_limit;
    rt->tcp_connections_per_worker = std::max(1u, c.tcp_connections / std::max(1u, c.threads));
    rt->tcp_connections_per_client = c.tcp_connections_per_client;
    rt->max_inflight = c.max_inflight;
    rt->max_inflight_per_client = c.max_inflight_per_client;
    for (const UpstreamConfig &u : c.upstreams) {
        std::shared_ptr<UpstreamHealth> h;
        if (old)  // keep the counters of an upstream that stays
            for (const auto &o : old->upstreams)
                if (u.encrypted ? o->up.text == u.text : o->up.addr.same(u.addr)) h = o;
        if (!h) {
            h = std::make_shared<UpstreamHealth>();
            h->up = u;
        }
        rt->upstreams.push_back(h);
    }
    return rt;
}

// Every upstream query in flight and every client connection is a
// descriptor: take the hard limit, and shrink the two limits to fit in it,
// so the limits (answered SERVFAIL, refused) are hit before EMFILE is.
void fit_descriptors(Config &c) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY) return;
    uint64_t reserve = 64 + 8ull * c.threads * (c.listen.size() * 2 + 4);
    uint64_t room = rl.rlim_cur > reserve ? rl.rlim_cur - reserve : 16;
    if (uint64_t(c.max_inflight) + c.tcp_connections <= room) return;
    uint32_t inflight = uint32_t(std::max<uint64_t>(8, room / 2)), conns = uint32_t(std::max<uint64_t>(8, room / 2));
    AISID_LOG(LogLevel::warn, "only " + std::to_string(rl.rlim_cur) + " descriptors: --max-inflight " +
                                   std::to_string(std::min(inflight, c.max_inflight)) + ", --tcp-connections " +
                                   std::to_string(std::min(conns, c.tcp_connections)));
    c.max_inflight = std::min(inflight, c.max_inflight);
    c.tcp_connections = std::min(conns, c.tcp_connections);
}

std::string describe(const Config &c) {
    std::string s;
    for (const SockAddr &a : c.listen) s += (s.empty() ? "" : " ") + a.to_string();
    std::string u;
    for (const UpstreamConfig &x : c.upstreams)
        u += (u.empty() ? "" : " ") + (x.encrypted ? redacted_upstream(x.text) : x.addr.to_string());
    return "listening on " + s + " (udp+tcp, " + std::to_string(c.threads) + " threads); upstreams: " +
           (u.empty() ? "none" : u);
}

// The one reload, run by SIGHUP and by `aisid-control reload`: the config
// file and the command line again, then every zone; anything wrong keeps the
// whole old state (atomic). Serialized: the two may come at once.
class Reloader {
public:
    Reloader(int argc, char **argv, Config &cfg, Shared &sh, bool has_authority, const ZonePolicy &policy,
             ZoneMirror *mirror)
        : argc_(argc), argv_(argv), cfg_(cfg), sh_(sh), has_authority_(has_authority), policy_(policy),
          mirror_(mirror) {}

    /// "" on success (summary says what is loaded now), else why nothing changed.
    std::string reload(std::string &summary) {
        std::lock_guard lk(mu_);
        sd_notify("RELOADING=1");
        struct Ready {
            ~Ready() { sd_notify("READY=1"); }  // whichever way the reload ends
        } ready;
        auto failed = [&](const std::string &what, const std::string &why) {
            AISID_LOG(LogLevel::error, "reload failed, keeping the old " + what + ": " + why);
            sh_.reload_failures.fetch_add(1);
            return why;
        };
        Config next;
        auto p = parse_command_line(argc_, argv_, next);
        if (p) {
            if (auto f = finish_config(next); !f) p = unexpected(f.error());
        }
        if (!p) return failed("configuration", p.error().message);
        const Config &cfg = cfg_;
        if (next.zone_urls != cfg.zone_urls || next.trust_anchors != cfg.trust_anchors ||
            next.require_zonemd != cfg.require_zonemd)
            AISID_LOG(LogLevel::warn, "reload: zone-url, trust-anchor and require-zonemd change only on restart");
        next.zone_urls = cfg.zone_urls;
        next.trust_anchors = cfg.trust_anchors;
        next.require_zonemd = cfg.require_zonemd;
        std::vector<ZoneInfo> ni;
        auto nz = load_zones(next, ni, policy_, mirror_ ? mirror_->zones() : std::vector<ZonePtr>{});
        if (!nz) return failed("zones", nz.error());
        bool listen_changed = next.listen.size() != cfg.listen.size();
        for (size_t i = 0; !listen_changed && i < next.listen.size(); ++i)
            listen_changed = !next.listen[i].same(cfg.listen[i]);
        if (listen_changed) AISID_LOG(LogLevel::warn, "reload: listen addresses change only on restart");
        if (next.rrl_table_size != cfg.rrl_table_size)
            AISID_LOG(LogLevel::warn, "reload: rate-limit-table-size changes only on restart");
        next.rrl_table_size = cfg.rrl_table_size;
        if (next.authority_queue != cfg.authority_queue)
            AISID_LOG(LogLevel::warn, "reload: authority-queue changes only on restart");
        next.authority_queue = cfg.authority_queue;
        if (next.control_socket != cfg.control_socket)
            AISID_LOG(LogLevel::warn, "reload: control-socket changes only on restart");
        next.control_socket = cfg.control_socket;
        fit_descriptors(next);
        next.listen = cfg.listen;
        next.threads = cfg.threads;
        sh_.zones.replace_all(*nz);
        if (mirror_) mirror_->republish();  // a copy fetched while the files were read
        sh_.set_zone_info(ni);
        sh_.set_runtime(make_runtime(next, sh_.runtime(), has_authority_));
        set_log_level(next.log_level);
        cfg_ = next;
        sh_.reloads.fetch_add(1);
        summary = "reloaded: " + std::to_string(ni.size()) + " zone(s), " + std::to_string(cfg_.upstreams.size()) +
                  " upstream(s)";
        AISID_LOG(LogLevel::info, summary);
        return {};
    }

private:
    int argc_;
    char **argv_;
    Config &cfg_;
    Shared &sh_;
    bool has_authority_;
    const ZonePolicy &policy_;
    ZoneMirror *mirror_;
    std::mutex mu_;
};

} // namespace

int run_daemon(int argc, char **argv, AuthorityHook *hook) {
    set_log_program("aisidd");
    Config cfg;
    auto parsed = parse_command_line(argc, argv, cfg);
    if (!parsed) {
        std::fprintf(stderr, "aisidd: %s\n", parsed.error().message.c_str());
        std::fprintf(stderr, "Try 'aisidd --help'.\n");
        return 2;
    }
    if (*parsed == ParseOutcome::help) {
        std::fputs(usage_text(), stdout);
        return 0;
    }
    if (*parsed == ParseOutcome::version) {
        std::printf("aisidd %s\n", AISID_VERSION);
        return 0;
    }
    if (auto f = finish_config(cfg); !f) {
        std::fprintf(stderr, "aisidd: %s\n", f.error().message.c_str());
        return 2;
    }
    if (!cfg.ca_file.empty() && access(cfg.ca_file.c_str(), R_OK) != 0) {
        std::fprintf(stderr, "aisidd: --ca-file %s: %s\n", cfg.ca_file.c_str(), std::strerror(errno));
        return 2;
    }
    set_log_level(cfg.log_level);
    fit_descriptors(cfg);
    // What every zone must prove; trust anchors are read once, at start.
    auto policy_made = ZonePolicy::make(cfg.require_zonemd, cfg.trust_anchors);
    if (!policy_made) {
        std::fprintf(stderr, "aisidd: %s\n", policy_made.error().c_str());
        return 2;
    }
    std::shared_ptr<const ZonePolicy> policy = *policy_made;

    // Signals are taken synchronously by the main thread only; blocked before
    // any thread starts (the authority's too), since threads inherit the mask
    // and one with them unblocked would die of the default action.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
    Shared sh;
    sh.authority = hook;
    sh.rrl = std::make_unique<RateLimiter>(cfg.rrl_table_size);
    std::vector<ZoneInfo> info;
    auto zones = load_zones(cfg, info, *policy);
    if (!zones) {
        std::fprintf(stderr, "aisidd: %s\n", zones.error().c_str());
        return 2;
    }
    sh.zones.replace_all(*zones);
    sh.set_zone_info(info);
    // The authority side (UPDATE, NOTIFY, AXFR/IXFR, secondaries) when its options are given.
    std::string auth_err;
    std::unique_ptr<Authority> authority = hook ? nullptr : make_authority(cfg, sh.zones, policy, auth_err);
    if (!auth_err.empty()) {
        std::fprintf(stderr, "aisidd: %s\n", auth_err.c_str());
        return 2;
    }
    // After the authority side: the zones it finds at start are its primaries,
    // and mirrored zones are not.
    std::unique_ptr<ZoneMirror> mirror = make_zone_mirror(cfg, sh.zones, policy, auth_err);
    if (!auth_err.empty()) {
        std::fprintf(stderr, "aisidd: %s\n", auth_err.c_str());
        return 2;
    }
    sh.metric_sources.push_back([policy](std::string &o) { policy->append_metrics(o); });
    if (mirror) sh.metric_sources.push_back([m = mirror.get()](std::string &o) { m->append_metrics(o); });
    if (authority) sh.authority = hook = authority.get();
    sh.set_runtime(make_runtime(cfg, nullptr, hook != nullptr));
    if (cfg.upstreams.empty())
        AISID_LOG(LogLevel::warn, "no upstream: names outside the local zones get SERVFAIL");


    std::vector<ListenSockets> socks(cfg.threads);
    for (unsigned i = 0; i < cfg.threads; ++i) {
        std::string e = open_listeners(cfg.listen, socks[i]);
        if (!e.empty()) {
            std::fprintf(stderr, "aisidd: %s\n", e.c_str());
            return 3;
        }
    }
    MetricsServer metrics(sh);
    if (cfg.metrics) {
        std::string e = metrics.start(*cfg.metrics);
        if (!e.empty()) {
            std::fprintf(stderr, "aisidd: %s\n", e.c_str());
            return 3;
        }
    }
    // Bound now, while aisidd may still be root; served once everything runs.
    Reloader reloader(argc, argv, cfg, sh, hook != nullptr, *policy, mirror.get());
    ControlServer control(sh, [&reloader](std::string &summary) { return reloader.reload(summary); });
    if (!cfg.control_socket.empty()) {
        std::string e = control.open(cfg.control_socket);
        if (!e.empty()) {
            std::fprintf(stderr, "aisidd: %s\n", e.c_str());
            return 3;
        }
    }
    // Every socket is bound: nothing left needs root. setuid from
    // root clears every capability; glibc applies it to all threads.
    if (!cfg.user.empty()) {
        if (authority || mirror) {  // both write there after the privileges are gone
            std::string e = give_state_dir(cfg.state_dir.empty() ? "/var/lib/aisid/zones" : cfg.state_dir, cfg.user);
            if (!e.empty()) {
                std::fprintf(stderr, "aisidd: %s\n", e.c_str());
                return 4;
            }
        }
        int code = 0;
        std::string e = drop_privileges(cfg.user, code);
        if (!e.empty()) {
            std::fprintf(stderr, "aisidd: %s\n", e.c_str());
            return code;
        }
    }
    for (unsigned i = 0; i < cfg.threads; ++i) sh.stats.push_back(std::make_unique<WorkerStats>());
    AuthorityRunner auth(hook, cfg.authority_queue, &sh.authority_dropped);
    std::vector<std::unique_ptr<Worker>> workers;
    for (unsigned i = 0; i < cfg.threads; ++i) workers.push_back(std::make_unique<Worker>(sh, i, socks[i], &auth));
    for (auto &w : workers) sh.workers.push_back(w.get());
    for (auto &w : workers) w->start();
    // Type=notify (packaging/aisidd.service): listeners are open, zones loaded.
    sd_notify("READY=1");
    AISID_LOG(LogLevel::info, describe(cfg) + "; " + std::to_string(info.size()) + " zone(s)");
    // From here on cfg belongs to the reloader (a control reload runs on the control thread).
    control.serve();

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            std::string summary;
            reloader.reload(summary);
            continue;
        }
        AISID_LOG(LogLevel::info, std::string("exiting on ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
        break;
    }
    sd_notify("STOPPING=1");
    sh.stop.store(true);
    for (auto &w : workers) w->wake();
    for (auto &w : workers) w->join();
    control.stop();
    auth.stop();
    metrics.stop();
    if (mirror) mirror->stop();
    return 0;
}

} // namespace aisid::resolver
