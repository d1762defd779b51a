#include "aisid/eval/report.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace aisid::eval {

Params dns_params(Params p, DnsPolicy d) {
    p.ingress = 0;
    p.egress = 0;
    p.dns = d;
    return p;
}

Params aisid_params(Params p) {
    p.ingress = 10;
    p.egress = 4;
    return p;
}

double change_pct(double a, double b) { return a == 0 ? 0.0 : (b - a) / a * 100.0; }

double t95(size_t df) {
    static const double tab[] = {0,     12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201, 2.179,  2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080,
                                 2.074, 2.069,  2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    if (df == 0) return 0;
    if (df <= 30) return tab[df];
    // Cornish-Fisher expansion around z = 1.95996 (error < 1e-3 for df > 30).
    const double z = 1.959964, d = static_cast<double>(df);
    return z + (z * z * z + z) / (4 * d) + (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * d * d);
}

Stat stat_of(const std::vector<double> &x) {
    Stat s;
    s.n = x.size();
    if (x.empty()) return s;
    for (double v : x) s.mean += v;
    s.mean /= static_cast<double>(s.n);
    if (s.n < 2) return s;
    double ss = 0;
    for (double v : x) ss += (v - s.mean) * (v - s.mean);
    const double sd = std::sqrt(ss / static_cast<double>(s.n - 1));
    s.ci = t95(s.n - 1) * sd / std::sqrt(static_cast<double>(s.n));
    return s;
}

namespace {
const char *const kMetricNames[m_count] = {
    "rt_mean_ms",       "rt_p99_ms",      "init_mean_ms",  "init_hs_mean_ms", "init_p99_ms", "init_hs_p99_ms",
    "resolve_mean_ms",  "oneway_mean_ms", "hit_ratio",     "link_var",        "link_cv2",    "link_jain",
    "ulink_var",        "ulink_cv2",      "ulink_jain",    "ulink_max",       "link_max",    "link_peak",
    "link_mean",        "compute_var",    "compute_wvar",  "compute_cv2",     "compute_jain", "compute_max",
    "compute_mean",     "aisid_share"};
} // namespace

const char *metric_key(int m) { return m >= 0 && m < m_count ? kMetricNames[m] : "?"; }

Summary summarize(const SimResult &r) {
    Summary s(m_count, 0.0);
    s[m_rt_mean] = r.rt_mean_ms;
    s[m_rt_p99] = r.rt_p99_ms;
    s[m_init] = r.init_mean_ms;
    s[m_init_hs] = r.init_hs_mean_ms;
    s[m_init_p99] = r.init_p99_ms;
    s[m_init_hs_p99] = r.init_hs_p99_ms;
    s[m_resolve] = r.resolve_mean_ms;
    s[m_oneway] = r.oneway_mean_ms;
    s[m_hit] = r.hit_ratio;
    s[m_link_var] = r.link_util_var;
    s[m_link_cv2] = r.link_cv2;
    s[m_link_jain] = r.link_jain;
    s[m_ulink_var] = r.ulink_var;
    s[m_ulink_cv2] = r.ulink_cv2;
    s[m_ulink_jain] = r.ulink_jain;
    s[m_ulink_max] = r.ulink_max;
    s[m_link_max] = r.link_util_max;
    s[m_link_peak] = r.link_peak;
    s[m_link_mean] = r.link_util_mean;
    s[m_comp_var] = r.compute_util_var;
    s[m_comp_wvar] = r.compute_wvar;
    s[m_comp_cv2] = r.compute_cv2;
    s[m_comp_jain] = r.compute_jain;
    s[m_comp_max] = r.compute_util_max;
    s[m_comp_mean] = r.compute_util_mean;
    s[m_aisid_share] = r.issued ? static_cast<double>(r.aisid) / static_cast<double>(r.issued) : 0.0;
    return s;
}

std::vector<Summary> run_all(const Topology &topo, const std::vector<Params> &ps, int jobs) {
    std::vector<Summary> out(ps.size());
    std::atomic<size_t> next{0};
    std::exception_ptr err;
    std::atomic<bool> failed{false};
    auto work = [&] {
        for (;;) {
            const size_t i = next++;
            if (i >= ps.size() || failed) return;
            try {
                const Setting s(topo, ps[i]);
                out[i] = summarize(simulate(s, ps[i]));
            } catch (...) {
                if (!failed.exchange(true)) err = std::current_exception();
            }
        }
    };
    std::vector<std::thread> th;
    for (int k = 1; k < std::max(1, jobs); ++k) th.emplace_back(work);
    work();
    for (auto &t : th) t.join();
    if (err) std::rethrow_exception(err);
    return out;
}

namespace {

std::ofstream open_out(const std::string &path) {
    std::ofstream f(path);
    if (!f) throw std::runtime_error(path + ": cannot write");
    f.precision(6);
    return f;
}

std::string minus(std::string s) {
    if (!s.empty() && s[0] == '-') s = "\u2212" + s.substr(1);
    return s;
}

std::string pct(double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%+.1f%%", x);
    return minus(b);
}

std::string fmt(double x, bool sci) {
    char b[32];
    std::snprintf(b, sizeof b, sci ? "%.3e" : (std::fabs(x) < 10 ? "%.3f" : "%.1f"), x);
    return minus(b);
}

std::string pm(const Stat &s, bool sci) { return fmt(s.mean, sci) + " ± " + (sci ? fmt(s.ci, true) : fmt(s.ci, false)); }
std::string pmpct(const Stat &s) {
    char b[64];
    std::snprintf(b, sizeof b, "%+.1f ± %.1f%%", s.mean, s.ci);
    return minus(b);
}

Stat col(const std::vector<Summary> &v, int m) {
    std::vector<double> x;
    for (const auto &s : v) x.push_back(s[m]);
    return stat_of(x);
}
// Paired change (same seed) from a to b, percent.
Stat chg(const std::vector<Summary> &a, const std::vector<Summary> &b, int m) {
    std::vector<double> x;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) x.push_back(change_pct(a[i][m], b[i][m]));
    return stat_of(x);
}

std::string verdict(const Stat &c, double paper) {
    if (std::fabs(c.mean - paper) <= c.ci) return "reproduced (CI covers it)";
    if ((c.mean < 0) == (paper < 0) && c.mean != 0) return "sign only";
    return "not reproduced";
}

// The four scenarios over seeds 1..S.
struct Cmp {
    std::vector<Summary> rr, nr, wr, ai;
};

Cmp compare(const Topology &topo, const Params &base, const RunPlan &plan, Timing &t, const std::string &label,
            int ai_ingress = 10, int ai_egress = 4) {
    std::vector<Params> ps;
    for (int k = 1; k <= plan.seeds; ++k) {
        Params q = base;
        q.seed = static_cast<uint64_t>(k);
        ps.push_back(dns_params(q, DnsPolicy::round_robin));
        ps.push_back(dns_params(q, DnsPolicy::nearest));
        ps.push_back(dns_params(q, DnsPolicy::weighted));
        Params a = aisid_params(q);
        a.ingress = ai_ingress;
        a.egress = ai_egress;
        ps.push_back(a);
    }
    auto t0 = std::chrono::steady_clock::now();
    auto all = run_all(topo, ps, plan.jobs);
    t.runs.emplace_back(label + " (" + std::to_string(ps.size()) + " runs)",
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    Cmp c;
    for (size_t i = 0; i < all.size(); i += 4) {
        c.rr.push_back(all[i]);
        c.nr.push_back(all[i + 1]);
        c.wr.push_back(all[i + 2]);
        c.ai.push_back(all[i + 3]);
    }
    return c;
}

// Per seed: the share of the DNS initiation latency that resolution is, and
// the share that the nearer site saves, in percentage points of DNS's mean.
Stat dns_saving(const Cmp &c, bool hs) {
    std::vector<double> x;
    for (size_t i = 0; i < c.rr.size(); ++i)
        x.push_back(100.0 * (c.rr[i][m_resolve] - c.ai[i][m_resolve]) / c.rr[i][hs ? m_init_hs : m_init]);
    return stat_of(x);
}
Stat proximity(const Cmp &c, bool hs) {
    std::vector<double> x;
    for (size_t i = 0; i < c.rr.size(); ++i)
        x.push_back(100.0 * (hs ? 3 : 1) * (c.rr[i][m_oneway] - c.ai[i][m_oneway]) / c.rr[i][hs ? m_init_hs : m_init]);
    return stat_of(x);
}

void csv_group(std::ostream &csv, const std::string &group, const Cmp &c) {
    const std::pair<const char *, const std::vector<Summary> *> sc[] = {
        {"dns_round_robin", &c.rr}, {"dns_nearest", &c.nr}, {"dns_weighted", &c.wr}, {"aisid", &c.ai}};
    for (int m = 0; m < m_count; ++m) {
        for (const auto &[name, v] : sc) {
            const Stat s = col(*v, m), a = chg(c.rr, *v, m), b = chg(c.nr, *v, m), w = chg(c.wr, *v, m);
            csv << group << ',' << name << ',' << metric_key(m) << ',' << s.mean << ',' << s.ci << ',' << s.n << ','
                << a.mean << ',' << a.ci << ',' << b.mean << ',' << b.ci << ',' << w.mean << ',' << w.ci << '\n';
        }
    }
}

} // namespace

void print_run(FILE *f, const Params &p, const SimResult &r, double wall_s) {
    std::fprintf(f,
                 "concurrency=%d requests=%llu ingress=%d egress=%d dns=%s resolver=%s ttl_s=%.1f access_ms=%.1f "
                 "egress_policy=%s seed=%llu\n"
                 "issued=%llu completed=%llu aisid=%llu dns=%llu dns_lookups=%llu dns_cache_hits=%llu hit_ratio=%.4f "
                 "egress_picks=%llu ingress_choices=%llu\n"
                 "init_mean_ms=%.3f init_hs_mean_ms=%.3f init_p99_ms=%.3f init_hs_p99_ms=%.3f resolve_mean_ms=%.3f "
                 "oneway_mean_ms=%.3f\n"
                 "rt_mean_ms=%.3f rt_p50_ms=%.3f rt_p99_ms=%.3f\n"
                 "link_util_mean=%.6e link_util_var=%.6e link_util_max=%.6e link_cv2=%.4f link_jain=%.4f "
                 "link_peak=%.4f\n"
                 "ulink_mean=%.6e ulink_var=%.6e ulink_cv2=%.4f ulink_jain=%.4f ulink_max=%.6e\n"
                 "compute_util_mean=%.6f compute_util_var=%.6e compute_wvar=%.6e compute_cv2=%.4f compute_jain=%.4f "
                 "compute_util_max=%.6f\n"
                 "window_s=%.3f sim_end_s=%.3f events=%llu wall_s=%.3f\n",
                 p.concurrency, static_cast<unsigned long long>(r.issued), p.ingress, p.egress,
                 dns_policy_name(p.dns), resolver_name(p.resolver), p.dns_ttl_s, p.access_ms,
                 p.egress_policy == sched::Policy::wlc ? "wlc" : "sed", static_cast<unsigned long long>(p.seed),
                 static_cast<unsigned long long>(r.issued), static_cast<unsigned long long>(r.completed),
                 static_cast<unsigned long long>(r.aisid), static_cast<unsigned long long>(r.dns),
                 static_cast<unsigned long long>(r.dns_lookups), static_cast<unsigned long long>(r.cache_hits),
                 r.hit_ratio, static_cast<unsigned long long>(r.egress_picks),
                 static_cast<unsigned long long>(r.ingress_choices), r.init_mean_ms, r.init_hs_mean_ms, r.init_p99_ms,
                 r.init_hs_p99_ms, r.resolve_mean_ms, r.oneway_mean_ms, r.rt_mean_ms, r.rt_p50_ms, r.rt_p99_ms,
                 r.link_util_mean, r.link_util_var, r.link_util_max, r.link_cv2, r.link_jain, r.link_peak,
                 r.ulink_mean, r.ulink_var, r.ulink_cv2, r.ulink_jain, r.ulink_max, r.compute_util_mean,
                 r.compute_util_var, r.compute_wvar, r.compute_cv2, r.compute_jain, r.compute_util_max, r.window_s,
                 r.sim_end_s, static_cast<unsigned long long>(r.events), wall_s);
}

std::string write_table(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t) {
    const Cmp def = compare(s.topo, p, plan, t, "table defaults");
    Params loaded = p;
    loaded.link_gbps = plan.loaded_gbps;
    const Cmp lod = compare(s.topo, loaded, plan, t, "table loaded links");
    Params eq = p;
    eq.equal_servers = true;
    const Cmp equ = compare(s.topo, eq, plan, t, "table equal servers");

    auto csv = open_out(dir + "/results.csv");
    csv << "group,scenario,metric,mean,ci95,n,change_vs_rr_pct,change_vs_rr_ci,change_vs_nearest_pct,"
           "change_vs_nearest_ci,change_vs_weighted_pct,change_vs_weighted_ci\n";
    csv_group(csv, "defaults", def);
    csv_group(csv, "loaded_links", lod);
    csv_group(csv, "equal_servers", equ);

    std::ostringstream md;
    md << "# AISID against DNS scheduling: " << p.concurrency << " concurrent requests\n\n"
       << "Chinanet (42 nodes, 66 links), 10 ingress + 4 egress gateways, " << p.link_gbps << " Gbit/s and "
       << p.hop_delay_ms << " ms per link, access link " << p.access_ms << " ms one way; 10000 TFLOPS in 16 servers at "
       << "4 sites; " << p.concurrency << " clients x " << p.requests_per_client << " requests (closed loop). "
       << "DNS: round-robin GSLB at the provider's primary site, TTL " << p.dns_ttl_s << " s, resolvers "
       << resolver_name(p.resolver) << ". Egress policy " << (p.egress_policy == sched::Policy::wlc ? "WLC" : "SED")
       << ". Every number is the mean over seeds 1.." << plan.seeds << " with its 95% confidence interval "
       << "(Student t); changes are paired by seed. Generated by `eval/run`; see eval/README.md.\n\n";

    md << "## Fig. 9: service request initiation latency (the paper's metric)\n\n"
       << "From the moment the client issues the request until its first byte reaches the chosen service node "
          "(DNS: resolution, then the transport; AISID: the transport through the gateways).\n\n"
       << "| Metric | DNS (round robin) | AISID | Change | Paper | Verdict |\n|---|---:|---:|---:|---:|---|\n";
    auto row = [&](std::ostringstream &o, const char *name, const Cmp &c, int m, bool sci, bool paper_row,
                   double paper) {
        const Stat ch = chg(c.rr, c.ai, m);
        o << "| " << name << " | " << pm(col(c.rr, m), sci) << " | " << pm(col(c.ai, m), sci) << " | " << pmpct(ch)
          << " | " << (paper_row ? pct(paper) : "\u2014") << " | " << (paper_row ? verdict(ch, paper) : "") << " |\n";
    };
    row(md, "Initiation latency, no handshake, mean (ms)", def, m_init, false, true, kPaperResponseTime);
    row(md, "Initiation latency, with TCP handshake, mean (ms)", def, m_init_hs, false, true, kPaperResponseTime);
    row(md, "Initiation latency, no handshake, p99 (ms)", def, m_init_p99, false, false, 0);
    row(md, "Initiation latency, with TCP handshake, p99 (ms)", def, m_init_hs_p99, false, false, 0);
    row(md, "Name resolution, mean (ms)", def, m_resolve, false, false, 0);
    row(md, "One way to the chosen node, mean (ms)", def, m_oneway, false, false, 0);
    const Stat hit = col(def.rr, m_hit);
    md << "\nThe resolvers' cache hit ratio that the TTL model gives: " << fmt(hit.mean, false) << " ± "
       << fmt(hit.ci, false) << ". Where the change comes from (percentage points of DNS's mean):\n\n"
       << "| | DNS resolution saved | Nearer site (proximity) | Total |\n|---|---:|---:|---:|\n";
    for (bool hs : {false, true}) {
        const Stat a = dns_saving(def, hs), b = proximity(def, hs), c = chg(def.rr, def.ai, hs ? m_init_hs : m_init);
        md << "| " << (hs ? "with handshake" : "no handshake") << " | " << pmpct(Stat{-a.mean, a.ci, a.n}) << " | "
           << pmpct(Stat{-b.mean, b.ci, b.n}) << " | " << pmpct(c) << " |\n";
    }

    md << "\n## End-to-end completion time (secondary)\n\nIssue to the reply's last byte: initiation, upload ("
       << p.transfer_s << " s at the demand), compute (" << p.compute_s << " s at the demand), reply ("
       << p.reply_s << " s at the demand).\n\n"
       << "| Metric | DNS (round robin) | AISID | Change | Paper | Verdict |\n|---|---:|---:|---:|---:|---|\n";
    row(md, "Completion time, mean (ms)", def, m_rt_mean, false, true, kPaperResponseTime);
    row(md, "Completion time, p99 (ms)", def, m_rt_p99, false, false, 0);
    row(md, "Completion time, mean (ms), links in use", lod, m_rt_mean, false, false, 0);

    md << "\n## Fig. 10: link balance\n\nPer link, time-averaged utilization over the measurement window. "
          "Directed: the 132 one-way links. Undirected: each of the 66 links, both directions over both "
          "capacities. CV² = variance ÷ mean²; Jain's index = 1 ÷ (1 + CV²).\n\n";
    for (const auto &[title, c] : {std::pair<std::string, const Cmp *>{"Links of " + fmt(p.link_gbps, false) + " Gbit/s (defaults)", &def},
                                   {"Links of " + fmt(plan.loaded_gbps, false) + " Gbit/s (links in use)", &lod}}) {
        md << "### " << title << "\n\n| Metric | DNS (round robin) | AISID | Change | Paper | Verdict |\n"
           << "|---|---:|---:|---:|---:|---|\n";
        row(md, "Variance, directed links", *c, m_link_var, true, true, kPaperLinkVar);
        row(md, "Variance, undirected links", *c, m_ulink_var, true, true, kPaperLinkVar);
        row(md, "CV², undirected links", *c, m_ulink_cv2, false, true, kPaperLinkVar);
        row(md, "Jain's index, undirected links", *c, m_ulink_jain, false, false, 0);
        row(md, "CV², directed links", *c, m_link_cv2, false, false, 0);
        row(md, "Mean utilization, directed", *c, m_link_mean, true, false, 0);
        row(md, "Highest time-averaged utilization, directed", *c, m_link_max, true, false, 0);
        row(md, "Highest instantaneous demand ÷ capacity (above 1: overloaded)", *c, m_link_peak, true, false, 0);
        md << '\n';
    }

    md << "## Fig. 11: compute balance\n\nPer server, time-averaged utilization. Capacity-weighted variance: "
          "Σ (c_k/Σc)(u_k − ū)², with ū the total utilization.\n\n";
    for (const auto &[title, c] : {std::pair<std::string, const Cmp *>{"Servers 40/30/20/10% of a site (defaults)", &def},
                                   {"Equal servers", &equ}}) {
        md << "### " << title << "\n\n| Metric | DNS (round robin) | DNS (weighted) | AISID | vs round robin | "
              "vs weighted | Paper | Verdict (vs RR) |\n|---|---:|---:|---:|---:|---:|---:|---|\n";
        for (auto [name, m, paper] : {std::tuple{"Variance", m_comp_var, true}, {"Capacity-weighted variance", m_comp_wvar, true},
                                      {"CV²", m_comp_cv2, false}, {"Jain's index", m_comp_jain, false},
                                      {"Mean utilization", m_comp_mean, false}, {"Highest utilization", m_comp_max, false}}) {
            const Stat a = chg(c->rr, c->ai, m), b = chg(c->wr, c->ai, m);
            const bool sci = m == m_comp_var || m == m_comp_wvar;
            md << "| " << name << " | " << pm(col(c->rr, m), sci) << " | " << pm(col(c->wr, m), sci) << " | "
               << pm(col(c->ai, m), sci) << " | " << pmpct(a) << " | " << pmpct(b) << " | "
               << (paper ? pct(kPaperComputeVar) : "\u2014") << " | " << (paper ? verdict(a, kPaperComputeVar) : "")
               << " |\n";
        }
        md << '\n';
    }

    md << "## The other DNS answer policies (defaults)\n\n"
       << "| Metric | DNS (nearest) | AISID vs nearest | DNS (weighted) | AISID vs weighted |\n|---|---:|---:|---:|---:|\n";
    for (auto [name, m, sci] : {std::tuple{"Initiation latency, no handshake (ms)", m_init, false},
                                {"Initiation latency, with handshake (ms)", m_init_hs, false},
                                {"Completion time, mean (ms)", m_rt_mean, false},
                                {"Completion time, p99 (ms)", m_rt_p99, false},
                                {"Link CV², undirected", m_ulink_cv2, false},
                                {"Compute variance", m_comp_var, true}}) {
        md << "| " << name << " | " << pm(col(def.nr, m), sci) << " | " << pmpct(chg(def.nr, def.ai, m)) << " | "
           << pm(col(def.wr, m), sci) << " | " << pmpct(chg(def.wr, def.ai, m)) << " |\n";
    }
    md << "\nAISID share of requests: " << fmt(col(def.ai, m_aisid_share).mean, false) << ".\n";
    auto f = open_out(dir + "/results.md");
    f << md.str();
    return md.str();
}

void write_dns_curve(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t) {
    const ResolverAt where[] = {ResolverAt::local, ResolverAt::regional, ResolverAt::central};
    const double ttls[] = {0, 1, 2, 5, 10, 20, 30, 60, 120, 300};
    const double access[] = {0, 2, 5, 10};
    // Initiation latency does not depend on the load: a shorter closed loop
    // gives the same means with fewer events.
    std::vector<Params> ps;
    for (double a : access)
        for (int k = 1; k <= plan.seeds; ++k) {
            Params q = p;
            q.seed = static_cast<uint64_t>(k);
            q.access_ms = a;
            ps.push_back(aisid_params(q));
        }
    for (ResolverAt w : where)
        for (double ttl : ttls)
            for (double a : access)
                for (int k = 1; k <= plan.seeds; ++k) {
                    Params q = p;
                    q.seed = static_cast<uint64_t>(k);
                    q.access_ms = a;
                    q.resolver = w;
                    q.dns_ttl_s = ttl;
                    ps.push_back(dns_params(q, DnsPolicy::round_robin));
                }
    auto t0 = std::chrono::steady_clock::now();
    const auto all = run_all(s.topo, ps, plan.jobs);
    t.runs.emplace_back("dns curve (" + std::to_string(ps.size()) + " runs)",
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    const size_t S = static_cast<size_t>(plan.seeds);
    auto csv = open_out(dir + "/dns_curve.csv");
    csv << "resolver,ttl_s,access_ms,hit_ratio,hit_ratio_ci,dns_init_ms,dns_init_ci,aisid_init_ms,aisid_init_ci,"
           "change_pct,change_ci,change_hs_pct,change_hs_ci,dns_saving_pts,proximity_pts\n";
    std::ostringstream md;
    md << "# The DNS cost curve: initiation latency against resolver placement, TTL and access delay\n\n"
       << "AISID against DNS round robin at " << p.concurrency << " concurrent requests, seeds 1.." << plan.seeds
       << ", 95% CIs. The hit ratio is what the TTL model gives. Rows whose interval covers the paper's "
       << "\u221261.3% are marked.\n\n"
       << "| Resolver | TTL (s) | Access (ms) | Hit ratio | DNS (ms) | AISID (ms) | Change, no handshake | "
          "Change, with handshake | |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n";
    size_t at = 4 * S;
    for (ResolverAt w : where)
        for (double ttl : ttls)
            for (size_t ai = 0; ai < 4; ++ai) {
                std::vector<Summary> d(all.begin() + static_cast<long>(at), all.begin() + static_cast<long>(at + S));
                std::vector<Summary> a(all.begin() + static_cast<long>(ai * S),
                                       all.begin() + static_cast<long>((ai + 1) * S));
                at += S;
                Cmp c;
                c.rr = d;
                c.ai = a;
                const Stat h = col(d, m_hit), di = col(d, m_init), ii = col(a, m_init), ch = chg(d, a, m_init),
                           chh = chg(d, a, m_init_hs), ds = dns_saving(c, false), px = proximity(c, false);
                csv << resolver_name(w) << ',' << ttl << ',' << access[ai] << ',' << h.mean << ',' << h.ci << ','
                    << di.mean << ',' << di.ci << ',' << ii.mean << ',' << ii.ci << ',' << ch.mean << ',' << ch.ci
                    << ',' << chh.mean << ',' << chh.ci << ',' << -ds.mean << ',' << -px.mean << '\n';
                const bool cov = std::fabs(ch.mean - kPaperResponseTime) <= std::max(ch.ci, 0.05) ||
                                 std::fabs(chh.mean - kPaperResponseTime) <= std::max(chh.ci, 0.05);
                const bool near = std::fabs(ch.mean - kPaperResponseTime) <= 5 ||
                                  std::fabs(chh.mean - kPaperResponseTime) <= 5;
                md << "| " << resolver_name(w) << " | " << ttl << " | " << access[ai] << " | " << fmt(h.mean, false)
                   << " | " << pm(di, false) << " | " << pm(ii, false) << " | " << pmpct(ch) << " | " << pmpct(chh)
                   << " | " << (cov ? "**covers \u221261.3%**" : near ? "within 5 points" : "") << " |\n";
            }
    auto f = open_out(dir + "/dns_curve.md");
    f << md.str();
}

namespace {

const int kSweepMetrics[] = {m_init,      m_init_hs,  m_rt_mean,  m_rt_p99,   m_link_var, m_ulink_var,
                             m_ulink_cv2, m_ulink_jain, m_link_peak, m_comp_var, m_comp_wvar, m_aisid_share};
const int kChangeMetrics[] = {m_init, m_init_hs, m_rt_mean, m_link_var, m_ulink_var, m_ulink_cv2, m_comp_var,
                              m_comp_wvar};

void sweep_header(std::ostream &csv) {
    for (int m : kSweepMetrics) csv << ',' << metric_key(m) << ',' << metric_key(m) << "_ci";
    for (int m : kChangeMetrics) csv << ",chg_" << metric_key(m) << ",chg_" << metric_key(m) << "_ci";
    csv << ",chgw_compute_var,chgw_compute_var_ci,chgw_compute_wvar,chgw_compute_wvar_ci\n";
}
// Columns: the metrics (mean, CI), their paired change against base, and the
// compute variances' change against base2 (capacity-weighted DNS; empty when
// not run).
void sweep_row(std::ostream &csv, const std::vector<Summary> &base, const std::vector<Summary> &v,
               const std::vector<Summary> *base2 = nullptr) {
    for (int m : kSweepMetrics) {
        const Stat s = col(v, m);
        csv << ',' << s.mean << ',' << s.ci;
    }
    for (int m : kChangeMetrics) {
        const Stat s = chg(base, v, m);
        csv << ',' << s.mean << ',' << s.ci;
    }
    for (int m : {m_comp_var, m_comp_wvar}) {
        if (!base2) {
            csv << ",,";
            continue;
        }
        const Stat s = chg(*base2, v, m);
        csv << ',' << s.mean << ',' << s.ci;
    }
    csv << '\n';
}

} // namespace

void write_load_sweep(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t) {
    auto csv = open_out(dir + "/load_sweep.csv");
    csv << "link_gbps,concurrency,scenario";
    sweep_header(csv);
    for (double gbps : {p.link_gbps, plan.loaded_gbps}) {
        for (int n = 100; n <= 1000; n += 100) {
            Params q = p;
            q.concurrency = n;
            q.link_gbps = gbps;
            const Cmp c = compare(s.topo, q, plan, t, "load " + std::to_string(n) + " @" + fmt(gbps, false) + "G");
            const std::pair<const char *, const std::vector<Summary> *> sc[] = {
                {"dns_rr", &c.rr}, {"dns_nearest", &c.nr}, {"dns_weighted", &c.wr}, {"aisid", &c.ai}};
            for (const auto &[name, v] : sc) {
                csv << gbps << ',' << n << ',' << name;
                sweep_row(csv, c.rr, *v, &c.wr);
            }
        }
    }
}

void write_deploy_sweep(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t) {
    auto csv = open_out(dir + "/deploy_sweep.csv");
    csv << "concurrency,ingress,egress";
    sweep_header(csv);
    for (int n : {p.concurrency, 1000}) {
        std::vector<Params> ps;
        for (int e = 0; e <= 4; ++e)
            for (int i = 0; i <= 10; ++i)
                for (int k = 1; k <= plan.seeds; ++k) {
                    Params q = p;
                    q.concurrency = n;
                    q.seed = static_cast<uint64_t>(k);
                    q.ingress = i;
                    q.egress = e;
                    ps.push_back(q);
                }
        auto t0 = std::chrono::steady_clock::now();
        const auto all = run_all(s.topo, ps, plan.jobs);
        t.runs.emplace_back("deploy " + std::to_string(n) + " (" + std::to_string(ps.size()) + " runs)",
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        const size_t S = static_cast<size_t>(plan.seeds);
        // The baseline is ingress 0, egress 0 (no AISID route: DNS round robin).
        const std::vector<Summary> base(all.begin(), all.begin() + static_cast<long>(S));
        size_t at = 0;
        for (int e = 0; e <= 4; ++e)
            for (int i = 0; i <= 10; ++i) {
                const std::vector<Summary> v(all.begin() + static_cast<long>(at), all.begin() + static_cast<long>(at + S));
                at += S;
                csv << n << ',' << i << ',' << e;
                sweep_row(csv, base, v);
            }
        if (n == 1000) break;
    }
}

namespace {

struct Variant {
    std::string name;
    std::function<void(Params &)> set;
    int ai_ingress = 10, ai_egress = 4;
};

void write_variants(const Topology &topo, const Params &p, const RunPlan &plan, const std::string &path_base,
                    const std::string &title, const std::string &intro, const std::vector<Variant> &vs, Timing &t) {
    auto csv = open_out(path_base + ".csv");
    csv << "variant";
    const std::pair<const char *, int> cols[] = {{"init", m_init},         {"init_hs", m_init_hs},
                                                 {"rt", m_rt_mean},        {"link_var", m_link_var},
                                                 {"ulink_cv2", m_ulink_cv2}, {"compute_var", m_comp_var},
                                                 {"compute_wvar", m_comp_wvar}};
    for (const auto &[n, m] : cols) csv << ",chg_" << n << "_vs_rr,ci";
    csv << ",chg_compute_var_vs_weighted,ci,dns_rr_init_ms,aisid_init_ms,hit_ratio\n";
    std::ostringstream md;
    md << "# " << title << "\n\n" << intro << "\n\n"
       << "| Variant | Initiation | Initiation (handshake) | Completion | Link var | Link CV² (undirected) | "
          "Compute var | Compute var vs weighted DNS | Hit ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const Variant &v : vs) {
        Params q = p;
        v.set(q);
        const Cmp c = compare(topo, q, plan, t, v.name, v.ai_ingress, v.ai_egress);
        csv << '"' << v.name << '"';
        md << "| " << v.name;
        for (const auto &[n, m] : cols) {
            const Stat s = chg(c.rr, c.ai, m);
            csv << ',' << s.mean << ',' << s.ci;
            if (m != m_comp_wvar) md << " | " << pmpct(s);
        }
        const Stat w = chg(c.wr, c.ai, m_comp_var);
        csv << ',' << w.mean << ',' << w.ci << ',' << col(c.rr, m_init).mean << ',' << col(c.ai, m_init).mean << ','
            << col(c.rr, m_hit).mean << '\n';
        md << " | " << pmpct(w) << " | " << fmt(col(c.rr, m_hit).mean, false) << " |\n";
    }
    auto f = open_out(path_base + ".md");
    f << md.str();
}

} // namespace

void write_structural(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t) {
    const std::vector<Variant> vs = {
        {"placement by degree, ingress on the path (defaults)", [](Params &) {}},
        {"placement by degree, clients attached to the nearest ingress", [](Params &q) { q.attach_to_ingress = true; }},
        {"placement drawn by the seed, ingress on the path", [](Params &q) { q.placement = Placement::random; }},
        {"placement drawn by the seed, attached to the nearest ingress",
         [](Params &q) { q.placement = Placement::random; q.attach_to_ingress = true; }},
        {"half deployed (2 egress, 5 ingress), best-connected first", [](Params &) {}, 5, 2},
        {"half deployed, least-connected first", [](Params &q) { q.order = DeployOrder::reverse; }, 5, 2},
        {"half deployed, order drawn by the seed", [](Params &q) { q.order = DeployOrder::random; }, 5, 2},
        {"1 egress, 3 ingress, best-connected first", [](Params &) {}, 3, 1},
        {"1 egress, 3 ingress, least-connected first", [](Params &q) { q.order = DeployOrder::reverse; }, 3, 1},
        {"1 egress, 3 ingress, order drawn by the seed", [](Params &q) { q.order = DeployOrder::random; }, 3, 1},
    };
    write_variants(s.topo, p, plan, dir + "/structural", "Structural sweep: placement, ingress attachment, deployment order",
                   "Each row: AISID (as deployed in the row) against DNS round robin, mean ± 95% CI over seeds 1.." +
                       std::to_string(plan.seeds) +
                       ". With placement or order drawn by the seed, every seed is another placement or order.",
                   vs, t);
}

void write_sensitivity(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t) {
    const std::vector<Variant> vs = {
        {"defaults", [](Params &) {}},
        {"egress SED instead of WLC (ablation)", [](Params &q) { q.egress_policy = sched::Policy::sed; }},
        {"old DNS model: fixed hit ratio 0.8, no access delay", [](Params &q) { q.fixed_hit = 0.8; q.access_ms = 0; }},
        {"DNS TTL 0 s (no caching)", [](Params &q) { q.dns_ttl_s = 0; }},
        {"DNS TTL 5 s", [](Params &q) { q.dns_ttl_s = 5; }},
        {"DNS TTL 300 s", [](Params &q) { q.dns_ttl_s = 300; }},
        {"regional resolvers", [](Params &q) { q.resolver = ResolverAt::regional; }},
        {"the ISP's central resolver", [](Params &q) { q.resolver = ResolverAt::central; }},
        {"DNS resolution free (every name cached on the host)", [](Params &q) { q.free_resolution = true; }},
        {"access 0 ms", [](Params &q) { q.access_ms = 0; }},
        {"access 10 ms", [](Params &q) { q.access_ms = 10; }},
        {"no reply volume", [](Params &q) { q.reply_s = 0; }},
        {"short requests (transfer 0.02 s, compute 0.05 s)", [](Params &q) { q.transfer_s = 0.02; q.compute_s = 0.05; q.reply_s = 0.02; }},
        {"1000 concurrent", [](Params &q) { q.concurrency = 1000; }},
        {"compute 3000 TFLOPS", [](Params &q) { q.total_tflops = 3000; }},
        {"equal servers", [](Params &q) { q.equal_servers = true; }},
        {"unequal sites (40/30/20/10%)", [](Params &q) { q.skewed_sites = true; }},
        {"ingress delay term off (d0 = 0)", [](Params &q) { q.delay_ref_ms = 0; }},
        {"load reports every 1 s", [](Params &q) { q.report_period_s = 1.0; }},
    };
    write_variants(s.topo, p, plan, dir + "/sensitivity", "Sensitivity: AISID against DNS with one parameter changed",
                   "Each row changes one parameter from the defaults of results.md. Changes are AISID against DNS "
                   "round robin (and, in one column, against capacity-weighted DNS), mean ± 95% CI over seeds 1.." +
                       std::to_string(plan.seeds) + ".",
                   vs, t);
}

void write_timing(const Setting &s, const Params &p, const std::string &dir, Timing &t) {
    auto timed = [&](const Params &q, const std::string &label) {
        auto t0 = std::chrono::steady_clock::now();
        simulate(s, q);
        t.runs.emplace_back(label, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    Params one = p;
    one.concurrency = 500;
    one.requests_per_client = 1;
    timed(dns_params(one, DnsPolicy::round_robin), "perf 500 concurrent x1 dns");
    timed(aisid_params(one), "perf 500 concurrent x1 aisid");
    Params big = p;
    big.concurrency = 1000;
    big.requests_per_client = 100;
    timed(dns_params(big, DnsPolicy::round_robin), "perf 100k requests dns");
    timed(aisid_params(big), "perf 100k requests aisid");
    timed(dns_params(big, DnsPolicy::nearest), "perf 100k requests dns nearest (overloaded)");
    auto csv = open_out(dir + "/timing.csv");
    csv << "run,wall_s\n";
    double total = 0;
    for (auto &[label, sec] : t.runs) {
        csv << '"' << label << "\"," << sec << '\n';
        total += sec;
    }
    csv << "total," << total << '\n';
}

} // namespace aisid::eval
