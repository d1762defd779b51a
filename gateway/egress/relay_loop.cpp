#include "aisid/egress/relay_loop.hpp"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <mutex>
#include <system_error>
#include <thread>

namespace aisid::gw {
namespace {

uint64_t mono_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void reset_close(int fd) {
    // RST rather than FIN: the peer learns that the other side failed.
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

void set_nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

struct Pipe {
    int r = -1, w = -1;
    size_t cap = 0;
};

struct Flow;
// What epoll hands back: the flow and which of its sockets fired.
struct End {
    Flow *f;
    int side; // 0 client, 1 upstream
};

struct Dir {
    int from = -1, to = -1;
    Pipe pipe;          // held only while in_pipe > 0 (or during a pump)
    size_t in_pipe = 0; // bytes spliced in and not yet out
    bool eof = false;   // from has no more data
    bool done = false;  // that EOF was passed on to `to`
    uint64_t bytes = 0;
};

struct Flow {
    std::unique_ptr<RelayFlow> user;
    int fd[2] = {-1, -1}; // client, upstream
    End end[2];
    Dir dir[2]; // [0] client → upstream, [1] upstream → client
    bool connecting = false, relaying = false, dead = false;
    uint64_t deadline = 0;
    Flow *prev = nullptr, *next = nullptr;   // every flow of the thread
    Flow *tprev = nullptr, *tnext = nullptr; // connecting flows, oldest deadline first
};

struct Pending {
    int a, b; // b < 0: connect a to next_upstream()
    RelayFlow *flow;
};

} // namespace

struct RelayLoop::Worker {
    RelayLoop &loop;
    int ep = -1, wake = -1;
    std::thread th;
    std::mutex mu;
    std::vector<Pending> queue; // under mu
    bool stopping = false;      // under mu
    std::vector<Pending> taken; // swapped with queue, so neither reallocates once warm
    Flow *flows = nullptr;
    Flow *thead = nullptr, *ttail = nullptr;
    std::vector<Pipe> pool;       // free, empty pipes (capacity reserved: no allocation)
    std::vector<Flow *> graveyard; // freed after the epoll batch that may still name them

    explicit Worker(RelayLoop &l) : loop(l) {}
    ~Worker() {
        if (ep >= 0) close(ep);
        if (wake >= 0) close(wake);
    }

