// TCP relay on a fixed set of event-loop threads: each client connection is
// connected (non-blocking, with a timeout, retrying as the caller decides) to
// an upstream and its bytes are moved with splice(2) through kernel pipes
// (socket → pipe → socket; the payload never enters user space).
//
// Design (gateway/README.md, "aisid-egress", Bytes):
// - N threads, each with its own epoll, its own flows and its own pipe pool; a
//   flow lives on one thread from add() to its end, so nothing is shared per
//   chunk (no lock, no allocation on the relay path).
// - add() hands a connection to the next thread round-robin through a small
//   queue and an eventfd (a lock per flow, none per chunk). Round-robin rather
//   than one EPOLLEXCLUSIVE listener per thread: the caller reads the AISID and
//   refuses strangers in one place, and exclusive wake-ups favour the most
//   recently idle thread (LIFO), which piles long flows onto one thread.
// - Both sockets of a flow are registered once, edge-triggered, for input and
//   output; every event pumps both directions until neither moves, so no
//   epoll_ctl is needed as a flow's state changes.
// - A direction holds a pipe only while bytes sit in it: it takes one from the
//   thread's pool before splicing in and gives it back when the pipe is empty
//   again. An idle flow thus costs two sockets and ~300 bytes, and 10 000 idle
//   flows need 20 000 descriptors, not 60 000; the pipe size stops being a
//   per-flow memory question.
// - Connect timeouts: all connects of a loop share one timeout, so a FIFO list
//   per thread is ordered by deadline; the head sets epoll_wait's timeout.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace aisid::gw {

struct RelayResult {
    uint64_t up = 0;   ///< bytes client → upstream
    uint64_t down = 0; ///< bytes upstream → client
    int error = 0;     ///< errno of the first failure (0: both sides closed cleanly; ECANCELED: stop())
};

/// One client connection, owned by the loop from add() until it is destroyed.
/// Its hooks run on the flow's relay thread, one at a time. After
/// next_upstream() returned true exactly one of connect_failed() or
/// established() follows; after established(), finished() follows.
class RelayFlow {
public:
    virtual ~RelayFlow() = default;
    /// The next upstream to connect to; false: none (the client gets an RST).
    /// Asked when the flow starts and again after each failed connect.
    virtual bool next_upstream(sockaddr_in6 &to) = 0;
    /// The connect to the last next_upstream() address failed with err
    /// (ETIMEDOUT after the connect timeout); ECANCELED: the loop is stopping
    /// (the client then gets an RST and next_upstream() is not asked again).
    virtual void connect_failed(int err) { (void)err; }
    /// Connected to the upstream; relaying starts.
    virtual void established() {}
    /// The relay ended; both sockets are closed right after (with an RST when
    /// r.error is set and not ECANCELED, so a reset reaches the other side).
    virtual void finished(const RelayResult &r) { (void)r; }
};

class RelayLoop {
public:
    struct Options {
        unsigned threads = 0;         ///< 0: one per CPU
        int connect_timeout_ms = 300; ///< per connect attempt
        int pipe_size = 1 << 18;      ///< F_SETPIPE_SZ of pooled pipes (0: the kernel default, 64 KiB)
        unsigned pool_max = 64;       ///< free pipes kept per thread
    };

    /// Starts the threads (they block every signal: the process decides where
    /// signals go, and a peer that vanished shows as EPIPE, not SIGPIPE).
    /// Throws std::system_error when a thread, epoll or eventfd cannot be made.
    explicit RelayLoop(const Options &o);
    ~RelayLoop(); ///< stop()
    RelayLoop(const RelayLoop &) = delete;
    RelayLoop &operator=(const RelayLoop &) = delete;

    /// Takes client_fd (a connected TCP socket) and flow: a relay thread asks
    /// flow->next_upstream(), connects, and relays. Thread-safe. After stop()
    /// the client is reset and the flow destroyed at once.
    void add(int client_fd, std::unique_ptr<RelayFlow> flow);
    /// Relays between two sockets already connected (established() is called
    /// on the relay thread, next_upstream() never). Thread-safe.
    void add_connected(int a, int b, std::unique_ptr<RelayFlow> flow);
    /// Ends every flow and joins the threads: relaying flows are shut down
    /// both ways (both peers see EOF) and get finished() with ECANCELED; flows
    /// still connecting get connect_failed(ECANCELED) and their client an RST.
    /// Idempotent; not to be called from a hook.
    void stop();

    unsigned threads() const { return static_cast<unsigned>(workers_.size()); }
    /// Flows added and not yet destroyed.
    size_t flows() const { return live_.load(std::memory_order_relaxed); }
    /// Pipes open now (in use plus pooled), all threads.
    size_t pipes() const { return pipes_.load(std::memory_order_relaxed); }

    struct Worker;

private:
    void hand_off(int a, int b, std::unique_ptr<RelayFlow> flow);
    Options opt_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::atomic<unsigned> next_{0};
    std::atomic<size_t> live_{0};
    std::atomic<size_t> pipes_{0};
    std::atomic<bool> stopped_{false};
};

} // namespace aisid::gw
