#include "aisid/core/host_zones.hpp"

#include <algorithm>
#include <filesystem>

namespace aisid {

std::vector<std::string> zone_files_in(const std::vector<std::string> &dirs) {
    std::vector<std::string> out;
    for (const std::string &d : dirs) {
        std::error_code ec;
        std::vector<std::string> here;
        for (const auto &e : std::filesystem::directory_iterator(d, ec)) {
            std::string name = e.path().filename().string();
            if (name.empty() || name[0] == '.' || name.back() == '~') continue;
            if (name.size() > 4 && (name.ends_with(".jnl") || name.ends_with(".tmp"))) continue;
            if (e.is_regular_file(ec)) here.push_back(e.path().string());
        }
        std::sort(here.begin(), here.end());
        out.insert(out.end(), here.begin(), here.end());
    }
    return out;
}

std::vector<std::string> host_zone_files() {
    return zone_files_in({std::begin(kHostZoneDirs), std::end(kHostZoneDirs)});
}

} // namespace aisid
