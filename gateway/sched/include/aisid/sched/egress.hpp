// Egress node choice: semantic matching on the AISID's codes and performance
// field, then weighted least connections on live load (SPEC §1).
//
// No I/O and no clock: the daemon (or the simulator) tells the scheduler what
// it learnt — load reports, failed connects, probe results — and asks it which
// node a new flow goes to. Flow affinity stays with the caller (an established
// flow never calls pick() again); eligible() lets it check that a pinned node
// is still usable.
#pragma once

#include <aisid/address.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aisid::sched {

/// Index of a node inside one EgressScheduler. Stable for the scheduler's
/// lifetime: nodes are never removed, only taken down or drained (weight 0),
/// so ids held in flow tables stay valid.
using NodeId = uint32_t;

/// An object/function/method triple. In a request, 0 in a dimension means
/// "any" (SPEC §1). In a node's list, 0 means the node serves every code of
/// that dimension (a generic node); such entries are rare but legal.
struct ServiceCodes {
    uint16_t object = 0;
    uint16_t function = 0;
    uint16_t method = 0;
    friend constexpr bool operator==(const ServiceCodes &, const ServiceCodes &) = default;
};

/// What a request asks for: the codes and the performance field of its AISID.
struct Request {
    ServiceCodes codes;
    /// Latency budget in ms (SPEC §1 default unit); 0 = best effort.
    uint16_t performance = 0;

    /// The request carried by a destination AISID.
    static constexpr Request from(const Aisid &a) {
        return Request{{a.object(), a.function(), a.method()}, a.performance()};
    }
};

/// A service node as configured on an egress gateway.
struct NodeSpec {
    std::string name;
    /// Relative capacity (LVS semantics): a node of weight 2 takes twice the
    /// work of a node of weight 1; weight 0 drains it (no new flows).
    uint32_t weight = 1;
    /// The triples it serves.
    std::vector<ServiceCodes> serves;
    /// The response latency (ms) the node declares it can meet; it is eligible
    /// for a request with budget P when 0 < latency_ms <= P. 0 = declares no
    /// guarantee: best-effort requests only.
    uint16_t latency_ms = 0;
};

/// Live state of a node, as the scheduler knows it.
struct NodeState {
    bool up = true;
    /// Active work: the last reported count, plus flows assigned since,
    /// minus flows released since.
    uint32_t active = 0;
    /// Last reported utilization, 0..1 (e.g. accelerator busy fraction).
    double utilization = 0.0;
};

/// The two LVS weighted-least-connection rules (see gateway/README.md).
enum class Policy : uint8_t {
    /// Shortest expected delay, LVS `sed`: minimise (active + 1) / weight.
    sed,
    /// Weighted least connections, LVS `wlc`: minimise active / weight.
    wlc,
};

/// Does a node entry `have` serve the request codes `want`? (0 on either side
/// is a wildcard in that dimension.)
constexpr bool codes_match(const ServiceCodes &have, const ServiceCodes &want) {
    auto dim = [](uint16_t h, uint16_t w) { return h == 0 || w == 0 || h == w; };
    return dim(have.object, want.object) && dim(have.function, want.function) &&
           dim(have.method, want.method);
}

/// Can a node that declares `node_latency_ms` meet budget `performance`?
constexpr bool meets_performance(uint16_t node_latency_ms, uint16_t performance) {
    return performance == 0 || (node_latency_ms != 0 && node_latency_ms <= performance);
}

/// Egress scheduler: the node table of one egress gateway and the choice rule.
///
/// Choice, among nodes that are up, have weight > 0, serve the codes and meet
/// the performance field:
///  1. nodes whose utilization is below the overload threshold, if any;
///  2. the lowest score — (active+1)/weight for `sed`, active/weight for
///     `wlc` — compared exactly in integers (cross-multiplied);
///  3. ties: lower utilization, then higher weight, then lower NodeId.
/// The result depends only on the table's contents, never on hashing or
/// iteration order of a container, so two runs agree exactly.
class EgressScheduler {
public:
    /// `overload` is the reported utilization at or above which a node is
    /// passed over while an eligible node below it exists. With the default
    /// 1.0 only a node that reports full saturation is passed over.
    explicit EgressScheduler(Policy policy = Policy::sed, double overload = 1.0)
        : policy_(policy), overload_(overload) {}

