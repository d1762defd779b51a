#include "cache.hpp"

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
    return n;
}

const CacheEntry *Cache::find(std::string_view key, uint64_t now_ms, bool allow_stale) {
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    auto li = it->second;
    if (now_ms >= li->expires_ms) {
        if (!allow_stale || now_ms >= li->stale_until_ms) {
            if (now_ms >= li->stale_until_ms) erase(li);  // past any use
            return nullptr;
        }
    }
    if (li != lru_.begin()) lru_.splice(lru_.begin(), lru_, li);
    return &*li;
}

void Cache::erase(std::list<CacheEntry>::iterator it) {
    bytes_ -= it->cost();
    map_.erase(std::string_view(it->key));
    lru_.erase(it);
}

void Cache::evict_to(size_t limit) {
    while (bytes_ > limit && !lru_.empty()) {
        erase(std::prev(lru_.end()));
        ++evictions_;
    }
}

void Cache::insert(CacheEntry &&e) {
    if (e.cost() > max_bytes_) return;
    auto it = map_.find(std::string_view(e.key));
    if (it != map_.end()) erase(it->second);
    evict_to(max_bytes_ - e.cost());
    bytes_ += e.cost();
    lru_.push_front(std::move(e));
    map_.emplace(std::string_view(lru_.front().key), lru_.begin());
}

void Cache::clear() {
    map_.clear();
    lru_.clear();
    bytes_ = 0;
}

void Cache::set_max_bytes(size_t b) {
    max_bytes_ = b;
    evict_to(b);
}

} // namespace aisid::resolver
