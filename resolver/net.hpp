// Socket addresses and CIDR prefixes as aisidd's options spell them.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aisid::resolver {

struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family() const { return ss.ss_family; }
    uint16_t port() const;
    const sockaddr *sa() const { return reinterpret_cast<const sockaddr *>(&ss); }
    sockaddr *sa() { return reinterpret_cast<sockaddr *>(&ss); }
    bool same(const SockAddr &o) const;       // address and port
    bool same_host(const SockAddr &o) const;  // address only (v4-mapped folded)
    std::string to_string() const;            // "1.2.3.4:53", "[::1]:53"
    static SockAddr from(const sockaddr_storage &s);
};

/// "ADDR", "ADDR:PORT", "[V6]:PORT" or a bare IPv6 address.
std::optional<SockAddr> parse_sockaddr(std::string_view text, uint16_t default_port);

struct Cidr {
    int family = 0;
    uint8_t addr[16]{};
    unsigned bits = 0;
    bool contains(const sockaddr_storage &s) const;
};
std::optional<Cidr> parse_cidr(std::string_view text);

/// The 16-byte form of an address (IPv4 as v4-mapped ::ffff:a.b.c.d); zeros for other families.
void addr16(const sockaddr_storage &s, uint8_t out[16]);

/// True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104.
bool is_loopback(const sockaddr_storage &s);

} // namespace aisid::resolver
