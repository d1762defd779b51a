// Flow identity and the stable hash both schedulers use.
//
// The hash must be the same on every gateway, every build and every run: the
// ingress's per-flow path choice is a pure function of it, and two ingress
// gateways that see the same flow (or one that restarts) must choose alike.
// So: no std::hash (implementation-defined), no per-process seed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace aisid::sched {

/// splitmix64's finaliser (Steele, Lea, Flood 2014): a bijective 64-bit mix
/// with full avalanche, cheap enough for the per-packet path.
constexpr uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/// Stable 64-bit hash of a byte string (FNV-1a, then mix64 so that short
/// inputs that differ in one byte still land far apart).
constexpr uint64_t hash_bytes(const uint8_t *p, size_t n, uint64_t seed = 0) {
    uint64_t h = 0xcbf29ce484222325ULL ^ mix64(seed);
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

/// Stable hash of a text identifier (a node or path name, an SRv6 SID in text).
constexpr uint64_t hash_name(std::string_view s, uint64_t seed = 0) {
    uint64_t h = 0xcbf29ce484222325ULL ^ mix64(seed);
    for (char c : s) {
        h ^= static_cast<uint8_t>(c);
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

/// A transport flow: the 5-tuple that a gateway sees. Addresses are in network
/// byte order (as in in6_addr); ports in host order.
struct FlowKey {
    std::array<uint8_t, 16> src{};
    std::array<uint8_t, 16> dst{};
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    uint8_t proto = 0; ///< IPPROTO_TCP, IPPROTO_UDP, ...

    friend constexpr bool operator==(const FlowKey &, const FlowKey &) = default;

    /// The stable hash of the flow (same value on every host and build).
    constexpr uint64_t hash() const {
        std::array<uint8_t, 37> b{};
        for (size_t i = 0; i < 16; ++i) {
            b[i] = src[i];
            b[16 + i] = dst[i];
        }
        b[32] = static_cast<uint8_t>(src_port >> 8);
        b[33] = static_cast<uint8_t>(src_port);
        b[34] = static_cast<uint8_t>(dst_port >> 8);
        b[35] = static_cast<uint8_t>(dst_port);
        b[36] = proto;
        return hash_bytes(b.data(), b.size());
    }
};

/// For unordered containers keyed by FlowKey.
struct FlowKeyHash {
    size_t operator()(const FlowKey &k) const noexcept { return static_cast<size_t>(k.hash()); }
};

} // namespace aisid::sched
