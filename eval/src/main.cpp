// aisid-eval: the paper's experiment (issue 10). See eval/README.md.
#include "report.hpp"
#include "sim.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>

using namespace aisid::eval;

namespace {

const char *kUsage =
    "usage: aisid-eval COMMAND [OPTIONS]\n"
    "commands:\n"
    "  describe      the setting: sites, gateways, resolvers, servers, types\n"
    "  run           one scenario; prints its metrics as key=value lines\n"
    "  table         the 500-request comparison: results.csv, results.md in --out\n"
    "  sweep-load    100..1000 concurrent requests: load_sweep.csv in --out\n"
    "  sweep-deploy  ingress 0..10 x egress 0..4 deployed: deploy_sweep.csv in --out\n"
    "  sensitivity   the comparison with one parameter changed at a time\n"
    "  all           all of the above, plus timing.csv\n"
    "options:\n"
    "  --topology FILE       GraphML (default: eval/data/Chinanet.graphml)\n"
    "  --out DIR             output directory (default: eval/results)\n"
    "  --seed N              (1)\n"
    "  --concurrency N       clients with one request in flight (500)\n"
    "  --requests-per-client N  closed loop length (20)\n"
    "  --ingress N --egress N   gateways deployed, for run (10, 4)\n"
    "  --dns rr|nearest|weighted  baseline answer policy, for run (rr)\n"
    "  --cache-hit X         resolver cache hit ratio (0.8)\n"
    "  --transfer-s X        upload volume = bandwidth demand x X (0.1)\n"
    "  --compute-s X         work = compute demand x X (0.5)\n"
    "  --total-tflops X      compute at the providers (10000)\n"
    "  --delay-ref-ms X      ingress weight delay scale d0, 0 = off (10)\n"
    "  --think-s X           client pause between requests (0)\n"
    "  --report-period X     load report period, s (0.1)\n"
    "  --regional-resolvers  resolvers at the 10 core nodes, not in every city\n"
    "  --equal-servers       the 4 servers of a site are equal (default 40/30/20/10%)\n"
    "  --skewed-sites        sites hold 40/30/20/10% of the compute (default equal)\n"
    "  --attach-to-ingress   AISID traffic goes to the nearest ingress, even off its path\n"
    "  --wlc                 egress uses LVS wlc instead of sed\n"
    "  --help, --version\n";

[[noreturn]] void usage_error(const std::string &what) {
    std::fprintf(stderr, "aisid-eval: %s\n%s", what.c_str(), kUsage);
    std::exit(2);
}

double num(const char *opt, const char *v) {
    char *end = nullptr;
    double x = std::strtod(v, &end);
    if (!*v || *end) usage_error(std::string("bad number for ") + opt + ": " + v);
    return x;
}

} // namespace