    /// Adds a node; returns its id (ids are dense, 0..size()-1).
    NodeId add_node(NodeSpec spec) {
        specs_.push_back(std::move(spec));
        states_.push_back(NodeState{});
        return static_cast<NodeId>(specs_.size() - 1);
    }

    size_t size() const { return specs_.size(); }
    Policy policy() const { return policy_; }
    const NodeSpec &spec(NodeId id) const { return specs_.at(id); }
    const NodeState &state(NodeId id) const { return states_.at(id); }

    /// Marks a node down (failed connect, failed probe) or up (probe succeeded).
    void set_up(NodeId id, bool up) { states_.at(id).up = up; }
    /// Changes a node's weight (0 drains it: established flows stay, no new ones).
    void set_weight(NodeId id, uint32_t w) { specs_.at(id).weight = w; }
    /// Applies a load report from the node. The reported active count replaces
    /// the local estimate (it also covers work that came through other gateways).
    void report(NodeId id, uint32_t active, double utilization) {
        NodeState &s = states_.at(id);
        s.active = active;
        s.utilization = utilization;
    }
    /// Counts a flow the caller has just sent to `id`.
    void on_assign(NodeId id) { ++states_.at(id).active; }
    /// Counts a flow on `id` that has ended (never below zero: a report may
    /// already have accounted for it).
    void on_release(NodeId id) {
        NodeState &s = states_.at(id);
        if (s.active > 0) --s.active;
    }

    /// Could `id` take request `r` now? (Up, weight > 0, serves it, meets its
    /// performance.) For flow affinity: a pinned flow stays on its node while
    /// this holds, and is re-picked when it no longer does.
    bool eligible(NodeId id, const Request &r) const {
        const NodeSpec &n = specs_.at(id);
        if (!states_[id].up || n.weight == 0) return false;
        if (!meets_performance(n.latency_ms, r.performance)) return false;
        for (const ServiceCodes &c : n.serves)
            if (codes_match(c, r.codes)) return true;
        return false;
    }

    /// The node a new flow for `r` goes to; nullopt when no node can take it
    /// (the gateway then refuses the connection).
    std::optional<NodeId> pick(const Request &r) const {
        std::optional<NodeId> best;
        bool best_over = true;
        for (NodeId i = 0; i < specs_.size(); ++i) {
            if (!eligible(i, r)) continue;
            const bool over = states_[i].utilization >= overload_;
            if (!best || better(i, over, *best, best_over)) {
                best = i;
                best_over = over;
            }
        }
        return best;
    }

    /// pick() and on_assign() in one step.
    std::optional<NodeId> assign(const Request &r) {
        auto id = pick(r);
        if (id) on_assign(*id);
        return id;
    }

private:
    // Is candidate a (with overload flag ao) strictly better than b?
    bool better(NodeId a, bool ao, NodeId b, bool bo) const {
        if (ao != bo) return !ao;
        const uint64_t wa = specs_[a].weight, wb = specs_[b].weight;
        const uint64_t extra = policy_ == Policy::sed ? 1 : 0;
        // a/wa < b/wb  <=>  a*wb < b*wa (weights > 0 here; no rounding).
        const uint64_t lhs = (states_[a].active + extra) * wb;
        const uint64_t rhs = (states_[b].active + extra) * wa;
        if (lhs != rhs) return lhs < rhs;
        if (states_[a].utilization != states_[b].utilization)
            return states_[a].utilization < states_[b].utilization;
        if (wa != wb) return wa > wb;
        return a < b;
    }

    Policy policy_;
    double overload_;
    std::vector<NodeSpec> specs_;
    std::vector<NodeState> states_;
};

} // namespace aisid::sched
