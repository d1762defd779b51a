#include "aisid/resolver/limits.hpp"

#include "aisid/core/socket_address.hpp"

#include <sys/random.h>

#include <cstring>

namespace aisid::resolver {

const char *limit_name(Limit l) {
    switch (l) {
    case Limit::tcp_output: return "tcp_output";
    case Limit::tcp_write_timeout: return "tcp_write_timeout";
    case Limit::tcp_per_client: return "tcp_per_client";
    case Limit::tcp_full: return "tcp_full";
    case Limit::tcp_idle_evicted: return "tcp_idle_evicted";
    case Limit::inflight_client: return "inflight_client";
    case Limit::inflight_total: return "inflight_total";
    case Limit::authority_queue: return "authority_queue";
    case Limit::v4_mapped_source: return "v4_mapped_source";
    case Limit::count_: break;
    }
    return "?";
}

ClientCounters::ClientCounters(size_t slots) {
    size_t n = 1024;
    while (n < slots && n < (size_t{1} << 24)) n <<= 1;
    c_.reset(new std::atomic<uint32_t>[n]());
    mask_ = n - 1;
    if (getrandom(&seed_, sizeof seed_, 0) != sizeof seed_) seed_ = 0x9e3779b97f4a7c15ull ^ uint64_t(this);
}

size_t ClientCounters::slot_of(const sockaddr_storage &peer) const {
    uint8_t a[16];
    addr16(peer, a);
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    bool v4 = std::memcmp(a, kMapped, 12) == 0;
    uint64_t hi, lo = 0;
    std::memcpy(&hi, a, 8);
    if (v4) std::memcpy(&lo, a + 8, 8);  // IPv4: the whole address; IPv6: its /64
    uint64_t h = seed_ ^ hi;
    h = (h ^ (h >> 31)) * 0xbf58476d1ce4e5b9ull;
    h ^= lo;
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
    h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return size_t(h) & mask_;
}

int32_t ClientCounters::acquire(const sockaddr_storage &peer, uint32_t limit) {
    size_t s = slot_of(peer);
    uint32_t v = c_[s].load(std::memory_order_relaxed);
    do {
        if (limit && v >= limit) return -1;
    } while (!c_[s].compare_exchange_weak(v, v + 1, std::memory_order_relaxed));
    return int32_t(s);
}

void ClientCounters::release(int32_t slot) {
    if (slot >= 0) c_[size_t(slot)].fetch_sub(1, std::memory_order_relaxed);
}

uint32_t ClientCounters::count(const sockaddr_storage &peer) const {
    return c_[slot_of(peer)].load(std::memory_order_relaxed);
}

} // namespace aisid::resolver
