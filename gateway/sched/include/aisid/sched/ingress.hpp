// Ingress path choice: weighted multipath toward the egress gateways that
// serve an AISID prefix, with weights moved by the load and link utilization
// the control side reports, and a per-flow choice that a weight change disturbs
// as little as possible (weighted rendezvous hashing).
//
// No I/O: the ingress daemon feeds reports in and reads weights out (to program
// kernel SRv6 multipath routes) or asks for a per-flow choice; the simulator
// does the same.
#pragma once

#include "flow.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aisid::sched {

/// Index of a path inside one PathSet (dense, stable: paths are taken down,
/// never removed).
using PathId = uint32_t;

/// An egress gateway as one ingress sees it.
struct PathSpec {
    /// Stable identity of the egress gateway (e.g. hash_name() of its SRv6
    /// SID). The per-flow choice hashes this, not the PathId, so adding paths
    /// in another order on another ingress gives the same choices.
    uint64_t id = 0;
    std::string name;
    /// Configured share before load is taken into account (> 0).
    double base_weight = 1.0;
};

/// What the control side reports about one path.
struct PathReport {
    bool up = true;
    /// Load of the egress site: busy fraction of its service nodes, 0..1.
    double load = 0.0;
    /// Utilization of the most utilized link on the path, 0..1.
    double link_util = 0.0;
    /// One-way propagation delay from this ingress to the egress, ms.
    double delay_ms = 0.0;
};

/// Parameters of the weight formula (gateway/README.md, "Ingress weights").
struct WeightParams {
    /// Headroom never drops below this, so a saturated but live path keeps a
    /// trickle of new flows and its recovery is seen (0 < floor <= 1).
    double floor = 0.02;
    /// Delay scale d0 in ms: delay factor d0 / (d0 + delay). 0 disables the
    /// delay term (factor 1).
    double delay_ref_ms = 0.0;
    /// Exponent on headroom: > 1 pushes flows off loaded paths harder.
    double alpha = 1.0;
};

/// The weight of one path:
///   w = base * max(floor, 1 - max(load, link_util))^alpha * d0 / (d0 + delay)
/// and 0 when the path is down.
inline double path_weight(const PathSpec &p, const PathReport &r, const WeightParams &k) {
    if (!r.up || p.base_weight <= 0) return 0.0;
    const double busy = std::clamp(std::max(r.load, r.link_util), 0.0, 1.0);
    double head = std::max(k.floor, 1.0 - busy);
    if (k.alpha != 1.0) head = std::pow(head, k.alpha);
    const double df = k.delay_ref_ms > 0 ? k.delay_ref_ms / (k.delay_ref_ms + std::max(0.0, r.delay_ms))
                                         : 1.0;
    return p.base_weight * head * df;
}

/// Weighted rendezvous (highest random weight) choice: each path gets the score
/// w_i / -ln(u_i), u_i uniform in (0,1) from hash(flow, path id); the highest
/// score wins. P(path i) = w_i / sum(w) exactly, and when one path's weight
/// changes only flows that move to or from that path change (the minimum
/// possible), so most established flows keep their path even without a flow
/// table. Deterministic; ties go to the lower path id.
inline std::optional<size_t> rendezvous_choose(uint64_t flow_hash, const uint64_t *ids,
                                               const double *weights, size_t n) {
    std::optional<size_t> best;
    double best_score = -1.0;
    for (size_t i = 0; i < n; ++i) {
        if (!(weights[i] > 0)) continue;
        const uint64_t h = mix64(flow_hash ^ mix64(ids[i]));
        // 53 random bits, centred in their cell: u in (0,1), never 0 or 1.
        const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
        const double score = weights[i] / -std::log(u);
        if (!best || score > best_score || (score == best_score && ids[i] < ids[*best])) {
            best = i;
            best_score = score;
        }
    }
    return best;
}

/// The egress gateways that serve one AISID prefix, seen from one ingress.
class PathSet {
public:
    explicit PathSet(WeightParams params = {}) : params_(params) {}

    /// Adds a path (up, unloaded, zero delay until reported).
    PathId add_path(PathSpec spec) {
        specs_.push_back(std::move(spec));
        reports_.push_back(PathReport{});
        ids_.push_back(specs_.back().id);
        weights_.push_back(0.0);
        recompute(static_cast<PathId>(specs_.size() - 1));
        return static_cast<PathId>(specs_.size() - 1);
    }

    size_t size() const { return specs_.size(); }
    const PathSpec &spec(PathId p) const { return specs_.at(p); }
    const PathReport &report_of(PathId p) const { return reports_.at(p); }
    const WeightParams &params() const { return params_; }

    /// Applies a control-side report for path p; its weight follows.
    void report(PathId p, const PathReport &r) {
        reports_.at(p) = r;
        recompute(p);
    }
    /// Marks a path up or down (e.g. the egress gateway stopped answering).
    void set_up(PathId p, bool up) {
        reports_.at(p).up = up;
        recompute(p);
    }

    /// Current weight of path p (path_weight() of its last report).
    double weight(PathId p) const { return weights_.at(p); }
    const std::vector<double> &weights() const { return weights_; }

    /// The path a flow with this stable hash takes under the current weights;
    /// nullopt when every path is down. A pure function of (flow, weights):
    /// see rendezvous_choose() for how little it moves when weights change.
    std::optional<PathId> choose(uint64_t flow_hash) const {
        auto i = rendezvous_choose(flow_hash, ids_.data(), weights_.data(), ids_.size());
        if (!i) return std::nullopt;
        return static_cast<PathId>(*i);
    }
    std::optional<PathId> choose(const FlowKey &k) const { return choose(k.hash()); }

    /// The weights scaled to integers 1..max_weight for kernel multipath next
    /// hops (Linux `nexthop ... weight W`, 1..256); down paths get 0 (leave
    /// them out of the route). The heaviest path gets max_weight, the others
    /// their rounded share of it (never below 1 while they are up).
    std::vector<uint32_t> integer_weights(uint32_t max_weight = 256) const {
        std::vector<uint32_t> out(weights_.size(), 0);
        double top = 0;
        for (double w : weights_) top = std::max(top, w);
        if (top <= 0) return out;
        for (size_t i = 0; i < weights_.size(); ++i) {
            if (weights_[i] <= 0) continue;
            const double scaled = weights_[i] / top * max_weight;
            out[i] = std::clamp<uint32_t>(static_cast<uint32_t>(std::lround(scaled)), 1u, max_weight);
        }
        return out;
    }

private:
    void recompute(PathId p) { weights_[p] = path_weight(specs_[p], reports_[p], params_); }

    WeightParams params_;
    std::vector<PathSpec> specs_;
    std::vector<PathReport> reports_;
    std::vector<uint64_t> ids_;
    std::vector<double> weights_;
};

} // namespace aisid::sched
