// Two ways state is shared between threads, each in one place.
//
// Published<T>: an immutable snapshot that writers replace and readers use
// without a lock on their hot path. A reader keeps the snapshot it got and
// compares one generation counter (an acquire load) before each batch of
// work; only when the counter moved does it take the mutex, for the time of a
// shared_ptr copy. Writers swap the pointer and bump the counter under that
// mutex, so a reader that saw generation G always gets a snapshot at least as
// new as the one G announced. (std::atomic<std::shared_ptr> is a lock in
// libstdc++ 12 too, and would be taken on every read.)
//
// LockGuarded<T>: data that is only reachable with its mutex held, so no code
// path can touch it unlocked: `auto g = x.lock(); g->field = ...;` or
// `x.with([](T &v) { ... })`.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

namespace aisid {

template <class T> class Published {
public:
    using Ptr = std::shared_ptr<const T>;

    explicit Published(Ptr initial = std::make_shared<const T>(), uint64_t first_generation = 1)
        : cur_(std::move(initial)), gen_(first_generation) {}
    Published(const Published &) = delete;
    Published &operator=(const Published &) = delete;

    /// Bumped by every publish; compare it with the one your snapshot came with.
    uint64_t generation() const { return gen_.load(std::memory_order_acquire); }

    /// The current snapshot (takes the mutex for a pointer copy).
    Ptr get() const {
        std::lock_guard lk(mu_);
        return cur_;
    }
    /// The current snapshot and the generation it belongs to, read together.
    Ptr get(uint64_t &generation) const {
        std::lock_guard lk(mu_);
        generation = gen_.load(std::memory_order_relaxed);
        return cur_;
    }

    /// Makes `next` current; returns the snapshot it replaced, so the caller
    /// decides on which thread the old one is freed.
    Ptr publish(Ptr next) {
        std::lock_guard lk(mu_);
        std::swap(cur_, next);
        gen_.fetch_add(1, std::memory_order_release);
        return next;
    }

    /// A reader's cached copy: refresh() is one acquire load unless something
    /// was published since the last refresh.
    class Reader {
    public:
        explicit Reader(const Published &p) : p_(&p) { cur_ = p.get(gen_); }
        /// True when a new snapshot was taken.
        bool refresh() {
            if (p_->generation() == gen_) return false;
            cur_ = p_->get(gen_);
            return true;
        }
        const T &operator*() const { return *cur_; }
        const T *operator->() const { return cur_.get(); }
        const Ptr &ptr() const { return cur_; }
        uint64_t generation() const { return gen_; }

    private:
        const Published *p_;
        Ptr cur_;
        uint64_t gen_ = 0;
    };

private:
    mutable std::mutex mu_;
    Ptr cur_;
    std::atomic<uint64_t> gen_;
};

template <class T, class Mutex = std::mutex> class LockGuarded {
public:
    template <class... A> explicit LockGuarded(A &&...a) : v_(std::forward<A>(a)...) {}
    LockGuarded(const LockGuarded &) = delete;
    LockGuarded &operator=(const LockGuarded &) = delete;

    template <class V> class Guard {
    public:
        Guard(Mutex &m, V &v) : lk_(m), v_(&v) {}
        V *operator->() const { return v_; }
        V &operator*() const { return *v_; }
        std::unique_lock<Mutex> &lock() { return lk_; } // for a condition_variable wait

    private:
        std::unique_lock<Mutex> lk_;
        V *v_;
    };

    Guard<T> lock() { return Guard<T>(mu_, v_); }
    Guard<const T> lock() const { return Guard<const T>(mu_, v_); }
    template <class F> decltype(auto) with(F &&f) {
        std::lock_guard lk(mu_);
        return std::forward<F>(f)(v_);
    }
    template <class F> decltype(auto) with(F &&f) const {
        std::lock_guard lk(mu_);
        return std::forward<F>(f)(static_cast<const T &>(v_));
    }

private:
    mutable Mutex mu_;
    T v_;
};

} // namespace aisid
