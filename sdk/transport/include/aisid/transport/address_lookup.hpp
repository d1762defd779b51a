// Host-name lookups (AAAA and A) over encrypted upstreams: what the SDK's
// legacy path runs when aisid_client_set_upstreams() is given tls:// or
// https:// entries. Thread-safe: callers take turns driving
// one pool, so every thread shares its connections.
#pragma once

#include <netinet/in.h>

#include <map>
#include <mutex>

#include "aisid/core/published.hpp"
#include "aisid/transport/transport.hpp"

namespace aisid::transport {

class AddressLookup {
public:
    enum class Status { ok, nxdomain, nodata, servfail, timeout, network, bad_name, cancelled };
    struct Addresses {
        Status status = Status::network;
        std::vector<in6_addr> addrs;  ///< AAAA first, then A as ::ffff:a.b.c.d (SPEC §5)
        uint32_t ttl = 0;             ///< the smallest TTL of the answers, CNAMEs included
        std::string failure;          ///< for timeout/network/servfail: "UPSTREAM: reason"
    };

    /// Splits an SDK upstream list "A,B,...": tls://, https:// (and http://,
    /// which parse_upstream refuses) into `encrypted`, the rest into `plain`
    /// (comma-joined, for c-ares).
    static void split_upstreams(std::string_view csv, std::vector<std::string> &encrypted, std::string &plain);

    static Expected<std::unique_ptr<AddressLookup>, Error> create(const std::vector<std::string> &uris,
                                                                 const Options &opt);

    /// AAAA and A for `name` in parallel, until both answer or `deadline`.
    Addresses resolve(const std::string &name, Clock::time_point deadline);

private:
    explicit AddressLookup(std::unique_ptr<UpstreamPool> p) : pool_(std::move(p)) {}
    LockGuarded<std::unique_ptr<UpstreamPool>> pool_;
};

/// The same lookups for an event loop (the SDK's asynchronous API): the
/// caller polls fds(), calls process() and process_timeouts(). Not
/// thread-safe: the caller serializes (the SDK holds its async mutex).
class AsyncAddressLookup {
public:
    using Done = std::function<void(AddressLookup::Addresses)>;
    static Expected<std::unique_ptr<AsyncAddressLookup>, Error> create(const std::vector<std::string> &uris,
                                                                      const Options &opt);
    ~AsyncAddressLookup();
    /// `done` runs once: from process()/process_timeouts(), from here for a
    /// bad name, or from cancel().
    void resolve(const std::string &name, Done done);
    void fds(std::vector<PollFd> &out) const;
    void process(int fd, short revents);
    int next_timeout_ms() const;
    void process_timeouts();
    size_t pending() const { return lookups_.size(); }
    /// Every pending lookup completes now with Status::cancelled.
    void cancel();

private:
    struct Lookup;
    explicit AsyncAddressLookup(std::unique_ptr<UpstreamPool> p) : pool_(std::move(p)) {}
    void finished(uint64_t id);
    std::unique_ptr<UpstreamPool> pool_;
    std::map<uint64_t, std::shared_ptr<Lookup>> lookups_;
    uint64_t next_id_ = 1;
};

/// Reads an upstream's answer to an A or AAAA query: the RCODE, the answer
/// section's A and AAAA records (A as ::ffff:a.b.c.d, each address once,
/// appended to `addrs`) and the smallest TTL over its A, AAAA and CNAME
/// records (RFC 2181 §5.2), lowered into `ttl` (-1: none yet). False when the
/// message is malformed; then the outputs are partial and must be ignored.
bool read_answer(std::span<const uint8_t> wire, int &rcode, std::vector<in6_addr> &addrs, int64_t &ttl);

/// A query for `name` (dotted text, trailing dot optional) and `qtype`, RD set.
Expected<std::vector<uint8_t>, std::string> build_query(std::string_view name, uint16_t qtype, uint16_t id);

} // namespace aisid::transport
