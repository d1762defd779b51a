// The authority hook runs on a thread of its own: it may block (disk, TSIG,
// a transfer), and the workers' loops must not.
#include "aisid/resolver/worker.hpp"

#include "aisid/core/log.hpp"

#include <algorithm>

namespace aisid::resolver {

AuthorityRunner::AuthorityRunner(AuthorityHook *hook, size_t max_queue, std::atomic<uint64_t> *dropped)
    : hook_(hook), max_queue_(std::max<size_t>(1, max_queue)), dropped_(dropped) {
    if (hook_) th_ = std::thread([this] { run(); });
}

AuthorityRunner::~AuthorityRunner() { stop(); }

bool AuthorityRunner::submit(std::string msg, Worker::Delivery where, Worker *w) {
    std::lock_guard lk(mu_);
    // Bounded: a flood (signed messages with bad MACs cost the authority a
    // parse and an HMAC each) waits in at most max_queue_ slots; the rest is
    // dropped at once, before any copy is kept.
    if (q_.size() >= max_queue_) {
        if (dropped_) dropped_->fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    q_.push_back(Job{std::move(msg), std::move(where), w});
    cv_.notify_one();
    return true;
}

void AuthorityRunner::stop() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
        cv_.notify_all();
    }
    if (th_.joinable()) th_.join();
}

void AuthorityRunner::run() {
    std::vector<Job> jobs;
    std::vector<AuthorityHook::Request> reqs;
    for (;;) {
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return stop_ || !q_.empty(); });
            if (stop_) return;
            // What queued up while the last batch was handled goes together:
            // the UPDATEs among it share one journal sync (group commit).
            jobs.clear();
            while (!q_.empty() && jobs.size() < kMaxBatch) {
                jobs.push_back(std::move(q_.front()));
                q_.pop_front();
            }
        }
        reqs.clear();
        reqs.resize(jobs.size());
        for (size_t i = 0; i < jobs.size(); ++i) {
            reqs[i].msg = reinterpret_cast<const uint8_t *>(jobs[i].msg.data());
            reqs[i].len = jobs[i].msg.size();
            reqs[i].peer = jobs[i].where.peer;
            reqs[i].tcp = jobs[i].where.tcp;
        }
        try {
            hook_->handle_batch(reqs);
        } catch (const std::exception &e) {
            AISID_LOG(LogLevel::error, std::string("authority: ") + e.what());
            for (auto &r : reqs) r.replies.clear();
        }
        for (size_t i = 0; i < jobs.size(); ++i) {
            jobs[i].where.replies = std::move(reqs[i].replies);
            jobs[i].w->deliver(std::move(jobs[i].where));
        }
    }
}

} // namespace aisid::resolver
