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
    /// Bytes of a key after the name: qtype, qclass, the DO/CD byte.
    static constexpr size_t kKeyTail = 5;

    explicit Cache(size_t max_bytes);
    /// Calls f(entry) with a fresh entry, or (allow_stale) one expired less
    /// than its stale window ago, while that entry's shard is locked: f must
    /// copy what it needs and not call back into the cache. False on a miss.
    template <class F> bool visit(std::string_view key, uint64_t now_ms, bool allow_stale, F &&f) {
        const KeyRef k{key, hash_key(key)};
        Shard &s = shards_[shard_index(k.hash)];
        std::lock_guard lk(s.mu);
        const CacheEntry *e = s.find(k, now_ms, allow_stale);
        if (!e) return false;
        f(*e);
        return true;
    }
    void insert(CacheEntry &&e);
    void clear();
    /// Removes every answer for the name (lowercase wire form, root byte
    /// included): all types, classes and DO/CD variants. Its keys are spread
    /// over the shards by their hash, so every shard is searched (an operator's
    /// `aisid-control flush`, not a hot path). Returns how many went.
    size_t erase_name(std::string_view name_wire);
    /// Calls f(entry) for every entry still of use at now_ms (fresh, or
    /// expired but inside its stale window), shard by shard, on a copy taken
    /// while that shard was locked: f runs with no lock held (it may be slow,
    /// write to a socket, or call back into the cache) and workers wait at
    /// most for one shard's copy. Entries inserted meanwhile may be missed.
    void for_each(uint64_t now_ms, const std::function<void(const CacheEntry &)> &f);
    /// The whole cache's memory bound (any thread; shrinks at once).
    void set_max_bytes(size_t b);
    size_t bytes() const;
    size_t entries() const;
    uint64_t evictions() const;
    /// The shard a key lives in (LRU order and the bound are per shard).
    size_t shard_index(std::string_view key) const { return shard_index(hash_key(key)); }
    size_t shards() const { return active_.load(std::memory_order_relaxed); }

private:
    // A key is hashed once per lookup: the shard comes from the hash's high
    // bits and the shard's map reuses the whole hash (its bucket is the hash
    // modulo a prime, so the bits that chose the shard do not bias it).
    struct KeyRef {
        std::string_view key;
        size_t hash;
        bool operator==(const KeyRef &o) const { return key == o.key; }
    };
    struct KeyRefHash {
        size_t operator()(const KeyRef &k) const noexcept { return k.hash; }
    };
    static size_t hash_key(std::string_view key) { return std::hash<std::string_view>{}(key); }
    size_t shard_index(size_t hash) const { return (hash >> 40) % active_.load(std::memory_order_relaxed); }

    struct Shard {
        std::mutex mu;
        size_t max_bytes = 0;
        std::atomic<size_t> bytes{0}, count{0};
        std::atomic<uint64_t> evictions{0};
        std::list<CacheEntry> lru; // most recently used first
        std::unordered_map<KeyRef, std::list<CacheEntry>::iterator, KeyRefHash> map;
        const CacheEntry *find(const KeyRef &key, uint64_t now_ms, bool allow_stale);
        void insert(CacheEntry &&e);
        void evict_to(size_t limit);
        void erase(std::list<CacheEntry>::iterator it);
    };
    std::unique_ptr<Shard[]> shards_;
    std::atomic<size_t> active_{kShards}; // shards in use: the bound / kMinShardBytes, 1..kShards
};

/// Builds a cache key into buf (at least 262 bytes); returns its length.
size_t make_cache_key(std::string_view qname_wire, uint16_t qtype, uint16_t qclass, bool do_bit, bool cd,
                      uint8_t *buf);

} // namespace aisid::resolver
