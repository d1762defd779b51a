// Builds aisidd's Authority from its Config and ZoneStore (issue 5 wiring):
// the one call the daemon makes.
#pragma once

#include "authority.hpp"
#include "config.hpp"
#include "zone_store.hpp"

#include <memory>
#include <string>

namespace aisid::resolver {

/// The authority side for aisidd, started; nullptr when no authority option
/// (--key, --update-key, --secondary, --notify) is given. `err` is set (and
/// nullptr returned) when an option is wrong or the state directory is unusable.
std::unique_ptr<Authority> make_authority(const Config &cfg, ZoneStore &store, std::string &err);

} // namespace aisid::resolver
