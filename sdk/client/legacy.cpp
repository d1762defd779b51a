#include "aisid/client/legacy.hpp"
#include "aisid/core/socket_address.hpp"

#include "aisid/transport/address_lookup.hpp"

#include <algorithm>
#include <cstdlib>
#include <arpa/inet.h>
#include <cstring>
#include <netdb.h>

namespace aisid::sdk {

namespace {

// c-ares 1.18's getaddrinfo hides the SOA of negative answers, so RFC 2308 §5's
// min(SOA.minimum, SOA TTL) is not available: negative answers are cached for a
// short fixed time instead.
constexpr uint32_t kNegativeTtl = 5;
constexpr size_t kMaxCacheEntries = 10000;

aisid_status_t from_ares(int st) {
    switch (st) {
    case ARES_SUCCESS: return AISID_OK;
    case ARES_ENOTFOUND: return AISID_ENOTFOUND;
    case ARES_ENODATA: return AISID_ENODATA;
    case ARES_ETIMEOUT: return AISID_ETIMEOUT;
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_EBADRESP:
    case ARES_EFORMERR:
    case ARES_ENOTIMP: return AISID_ESERVFAIL;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: return AISID_ECANCELLED;
    case ARES_ENOMEM: return AISID_ENOMEM;
    case ARES_EBADNAME:
    case ARES_EBADFAMILY: return AISID_EINVAL;
    default: return AISID_ENETWORK;
    }
}

// AAAA first, then A as IPv4-mapped (SPEC §5), each family in upstream order.
LegacyAnswer from_addrinfo(int status, ares_addrinfo *res) {
    LegacyAnswer a;
    a.status = from_ares(status);
    if (status != ARES_SUCCESS || !res) {
        if (a.status == AISID_OK) a.status = AISID_ENODATA;
        if (res) ares_freeaddrinfo(res);
        return a;
    }
    std::vector<in6_addr> v4;
    int64_t ttl = -1;
    for (ares_addrinfo_node *n = res->nodes; n; n = n->ai_next) {
        in6_addr x{};
        if (n->ai_family == AF_INET6) {
            x = reinterpret_cast<sockaddr_in6 *>(n->ai_addr)->sin6_addr;
        } else if (n->ai_family == AF_INET) {
            x.s6_addr[10] = x.s6_addr[11] = 0xff;
            std::memcpy(&x.s6_addr[12], &reinterpret_cast<sockaddr_in *>(n->ai_addr)->sin_addr, 4);
        } else {
            continue;
        }
        auto &dst = n->ai_family == AF_INET6 ? a.addrs : v4;
        if (std::find_if(dst.begin(), dst.end(), [&](const in6_addr &y) { return !std::memcmp(&x, &y, 16); }) ==
            dst.end())
            dst.push_back(x);
        if (n->ai_ttl >= 0 && (ttl < 0 || n->ai_ttl < ttl)) ttl = n->ai_ttl;
    }
    // CNAME TTLs bound the answer too (RFC 2181 §5.2 / RFC 1034 §3.6.2).
    for (ares_addrinfo_cname *c = res->cnames; c; c = c->next)
        if (c->ttl >= 0 && (ttl < 0 || c->ttl < ttl)) ttl = c->ttl;
    a.addrs.insert(a.addrs.end(), v4.begin(), v4.end());
    a.ttl = ttl < 0 ? 0 : static_cast<uint32_t>(ttl);
    if (a.addrs.empty()) a.status = AISID_ENODATA;
    ares_freeaddrinfo(res);
    return a;
}

struct BlockingQuery {
    bool done = false;
    LegacyAnswer answer;
};

std::once_flag g_ares_once;

} // namespace

void ensure_ares_library() {
    std::call_once(g_ares_once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

LegacyResolver::LegacyResolver() { ensure_ares_library(); }

LegacyResolver::~LegacyResolver() {
    std::lock_guard lk(async_mu_);
    if (tls_async_) tls_async_->cancel();  // pending DoT/DoH lookups: AISID_ECANCELLED
    for (auto &o : tls_async_old_) o->cancel();
    async_ch_.reset();  // pending callbacks run with ARES_EDESTRUCTION
}

std::string LegacyResolver::key_of(const std::string &name) {
    std::string k = name;
    for (char &c : k)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    while (k.size() > 1 && k.back() == '.') k.pop_back();
    return k;
}

LegacyResolver::Channel LegacyResolver::acquire_channel(aisid_status_t &st, uint64_t &gen) {
    {
        std::lock_guard lk(pool_mu_);
        gen = pool_gen_;
        if (!pool_.empty()) {
            Channel c = std::move(pool_.back());
            pool_.pop_back();
            st = AISID_OK;
            return c;
        }
    }
    return make_channel(timeout_ms(), st);
}

void LegacyResolver::release_channel(Channel c, uint64_t gen) {
    constexpr size_t kMaxIdle = 8;
    std::unique_lock lk(pool_mu_);
    if (gen == pool_gen_ && pool_.size() < kMaxIdle) pool_.push_back(std::move(c));
    lk.unlock();
    // Otherwise c is destroyed here, outside the lock.
}

LegacyResolver::Channel LegacyResolver::make_channel(int timeout_ms, aisid_status_t &st) {
    ares_options o{};
    // Several tries within the caller's deadline; the deadline itself is
    // enforced by the caller (ares_cancel).
    o.timeout = std::max(100, timeout_ms / 4);
    o.tries = 4;
    ares_channel ch = nullptr;
    int r = ares_init_options(&ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (r != ARES_SUCCESS) {
        st = r == ARES_ENOMEM ? AISID_ENOMEM : AISID_ENETWORK;
        return nullptr;
    }
    Channel c(ch);
    std::string ups;
    {
        std::lock_guard lk(mu_);
        ups = upstreams_;
    }
    if (!ups.empty() && ares_set_servers_ports_csv(ch, ups.c_str()) != ARES_SUCCESS) {
        st = AISID_EINVAL;
        return nullptr;
    }
    st = AISID_OK;
    return c;
}

namespace {
aisid_status_t from_lookup(transport::AddressLookup::Status s) {
    using S = transport::AddressLookup::Status;
    switch (s) {
    case S::ok: return AISID_OK;
    case S::nxdomain: return AISID_ENOTFOUND;
    case S::nodata: return AISID_ENODATA;
    case S::servfail: return AISID_ESERVFAIL;
    case S::timeout: return AISID_ETIMEOUT;
    case S::bad_name: return AISID_EINVAL;
    case S::cancelled: return AISID_ECANCELLED;
    case S::network: break;
    }
    return AISID_ENETWORK;
}
} // namespace

aisid_status_t LegacyResolver::set_upstreams(const std::string &csv_in) {
    // Encrypted entries go to sdk/transport, the rest to c-ares.
    std::vector<std::string> enc;
    std::string csv;
    transport::AddressLookup::split_upstreams(csv_in, enc, csv);
    std::shared_ptr<transport::AddressLookup> tls;
    std::unique_ptr<transport::AsyncAddressLookup> tls_async;
    if (!enc.empty()) {
        transport::Options o;
        if (const char *ca = std::getenv("AISID_CA_FILE"); ca && *ca) o.ca_file = ca;
        o.timeout_ms = static_cast<uint32_t>(std::max(100, timeout_ms()));
        auto l = transport::AddressLookup::create(enc, o);
        auto la = transport::AsyncAddressLookup::create(enc, o);
        if (!l || !la) return AISID_EINVAL;
        tls = std::move(*l);
        tls_async = std::move(*la);
    }
    if (!csv.empty()) {
        // Each entry must be an address: c-ares would also take names it cannot use.
        size_t start = 0;
        while (start <= csv.size()) {
            size_t end = csv.find(',', start);
            if (end == std::string::npos) end = csv.size();
            std::string e = csv.substr(start, end - start);
            while (!e.empty() && e.front() == ' ') e.erase(0, 1);
            while (!e.empty() && e.back() == ' ') e.pop_back();
            if (e.empty()) return AISID_EINVAL;
            if (!parse_sockaddr(e, AddressRules{.default_port = 53})) return AISID_EINVAL;
            start = end + 1;
        }
        ares_channel ch = nullptr;
        if (ares_init(&ch) != ARES_SUCCESS) return AISID_ENETWORK;
        int r = ares_set_servers_ports_csv(ch, csv.c_str());
        ares_destroy(ch);
        if (r != ARES_SUCCESS) return AISID_EINVAL;
    }
    {
        std::lock_guard lk(mu_);
        upstreams_ = csv;
        std::lock_guard pk(pool_mu_);
        ++pool_gen_;
        pool_.clear();
        tls_ = std::move(tls);
        cache_.clear();
    }
    std::lock_guard lk(async_mu_);
    if (tls_async_ && tls_async_->pending()) tls_async_old_.push_back(std::move(tls_async_));
    tls_async_ = std::move(tls_async);
    // The next query makes a channel with the new servers; c-ares 1.18 will not
    // change the servers of a channel with queries in flight.
    if (async_ch_ && async_pending_ == 0) async_ch_.reset();
    else if (async_ch_) async_stale_ = true;
    return AISID_OK;
}

bool LegacyResolver::cached(const std::string &key, LegacyAnswer &out) {
    std::lock_guard lk(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) return false;
    auto now = transport::Clock::now();
    if (now >= it->second.expires) {
        cache_.erase(it);
        return false;
    }
    out = it->second.answer;
    // The TTL left, as a cache would answer (RFC 1035 §7.3 / RFC 2181 §8).
    out.ttl = static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(it->second.expires - now).count());
    return true;
}

void LegacyResolver::store(const std::string &key, const LegacyAnswer &a) {
    uint32_t ttl;
    if (a.status == AISID_OK) ttl = a.ttl;
    else if (a.status == AISID_ENOTFOUND || a.status == AISID_ENODATA) ttl = kNegativeTtl;
    else return;  // failures are not cached
    if (ttl == 0) return;  // TTL 0: use once, never cache (RFC 1035 §3.2.1)
    std::lock_guard lk(mu_);
    if (cache_.size() >= kMaxCacheEntries) {
        auto now = transport::Clock::now();
        for (auto it = cache_.begin(); it != cache_.end();)
            it = it->second.expires <= now ? cache_.erase(it) : std::next(it);
        if (cache_.size() >= kMaxCacheEntries) cache_.erase(cache_.begin());
    }
    cache_[key] = Entry{a, transport::Clock::now() + std::chrono::seconds(ttl)};
}

void LegacyResolver::clear_cache() {
    std::lock_guard lk(mu_);
    cache_.clear();
}

LegacyAnswer LegacyResolver::resolve(const std::string &name, transport::Clock::time_point deadline) {
    std::string key = key_of(name);
    LegacyAnswer out;
    if (cached(key, out)) {
        counters.cache_hits.fetch_add(1, std::memory_order_relaxed);
        return out;
    }
    counters.queries.fetch_add(1, std::memory_order_relaxed);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - transport::Clock::now()).count();
    if (left <= 0) {
        out.status = AISID_ETIMEOUT;
        return out;
    }
    std::shared_ptr<transport::AddressLookup> tls;
    bool plain;
    {
        std::lock_guard lk(mu_);
        tls = tls_;
        plain = !upstreams_.empty();
    }
    if (tls) {
        // DoT/DoH first; c-ares only for plain upstreams the caller listed too.
        auto r = tls->resolve(name, deadline);
        out.status = from_lookup(r.status);
        out.addrs = std::move(r.addrs);
        out.ttl = r.ttl;
        bool failed = out.status == AISID_ETIMEOUT || out.status == AISID_ENETWORK;
        if (!failed || !plain || transport::Clock::now() >= deadline) {
            store(key, out);
            return out;
        }
        left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - transport::Clock::now()).count();
    }
    aisid_status_t st;
    uint64_t gen = 0;
    Channel ch = acquire_channel(st, gen);
    if (!ch) {
        out.status = st;
        return out;
    }
    BlockingQuery q;
    ares_addrinfo_hints h{};
    h.ai_family = AF_UNSPEC;
    h.ai_socktype = SOCK_STREAM;
    h.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(
        ch.get(), name.c_str(), nullptr, &h,
        [](void *arg, int status, int, ares_addrinfo *res) {
            auto *bq = static_cast<BlockingQuery *>(arg);
            bq->answer = from_addrinfo(status, res);
            bq->done = true;
        },
        &q);
    bool timed_out = false;
    while (!q.done) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(ch.get(), socks, ARES_GETSOCK_MAXNUM);
        pollfd p[ARES_GETSOCK_MAXNUM];
        nfds_t n = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
            short ev = 0;
            if (ARES_GETSOCK_READABLE(bits, i)) ev |= POLLIN;
            if (ARES_GETSOCK_WRITABLE(bits, i)) ev |= POLLOUT;
            if (ev) p[n++] = pollfd{socks[i], ev, 0};
        }
        auto now = transport::Clock::now();
        if (now >= deadline) {
            timed_out = true;
            ares_cancel(ch.get());
            break;
        }
        timeval maxtv{}, tv{};
        auto until = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now).count();
        maxtv.tv_sec = until / 1000000;
        maxtv.tv_usec = until % 1000000;
        timeval *t = ares_timeout(ch.get(), &maxtv, &tv);
        int ms = static_cast<int>(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000);
        int r = ::poll(p, n, ms);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) {
            ares_process_fd(ch.get(), ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            continue;
        }
        for (nfds_t i = 0; i < n; ++i) {
            if (!p[i].revents) continue;
            bool rd = p[i].revents & (POLLIN | POLLERR | POLLHUP);
            bool wr = p[i].revents & POLLOUT;
            ares_process_fd(ch.get(), rd ? p[i].fd : ARES_SOCKET_BAD, wr ? p[i].fd : ARES_SOCKET_BAD);
        }
    }
    // Nothing may stay queued on a channel that goes back to the pool (the
    // callback points at this frame): cancel runs it now.
    const bool finished = q.done;
    if (!finished) ares_cancel(ch.get());
    release_channel(std::move(ch), gen);
    if (timed_out || !finished) {
        out.status = AISID_ETIMEOUT;
        return out;
    }
    store(key, q.answer);
    return std::move(q.answer);
}

