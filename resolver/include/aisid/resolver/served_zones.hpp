// The zones aisidd serves, published atomically. Writers (SIGHUP reload, the
// authority side: UPDATE, AXFR/IXFR) build a new ZoneSet and swap it in; readers
// take a snapshot and keep it for as long as they use it.
//
// Why a generation counter: the query hot path must not lock. A worker keeps
// its own shared_ptr snapshot and compares generation() (one atomic load per
// batch of datagrams) with the one it saw; only when it changed does it call
// current(), which takes the mutex for a pointer copy (Published<T>).
#pragma once

#include "aisid/core/published.hpp"
#include "aisid/core/zone.hpp"
#include "aisid/core/zone_set.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace aisid::resolver {

class ServedZones {
public:
    ServedZones() = default;

    // The current zones; readers keep the snapshot they got for as long as they use it.
    std::shared_ptr<const ZoneSet> current() const { return zones_.get(); }
    // Bumped on every publish; workers poll it to refresh their snapshot.
    uint64_t generation() const { return zones_.generation(); }

    // Publishes a new/changed zone atomically (replacing one with the same origin); thread-safe.
    void replace_zone(ZonePtr z);
    void remove_zone(std::string_view origin_wire);
    // Replaces everything (SIGHUP reload).
    void replace_all(std::shared_ptr<const ZoneSet> s);
    // Called after every publish (e.g. to flush cached answers for that zone); optional.
    void on_change(std::function<void(const Zone &)> cb);

private:
    void publish(std::shared_ptr<const ZoneSet> s, const std::vector<const Zone *> &changed);

    std::mutex write_mu_;  // serializes writers: read-modify-write of the set
    Published<ZoneSet> zones_;
    LockGuarded<std::vector<std::function<void(const Zone &)>>> callbacks_;
};

} // namespace aisid::resolver
