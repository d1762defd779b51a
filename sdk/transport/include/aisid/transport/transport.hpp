// Encrypted DNS upstreams for aisidd and the SDK: DNS over TLS (RFC 7858,
// RFC 8310 strict profile) and DNS over HTTPS (RFC 8484), behind one
// asynchronous, event-loop-friendly interface in the style of c-ares and
// libunbound. The caller submits a query (DNS wire bytes, its own ID) with a
// callback, polls the descriptors that fds() lists, hands readiness to
// process() and calls process_timeouts() when next_timeout_ms() expires.
// query_blocking() does all of that for a caller without an event loop.
//
// Nothing here speaks clear-text DNS: plain UDP/TCP upstreams stay with the
// resolver's worker and c-ares. A failure is a value (Error) with a reason a
// caller can log and show; the caller decides what to fail over to next.
//
// Not thread-safe: one UpstreamPool per thread (aisidd: one per worker).
#pragma once

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aisid/core/expected.hpp"

namespace aisid::transport {

using Clock = std::chrono::steady_clock;

/// Why an upstream failed. Callers map these to exit codes and log levels:
/// tls_verify is an authentication refusal (SPEC §4 exit code 4), the others
/// are network/upstream failures (exit code 3).
enum class ErrorKind {
    bad_uri,     ///< the upstream URI does not parse
    bad_query,   ///< the query given is not a DNS message we can send
    connect,     ///< TCP connect failed (refused, unreachable)
    tls_verify,  ///< certificate untrusted, expired, or name/IP mismatch
    tls,         ///< TLS handshake or record failure (alerts included)
    timeout,     ///< no connection / handshake / answer in time
    closed,      ///< the server closed the connection with queries pending
    http,        ///< DoH: HTTP status not 200, wrong content type, not HTTP/2
    bad_answer,  ///< the answer is not a DNS message for our question
    all_failed,  ///< pool: every upstream failed (reasons joined)
};
const char *error_kind_name(ErrorKind k);

struct Error {
    ErrorKind kind = ErrorKind::bad_uri;
    std::string upstream;  ///< the URI as configured (empty: not about one)
    std::string reason;    ///< e.g. "certificate verification failed: hostname mismatch"
    /// "UPSTREAM: REASON", what a log line or `aisid-lookup --server` shows.
    std::string text() const;
};

struct UpstreamAnswer {
    std::vector<uint8_t> wire;  ///< the DNS answer, carrying the caller's query ID
    std::string upstream;       ///< which upstream answered (its URI)
    /// DoT: the connection that carried the answer resumed a TLS session.
    bool resumed = false;
    /// DoH: the HTTP freshness lifetime (Cache-Control max-age minus Age), in
    /// seconds, or -1 when the response had none. RFC 8484 §5.1: the answer's
    /// TTLs are already capped at it (Options::doh_cap_ttl), so a cache that
    /// honours the TTLs honours HTTP freshness too.
    int64_t http_max_age = -1;
};

using UpstreamResult = Expected<UpstreamAnswer, Error>;
using Callback = std::function<void(UpstreamResult)>;

struct Options {
    std::string ca_file;              ///< PEM bundle to trust; empty: the system store
    uint32_t timeout_ms = 3000;       ///< per try: connect + handshake + answer
    uint32_t idle_timeout_ms = 10000; ///< RFC 7858 §3.4: close an idle DoT connection
    bool padding = true;              ///< RFC 7830 padding, RFC 8467 §4.1 128-byte blocks
    bool require_h2 = true;           ///< RFC 8484 §5.2: refuse DoH over HTTP/1.x
    bool doh_cap_ttl = true;          ///< cap answer TTLs at the HTTP max-age
    uint32_t backoff_ms = 5000;       ///< pool: a failed upstream is tried last this long
    /// DoH bootstrap, curl's CURLOPT_RESOLVE syntax "HOST:PORT:ADDR": the
    /// address of a DoH host name without asking DNS (which may be us).
    std::vector<std::string> resolve;
};

/// A parsed encrypted upstream (SPEC §4 `--upstream`).
struct UpstreamEndpoint {
    enum class Kind { dot, doh } kind = Kind::dot;
    std::string uri;        ///< as given
    std::string host;       ///< DoT: the address literal; DoH: the URL host
    uint16_t port = 853;
    std::string auth_name;  ///< DoT: #NAME (what the certificate must name); empty: ADDR
    std::string url;        ///< DoH: the full https:// URL
};

/// True for the URI schemes this library serves (tls://, https://).
bool is_encrypted_uri(std::string_view uri);
/// `tls://ADDR[:PORT][#NAME]` (ADDR an IPv4 or [IPv6] literal, port 853 by
/// default) or `https://HOST[:PORT]/PATH`. Anything else, including http://,
/// is an error: there is no clear-text fallback.
Expected<UpstreamEndpoint, Error> parse_upstream(std::string_view uri);

struct Stats {
    uint64_t queries = 0;      ///< submitted
    uint64_t answers = 0;      ///< answered
    uint64_t failures = 0;     ///< failed (each query once)
    uint64_t connections = 0;  ///< TCP connections opened
    uint64_t handshakes = 0;   ///< TLS handshakes completed
    uint64_t resumed = 0;      ///< of which resumed a session (DoT; DoH: not reported by curl)
};

struct PollFd {
    int fd;
    short events;  ///< POLLIN / POLLOUT
};

/// One encrypted upstream. Submitting never blocks; callbacks run from
/// submit(), process() or process_timeouts(), after the upstream's own state
/// is consistent (a callback may submit again).
class Upstream {
public:
    virtual ~Upstream() = default;
    virtual const std::string &uri() const = 0;
    virtual void submit(std::span<const uint8_t> query, Callback cb) = 0;
    virtual void fds(std::vector<PollFd> &out) const = 0;
    virtual void process(int fd, short revents) = 0;
    virtual std::optional<Clock::time_point> next_deadline() const = 0;
    virtual void process_timeouts(Clock::time_point now) = 0;
    virtual size_t in_flight() const = 0;
    virtual const Stats &stats() const = 0;
};

Expected<std::unique_ptr<Upstream>, Error> make_upstream(const UpstreamEndpoint &ep, const Options &opt);

/// A list of encrypted upstreams tried in order with failover: a query that
/// fails on one upstream is sent to the next; an upstream that failed goes to
/// the back of the order for Options::backoff_ms. When all fail, the callback
/// gets ErrorKind::all_failed with every upstream's reason.
class UpstreamPool {
public:
    static Expected<std::unique_ptr<UpstreamPool>, Error> create(const std::vector<std::string> &uris,
                                                                 const Options &opt);
    ~UpstreamPool();