// ---- asynchronous --------------------------------------------------------

namespace {
struct AsyncQuery {
    LegacyResolver *self;
    std::string key;
    LegacyResolver::Done done;
};
} // namespace

aisid_status_t LegacyResolver::resolve_async(const std::string &name, Done done) {
    std::string key = key_of(name);
    LegacyAnswer a;
    if (cached(key, a)) {
        counters.cache_hits.fetch_add(1, std::memory_order_relaxed);
        done(std::move(a));
        return AISID_OK;
    }
    std::lock_guard lk(async_mu_);
    if (tls_async_) {
        // DoT/DoH on the caller's event loop (async_fds/async_process below).
        bool plain;
        {
            std::lock_guard lk2(mu_);
            plain = !upstreams_.empty();
        }
        counters.queries.fetch_add(1, std::memory_order_relaxed);
        tls_async_->resolve(name, [this, key, name, plain, done](transport::AddressLookup::Addresses r) mutable {
            LegacyAnswer a;
            a.status = from_lookup(r.status);
            a.addrs = std::move(r.addrs);
            a.ttl = r.ttl;
            if ((a.status == AISID_ETIMEOUT || a.status == AISID_ENETWORK) && plain) {
                // The caller's plain upstreams after the encrypted ones (c-ares).
                async_plain(name, std::move(done));
                return;
            }
            store(key, a);
            done(std::move(a));
        });
        return AISID_OK;
    }
    return async_plain(name, std::move(done));
}

