// The forwarding policy, with no I/O: which upstream is asked, when, over
// what, and what every waiting client is told.
//
// It takes events, each with the time it happened (`now_us`, monotonic):
//   query()          a client query that missed the cache and the local zones
//   prefetch()       a popular cached name close to expiry, to refresh quietly
//   upstream_bytes() one message from the upstream of a try
//   upstream_error() that try's transport failed (refused, reset, TLS, HTTP)
//   shared_answer()  another worker's upstream answer to a question we wait on
//   tick()           time passed (timeouts, the serve-stale client timer)
// and returns actions (take_actions()): send this query to upstream i over
// UDP, TCP or the encrypted transport as try t; cancel try t; reply to this
// client; share this answer with those workers. The worker only executes
// them (worker_upstream.cpp), so every decision here is testable with a fake
// clock and no sockets (tests/resolver/forwarder_test.cpp replays scripts of
// queries, answers and time steps, like Unbound's .rpl tests).
//
// What it owns, per question in flight (one "lookup" per cache key):
//  - the clients waiting for it (the first one asked, the others follow:
//    identical questions share one upstream query);
//  - the tries: upstreams in order from the one that answered last, each try
//    a fresh random ID (RFC 5452 §9.2); a truncated UDP answer is retried over
//    TCP at the same server (RFC 7766 §5); a timeout, refusal, SERVFAIL or
//    malformed answer moves on to the next upstream;
//  - the RFC 8767 §5 client-response timer: when the refresh takes longer
//    than 1.8 s and an expired answer is cached, the clients get the expired
//    answer then, and the refresh goes on (and fills the cache);
//  - upstream health counters (Runtime::upstreams, shared by all workers).
// Across workers, a question is asked upstream once: the first worker to miss
// claims it in the InflightRegistry; others wait for its answer (shared_answer)
// and fall back to asking themselves if it does not come in time.
#pragma once

#include "aisid/resolver/query_core.hpp"
#include "aisid/resolver/runtime.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace aisid::resolver {

// One query counted against the in-flight limits (total and its client's)
// from admission until the client is answered, whichever way.
struct InflightToken {
    Shared *sh = nullptr;
    int32_t slot = -1;
    InflightToken() = default;
    InflightToken(const InflightToken &) = delete;
    InflightToken &operator=(const InflightToken &) = delete;
    InflightToken(InflightToken &&o) noexcept : sh(o.sh), slot(o.slot) { o.sh = nullptr; }
    InflightToken &operator=(InflightToken &&o) noexcept {
        if (this != &o) {
            release();
            sh = o.sh;
            slot = o.slot;
            o.sh = nullptr;
        }
        return *this;
    }
    ~InflightToken() { release(); }
    void release();
};

// Who waits for an answer. Opaque to the forwarder: it hands it back in the
// reply action, and the worker knows what to do with it.
struct ClientRef {
    bool tcp = false;
    int udp_fd = -1;
    std::string ctl;  // a wildcard listener's reply source (IP_PKTINFO)
    sockaddr_storage peer{};
    uint64_t conn_id = 0;
    uint64_t start_ns = 0;  // for the latency histogram
    InflightToken token;
};

enum class UpProto : uint8_t { udp, tcp, encrypted };
const char *proto_name(UpProto p);

struct FwdAction {
    enum class Kind : uint8_t { send, cancel, reply, share };
    Kind kind = Kind::send;
    uint64_t try_id = 0;    // send, cancel
    uint32_t upstream = 0;  // send: index in Runtime::upstreams
    UpProto proto = UpProto::udp;
    std::string bytes;      // send: the query (no TCP length); reply: the answer; share: the upstream answer ("" = failed)
    ClientRef client;       // reply
    Outcome outcome = Outcome::forwarded;  // reply
    std::string key;        // share
    uint64_t workers = 0;   // share: one bit per worker
};

struct ForwarderOptions {
    uint32_t stale_client_timeout_ms = 1800;  // RFC 8767 §5; 0: only after every upstream failed
    size_t max_followers = 1000;              // per question; beyond it a client is answered from the cache or SERVFAIL
    unsigned worker = 0;                      // this worker's index (InflightRegistry)
    // The upstream that answered last, where the next question starts
    // (Shared::preferred_upstream, one for all workers); null: this forwarder's own.
    std::atomic<uint32_t> *preferred = nullptr;
};

