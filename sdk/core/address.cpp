#include "aisid/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace aisid {

Aisid Aisid::from_in6(const in6_addr &a) {
    std::array<uint8_t, 16> b;
    std::memcpy(b.data(), a.s6_addr, 16);
    return Aisid(b);
}

void Aisid::to_in6(in6_addr &out) const { std::memcpy(out.s6_addr, bytes_.data(), 16); }

std::optional<Aisid> Aisid::parse(std::string_view text) {
    char buf[INET6_ADDRSTRLEN + 1];
    if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    std::array<uint8_t, 16> b;
    if (inet_pton(AF_INET6, buf, b.data()) != 1) return std::nullopt;
    return Aisid(b);
}

// glibc's inet_ntop follows RFC 5952: lowercase, no leading zeros, the longest
// run of two or more zero fields (the first on a tie) shortened to "::".
size_t Aisid::format(char *buf, size_t len) const {
    if (!inet_ntop(AF_INET6, bytes_.data(), buf, static_cast<socklen_t>(len))) return 0;
    return std::strlen(buf);
}

std::string Aisid::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    return std::string(buf, format(buf, sizeof buf));
}

std::optional<uint64_t> parse_prefix64(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos || text.substr(slash + 1) != "64") return std::nullopt;
    auto a = Aisid::parse(text.substr(0, slash));
    if (!a) return std::nullopt;
    for (int i = 8; i < 16; ++i)
        if (a->bytes()[i] != 0) return std::nullopt;
    return a->prefix();
}

std::string format_prefix64(uint64_t prefix) {
    return Aisid::make(prefix, 0, 0, 0, 0).to_string() + "/64";
}

} // namespace aisid
