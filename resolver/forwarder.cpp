#include "aisid/resolver/forwarder.hpp"

#include "aisid/core/log.hpp"

#include <algorithm>

namespace aisid::resolver {

namespace {
constexpr size_t kOut = 65535;
uint64_t ms(uint64_t us) { return us / 1000; }
} // namespace

void InflightToken::release() {
    if (!sh) return;
    sh->client_inflight.release(slot);
    sh->inflight_total.fetch_sub(1, std::memory_order_relaxed);
    sh = nullptr;
}

const char *proto_name(UpProto p) {
    switch (p) {
    case UpProto::udp: return "udp";
    case UpProto::tcp: return "tcp";
    case UpProto::encrypted: return "encrypted";
    }
    return "?";
}

// ---- InflightRegistry ----

InflightRegistry::Shard &InflightRegistry::shard_of(std::string_view key) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (char c : key) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
    return shards_[(h ^ (h >> 31)) % kShards];
}

bool InflightRegistry::claim(std::string_view key, unsigned worker) {
    if (worker >= kMaxWorkers) return true;
    Shard &s = shard_of(key);
    std::lock_guard lk(s.mu);
    auto [it, fresh] = s.map.try_emplace(std::string(key), Entry{worker, 0});
    if (fresh || it->second.owner == worker) return true;
    it->second.waiters |= uint64_t(1) << worker;
    return false;
}

uint64_t InflightRegistry::release(std::string_view key, unsigned worker) {
    if (worker >= kMaxWorkers) return 0;
    Shard &s = shard_of(key);
    std::lock_guard lk(s.mu);
    auto it = s.map.find(std::string(key));
    if (it == s.map.end() || it->second.owner != worker) return 0;
    uint64_t w = it->second.waiters;
    s.map.erase(it);
    return w;
}

void InflightRegistry::withdraw(std::string_view key, unsigned worker) {
    if (worker >= kMaxWorkers) return;
    Shard &s = shard_of(key);
    std::lock_guard lk(s.mu);
    auto it = s.map.find(std::string(key));
    if (it != s.map.end()) it->second.waiters &= ~(uint64_t(1) << worker);
}

size_t InflightRegistry::size() const {
    size_t n = 0;
    for (const Shard &s : shards_) {
        std::lock_guard lk(s.mu);
        n += s.map.size();
    }
    return n;
}

// ---- Forwarder ----

Forwarder::Forwarder(QueryCore &core, const ForwarderOptions &opts, InflightRegistry *registry,
                     std::function<uint16_t()> rng)
    : core_(core), o_(opts), registry_(registry), rng_(std::move(rng)), out_(new uint8_t[kOut]) {
    if (!o_.preferred) o_.preferred = &own_preferred_;
}

Forwarder::~Forwarder() { clear(); }

void Forwarder::clear() {
    if (registry_)
        for (auto &[k, l] : lookups_)
            if (l->owner) registry_->release(k, o_.worker);
    lookups_.clear();
    tries_.clear();
    actions_.clear();
}

unsigned Forwarder::max_tries() const { return std::max<unsigned>(2, unsigned(rt_->upstreams.size())); }

void Forwarder::reply(ClientRef &&c, const CoreResult &r, const uint8_t *out) {
    FwdAction a;
    a.kind = FwdAction::Kind::reply;
    a.client = std::move(c);
    a.outcome = r.outcome;
    if (r.len) a.bytes.assign(reinterpret_cast<const char *>(out), r.len);
    actions_.push_back(std::move(a));
}

void Forwarder::answer(Waiter &w, const CoreResult &r) {
    w.answered = true;
    if (w.chain.empty()) {
        reply(std::move(w.client), r, out_.get());
        return;
    }
    std::string tail(reinterpret_cast<const char *>(out_.get()), r.len);
    CoreResult s = r;
    s.len = splice_cname(w.orig, w.client.tcp, reinterpret_cast<const uint8_t *>(w.chain.data()), w.chain.size(),
                         reinterpret_cast<const uint8_t *>(tail.data()), tail.size(), out_.get(), kOut);
    if (!s.len) {
        s.outcome = Outcome::servfail;
        s.len = write_error(w.orig, reinterpret_cast<const uint8_t *>(w.chain.data()), true, kServFail, out_.get(),
                            kOut);
    }
    reply(std::move(w.client), s, out_.get());
}

