// `--control-socket PATH`: the operator's channel into a running aisidd
// (aisid-control(8)), as unbound-control and resolvectl are for their daemons.
//
// Transport: a Unix stream socket. Who may use it is decided twice: by the
// file (mode 0660 and group `aisid` when that group exists, else 0600: root
// and aisidd's own user only), and by the peer's credentials on each
// connection (SO_PEERCRED, SO_PEERGROUPS): uid 0, aisidd's own uid, or group
// `aisid` as primary or supplementary group. A file mode can be loosened by
// mistake (or by a directory with other rules); the credential check cannot.
//
// Protocol, one request per connection:
//   client: one line, at most kControlMaxRequest bytes, "\n"-terminated (or
//           ended by shutting down the write side): COMMAND [ARG]
//   server: a status line, "ok", "error MESSAGE" or "refused MESSAGE", then
//           the reply text, then it closes the connection (the end marker:
//           a reply of any length streams without a size known in advance).
// Commands: stats, flush NAME, flush-all, reload, zone-status, upstreams,
// dump-cache (control_commands()).
//
// One thread serves one connection at a time (operators are few): a client
// that sends no request within 2 s, or takes none of the reply for 10 s, is
// dropped, so a stuck one cannot hold the channel.
#pragma once

#include "aisid/resolver/runtime.hpp"

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace aisid::resolver {

inline constexpr size_t kControlMaxRequest = 512;
inline constexpr const char *kControlGroup = "aisid";

/// The commands and their arguments, as shown in errors and --help.
const char *control_commands();

/// Runs one request line (without its newline) and writes the whole reply,
/// status line first, through `write` (false: the peer is gone; stop).
/// `reload` is the daemon's reload (the one SIGHUP runs): "" on success,
/// else why nothing changed. No socket here, so tests can call it directly.
void control_execute(Shared &sh, std::string_view line, const std::function<std::string(std::string &)> &reload,
                     const std::function<bool(std::string_view)> &write);

class ControlServer {
public:
    /// `reload(summary)`: "" on success (summary says what was loaded), else the error.
    ControlServer(Shared &sh, std::function<std::string(std::string &)> reload)
        : sh_(sh), reload_(std::move(reload)) {}
    ~ControlServer();
    /// Creates the socket at `path` (its directory must exist); "" on
    /// success, else the error. A socket file left by an aisidd that died is
    /// replaced; a live one, or any other file, is not. Clients may connect
    /// from now on; they wait until serve().
    std::string open(const std::string &path);
    /// Starts the thread that answers (nothing when open() was not called).
    void serve();
    /// Stops serving and removes the socket file (when still allowed to).
    void stop();

private:
    void run();
    void serve(int fd);
    bool permitted(int fd, std::string &who) const;

    Shared &sh_;
    std::function<std::string(std::string &)> reload_;
    std::string path_;
    int fd_ = -1;
    gid_t group_ = 0;
    bool have_group_ = false;
    ino_t ino_ = 0;  // the socket file we made (stop() removes only that one)
    dev_t dev_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread th_;
};

} // namespace aisid::resolver