aisid_status_t LegacyResolver::async_plain(const std::string &name, Done done) {
    std::string key = key_of(name);
    std::lock_guard lk(async_mu_);
    if (async_ch_ && async_stale_ && async_pending_ == 0) {
        async_ch_.reset();
        async_stale_ = false;
    }
    if (!async_ch_) {
        async_stale_ = false;
        aisid_status_t st;
        async_ch_ = make_channel(timeout_ms(), st);
        if (!async_ch_) return st;
    }
    counters.queries.fetch_add(1, std::memory_order_relaxed);
    ++async_pending_;
    auto *q = new AsyncQuery{this, key, std::move(done)};
    ares_addrinfo_hints h{};
    h.ai_family = AF_UNSPEC;
    h.ai_socktype = SOCK_STREAM;
    h.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(
        async_ch_.get(), name.c_str(), nullptr, &h,
        [](void *arg, int status, int, ares_addrinfo *res) {
            std::unique_ptr<AsyncQuery> q(static_cast<AsyncQuery *>(arg));
            LegacyAnswer a = from_addrinfo(status, res);
            --q->self->async_pending_;
            q->self->store(q->key, a);
            q->done(std::move(a));
        },
        q);
    return AISID_OK;
}

size_t LegacyResolver::async_fds(pollfd *fds, size_t max) {
    std::lock_guard lk(async_mu_);
    size_t n = 0;
    std::vector<transport::PollFd> tf;
    if (tls_async_) tls_async_->fds(tf);
    for (auto &o : tls_async_old_) o->fds(tf);
    for (const transport::PollFd &f : tf)
        if (n < max) fds[n++] = pollfd{f.fd, f.events, 0};
    if (!async_ch_) return n;
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(async_ch_.get(), socks, ARES_GETSOCK_MAXNUM);
    for (int i = 0; i < ARES_GETSOCK_MAXNUM && n < max; ++i) {
        short ev = 0;
        if (ARES_GETSOCK_READABLE(bits, i)) ev |= POLLIN;
        if (ARES_GETSOCK_WRITABLE(bits, i)) ev |= POLLOUT;
        if (ev) fds[n++] = pollfd{socks[i], ev, 0};
    }
    return n;
}

