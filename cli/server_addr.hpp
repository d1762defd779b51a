// "ADDR[:PORT]", "[V6]:PORT" or a bare IPv6 address, as the programs take them.
#pragma once

#include <cstdint>
#include <string>

namespace aisid::cli {

struct ServerAddr {
    std::string host;  // numeric address, no brackets
    uint16_t port = 53;
    bool v6 = false;
};

bool parse_server_addr(const std::string &s, uint16_t default_port, ServerAddr &out);

} // namespace aisid::cli
