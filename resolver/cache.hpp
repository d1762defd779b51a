// The answer cache for forwarded names.
//
// Why one cache per worker thread rather than a shared, sharded one: a cache
// hit must take no lock and allocate nothing. Each worker owns its sockets
// (SO_REUSEPORT), its in-flight queries and its cache, so a hit is a hash
// lookup, an LRU splice and a memcpy. The cost is that a name may be fetched
// once per worker (a few workers: a few upstream queries) and the memory bound
// is split between workers; for a host's stub resolver that is the right trade.
#pragma once

#include <cstdint>
#include <list>
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
    explicit Cache(size_t max_bytes) : max_bytes_(max_bytes) {}
    /// A fresh entry, or (allow_stale) one expired less than its stale window ago.
    const CacheEntry *find(std::string_view key, uint64_t now_ms, bool allow_stale);
    void insert(CacheEntry &&e);
    void clear();
    void set_max_bytes(size_t b);
    size_t bytes() const { return bytes_; }
    size_t entries() const { return map_.size(); }
    uint64_t evictions() const { return evictions_; }

private:
    void evict_to(size_t limit);
    void erase(std::list<CacheEntry>::iterator it);
    size_t max_bytes_;
    size_t bytes_ = 0;
    uint64_t evictions_ = 0;
    std::list<CacheEntry> lru_;  // most recently used first
    std::unordered_map<std::string_view, std::list<CacheEntry>::iterator> map_;
};

/// Builds a cache key into buf (at least 262 bytes); returns its length.
size_t make_cache_key(std::string_view qname_wire, uint16_t qtype, uint16_t qclass, bool do_bit, bool cd,
                      uint8_t *buf);

} // namespace aisid::resolver
