#include "wiring.hpp"

#include "log.hpp"

namespace aisid::resolver {

std::unique_ptr<Authority> make_authority(const Config &cfg, ZoneStore &store, std::string &err) {
    err.clear();
    if (cfg.keys.empty() && cfg.update_keys.empty() && cfg.secondaries.empty() && cfg.notify.empty()) return nullptr;
    AuthorityOptions o;
    o.keys = cfg.keys;
    o.update_keys = cfg.update_keys;
    o.secondaries = cfg.secondaries;
    o.notify = cfg.notify;
    if (!cfg.state_dir.empty()) o.state_dir = cfg.state_dir;
    o.max_records_per_name = cfg.max_records_per_name;
    o.log = [](const std::string &s) { log_line(LogLevel::info, s); };
    auto a = std::make_unique<Authority>(
        std::move(o), [&store] { return store.current(); }, [&store](ZonePtr z) { store.replace_zone(std::move(z)); });
    Authority *raw = a.get();
    auto started = a->start();
    if (!started) {
        err = started.error().message;
        return nullptr;
    }
    // A SIGHUP reload replaces every zone: the authority side re-asserts the
    // journaled primaries and the pulled secondaries.
    store.on_change([raw](const Zone &z) { raw->zone_replaced(z); });
    return a;
}

} // namespace aisid::resolver
