// The SDK client behind the C and C++ APIs: zone snapshots, the legacy
// resolver, connect with fallback, and what it learned about the networks.
#pragma once

#include "aisid/client/answer.hpp"
#include "aisid/client/legacy.hpp"
#include "aisid/client/thread_counters.hpp"
#include "aisid/client/zone_watcher.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace aisid::sdk {

struct ResolveCounters {
    // Every resolution bumps one of these: per-thread slots, no shared cache line.
    enum Resolve : size_t { kResolveAisid = 0, kResolveLegacy = 1 };
    PerThreadCounters<2> resolves;
    void count_resolve(bool aisid) { resolves.bump(aisid ? kResolveAisid : kResolveLegacy); }
    std::atomic<uint64_t> connect_aisid_won{0}, connect_fallback_won{0}, connect_legacy{0}, connect_failed{0};
    std::atomic<uint64_t> fb_unreachable{0}, fb_refused{0}, fb_delay{0}, fb_remembered{0}, fb_error{0};
};

/// What a local lookup decided.
enum class Local { Answered, NotLocal, NotFound, NoData, Invalid };

class ClientCore {
public:
    explicit ClientCore(unsigned flags, std::vector<std::string> host_dirs = {});

    ZoneWatcher &zones() { return zones_; }
    LegacyResolver &legacy() { return legacy_; }
    ResolveCounters &counters() { return counters_; }

    /// SPEC §2 from the zone snapshot (or a literal address); no I/O.
    Local resolve_local(const char *name, aisid_result &out);
    /// The whole resolution: local, else legacy DNS (blocking until deadline;
    /// time_point::max() means the legacy timeout from when DNS is asked).
    aisid_status_t resolve(const char *name, aisid_result &out, transport::Clock::time_point deadline);
    /// aisid_explain: resolve, keeping which rule and zone decided, also on
    /// failure; an IPv6 address is looked up in reverse. `filled`: the query
    /// was a name or an address, and `out` is to be given to the caller.
    aisid_status_t explain(const char *query, aisid_result &out, bool &filled);

    void set_attempt_delay_ms(int ms) { attempt_delay_ms_.store(ms); }
    int attempt_delay_ms() const { return attempt_delay_ms_.load(); }

    /// Connect (connect.cpp).
    int connect(const char *name, uint16_t port, int timeout_ms, aisid_connect_info_t &info, aisid_status_t &err);

    // Opportunistic AISID: per attached network (the source address and route
    // the kernel picks toward the prefix), whether AISIDs were reachable.
    enum class NetState { Unknown, Reachable, LegacyOnly };
    NetState network_state(const std::string &key);
    void remember_network(const std::string &key, NetState s);
    void forget_networks();

private:
    ZoneWatcher zones_;
    LegacyResolver legacy_;
    ResolveCounters counters_;
    std::atomic<int> attempt_delay_ms_{250};
    std::mutex net_mu_;
    struct NetEntry {
        NetState state;
        transport::Clock::time_point until;
    };
    std::map<std::string, NetEntry> networks_;
};

/// Fills answer fields (decoded AISID, terms) for an address in a loaded prefix.
/// `known`: the zone that answered, when it may hold the prefix (saves a lookup).
void decode_into(const ZoneSet &zs, const in6_addr &a, aisid_result &out, const Zone *known = nullptr);

} // namespace aisid::sdk
