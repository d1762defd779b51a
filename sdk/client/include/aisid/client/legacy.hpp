// Legacy names through c-ares 1.18 (AAAA and A via ares_getaddrinfo), with a
// cache that respects the answers' TTLs. c-ares 1.18 channels are not
// thread-safe and have no event thread: each blocking lookup runs its own
// short-lived channel; the asynchronous API runs one channel per client that
// the application drives from its event loop (fds + process).
#pragma once

#include "aisid/transport/transport.hpp"
#include "aisid/client/answer.hpp"

#include <ares.h>
#include <poll.h>

#include <atomic>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace aisid::transport {
class AddressLookup;  // DoT/DoH lookups (sdk/transport)
class AsyncAddressLookup;
}

namespace aisid::sdk {


/// A legacy answer: addresses (IPv4 as ::ffff:a.b.c.d), AAAA first as the
/// upstream gave them, and its TTL (the smallest record TTL).
struct LegacyAnswer {
    aisid_status_t status = AISID_OK;
    std::vector<in6_addr> addrs;
    uint32_t ttl = 0;
};

struct LegacyCounters {
    std::atomic<uint64_t> cache_hits{0}, queries{0};
};

/// c-ares library init once per process (ares_library_init is not thread-safe
/// before 1.23 and must run before the first channel).
void ensure_ares_library();

class LegacyResolver {
public:
    LegacyResolver();
    ~LegacyResolver();

    /// Validates and sets "ADDR[:PORT],..." (an empty string: back to resolv.conf).
    /// `tls://ADDR[:PORT][#NAME]` and `https://HOST[:PORT]/PATH` entries are
    /// DoT/DoH upstreams (CA: $AISID_CA_FILE, else the system store), tried
    /// first; plain entries after them. Never resolv.conf when any is given.
    aisid_status_t set_upstreams(const std::string &csv);
    void set_timeout_ms(int ms) {
        timeout_ms_.store(ms);
        std::lock_guard lk(pool_mu_);  // pooled channels carry the old per-try timeout
        ++pool_gen_;
        pool_.clear();
    }
    int timeout_ms() const { return timeout_ms_.load(); }

    /// The cached answer for a name, if fresh.
    bool cached(const std::string &key, LegacyAnswer &out);
    /// Blocking lookup: cache, then c-ares until `deadline`.
    LegacyAnswer resolve(const std::string &name, transport::Clock::time_point deadline);
    void clear_cache();

    // Asynchronous: one channel, serialized by a recursive mutex (callbacks may
    // start new queries).
    using Done = std::function<void(LegacyAnswer &&)>;
    aisid_status_t resolve_async(const std::string &name, Done done);
    size_t async_fds(pollfd *fds, size_t max);
    int async_timeout_ms();
    void async_process(const pollfd *fds, size_t n);
    void async_process_fd(int rfd, int wfd);
    size_t async_pending();
    void async_cancel();

    LegacyCounters counters;

private:
    aisid_status_t async_plain(const std::string &name, Done done);  // c-ares part of resolve_async
    void tls_async_process(const pollfd *fds, size_t n);               // with async_mu_ held

public:

    /// Cache key of a name: lowercase, no trailing dot.
    static std::string key_of(const std::string &name);

private:
    struct ChannelDeleter {
        void operator()(ares_channeldata *c) const { ares_destroy(c); }
    };
    using Channel = std::unique_ptr<ares_channeldata, ChannelDeleter>;
    Channel make_channel(int timeout_ms, aisid_status_t &st);
    // Blocking lookups reuse idle channels (making one reads resolv.conf and
    // opens sockets: most of a cached lookup's cost); each is used by one
    // thread at a time. A change of upstreams empties the pool.
    Channel acquire_channel(aisid_status_t &st, uint64_t &gen);
    void release_channel(Channel c, uint64_t gen);
    std::mutex pool_mu_;
    std::vector<Channel> pool_;
    uint64_t pool_gen_ = 0;
    void store(const std::string &key, const LegacyAnswer &a);

    std::mutex mu_;  // cache, upstreams
    struct Entry {
        LegacyAnswer answer;
        transport::Clock::time_point expires;
    };
    std::unordered_map<std::string, Entry> cache_;
    std::string upstreams_;
    std::shared_ptr<transport::AddressLookup> tls_;  // DoT/DoH upstreams, if any
    std::atomic<int> timeout_ms_{5000};

    std::recursive_mutex async_mu_;
    Channel async_ch_;
    size_t async_pending_ = 0;
    // DoT/DoH for the asynchronous API: the current one, and replaced ones
    // still finishing their lookups (driven until empty).
    std::unique_ptr<transport::AsyncAddressLookup> tls_async_;
    std::vector<std::unique_ptr<transport::AsyncAddressLookup>> tls_async_old_;
    std::vector<int> tls_async_fds_;
    bool async_stale_ = false;  // upstreams changed while queries were in flight
};

} // namespace aisid::sdk
