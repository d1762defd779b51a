#include "aisid/eval/sim.hpp"

#include <aisid/sched/flow.hpp>
#include <aisid/sched/ingress.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <deque>
#include <queue>
#include <stdexcept>

namespace aisid::eval {

using sched::ServiceCodes;

const char *resolver_name(ResolverAt r) {
    switch (r) {
    case ResolverAt::local: return "local";
    case ResolverAt::regional: return "regional";
    case ResolverAt::central: return "central";
    }
    return "?";
}

Spread spread(const std::vector<double> &x) {
    Spread s;
    if (x.empty()) return s;
    double sum = 0, sq = 0;
    for (double v : x) {
        sum += v;
        sq += v * v;
        s.max = std::max(s.max, v);
    }
    const double n = static_cast<double>(x.size());
    s.mean = sum / n;
    for (double v : x) s.var += (v - s.mean) * (v - s.mean);
    s.var /= n;
    s.cv2 = s.mean > 0 ? s.var / (s.mean * s.mean) : 0.0;
    s.jain = sq > 0 ? sum * sum / (n * sq) : 1.0;
    return s;
}

double weighted_var(const std::vector<double> &x, const std::vector<double> &w) {
    double tw = 0, m = 0, v = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        tw += w[i];
        m += w[i] * x[i];
    }
    if (tw <= 0) return 0;
    m /= tw;
    for (size_t i = 0; i < x.size(); ++i) v += w[i] * (x[i] - m) * (x[i] - m);
    return v / tw;
}

const char *dns_policy_name(DnsPolicy p) {
    switch (p) {
    case DnsPolicy::round_robin: return "round-robin";
    case DnsPolicy::nearest: return "nearest";
    case DnsPolicy::weighted: return "weighted";
    }
    return "?";
}