int main(int argc, char **argv) try {
    if (argc < 2) usage_error("missing command");
    std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (cmd == "--version") {
        std::puts("aisid-eval 0.1.0");
        return 0;
    }
    Params p;
    std::string topo_path = std::string(AISID_EVAL_DIR) + "/data/Chinanet.graphml";
    std::string out = std::string(AISID_EVAL_DIR) + "/results";
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> const char * {
            if (i + 1 >= argc) usage_error("missing value for " + a);
            return argv[++i];
        };
        if (a == "--topology") topo_path = val();
        else if (a == "--out") out = val();
        else if (a == "--seed") p.seed = static_cast<uint64_t>(num("--seed", val()));
        else if (a == "--concurrency") p.concurrency = static_cast<int>(num("--concurrency", val()));
        else if (a == "--requests-per-client") p.requests_per_client = static_cast<int>(num("--requests-per-client", val()));
        else if (a == "--ingress") p.ingress = static_cast<int>(num("--ingress", val()));
        else if (a == "--egress") p.egress = static_cast<int>(num("--egress", val()));
        else if (a == "--cache-hit") p.cache_hit = num("--cache-hit", val());
        else if (a == "--transfer-s") p.transfer_s = num("--transfer-s", val());
        else if (a == "--compute-s") p.compute_s = num("--compute-s", val());
        else if (a == "--report-period") p.report_period_s = num("--report-period", val());
        else if (a == "--total-tflops") p.total_tflops = num("--total-tflops", val());
        else if (a == "--delay-ref-ms") p.delay_ref_ms = num("--delay-ref-ms", val());
        else if (a == "--think-s") p.think_s = num("--think-s", val());
        else if (a == "--regional-resolvers") p.regional_resolvers = true;
        else if (a == "--equal-servers") p.equal_servers = true;
        else if (a == "--skewed-sites") p.skewed_sites = true;
        else if (a == "--attach-to-ingress") p.attach_to_ingress = true;
        else if (a == "--wlc") p.egress_policy = aisid::sched::Policy::wlc;
        else if (a == "--dns") {
            std::string d = val();
            if (d == "rr") p.dns = DnsPolicy::round_robin;
            else if (d == "nearest") p.dns = DnsPolicy::nearest;
            else if (d == "weighted") p.dns = DnsPolicy::weighted;
            else usage_error("--dns must be rr, nearest or weighted");
        } else usage_error("unknown option " + a);
    }
    if (p.concurrency < 1 || p.requests_per_client < 1 || p.ingress < 0 || p.ingress > 10 || p.egress < 0 ||
        p.egress > 4 || p.cache_hit < 0 || p.cache_hit > 1 || p.transfer_s <= 0 || p.compute_s <= 0 ||
        p.report_period_s <= 0 || p.total_tflops <= 0 || p.delay_ref_ms < 0 || p.think_s < 0)
        usage_error("an option is out of range");

    auto loaded = load_graphml(topo_path);
    if (!loaded.topo) {
        std::fprintf(stderr, "aisid-eval: %s\n", loaded.error.c_str());
        return 2;
    }
    Setting setting(std::move(*loaded.topo), p);

    if (cmd == "describe") {
        const auto &t = setting.topo;
        std::printf("topology %s: %zu nodes, %zu links\n", t.name.c_str(), t.nodes.size(), t.edges.size());
        for (size_t i = 0; i < setting.sites.size(); ++i)
            std::printf("site %zu (egress gateway %zu): %s (node %d, degree %zu)\n", i, i + 1,
                        t.nodes[setting.sites[i]].label.c_str(), setting.sites[i], t.degree(setting.sites[i]));
        for (size_t i = 0; i < setting.ingress_nodes.size(); ++i) {
            const int v = setting.ingress_nodes[i];
            std::printf("ingress gateway %zu: %s (node %d, degree %zu); regional resolver (variant) for:", i + 1,
                        t.nodes[v].label.c_str(), v, t.degree(v));
            for (int c : setting.client_nodes)
                if (setting.region[c] == static_cast<int>(i)) std::printf(" %s", t.nodes[c].label.c_str());
            std::printf("\n");
        }
        std::printf("authoritative DNS: %s; recursive resolvers: one in every client city\n",
                    t.nodes[setting.auth_node].label.c_str());
        std::printf("client cities: %zu (the internal nodes)\n", setting.client_nodes.size());
        for (const auto &sv : setting.servers) {
            std::printf("server %s: %.0f TFLOPS, serves", sv.name.c_str(), sv.tflops);
            for (const auto &c : sv.serves) std::printf(" %u.%u.%u", c.object, c.function, c.method);
            std::printf("\n");
        }
        std::printf("requested types (object.function.method, 0 = any):");
        for (const auto &c : setting.requested) std::printf(" %u.%u.%u", c.object, c.function, c.method);
        std::printf("\n");
        return 0;
    }
    if (cmd == "run") {
        auto t0 = std::chrono::steady_clock::now();
        Result r = simulate(setting, p);
        double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        print_run(stdout, p, r, wall);
        return 0;
    }
    std::filesystem::create_directories(out);
    Timing timing;
    if (cmd == "table" || cmd == "all") write_table(setting, p, out, timing);
    if (cmd == "sweep-load" || cmd == "all") write_load_sweep(setting, p, out, timing);
    if (cmd == "sweep-deploy" || cmd == "all") write_deploy_sweep(setting, p, out, timing);
    if (cmd == "sensitivity" || cmd == "all") write_sensitivity(setting, p, out, timing);
    if (cmd != "table" && cmd != "all" && cmd != "sweep-load" && cmd != "sweep-deploy" && cmd != "sensitivity")
        usage_error("unknown command " + cmd);
    if (cmd == "all") write_timing(setting, p, out, timing);
    return 0;
} catch (const std::exception &e) {
    std::fprintf(stderr, "aisid-eval: %s\n", e.what());
    return 1;
}
