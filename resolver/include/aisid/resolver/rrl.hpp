// Response rate limiting (RRL) for UDP replies, as BIND 9 and Knot do it: a
// spoofed-source flood cannot turn aisidd into an amplifier against the
// address it forges. Each reply is counted against a bucket keyed by
//   the client's network (IPv4 /24, IPv6 /56 by default),
//   its category (answer, NODATA/NXDOMAIN, error) and
//   for answers the question (name, type), and for synthesized AISID
//   answers the service they resolve to (p1.svc, p2.svc... share one), as
//   BIND keys wildcard answers by the wildcard; for NODATA/NXDOMAIN the zone
//   (the SOA owner in the authority section, else the name), so random
//   subdomains of one zone share a bucket; for errors nothing more.
// A bucket earns `rate` replies per second, holds at most one second's worth,
// and may owe up to `window` seconds' worth: a flood keeps its bucket limited
// until it has been quiet long enough to pay that back. A limited reply is
// dropped, except every `slip`-th, which goes out truncated (TC=1, question
// only): a real client behind a forged address retries over TCP, which is
// never limited (a handshake proves the address).
//
// The table is shared by every worker: a fixed array of two-word slots
// updated with compare-and-swap, no lock and no allocation after start. Two
// keys that meet in one slot take it in turn (the newcomer starts full): a
// collision can only make the limit laxer, never drop a reply that is within
// its rate.
#pragma once

#include "aisid/core/socket_address.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace aisid::resolver {

struct RrlSettings {
    uint32_t responses_per_second = 0;  // 0: rate limiting off
    uint32_t errors_per_second = 0;     // SERVFAIL, REFUSED, FORMERR...; 0: as responses_per_second
    uint32_t slip = 2;                  // every slip-th limited reply is sent truncated; 0: drop them all
    uint32_t window = 15;               // seconds of debt a bucket may run up
    uint8_t ipv4_prefix = 24;
    uint8_t ipv6_prefix = 56;
    std::vector<Cidr> exempt;           // never limited
    bool enabled() const { return responses_per_second != 0; }
};

inline constexpr uint32_t kRrlMaxRate = 10000;
inline constexpr uint32_t kRrlMaxWindow = 60;

enum class RrlAction : uint8_t { send, drop, slip };

class RateLimiter {
public:
    /// `slots`: rounded up to a power of two (at least 1024).
    explicit RateLimiter(size_t slots);

    /// Decides the fate of the UDP reply `resp` (len bytes) to `peer` at
    /// `now_ms` (monotonic). For `slip` the reply has been cut in place to a
    /// truncated one (TC, question only) and `len` updated.
    /// `service_key` (service_len bytes): the reply is a synthesized answer
    /// and is counted under that key (the service) instead of its name.
    RrlAction check(const RrlSettings &s, const sockaddr_storage &peer, uint8_t *resp, size_t &len,
                    uint64_t now_ms, const uint8_t *service_key = nullptr, size_t service_len = 0);

    size_t slots() const { return mask_ + 1; }

private:
    // Two words per bucket, used through std::atomic_ref:
    //   [2i]     key bits (high 48) | slip counter (low 16)
    //   [2i + 1] time in ms (high 32) | balance in 1/1000 replies (low 32, signed)
    // calloc'ed: the kernel's zero pages until a bucket is first used, so an
    // aisidd without rate limiting (or with few clients) pays no memory for it.
    struct Free {
        void operator()(uint64_t *p) const;
    };
    std::unique_ptr<uint64_t[], Free> words_;
    size_t mask_;
    uint64_t seed_;
};

} // namespace aisid::resolver
