// Where the host keeps AISID zone data (SPEC §5).
#pragma once

#include <string>
#include <vector>

namespace aisid {

inline constexpr const char *kHostZoneDirs[] = {"/etc/aisid/zones", "/var/lib/aisid/zones"};

/// The regular files in the host zone directories (or in `dirs`), sorted by
/// name within each directory; hidden and backup files (".x", "x~") skipped.
std::vector<std::string> host_zone_files();
std::vector<std::string> zone_files_in(const std::vector<std::string> &dirs);

} // namespace aisid
