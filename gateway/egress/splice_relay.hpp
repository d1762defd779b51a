// Byte relay between two connected TCP sockets through kernel pipes (splice(2)):
// the payload never enters user space.
#pragma once

#include <cstdint>

namespace aisid::gw {

struct RelayResult {
    uint64_t up = 0;   ///< bytes a → b
    uint64_t down = 0; ///< bytes b → a
    int error = 0;     ///< errno of the first failure (0: both sides closed cleanly)
};

/// Relays until both directions reached EOF (each EOF is passed on as a
/// shutdown(SHUT_WR) of the other side) or one side failed. Does not close the
/// fds. Safe to run in many threads at once. The process must ignore SIGPIPE
/// (splice(2) has no MSG_NOSIGNAL; a vanished peer then shows as EPIPE).
RelayResult splice_relay(int a, int b);

} // namespace aisid::gw
