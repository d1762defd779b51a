// The paper's experiment as a seeded, deterministic discrete-event simulation:
// requests on the Chinanet topology served either by DNS scheduling (the
// baseline) or by AISID routing through ingress/egress gateways that run
// aisid_sched. See eval/README.md for the model and every choice made in it.
#pragma once

#include "aisid/eval/topology.hpp"

#include <aisid/sched/egress.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace aisid::eval {

/// How the baseline's authoritative DNS server picks the address it answers.
/// None of them knows the load.
enum class DnsPolicy : uint8_t {
    round_robin, ///< rotate over every instance that serves the name
    nearest,     ///< the site nearest the asking resolver, rotating within it
    weighted,    ///< smooth weighted round robin by configured capacity
};
const char *dns_policy_name(DnsPolicy p);

/// Where the client's recursive resolver sits.
enum class ResolverAt : uint8_t {
    local,    ///< the ISP's resolver in the client's own city (access round trip only)
    regional, ///< one per region, at the 10 core (ingress) nodes
    central,  ///< one for the whole ISP, at the node with the shortest mean distance
};
const char *resolver_name(ResolverAt r);

/// Where the providers and the ingress gateways sit.
enum class Placement : uint8_t {
    degree, ///< providers at the 4 best-connected cities, ingress at the next 10
    random, ///< both drawn from the internal cities by the seed
};
/// The order in which gateways are deployed (the first N of each list).
enum class DeployOrder : uint8_t {
    degree,  ///< best-connected first
    reverse, ///< least-connected first
    random,  ///< drawn by the seed
};

struct Params {
    uint64_t seed = 1;
    int concurrency = 500;        ///< clients, each with one request in flight
    int requests_per_client = 20; ///< closed loop: total requests = concurrency × this
    int ingress = 10;             ///< ingress gateways deployed (0..10)
    int egress = 4;               ///< egress gateways deployed (0..4)
    DnsPolicy dns = DnsPolicy::round_robin;
    ResolverAt resolver = ResolverAt::local;
    double dns_ttl_s = 30.0;      ///< TTL of the GSLB's answers; the resolvers cache them that long
    double fixed_hit = -1;        ///< >= 0: old model, a per-lookup Bernoulli hit ratio instead of the TTL cache
    bool free_resolution = false; ///< DNS answers cost no time (as if the host cached every name)
    double access_ms = 5.0;       ///< one-way delay of the client's access link (to its city's PoP)
    double link_gbps = 100.0;
    double hop_delay_ms = 5.0;
    double total_tflops = 10000.0;
    double min_mbps = 20, max_mbps = 100;    ///< per-request bandwidth demand
    double min_tflops = 1, max_tflops = 10;  ///< per-request compute demand
    double transfer_s = 0.1;      ///< upload volume = bandwidth demand × this
    double compute_s = 0.5;       ///< work = compute demand × this
    double reply_s = 0.1;         ///< reply volume = bandwidth demand × this (0: propagation only)
    double think_s = 0.0;         ///< client pause between its requests
    double report_period_s = 0.1; ///< load reports to egress and control side
    double delay_ref_ms = 10.0;   ///< ingress weight delay scale d0
    sched::Policy egress_policy = sched::Policy::wlc; ///< the paper's weighted least connections
    bool attach_to_ingress = false; ///< AISID traffic goes to the nearest ingress even off its path
    bool legacy_beside = true;    ///< undeployed providers keep serving DNS traffic (false: they get none)
    Placement placement = Placement::degree;
    DeployOrder order = DeployOrder::degree;
    bool equal_servers = false;   ///< servers of a site all equal (default 40/30/20/10%)
    bool skewed_sites = false;    ///< sites hold 40/30/20/10% of the compute (default equal)
};

