// Copy-on-write building blocks for zones that change in place of being
// rebuilt: a new version of a zone shares every part an UPDATE or an IXFR did
// not touch with the version before it, so a change costs what it changes
// (as Knot DNS's zone contents do), and readers keep holding immutable
// snapshots without a lock.
//
// The unit of sharing is a shared_ptr. A writer owns the copy it is building;
// a part whose count is 1 belongs to that copy alone and is changed in place,
// a shared one is copied first (only that part). Counts only fall while a
// writer looks: every other holder is a published, immutable version, and
// nobody can take a new reference to the writer's private copy.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace aisid {

namespace cow_detail {
// A part that another version dropped while we looked at its count: its
// reads happened before that drop; ours and our writes come after.
inline bool sole_owner(long count) {
    if (count != 1) return false;
    std::atomic_thread_fence(std::memory_order_acquire);
    return true;
}
} // namespace cow_detail

/// One shared immutable value; mut() copies it first when another version holds it.
template <class T> class CowPtr {
public:
    CowPtr() : p_(std::make_shared<T>()) {}
    const T &operator*() const { return *p_; }
    const T *operator->() const { return p_.get(); }
    T &mut() {
        if (!cow_detail::sole_owner(p_.use_count())) p_ = std::make_shared<T>(*p_);
        return *p_;
    }
    /// True when both share one value (tests).
    bool shares_with(const CowPtr &o) const { return p_ == o.p_; }

private:
    std::shared_ptr<T> p_;
};

/// A power-of-two number of shards, each shared by the versions that did not
/// change it. A key's shard is given by the top bits of its 64-bit hash (the
/// shard's own table uses the low bits). Copying the whole set costs one
/// reference per shard; changing one key copies one shard.
template <class Shard> class CowShards {
public:
    explicit CowShards(size_t count = 1) { reset(count); }

    size_t count() const { return shards_.size(); }
    size_t index(uint64_t h) const { return bits_ ? static_cast<size_t>(h >> (64 - bits_)) : 0; }
    const Shard &at(size_t i) const { return *shards_[i]; }
    const Shard &for_hash(uint64_t h) const { return *shards_[index(h)]; }
    /// The shard, copied first if another version shares it.
    Shard &mut(size_t i) {
        std::shared_ptr<Shard> &p = shards_[i];
        if (!cow_detail::sole_owner(p.use_count())) p = std::make_shared<Shard>(*p);
        return *p;
    }
    /// Empties the set into `count` (a power of two) new shards.
    void reset(size_t count) {
        count = std::bit_ceil(std::max<size_t>(1, count));
        bits_ = static_cast<unsigned>(std::countr_zero(count));
        shards_.clear();
        shards_.reserve(count);
        for (size_t i = 0; i < count; ++i) shards_.push_back(std::make_shared<Shard>());
    }
    /// How many shards both share (tests and the bench).
    size_t shared_with(const CowShards &o) const {
        size_t n = 0;
        for (size_t i = 0; i < shards_.size() && i < o.shards_.size(); ++i) n += shards_[i] == o.shards_[i];
        return n;
    }

private:
    std::vector<std::shared_ptr<Shard>> shards_;
    unsigned bits_ = 0;
};

/// A key with its hash computed once: the shard and the shard's table both use it.
struct HashedKey {
    std::string_view s;
    uint64_t h;
};

/// FNV-1a over the bytes, its high bits folded down (names are short).
inline uint64_t string_hash64(std::string_view s) noexcept {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

/// A string-keyed map of shards: lookups hash once; a change copies the one
/// shard it falls in. Shard count follows the size (about kTarget per shard),
/// set by rebalance() after bulk changes.
template <class V> class CowStringMap {
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept { return static_cast<size_t>(string_hash64(s)); }
        size_t operator()(const std::string &s) const noexcept { return static_cast<size_t>(string_hash64(s)); }
        size_t operator()(const HashedKey &k) const noexcept { return static_cast<size_t>(k.h); }
    };
    struct Eq {
        using is_transparent = void;
        bool operator()(const std::string &a, const std::string &b) const { return a == b; }
        bool operator()(const HashedKey &a, const std::string &b) const { return a.s == b; }
        bool operator()(const std::string &a, const HashedKey &b) const { return a == b.s; }
        bool operator()(std::string_view a, const std::string &b) const { return a == b; }
        bool operator()(const std::string &a, std::string_view b) const { return a == b; }
    };

public:
    using Shard = std::unordered_map<std::string, V, Hash, Eq>;
    static constexpr size_t kTarget = 512;

    const V *find(std::string_view k) const {
        HashedKey hk{k, string_hash64(k)};
        const Shard &s = shards_.for_hash(hk.h);
        auto it = s.find(hk);
        return it == s.end() ? nullptr : &it->second;
    }
    /// The value at k, inserted default-constructed when absent (copies its shard if shared).
    std::pair<V *, bool> emplace(std::string_view k) {
        HashedKey hk{k, string_hash64(k)};
        Shard &s = shards_.mut(shards_.index(hk.h));
        auto it = s.find(hk);
        if (it != s.end()) return {&it->second, false};
        ++size_;
        return {&s.emplace(std::string(k), V{}).first->second, true};
    }
    /// The value at k for changing (copies its shard if shared); nullptr when absent.
    V *find_mut(std::string_view k) {
        HashedKey hk{k, string_hash64(k)};
        size_t i = shards_.index(hk.h);
        const Shard &peek = shards_.at(i);
        if (peek.find(hk) == peek.end()) return nullptr;  // no copy for a miss
        Shard &s = shards_.mut(i);
        return &s.find(hk)->second;
    }
    bool erase(std::string_view k) {
        HashedKey hk{k, string_hash64(k)};
        size_t i = shards_.index(hk.h);
        const Shard &peek = shards_.at(i);
        if (peek.find(hk) == peek.end()) return false;
        Shard &s = shards_.mut(i);
        s.erase(s.find(hk));
        --size_;
        return true;
    }
    size_t size() const { return size_; }
    template <class F> void for_each(F &&f) const {
        for (size_t i = 0; i < shards_.count(); ++i)
            for (const auto &[k, v] : shards_.at(i)) f(std::string_view(k), v);
    }
    /// Re-splits into about size/kTarget shards when the count is off by more
    /// than 4x either way: O(size), so it happens once in many changes.
    void rebalance() {
        size_t want = std::bit_ceil(std::max<size_t>(1, size_ / kTarget));
        size_t have = shards_.count();
        if (want <= have * 4 && want * 4 >= have) return;
        CowShards<Shard> next(want);
        for (size_t i = 0; i < have; ++i)
            for (const auto &[k, v] : shards_.at(i)) next.mut(next.index(string_hash64(k))).emplace(k, v);
        shards_ = std::move(next);
    }
    const CowShards<Shard> &shards() const { return shards_; }

private:
    CowShards<Shard> shards_;
    size_t size_ = 0;
};

} // namespace aisid
