// The test zone: a small AISID zone (ai.example.: the codebook's first terms,
// one service with its legacy fallback) for tests that need "a zone" and
// check what it holds. Tests of other zone content write their own; tests of
// the shipped example use example_zone_path() (paths.hpp).
#pragma once

#include <string>

namespace aisid::test {

/// 11 lines; serial 2026112501, SOA timers 3600 600 86400 60.
inline constexpr const char *kTestZone = R"($ORIGIN ai.example.
$TTL 300
@                    SOA  ns admin 2026112501 3600 600 86400 60
@                    NS   ns
ns                   AAAA 2001:db8:53::1
_aisid               TXT  "v=aisid1" "prefix=2001:db8:abcd:12::/64"
image._object        TXT  "code=1"
detection._function  TXT  "code=2"
yolo._method         TXT  "code=1"
yolo.detection.image AAAA 2001:db8:abcd:12:1:2:1:0
yolo.detection.image SVCB 1 yolo-legacy.provider.example. port=8443
)";

struct TempDir;
/// Writes the test zone to DIR/NAME; its path (paths.cpp).
std::string write_test_zone(const TempDir &dir, const std::string &name = "ai.example.zone");

} // namespace aisid::test
