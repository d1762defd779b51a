// The one place where the authority side (issue 5: UPDATE, NOTIFY, AXFR/IXFR,
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

struct AuthorityHook {
    virtual ~AuthorityHook() = default;
    // May block (fsync, network). Called off the UDP fast path. For TCP (AXFR), may produce several messages.
    virtual void handle(const uint8_t *msg, size_t len, const sockaddr_storage &peer, bool tcp,
                        std::vector<std::string> &replies) = 0;
    /// Appends its Prometheus counters (HELP, TYPE and value lines) to /metrics.
    virtual void append_metrics(std::string &) const {}
};

} // namespace aisid::resolver
