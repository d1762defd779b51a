#include "aisid/core/socket_address.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include <cstring>

namespace aisid {

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

std::string SockAddr::host_text() const {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in &>(ss).sin_addr, buf, sizeof buf);
        return buf;
    }
    if (ss.ss_family != AF_INET6) return "?";
    const auto &s6 = reinterpret_cast<const sockaddr_in6 &>(ss);
    inet_ntop(AF_INET6, &s6.sin6_addr, buf, sizeof buf);
    std::string out = buf;
    if (s6.sin6_scope_id != 0) {
        char name[IF_NAMESIZE];
        out += '%';
        out += if_indextoname(s6.sin6_scope_id, name) ? std::string(name) : std::to_string(s6.sin6_scope_id);
    }
    return out;
}

std::string SockAddr::to_string() const {
    if (ss.ss_family == AF_INET) return host_text() + ":" + std::to_string(port());
    return "[" + host_text() + "]:" + std::to_string(port());
}

namespace {

// "eth0" or "2": the interface a link-local address is scoped to.
std::optional<uint32_t> parse_scope(std::string_view s) {
    if (s.empty() || s.size() >= IF_NAMESIZE) return std::nullopt;
    if (s.find_first_not_of("0123456789") == std::string_view::npos) {
        uint64_t v = 0;
        for (char c : s) v = v * 10 + uint64_t(c - '0');
        if (v == 0 || v > UINT32_MAX) return std::nullopt;
        return static_cast<uint32_t>(v);
    }
    unsigned idx = if_nametoindex(std::string(s).c_str());
    if (idx == 0) return std::nullopt;
    return idx;
}

} // namespace

std::optional<SockAddr> parse_sockaddr(std::string_view text, const AddressRules &rules) {
    std::string_view host, port;
    bool has_port = false;
    if (!text.empty() && text.front() == '[') {
        size_t e = text.find(']');
        if (e == std::string_view::npos) return std::nullopt;
        host = text.substr(1, e - 1);
        std::string_view rest = text.substr(e + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            port = rest.substr(1);
            has_port = true;
        }
        if (host.find(':') == std::string_view::npos) return std::nullopt;  // "[1.2.3.4]"
    } else if (text.find(':') != text.rfind(':')) {
        host = text;  // a bare IPv6 address: no port
    } else {
        size_t c = text.find(':');
        host = text.substr(0, c);
        if (c != std::string_view::npos) {
            port = text.substr(c + 1);
            has_port = true;
        }
    }
    unsigned p = 0;
    if (has_port) {
        if (port.empty() || port.size() > 5) return std::nullopt;
        for (char c : port) {
            if (c < '0' || c > '9') return std::nullopt;
            p = p * 10 + unsigned(c - '0');
        }
        if (p > 65535) return std::nullopt;
    } else if (rules.default_port) {
        p = *rules.default_port;
    } else {
        return std::nullopt;
    }
    if (p == 0 && !rules.port_zero) return std::nullopt;
    if (host.empty() || host.size() >= 64) return std::nullopt;

    SockAddr a;
    std::string h(host);
    auto &s4 = reinterpret_cast<sockaddr_in &>(a.ss);
    auto &s6 = reinterpret_cast<sockaddr_in6 &>(a.ss);
    if (!rules.ipv6_only && inet_pton(AF_INET, h.c_str(), &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        s4.sin_port = htons(static_cast<uint16_t>(p));
        a.len = sizeof(sockaddr_in);
        return a;
    }
    uint32_t scope = 0;
    if (size_t pct = h.find('%'); pct != std::string::npos) {
        auto sc = parse_scope(std::string_view(h).substr(pct + 1));
        if (!sc) return std::nullopt;
        scope = *sc;
        h.resize(pct);
    }
    if (inet_pton(AF_INET6, h.c_str(), &s6.sin6_addr) != 1) return std::nullopt;
    // A scope means something only for link-local addresses (RFC 4007 §11).
    if (scope != 0 && !IN6_IS_ADDR_LINKLOCAL(&s6.sin6_addr) && !IN6_IS_ADDR_MC_LINKLOCAL(&s6.sin6_addr))
        return std::nullopt;
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(static_cast<uint16_t>(p));
    s6.sin6_scope_id = scope;
    a.len = sizeof(sockaddr_in6);
    return a;
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

} // namespace aisid
