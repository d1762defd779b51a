#include "net.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace aisid::resolver {

uint16_t SockAddr::port() const {
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in &>(ss).sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6 &>(ss).sin6_port);
    return 0;
}

SockAddr SockAddr::from(const sockaddr_storage &s) {
    SockAddr a;
    a.ss = s;
    a.len = s.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    return a;
}

void addr16(const sockaddr_storage &s, uint8_t out[16]) {
    std::memset(out, 0, 16);
    if (s.ss_family == AF_INET) {
        out[10] = out[11] = 0xff;
        std::memcpy(out + 12, &reinterpret_cast<const sockaddr_in &>(s).sin_addr, 4);
    } else if (s.ss_family == AF_INET6) {
        std::memcpy(out, &reinterpret_cast<const sockaddr_in6 &>(s).sin6_addr, 16);
    }
}

bool SockAddr::same_host(const SockAddr &o) const {
    uint8_t a[16], b[16];
    addr16(ss, a);
    addr16(o.ss, b);
    return std::memcmp(a, b, 16) == 0;
}

bool SockAddr::same(const SockAddr &o) const { return port() == o.port() && same_host(o); }

std::string SockAddr::to_string() const {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in &>(ss).sin_addr, buf, sizeof buf);
        return std::string(buf) + ":" + std::to_string(port());
    }
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6 &>(ss).sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port());
}

std::optional<SockAddr> parse_sockaddr(std::string_view text, uint16_t default_port) {
    std::string host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        size_t e = text.find(']');
        if (e == std::string_view::npos) return std::nullopt;
        host = std::string(text.substr(1, e - 1));
        std::string_view rest = text.substr(e + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            port = rest.substr(1);
        }
    } else if (text.find(':') != text.rfind(':')) {
        host = std::string(text);  // a bare IPv6 address
    } else {
        size_t c = text.find(':');
        host = std::string(text.substr(0, c));
        if (c != std::string_view::npos) port = text.substr(c + 1);
    }
    unsigned p = default_port;
    if (!port.empty() || (text.size() && text.back() == ':')) {
        if (port.empty() || port.size() > 5) return std::nullopt;
        p = 0;
        for (char c : port) {
            if (c < '0' || c > '9') return std::nullopt;
            p = p * 10 + unsigned(c - '0');
        }
        if (p > 65535) return std::nullopt;
    }
    SockAddr a;
    auto &s4 = reinterpret_cast<sockaddr_in &>(a.ss);
    auto &s6 = reinterpret_cast<sockaddr_in6 &>(a.ss);
    if (inet_pton(AF_INET, host.c_str(), &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        s4.sin_port = htons(static_cast<uint16_t>(p));
        a.len = sizeof(sockaddr_in);
        return a;
    }
    if (inet_pton(AF_INET6, host.c_str(), &s6.sin6_addr) == 1) {
        s6.sin6_family = AF_INET6;
        s6.sin6_port = htons(static_cast<uint16_t>(p));
        a.len = sizeof(sockaddr_in6);
        return a;
    }
    return std::nullopt;
}

std::optional<Cidr> parse_cidr(std::string_view text) {
    Cidr c;
    size_t slash = text.find('/');
    std::string host(text.substr(0, slash));
    int maxbits;
    if (inet_pton(AF_INET, host.c_str(), c.addr) == 1) {
        c.family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, host.c_str(), c.addr) == 1) {
        c.family = AF_INET6;
        maxbits = 128;
    } else {
        return std::nullopt;
    }
    c.bits = static_cast<unsigned>(maxbits);
    if (slash != std::string_view::npos) {
        std::string_view b = text.substr(slash + 1);
        if (b.empty() || b.size() > 3) return std::nullopt;
        unsigned v = 0;
        for (char ch : b) {
            if (ch < '0' || ch > '9') return std::nullopt;
            v = v * 10 + unsigned(ch - '0');
        }
        if (v > unsigned(maxbits)) return std::nullopt;
        c.bits = v;
    }
    return c;
}

bool Cidr::contains(const sockaddr_storage &s) const {
    uint8_t a[16];
    addr16(s, a);
    const uint8_t *p;
    unsigned bits16;
    uint8_t mine[16];
    if (family == AF_INET) {
        // Compare in the v4-mapped space so v4 clients on a dual-stack socket match.
        std::memset(mine, 0, 16);
        mine[10] = mine[11] = 0xff;
        std::memcpy(mine + 12, addr, 4);
        p = mine;
        bits16 = 96 + bits;
    } else {
        p = addr;
        bits16 = bits;
    }
    unsigned full = bits16 / 8, rem = bits16 % 8;
    if (std::memcmp(a, p, full) != 0) return false;
    if (rem) {
        uint8_t mask = static_cast<uint8_t>(0xff << (8 - rem));
        if ((a[full] & mask) != (p[full] & mask)) return false;
    }
    return true;
}

bool is_loopback(const sockaddr_storage &s) {
    uint8_t a[16];
    addr16(s, a);
    static const uint8_t v6lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (std::memcmp(a, v6lo, 16) == 0) return true;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a, mapped, 12) == 0 && a[12] == 127;
}

} // namespace aisid::resolver
