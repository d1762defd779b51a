#include "aisid/authority/wiring.hpp"

#include "aisid/core/log.hpp"

namespace aisid::resolver {

using namespace proto;

std::unique_ptr<Authority> make_authority(const Config &cfg, ServedZones &store,
                                          std::shared_ptr<const ZonePolicy> policy, std::string &err) {
    err.clear();
    if (cfg.keys.empty() && cfg.update_keys.empty() && cfg.secondaries.empty() && cfg.notify.empty()) return nullptr;
    AuthorityOptions o;
    o.keys = cfg.keys;
    o.update_keys = cfg.update_keys;
    o.secondaries = cfg.secondaries;
    o.notify = cfg.notify;
    if (!cfg.state_dir.empty()) o.state_dir = cfg.state_dir;
    o.max_records_per_name = cfg.max_records_per_name;
    o.policy = std::move(policy);
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

std::unique_ptr<ZoneMirror> make_zone_mirror(const Config &cfg, ServedZones &store,
                                             std::shared_ptr<const ZonePolicy> policy, std::string &err) {
    err.clear();
    if (cfg.zone_urls.empty()) return nullptr;
    MirrorOptions o;
    o.zone_urls = cfg.zone_urls;
    o.policy = std::move(policy);
    o.fetch_timeout_s = cfg.zone_fetch_timeout_s;
    o.ca_file = cfg.ca_file;
    if (!cfg.state_dir.empty()) o.state_dir = cfg.state_dir;
    o.max_bytes = cfg.zone_limits.max_bytes;
    o.log = [](const std::string &s) { log_line(LogLevel::info, s); };
    auto m = std::make_unique<ZoneMirror>(std::move(o), [&store](ZonePtr z) { store.replace_zone(std::move(z)); });
    // One source per zone: a mirrored zone that is also a file or a
    // secondary would have two writers that undo each other.
    auto set = store.current();
    for (const std::string &u : cfg.zone_urls) {
        std::string zone = u.substr(0, u.find('=')), w;
        if (!zone.empty() && zone.back() != '.') zone += '.';
        if (!wire_from_text(zone, w)) continue;  // start() says what is wrong
        if (set->find(w)) {
            err = "zone " + zone + " is given by --zone-url and by --zone (or --secondary)";
            return nullptr;
        }
        for (const std::string &s : cfg.secondaries) {
            std::string sz = s.substr(0, s.find('=')), sw;
            if (!sz.empty() && sz.back() != '.') sz += '.';
            if (wire_from_text(sz, sw) && sw == w) {
                err = "zone " + zone + " is given by --zone-url and by --secondary";
                return nullptr;
            }
        }
    }
    auto started = m->start();
    if (!started) {
        err = started.error();
        return nullptr;
    }
    return m;
}

} // namespace aisid::resolver
