// The query-handling core: bytes in, a verdict and bytes out. No sockets, no
// clock reads (the caller passes `now_ms`), so unit tests and the fuzzer drive
// it directly. Stage order, in one place (handle()):
//   parse → access control → opcode/transfer dispatch (authority hook)
//   → local zones (authoritative, never forwarded) → cache → Pass (forward).
// Forwarding decisions live in forwarder.hpp and the I/O in the worker; both
// come back here with the upstream's answer (answer_from_upstream) or its
// failure (answer_failure).
#pragma once

#include "aisid/resolver/cache.hpp"
#include "aisid/core/socket_address.hpp"
#include "aisid/resolver/query_wire.hpp"
#include "aisid/core/zone_set.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace aisid::resolver {

enum class Verdict : uint8_t {
    Answered,  // out holds the reply
    Pass,      // not ours to answer here: forward (or to the authority hook)
    Drop,      // send nothing
    Fail,      // out holds a SERVFAIL
};

// What happened to a query, for metrics (aisidd_queries_total{outcome=...}).
enum class Outcome : uint8_t {
    aisid,           // answered from a local zone (data or NODATA)
    aisid_nxdomain,  // NXDOMAIN inside a local zone
    cache_hit,
    forwarded,       // answered from an upstream
    stale,           // RFC 8767 stale answer
    servfail,
    refused,
    formerr,
    notimp,
    authority,       // handed to the authority hook
    dropped,
    count_
};
const char *outcome_name(Outcome o);

struct CoreResult {
    Verdict verdict = Verdict::Drop;
    Outcome outcome = Outcome::dropped;
    size_t len = 0;
    bool to_authority = false;  // with Pass: for the authority hook, not the upstreams
    // A synthesized answer (SPEC §2 rule 2): the service it resolves to, as the
    // AISID less its performance field, so rate limiting counts every name
    // of one service in one bucket (BIND's RRL keys wildcard answers so).
    bool synthesized = false;
    // A cache hit in the last tenth of the answer's life: refresh it now
    // (Forwarder::prefetch), the client has its answer already.
    bool prefetch = false;
    // A local CNAME chain that leaves our zones. With Verdict::Pass: the
    // target is not cached; `out` holds the chain, and the worker forwards the
    // target's question (cname_target_query) with the chain as the reply's start.
    bool cname_out = false;
    uint8_t service_key[14]{};
};

struct CoreSettings {
    std::vector<Cidr> allow;          // besides loopback
    std::vector<Cidr> deny;           // loopback clients refused anyway
    uint32_t stale_seconds = 86400;   // how long after expiry an answer may be served stale
    uint32_t stale_answer_ttl = 30;   // RFC 8767 §4: TTL of a stale answer
    uint32_t max_ttl = 86400;         // cap for positive answers
    uint32_t max_negative_ttl = 10800;  // RFC 2308 §5: three hours
    bool has_authority = false;       // an AuthorityHook is installed
    std::string version;              // CH TXT version.bind; empty: refused (--hide-version)
    std::string identity;             // CH TXT id.server / hostname.bind; empty: refused
};

inline constexpr uint16_t kEdnsPayload = 1232;  // what we advertise (DNS flag day 2020)
// Answers that live shorter than this are not prefetched: a short TTL asks to
// be re-asked, and refreshing it early would only add upstream queries.
inline constexpr uint64_t kPrefetchMinLifeMs = 10000;

class QueryCore {
public:
    QueryCore(Cache &cache, const CoreSettings &settings) : cache_(cache), s_(&settings) {}
    void set_zones(const ZoneSet *z) { zones_ = z; }
    void set_settings(const CoreSettings *s) { s_ = s; }

    /// Handles a client message. `q` is filled for Pass (the worker keeps it
    /// with a copy of `msg` to finish the query later).
    CoreResult handle(const uint8_t *msg, size_t len, const sockaddr_storage &peer, bool tcp, uint64_t now_ms,
                  uint8_t *out, size_t cap, Query &q);

    /// The query to send upstream for `q` (client message `msg`) with our ID.
    size_t upstream_query(const Query &q, const uint8_t *msg, uint16_t id, uint8_t *out, size_t cap) const;

    enum class Check { ok, ignore, truncated, failed };
    /// Is `resp` the answer to the query we sent (ID, QR, question)? `ignore`:
    /// not ours, keep waiting; `failed`: this upstream failed (SERVFAIL, malformed);
    /// `truncated`: retry over TCP (over TCP itself it is a failure).
    static Check check_upstream(const Query &q, uint16_t id, const uint8_t *resp, size_t n);
    /// Caches an accepted upstream answer and writes the client's reply.
    CoreResult answer_from_upstream(const Query &q, const uint8_t *msg, const uint8_t *resp, size_t n, bool tcp,
                                uint64_t now_ms, uint8_t *out, size_t cap);
    /// What the cache holds for `q`, fresh or stale (RFC 8767); Verdict::Drop when nothing.
    CoreResult answer_cached(const Query &q, const uint8_t *msg, bool tcp, uint64_t now_ms, uint8_t *out, size_t cap);
    /// Every upstream failed: a stale answer (RFC 8767) or SERVFAIL.
    CoreResult answer_failure(const Query &q, const uint8_t *msg, bool tcp, uint64_t now_ms, uint8_t *out,
                          size_t cap);

    /// Largest reply for this client: 65535 over TCP, else its EDNS size within [512, 1232].
    static size_t reply_limit(const Query &q, bool tcp);

private:
    bool allowed(const sockaddr_storage &peer) const;
    CoreResult finish_cname(const Query &q, bool tcp, uint64_t now_ms, uint8_t *out, size_t cap, const CoreResult &local_answer);
    CoreResult local(const Query &q, const uint8_t *msg, bool tcp, uint8_t *out, size_t cap);
    CoreResult chaos(const Query &q, const uint8_t *msg, uint8_t *out, size_t cap) const;
    size_t serve_entry(const CacheEntry &e, const Query &q, const uint8_t *msg, bool tcp, uint64_t now_ms,
                       bool stale, uint8_t *out, size_t cap) const;

    Cache &cache_;
    const CoreSettings *s_;
    const ZoneSet *zones_ = nullptr;
};

/// For a local answer `prefix` whose CNAME chain leaves our zones: the query
/// for the chain's target, as the client would have asked it (message and parse).
bool cname_target_query(const Query &q, const uint8_t *prefix, size_t plen, Query &tq, std::string &tmsg);
/// The client's reply: the chain `prefix`, then the answer records of `tail`
/// (the target's reply; its authority records when it has no answer), with
/// tail's rcode, AA and AD off; TC when it does not fit. 0 on malformed input.
size_t splice_cname(const Query &q, bool tcp, const uint8_t *prefix, size_t plen, const uint8_t *tail, size_t tlen,
                    uint8_t *out, size_t cap);

/// A minimal reply (header, the question when known, OPT when the client sent one).
size_t write_error(const Query &q, const uint8_t *msg, bool with_question, uint8_t rcode, uint8_t *out,
                   size_t cap);

/// The answer of a local zone (SPEC §2: explicit, synthesized, reverse PTR,
/// NXDOMAIN/NODATA with the SOA) exactly as handle() gives it; Verdict::Drop
/// when the name is in no local zone. The authority side answers TSIG-signed
/// queries with it and signs the result (one answering path for both).
CoreResult answer_local(const ZoneSet &zones, const Query &q, const uint8_t *msg, bool tcp, uint8_t *out, size_t cap);

} // namespace aisid::resolver
