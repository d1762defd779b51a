// The zones aisidd serves, published atomically. Writers (SIGHUP reload, the
// authority side: UPDATE, AXFR/IXFR) build a new ZoneSet and swap it in; readers
// take a snapshot and keep it for as long as they use it.
//
// Why a generation counter: the query hot path must not lock. A worker keeps
// its own shared_ptr snapshot and compares generation() (one relaxed atomic
// load per batch of datagrams) with the one it saw; only when it changed does
// it call current(), which takes the writer mutex.
#pragma once

#include "zone.hpp"
#include "zone_set.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace aisid::resolver {

class ZoneStore {
public:
    ZoneStore() : set_(std::make_shared<const ZoneSet>()) {}

    // The current zones; readers keep the snapshot they got for as long as they use it.
    std::shared_ptr<const ZoneSet> current() const {
        std::lock_guard lk(mu_);
        return set_;
    }
    // Bumped on every publish; workers poll it to refresh their snapshot.
    uint64_t generation() const { return gen_.load(std::memory_order_acquire); }

    // Publishes a new/changed zone atomically (replacing one with the same origin); thread-safe.
    void replace_zone(ZonePtr z);
    void remove_zone(std::string_view origin_wire);
    // Replaces everything (SIGHUP reload).
    void replace_all(std::shared_ptr<const ZoneSet> s);
    // Called after every publish (e.g. to flush cached answers for that zone); optional.
    void on_change(std::function<void(const Zone &)> cb);

private:
    void publish(std::shared_ptr<const ZoneSet> s, const std::vector<const Zone *> &changed);

    mutable std::mutex mu_;
    std::mutex write_mu_;  // serializes writers: read-modify-write of the set
    std::shared_ptr<const ZoneSet> set_;
    std::atomic<uint64_t> gen_{1};
    std::vector<std::function<void(const Zone &)>> callbacks_;
};

} // namespace aisid::resolver
