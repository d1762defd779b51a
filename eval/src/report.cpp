#include "report.hpp"

#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>

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

namespace {

Result timed(const Setting &s, const Params &p, const std::string &label, Timing &t) {
    auto t0 = std::chrono::steady_clock::now();
    Result r = simulate(s, p);
    t.runs.emplace_back(label, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return r;
}

std::ofstream open_out(const std::string &path) {
    std::ofstream f(path);
    if (!f) throw std::runtime_error(path + ": cannot write");
    f.precision(6);
    return f;
}

std::string pct(double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%+.1f%%", x);
    std::string s = b;
    if (s[0] == '-') s = "\u2212" + s.substr(1);
    return s;
}

std::string fmt(double x, bool sci) {
    char b[32];
    std::snprintf(b, sizeof b, sci ? "%.3e" : "%.1f", x);
    return b;
}

} // namespace

void print_run(FILE *f, const Params &p, const Result &r, double wall_s) {
    std::fprintf(f,
                 "concurrency=%d requests=%llu ingress=%d egress=%d dns=%s cache_hit=%.2f seed=%llu\n"
                 "issued=%llu completed=%llu aisid=%llu dns=%llu dns_cache_hits=%llu egress_picks=%llu "
                 "ingress_choices=%llu\n"
                 "rt_mean_ms=%.3f rt_p50_ms=%.3f rt_p99_ms=%.3f\n"
                 "link_util_mean=%.6e link_util_var=%.6e link_util_max=%.6e\n"
                 "compute_util_mean=%.6f compute_util_var=%.6e compute_util_max=%.6f\n"
                 "window_s=%.3f sim_end_s=%.3f events=%llu wall_s=%.3f\n",
                 p.concurrency, static_cast<unsigned long long>(r.issued), p.ingress, p.egress,
                 dns_policy_name(p.dns), p.cache_hit, static_cast<unsigned long long>(p.seed),
                 static_cast<unsigned long long>(r.issued), static_cast<unsigned long long>(r.completed),
                 static_cast<unsigned long long>(r.aisid), static_cast<unsigned long long>(r.dns),
                 static_cast<unsigned long long>(r.cache_hits), static_cast<unsigned long long>(r.egress_picks),
                 static_cast<unsigned long long>(r.ingress_choices), r.rt_mean_ms, r.rt_p50_ms, r.rt_p99_ms,
                 r.link_util_mean, r.link_util_var, r.link_util_max, r.compute_util_mean, r.compute_util_var,
                 r.compute_util_max, r.window_s, r.sim_end_s, static_cast<unsigned long long>(r.events), wall_s);
}

std::string write_table(const Setting &s, const Params &p, const std::string &dir, Timing &t) {
    const DnsPolicy pols[3] = {DnsPolicy::round_robin, DnsPolicy::nearest, DnsPolicy::weighted};
    Result d[3];
    for (int i = 0; i < 3; ++i) d[i] = timed(s, dns_params(p, pols[i]), std::string("table dns ") + dns_policy_name(pols[i]), t);
    Result a = timed(s, aisid_params(p), "table aisid", t);

    struct Row {
        const char *name, *key;
        std::function<double(const Result &)> get;
        bool sci;
        double paper;
        bool has_paper;
    };
    const double nominal_ms = 1000.0 * (p.transfer_s + p.compute_s);
    const Row rows[] = {
        {"Response time, mean (ms)", "rt_mean_ms", [](const Result &r) { return r.rt_mean_ms; }, false, kPaperResponseTime, true},
        {"Response time, p50 (ms)", "rt_p50_ms", [](const Result &r) { return r.rt_p50_ms; }, false, 0, false},
        {"Response time, p99 (ms)", "rt_p99_ms", [](const Result &r) { return r.rt_p99_ms; }, false, 0, false},
        {"Response time above the nominal transfer+compute time, mean (ms)", "rt_overhead_mean_ms",
         [nominal_ms](const Result &r) { return r.rt_mean_ms - nominal_ms; }, false, 0, false},
        {"Link utilization variance", "link_util_var", [](const Result &r) { return r.link_util_var; }, true, kPaperLinkVar, true},
        {"Compute utilization variance", "compute_util_var", [](const Result &r) { return r.compute_util_var; }, true, kPaperComputeVar, true},
    };

    auto csv = open_out(dir + "/results.csv");
    csv << "metric,dns_round_robin,dns_nearest,dns_weighted,aisid,change_vs_round_robin_pct,"
           "change_vs_nearest_pct,change_vs_weighted_pct,paper_change_pct\n";
    for (const Row &r : rows) {
        csv << r.key;
        for (int i = 0; i < 3; ++i) csv << ',' << r.get(d[i]);
        csv << ',' << r.get(a);
        for (int i = 0; i < 3; ++i) csv << ',' << change_pct(r.get(d[i]), r.get(a));
        csv << ',';
        if (r.has_paper) csv << r.paper;
        csv << '\n';
    }

    std::ostringstream md;
    md << "# AISID against DNS scheduling: " << p.concurrency << " concurrent requests\n\n"
       << "Chinanet (42 nodes, 66 links), 10 ingress + 4 egress gateways, 100 Gbit/s and 5 ms per link, "
       << "10000 TFLOPS in 16 servers at 4 sites; " << p.concurrency << " clients x " << p.requests_per_client
       << " requests (closed loop), seed " << p.seed << ", resolver cache hit ratio " << p.cache_hit
       << ", transfer " << p.transfer_s << " s and compute " << p.compute_s << " s at full demand. "
       << "Generated by `eval/run`; see eval/README.md.\n\n"
       << "| Metric | DNS (round robin) | AISID | Change | Paper |\n|---|---:|---:|---:|---:|\n";
    for (const Row &r : rows) {
        md << "| " << r.name << " | " << fmt(r.get(d[0]), r.sci) << " | " << fmt(r.get(a), r.sci) << " | "
           << pct(change_pct(r.get(d[0]), r.get(a))) << " | " << (r.has_paper ? pct(r.paper) : "\u2014") << " |\n";
    }
    md << "\nAgainst the other DNS answer policies (same clients, same requests):\n\n"
       << "| Metric | DNS (nearest) | Change | DNS (weighted RR) | Change |\n|---|---:|---:|---:|---:|\n";
    for (const Row &r : rows) {
        md << "| " << r.name << " | " << fmt(r.get(d[1]), r.sci) << " | " << pct(change_pct(r.get(d[1]), r.get(a)))
           << " | " << fmt(r.get(d[2]), r.sci) << " | " << pct(change_pct(r.get(d[2]), r.get(a))) << " |\n";
    }
    md << "\nMean utilization: links " << fmt(d[0].link_util_mean, true) << " (DNS RR) / "
       << fmt(a.link_util_mean, true) << " (AISID); compute " << fmt(d[0].compute_util_mean, true) << " / "
       << fmt(a.compute_util_mean, true) << ". Requests: " << a.completed << " completed of " << a.issued
       << " (AISID), " << d[0].completed << " of " << d[0].issued << " (DNS); DNS cache hits "
       << d[0].cache_hits << " of " << d[0].dns_lookups << ".\n";
    auto f = open_out(dir + "/results.md");
    f << md.str();
    return md.str();
}

void write_load_sweep(const Setting &s, const Params &p, const std::string &dir, Timing &t) {
    auto csv = open_out(dir + "/load_sweep.csv");
    const char *names[4] = {"dns_rr", "dns_nearest", "dns_weighted", "aisid"};
    csv << "concurrency";
    for (const char *n : names)
        csv << ',' << n << "_rt_mean," << n << "_rt_p99," << n << "_link_var," << n << "_compute_var";
    csv << '\n';
    for (int n = 100; n <= 1000; n += 100) {
        Params q = p;
        q.concurrency = n;
        Params ps[4] = {dns_params(q, DnsPolicy::round_robin), dns_params(q, DnsPolicy::nearest),
                        dns_params(q, DnsPolicy::weighted), aisid_params(q)};
        csv << n;
        for (int i = 0; i < 4; ++i) {
            Result r = timed(s, ps[i], "load " + std::to_string(n) + " " + names[i], t);
            csv << ',' << r.rt_mean_ms << ',' << r.rt_p99_ms << ',' << r.link_util_var << ',' << r.compute_util_var;
        }
        csv << '\n';
    }
}

void write_deploy_sweep(const Setting &s, const Params &p, const std::string &dir, Timing &t) {
    auto csv = open_out(dir + "/deploy_sweep.csv");
    csv << "concurrency,ingress,egress,aisid_share,rt_mean,rt_p99,link_var,compute_var,rt_change_pct,"
           "link_var_change_pct,compute_var_change_pct\n";
    // At the table's load, and at the top of the load sweep where the
    // load-blind baseline starts to overload servers.
    for (int n : {p.concurrency, 1000}) {
        Params q = p;
        q.concurrency = n;
        Result base = timed(s, dns_params(q, DnsPolicy::round_robin), "deploy base " + std::to_string(n), t);
        for (int e = 0; e <= 4; ++e) {
            for (int i = 0; i <= 10; ++i) {
                q.ingress = i;
                q.egress = e;
                Result r = timed(s, q, "deploy " + std::to_string(n) + " " + std::to_string(i) + "/" + std::to_string(e), t);
                csv << n << ',' << i << ',' << e << ',' << static_cast<double>(r.aisid) / static_cast<double>(r.issued)
                    << ',' << r.rt_mean_ms << ',' << r.rt_p99_ms << ',' << r.link_util_var << ',' << r.compute_util_var
                    << ',' << change_pct(base.rt_mean_ms, r.rt_mean_ms) << ','
                    << change_pct(base.link_util_var, r.link_util_var) << ','
                    << change_pct(base.compute_util_var, r.compute_util_var) << '\n';
            }
        }
        if (n == 1000) break; // p.concurrency was 1000 already
    }
}

void write_sensitivity(const Setting &s, const Params &p, const std::string &dir, Timing &t) {
    struct Variant {
        std::string name;
        std::function<void(Params &)> set;
    };
    const std::vector<Variant> vs = {
        {"defaults", [](Params &) {}},
        {"cache hit 0.0", [](Params &q) { q.cache_hit = 0.0; }},
        {"cache hit 0.5", [](Params &q) { q.cache_hit = 0.5; }},
        {"cache hit 0.95", [](Params &q) { q.cache_hit = 0.95; }},
        {"regional resolvers (at the 10 core nodes)", [](Params &q) { q.regional_resolvers = true; }},
        {"DNS resolution free (every name cached on the host)", [](Params &q) { q.free_resolution = true; }},
        {"short requests (transfer 0.02 s, compute 0.05 s)", [](Params &q) { q.transfer_s = 0.02; q.compute_s = 0.05; }},
        {"long requests (transfer 0.5 s, compute 2 s)", [](Params &q) { q.transfer_s = 0.5; q.compute_s = 2.0; }},
        {"1000 concurrent", [](Params &q) { q.concurrency = 1000; }},
        {"compute 5000 TFLOPS", [](Params &q) { q.total_tflops = 5000; }},
        {"compute 3000 TFLOPS", [](Params &q) { q.total_tflops = 3000; }},
        {"equal servers (625 TFLOPS each)", [](Params &q) { q.equal_servers = true; }},
        {"unequal sites (40/30/20/10% of the compute)", [](Params &q) { q.skewed_sites = true; }},
        {"clients attached to their nearest ingress (detour allowed)", [](Params &q) { q.attach_to_ingress = true; }},
        {"equal servers, clients attached to their nearest ingress", [](Params &q) { q.equal_servers = true; q.attach_to_ingress = true; }},
        {"egress wlc instead of sed", [](Params &q) { q.egress_policy = sched::Policy::wlc; }},
        {"ingress delay term off (d0 = 0)", [](Params &q) { q.delay_ref_ms = 0; }},
        {"ingress d0 = 30 ms", [](Params &q) { q.delay_ref_ms = 30; }},
        {"load reports every 1 s", [](Params &q) { q.report_period_s = 1.0; }},
        {"seed 2", [](Params &q) { q.seed = 2; }},
        {"seed 3", [](Params &q) { q.seed = 3; }},
    };
    auto csv = open_out(dir + "/sensitivity.csv");
    csv << "variant,dns_rr_rt_mean,dns_nearest_rt_mean,aisid_rt_mean,rt_change_vs_rr_pct,rt_change_vs_nearest_pct,"
           "link_var_change_vs_rr_pct,compute_var_change_vs_rr_pct,compute_var_change_vs_weighted_pct\n";
    std::ostringstream md;
    md << "# Sensitivity: AISID against DNS with one parameter changed\n\n"
       << "Each row changes one parameter from the defaults of results.md. Changes are AISID against the DNS "
          "baseline named in the column.\n\n"
       << "| Variant | DNS RR mean (ms) | AISID mean (ms) | Response vs RR | Response vs nearest | "
          "Link var vs RR | Compute var vs RR | Compute var vs weighted |\n"
       << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const Variant &v : vs) {
        Params q = p;
        v.set(q);
        const Setting local(s.topo, q); // servers follow total_tflops
        Result rr = timed(local, dns_params(q, DnsPolicy::round_robin), "sens " + v.name + " rr", t);
        Result nr = timed(local, dns_params(q, DnsPolicy::nearest), "sens " + v.name + " nearest", t);
        Result wr = timed(local, dns_params(q, DnsPolicy::weighted), "sens " + v.name + " weighted", t);
        Result a = timed(local, aisid_params(q), "sens " + v.name + " aisid", t);
        const double c1 = change_pct(rr.rt_mean_ms, a.rt_mean_ms), c2 = change_pct(nr.rt_mean_ms, a.rt_mean_ms);
        const double c3 = change_pct(rr.link_util_var, a.link_util_var);
        const double c4 = change_pct(rr.compute_util_var, a.compute_util_var);
        const double c5 = change_pct(wr.compute_util_var, a.compute_util_var);
        csv << '"' << v.name << '"' << ',' << rr.rt_mean_ms << ',' << nr.rt_mean_ms << ',' << a.rt_mean_ms << ','
            << c1 << ',' << c2 << ',' << c3 << ',' << c4 << ',' << c5 << '\n';
        md << "| " << v.name << " | " << fmt(rr.rt_mean_ms, false) << " | " << fmt(a.rt_mean_ms, false) << " | "
           << pct(c1) << " | " << pct(c2) << " | " << pct(c3) << " | " << pct(c4) << " | " << pct(c5) << " |\n";
    }
    auto f = open_out(dir + "/sensitivity.md");
    f << md.str();
}

void write_timing(const Setting &s, const Params &p, const std::string &dir, Timing &t) {
    Params one = p;
    one.concurrency = 500;
    one.requests_per_client = 1;
    timed(s, dns_params(one, DnsPolicy::round_robin), "perf 500 concurrent x1 dns", t);
    timed(s, aisid_params(one), "perf 500 concurrent x1 aisid", t);
    Params big = p;
    big.concurrency = 1000;
    big.requests_per_client = 100;
    timed(s, dns_params(big, DnsPolicy::round_robin), "perf 100k requests dns", t);
    timed(s, aisid_params(big), "perf 100k requests aisid", t);
    // The slowest case: a load-blind baseline that overloads servers, so
    // every arrival and departure reshares a crowded server.
    timed(s, dns_params(big, DnsPolicy::nearest), "perf 100k requests dns nearest (overloaded)", t);
    auto csv = open_out(dir + "/timing.csv");
    csv << "run,wall_s\n";
    double total = 0;
    for (auto &[label, sec] : t.runs) {
        csv << label << ',' << sec << '\n';
        total += sec;
    }
    csv << "total," << total << '\n';
}

} // namespace aisid::eval