void Forwarder::query(const Query &q, std::string msg, ClientRef client, uint64_t now_us) {
    Waiter w;
    w.q = q;
    w.client = std::move(client);
    add_waiter(q, std::move(msg), std::move(w), now_us);
}

void Forwarder::query_cname(const Query &orig, std::string chain, const Query &tq, std::string tmsg,
                            ClientRef client, uint64_t now_us) {
    Waiter w;
    w.q = tq;
    w.client = std::move(client);
    w.chain = std::move(chain);
    w.orig = orig;
    add_waiter(tq, std::move(tmsg), std::move(w), now_us);
}

void Forwarder::add_waiter(const Query &q, std::string msg, Waiter w, uint64_t now_us) {
    auto *m = reinterpret_cast<const uint8_t *>(msg.data());
    if (!rt_ || rt_->upstreams.empty()) {
        CoreResult r = core_.answer_failure(q, m, w.client.tcp, ms(now_us), out_.get(), kOut);
        answer(w, r);
        return;
    }
    uint8_t key[kMaxNameLen + 8];
    size_t klen = make_cache_key(q.qname.wire(), q.qtype, q.qclass, q.do_bit, q.cd(), key);
    std::string k(reinterpret_cast<const char *>(key), klen);
    auto it = lookups_.find(k);
    if (it != lookups_.end()) {
        // The same question is already asked: this client waits for that answer.
        Lookup &l = *it->second;
        if (l.waiters.size() >= o_.max_followers) {
            CoreResult r = core_.answer_failure(q, m, w.client.tcp, ms(now_us), out_.get(), kOut);
            answer(w, r);
            return;
        }
        w.msg = std::move(msg);
        l.waiters.push_back(std::move(w));
        // Past the client-response timer already: an expired answer, if any, now.
        if (l.stale_checked) stale_reply(l.waiters.back(), now_us);
        return;
    }
    auto l = std::make_unique<Lookup>();
    l->key = std::move(k);
    l->q = q;
    l->msg = msg;
    w.msg = std::move(msg);
    l->waiters.push_back(std::move(w));
    if (o_.stale_client_timeout_ms) l->stale_at_us = now_us + uint64_t(o_.stale_client_timeout_ms) * 1000;
    Lookup &ref = *l;
    lookups_.emplace(ref.key, std::move(l));
    start(ref, now_us);
}

void Forwarder::prefetch(const Query &q, std::string msg, uint64_t now_us) {
    if (!rt_ || rt_->upstreams.empty()) return;
    // Refreshing is a courtesy: never at the cost of client queries' room.
    if (lookups_.size() >= std::max<uint32_t>(1, rt_->max_inflight / 2)) return;
    uint8_t key[kMaxNameLen + 8];
    size_t klen = make_cache_key(q.qname.wire(), q.qtype, q.qclass, q.do_bit, q.cd(), key);
    std::string k(reinterpret_cast<const char *>(key), klen);
    if (lookups_.count(k)) return;
    auto l = std::make_unique<Lookup>();
    l->key = std::move(k);
    l->q = q;
    l->msg = std::move(msg);
    Lookup &ref = *l;
    lookups_.emplace(ref.key, std::move(l));
    start(ref, now_us);
}

void Forwarder::start(Lookup &l, uint64_t now_us) {
    if (registry_) {
        if (!registry_->claim(l.key, o_.worker)) {
            // Another worker asks already; its answer comes through shared_answer().
            // Should it not come (that worker stopped), we ask ourselves.
            l.remote = true;
            l.deadline_us = now_us + uint64_t(rt_->timeout_ms) * 1000 * (max_tries() + 1);
            return;
        }
        l.owner = true;
    }
    l.start_index = o_.preferred->load(std::memory_order_relaxed) % rt_->upstreams.size();
    send_next(l, now_us);
}

void Forwarder::send_next(Lookup &l, uint64_t now_us) {
    if (l.tries < max_tries()) {
        uint32_t up = uint32_t((l.start_index + l.tries) % rt_->upstreams.size());
        ++l.tries;
        send_try(l, up, rt_->upstreams[up]->up.encrypted ? UpProto::encrypted : UpProto::udp, now_us);
        return;
    }
    fail(l, now_us);
}

