// An open-addressing hash map from non-zero 64-bit keys to small values:
// one allocation for the whole table, one probe sequence per lookup, so a
// lookup costs the same for a thousand services or a million.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace aisid {

template <class V> class FlatMap {
public:
    struct Slot {
        uint64_t key;  // 0 = empty
        V value;
    };

    const V *find(uint64_t key) const {
        if (slots_.empty()) return nullptr;
        for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
            const Slot &s = slots_[i];
            if (s.key == key) return &s.value;
            if (s.key == 0) return nullptr;
        }
    }
    V *find(uint64_t key) { return const_cast<V *>(static_cast<const FlatMap *>(this)->find(key)); }

    /// Inserts a default value if absent; returns the value and whether it was inserted.
    std::pair<V *, bool> emplace(uint64_t key) {
        if ((size_ + 1) * 4 > slots_.size() * 3) grow();
        for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
            Slot &s = slots_[i];
            if (s.key == key) return {&s.value, false};
            if (s.key == 0) {
                s.key = key;
                s.value = V{};
                ++size_;
                return {&s.value, true};
            }
        }
    }

    bool erase(uint64_t key) {
        if (slots_.empty()) return false;
        size_t i = hash(key) & mask_;
        for (;; i = (i + 1) & mask_) {
            if (slots_[i].key == key) break;
            if (slots_[i].key == 0) return false;
        }
        // Backward-shift deletion keeps every probe sequence unbroken.
        size_t j = i;
        for (;;) {
            j = (j + 1) & mask_;
            if (slots_[j].key == 0) break;
            size_t home = hash(slots_[j].key) & mask_;
            bool between = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
            if (between) continue;
            slots_[i] = slots_[j];
            i = j;
        }
        slots_[i].key = 0;
        --size_;
        return true;
    }

    void reserve(size_t n) {
        size_t want = 16;
        while (want * 3 < n * 4 + 4) want <<= 1;
        if (want > slots_.size()) rehash(want);
    }

    size_t size() const { return size_; }
    template <class F> void for_each(F &&f) const {
        for (const Slot &s : slots_)
            if (s.key) f(s.key, s.value);
    }
    template <class F> void for_each_mut(F &&f) {
        for (Slot &s : slots_)
            if (s.key) f(s.key, s.value);
    }
    size_t memory_bytes() const { return slots_.capacity() * sizeof(Slot); }

    /// The key's 64-bit mix: the table uses its low bits (a sharded map may use the high ones).
    static uint64_t mix(uint64_t k) { return hash(k); }
    /// The table as it is now, for a reader that keeps it beside other
    /// tables (valid until the map changes), and a lookup in such a view.
    const Slot *slots() const { return slots_.data(); }
    size_t mask() const { return mask_; }
    static const V *find_in(const Slot *slots, size_t mask, uint64_t key, uint64_t mixed) {
        if (!slots) return nullptr;
        for (size_t i = mixed & mask;; i = (i + 1) & mask) {
            const Slot &s = slots[i];
            if (s.key == key) return &s.value;
            if (s.key == 0) return nullptr;
        }
    }

private:
    static size_t hash(uint64_t k) {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdULL;
        k ^= k >> 33;
        return static_cast<size_t>(k);
    }
    void grow() { rehash(slots_.empty() ? 16 : slots_.size() * 2); }
    void rehash(size_t n) {
        std::vector<Slot> old;
        old.swap(slots_);
        slots_.assign(n, Slot{0, V{}});
        mask_ = n - 1;
        size_ = 0;
        for (const Slot &s : old)
            if (s.key) {
                auto [v, ins] = emplace(s.key);
                *v = s.value;
            }
    }

    std::vector<Slot> slots_;
    size_t mask_ = 0;
    size_t size_ = 0;
};

} // namespace aisid
