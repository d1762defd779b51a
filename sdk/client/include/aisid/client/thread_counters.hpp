// ResolveCounters that every resolution bumps, from many threads at once. A shared
// atomic counter costs a locked instruction per call and, with threads on
// several cores, a cache line passed between them on every call; here each
// thread adds to a slot of its own (a plain load and store) and a reader sums
// the slots. A thread's slot goes back to its counters when the thread ends
// (its counts stay in it), so threads that come and go reuse a few slots.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

namespace aisid::sdk {

template <size_t N> class PerThreadCounters {
public:
    PerThreadCounters() : shared_(std::make_shared<Shared>()), id_(next_id()) {}
    PerThreadCounters(const PerThreadCounters &) = delete;
    PerThreadCounters &operator=(const PerThreadCounters &) = delete;

    /// Adds one to counter i, from this thread.
    void bump(size_t i) {
        std::atomic<uint64_t> &v = slot().v[i];
        v.store(v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); // one writer per slot
    }
    /// Counter i over every thread (each slot as last written; a reader may
    /// miss the increments of the last instants).
    uint64_t sum(size_t i) const {
        std::lock_guard lk(shared_->mu);
        uint64_t t = 0;
        for (const Slot &s : shared_->slots) t += s.v[i].load(std::memory_order_relaxed);
        return t;
    }

private:
    struct alignas(64) Slot {
        std::atomic<uint64_t> v[N] = {};
        std::atomic<bool> taken{false}; // a thread writes to it
    };
    // Outlives the counters while a thread still holds one of its slots.
    struct Shared {
        std::mutex mu;
        std::deque<Slot> slots; // stable addresses
    };
    // A thread's slots, for the few counter sets it uses (one per client,
    // usually): released when the thread ends or the entry is reused.
    struct Held {
        uint64_t id = 0;
        std::shared_ptr<Shared> shared;
        Slot *slot = nullptr;
        void release() {
            if (slot) slot->taken.store(false, std::memory_order_release); // the counts stay in it
            slot = nullptr;
            shared.reset();
            id = 0;
        }
    };
    static constexpr unsigned kHeld = 4;
    struct ThreadHeld {
        Held h[kHeld];
        unsigned next = 0;
        ~ThreadHeld() {
            for (Held &x : h) x.release();
        }
    };

    static uint64_t next_id() {
        static std::atomic<uint64_t> n{1};
        return n.fetch_add(1, std::memory_order_relaxed);
    }

    Slot &slot() {
        thread_local ThreadHeld t;
        for (Held &x : t.h)
            if (x.id == id_) return *x.slot;
        return take(t);
    }

    Slot &take(ThreadHeld &t) {
        Held &x = t.h[t.next++ % kHeld];
        x.release();
        std::lock_guard lk(shared_->mu);
        Slot *s = nullptr;
        for (Slot &c : shared_->slots)
            if (!c.taken.load(std::memory_order_acquire)) { // acquire: the last owner's counts
                s = &c;
                break;
            }
        if (!s) s = &shared_->slots.emplace_back();
        s->taken.store(true, std::memory_order_relaxed);
        x.id = id_;
        x.shared = shared_;
        x.slot = s;
        return *s;
    }

    std::shared_ptr<Shared> shared_;
    const uint64_t id_;
};

} // namespace aisid::sdk
