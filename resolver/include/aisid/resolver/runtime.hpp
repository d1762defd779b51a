// What the workers share: the zones, the answer cache, the reloadable settings
// and the metrics.
// Settings are an immutable snapshot swapped on SIGHUP; workers pick up a new
// one when `generation` changes (checked once per batch, no lock on the hot path).
#pragma once

#include "aisid/core/published.hpp"
#include "aisid/resolver/authority_hook.hpp"
#include "aisid/resolver/config.hpp"
#include "aisid/resolver/inflight.hpp"
#include "aisid/resolver/limits.hpp"
#include "aisid/resolver/query_core.hpp"
#include "aisid/resolver/rrl.hpp"
#include "aisid/resolver/served_zones.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace aisid::resolver {

class Worker;

// One upstream's health; updated by every worker with relaxed atomics.
struct UpstreamHealth {
    UpstreamConfig up;
    std::atomic<uint64_t> queries{0}, answers{0}, failures{0};
    std::atomic<uint32_t> consecutive_failures{0};
    std::atomic<uint64_t> rtt_us_ewma{0};
    bool healthy() const { return consecutive_failures.load(std::memory_order_relaxed) < 3; }
};

struct Runtime {
    CoreSettings core;
    std::vector<std::shared_ptr<UpstreamHealth>> upstreams;
    uint32_t timeout_ms = 1500;
    uint32_t tcp_idle_ms = 10000;
    size_t cache_bytes = 64u << 20;  // the shared cache's memory bound
    std::string ca_file;  // --ca-file for DoT/DoH upstreams; empty: the system store
    RrlSettings rrl;      // response rate limiting for UDP replies
    // Limits (config.hpp has the defaults and why).
    size_t tcp_output_limit = 256u << 10;
    uint32_t tcp_connections_per_worker = 512;
    uint32_t tcp_connections_per_client = 64;
    uint32_t max_inflight = 4096;
    uint32_t max_inflight_per_client = 256;
};

// Latency buckets (seconds) of aisidd_query_duration_seconds.
inline constexpr double kLatencyBuckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                             0.01,    0.025,  0.05,    0.1,    0.25,   0.5,    1.0, 2.5};
inline constexpr size_t kNumBuckets = sizeof(kLatencyBuckets) / sizeof(kLatencyBuckets[0]);

// One worker's counters; summed when scraped. alignas keeps workers off each other's cache lines.
struct alignas(64) WorkerStats {
    std::atomic<uint64_t> outcomes[static_cast<size_t>(Outcome::count_)]{};
    std::atomic<uint64_t> latency[kNumBuckets + 1]{};  // the last is +Inf
    std::atomic<uint64_t> latency_sum_ns{0};
    std::atomic<uint64_t> tcp_connections{0};
    std::atomic<uint64_t> rrl_dropped{0}, rrl_slipped{0};  // UDP replies held back by rate limiting
    std::atomic<uint64_t> limit_hits[static_cast<size_t>(Limit::count_)]{};
    std::atomic<uint64_t> inflight{0};  // this worker's queries waiting for an upstream
    void hit(Limit l) { limit_hits[static_cast<size_t>(l)].fetch_add(1, std::memory_order_relaxed); }
    void observe(uint64_t ns) {
        double s = double(ns) / 1e9;
        size_t i = 0;
        while (i < kNumBuckets && s > kLatencyBuckets[i]) ++i;
        latency[i].fetch_add(1, std::memory_order_relaxed);
        latency_sum_ns.fetch_add(ns, std::memory_order_relaxed);
    }
};

struct ZoneInfo {
    std::string origin;
    std::string file;
    uint32_t serial = 0;
    double loaded_unix = 0;
    size_t services = 0;
};

struct Shared {
    ServedZones zones;
    Cache cache{64u << 20};  // one answer cache for every worker (cache.hpp)
    AuthorityHook *authority = nullptr;
    std::unique_ptr<RateLimiter> rrl;  // made before the workers start, never replaced
    std::atomic<bool> stop{false};
    // Shared limits: TCP connections and upstream queries in flight per client
    // (limits.hpp), and upstream queries in flight in all.
    ClientCounters client_conns, client_inflight;
    std::atomic<uint32_t> inflight_total{0};
    std::atomic<uint64_t> authority_dropped{0};  // aisidd_limit_hits_total{limit="authority_queue"}
    // Questions asked upstream right now, by any worker: each is asked once.
    InflightRegistry inflight;
    // Every worker, by index (for handing an upstream answer to the workers
    // waiting on it); filled before the workers start, never changed after.
    std::vector<Worker *> workers;

    // The settings snapshot: workers compare runtime_generation() once per
    // loop turn and take runtime() only when it moved.
    std::shared_ptr<const Runtime> runtime() const { return rt_.get(); }
    uint64_t runtime_generation() const { return rt_.generation(); }
    void set_runtime(std::shared_ptr<const Runtime> r) { rt_.publish(std::move(r)); }
    std::atomic<uint32_t> preferred_upstream{0};

    std::vector<std::unique_ptr<WorkerStats>> stats;
    // More /metrics text (zone verification, mirrors); filled before the
    // metrics server starts, never changed after.
    std::vector<std::function<void(std::string &)>> metric_sources;
    std::atomic<uint64_t> reloads{0}, reload_failures{0};

    std::vector<ZoneInfo> zone_info() const { return *zone_info_.lock(); }
    void set_zone_info(std::vector<ZoneInfo> z) { *zone_info_.lock() = std::move(z); }

private:
    Published<Runtime> rt_{nullptr};
    LockGuarded<std::vector<ZoneInfo>> zone_info_;
};

uint64_t now_ms_monotonic();
uint64_t now_ns_monotonic();

} // namespace aisid::resolver
