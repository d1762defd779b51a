// Questions in flight across all workers, for cross-worker de-duplication
// (Forwarder): the first worker to miss a question asks upstream, the others
// wait for its answer. Sharded by key, a mutex each; touched only on misses.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace aisid::resolver {

class InflightRegistry {
public:
    static constexpr unsigned kMaxWorkers = 64;
    /// True: `worker` asks upstream for `key`. False: another worker is asking;
    /// `worker` is noted to get the answer (shared_answer).
    bool claim(std::string_view key, unsigned worker);
    /// The owner is done: the workers waiting for its answer (a bit each).
    uint64_t release(std::string_view key, unsigned worker);
    /// A waiter stopped waiting (it asks upstream itself now).
    void withdraw(std::string_view key, unsigned worker);
    size_t size() const;

private:
    struct Entry {
        unsigned owner;
        uint64_t waiters;
    };
    struct Shard {
        mutable std::mutex mu;
        std::unordered_map<std::string, Entry> map;
    };
    static constexpr size_t kShards = 16;
    Shard &shard_of(std::string_view key);
    Shard shards_[kShards];
};

} // namespace aisid::resolver
