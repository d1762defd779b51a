// Builds aisidd's Authority from its Config and ServedZones:
// the one call the daemon makes.
#pragma once

#include "aisid/authority/authority.hpp"
#include "aisid/resolver/config.hpp"
#include "aisid/authority/zone_mirror.hpp"
#include "aisid/resolver/served_zones.hpp"

#include <memory>
#include <string>

namespace aisid::resolver {

/// The authority side for aisidd, started; nullptr when no authority option
/// (--key, --update-key, --secondary, --notify) is given. `err` is set (and
/// nullptr returned) when an option is wrong or the state directory is unusable.
std::unique_ptr<Authority> make_authority(const Config &cfg, ServedZones &store,
                                          std::shared_ptr<const ZonePolicy> policy, std::string &err);

/// The HTTPS mirror fetcher for the --zone-url zones, started (its saved
/// copies published); nullptr without --zone-url. `err` is set when an
/// option is wrong or a zone is also given by --zone or --secondary.
std::unique_ptr<ZoneMirror> make_zone_mirror(const Config &cfg, ServedZones &store,
                                             std::shared_ptr<const ZonePolicy> policy, std::string &err);

} // namespace aisid::resolver
