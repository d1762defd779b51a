// The experiment's outputs: the comparison table, the sweeps, timings.
#pragma once

#include "sim.hpp"

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

/// Params for the DNS baseline (no gateway) and for full AISID deployment.
Params dns_params(Params p, DnsPolicy d);
Params aisid_params(Params p);
/// Percent change from a to b.
double change_pct(double a, double b);

void print_run(FILE *f, const Params &p, const Result &r, double wall_s);
/// results.csv and results.md: DNS (each policy) against AISID at p.concurrency.
/// Returns the Markdown text.
std::string write_table(const Setting &s, const Params &p, const std::string &dir, Timing &t);
/// load_sweep.csv: concurrency 100..1000, every scenario.
void write_load_sweep(const Setting &s, const Params &p, const std::string &dir, Timing &t);
/// deploy_sweep.csv: ingress 0..10 × egress 0..4 at p.concurrency.
void write_deploy_sweep(const Setting &s, const Params &p, const std::string &dir, Timing &t);
/// sensitivity.csv and sensitivity.md: the comparison again with one
/// parameter changed at a time (the choices the paper leaves open).
void write_sensitivity(const Setting &s, const Params &p, const std::string &dir, Timing &t);
/// timing.csv: the performance runs (500 concurrent; 100k requests).
void write_timing(const Setting &s, const Params &p, const std::string &dir, Timing &t);

} // namespace aisid::eval