    void submit(std::span<const uint8_t> query, Callback cb);
    /// The descriptors to poll, with the events each waits for.
    std::vector<PollFd> fds() const;
    void process(int fd, short revents);
    /// Milliseconds until process_timeouts() is due; -1: nothing pending.
    int next_timeout_ms() const;
    void process_timeouts();
    /// Submits and drives the pool until the answer or the final failure.
    UpstreamResult query_blocking(std::span<const uint8_t> query);

    size_t size() const;
    Upstream &upstream(size_t i);
    /// The last failure of upstream i (empty when its last try succeeded).
    const std::optional<Error> &last_error(size_t i) const;

private:
    struct Impl;
    explicit UpstreamPool(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// --- DNS wire helpers (bounds-checked; exposed for tests and callers) -----

/// RFC 7830 / RFC 8467 §4.1: the query with an EDNS(0) Padding option so its
/// length is a multiple of `block`. Adds an OPT RR when the query has none
/// (`added_opt` tells the caller to strip it from the answer, RFC 6891 §7).
/// A query with a Padding option already, or signed (TSIG/SIG(0)), is
/// returned unchanged.
Expected<std::vector<uint8_t>, std::string> pad_query(std::span<const uint8_t> q, size_t block,
                                                      bool &added_opt);
/// Removes the OPT RR from a response's additional section (in place). False,
/// and the message untouched, when it is malformed or has an OPT elsewhere or
/// twice (RFC 6891 §6.1.1).
bool strip_opt(std::vector<uint8_t> &wire);
/// Caps every TTL (but that of the OPT pseudo-RR in the additional section,
/// which holds flags) at `cap` seconds, in place.
bool cap_ttls(std::vector<uint8_t> &wire, uint32_t cap);
/// The question of `resp` equals the one of `query` (name case-insensitive).
bool same_question(std::span<const uint8_t> query, std::span<const uint8_t> resp);
/// One question, QR clear, within 64 KiB: what we agree to send.
bool check_query(std::span<const uint8_t> q);

} // namespace aisid::transport
