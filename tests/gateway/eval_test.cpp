// eval/: the topology parser on the real file, routing, and the simulation's
// determinism, conservation, use of aisid_sched, and zero-deployment baseline.
#include "report.hpp"
#include "sim.hpp"
#include "topology.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
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
    const std::string ma = write_table(s, small(), a.string(), t);
    const std::string mb = write_table(s, small(), b.string(), t);
    CHECK(ma == mb);
    CHECK(slurp((a / "results.csv").string()) == slurp((b / "results.csv").string()));
    Params other = small();
    other.seed = 2;
    CHECK(write_table(s, other, b.string(), t) != ma);
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
        Result r = simulate(s, p);
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
    Result r = simulate(s, p);
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
    w.egress_policy = aisid::sched::Policy::wlc;
    Result rw = simulate(s, w);
    CHECK(rw.served_by != r.served_by);
}

TEST_CASE("simulation: zero deployment is exactly the DNS baseline on shortest paths") {
    const Setting s(chinanet(), small());
    Params base = small();
    base.ingress = 0;
    base.egress = 0;
    const Result b = simulate(s, base);
    CHECK(b.dns == b.issued);
    for (size_t i = 0; i < b.upload_path.size(); ++i) {
        const int site = s.sites[s.servers[b.served_by[i]].site];
        CHECK(b.upload_path[i] == s.routing.path(b.client_node[i], site));
    }
    // Ingress gateways without any egress change nothing (no AISID route).
    Params ing = base;
    ing.ingress = 10;
    const Result r = simulate(s, ing);
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
    const Result r = simulate(s, p);
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
    for (DnsPolicy d : {DnsPolicy::round_robin, DnsPolicy::weighted, DnsPolicy::nearest}) {
        p.dns = d;
        const Result r = simulate(s, p);
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
                    const double want = n * s.servers[k].tflops / cap;
                    CHECK(std::abs(count[k] - want) <= 0.35 * want + 2);
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
        const Result r = simulate(s, p);
        CHECK(r.compute_util_max > 0.9); // some server saturated most of the time
        CHECK(r.work_done == doctest::Approx(r.work_asked).epsilon(1e-9));
        CHECK(r.volume_carried == doctest::Approx(r.volume_asked).epsilon(1e-9));
    }
}
