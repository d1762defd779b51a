// aisid-eval: the paper's experiment. See eval/README.md.
#include "aisid/eval/report.hpp"
#include "aisid/eval/sim.hpp"

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
    "  dns-curve     initiation latency against resolver placement x TTL x access\n"
    "  structural    placement, ingress attachment, deployment order\n"
    "  sensitivity   the comparison with one parameter changed at a time\n"
    "  all           all of the above, plus timing.csv\n"
    "options:\n"
    "  --topology FILE       GraphML (default: eval/data/Chinanet.graphml)\n"
    "  --out DIR             output directory (default: eval/results)\n"
    "  --seed N              for run (1)\n"
    "  --seeds N             seeds 1..N for the tables and sweeps (30)\n"
    "  --jobs N              worker threads (2)\n"
    "  --loaded-gbps X       link capacity of the \"links in use\" scenarios (1)\n"
    "  --concurrency N       clients with one request in flight (500)\n"
    "  --requests-per-client N  closed loop length (20)\n"
    "  --ingress N --egress N   gateways deployed, for run (10, 4)\n"
    "  --dns rr|nearest|weighted  baseline answer policy, for run (rr)\n"
    "  --resolver local|regional|central  where the recursive resolvers are (local)\n"
    "  --ttl X               TTL of the GSLB's answers, s; the hit ratio follows (30)\n"
    "  --fixed-hit X         old model: a fixed per-lookup hit ratio instead of the TTL cache\n"
    "  --access-ms X         one-way delay of the client's access link (5)\n"
    "  --link-gbps X         link capacity (100)\n"
    "  --reply-s X           reply volume = bandwidth demand x X (0.1)\n"
    "  --placement degree|random  where providers and ingress gateways are (degree)\n"
    "  --order degree|reverse|random  the order gateways are deployed in (degree)\n"
    "  --no-legacy           undeployed providers get no traffic (default: they keep their DNS share)\n"
    "  --transfer-s X        upload volume = bandwidth demand x X (0.1)\n"
    "  --compute-s X         work = compute demand x X (0.5)\n"
    "  --total-tflops X      compute at the providers (10000)\n"
    "  --delay-ref-ms X      ingress weight delay scale d0, 0 = off (10)\n"
    "  --think-s X           client pause between requests (0)\n"
    "  --report-period X     load report period, s (0.1)\n"

    "  --equal-servers       the 4 servers of a site are equal (default 40/30/20/10%)\n"
    "  --skewed-sites        sites hold 40/30/20/10% of the compute (default equal)\n"
    "  --attach-to-ingress   AISID traffic goes to the nearest ingress, even off its path\n"
    "  --sed                 egress uses LVS sed instead of the paper's wlc\n"
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
    RunPlan plan;
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
        else if (a == "--seeds") plan.seeds = static_cast<int>(num("--seeds", val()));
        else if (a == "--jobs") plan.jobs = static_cast<int>(num("--jobs", val()));
        else if (a == "--loaded-gbps") plan.loaded_gbps = num("--loaded-gbps", val());
        else if (a == "--fixed-hit" || a == "--cache-hit") p.fixed_hit = num("--fixed-hit", val());
        else if (a == "--ttl") p.dns_ttl_s = num("--ttl", val());
        else if (a == "--access-ms") p.access_ms = num("--access-ms", val());
        else if (a == "--link-gbps") p.link_gbps = num("--link-gbps", val());
        else if (a == "--reply-s") p.reply_s = num("--reply-s", val());
        else if (a == "--no-legacy") p.legacy_beside = false;
        else if (a == "--sed") p.egress_policy = aisid::sched::Policy::sed;
        else if (a == "--resolver") {
            std::string d = val();
            if (d == "local") p.resolver = ResolverAt::local;
            else if (d == "regional") p.resolver = ResolverAt::regional;
            else if (d == "central") p.resolver = ResolverAt::central;
            else usage_error("--resolver must be local, regional or central");
        } else if (a == "--placement") {
            std::string d = val();
            if (d == "degree") p.placement = Placement::degree;
            else if (d == "random") p.placement = Placement::random;
            else usage_error("--placement must be degree or random");
        } else if (a == "--order") {
            std::string d = val();
            if (d == "degree") p.order = DeployOrder::degree;
            else if (d == "reverse") p.order = DeployOrder::reverse;
            else if (d == "random") p.order = DeployOrder::random;
            else usage_error("--order must be degree, reverse or random");
        }
        else if (a == "--transfer-s") p.transfer_s = num("--transfer-s", val());
        else if (a == "--compute-s") p.compute_s = num("--compute-s", val());
        else if (a == "--report-period") p.report_period_s = num("--report-period", val());
        else if (a == "--total-tflops") p.total_tflops = num("--total-tflops", val());
        else if (a == "--delay-ref-ms") p.delay_ref_ms = num("--delay-ref-ms", val());
        else if (a == "--think-s") p.think_s = num("--think-s", val());
        else if (a == "--regional-resolvers") p.resolver = ResolverAt::regional;
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
        p.egress > 4 || p.fixed_hit > 1 || p.dns_ttl_s < 0 || p.access_ms < 0 || p.link_gbps <= 0 ||
        p.reply_s < 0 || plan.seeds < 2 || plan.jobs < 1 || plan.loaded_gbps <= 0 || p.transfer_s <= 0 || p.compute_s <= 0 ||
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
        std::printf("authoritative DNS (GSLB): %s; recursive resolvers: %s (central: %s)\n",
                    t.nodes[setting.auth_node].label.c_str(), resolver_name(p.resolver),
                    t.nodes[setting.central_node].label.c_str());
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
        SimResult r = simulate(setting, p);
        double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        print_run(stdout, p, r, wall);
        return 0;
    }
    std::filesystem::create_directories(out);
    Timing timing;
    if (cmd != "table" && cmd != "all" && cmd != "sweep-load" && cmd != "sweep-deploy" && cmd != "sensitivity" &&
        cmd != "dns-curve" && cmd != "structural")
        usage_error("unknown command " + cmd);
    const auto t0 = std::chrono::steady_clock::now();
    auto stage = [&](const char *what) {
        std::fprintf(stderr, "aisid-eval: %-12s done at %6.1f s\n", what,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    if (cmd == "table" || cmd == "all") write_table(setting, p, plan, out, timing), stage("table");
    if (cmd == "dns-curve" || cmd == "all") write_dns_curve(setting, p, plan, out, timing), stage("dns-curve");
    if (cmd == "sweep-load" || cmd == "all") write_load_sweep(setting, p, plan, out, timing), stage("sweep-load");
    if (cmd == "sweep-deploy" || cmd == "all") write_deploy_sweep(setting, p, plan, out, timing), stage("sweep-deploy");
    if (cmd == "structural" || cmd == "all") write_structural(setting, p, plan, out, timing), stage("structural");
    if (cmd == "sensitivity" || cmd == "all") write_sensitivity(setting, p, plan, out, timing), stage("sensitivity");
    if (cmd == "all") write_timing(setting, p, out, timing);
    return 0;
} catch (const std::exception &e) {
    std::fprintf(stderr, "aisid-eval: %s\n", e.what());
    return 1;
}