struct SimResult {
    // Requests
    uint64_t issued = 0, completed = 0, aisid = 0, dns = 0, cache_hits = 0, dns_lookups = 0;
    uint64_t egress_picks = 0, ingress_choices = 0, refused = 0;
    double rt_mean_ms = 0, rt_p50_ms = 0, rt_p99_ms = 0;
    /// Initiation latency: issue until the first request byte reaches the
    /// service node, without the transport handshake (the first packet) and
    /// with it (SYN, SYN-ACK, then the first byte: 1.5 round trips).
    double init_mean_ms = 0, init_hs_mean_ms = 0, init_p99_ms = 0, init_hs_p99_ms = 0;
    double resolve_mean_ms = 0;   ///< name resolution, mean over all requests (0 for AISID)
    double oneway_mean_ms = 0;    ///< one-way client → service node, mean over all requests
    double hit_ratio = 0;         ///< resolver cache hits ÷ lookups (DNS requests only)
    // Utilization, time-averaged over the measurement window
    double link_util_mean = 0, link_util_var = 0, link_util_max = 0; ///< over directed links
    double link_cv2 = 0, link_jain = 0;           ///< over directed links
    double ulink_mean = 0, ulink_var = 0, ulink_cv2 = 0, ulink_jain = 0, ulink_max = 0; ///< undirected links: both directions ÷ 2 capacities
    double link_peak = 0;         ///< highest instantaneous load ÷ capacity on any link
    double compute_util_mean = 0, compute_util_var = 0, compute_util_max = 0;
    double compute_cv2 = 0, compute_jain = 0;
    double compute_wvar = 0;      ///< capacity-weighted variance: Σ (c_k/Σc)(u_k − ū)², ū = total utilization
    double window_s = 0;   ///< measurement window (until the last request is issued)
    double sim_end_s = 0;  ///< virtual time when the last request completed
    uint64_t events = 0;
    double work_asked = 0;  ///< Σ compute demand × compute_s over all requests (TFLOP)
    double work_done = 0;   ///< ∫ server usage dt over the whole run (TFLOP)
    double volume_asked = 0;///< Σ upload volume over requests whose upload crossed links, times hops (bit)
    double volume_carried = 0; ///< ∫ link usage dt over the whole run (bit)
    std::vector<double> response_ms;  ///< per request, in issue order
    std::vector<double> init_ms;      ///< per request: initiation latency without handshake
    std::vector<double> resolve_ms;   ///< per request: name resolution time
    std::vector<int> served_by;       ///< per request: service node index
    std::vector<int> request_type;    ///< per request: index into Setting::requested
    std::vector<int> client_node;     ///< per request: the client's topology node
    std::vector<int> via_ingress;     ///< per request: ingress index, -1 = none
    std::vector<uint8_t> via_aisid;   ///< per request: 1 = AISID, 0 = DNS
    std::vector<std::vector<int>> upload_path; ///< per request: directed links used
    std::vector<double> link_util;    ///< per directed link
    std::vector<double> compute_util; ///< per service node
};

/// The fixed setting derived from the topology (gateway and server placement,
/// service nodes, request types). Built once, shared by runs.
struct Setting {
    Setting(Topology topo, const Params &p);
    Topology topo;
    Routing routing;
    std::vector<int> sites;          ///< provider sites (egress gateway positions), 4
    std::vector<int> ingress_nodes;  ///< ingress gateway positions, 10, in deployment order
    std::vector<int> client_nodes;   ///< where clients sit
    std::vector<int> region;         ///< per topology node: nearest core (ingress) node, index into ingress_nodes
    int auth_node = 0;               ///< the authoritative DNS server (the GSLB at the provider's primary site)
    int central_node = 0;            ///< the ISP's central resolver (shortest mean distance)
    struct Server {
        int site;                    ///< index into sites
        double tflops;
        std::vector<sched::ServiceCodes> serves;
        std::string name;
    };
    std::vector<Server> servers;
    std::vector<sched::ServiceCodes> offered;    ///< 10 offered service types
    std::vector<sched::ServiceCodes> requested;  ///< 20 requested types (some with 0 = any)
    std::vector<std::vector<int>> matching;      ///< per requested type: servers that match
};

/// Runs one scenario. Deterministic: same setting and params → same result.
SimResult simulate(const Setting &s, const Params &p);

/// Balance statistics of a set of values: population variance, CV² =
/// variance ÷ mean², Jain's index (Σx)² ÷ (n Σx²) (= 1 ÷ (1 + CV²)).
struct Spread {
    double mean = 0, var = 0, cv2 = 0, jain = 1, max = 0;
};
Spread spread(const std::vector<double> &x);
/// Weighted variance Σ w_i (x_i − x̄_w)² with weights normalised to sum 1.
double weighted_var(const std::vector<double> &x, const std::vector<double> &w);

} // namespace aisid::eval
