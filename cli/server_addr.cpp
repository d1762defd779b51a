#include "server_addr.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace aisid::cli {

static bool parse_port(const std::string &s, uint16_t &port) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return false;
    port = static_cast<uint16_t>(v);
    return true;
}

bool parse_server_addr(const std::string &s, uint16_t default_port, ServerAddr &out) {
    out.port = default_port;
    unsigned char buf[16];
    if (!s.empty() && s[0] == '[') {
        auto close = s.find(']');
        if (close == std::string::npos) return false;
        out.host = s.substr(1, close - 1);
        if (close + 1 < s.size()) {
            if (s[close + 1] != ':' || !parse_port(s.substr(close + 2), out.port)) return false;
        }
        out.v6 = true;
        return inet_pton(AF_INET6, out.host.c_str(), buf) == 1;
    }
    if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
        out.host = s;
        out.v6 = true;
        return true;
    }
    auto colon = s.rfind(':');
    out.host = colon == std::string::npos ? s : s.substr(0, colon);
    if (colon != std::string::npos && !parse_port(s.substr(colon + 1), out.port)) return false;
    out.v6 = false;
    return inet_pton(AF_INET, out.host.c_str(), buf) == 1;
}

} // namespace aisid::cli
