// One worker thread: its own UDP and TCP listening sockets (SO_REUSEPORT, so
// the kernel spreads clients over workers), its own upstream sockets, one
// epoll loop. The answer cache and the questions in flight are shared by all
// workers (cache.hpp, inflight.hpp); worker_impl.hpp has the map of the parts.
#pragma once

#include "aisid/resolver/runtime.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace aisid::resolver {

struct ListenSockets {
    std::vector<int> udp;
    std::vector<uint8_t> udp_wild;  // bound to 0.0.0.0 / ::: replies need the query's destination (PKTINFO)
    std::vector<int> tcp;
};

/// Opens UDP and TCP sockets for every address (SO_REUSEPORT); "" on success.
std::string open_listeners(const std::vector<SockAddr> &addrs, ListenSockets &out);

class AuthorityRunner;

class Worker {
public:
    Worker(Shared &sh, unsigned index, ListenSockets socks, AuthorityRunner *auth);
    ~Worker();
    void start();
    void wake();  // from other threads: stop, or inbox has items
    void join();

    // Replies from the authority thread.
    struct Delivery {
        bool tcp;
        int udp_fd;
        sockaddr_storage peer;
        uint64_t conn_id;
        std::vector<std::string> replies;
        std::string ctl;  // UDP on a wildcard listener: the reply's source (IP_PKTINFO)
    };
    void deliver(Delivery d);
    /// From another worker: the upstream answer ("" = every upstream failed)
    /// to a question this worker waits on (InflightRegistry).
    void deliver_answer(std::string key, std::string resp);

private:
    void run();
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::thread th_;
};

/// Runs AuthorityHook::handle off the workers' loops (it may block).
class AuthorityRunner {
public:
    /// At most `max_queue` messages wait; beyond that submit() drops them and
    /// counts each in `dropped`.
    AuthorityRunner(AuthorityHook *hook, size_t max_queue = 256, std::atomic<uint64_t> *dropped = nullptr);
    ~AuthorityRunner();
    /// False when the queue is full (the message is dropped, nothing will be delivered).
    bool submit(std::string msg, Worker::Delivery where, Worker *w);
    void stop();

private:
    struct Job {
        std::string msg;
        Worker::Delivery where;
        Worker *w;
    };
    void run();
    static constexpr size_t kMaxBatch = 64;  // messages handed to the hook at once
    AuthorityHook *hook_;
    size_t max_queue_;
    std::atomic<uint64_t> *dropped_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> q_;
    bool stop_ = false;
    std::thread th_;
};

} // namespace aisid::resolver
