// Socket addresses and CIDR prefixes as every aisid program spells them on
// its command line and in its config: one parser, so that aisidd, aisid-admin,
// aisid-lookup, the SDK's upstream list and the gateways agree on what
// "ADDR[:PORT]" means.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aisid {

struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family() const { return ss.ss_family; }
    uint16_t port() const;
    const sockaddr *sa() const { return reinterpret_cast<const sockaddr *>(&ss); }
    sockaddr *sa() { return reinterpret_cast<sockaddr *>(&ss); }
    bool same(const SockAddr &o) const;       // address and port
    bool same_host(const SockAddr &o) const;  // address only (v4-mapped folded)
    std::string host_text() const;            // "1.2.3.4", "::1", "fe80::1%eth0"
    std::string to_string() const;            // "1.2.3.4:53", "[::1]:53"
    static SockAddr from(const sockaddr_storage &s);
};

/// What a caller accepts beyond the common grammar.
struct AddressRules {
    /// The port when the text has none; nullopt: the port must be given.
    std::optional<uint16_t> default_port = std::nullopt;
    /// Accept port 0: a port the kernel picks (listeners), or an address
    /// whose port is not used (an SRv6 SID).
    bool port_zero = false;
    /// IPv6 only (the gateways' SIDs and endpoints).
    bool ipv6_only = false;
};

/// "ADDR", "ADDR:PORT", "[V6]", "[V6]:PORT" or a bare IPv6 address (which
/// then has no port). Addresses are numeric, never names; an IPv6 link-local
/// address may carry its scope ("fe80::1%eth0", by name or index). A port is
/// 1 to 5 decimal digits up to 65535; "ADDR:" is refused.
std::optional<SockAddr> parse_sockaddr(std::string_view text, const AddressRules &rules);

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

} // namespace aisid
