// Flow affinity: an established flow stays where it was first sent.
//
// The schedulers decide for new flows only; this table remembers the decision.
// No clock of its own: the caller passes "now" (any monotonic unit), so the
// daemon uses CLOCK_MONOTONIC and the simulator its virtual time.
#pragma once

#include "flow.hpp"

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace aisid::sched {

/// FlowKey → Target (a NodeId at the egress, a PathId at the ingress).
template <class Target>
class FlowTable {
public:
    /// The target pinned for k, refreshing its last-seen time; nullopt if none.
    std::optional<Target> lookup(const FlowKey &k, uint64_t now) {
        auto it = map_.find(k);
        if (it == map_.end()) return std::nullopt;
        it->second.last_seen = now;
        return it->second.target;
    }
    /// Pins k to t (replacing any earlier pin).
    void pin(const FlowKey &k, Target t, uint64_t now) { map_[k] = Entry{t, now}; }
    /// Forgets k (the flow ended: FIN/RST seen, or the target failed).
    /// Returns the target it was pinned to, so the caller can release it.
    std::optional<Target> erase(const FlowKey &k) {
        auto it = map_.find(k);
        if (it == map_.end()) return std::nullopt;
        Target t = it->second.target;
        map_.erase(it);
        return t;
    }
    /// Forgets flows idle for longer than `idle` (UDP has no end of flow);
    /// returns their targets so the caller can release them.
    std::vector<Target> expire(uint64_t now, uint64_t idle) {
        std::vector<Target> gone;
        for (auto it = map_.begin(); it != map_.end();) {
            if (now - it->second.last_seen > idle) {
                gone.push_back(it->second.target);
                it = map_.erase(it);
            } else {
                ++it;
            }
        }
        return gone;
    }
    size_t size() const { return map_.size(); }

private:
    struct Entry {
        Target target;
        uint64_t last_seen;
    };
    std::unordered_map<FlowKey, Entry, FlowKeyHash> map_;
};

} // namespace aisid::sched
