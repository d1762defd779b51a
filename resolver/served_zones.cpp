#include "aisid/resolver/served_zones.hpp"

namespace aisid::resolver {

void ServedZones::publish(std::shared_ptr<const ZoneSet> s, const std::vector<const Zone *> &changed) {
    zones_.publish(s);
    auto cbs = callbacks_.with([](const auto &v) { return v; });
    // `s` keeps the changed zones alive while the callbacks run.
    for (const Zone *z : changed)
        for (auto &cb : cbs) cb(*z);
}

void ServedZones::replace_zone(ZonePtr z) {
    std::lock_guard w(write_mu_);
    auto next = std::make_shared<ZoneSet>(*current());
    const Zone *raw = z.get();
    next->add(std::move(z));
    publish(std::move(next), {raw});
}

void ServedZones::remove_zone(std::string_view origin_wire) {
    std::lock_guard w(write_mu_);
    auto cur = current();
    ZonePtr old;
    for (const ZonePtr &z : cur->zones())
        if (z->origin_wire() == origin_wire) old = z;
    if (!old) return;
    auto next = std::make_shared<ZoneSet>(*cur);
    next->remove(origin_wire);
    publish(std::move(next), {old.get()});
}

void ServedZones::replace_all(std::shared_ptr<const ZoneSet> s) {
    std::lock_guard w(write_mu_);
    auto cur = current();
    std::vector<const Zone *> changed;
    for (const ZonePtr &z : s->zones()) changed.push_back(z.get());
    // Zones that disappear change too (their cached answers must go).
    std::vector<ZonePtr> keep_alive;
    for (const ZonePtr &z : cur->zones())
        if (!s->find(z->origin_wire())) {
            changed.push_back(z.get());
            keep_alive.push_back(z);
        }
    publish(std::move(s), changed);
}

void ServedZones::on_change(std::function<void(const Zone &)> cb) {
    callbacks_.lock()->push_back(std::move(cb));
}

} // namespace aisid::resolver