class Forwarder {
public:
    /// `rng` gives query IDs (tests pass a deterministic one).
    Forwarder(QueryCore &core, const ForwarderOptions &opts, InflightRegistry *registry,
              std::function<uint16_t()> rng);
    ~Forwarder();
    void set_runtime(const Runtime *rt) { rt_ = rt; }

    void query(const Query &q, std::string msg, ClientRef client, uint64_t now_us);
    /// A local CNAME chain that left our zones (CoreResult::cname_out): `tq`/`tmsg`
    /// ask for its target (cname_target_query); the client's reply is `chain`
    /// (the answer to `orig`) followed by the target's answer (splice_cname).
    void query_cname(const Query &orig, std::string chain, const Query &tq, std::string tmsg, ClientRef client,
                     uint64_t now_us);
    void prefetch(const Query &q, std::string msg, uint64_t now_us);
    void upstream_bytes(uint64_t try_id, const uint8_t *resp, size_t n, uint64_t now_us);
    void upstream_error(uint64_t try_id, uint64_t now_us);
    void shared_answer(std::string_view key, const uint8_t *resp, size_t n, uint64_t now_us);
    void tick(uint64_t now_us);

    /// The earliest time tick() has something to do (UINT64_MAX: none).
    uint64_t next_timer() const;
    /// The actions so far, oldest first; the caller executes them (and may
    /// call back in while doing so: new actions go to the next take).
    std::vector<FwdAction> take_actions() { return std::exchange(actions_, {}); }
    bool has_actions() const { return !actions_.empty(); }
    size_t lookups() const { return lookups_.size(); }
    /// Drops everything in flight without answering (shutdown).
    void clear();

private:
    struct Waiter {
        Query q;
        std::string msg;
        ClientRef client;
        bool answered = false;
        std::string chain;  // a local CNAME chain this answer completes (query_cname)
        Query orig;         // the client's own question, with a chain
    };
    struct Lookup {
        std::string key;
        Query q;          // the question asked upstream (the first client's)
        std::string msg;  // and its message
        std::vector<Waiter> waiters;
        bool remote = false;        // another worker asks; we wait for shared_answer
        bool owner = false;         // we claimed it in the registry
        bool stale_checked = false; // the client-response timer fired
        uint64_t stale_at_us = 0;
        uint64_t deadline_us = 0;
        // The current try.
        uint64_t try_id = 0;
        uint16_t id = 0;
        uint32_t up_index = 0;
        UpProto proto = UpProto::udp;
        unsigned tries = 0;
        uint32_t start_index = 0;
        uint64_t sent_us = 0;
    };

    void start(Lookup &l, uint64_t now_us);
    void send_next(Lookup &l, uint64_t now_us);
    void send_try(Lookup &l, uint32_t up, UpProto proto, uint64_t now_us);
    void cancel_try(Lookup &l);
    void try_failed(Lookup &l, uint64_t now_us);
    void complete(Lookup &l, const uint8_t *resp, size_t n, uint64_t now_us);
    void fail(Lookup &l, uint64_t now_us);
    void serve_stale(Lookup &l, uint64_t now_us);
    bool stale_reply(Waiter &w, uint64_t now_us);
    void reply(ClientRef &&c, const CoreResult &r, const uint8_t *out);
    void answer(Waiter &w, const CoreResult &r);
    void add_waiter(const Query &q, std::string msg, Waiter w, uint64_t now_us);
    void finish(Lookup &l, const uint8_t *resp, size_t n);
    unsigned max_tries() const;
    void note_failure(uint32_t up);
    void note_success(uint32_t up, uint64_t rtt_us);

    QueryCore &core_;
    ForwarderOptions o_;
    InflightRegistry *registry_;
    std::function<uint16_t()> rng_;
    const Runtime *rt_ = nullptr;
    std::unordered_map<std::string, std::unique_ptr<Lookup>> lookups_;  // by cache key
    std::unordered_map<uint64_t, Lookup *> tries_;                      // by try id
    std::vector<FwdAction> actions_;
    uint64_t next_try_ = 1;
    std::unique_ptr<uint8_t[]> out_;  // one reply at a time (64 KiB)
    std::atomic<uint32_t> own_preferred_{0};
};

} // namespace aisid::resolver