    void run();
    bool drain(); // false: stop
    void start(const Pending &p);
    void connect_next(Flow &f);
    void on_event(Flow &f, int side, uint32_t events);
    void establish(Flow &f);
    void pump(Flow &f);
    int pump_dir(Dir &d);
    void end_flow(Flow &f, int err);
    void destroy(Flow &f);
    void discard(const Pending &p);
    void stop_all();
    bool watch(int fd, End *e);
    bool take_pipe(Pipe &p);
    void give_pipe(Pipe &p);
    void drop_pipe(Pipe &p);
    void timer_push(Flow &f);
    void timer_remove(Flow &f);
    void expire(uint64_t now);
};

RelayLoop::RelayLoop(const Options &o) : opt_(o) {
    unsigned n = o.threads ? o.threads : std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    if (opt_.connect_timeout_ms <= 0) opt_.connect_timeout_ms = 1;
    try {
        for (unsigned i = 0; i < n; ++i) {
            auto w = std::make_unique<Worker>(*this);
            w->ep = epoll_create1(EPOLL_CLOEXEC);
            if (w->ep < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
            w->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (w->wake < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.ptr = nullptr; // the wake-up
            if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake, &ev) != 0)
                throw std::system_error(errno, std::generic_category(), "epoll_ctl");
            w->pool.reserve(opt_.pool_max);
            w->graveyard.reserve(64);
            Worker *raw = w.get();
            w->th = std::thread([raw] { raw->run(); });
            workers_.push_back(std::move(w));
        }
    } catch (...) {
        stop();
        throw;
    }
}

RelayLoop::~RelayLoop() { stop(); }

void RelayLoop::stop() {
    stopped_.store(true);
    for (auto &w : workers_) {
        {
            std::lock_guard lk(w->mu);
            w->stopping = true;
        }
        uint64_t one = 1;
        (void)!write(w->wake, &one, sizeof one);
    }
    for (auto &w : workers_)
        if (w->th.joinable()) w->th.join();
}

void RelayLoop::add(int client_fd, std::unique_ptr<RelayFlow> flow) { hand_off(client_fd, -1, std::move(flow)); }

void RelayLoop::add_connected(int a, int b, std::unique_ptr<RelayFlow> flow) { hand_off(a, b, std::move(flow)); }

void RelayLoop::hand_off(int a, int b, std::unique_ptr<RelayFlow> flow) {
    live_.fetch_add(1, std::memory_order_relaxed);
    Worker &w = *workers_[next_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
    bool first;
    {
        std::lock_guard lk(w.mu);
        if (w.stopping) {
            first = false;
        } else {
            w.queue.push_back({a, b, flow.release()});
            first = w.queue.size() == 1;
        }
    }
    if (flow) { // stopping: refused at once
        reset_close(a);
        if (b >= 0) reset_close(b);
        flow.reset();
        live_.fetch_sub(1, std::memory_order_relaxed);
        return;
    }
    // Only the first item of a batch wakes the thread: it takes the whole
    // queue after reading the eventfd.
    if (first) {
        uint64_t one = 1;
        (void)!write(w.wake, &one, sizeof one);
    }
}

// --- the thread ------------------------------------------------------------------

void RelayLoop::Worker::run() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    epoll_event evs[256];
    for (;;) {
        int timeout = -1;
        if (thead) {
            uint64_t now = mono_ms();
            timeout = thead->deadline > now ? static_cast<int>(thead->deadline - now) : 0;
        }
        int n = epoll_wait(ep, evs, 256, timeout);
        bool woke = false;
        for (int i = 0; i < n; ++i) {
            auto *e = static_cast<End *>(evs[i].data.ptr);
            if (!e) {
                woke = true;
                continue;
            }
            if (!e->f->dead) on_event(*e->f, e->side, evs[i].events);
        }
        bool go_on = !woke || drain();
        if (thead) expire(mono_ms());
        for (Flow *f : graveyard) delete f;
        graveyard.clear();
        if (!go_on) break;
    }
    stop_all();
    for (Flow *f : graveyard) delete f;
    graveyard.clear();
    for (auto &p : pool) {
        close(p.r);
        close(p.w);
        loop.pipes_.fetch_sub(1, std::memory_order_relaxed);
    }
    pool.clear();
}

bool RelayLoop::Worker::drain() {
    uint64_t cnt;
    (void)!read(wake, &cnt, sizeof cnt); // before taking the queue: a later add() wakes us again
    bool stop;
    {
        std::lock_guard lk(mu);
        taken.swap(queue);
        stop = stopping;
    }
    for (const auto &p : taken) {
        if (stop) discard(p);
        else start(p);
    }
    taken.clear();
    return !stop;
}

void RelayLoop::Worker::discard(const Pending &p) {
    reset_close(p.a);
    if (p.b >= 0) reset_close(p.b);
    delete p.flow;
    loop.live_.fetch_sub(1, std::memory_order_relaxed);
}

void RelayLoop::Worker::start(const Pending &p) {
    Flow *f = new Flow;
    f->user.reset(p.flow);
    f->fd[0] = p.a;
    f->end[0] = {f, 0};
    f->end[1] = {f, 1};
    f->next = flows;
    if (flows) flows->prev = f;
    flows = f;
    set_nonblocking(p.a);
    if (p.b >= 0) {
        f->fd[1] = p.b;
        set_nonblocking(p.b);
        if (!watch(p.b, &f->end[1])) {
            end_flow(*f, errno);
            return;
        }
        establish(*f);
    } else {
        connect_next(*f);
    }
}

bool RelayLoop::Worker::watch(int fd, End *e) {
    // Edge-triggered, both ways, once for the flow's life: pump() drains
    // whatever an edge announced, so no epoll_ctl per state change.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = e;
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void RelayLoop::Worker::connect_next(Flow &f) {
    for (;;) {
        sockaddr_in6 to{};
        if (!f.user->next_upstream(to)) {
            reset_close(f.fd[0]);
            f.fd[0] = -1;
            destroy(f);
            return;
        }
        int s = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0) {
            f.user->connect_failed(errno);
            continue;
        }
        int rc = connect(s, reinterpret_cast<const sockaddr *>(&to), sizeof to);
        if ((rc != 0 && errno != EINPROGRESS) || !watch(s, &f.end[1])) {
            int e = errno;
            close(s);
            f.user->connect_failed(e);
            continue;
        }
        f.fd[1] = s;
        if (rc == 0) {
            establish(f);
            return;
        }
        f.connecting = true;
        f.deadline = mono_ms() + static_cast<uint64_t>(loop.opt_.connect_timeout_ms);
        timer_push(f);
        return;
    }
}

void RelayLoop::Worker::on_event(Flow &f, int side, uint32_t events) {
    if (f.connecting) {
        if (side != 1) return;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(f.fd[1], SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err == 0 && (events & EPOLLERR)) err = ECONNREFUSED;
        if (err == 0 && !(events & EPOLLOUT)) return; // not finished yet
        timer_remove(f);
        f.connecting = false;
        if (err) {
            close(f.fd[1]);
            f.fd[1] = -1;
            f.user->connect_failed(err);
            connect_next(f);
            return;
        }
        establish(f);
        return;
    }
    if (!f.relaying) return;
    if (events & EPOLLERR) {
        // A reset shows as an error even on a direction that has finished
        // (no splice would ever report it): end the flow and pass it on.
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(f.fd[side], SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            end_flow(f, err);
            return;
        }
    }
    pump(f);
}

void RelayLoop::Worker::establish(Flow &f) {
    int one = 1;
    // A relay must not add Nagle's delay to what the two ends already chose.
    setsockopt(f.fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(f.fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    f.dir[0].from = f.dir[1].to = f.fd[0];
    f.dir[0].to = f.dir[1].from = f.fd[1];
    f.relaying = true;
    f.user->established();
    if (!watch(f.fd[0], &f.end[0])) {
        end_flow(f, errno);
        return;
    }
    pump(f);
}

void RelayLoop::Worker::pump(Flow &f) {
    for (auto &d : f.dir) {
        if (int e = pump_dir(d)) {
            end_flow(f, e);
            return;
        }
    }
    if (f.dir[0].done && f.dir[1].done) end_flow(f, 0);
}

// Moves what it can without blocking; returns an errno or 0.
int RelayLoop::Worker::pump_dir(Dir &d) {
    for (;;) {
        bool progressed = false;
        if (!d.eof && (d.pipe.r < 0 || d.in_pipe < d.pipe.cap)) {
            if (d.pipe.r < 0 && !take_pipe(d.pipe)) return errno;
            ssize_t n = splice(d.from, nullptr, d.pipe.w, nullptr, d.pipe.cap - d.in_pipe,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d.in_pipe += static_cast<size_t>(n);
                progressed = true;
            } else if (n == 0) {
                d.eof = true;
            } else if (errno != EAGAIN && errno != EINTR) {
                return errno;
            }
        }
        if (d.in_pipe > 0) {
            // No SPLICE_F_MORE: it corks the socket (MSG_MORE) and a short reply
            // would wait for the 200 ms cork timer.
            ssize_t n = splice(d.pipe.r, nullptr, d.to, nullptr, d.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d.in_pipe -= static_cast<size_t>(n);
                d.bytes += static_cast<uint64_t>(n);
                progressed = true;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                return errno;
            }
        }
        if (d.in_pipe == 0 && d.pipe.r >= 0) give_pipe(d.pipe);
        if (d.eof && d.in_pipe == 0 && !d.done) {
            shutdown(d.to, SHUT_WR);
            d.done = true;
        }
        if (!progressed) return 0;
    }
}

void RelayLoop::Worker::end_flow(Flow &f, int err) {
    if (f.connecting) {
        timer_remove(f);
        f.connecting = false;
    }
    for (auto &d : f.dir) {
        if (d.pipe.r < 0) continue;
        if (d.in_pipe == 0) give_pipe(d.pipe);
        else drop_pipe(d.pipe); // bytes nobody will read
    }
    RelayResult r{f.dir[0].bytes, f.dir[1].bytes, err};
    if (f.relaying) f.user->finished(r);
    f.relaying = false;
    const bool reset = err != 0 && err != ECANCELED;
    for (int &fd : f.fd) {
        if (fd < 0) continue;
        if (reset) reset_close(fd);
        else close(fd);
        fd = -1;
    }
    destroy(f);
}

void RelayLoop::Worker::destroy(Flow &f) {
    if (f.prev) f.prev->next = f.next;
    else flows = f.next;
    if (f.next) f.next->prev = f.prev;
    f.dead = true;
    f.user.reset();
    graveyard.push_back(&f);
    loop.live_.fetch_sub(1, std::memory_order_relaxed);
}

void RelayLoop::Worker::stop_all() {
    while (flows) {
        Flow &f = *flows;
        if (f.connecting) {
            timer_remove(f);
            f.connecting = false;
            close(f.fd[1]);
            f.fd[1] = -1;
            f.user->connect_failed(ECANCELED);
            reset_close(f.fd[0]);
            f.fd[0] = -1;
            destroy(f);
            continue;
        }
        // Both peers see EOF, as when the gateway closes cleanly.
        for (int fd : f.fd)
            if (fd >= 0) shutdown(fd, SHUT_RDWR);
        end_flow(f, ECANCELED);
    }
    // add()s that raced with stop.
    {
        std::lock_guard lk(mu);
        taken.swap(queue);
    }
    for (const auto &p : taken) discard(p);
    taken.clear();
}

// --- pipes -------------------------------------------------------------------------

bool RelayLoop::Worker::take_pipe(Pipe &p) {
    if (!pool.empty()) {
        p = pool.back();
        pool.pop_back();
        return true;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    if (loop.opt_.pipe_size > 0) fcntl(fds[1], F_SETPIPE_SZ, loop.opt_.pipe_size);
    int cap = fcntl(fds[1], F_GETPIPE_SZ);
    p = {fds[0], fds[1], cap > 0 ? static_cast<size_t>(cap) : 4096};
    loop.pipes_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void RelayLoop::Worker::give_pipe(Pipe &p) {
    if (pool.size() < loop.opt_.pool_max) pool.push_back(p);
    else drop_pipe(p);
    p = Pipe{};
}

void RelayLoop::Worker::drop_pipe(Pipe &p) {
    close(p.r);
    close(p.w);
    loop.pipes_.fetch_sub(1, std::memory_order_relaxed);
    p = Pipe{};
}

// --- connect timeouts -------------------------------------------------------------------

// Every connect of this loop has the same timeout, so appending keeps the list
// ordered by deadline.
void RelayLoop::Worker::timer_push(Flow &f) {
    f.tnext = nullptr;
    f.tprev = ttail;
    if (ttail) ttail->tnext = &f;
    else thead = &f;
    ttail = &f;
}

void RelayLoop::Worker::timer_remove(Flow &f) {
    if (f.tprev) f.tprev->tnext = f.tnext;
    else thead = f.tnext;
    if (f.tnext) f.tnext->tprev = f.tprev;
    else ttail = f.tprev;
    f.tprev = f.tnext = nullptr;
}

void RelayLoop::Worker::expire(uint64_t now) {
    while (thead && thead->deadline <= now) {
        Flow &f = *thead;
        timer_remove(f);
        f.connecting = false;
        close(f.fd[1]);
        f.fd[1] = -1;
        f.user->connect_failed(ETIMEDOUT);
        connect_next(f);
    }
}

} // namespace aisid::gw
