// The one place where the authority side (UPDATE, NOTIFY, AXFR/IXFR,
// secondary zones) plugs into aisidd. The query core recognizes these messages
// (opcode UPDATE/NOTIFY, qtype AXFR/IXFR) and hands them here; without a hook
// they get NOTIMP (opcodes) or REFUSED (transfers).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace aisid::resolver {

// What the authority side knows of a zone it keeps (aisid-control zone-status).
struct AuthorityZoneStatus {
    std::string origin;               // "ai.example."
    std::string role;                 // "primary" (UPDATE, journaled) or "secondary" (pulled)
    std::string source;               // primary: its journal; secondary: the primary's ADDR:PORT
    uint32_t serial = 0;              // the serial it holds now
    bool has_copy = true;             // secondary: false until the first transfer
    int64_t changed_unix = 0;         // primary: last UPDATE; secondary: last good refresh (0: none yet)
    int64_t next_refresh_unix = 0;    // secondary: when it asks the primary next
    unsigned failures = 0;            // secondary: refreshes failed in a row
    std::string last_error;           // secondary: why the last one failed
    size_t pending_compaction = 0;    // primary: changes not yet written to the zone file
};

struct AuthorityHook {
    /// One message of a batch and, after handle_batch, its replies.
    struct Request {
        const uint8_t *msg = nullptr;
        size_t len = 0;
        sockaddr_storage peer{};
        bool tcp = false;
        std::vector<std::string> replies;
    };
    virtual ~AuthorityHook() = default;
    // May block (fsync, network). Called off the UDP fast path. For TCP (AXFR), may produce several messages.
    virtual void handle(const uint8_t *msg, size_t len, const sockaddr_storage &peer, bool tcp,
                        std::vector<std::string> &replies) = 0;
    /// The messages that arrived together. An authority that syncs a journal
    /// can make their changes durable with one sync (group commit); this one
    /// handles them one by one.
    virtual void handle_batch(std::vector<Request> &reqs) {
        for (Request &r : reqs) handle(r.msg, r.len, r.peer, r.tcp, r.replies);
    }
    /// Appends its Prometheus counters (HELP, TYPE and value lines) to /metrics.
    virtual void append_metrics(std::string &) const {}
    /// The zones it keeps, for aisid-control zone-status; may be called from any thread.
    virtual std::vector<AuthorityZoneStatus> zone_status() const { return {}; }
};

} // namespace aisid::resolver
