// The experiment's outputs: the comparison table over many seeds, the sweeps,
// the DNS cost curve, the structural sweep, timings.
#pragma once

#include "aisid/eval/sim.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace aisid::eval {

/// Wall-clock seconds of the runs made, by label.
struct Timing {
    std::vector<std::pair<std::string, double>> runs;
};

/// The paper's reported changes (AISID against DNS scheduling), percent.
inline constexpr double kPaperResponseTime = -61.3;
inline constexpr double kPaperLinkVar = -32.8;
inline constexpr double kPaperComputeVar = -12.3;

/// How the multi-seed runs are made.
struct RunPlan {
    int seeds = 30;      ///< seeds 1..seeds (each a different set of clients and requests)
    int jobs = 2;        ///< worker threads
    double loaded_gbps = 1.0; ///< link capacity of the "links in use" scenarios
};

/// Params for the DNS baseline (no gateway) and for full AISID deployment.
Params dns_params(Params p, DnsPolicy d);
Params aisid_params(Params p);
/// Percent change from a to b.
double change_pct(double a, double b);

/// Mean and 95% confidence half-width (Student t) of a sample.
struct Stat {
    double mean = 0, ci = 0;
    size_t n = 0;
};
Stat stat_of(const std::vector<double> &x);
/// Two-sided 95% Student t quantile for df degrees of freedom.
double t95(size_t df);

/// The scalar metrics of one run, by name (see kMetricNames in report.cpp).
enum Metric : int {
    m_rt_mean, m_rt_p99, m_init, m_init_hs, m_init_p99, m_init_hs_p99, m_resolve, m_oneway, m_hit,
    m_link_var, m_link_cv2, m_link_jain, m_ulink_var, m_ulink_cv2, m_ulink_jain, m_ulink_max, m_link_max,
    m_link_peak, m_link_mean, m_comp_var, m_comp_wvar, m_comp_cv2, m_comp_jain, m_comp_max, m_comp_mean,
    m_aisid_share, m_count
};
const char *metric_key(int m);
using Summary = std::vector<double>;
Summary summarize(const SimResult &r);

/// Runs every Params (each with its own Setting built from topo) on
/// plan.jobs threads; results in input order. Deterministic.
std::vector<Summary> run_all(const Topology &topo, const std::vector<Params> &ps, int jobs);

void print_run(FILE *f, const Params &p, const SimResult &r, double wall_s);
/// results.csv and results.md: DNS (each policy) against AISID at
/// p.concurrency over plan.seeds seeds. Returns the Markdown text.
std::string write_table(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t);
/// dns_curve.csv / dns_curve.md: initiation-latency change against resolver
/// placement × TTL × access delay.
void write_dns_curve(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t);
/// load_sweep.csv: concurrency 100..1000, every scenario, with CIs.
void write_load_sweep(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t);
/// deploy_sweep.csv: ingress 0..10 × egress 0..4 with CIs.
void write_deploy_sweep(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t);
/// structural.csv / structural.md: placement, ingress attachment, deployment order.
void write_structural(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t);
/// sensitivity.csv and sensitivity.md: one parameter changed at a time.
void write_sensitivity(const Setting &s, const Params &p, const RunPlan &plan, const std::string &dir, Timing &t);
/// timing.csv: the performance runs (500 concurrent; 100k requests).
void write_timing(const Setting &s, const Params &p, const std::string &dir, Timing &t);

} // namespace aisid::eval
