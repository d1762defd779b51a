// The answer cache for forwarded names: one for the whole daemon, shared by
// every worker.
//
// Why shared: SO_REUSEPORT hands each client query to a worker by
// its source port, so a per-worker cache meant a name cached by one worker was
// unknown to the others. Resolution then flapped exactly when the upstream went
// away (serve-stale only worked on the worker that held the entry), every name
// was fetched once per worker, the memory bound was split, and the hit ratio
// fell as workers were added.
//
// How the hit path stays cheap (Unbound's slabhash is the model): the cache is
// split into kShards independent shards by a hash of the key, each with its
// own mutex, LRU list and map, and a hit holds one shard's lock only while it
// copies the answer out (visit() below): no allocation, no global lock, and
// two workers contend only when they hit the same shard at the same moment.
// The memory bound is the whole cache's, divided evenly between the shards in
// use (fewer for a small bound, so that an answer always fits in its shard).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace aisid::resolver {

struct CacheEntry {
    std::string key;    // lowercase qname wire + qtype + qclass + DO/CD bits
    std::string body;   // the answer after its question, OPT removed, TTLs as received
    std::vector<uint16_t> ttl_offs;  // offsets in body of each record's TTL
    uint16_t flags = 0;  // rcode and the AD bit of the answer
    uint16_t an = 0, ns = 0, ar = 0;
    uint64_t stored_ms = 0;
    uint64_t expires_ms = 0;
    uint64_t stale_until_ms = 0;
    bool negative = false;
    size_t cost() const { return key.size() + body.size() + ttl_offs.size() * 2 + 160; }
};

class Cache {
public:
    static constexpr size_t kShards = 32;
    /// Each shard holds at least this much: a small cache has fewer shards
    /// (an 8 KiB cache is one shard), so one answer always fits.
    static constexpr size_t kMinShardBytes = 64 << 10;

    explicit Cache(size_t max_bytes);
    /// Calls f(entry) with a fresh entry, or (allow_stale) one expired less
    /// than its stale window ago, while that entry's shard is locked: f must
    /// copy what it needs and not call back into the cache. False on a miss.
    template <class F> bool visit(std::string_view key, uint64_t now_ms, bool allow_stale, F &&f) {
        Shard &s = shard_of(key);
        std::lock_guard lk(s.mu);
        const CacheEntry *e = s.find(key, now_ms, allow_stale);
        if (!e) return false;
        f(*e);
        return true;
    }
    void insert(CacheEntry &&e);
    void clear();
    /// The whole cache's memory bound (any thread; shrinks at once).
    void set_max_bytes(size_t b);
    size_t bytes() const;
    size_t entries() const;
    uint64_t evictions() const;
    /// The shard a key lives in (LRU order and the bound are per shard).
    size_t shard_index(std::string_view key) const {
        // Not std::hash: the shard must not correlate with the map's buckets.
        uint64_t h = 0xcbf29ce484222325ULL;
        for (char c : key) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
        return (h ^ (h >> 29)) % active_.load(std::memory_order_relaxed);
    }
    size_t shards() const { return active_.load(std::memory_order_relaxed); }

private:
    struct Shard {
        std::mutex mu;
        size_t max_bytes = 0;
        std::atomic<size_t> bytes{0}, count{0};
        std::atomic<uint64_t> evictions{0};
        std::list<CacheEntry> lru; // most recently used first
        std::unordered_map<std::string_view, std::list<CacheEntry>::iterator> map;
        const CacheEntry *find(std::string_view key, uint64_t now_ms, bool allow_stale);
        void insert(CacheEntry &&e);
        void evict_to(size_t limit);
        void erase(std::list<CacheEntry>::iterator it);
    };
    Shard &shard_of(std::string_view key) { return shards_[shard_index(key)]; }
    std::unique_ptr<Shard[]> shards_;
    std::atomic<size_t> active_{kShards}; // shards in use: the bound / kMinShardBytes, 1..kShards
};

/// Builds a cache key into buf (at least 262 bytes); returns its length.
size_t make_cache_key(std::string_view qname_wire, uint16_t qtype, uint16_t qclass, bool do_bit, bool cd,
                      uint8_t *buf);

} // namespace aisid::resolver