namespace {

// Counter-based randomness: every random quantity is a pure function of
// (seed, what, who), so a request's client, type and demands are the same in
// the DNS run and the AISID run (common random numbers), whatever the
// schedulers did before it.
double u01(uint64_t seed, uint64_t what, uint64_t a, uint64_t b = 0) {
    uint64_t h = sched::mix64(seed ^ sched::mix64(what ^ sched::mix64(a ^ sched::mix64(b))));
    return (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
}
enum What : uint64_t { kClientNode = 1, kType, kMbps, kTflops, kCacheHit, kCacheWarm, kLegacy, kPlace, kOrder };

// A deterministic shuffle driven by the seed (Fisher-Yates on u01 draws).
template <class T> void shuffle(std::vector<T> &v, uint64_t seed, uint64_t what) {
    for (size_t i = v.size(); i > 1; --i) {
        const size_t j = std::min(i - 1, static_cast<size_t>(u01(seed, what, i) * static_cast<double>(i)));
        std::swap(v[i - 1], v[j]);
    }
}

// Deterministic orderings of nodes by degree (descending), ties by id.
std::vector<int> by_degree(const Topology &t) {
    std::vector<int> v;
    for (const auto &n : t.nodes)
        if (n.internal) v.push_back(n.id);
    std::stable_sort(v.begin(), v.end(), [&](int a, int b) { return t.degree(a) > t.degree(b); });
    return v;
}

} // namespace

Setting::Setting(Topology t, const Params &p) : topo(std::move(t)), routing(topo) {
    const std::vector<int> order = by_degree(topo);
    if (order.size() < 14) throw std::runtime_error("topology too small for 4 sites + 10 ingress");
    // Providers (and their egress gateways) at the 4 best-connected cities;
    // ingress gateways at the next 10 (the "few core devices" of the paper).
    client_nodes = order;
    std::sort(client_nodes.begin(), client_nodes.end());
    std::vector<int> pick = order;
    if (p.placement == Placement::random) {
        // Providers and ingress gateways anywhere among the internal cities,
        // then ordered by degree like the default placement.
        shuffle(pick, p.seed, kPlace);
        std::stable_sort(pick.begin(), pick.begin() + 4,
                         [&](int a, int b) { return topo.degree(a) > topo.degree(b); });
        std::stable_sort(pick.begin() + 4, pick.begin() + 14,
                         [&](int a, int b) { return topo.degree(a) > topo.degree(b); });
    }
    sites.assign(pick.begin(), pick.begin() + 4);
    ingress_nodes.assign(pick.begin() + 4, pick.begin() + 14);
    // The GSLB (authoritative server) sits at the provider's primary, best-
    // connected site, whatever the deployment order.
    auth_node = sites[0];
    if (p.order == DeployOrder::reverse) {
        std::reverse(sites.begin(), sites.end());
        std::reverse(ingress_nodes.begin(), ingress_nodes.end());
    } else if (p.order == DeployOrder::random) {
        shuffle(sites, p.seed, kOrder);
        shuffle(ingress_nodes, p.seed, kOrder + 100);
    }
    {
        long best = -1;
        for (int v : client_nodes) {
            long sum = 0;
            for (int c : client_nodes) sum += routing.hops(v, c);
            if (best < 0 || sum < best) {
                best = sum;
                central_node = v;
            }
        }
    }
    region.assign(topo.nodes.size(), 0);
    for (size_t v = 0; v < topo.nodes.size(); ++v) {
        int best = 0;
        for (int g = 1; g < static_cast<int>(ingress_nodes.size()); ++g)
            if (routing.hops(static_cast<int>(v), ingress_nodes[g]) <
                routing.hops(static_cast<int>(v), ingress_nodes[best]))
                best = g;
        region[v] = best;
    }
    // 10 offered types: (object, function, method) with object 1..2,
    // function 1..3, method 1..2.
    for (int k = 0; k < 10; ++k)
        offered.push_back(ServiceCodes{static_cast<uint16_t>(1 + k / 5),
                                       static_cast<uint16_t>(1 + (k % 5) / 2),
                                       static_cast<uint16_t>(1 + k % 2)});
    // 20 requested types: the 10 exact ones, and 10 that leave dimensions to
    // the network (code 0 = any, SPEC §1).
    requested = offered;
    for (uint16_t o = 1; o <= 2; ++o)
        for (uint16_t f = 1; f <= 3; ++f) requested.push_back({o, f, 0});
    requested.push_back({1, 0, 0});
    requested.push_back({2, 0, 0});
    requested.push_back({0, 1, 0});
    requested.push_back({0, 2, 0});
    // 4 servers per site; the compute is split equally between the sites and
    // 40/30/20/10% between the servers of a site. Server k serves offered
    // types k..k+4 (mod 10).
    const double share[4] = {0.4, 0.3, 0.2, 0.1};
    for (int si = 0; si < 4; ++si) {
        for (int j = 0; j < 4; ++j) {
            Server sv;
            sv.site = si;
            const double site_share = p.skewed_sites ? share[si] : 0.25;
            sv.tflops = p.total_tflops * site_share * (p.equal_servers ? 0.25 : share[j]);
            const int k = 4 * si + j;
            for (int m = 0; m < 5; ++m) sv.serves.push_back(offered[(k + m) % 10]);
            sv.name = topo.nodes[sites[si]].label + "-" + std::to_string(j);
            servers.push_back(sv);
        }
    }
    matching.resize(requested.size());
    for (size_t r = 0; r < requested.size(); ++r)
        for (size_t k = 0; k < servers.size(); ++k)
            for (const auto &c : servers[k].serves)
                if (sched::codes_match(c, requested[r])) {
                    matching[r].push_back(static_cast<int>(k));
                    break;
                }
}

namespace {

// ---------------------------------------------------------------------------
// Fluid resources: links (bit/s) and servers (TFLOPS). A job asks for `demand`
// on each resource of its list; on an overloaded resource (load > capacity)
// every job gets the same fraction capacity/load of its demand; a job's rate
// is its demand times the smallest such fraction along its list.
struct Resource {
    double cap = 0;
    double load = 0;
    double area = 0; // ∫ min(load, cap) dt
    double last = 0;
    std::vector<int> jobs;
    double frac() const { return load <= cap ? 1.0 : cap / load; }
    void flush(double now) {
        area += std::min(load, cap) * (now - last);
        last = now;
    }
};

// The compute side of a server. Every computation asks demand × compute_s of
// work at rate demand × frac(), so in "virtual time" V = ∫ frac dt each one
// needs exactly compute_s: they finish in arrival order, and only the head of
// the queue needs a scheduled event (O(1) per arrival or departure however
// crowded the server is).
struct ServerQueue {
    std::deque<std::pair<double, int>> fifo; // (virtual finish time, request)
    double v = 0;
    double vlast = 0;
    uint32_t version = 0;
};

struct Job {
    int req = -1;
    double demand = 0;
    double remaining = 0;
    double rate = 0;
    double last = 0;
    uint32_t version = 0;
    bool live = false;
    std::vector<int> res;
    std::vector<int> pos; // index of this job inside res[i].jobs
};

enum class Ev : uint8_t { start, connected, job_done, server_done, done, tick };
struct Event {
    double t;
    uint64_t seq;
    Ev type;
    int id;
    uint32_t ver;
    bool operator>(const Event &o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

struct Req {
    int client = 0, node = 0, type = 0, server = -1, site = -1, ingress = -1;
    uint64_t who = 0;
    bool aisid = false;
    bool replying = false; // the transfer in flight is the reply
    double mbps = 0, tflops = 0, t0 = 0, reply_s = 0;
    double resolve_s = 0, oneway_s = 0;
    std::vector<int> path;
};

class Sim {
public:
    Sim(const Setting &s, const Params &p) : s_(s), p_(p) {}
    SimResult run();

private:
    void push(double t, Ev type, int id, uint32_t ver = 0) { q_.push(Event{t, seq_++, type, id, ver}); }
    void issue(int client, double t);
    void start(int r, double t);
    void connected(int r, double t);
    void job_done(int j, double t);
    void compute_start(int r, double t);
    void server_done(int k, double t);
    void server_advance(int k, double t);
    void server_reschedule(int k, double t);
    void done(int r, double t);
    void tick(double t);
    int add_job(int req, double demand, double volume, std::vector<int> res, double t);
    void remove_job(int j, double t);
    void refresh(int j, double t);
    void retime(int j, double t);
    int dns_answer(int r, int resolver_node, bool hit);
    double lookup(int resolver, int type, double t, double answer_s, bool &hit, bool &fetched);
    double delay_s(int a, int b) const { return s_.routing.hops(a, b) * p_.hop_delay_ms / 1000.0; }
    int link_res(int l) const { return l; }
    int server_res(int k) const { return s_.routing.links() + k; }
    void snapshot(double t);

    const Setting &s_;
    const Params &p_;
    std::priority_queue<Event, std::vector<Event>, std::greater<Event>> q_;
    uint64_t seq_ = 0;
    std::vector<Resource> res_;
    std::vector<ServerQueue> srv_;
    std::vector<Job> jobs_;
    std::vector<int> free_jobs_;
    std::vector<Req> reqs_;
    std::vector<int> client_node_;
    std::vector<int> client_seq_;
    uint64_t total_ = 0;
    bool use_aisid_ = false;
    double window_end_ = -1;
    std::vector<double> window_area_;
    // Schedulers: one egress per site, one path set per (ingress, requested type).
    std::vector<sched::EgressScheduler> egress_;
    std::vector<std::vector<int>> egress_server_; // per site: NodeId → server index
    std::vector<int> server_node_id_;             // server index → NodeId at its site's egress
    std::vector<sched::PathSet> paths_;           // [ingress * types + type]
    std::vector<std::vector<int>> path_site_;     // same index: PathId → site
    std::vector<int> active_;                     // per server: flows assigned, not finished
    struct Route {
        int site = -1;    // nearest deployed egress site serving the type (-1: none → DNS)
        int ingress = -1; // first deployed ingress gateway on the way there (-1: none)
    };
    std::vector<Route> route_;                    // [topology node * types + type]
    // DNS state
    std::vector<uint64_t> auth_rr_;               // per requested type
    std::vector<uint64_t> cache_rr_;              // [resolver node * types + type]
    std::vector<std::vector<int>> wrr_;           // per requested type: weighted schedule
    std::vector<std::vector<std::vector<int>>> near_; // [resolver node][type] servers at the nearest site
    std::vector<std::vector<int>> dns_match_;     // per requested type: the servers DNS answers with
    std::vector<double> arrive_, expire_;         // [resolver node * types + type]: cached answer there from, valid until
    double legacy_share_ = 0;                     // share of requests that stay legacy (undeployed providers)
    SimResult out_;
};

int Sim::add_job(int req, double demand, double volume, std::vector<int> res, double t) {
    int j;
    if (!free_jobs_.empty()) {
        j = free_jobs_.back();
        free_jobs_.pop_back();
    } else {
        j = static_cast<int>(jobs_.size());
        jobs_.emplace_back();
    }
    Job &job = jobs_[j];
    job.req = req;
    job.demand = demand;
    job.remaining = volume;
    job.rate = 0;
    job.last = t;
    job.live = true;
    job.res = std::move(res);
    job.pos.assign(job.res.size(), 0);
    std::vector<int> changed;
    for (size_t i = 0; i < job.res.size(); ++i) {
        Resource &r = res_[job.res[i]];
        r.flush(t);
        const double before = r.frac();
        r.load += demand;
        job.pos[i] = static_cast<int>(r.jobs.size());
        r.jobs.push_back(j);
        if (r.frac() != before) changed.push_back(job.res[i]);
        if (job.res[i] < s_.routing.links()) out_.link_peak = std::max(out_.link_peak, r.load / r.cap);
    }
    retime(j, t);
    for (int ri : changed)
        for (int k : res_[ri].jobs)
            if (k != j) refresh(k, t);
    return j;
}

void Sim::remove_job(int j, double t) {
    Job &job = jobs_[j];
    std::vector<int> changed;
    for (size_t i = 0; i < job.res.size(); ++i) {
        Resource &r = res_[job.res[i]];
        r.flush(t);
        const double before = r.frac();
        const int at = job.pos[i];
        const int moved = r.jobs.back();
        r.jobs[at] = moved;
        r.jobs.pop_back();
        if (moved != j) {
            Job &m = jobs_[moved];
            for (size_t x = 0; x < m.res.size(); ++x)
                if (m.res[x] == job.res[i]) m.pos[x] = at;
        }
        r.load = r.jobs.empty() ? 0.0 : r.load - job.demand;
        if (r.frac() != before) changed.push_back(job.res[i]);
    }
    job.live = false;
    ++job.version;
    free_jobs_.push_back(j);
    for (int ri : changed)
        for (int k : res_[ri].jobs) refresh(k, t);
}

// Brings job j's progress up to t and reschedules it if its rate changed.
void Sim::refresh(int j, double t) {
    Job &job = jobs_[j];
    double f = 1.0;
    for (int ri : job.res) f = std::min(f, res_[ri].frac());
    const double rate = job.demand * f;
    if (rate == job.rate) return;
    job.remaining = std::max(0.0, job.remaining - job.rate * (t - job.last));
    job.last = t;
    retime(j, t);
}

void Sim::retime(int j, double t) {
    Job &job = jobs_[j];
    double f = 1.0;
    for (int ri : job.res) f = std::min(f, res_[ri].frac());
    job.rate = job.demand * f;
    ++job.version;
    push(t + job.remaining / job.rate, Ev::job_done, j, job.version);
}

void Sim::issue(int client, double t) {
    if (total_ >= static_cast<uint64_t>(p_.concurrency) * p_.requests_per_client) return;
    const int r = static_cast<int>(reqs_.size());
    reqs_.emplace_back();
    Req &q = reqs_.back();
    const uint64_t seq = static_cast<uint64_t>(client_seq_[client]++);
    const uint64_t who = (static_cast<uint64_t>(client) << 32) | seq;
    q.client = client;
    q.who = who;
    q.node = client_node_[client];
    q.type = std::min(static_cast<int>(s_.requested.size()) - 1,
                      static_cast<int>(u01(p_.seed, kType, who) * s_.requested.size()));
    q.mbps = p_.min_mbps + (p_.max_mbps - p_.min_mbps) * u01(p_.seed, kMbps, who);
    q.tflops = p_.min_tflops + (p_.max_tflops - p_.min_tflops) * u01(p_.seed, kTflops, who);
    q.t0 = t;
    ++total_;
    ++out_.issued;
    if (total_ == static_cast<uint64_t>(p_.concurrency) * p_.requests_per_client) snapshot(t);
    start(r, t);
}

int Sim::dns_answer(int r, int resolver, bool hit) { // resolver: its topology node
    const Req &q = reqs_[r];
    const size_t T = s_.requested.size();
    // Round robin and nearest: the resolver caches the RRset the
    // authoritative server rotated for it and rotates it again on every
    // answer from cache (BIND rrset-order cyclic, Unbound rrset-roundrobin);
    // the client uses the first address. Weighted: the GSLB answers one
    // address per query (its weighted choice), and the resolver hands that
    // same address to every client until the TTL runs out.
    uint64_t &c = cache_rr_[resolver * T + q.type];
    if (!hit)
        c = auth_rr_[q.type]++;
    else if (p_.dns != DnsPolicy::weighted)
        ++c;
    switch (p_.dns) {
    case DnsPolicy::round_robin: {
        const auto &m = dns_match_[q.type];
        return m[c % m.size()];
    }
    case DnsPolicy::weighted: {
        const auto &w = wrr_[q.type];
        return w[c % w.size()];
    }
    case DnsPolicy::nearest: {
        const auto &m = near_[resolver][q.type];
        return m[c % m.size()];
    }
    }
    return -1;
}

void Sim::start(int r, double t) {
    Req &q = reqs_[r];
    const size_t T = s_.requested.size();
    Route rt = use_aisid_ ? route_[q.node * T + q.type] : Route{};
    // Incremental deployment beside legacy: the providers without an egress
    // gateway keep their share of the traffic, over DNS.
    if (rt.site >= 0 && legacy_share_ > 0 && u01(p_.seed, kLegacy, q.who) < legacy_share_) rt = Route{};
    const double access = p_.access_ms / 1000.0;
    if (rt.site >= 0) {
        // AISID: the client sends straight to the AISID (resolved in process
        // from zone data, no packet). The packet follows the IGP toward the
        // nearest egress gateway that announces the service's codes; the
        // first ingress gateway on that way, if any, takes it and chooses the
        // egress per flow; the egress chooses the server.
        q.aisid = true;
        ++out_.aisid;
        q.ingress = rt.ingress;
        sched::FlowKey fk;
        fk.src = {0x20, 0x01, 0x0d, 0xb8, 0, 0, static_cast<uint8_t>(q.node >> 8), static_cast<uint8_t>(q.node)};
        for (int i = 0; i < 8; ++i) fk.src[8 + i] = static_cast<uint8_t>(static_cast<uint64_t>(r) >> (56 - 8 * i));
        const Aisid dst = Aisid::make(0x20010db8abcd0012ULL, s_.requested[q.type].object,
                                      s_.requested[q.type].function, s_.requested[q.type].method, 0);
        fk.dst = dst.bytes();
        fk.src_port = static_cast<uint16_t>(32768 + (r % 28232));
        fk.dst_port = 443;
        fk.proto = 6;
        if (rt.ingress >= 0) {
            const sched::PathSet &ps = paths_[rt.ingress * T + q.type];
            auto pid = ps.choose(fk);
            ++out_.ingress_choices;
            if (!pid) throw std::logic_error("no egress path for a served type");
            q.site = path_site_[rt.ingress * T + q.type][*pid];
        } else {
            q.site = rt.site;
        }
        auto nid = egress_[q.site].assign(sched::Request::from(dst));
        ++out_.egress_picks;
        if (!nid) throw std::logic_error("egress found no server for a type its site serves");
        q.server = egress_server_[q.site][*nid];
        const int e = s_.sites[q.site];
        double one_way;
        if (rt.ingress >= 0) {
            const int g = s_.ingress_nodes[rt.ingress];
            q.path = s_.routing.path(q.node, g);
            const auto &tail = s_.routing.path(g, e);
            q.path.insert(q.path.end(), tail.begin(), tail.end());
            one_way = access + delay_s(q.node, g) + delay_s(g, e);
        } else {
            q.path = s_.routing.path(q.node, e);
            one_way = access + delay_s(q.node, e);
        }
        q.reply_s = access + delay_s(e, q.node);
        q.oneway_s = one_way;
        q.resolve_s = 0;
        ++active_[q.server];
        // TCP handshake with the egress proxy: one round trip.
        push(t + 2 * one_way, Ev::connected, r);
    } else {
        q.aisid = false;
        ++out_.dns;
        // The recursive resolver: the ISP's, in the client's own city, or
        // (variant) one per region at the core nodes.
        const int resolver = p_.resolver == ResolverAt::regional  ? s_.ingress_nodes[s_.region[q.node]]
                             : p_.resolver == ResolverAt::central ? s_.central_node
                                                                  : q.node;
        // Stub → recursive resolver over the access link (and the backbone
        // when the resolver is elsewhere); on a miss, resolver → the GSLB.
        const double to_resolver = 2 * (access + delay_s(q.node, resolver));
        const double to_auth = 2 * delay_s(resolver, s_.auth_node);
        bool hit, fetched;
        double wait;
        if (p_.fixed_hit >= 0) {
            hit = u01(p_.seed, kCacheHit, q.who) < p_.fixed_hit;
            fetched = !hit;
            wait = hit ? 0.0 : to_auth;
        } else {
            wait = lookup(resolver, q.type, t + to_resolver / 2, to_auth, hit, fetched);
        }
        ++out_.dns_lookups;
        if (hit) ++out_.cache_hits;
        double resolve = to_resolver + wait;
        if (p_.free_resolution) resolve = 0;
        q.server = dns_answer(r, resolver, !fetched); // a fresh rotation from the GSLB, or the cached copy
        q.site = s_.servers[q.server].site;
        const int e = s_.sites[q.site];
        q.path = s_.routing.path(q.node, e);
        q.reply_s = access + delay_s(e, q.node);
        q.oneway_s = access + delay_s(q.node, e);
        q.resolve_s = resolve;
        ++active_[q.server];
        push(t + resolve + 2 * q.oneway_s, Ev::connected, r);
    }
}

// The resolver's cache for one name, asked at time t: a hit when it holds an
// unexpired answer (no wait); a query that arrives while the resolver is
// already fetching the name waits for that answer (not a hit); otherwise a
// miss fetches it from the GSLB (answer_s) and caches it for the TTL. The
// hit ratio is what the request stream and the TTL give. Returns the wait.
double Sim::lookup(int resolver, int type, double t, double answer_s, bool &hit, bool &fetched) {
    const size_t i = static_cast<size_t>(resolver) * s_.requested.size() + static_cast<size_t>(type);
    hit = t >= arrive_[i] && t < expire_[i];
    fetched = false;
    if (hit) return 0.0;
    if (t < arrive_[i]) return arrive_[i] - t; // coalesced with the fetch in flight
    fetched = true;
    arrive_[i] = t + answer_s;
    expire_[i] = arrive_[i] + p_.dns_ttl_s;
    return answer_s;
}

void Sim::connected(int r, double t) {
    Req &q = reqs_[r];
    std::vector<int> res;
    for (int l : q.path) res.push_back(link_res(l));
    if (res.empty()) {
        // Client in the provider's own city: the upload does not cross the
        // backbone; it takes its nominal time.
        push(t + p_.transfer_s, Ev::job_done, -1 - r, 0);
        return;
    }
    const double bps = q.mbps * 1e6;
    add_job(r, bps, bps * p_.transfer_s, std::move(res), t);
}

void Sim::job_done(int j, double t) {
    // An upload or a reply finished (j < 0: one that crossed no link).
    int r;
    if (j < 0) {
        r = -1 - j;
    } else {
        r = jobs_[j].req;
        remove_job(j, t);
    }
    if (reqs_[r].replying)
        push(t + reqs_[r].reply_s, Ev::done, r); // the last byte's propagation
    else
        compute_start(r, t);
}

void Sim::server_advance(int k, double t) {
    Resource &rs = res_[server_res(k)];
    ServerQueue &sq = srv_[k];
    sq.v += rs.frac() * (t - sq.vlast);
    sq.vlast = t;
    rs.flush(t);
}

void Sim::server_reschedule(int k, double t) {
    ServerQueue &sq = srv_[k];
    ++sq.version;
    if (sq.fifo.empty()) return;
    const double f = res_[server_res(k)].frac();
    push(t + std::max(0.0, sq.fifo.front().first - sq.v) / f, Ev::server_done, k, sq.version);
}

void Sim::compute_start(int r, double t) {
    const Req &q = reqs_[r];
    const int k = q.server;
    server_advance(k, t);
    res_[server_res(k)].load += q.tflops;
    srv_[k].fifo.emplace_back(srv_[k].v + p_.compute_s, r);
    server_reschedule(k, t);
}

void Sim::server_done(int k, double t) {
    server_advance(k, t);
    ServerQueue &sq = srv_[k];
    const int r = sq.fifo.front().second;
    sq.fifo.pop_front();
    Resource &rs = res_[server_res(k)];
    rs.load = sq.fifo.empty() ? 0.0 : rs.load - reqs_[r].tflops;
    server_reschedule(k, t);
    const Req &q = reqs_[r];
    --active_[k];
    if (q.aisid) egress_[q.site].on_release(server_node_id_[k]);
    // The reply: demand × reply_s bits from the site back to the client on
    // the shortest path (the egress proxy answers directly), then one-way
    // propagation.
    const auto &back = s_.routing.path(s_.sites[q.site], q.node);
    if (p_.reply_s <= 0) {
        push(t + q.reply_s, Ev::done, r);
        return;
    }
    reqs_[r].replying = true;
    if (back.empty()) {
        push(t + p_.reply_s, Ev::job_done, -1 - r, 0);
        return;
    }
    std::vector<int> res;
    for (int l : back) res.push_back(link_res(l));
    const double bps = q.mbps * 1e6;
    add_job(r, bps, bps * p_.reply_s, std::move(res), t);
}

void Sim::done(int r, double t) {
    const Req &q = reqs_[r];
    out_.response_ms[r] = (t - q.t0) * 1000.0;
    ++out_.completed;
    out_.sim_end_s = t;
    if (p_.think_s > 0)
        push(t + p_.think_s, Ev::start, q.client);
    else
        issue(q.client, t);
}

void Sim::tick(double t) {
    // Servers report (active flows, utilization) to their site's egress; the
    // control side reports site load and path link utilization to ingresses.
    std::vector<double> site_load(s_.sites.size(), 0), site_cap(s_.sites.size(), 0);
    for (size_t k = 0; k < s_.servers.size(); ++k) {
        const Resource &rs = res_[server_res(static_cast<int>(k))];
        const int si = s_.servers[k].site;
        site_load[si] += rs.load;
        site_cap[si] += rs.cap;
        if (si < p_.egress)
            egress_[si].report(server_node_id_[k], static_cast<uint32_t>(active_[k]),
                               std::min(1.0, rs.load / rs.cap));
    }
    const size_t T = s_.requested.size();
    for (int g = 0; g < p_.ingress; ++g) {
        for (size_t ty = 0; ty < T; ++ty) {
            sched::PathSet &ps = paths_[g * T + ty];
            for (size_t pid = 0; pid < ps.size(); ++pid) {
                const int si = path_site_[g * T + ty][pid];
                double lu = 0;
                for (int l : s_.routing.path(s_.ingress_nodes[g], s_.sites[si]))
                    lu = std::max(lu, std::min(1.0, res_[link_res(l)].load / res_[link_res(l)].cap));
                ps.report(static_cast<sched::PathId>(pid),
                          {true, std::min(1.0, site_load[si] / site_cap[si]), lu,
                           delay_s(s_.ingress_nodes[g], s_.sites[si]) * 1000.0});
            }
        }
    }
    if (out_.completed < static_cast<uint64_t>(p_.concurrency) * p_.requests_per_client)
        push(t + p_.report_period_s, Ev::tick, 0);
}

void Sim::snapshot(double t) {
    window_end_ = t;
    window_area_.resize(res_.size());
    for (size_t i = 0; i < res_.size(); ++i) {
        res_[i].flush(t);
        window_area_[i] = res_[i].area;
    }
}

SimResult Sim::run() {
    const size_t T = s_.requested.size();
    const int L = s_.routing.links();
    const int S = static_cast<int>(s_.servers.size());
    res_.assign(L + S, Resource{});
    for (int l = 0; l < L; ++l) res_[l].cap = p_.link_gbps * 1e9;
    for (int k = 0; k < S; ++k) res_[L + k].cap = s_.servers[k].tflops;
    active_.assign(S, 0);
    srv_.assign(S, ServerQueue{});
    // AISID routes exist once an egress gateway announces the prefix.
    use_aisid_ = p_.egress > 0;

    // Egress gateways at the first p.egress sites, each over its site's servers.
    egress_server_.assign(s_.sites.size(), {});
    server_node_id_.assign(S, -1);
    for (size_t si = 0; si < s_.sites.size(); ++si) egress_.emplace_back(p_.egress_policy);
    for (int k = 0; k < S; ++k) {
        const auto &sv = s_.servers[k];
        sched::NodeSpec n{sv.name, static_cast<uint32_t>(std::lround(sv.tflops)), sv.serves, 0};
        server_node_id_[k] = static_cast<int>(egress_[sv.site].add_node(n));
        egress_server_[sv.site].push_back(k);
    }
    // Ingress path sets: per requested type, the deployed egress sites that
    // have a matching server (the control side installs routes per AISID
    // prefix and codes), base weight = the matching compute there.
    sched::WeightParams wp;
    wp.delay_ref_ms = p_.delay_ref_ms;
    paths_.assign(s_.ingress_nodes.size() * T, sched::PathSet(wp));
    path_site_.assign(s_.ingress_nodes.size() * T, {});
    for (size_t g = 0; g < s_.ingress_nodes.size(); ++g) {
        for (size_t ty = 0; ty < T; ++ty) {
            for (int si = 0; si < std::min<int>(p_.egress, static_cast<int>(s_.sites.size())); ++si) {
                double cap = 0;
                for (int k : s_.matching[ty])
                    if (s_.servers[k].site == si) cap += s_.servers[k].tflops;
                if (cap <= 0) continue;
                const std::string sid = "egress-" + s_.topo.nodes[s_.sites[si]].label;
                paths_[g * T + ty].add_path({sched::hash_name(sid), sid, cap});
                path_site_[g * T + ty].push_back(si);
            }
        }
    }
    // Where AISID packets go: per (client city, type), the nearest deployed
    // egress site with a matching server (the egress gateways announce routes
    // per prefix and codes; ties to the lower site index), and the first
    // deployed ingress gateway on the shortest path there. No such site: the
    // AISID is unreachable and the SDK falls back to DNS.
    const int N = s_.routing.nodes();
    route_.assign(static_cast<size_t>(N) * T, Route{});
    std::vector<int> ingress_at(N, -1);
    for (int g = 0; g < std::min<int>(p_.ingress, static_cast<int>(s_.ingress_nodes.size())); ++g)
        ingress_at[s_.ingress_nodes[g]] = g;
    for (int v = 0; v < N; ++v) {
        for (size_t ty = 0; ty < T; ++ty) {
            Route &rt = route_[v * T + ty];
            for (int si = 0; si < std::min<int>(p_.egress, static_cast<int>(s_.sites.size())); ++si) {
                bool has = false;
                for (int k : s_.matching[ty]) has |= s_.servers[k].site == si;
                if (has && (rt.site < 0 || s_.routing.hops(v, s_.sites[si]) < s_.routing.hops(v, s_.sites[rt.site])))
                    rt.site = si;
            }
            if (rt.site < 0) continue;
            if (p_.attach_to_ingress) {
                // Variant: the client's access network hands all AISID traffic
                // to its nearest deployed ingress gateway, detour or not.
                for (int g = 0; g < std::min<int>(p_.ingress, static_cast<int>(s_.ingress_nodes.size())); ++g)
                    if (rt.ingress < 0 ||
                        s_.routing.hops(v, s_.ingress_nodes[g]) < s_.routing.hops(v, s_.ingress_nodes[rt.ingress]))
                        rt.ingress = g;
                continue;
            }
            int at = v;
            const auto &way = s_.routing.path(v, s_.sites[rt.site]);
            for (size_t h = 0; h <= way.size(); ++h) {
                if (at == s_.sites[rt.site]) break; // reached the egress first
                if (ingress_at[at] >= 0) {
                    rt.ingress = ingress_at[at];
                    break;
                }
                if (h < way.size()) at = s_.routing.link_dst(way[h]);
            }
        }
    }

    // Which servers DNS answers with: all that match, or, when some
    // providers have deployed AISID and the others keep their legacy traffic
    // beside it, those of the undeployed providers (the legacy share is
    // their share of the compute).
    const int deployed = std::min<int>(p_.egress, static_cast<int>(s_.sites.size()));
    dns_match_ = s_.matching;
    legacy_share_ = 0;
    if (p_.legacy_beside && deployed > 0 && deployed < static_cast<int>(s_.sites.size())) {
        double all = 0, legacy = 0;
        for (const auto &sv : s_.servers) {
            all += sv.tflops;
            if (sv.site >= deployed) legacy += sv.tflops;
        }
        legacy_share_ = legacy / all;
        for (size_t ty = 0; ty < T; ++ty) {
            std::vector<int> m;
            for (int k : s_.matching[ty])
                if (s_.servers[k].site >= deployed) m.push_back(k);
            if (!m.empty()) dns_match_[ty] = std::move(m);
        }
    }
    // DNS: warm caches, each resolver at its own place in the rotation, and
    // each cached answer at a uniform point of its TTL (the stationary state).
    // Resolvers are indexed by the topology node they sit at.
    const size_t R = static_cast<size_t>(s_.routing.nodes());
    auth_rr_.assign(T, 0);
    cache_rr_.assign(R * T, 0);
    arrive_.assign(R * T, 0.0);
    expire_.assign(R * T, 0.0);
    for (size_t g = 0; g < R; ++g)
        for (size_t ty = 0; ty < T; ++ty) {
            cache_rr_[g * T + ty] = g;
            expire_[g * T + ty] = u01(p_.seed, kCacheWarm, g, ty) * p_.dns_ttl_s;
        }
    wrr_.assign(T, {});
    for (size_t ty = 0; ty < T; ++ty) {
        // Smooth weighted round robin (nginx): weights in units of the
        // smallest server, so the schedule is short and exact.
        const auto &m = dns_match_[ty];
        std::vector<long> w, cur(m.size(), 0);
        double unit = 1e300;
        for (int k : m) unit = std::min(unit, s_.servers[k].tflops);
        long total = 0;
        for (int k : m) total += w.emplace_back(std::lround(s_.servers[k].tflops / unit));
        for (long step = 0; step < total; ++step) {
            size_t best = 0;
            for (size_t i = 0; i < m.size(); ++i) {
                cur[i] += w[i];
                if (cur[i] > cur[best]) best = i;
            }
            cur[best] -= total;
            wrr_[ty].push_back(m[best]);
        }
    }
    near_.assign(R, std::vector<std::vector<int>>(T));
    for (size_t g = 0; g < R; ++g) {
        for (size_t ty = 0; ty < T; ++ty) {
            int best_site = -1;
            for (size_t si = 0; si < s_.sites.size(); ++si) {
                bool has = false;
                for (int k : dns_match_[ty]) has |= s_.servers[k].site == static_cast<int>(si);
                if (!has) continue;
                const int gv = static_cast<int>(g);
                if (best_site < 0 || s_.routing.hops(gv, s_.sites[si]) < s_.routing.hops(gv, s_.sites[best_site]))
                    best_site = static_cast<int>(si);
            }
            for (int k : dns_match_[ty])
                if (s_.servers[k].site == best_site) near_[g][ty].push_back(k);
        }
    }

    // Clients: each at a city drawn uniformly from the client nodes.
    const uint64_t M = static_cast<uint64_t>(p_.concurrency) * p_.requests_per_client;
    client_node_.resize(p_.concurrency);
    client_seq_.assign(p_.concurrency, 0);
    for (int c = 0; c < p_.concurrency; ++c) {
        const size_t i = std::min(s_.client_nodes.size() - 1,
                                  static_cast<size_t>(u01(p_.seed, kClientNode, c) * s_.client_nodes.size()));
        client_node_[c] = s_.client_nodes[i];
    }
    reqs_.reserve(M);
    out_.response_ms.assign(M, 0.0);
    out_.init_ms.assign(M, 0.0);
    out_.resolve_ms.assign(M, 0.0);
    if (use_aisid_) push(0.0, Ev::tick, 0);
    for (int c = 0; c < p_.concurrency; ++c) issue(c, 0.0);

    while (!q_.empty()) {
        Event e = q_.top();
        q_.pop();
        ++out_.events;
        switch (e.type) {
        case Ev::start: issue(e.id, e.t); break;
        case Ev::connected: connected(e.id, e.t); break;
        case Ev::job_done:
            if (e.id >= 0 && (!jobs_[e.id].live || jobs_[e.id].version != e.ver)) break;
            job_done(e.id, e.t);
            break;
        case Ev::server_done:
            if (e.ver == srv_[e.id].version) server_done(e.id, e.t);
            break;
        case Ev::done: done(e.id, e.t); break;
        case Ev::tick: tick(e.t); break;
        }
    }

    // Metrics.
    std::vector<double> rt = out_.response_ms;
    out_.rt_mean_ms = std::accumulate(rt.begin(), rt.end(), 0.0) / static_cast<double>(rt.size());
    auto rank = [&](double q) {
        size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(rt.size()))) - 1;
        std::nth_element(rt.begin(), rt.begin() + static_cast<long>(i), rt.end());
        return rt[i];
    };
    out_.rt_p50_ms = rank(0.50);
    out_.rt_p99_ms = rank(0.99);
    // Initiation latency: until the first request byte reaches the service
    // node. Without the handshake: resolution + one-way. With it: resolution
    // + SYN/SYN-ACK + the first byte with the ACK (AISID: the handshake is
    // with the egress proxy, next to the node).
    {
        std::vector<double> a, b;
        double res = 0, ow = 0;
        for (size_t i = 0; i < reqs_.size(); ++i) {
            const Req &q = reqs_[i];
            out_.init_ms[i] = (q.resolve_s + q.oneway_s) * 1000.0;
            out_.resolve_ms[i] = q.resolve_s * 1000.0;
            a.push_back(out_.init_ms[i]);
            b.push_back((q.resolve_s + 3 * q.oneway_s) * 1000.0);
            res += q.resolve_s * 1000.0;
            ow += q.oneway_s * 1000.0;
        }
        const double n = static_cast<double>(reqs_.size());
        out_.init_mean_ms = std::accumulate(a.begin(), a.end(), 0.0) / n;
        out_.init_hs_mean_ms = std::accumulate(b.begin(), b.end(), 0.0) / n;
        out_.resolve_mean_ms = res / n;
        out_.oneway_mean_ms = ow / n;
        const size_t i99 = static_cast<size_t>(std::ceil(0.99 * n)) - 1;
        std::nth_element(a.begin(), a.begin() + static_cast<long>(i99), a.end());
        std::nth_element(b.begin(), b.begin() + static_cast<long>(i99), b.end());
        out_.init_p99_ms = a[i99];
        out_.init_hs_p99_ms = b[i99];
        out_.hit_ratio = out_.dns_lookups ? static_cast<double>(out_.cache_hits) / static_cast<double>(out_.dns_lookups) : 0.0;
    }
    if (window_end_ <= 0) snapshot(out_.sim_end_s); // one request per client: no steady phase
    out_.window_s = window_end_;
    auto stats = [](const std::vector<double> &v, double &mean, double &var, double &mx) {
        mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
        var = 0;
        mx = 0;
        for (double x : v) {
            var += (x - mean) * (x - mean);
            mx = std::max(mx, x);
        }
        var /= static_cast<double>(v.size());
    };
    for (int l = 0; l < L; ++l)
        out_.link_util.push_back(window_end_ > 0 ? window_area_[l] / (res_[l].cap * window_end_) : 0.0);
    for (int k = 0; k < S; ++k)
        out_.compute_util.push_back(window_end_ > 0 ? window_area_[L + k] / (res_[L + k].cap * window_end_) : 0.0);
    stats(out_.link_util, out_.link_util_mean, out_.link_util_var, out_.link_util_max);
    stats(out_.compute_util, out_.compute_util_mean, out_.compute_util_var, out_.compute_util_max);
    {
        const Spread d = spread(out_.link_util);
        out_.link_cv2 = d.cv2;
        out_.link_jain = d.jain;
        // Undirected: an edge's two directions over its two capacities, so
        // the result does not hang on which direction a transfer counts in.
        std::vector<double> u;
        for (int l = 0; l + 1 < L; l += 2) u.push_back((out_.link_util[l] + out_.link_util[l + 1]) / 2);
        const Spread e = spread(u);
        out_.ulink_mean = e.mean;
        out_.ulink_var = e.var;
        out_.ulink_cv2 = e.cv2;
        out_.ulink_jain = e.jain;
        out_.ulink_max = e.max;
        const Spread c = spread(out_.compute_util);
        out_.compute_cv2 = c.cv2;
        out_.compute_jain = c.jain;
        std::vector<double> w;
        for (const auto &sv : s_.servers) w.push_back(sv.tflops);
        out_.compute_wvar = weighted_var(out_.compute_util, w);
    }
    for (size_t i = 0; i < res_.size(); ++i) {
        res_[i].flush(out_.sim_end_s);
        (static_cast<int>(i) < L ? out_.volume_carried : out_.work_done) += res_[i].area;
    }
    for (const Req &q : reqs_) {
        out_.work_asked += q.tflops * p_.compute_s;
        out_.volume_asked += q.mbps * 1e6 * p_.transfer_s * static_cast<double>(q.path.size());
        if (p_.reply_s > 0)
            out_.volume_asked += q.mbps * 1e6 * p_.reply_s *
                                 static_cast<double>(s_.routing.hops(s_.sites[q.site], q.node));
        out_.served_by.push_back(q.server);
        out_.request_type.push_back(q.type);
        out_.client_node.push_back(q.node);
        out_.via_ingress.push_back(q.ingress);
        out_.via_aisid.push_back(q.aisid ? 1 : 0);
        out_.upload_path.push_back(q.path);
    }
    return std::move(out_);
}

} // namespace

SimResult simulate(const Setting &s, const Params &p) {
    Sim sim(s, p);
    return sim.run();
}

} // namespace aisid::eval
