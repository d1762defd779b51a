// Record data in presentation form, through ldns (for tools and logs, not the hot path).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace aisid {

/// "1 yolo-legacy.provider.example. port=8443" for SVCB rdata, and so on.
std::string rdata_to_text(uint16_t type, std::string_view rdata);

/// A legacy endpoint named by SVCB rdata (RFC 9460 §2.2): target and port (0 if none).
struct SvcbEndpoint {
    uint16_t priority = 0;
    std::string target;  // presentation, trailing dot; "." means the owner itself
    uint16_t port = 0;
};
bool parse_svcb(std::string_view rdata, SvcbEndpoint &out);

} // namespace aisid