void Forwarder::send_try(Lookup &l, uint32_t up, UpProto proto, uint64_t now_us) {
    rt_->upstreams[up]->queries.fetch_add(1, std::memory_order_relaxed);
    l.up_index = up;
    l.proto = proto;
    l.id = rng_();
    l.try_id = next_try_++;
    l.sent_us = now_us;
    // TCP and the encrypted transports may need a handshake first.
    l.deadline_us = now_us + uint64_t(rt_->timeout_ms) * 1000 * (proto == UpProto::udp ? 1 : 2);
    tries_.emplace(l.try_id, &l);
    FwdAction a;
    a.kind = FwdAction::Kind::send;
    a.try_id = l.try_id;
    a.upstream = up;
    a.proto = proto;
    size_t n = core_.upstream_query(l.q, reinterpret_cast<const uint8_t *>(l.msg.data()), l.id, out_.get(), kOut);
    a.bytes.assign(reinterpret_cast<const char *>(out_.get()), n);
    actions_.push_back(std::move(a));
}

void Forwarder::cancel_try(Lookup &l) {
    if (!l.try_id) return;
    tries_.erase(l.try_id);
    FwdAction a;
    a.kind = FwdAction::Kind::cancel;
    a.try_id = l.try_id;
    a.proto = l.proto;
    actions_.push_back(std::move(a));
    l.try_id = 0;
}

void Forwarder::note_failure(uint32_t up) {
    if (up >= rt_->upstreams.size()) return;
    UpstreamHealth &h = *rt_->upstreams[up];
    h.failures.fetch_add(1, std::memory_order_relaxed);
    uint32_t c = h.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
    if (c == 3) AISID_LOG(LogLevel::warn, "upstream " + redacted_upstream(h.up.text) + " is not answering");
}

void Forwarder::note_success(uint32_t up, uint64_t rtt_us) {
    UpstreamHealth &h = *rt_->upstreams[up];
    h.answers.fetch_add(1, std::memory_order_relaxed);
    if (h.consecutive_failures.exchange(0, std::memory_order_relaxed) >= 3)
        AISID_LOG(LogLevel::info, "upstream " + redacted_upstream(h.up.text) + " answers again");
    uint64_t old = h.rtt_us_ewma.load(std::memory_order_relaxed);
    h.rtt_us_ewma.store(old ? (old * 7 + rtt_us) / 8 : std::max<uint64_t>(rtt_us, 1), std::memory_order_relaxed);
    o_.preferred->store(up, std::memory_order_relaxed);
}

void Forwarder::try_failed(Lookup &l, uint64_t now_us) {
    note_failure(l.up_index);
    cancel_try(l);
    send_next(l, now_us);
}

void Forwarder::upstream_bytes(uint64_t try_id, const uint8_t *resp, size_t n, uint64_t now_us) {
    auto it = tries_.find(try_id);
    if (it == tries_.end()) return;  // cancelled or answered already
    Lookup &l = *it->second;
    if (l.up_index >= rt_->upstreams.size()) {  // a reload removed that upstream meanwhile
        cancel_try(l);
        send_next(l, now_us);
        return;
    }
    switch (QueryCore::check_upstream(l.q, l.id, resp, n)) {
    case QueryCore::Check::ignore:
        // Over UDP, someone else's datagram (RFC 5452): keep waiting. On a
        // stream the one message is the answer, and it is not ours.
        if (l.proto != UpProto::udp) try_failed(l, now_us);
        return;
    case QueryCore::Check::failed: try_failed(l, now_us); return;
    case QueryCore::Check::truncated:
        if (l.proto != UpProto::udp) {
            try_failed(l, now_us);
            return;
        }
        // RFC 7766 §5: the same server again, over TCP (no new try counted).
        cancel_try(l);
        send_try(l, l.up_index, UpProto::tcp, now_us);
        return;
    case QueryCore::Check::ok:
        note_success(l.up_index, now_us - l.sent_us);
        complete(l, resp, n, now_us);
        return;
    }
}

void Forwarder::upstream_error(uint64_t try_id, uint64_t now_us) {
    auto it = tries_.find(try_id);
    if (it == tries_.end()) return;
    try_failed(*it->second, now_us);
}

