#include "paths.hpp"

#include "proc.hpp"
#include "test_zone.hpp"

namespace aisid::test {

std::string source_path(const std::string &rel) { return std::string(AISID_SOURCE_DIR) + "/" + rel; }
std::string build_path(const std::string &rel) { return std::string(AISID_BINARY_DIR) + "/" + rel; }
std::string example_zone_path() { return source_path("zones/ai.example.zone"); }
std::string aisidd_path() { return AISID_TEST_AISIDD; }
std::string aisid_admin_path() { return AISID_TEST_ADMIN; }
std::string aisid_lookup_path() { return AISID_TEST_LOOKUP; }
std::string aisid_control_path() { return AISID_TEST_CONTROL; }

std::string write_test_zone(const TempDir &dir, const std::string &name) { return dir.write(name, kTestZone, false); }

} // namespace aisid::test
