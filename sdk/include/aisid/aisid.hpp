// aisid.hpp — the aisid C++ API (SPEC §5): RAII types in namespace aisid over
// the same core as the C API (<aisid/aisid.h>). Errors are values: calls
// return an Outcome<T> holding either the value or a Status.
#pragma once

#include "aisid/address.hpp"
#include "aisid/aisid.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unistd.h>
#include <utility>
#include <variant>
#include <vector>

namespace aisid {

/// The status of a call (the C API's aisid_status_t).
enum class Status : int {
    ok = AISID_OK,
    not_found = AISID_ENOTFOUND,
    no_data = AISID_ENODATA,
    invalid = AISID_EINVAL,
    no_memory = AISID_ENOMEM,
    zone = AISID_EZONE,
    timeout = AISID_ETIMEOUT,
    servfail = AISID_ESERVFAIL,
    network = AISID_ENETWORK,
    connect = AISID_ECONNECT,
    again = AISID_EAGAIN,
    cancelled = AISID_ECANCELLED,
    system = AISID_ESYSTEM,
};

/// A static description of a status.
inline const char *to_string(Status s) { return aisid_strerror(static_cast<aisid_status_t>(s)); }
/// Details of this thread's last error (e.g. "FILE:LINE: why" for zone files).
inline std::string last_error() { return aisid_last_error(); }

/// A value or the Status saying why there is none.
template <class T> class Outcome {
public:
    /// A value.
    Outcome(T v) : v_(std::in_place_index<0>, std::move(v)) {}
    /// No value, and why.
    Outcome(Status s) : v_(std::in_place_index<1>, s) {}
    /// True when it holds a value.
    bool ok() const { return v_.index() == 0; }
    /// ok().
    explicit operator bool() const { return ok(); }
    /// The value; only when ok().
    T &value() & { return std::get<0>(v_); }
    const T &value() const & { return std::get<0>(v_); }
    T &&value() && { return std::get<0>(std::move(v_)); }
    /// Member access to the value; only when ok().
    T *operator->() { return &value(); }
    /// Member access to the value; only when ok().
    const T *operator->() const { return &value(); }
    /// The value; only when ok().
    T &operator*() & { return value(); }
    /// Status::ok, or why there is no value.
    Status status() const { return ok() ? Status::ok : std::get<1>(v_); }

private:
    std::variant<T, Status> v_;
};

/// Where an answer came from.
enum class Source { aisid = AISID_SOURCE_AISID, legacy = AISID_SOURCE_LEGACY };

/// A legacy endpoint of a service (its SVCB record, RFC 9460).
struct Fallback {
    std::string target;  ///< host name, trailing dot
    uint16_t port = 0;   ///< 0: the application's port
};

/// Which rule of SPEC §2 decided a name (the C API's aisid_rule_t).
enum class Rule {
    none = AISID_RULE_NONE,               ///< no local zone: legacy DNS, or a literal address
    records = AISID_RULE_RECORDS,         ///< rule 1: the records at the name
    service = AISID_RULE_SERVICE,         ///< rule 1: a registered service's name
    synthesized = AISID_RULE_SYNTHESIZED, ///< rule 2: built from the codebook
    nxdomain = AISID_RULE_NXDOMAIN,       ///< rule 3: no such name inside a local zone
    reverse = AISID_RULE_REVERSE,         ///< an AISID address and its service name
};

/// An SVCB record of a service, as the zone holds it (RFC 9460).
struct Svcb {
    uint16_t priority = 0; ///< 0: AliasMode
    std::string target;    ///< host name, trailing dot; "." is the owner name itself
    uint16_t port = 0;     ///< 0: none given
};

/// The canonical text of a domain name ("www.example."), or Status::invalid.
inline Outcome<std::string> canonical_name(const std::string &name) {
    char buf[AISID_NAME_TEXT_MAX];
    aisid_status_t s = aisid_name_canonical(name.c_str(), buf, sizeof buf);
    if (s != AISID_OK) return static_cast<Status>(s);
    return std::string(buf);
}

/// A resolution result (owns an aisid_result_t).
class Answer {
public:
    /// Takes ownership of a C result.
    explicit Answer(aisid_result_t *r) : r_(r) {}
    /// Moves the result; the source is left empty.
    Answer(Answer &&o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    /// Swaps results (the old one is freed with the source).
    Answer &operator=(Answer &&o) noexcept {
        std::swap(r_, o.r_);
        return *this;
    }
    Answer(const Answer &) = delete;
    Answer &operator=(const Answer &) = delete;
    /// Frees the result.
    ~Answer() { aisid_result_free(r_); }

    /// Local AISID zone data or legacy DNS.
    Source source() const { return static_cast<Source>(aisid_result_source(r_)); }
    /// True when the answer came from AISID zone data (no packet sent).
    bool is_aisid() const { return aisid_result_is_aisid(r_) != 0; }
    /// The canonical name, trailing dot.
    std::string_view name() const { return aisid_result_name(r_); }
    /// TTL in seconds (time left for cached legacy answers).
    uint32_t ttl() const { return aisid_result_ttl(r_); }
    /// Number of addresses.
    size_t size() const { return aisid_result_count(r_); }
    /// Address i (IPv4 answers as ::ffff:a.b.c.d).
    in6_addr address(size_t i) const {
        in6_addr a{};
        aisid_result_address(r_, i, &a);
        return a;
    }
    /// Every address.
    std::vector<in6_addr> addresses() const {
        std::vector<in6_addr> v(size());
        for (size_t i = 0; i < v.size(); ++i) v[i] = address(i);
        return v;
    }
    /// The AISID with its decoded fields, when the first address lies in a loaded AISID prefix.
    std::optional<Aisid> aisid() const {
        aisid_fields_t f;
        if (aisid_result_fields(r_, &f) != 0) return std::nullopt;
        return Aisid::make(f.prefix, f.object, f.function, f.method, f.performance);
    }
    /// The codebook term of a field; empty for 0 (any) or an unknown code.
    std::string_view term(Dim d) const {
        const char *t = aisid_result_term(r_, static_cast<aisid_dim_t>(d));
        return t ? t : std::string_view();
    }
    /// The AISID domain that answered; empty for legacy answers.
    std::string_view zone() const {
        const char *z = aisid_result_zone(r_);
        return z ? z : std::string_view();
    }
    /// The service's legacy endpoints, in SVCB priority order.
    std::vector<Fallback> fallbacks() const {
        std::vector<Fallback> v;
        for (size_t i = 0, n = aisid_result_fallback_count(r_); i < n; ++i) {
            const char *t = nullptr;
            uint16_t p = 0;
            aisid_result_fallback(r_, i, &t, &p);
            v.push_back({t, p});
        }
        return v;
    }
    /// Which rule decided (SPEC §2).
    Rule rule() const { return static_cast<Rule>(aisid_result_rule(r_)); }
    /// The local zone that decided, AISID domain or not; empty when legacy DNS answered.
    std::string_view local_zone() const {
        const char *z = aisid_result_local_zone(r_);
        return z ? z : std::string_view();
    }
    /// The file that zone was read from; empty if none.
    std::string_view zone_file() const {
        const char *f = aisid_result_zone_file(r_);
        return f ? f : std::string_view();
    }
    /// How that zone's data was verified before aisidd wrote it (key, value),
    /// in order; empty when it carries no verification.
    std::vector<std::pair<std::string, std::string>> verification() const {
        std::vector<std::pair<std::string, std::string>> v;
        for (size_t i = 0, n = aisid_result_verification_count(r_); i < n; ++i) {
            const char *k = nullptr, *val = nullptr;
            aisid_result_verification(r_, i, &k, &val);
            v.emplace_back(k, val);
        }
        return v;
    }
    /// The service's SVCB records in zone order (AliasMode included).
    std::vector<Svcb> svcb() const {
        std::vector<Svcb> v;
        for (size_t i = 0, n = aisid_result_svcb_count(r_); i < n; ++i) {
            Svcb s;
            const char *t = nullptr;
            aisid_result_svcb(r_, i, &s.priority, &t, &s.port);
            s.target = t;
            v.push_back(std::move(s));
        }
        return v;
    }
    /// The C handle (still owned by this object).
    const aisid_result_t *get() const { return r_; }

private:
    aisid_result_t *r_;
};

/// What Client::explain found: the status, and the answer whenever the query
/// was a name or an address (also when the status is an error: the answer
/// then says which rule and zone decided).
struct Explanation {
    Status status = Status::invalid;
    std::optional<Answer> answer;
};

/// A connected TCP socket; closed when destroyed.
class Socket {
public:
    /// No socket.
    Socket() = default;
    /// Takes ownership of a descriptor.
    explicit Socket(int fd) : fd_(fd) {}
    /// Moves the descriptor; the source is left empty.
    Socket(Socket &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    /// Swaps descriptors (the old one is closed with the source).
    Socket &operator=(Socket &&o) noexcept {
        std::swap(fd_, o.fd_);
        return *this;
    }
    Socket(const Socket &) = delete;
    Socket &operator=(const Socket &) = delete;
    /// Closes the descriptor, if any.
    ~Socket() {
        if (fd_ >= 0) ::close(fd_);
    }
    /// The descriptor (still owned).
    int fd() const { return fd_; }
    /// Gives up ownership of the descriptor.
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_ = -1;
};

/// Which path a connection took and why.
using ConnectInfo = aisid_connect_info_t;
/// The client's counters.
using Counters = aisid_counters_t;

/// A client: zone data, legacy DNS, connect. Shared by many threads; move-only.
class Client {
public:
    /// Options for create().
    struct Options {
        bool host_zones = true;  ///< load /etc/aisid/zones and /var/lib/aisid/zones
        bool watch = true;       ///< pick up zone file changes by themselves
    };
    /// A client with the host defaults (SPEC §5).
    static Outcome<Client> create() { return create(Options{}); }
    /// A client with options.
    static Outcome<Client> create(const Options &o) {
        unsigned flags = (o.host_zones ? 0u : AISID_CLIENT_NO_HOST_ZONES) | (o.watch ? 0u : AISID_CLIENT_NO_WATCH);
        aisid_client_t *c = nullptr;
        aisid_status_t s = aisid_client_new_flags(&c, flags);
        if (s != AISID_OK) return static_cast<Status>(s);
        return Client(c);
    }
    /// Moves the client; the source is left empty.
    Client(Client &&o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    /// Swaps clients (the old one is freed with the source).
    Client &operator=(Client &&o) noexcept {
        std::swap(c_, o.c_);
        return *this;
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    /// Frees the client (pending asynchronous queries are cancelled).
    ~Client() { aisid_client_free(c_); }

    /// Adds a zone file (replacing a zone of the same origin); watched for changes.
    Status add_zone_file(const std::string &path) { return st(aisid_client_add_zone_file(c_, path.c_str())); }
    /// Legacy upstreams "ADDR[:PORT],..." instead of resolv.conf.
    Status set_upstreams(const std::string &csv) { return st(aisid_client_set_upstreams(c_, csv.c_str())); }
    /// The RFC 8305 §5 connection attempt delay (default 250 ms).
    Status set_attempt_delay(std::chrono::milliseconds d) {
        return st(aisid_client_set_attempt_delay(c_, static_cast<int>(d.count())));
    }
    /// How long a blocking legacy lookup may take (default 5 s).
    Status set_legacy_timeout(std::chrono::milliseconds d) {
        return st(aisid_client_set_legacy_timeout(c_, static_cast<int>(d.count())));
    }
    /// Re-reads the zone files now.
    Status reload() { return st(aisid_client_reload(c_)); }
    /// The generation of the zone data in use.
    uint64_t zone_generation() const { return aisid_client_zone_generation(c_); }
    /// Forgets learned network reachability and the legacy cache.
    void forget() { aisid_client_forget(c_); }

    /// Resolves a name (AISID names in process; legacy names through c-ares, blocking).
    Outcome<Answer> resolve(const std::string &name) {
        aisid_result_t *r = nullptr;
        aisid_status_t s = aisid_resolve(c_, name.c_str(), &r);
        if (s != AISID_OK) return static_cast<Status>(s);
        return Answer(r);
    }

    /// Resolves as resolve() does and says why (aisid_explain): an address is
    /// looked up in reverse, and a failure still comes with an answer.
    Explanation explain(const std::string &query) {
        aisid_result_t *r = nullptr;
        Explanation e;
        e.status = static_cast<Status>(aisid_explain(c_, query.c_str(), &r));
        if (r) e.answer.emplace(r);
        return e;
    }

    /// Connects (AISID first, SVCB fallback; Happy Eyeballs for legacy names).
    Outcome<Socket> connect(const std::string &name, uint16_t port,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30), ConnectInfo *info = nullptr) {
        aisid_status_t s = AISID_OK;
        int fd = aisid_connect_ex(c_, name.c_str(), port, static_cast<int>(timeout.count()), &s, info);
        if (fd < 0) return static_cast<Status>(s);
        return Socket(fd);
    }

    /// Starts an asynchronous resolution; `f(Outcome<Answer>)` runs at once or from process().
    template <class F> Status resolve_async(const std::string &name, F f) {
        auto *heap = new F(std::move(f));
        aisid_status_t s = aisid_resolve_async(
            c_, name.c_str(),
            [](void *arg, aisid_status_t st, aisid_result_t *r) {
                F *fn = static_cast<F *>(arg);
                if (st == AISID_OK) (*fn)(Outcome<Answer>(Answer(r)));
                else (*fn)(Outcome<Answer>(static_cast<Status>(st)));
                delete fn;
            },
            heap);
        if (s != AISID_OK) delete heap;
        return static_cast<Status>(s);
    }
    /// The descriptors to poll for pending asynchronous queries.
    std::vector<pollfd> async_fds() {
        std::vector<pollfd> v(16);
        v.resize(aisid_async_fds(c_, v.data(), v.size()));
        return v;
    }
    /// Milliseconds until process() is due; -1 when nothing is pending.
    int async_timeout() { return aisid_async_timeout(c_); }
    /// Handles I/O and timeouts after poll().
    void process(const std::vector<pollfd> &fds) { aisid_async_process(c_, fds.data(), fds.size()); }
    /// Pending asynchronous queries.
    size_t async_pending() { return aisid_async_pending(c_); }
    /// Cancels them (callbacks get Status::cancelled).
    void cancel() { aisid_async_cancel(c_); }

    /// The client's counters.
    Counters counters() const {
        Counters k{};
        aisid_client_counters(c_, &k, sizeof k);
        return k;
    }
    /// The C handle (still owned by this object).
    aisid_client_t *get() const { return c_; }

private:
    explicit Client(aisid_client_t *c) : c_(c) {}
    static Status st(aisid_status_t s) { return static_cast<Status>(s); }
    aisid_client_t *c_;
};

} // namespace aisid
