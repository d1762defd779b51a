// eval/: the topology parser on the real file, routing, and the simulation's
// determinism, conservation, use of aisid_sched, and zero-deployment baseline.
#include "aisid/eval/report.hpp"
#include "aisid/eval/sim.hpp"
#include "aisid/eval/topology.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <fstream>
#include <sstream>

using namespace aisid::eval;

namespace {

const std::string kTopo = std::string(AISID_SOURCE_DIR) + "/eval/data/Chinanet.graphml";

const Topology &chinanet() {
    static const Topology t = [] {
        auto r = load_graphml(kTopo);
        REQUIRE_MESSAGE(r.topo, r.error);
        return *r.topo;
    }();
    return t;
}

Params small() {
    Params p;
    p.concurrency = 100;
    p.requests_per_client = 5;
    return p;
}

std::string slurp(const std::string &path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

} // namespace

TEST_CASE("topology: the real Chinanet file") {
    const Topology &t = chinanet();
    CHECK(t.name == "Chinanet");
    CHECK(t.nodes.size() == 42);
    CHECK(t.edges.size() == 66);
    CHECK(t.nodes[39].label == "Beijing");
    CHECK(t.degree(39) == 20);
    CHECK(t.degree(8) == 14);
    CHECK(t.degree(28) == 13);
    CHECK(t.degree(18) == 11);
    int external = 0;
    for (const auto &n : t.nodes) external += n.internal ? 0 : 1;
    CHECK(external == 4);
    CHECK_FALSE(t.nodes[10].internal);
    CHECK_FALSE(t.nodes[21].internal);
    size_t deg = 0;
    for (const auto &n : t.nodes) deg += n.nbrs.size();
    CHECK(deg == 2 * 66);
}

TEST_CASE("topology: malformed GraphML is an error and not a crash") {
    CHECK_FALSE(parse_graphml("").topo);
    CHECK_FALSE(parse_graphml("<graphml><graph><node id=\"0\"/><edge source=\"0\" target=\"5\"/></graph></graphml>").topo);
    CHECK_FALSE(parse_graphml("<graphml><graph><node id=\"0\"/><node id=\"1\"/>"
                              "<edge source=\"0\" target=\"1\"/><edge source=\"1\" target=\"0\"/></graph></graphml>")
                    .topo);
    CHECK_FALSE(parse_graphml("<graphml><graph><node id=\"x\"/></graph></graphml>").topo);
    CHECK_FALSE(load_graphml("/nonexistent/file.graphml").topo);
    auto ok = parse_graphml("<graphml><key attr.name=\"label\" for=\"node\" id=\"d1\"/><graph>"
                            "<node id=\"1\"><data key=\"d1\">B&amp;C</data></node><node id=\"0\"/>"
                            "<edge source=\"0\" target=\"1\"/></graph></graphml>");
    REQUIRE(ok.topo);
    CHECK(ok.topo->nodes[1].label == "B&C");
    CHECK(ok.topo->nodes[0].nbrs == std::vector<int>{1});
}

TEST_CASE("routing: shortest paths are connected and minimal with symmetric lengths") {
    const Topology &t = chinanet();
    Routing r(t);
    CHECK(r.links() == 132);
    for (int u = 0; u < r.nodes(); ++u) {
        for (int v = 0; v < r.nodes(); ++v) {
            REQUIRE(r.hops(u, v) >= 0); // connected
            CHECK(r.hops(u, v) == r.hops(v, u));
            const auto &p = r.path(u, v);
            CHECK(static_cast<int>(p.size()) == r.hops(u, v));
            int at = u;
            for (int l : p) {
                CHECK(r.link_src(l) == at);
                at = r.link_dst(l);
            }
            CHECK(at == v);
            // Minimal: no neighbour of u is closer to v than hops-1.
            for (int w : t.nodes[u].nbrs) CHECK(r.hops(w, v) >= r.hops(u, v) - 1);
        }
    }
}

TEST_CASE("simulation: the same seed gives the same table and another seed another") {
    const Setting s(chinanet(), small());
    namespace fs = std::filesystem;
    const fs::path a = fs::temp_directory_path() / "aisid_eval_test_a";
    const fs::path b = fs::temp_directory_path() / "aisid_eval_test_b";
    fs::create_directories(a);
    fs::create_directories(b);
    Timing t;
    RunPlan plan;
    plan.seeds = 2;
    const std::string ma = write_table(s, small(), plan, a.string(), t);
    plan.jobs = 1; // the thread count changes nothing
    const std::string mb = write_table(s, small(), plan, b.string(), t);
    CHECK(ma == mb);
    CHECK(slurp((a / "results.csv").string()) == slurp((b / "results.csv").string()));
    plan.seeds = 3;
    CHECK(write_table(s, small(), plan, b.string(), t) != ma);
    fs::remove_all(a);
    fs::remove_all(b);
}

TEST_CASE("simulation: every request is issued once and completed once") {
    const Setting s(chinanet(), small());
    for (auto [i, e] : {std::pair{0, 0}, {10, 4}, {3, 2}, {0, 4}, {10, 1}, {-1, -1}}) {
        Params p = small();
        if (i < 0) { // clients that pause between requests
            p.think_s = 0.05;
            i = 10;
            e = 4;
        }
        p.ingress = i;
        p.egress = e;
        SimResult r = simulate(s, p);
        CHECK(r.issued == 500);
        CHECK(r.completed == 500);
        CHECK(r.aisid + r.dns == 500);
        CHECK(r.egress_picks == r.aisid);
        CHECK(r.response_ms.size() == 500);
        for (double x : r.response_ms) CHECK(x > 0);
        // Utilizations are fractions of capacity.
        for (double u : r.link_util) CHECK((u >= 0 && u <= 1));
        for (double u : r.compute_util) CHECK((u >= 0 && u <= 1));
    }
}

TEST_CASE("simulation: the AISID side runs aisid_sched") {
    const Setting s(chinanet(), small());
    Params p = small();
    SimResult r = simulate(s, p);
    CHECK(r.aisid == r.issued); // every requested type is served at some site
    CHECK(r.dns == 0);
    CHECK(r.ingress_choices > 0);
    CHECK(r.egress_picks == r.issued);
    for (size_t i = 0; i < r.served_by.size(); ++i) {
        // The egress only picks servers that serve the request's codes.
        const auto &want = s.requested[r.request_type[i]];
        bool ok = false;
        for (const auto &c : s.servers[r.served_by[i]].serves) ok |= aisid::sched::codes_match(c, want);
        CHECK(ok);
    }
    // The egress policy matters: SED and WLC pick differently.
    Params w = p;
    w.egress_policy = aisid::sched::Policy::sed;
    SimResult rw = simulate(s, w);
    CHECK(rw.served_by != r.served_by);
}

TEST_CASE("simulation: zero deployment is exactly the DNS baseline on shortest paths") {
    const Setting s(chinanet(), small());
    Params base = small();
    base.ingress = 0;
    base.egress = 0;
    const SimResult b = simulate(s, base);
    CHECK(b.dns == b.issued);
    for (size_t i = 0; i < b.upload_path.size(); ++i) {
        const int site = s.sites[s.servers[b.served_by[i]].site];
        CHECK(b.upload_path[i] == s.routing.path(b.client_node[i], site));
    }
    // Ingress gateways without any egress change nothing (no AISID route).
    Params ing = base;
    ing.ingress = 10;
    const SimResult r = simulate(s, ing);
    CHECK(r.response_ms == b.response_ms);
    CHECK(r.served_by == b.served_by);
    CHECK(r.upload_path == b.upload_path);
    CHECK(r.link_util == b.link_util);
    CHECK(r.compute_util == b.compute_util);
}

TEST_CASE("simulation: egress only is anycast to the nearest serving site with no detour") {
    const Setting s(chinanet(), small());
    Params p = small();
    p.ingress = 0;
    p.egress = 4;
    const SimResult r = simulate(s, p);
    CHECK(r.ingress_choices == 0);
    for (size_t i = 0; i < r.served_by.size(); ++i) {
        REQUIRE(r.via_aisid[i] == 1);
        int best = 1 << 30;
        for (int k : s.matching[r.request_type[i]])
            best = std::min(best, s.routing.hops(r.client_node[i], s.sites[s.servers[k].site]));
        CHECK(static_cast<int>(r.upload_path[i].size()) == best);
    }
}

TEST_CASE("DNS baseline: round robin and weighted and nearest answer as their names say") {
    const Setting s(chinanet(), small());
    Params p = small();
    p.ingress = 0;
    p.egress = 0;
    p.concurrency = 200;
    p.requests_per_client = 25; // 5000 requests, 250 per requested type
    // TTL 0: every answer comes from the GSLB's own rotation. Round robin is
    // also checked with the resolvers' caches (they rotate the RRset).
    for (auto [d, ttl] : {std::pair{DnsPolicy::round_robin, 30.0}, {DnsPolicy::round_robin, 0.0},
                          {DnsPolicy::weighted, 0.0}, {DnsPolicy::nearest, 30.0}}) {
        p.dns = d;
        p.dns_ttl_s = ttl;
        const SimResult r = simulate(s, p);
        for (size_t ty = 0; ty < s.requested.size(); ++ty) {
            const auto &m = s.matching[ty];
            std::vector<int> count(s.servers.size(), 0);
            int n = 0;
            for (size_t i = 0; i < r.served_by.size(); ++i)
                if (r.request_type[i] == static_cast<int>(ty)) {
                    ++count[r.served_by[i]];
                    ++n;
                }
            REQUIRE(n > 100);
            double cap = 0;
            for (int k : m) cap += s.servers[k].tflops;
            for (size_t k = 0; k < s.servers.size(); ++k) {
                const bool matches = std::find(m.begin(), m.end(), static_cast<int>(k)) != m.end();
                if (!matches) {
                    CHECK(count[k] == 0);
                    continue;
                }
                if (d == DnsPolicy::round_robin) {
                    // Every resolver rotates on its own, so the spread is even
                    // up to one rotation per resolver.
                    CHECK(std::abs(count[k] - static_cast<double>(n) / m.size()) <= 0.35 * n / m.size() + 2);
                } else if (d == DnsPolicy::weighted) {
                    // One global smooth weighted rotation: exact up to one
                    // schedule's rounding.
                    const double want = n * s.servers[k].tflops / cap;
                    CHECK(std::abs(count[k] - want) <= 0.2 * want + 2); // + queries that share a fetch in flight
                }
            }
            if (d == DnsPolicy::nearest) {
                // Each answer is at the site nearest the client's resolver
                // (its own city) among the sites that serve the type.
                for (size_t i = 0; i < r.served_by.size(); ++i) {
                    if (r.request_type[i] != static_cast<int>(ty)) continue;
                    int best = 1 << 30;
                    for (int k : m) best = std::min(best, s.routing.hops(r.client_node[i], s.sites[s.servers[k].site]));
                    CHECK(s.routing.hops(r.client_node[i], s.sites[s.servers[r.served_by[i]].site]) == best);
                }
            }
        }
    }
}

TEST_CASE("simulation: the work asked for is the work done also under overload") {
    Params p = small();
    p.concurrency = 400;
    p.total_tflops = 2000; // servers overloaded
    const Setting s(chinanet(), p);
    for (auto [i, e, d] : {std::tuple{0, 0, DnsPolicy::nearest}, {10, 4, DnsPolicy::round_robin}, {0, 0, DnsPolicy::round_robin}}) {
        p.ingress = i;
        p.egress = e;
        p.dns = d;
        const SimResult r = simulate(s, p);
        CHECK(r.compute_util_max > 0.9); // some server saturated most of the time
        CHECK(r.work_done == doctest::Approx(r.work_asked).epsilon(1e-9));
        CHECK(r.volume_carried == doctest::Approx(r.volume_asked).epsilon(1e-9));
    }
}

TEST_CASE("defaults: the paper's WLC in the experiment, the library's own default unchanged") {
    CHECK(Params{}.egress_policy == aisid::sched::Policy::wlc);
    CHECK(aisid::sched::EgressScheduler{}.policy() == aisid::sched::Policy::sed);
}

TEST_CASE("statistics: spread, weighted variance, confidence intervals") {
    const Spread flat = spread({2, 2, 2, 2});
    CHECK(flat.var == 0);
    CHECK(flat.cv2 == 0);
    CHECK(flat.jain == doctest::Approx(1.0));
    const Spread one = spread({1, 0, 0, 0});
    CHECK(one.mean == doctest::Approx(0.25));
    CHECK(one.var == doctest::Approx(0.1875));
    CHECK(one.cv2 == doctest::Approx(3.0));
    CHECK(one.jain == doctest::Approx(0.25)); // one of four gets everything: 1/n
    CHECK(one.jain == doctest::Approx(1.0 / (1.0 + one.cv2)));
    // Scaling every value scales the variance by the square, leaves CV² and Jain.
    const Spread half = spread({0.5, 0, 0, 0});
    CHECK(half.var == doctest::Approx(one.var / 4));
    CHECK(half.cv2 == doctest::Approx(one.cv2));
    CHECK(weighted_var({0, 1}, {1, 3}) == doctest::Approx(0.1875));
    CHECK(weighted_var({5, 1}, {0, 1}) == doctest::Approx(0.0)); // weight 0 does not count
    const Stat st = stat_of({1, 2, 3, 4, 5});
    CHECK(st.mean == doctest::Approx(3.0));
    CHECK(st.ci == doctest::Approx(2.776 * std::sqrt(2.5) / std::sqrt(5.0)).epsilon(1e-3));
    CHECK(t95(29) == doctest::Approx(2.045));
    CHECK(t95(1000) == doctest::Approx(1.962).epsilon(1e-3));
}

TEST_CASE("DNS cost: resolution pays the access round trip, and the GSLB round trip on a miss") {
    const Setting s(chinanet(), small());
    Params p = small();
    p.ingress = 0;
    p.egress = 0;
    p.access_ms = 7;
    for (double hit : {1.0, 0.0}) {
        p.fixed_hit = hit;
        for (ResolverAt where : {ResolverAt::local, ResolverAt::regional, ResolverAt::central}) {
            p.resolver = where;
            const SimResult r = simulate(s, p);
            REQUIRE(r.dns == r.issued);
            for (size_t i = 0; i < r.resolve_ms.size(); ++i) {
                const int c = r.client_node[i];
                const int res = where == ResolverAt::local      ? c
                                : where == ResolverAt::regional ? s.ingress_nodes[s.region[c]]
                                                                : s.central_node;
                double want = 2 * (7 + 5.0 * s.routing.hops(c, res));
                if (hit == 0) want += 2 * 5.0 * s.routing.hops(res, s.auth_node);
                CHECK(r.resolve_ms[i] == doctest::Approx(want));
                // Initiation: resolution, then one way to the answered site.
                const int site = s.sites[s.servers[r.served_by[i]].site];
                CHECK(r.init_ms[i] == doctest::Approx(want + 7 + 5.0 * s.routing.hops(c, site)));
            }
        }
    }
}

TEST_CASE("DNS cost: the TTL cache's hit ratio comes out of the request stream") {
    const Setting s(chinanet(), small());
    Params p = small();
    p.ingress = 0;
    p.egress = 0;
    p.concurrency = 300;
    p.requests_per_client = 10;
    p.dns_ttl_s = 0;
    const SimResult none = simulate(s, p);
    CHECK(none.cache_hits == 0); // TTL 0: nothing is ever cached
    CHECK(none.resolve_mean_ms > 2 * p.access_ms);
    double last = -1;
    for (double ttl : {0.5, 2.0, 10.0}) {
        p.dns_ttl_s = ttl;
        const SimResult r = simulate(s, p);
        // Renewal oracle: per (resolver, name) with rate λ, each miss starts
        // a TTL of hits, so the hit ratio is λT / (1 + λT).
        std::map<std::pair<int, int>, int> n;
        for (size_t i = 0; i < r.client_node.size(); ++i) ++n[{r.client_node[i], r.request_type[i]}];
        double want = 0;
        for (const auto &[k, c] : n) {
            const double lt = c / r.sim_end_s * ttl;
            want += c * lt / (1 + lt);
        }
        want /= static_cast<double>(r.issued);
        INFO("ttl " << ttl << " hit ratio " << r.hit_ratio << " renewal " << want);
        CHECK(r.hit_ratio == doctest::Approx(want).epsilon(0.12));
        CHECK(r.hit_ratio > last); // longer TTL, more hits
        last = r.hit_ratio;
    }
    p.dns_ttl_s = 1e7; // warm caches that never expire in the run
    CHECK(simulate(s, p).hit_ratio == doctest::Approx(1.0).epsilon(1e-3));
}

TEST_CASE("initiation latency: AISID pays the access and its path, nothing for the name") {
    const Setting s(chinanet(), small());
    Params p = small();
    p.access_ms = 3;
    const SimResult r = simulate(s, p);
    REQUIRE(r.aisid == r.issued);
    double sum = 0;
    for (size_t i = 0; i < r.init_ms.size(); ++i) {
        CHECK(r.resolve_ms[i] == 0);
        // One way: access, then the path through the ingress (if any) to the egress.
        CHECK(r.init_ms[i] == doctest::Approx(3 + 5.0 * static_cast<double>(r.upload_path[i].size())));
        sum += r.init_ms[i];
    }
    CHECK(r.init_mean_ms == doctest::Approx(sum / static_cast<double>(r.init_ms.size())));
    // With the handshake: 1.5 round trips.
    CHECK(r.init_hs_mean_ms == doctest::Approx(3 * r.init_mean_ms));
    CHECK(r.rt_mean_ms > r.init_hs_mean_ms + 1000 * (p.transfer_s + p.compute_s + p.reply_s) - 1e-6);
}

TEST_CASE("replies load the reverse direction, so link balance no longer hangs on direction") {
    const Setting s(chinanet(), small());
    Params p = small();
    p.ingress = 0;
    p.egress = 0;
    p.reply_s = 0;
    const SimResult up = simulate(s, p);
    int idle_up = 0;
    for (int l = 0; l + 1 < s.routing.links(); l += 2) idle_up += (up.link_util[l] == 0) != (up.link_util[l + 1] == 0);
    p.reply_s = p.transfer_s;
    const SimResult both = simulate(s, p);
    // Every reply crosses, in reverse, the links its upload crossed: each
    // undirected link carries (nearly) the same both ways.
    double fwd = 0, rev = 0;
    for (int l = 0; l + 1 < s.routing.links(); l += 2) {
        fwd += both.link_util[l];
        rev += both.link_util[l + 1];
    }
    CHECK(idle_up > 0); // uploads alone leave some directions idle
    CHECK(fwd == doctest::Approx(rev).epsilon(0.1));
    CHECK(both.volume_carried == doctest::Approx(both.volume_asked).epsilon(1e-9));
    CHECK(both.volume_carried > 1.8 * up.volume_carried);
    // Undirected utilization is the mean of the two directions.
    CHECK(both.ulink_mean == doctest::Approx(both.link_util_mean));
}

TEST_CASE("incremental deployment: undeployed providers keep their legacy DNS traffic") {
    const Setting s(chinanet(), small());
    Params p = small();
    p.concurrency = 200;
    p.requests_per_client = 10;
    p.ingress = 3;
    p.egress = 1;
    const SimResult r = simulate(s, p);
    const double share = static_cast<double>(r.aisid) / static_cast<double>(r.issued);
    CHECK(share == doctest::Approx(0.25).epsilon(0.15)); // the deployed site's share of the compute
    for (size_t i = 0; i < r.served_by.size(); ++i) {
        const int site = s.servers[r.served_by[i]].site;
        if (r.via_aisid[i]) CHECK(site == 0);
        else CHECK(site != 0); // DNS answers with the undeployed providers only
    }
    p.legacy_beside = false; // the old sweep: everything that site 0 serves goes there
    const SimResult old = simulate(s, p);
    CHECK(old.aisid > 3 * r.aisid);
}

TEST_CASE("structure: placement and deployment order follow the options and the seed") {
    Params p = small();
    const Setting d(chinanet(), p);
    p.order = DeployOrder::reverse;
    const Setting rev(chinanet(), p);
    CHECK(std::vector<int>(rev.sites.rbegin(), rev.sites.rend()) == d.sites);
    CHECK(std::vector<int>(rev.ingress_nodes.rbegin(), rev.ingress_nodes.rend()) == d.ingress_nodes);
    CHECK(rev.auth_node == d.auth_node); // the GSLB stays at the primary site
    p.order = DeployOrder::degree;
    p.placement = Placement::random;
    std::set<std::vector<int>> seen;
    for (uint64_t seed = 1; seed <= 5; ++seed) {
        p.seed = seed;
        const Setting a(chinanet(), p), b(chinanet(), p);
        CHECK(a.sites == b.sites); // deterministic per seed
        std::set<int> all(a.sites.begin(), a.sites.end());
        all.insert(a.ingress_nodes.begin(), a.ingress_nodes.end());
        CHECK(all.size() == 14); // 14 distinct cities
        for (int v : all) CHECK(a.topo.nodes[v].internal);
        seen.insert(a.sites);
    }
    CHECK(seen.size() > 1); // the seed moves the providers
}

TEST_CASE("DNS cost: a weighted GSLB's answer is pinned at the resolver for its TTL") {
    const Setting s(chinanet(), small());
    Params p = small();
    p.ingress = 0;
    p.egress = 0;
    p.dns = DnsPolicy::weighted;
    p.dns_ttl_s = 1e7; // never expires in the run: every resolver keeps its first answer
    const SimResult r = simulate(s, p);
    std::map<std::pair<int, int>, std::set<int>> answers;
    for (size_t i = 0; i < r.served_by.size(); ++i) answers[{r.client_node[i], r.request_type[i]}].insert(r.served_by[i]);
    size_t multi = 0;
    for (const auto &[k, v] : answers) multi += v.size() > 1;
    CHECK(multi == 0);
    p.dns = DnsPolicy::round_robin; // the RRset rotates instead
    const SimResult rr = simulate(s, p);
    answers.clear();
    for (size_t i = 0; i < rr.served_by.size(); ++i) answers[{rr.client_node[i], rr.request_type[i]}].insert(rr.served_by[i]);
    multi = 0;
    for (const auto &[k, v] : answers) multi += v.size() > 1;
    CHECK(multi > 0);
}