int LegacyResolver::async_timeout_ms() {
    std::lock_guard lk(async_mu_);
    int ms = -1;
    auto fold = [&ms](int t) {
        if (t >= 0 && (ms < 0 || t < ms)) ms = t;
    };
    if (tls_async_) fold(tls_async_->next_timeout_ms());
    for (auto &o : tls_async_old_) fold(o->next_timeout_ms());
    if (!async_ch_ || async_pending_ == 0) return ms;
    timeval tv{};
    timeval *t = ares_timeout(async_ch_.get(), nullptr, &tv);
    if (t) fold(static_cast<int>(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000));
    return ms;
}

void LegacyResolver::tls_async_process(const pollfd *fds, size_t n) {
    std::vector<transport::AsyncAddressLookup *> all;
    if (tls_async_) all.push_back(tls_async_.get());
    for (auto &o : tls_async_old_) all.push_back(o.get());
    for (transport::AsyncAddressLookup *l : all) {
        for (size_t i = 0; i < n; ++i)
            if (fds[i].revents) l->process(fds[i].fd, fds[i].revents);
        l->process_timeouts();
    }
    std::erase_if(tls_async_old_, [](const auto &o) { return o->pending() == 0; });
}

void LegacyResolver::async_process(const pollfd *fds, size_t n) {
    std::lock_guard lk(async_mu_);
    tls_async_process(fds, n);
    if (!async_ch_) return;
    bool any = false;
    for (size_t i = 0; i < n; ++i) {
        bool rd = fds[i].revents & (POLLIN | POLLERR | POLLHUP);
        bool wr = fds[i].revents & POLLOUT;
        if (!rd && !wr) continue;
        any = true;
        ares_process_fd(async_ch_.get(), rd ? fds[i].fd : ARES_SOCKET_BAD, wr ? fds[i].fd : ARES_SOCKET_BAD);
        if (!async_ch_) return;
    }
    if (!any) ares_process_fd(async_ch_.get(), ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

void LegacyResolver::async_process_fd(int rfd, int wfd) {
    std::lock_guard lk(async_mu_);
    pollfd p[2] = {{rfd, POLLIN, rfd >= 0 ? short(POLLIN) : short(0)}, {wfd, POLLOUT, wfd >= 0 ? short(POLLOUT) : short(0)}};
    tls_async_process(p, 2);
    if (!async_ch_) return;
    ares_process_fd(async_ch_.get(), rfd < 0 ? ARES_SOCKET_BAD : rfd, wfd < 0 ? ARES_SOCKET_BAD : wfd);
}

size_t LegacyResolver::async_pending() {
    std::lock_guard lk(async_mu_);
    size_t n = async_pending_;
    if (tls_async_) n += tls_async_->pending();
    for (auto &o : tls_async_old_) n += o->pending();
    return n;
}

void LegacyResolver::async_cancel() {
    std::lock_guard lk(async_mu_);
    if (tls_async_) tls_async_->cancel();
    for (auto &o : tls_async_old_) o->cancel();
    tls_async_old_.clear();
    if (async_ch_) ares_cancel(async_ch_.get());
}

} // namespace aisid::sdk
