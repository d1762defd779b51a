// Where things are: the source tree, the build tree, the programs the tests
// run (the paths CMake gives this build's targets).
#pragma once

#include <string>

namespace aisid::test {

std::string source_path(const std::string &rel);
std::string build_path(const std::string &rel);
/// zones/ai.example.zone: the shipped example zone.
std::string example_zone_path();
std::string aisidd_path();
std::string aisid_admin_path();
std::string aisid_lookup_path();
std::string aisid_control_path();

} // namespace aisid::test
