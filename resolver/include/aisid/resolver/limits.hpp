// Per-client counters shared by every worker, for the limits that hold one
// client (or one host) to its share: TCP connections per client and queries
// in flight upstream per client (docs/reliability.md, "Threats").
//
// A client is its address: an IPv4 /32, an IPv6 /64 (a host is given a /64,
// so the addresses inside one are one client). The table is a fixed array of
// atomic counters indexed by a keyed hash of that prefix: no lock, no
// allocation after start. Two clients that meet in one slot share its count,
// so a collision can only make the limit stricter for them, never let a
// client past it; with 65536 slots that is rare and never chosen from outside
// (the hash is keyed with a random seed).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace aisid::resolver {

class ClientCounters {
public:
    explicit ClientCounters(size_t slots = 65536);
    /// Counts one more for `peer` unless it already holds `limit` (0: no
    /// limit); the slot to release, or -1 when over the limit.
    int32_t acquire(const sockaddr_storage &peer, uint32_t limit);
    void release(int32_t slot);
    /// Current count of `peer`'s slot (tests, metrics).
    uint32_t count(const sockaddr_storage &peer) const;

private:
    size_t slot_of(const sockaddr_storage &peer) const;
    std::unique_ptr<std::atomic<uint32_t>[]> c_;
    size_t mask_;
    uint64_t seed_;
};

/// The limits that count events, for aisidd_limit_hits_total{limit=...}.
enum class Limit : uint8_t {
    tcp_output,          // a connection stopped being read: its replies were not being read
    tcp_write_timeout,   // a connection closed: no reply written for the idle timeout
    tcp_per_client,      // its client holds --tcp-connections-per-client: its own idle one closed, or it refused
    tcp_full,            // a connection refused: every slot busy with queries in flight
    tcp_idle_evicted,    // an idle connection closed to make room for a new one
    inflight_client,     // a query answered SERVFAIL: its client has --max-inflight-per-client upstream
    inflight_total,      // a query answered SERVFAIL: --max-inflight queries upstream already
    authority_queue,     // a message for the authority side dropped: its queue is full
    v4_mapped_source,    // a packet or connection from ::ffff:a.b.c.d on an IPv6-only socket dropped
    count_
};
const char *limit_name(Limit l);

} // namespace aisid::resolver
