#include "aisid/resolver/cache.hpp"

#include <algorithm>
#include <cstring>

namespace aisid::resolver {

size_t make_cache_key(std::string_view qname_wire, uint16_t qtype, uint16_t qclass, bool do_bit, bool cd,
                      uint8_t *buf) {
    std::memcpy(buf, qname_wire.data(), qname_wire.size());
    size_t n = qname_wire.size();
    buf[n++] = static_cast<uint8_t>(qtype >> 8);
    buf[n++] = static_cast<uint8_t>(qtype);
    buf[n++] = static_cast<uint8_t>(qclass >> 8);
    buf[n++] = static_cast<uint8_t>(qclass);
    buf[n++] = static_cast<uint8_t>((do_bit ? 1 : 0) | (cd ? 2 : 0));
    static_assert(Cache::kKeyTail == 5, "qtype, qclass and the DO/CD byte");
    return n;
}

Cache::Cache(size_t max_bytes) : shards_(std::make_unique<Shard[]>(kShards)) { set_max_bytes(max_bytes); }

const CacheEntry *Cache::Shard::find(const KeyRef &key, uint64_t now_ms, bool allow_stale) {
    auto it = map.find(key);
    if (it == map.end()) return nullptr;
    auto li = it->second;
    if (now_ms >= li->expires_ms) {
        if (!allow_stale || now_ms >= li->stale_until_ms) {
            if (now_ms >= li->stale_until_ms) erase(li); // past any use
            return nullptr;
        }
    }
    if (li != lru.begin()) lru.splice(lru.begin(), lru, li);
    return &*li;
}

void Cache::Shard::erase(std::list<CacheEntry>::iterator it) {
    bytes.fetch_sub(it->cost(), std::memory_order_relaxed);
    count.fetch_sub(1, std::memory_order_relaxed);
    map.erase(KeyRef{it->key, hash_key(it->key)});
    lru.erase(it);
}

void Cache::Shard::evict_to(size_t limit) {
    while (bytes.load(std::memory_order_relaxed) > limit && !lru.empty()) {
        erase(std::prev(lru.end()));
        evictions.fetch_add(1, std::memory_order_relaxed);
    }
}

void Cache::Shard::insert(CacheEntry &&e) {
    if (e.cost() > max_bytes) return;
    const size_t h = hash_key(e.key);
    auto it = map.find(KeyRef{e.key, h});
    if (it != map.end()) erase(it->second);
    evict_to(max_bytes - e.cost());
    bytes.fetch_add(e.cost(), std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
    lru.push_front(std::move(e));
    map.emplace(KeyRef{lru.front().key, h}, lru.begin());
}

void Cache::insert(CacheEntry &&e) {
    Shard &s = shards_[shard_index(hash_key(e.key))];
    std::lock_guard lk(s.mu);
    s.insert(std::move(e));
}

void Cache::clear() {
    for (size_t i = 0; i < kShards; ++i) {
        Shard &s = shards_[i];
        std::lock_guard lk(s.mu);
        s.map.clear();
        s.lru.clear();
        s.bytes.store(0, std::memory_order_relaxed);
        s.count.store(0, std::memory_order_relaxed);
    }
}

size_t Cache::erase_name(std::string_view name_wire) {
    size_t n = 0;
    for (size_t i = 0; i < kShards; ++i) {
        Shard &s = shards_[i];
        std::lock_guard lk(s.mu);
        for (auto it = s.lru.begin(); it != s.lru.end();) {
            auto next = std::next(it);
            // A key is the name's wire form followed by kKeyTail bytes (make_cache_key).
            if (it->key.size() == name_wire.size() + kKeyTail && it->key.compare(0, name_wire.size(), name_wire) == 0) {
                s.erase(it);
                ++n;
            }
            it = next;
        }
    }
    return n;
}

void Cache::for_each(uint64_t now_ms, const std::function<void(const CacheEntry &)> &f) {
    std::vector<CacheEntry> copy;
    for (size_t i = 0; i < kShards; ++i) {
        copy.clear();
        {
            Shard &s = shards_[i];
            std::lock_guard lk(s.mu);
            copy.reserve(s.lru.size());
            for (const CacheEntry &e : s.lru)
                if (now_ms < std::max(e.expires_ms, e.stale_until_ms)) copy.push_back(e);
        }
        for (const CacheEntry &e : copy) f(e);
    }
}

void Cache::set_max_bytes(size_t b) {
    const size_t n = std::clamp<size_t>(b / kMinShardBytes, 1, kShards);
    if (n != active_.load(std::memory_order_relaxed)) {
        // Keys map to other shards now: start empty (a reload that changes
        // the cache size is rare). An insert racing with this lands in a shard
        // its key no longer maps to and is only ever evicted: still bounded.
        active_.store(n, std::memory_order_relaxed);
        clear();
    }
    for (size_t i = 0; i < kShards; ++i) {
        Shard &s = shards_[i];
        std::lock_guard lk(s.mu);
        s.max_bytes = i < n ? b / n : 0;
        s.evict_to(s.max_bytes);
    }
}

size_t Cache::bytes() const {
    size_t n = 0;
    for (size_t i = 0; i < kShards; ++i) n += shards_[i].bytes.load(std::memory_order_relaxed);
    return n;
}

size_t Cache::entries() const {
    size_t n = 0;
    for (size_t i = 0; i < kShards; ++i) n += shards_[i].count.load(std::memory_order_relaxed);
    return n;
}

uint64_t Cache::evictions() const {
    uint64_t n = 0;
    for (size_t i = 0; i < kShards; ++i) n += shards_[i].evictions.load(std::memory_order_relaxed);
    return n;
}

} // namespace aisid::resolver
