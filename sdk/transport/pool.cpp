// Failover across encrypted upstreams, and the blocking convenience call.
// The order is the configured one, except that an upstream that failed within
// Options::backoff_ms is tried after the healthy ones (systemd-resolved and
// c-ares rotate a failed server to the back in the same way).
#include <algorithm>

#include "transport_internal.hpp"

namespace aisid::transport {

struct UpstreamPool::Impl {
    Options opt;
    std::vector<std::unique_ptr<Upstream>> ups;
    std::vector<std::optional<Error>> last_error;
    std::vector<std::optional<Clock::time_point>> failed_at;

    struct Attempt {
        std::vector<uint8_t> query;
        Callback cb;
        std::vector<size_t> order;
        size_t pos = 0;
        std::vector<Error> errors;
    };

    std::vector<size_t> order() const {
        std::vector<size_t> healthy, broken;
        auto now = Clock::now();
        for (size_t i = 0; i < ups.size(); ++i) {
            bool recent = failed_at[i] && now - *failed_at[i] < std::chrono::milliseconds(opt.backoff_ms);
            (recent ? broken : healthy).push_back(i);
        }
        healthy.insert(healthy.end(), broken.begin(), broken.end());
        return healthy;
    }

    void next(std::shared_ptr<Attempt> a) {
        if (a->pos >= a->order.size()) {
            std::string why;
            for (const Error &e : a->errors) why += (why.empty() ? "" : "; ") + e.text();
            Error all = make_error(a->errors.size() == 1 ? a->errors[0].kind : ErrorKind::all_failed, "",
                                   why.empty() ? "no encrypted upstream configured" : why);
            // One upstream: its own kind (tls_verify stays an auth refusal).
            if (a->errors.size() == 1) all.upstream = a->errors[0].upstream, all.reason = a->errors[0].reason;
            a->cb(unexpected(std::move(all)));
            return;
        }
        size_t i = a->order[a->pos++];
        ups[i]->submit(a->query, [this, a, i](UpstreamResult r) {
            if (r) {
                last_error[i].reset();
                failed_at[i].reset();
                a->cb(std::move(r));
                return;
            }
            if (r.error().kind == ErrorKind::bad_query) {  // our fault, not the upstream's
                a->cb(std::move(r));
                return;
            }
            last_error[i] = r.error();
            failed_at[i] = Clock::now();
            a->errors.push_back(r.error());
            next(a);
        });
    }
};

UpstreamPool::UpstreamPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UpstreamPool::~UpstreamPool() = default;

Expected<std::unique_ptr<UpstreamPool>, Error> UpstreamPool::create(const std::vector<std::string> &uris,
                                                                   const Options &opt) {
    auto impl = std::make_unique<Impl>();
    impl->opt = opt;
    for (const std::string &u : uris) {
        auto ep = parse_upstream(u);
        if (!ep) return unexpected(ep.error());
        auto up = make_upstream(*ep, opt);
        if (!up) return unexpected(up.error());
        impl->ups.push_back(std::move(*up));
    }
    impl->last_error.resize(impl->ups.size());
    impl->failed_at.resize(impl->ups.size());
    return std::unique_ptr<UpstreamPool>(new UpstreamPool(std::move(impl)));
}

void UpstreamPool::submit(std::span<const uint8_t> query, Callback cb) {
    auto a = std::make_shared<Impl::Attempt>();
    a->query.assign(query.begin(), query.end());
    a->cb = std::move(cb);
    a->order = impl_->order();
    impl_->next(std::move(a));
}

std::vector<PollFd> UpstreamPool::fds() const {
    std::vector<PollFd> out;
    for (const auto &u : impl_->ups) u->fds(out);
    return out;
}

void UpstreamPool::process(int fd, short revents) {
    for (auto &u : impl_->ups) u->process(fd, revents);
}

int UpstreamPool::next_timeout_ms() const {
    std::optional<Clock::time_point> d;
    for (const auto &u : impl_->ups) {
        auto x = u->next_deadline();
        if (x && (!d || *x < *d)) d = x;
    }
    if (!d) return -1;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(*d - Clock::now()).count();
    return int(std::clamp<int64_t>(ms, 0, 60000));
}

void UpstreamPool::process_timeouts() {
    auto now = Clock::now();
    for (auto &u : impl_->ups) u->process_timeouts(now);
}

UpstreamResult UpstreamPool::query_blocking(std::span<const uint8_t> query) {
    std::optional<UpstreamResult> out;
    submit(query, [&out](UpstreamResult r) { out = std::move(r); });
    std::vector<pollfd> pfds;
    while (!out) {
        auto want = fds();
        pfds.clear();
        for (const PollFd &p : want) pfds.push_back({p.fd, p.events, 0});
        int timeout = next_timeout_ms();
        if (pfds.empty() && timeout < 0)  // nothing left that could answer: a bug, not a hang
            return unexpected(make_error(ErrorKind::all_failed, "", "no upstream is working on the query"));
        int n = poll(pfds.data(), nfds_t(pfds.size()), timeout < 0 ? 1000 : timeout);
        if (n > 0)
            for (const pollfd &p : pfds)
                if (p.revents) process(p.fd, p.revents);
        process_timeouts();
    }
    return std::move(*out);
}

size_t UpstreamPool::size() const { return impl_->ups.size(); }
Upstream &UpstreamPool::upstream(size_t i) { return *impl_->ups.at(i); }
const std::optional<Error> &UpstreamPool::last_error(size_t i) const { return impl_->last_error.at(i); }

} // namespace aisid::transport
