// The systemd notify protocol (sd_notify(3)) without libsystemd: one datagram
// of "KEY=VALUE\n..." lines to the AF_UNIX socket named by $NOTIFY_SOCKET.
// A path starting with '@' is in the abstract namespace (leading NUL byte).
// Header-only so aisidd (Type=notify in packaging/aisidd.service) can use it
// with one include:
//
//     #include "sd_notify.hpp"
//     aisid::sd_notify("READY=1");              // listeners open, zones loaded
//     aisid::sd_notify("RELOADING=1");          // optional, around a SIGHUP reload
//     aisid::sd_notify("READY=1\nSTATUS=...");  // ...and after it
//     aisid::sd_notify("STOPPING=1");           // optional, on SIGTERM
//
// Outside systemd ($NOTIFY_SOCKET unset) every call is a no-op returning 0.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace aisid {

/// Sends `state` to the service manager. Returns 1 when sent, 0 when not
/// running under a notify-aware manager, -errno on failure. Never throws.
inline int sd_notify(std::string_view state) noexcept {
    const char *path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return 0;
    size_t plen = std::strlen(path);
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sockaddr_un::sun_path)) return -EINVAL;

    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path, plen);
    if (path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
    // An abstract address is exactly as long as its name: no trailing NUL counted.
    socklen_t salen = socklen_t(offsetof(sockaddr_un, sun_path) + plen + (path[0] == '/' ? 1 : 0));

    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    ssize_t n;
    do {
        n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr *>(&sa), salen);
    } while (n < 0 && errno == EINTR);
    int err = n < 0 ? errno : 0;
    ::close(fd);
    if (err) return -err;
    return n == static_cast<ssize_t>(state.size()) ? 1 : -EMSGSIZE;
}

} // namespace aisid