void Forwarder::complete(Lookup &l, const uint8_t *resp, size_t n, uint64_t now_us) {
    cancel_try(l);
    bool stored = false;
    for (Waiter &w : l.waiters) {
        if (w.answered) continue;
        CoreResult r = core_.answer_from_upstream(w.q, reinterpret_cast<const uint8_t *>(w.msg.data()), resp, n,
                                              w.client.tcp, ms(now_us), out_.get(), kOut);
        stored = true;
        answer(w, r);
    }
    // Nobody left to answer (a prefetch, or every client had the stale
    // answer): the answer still goes into the cache.
    if (!stored)
        core_.answer_from_upstream(l.q, reinterpret_cast<const uint8_t *>(l.msg.data()), resp, n, false, ms(now_us),
                                   out_.get(), kOut);
    finish(l, resp, n);
}

void Forwarder::fail(Lookup &l, uint64_t now_us) {
    cancel_try(l);
    for (Waiter &w : l.waiters) {
        if (w.answered) continue;
        CoreResult r = core_.answer_failure(w.q, reinterpret_cast<const uint8_t *>(w.msg.data()), w.client.tcp, ms(now_us),
                                        out_.get(), kOut);
        answer(w, r);
    }
    finish(l, nullptr, 0);
}

void Forwarder::finish(Lookup &l, const uint8_t *resp, size_t n) {
    if (l.owner && registry_) {
        uint64_t waiting = registry_->release(l.key, o_.worker);
        if (waiting) {
            FwdAction a;
            a.kind = FwdAction::Kind::share;
            a.key = l.key;
            a.workers = waiting;
            if (resp) a.bytes.assign(reinterpret_cast<const char *>(resp), n);
            actions_.push_back(std::move(a));
        }
    }
    std::string key = std::move(l.key);
    lookups_.erase(key);  // l is gone
}

void Forwarder::shared_answer(std::string_view key, const uint8_t *resp, size_t n, uint64_t now_us) {
    auto it = lookups_.find(std::string(key));
    if (it == lookups_.end()) return;
    Lookup &l = *it->second;
    if (n) {
        complete(l, resp, n, now_us);  // checked against the question by the worker that asked
    } else if (l.remote) {
        fail(l, now_us);  // every upstream failed for that worker: no use asking them again
    }
}

bool Forwarder::stale_reply(Waiter &w, uint64_t now_us) {
    if (w.answered) return false;
    CoreResult r = core_.answer_cached(w.q, reinterpret_cast<const uint8_t *>(w.msg.data()), w.client.tcp, ms(now_us),
                                   out_.get(), kOut);
    if (r.verdict != Verdict::Answered) return false;
    answer(w, r);
    return true;
}

void Forwarder::serve_stale(Lookup &l, uint64_t now_us) {
    l.stale_checked = true;
    for (Waiter &w : l.waiters) stale_reply(w, now_us);
}

void Forwarder::tick(uint64_t now_us) {
    std::vector<Lookup *> due;
    for (auto &[k, l] : lookups_)
        if (now_us >= l->deadline_us || (l->stale_at_us && !l->stale_checked && now_us >= l->stale_at_us))
            due.push_back(l.get());
    // Handling one lookup never ends another, so the pointers stay valid.
    for (Lookup *l : due) {
        if (l->stale_at_us && !l->stale_checked && now_us >= l->stale_at_us) serve_stale(*l, now_us);
        if (now_us < l->deadline_us) continue;
        if (l->remote) {
            // The worker asking did not answer in time: ask ourselves.
            if (registry_) registry_->withdraw(l->key, o_.worker);
            l->remote = false;
            l->start_index = o_.preferred->load(std::memory_order_relaxed) % rt_->upstreams.size();
            send_next(*l, now_us);
            continue;
        }
        AISID_LOG(LogLevel::debug, "upstream " +
                                        (l->up_index < rt_->upstreams.size()
                                             ? redacted_upstream(rt_->upstreams[l->up_index]->up.text)
                                             : std::string("?")) +
                                        " timed out (" + proto_name(l->proto) + ")");
        try_failed(*l, now_us);  // may end l
    }
}

uint64_t Forwarder::next_timer() const {
    uint64_t t = UINT64_MAX;
    for (auto &[k, l] : lookups_) {
        t = std::min(t, l->deadline_us);
        if (l->stale_at_us && !l->stale_checked) t = std::min(t, l->stale_at_us);
    }
    return t;
}

} // namespace aisid::resolver
