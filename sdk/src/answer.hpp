// What a resolution gives back: the C API's aisid_result_t, shared by the C++
// API, the legacy path and connect.
#pragma once

#include "aisid/aisid.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

struct aisid_result {
    std::string name;  // canonical, trailing dot
    aisid_source_t source = AISID_SOURCE_LEGACY;
    uint32_t ttl = 0;
    std::vector<in6_addr> addrs;
    bool has_fields = false;
    aisid_fields_t fields{};
    std::string terms[3];  // "" when the code is 0 or has no term
    std::string zone;      // the AISID domain, "" for legacy answers
    std::vector<std::pair<std::string, uint16_t>> fallbacks;  // SVCB target, port (priority order)
};

namespace aisid::sdk {
using Answer = aisid_result;
} // namespace aisid::sdk
