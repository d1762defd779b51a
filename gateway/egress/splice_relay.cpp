#include "splice_relay.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <initializer_list>

namespace aisid::gw {
namespace {

// Pipes are grown to 256 KiB (F_SETPIPE_SZ; the default 64 KiB costs four
// times the splice calls on bulk transfers); kChunk follows the real size.
constexpr int kPipeSize = 1 << 18;

struct Direction {
    int from, to;
    size_t cap = 1 << 16;
    int pipe_r = -1, pipe_w = -1;
    size_t in_pipe = 0;
    bool eof = false;  // from has no more data
    bool done = false; // eof passed on to `to`
    bool want_in = false, want_out = false;
    uint64_t bytes = 0;
};

// Moves what it can without blocking; returns an errno or 0.
int pump(Direction &d) {
    d.want_in = d.want_out = false;
    for (;;) {
        bool progressed = false;
        if (!d.eof && d.in_pipe < d.cap) {
            ssize_t n = splice(d.from, nullptr, d.pipe_w, nullptr, d.cap - d.in_pipe,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d.in_pipe += static_cast<size_t>(n);
                progressed = true;
            } else if (n == 0) {
                d.eof = true;
            } else if (errno == EAGAIN) {
                d.want_in = true;
            } else if (errno != EINTR) {
                return errno;
            }
        }
        if (d.in_pipe > 0) {
            // No SPLICE_F_MORE: it corks the socket (MSG_MORE) and a short reply
            // would wait for the 200 ms cork timer.
            ssize_t n = splice(d.pipe_r, nullptr, d.to, nullptr, d.in_pipe,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d.in_pipe -= static_cast<size_t>(n);
                d.bytes += static_cast<uint64_t>(n);
                progressed = true;
            } else if (n < 0 && errno == EAGAIN) {
                d.want_out = true;
            } else if (n < 0 && errno != EINTR) {
                return errno;
            }
        }
        if (d.eof && d.in_pipe == 0 && !d.done) {
            shutdown(d.to, SHUT_WR);
            d.done = true;
        }
        if (!progressed) return 0;
        if (d.in_pipe >= d.cap) d.want_in = false;
    }
}

} // namespace

RelayResult splice_relay(int a, int b) {
    RelayResult res;
    Direction dirs[2] = {{a, b}, {b, a}};
    for (auto &d : dirs) {
        int p[2];
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
            res.error = errno;
            for (auto &x : dirs)
                if (x.pipe_r >= 0) close(x.pipe_r), close(x.pipe_w);
            return res;
        }
        d.pipe_r = p[0];
        d.pipe_w = p[1];
        int sz = fcntl(p[1], F_SETPIPE_SZ, kPipeSize);
        if (sz > 0) d.cap = static_cast<size_t>(sz);
    }
    for (int fd : {a, b}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    while (!(dirs[0].done && dirs[1].done)) {
        for (auto &d : dirs) {
            if (int e = pump(d)) {
                res.error = e;
                goto out;
            }
        }
        if (dirs[0].done && dirs[1].done) break;
        pollfd p[2] = {{a, 0, 0}, {b, 0, 0}};
        // p[0] is a: it is read by dirs[0] and written by dirs[1].
        if (dirs[0].want_in) p[0].events |= POLLIN;
        if (dirs[1].want_out) p[0].events |= POLLOUT;
        if (dirs[1].want_in) p[1].events |= POLLIN;
        if (dirs[0].want_out) p[1].events |= POLLOUT;
        if (poll(p, 2, -1) < 0 && errno != EINTR) {
            res.error = errno;
            break;
        }
        // A peer that vanished (RST) shows as POLLERR; the next splice reports it.
    }
out:
    res.up = dirs[0].bytes;
    res.down = dirs[1].bytes;
    for (auto &d : dirs) {
        close(d.pipe_r);
        close(d.pipe_w);
    }
    return res;
}

} // namespace aisid::gw
