// The C API (aisid.h) over the SDK client. No exception crosses it.
#include "aisid/aisid.h"

#include "aisid/client/client.hpp"
#include "aisid/core/socket_address.hpp"

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

struct aisid_client {
    aisid::sdk::ClientCore impl;
    explicit aisid_client(unsigned flags) : impl(flags) {}
};

namespace {

thread_local std::string tl_error;

void set_error(std::string s) { tl_error = std::move(s); }

template <class F> aisid_status_t guarded(F &&f) {
    try {
        return f();
    } catch (const std::bad_alloc &) {
        set_error("out of memory");
        return AISID_ENOMEM;
    } catch (const std::system_error &e) {
        set_error(e.what());
        return AISID_ESYSTEM;
    } catch (const std::exception &e) {
        set_error(e.what());
        return AISID_ESYSTEM;
    }
}

using aisid::transport::Clock;

// Results freed on this thread, kept for its next resolutions: an application
// that resolves and frees in turn never reaches malloc, and a kept result
// still holds its snapshot reference, so that the next answer from the same
// snapshot takes it without an atomic operation (a shared_ptr assigned the
// pointer it already holds). A thread keeps a few; its exit frees them. Like
// the zone store's per-thread snapshot, a kept result may hold a replaced
// snapshot until this thread resolves again or ends. Under AddressSanitizer
// none is kept, so that a use after aisid_result_free is still caught.
#if defined(__SANITIZE_ADDRESS__)
constexpr unsigned kKeptResults = 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr unsigned kKeptResults = 0;
#else
constexpr unsigned kKeptResults = 8;
#endif
#else
constexpr unsigned kKeptResults = 8;
#endif

// Trivially destructible, so usable until the thread ends; the exit hook below
// empties it (and makes later frees go straight to delete).
struct KeptResults {
    aisid_result *r[kKeptResults ? kKeptResults : 1];
    unsigned n;
    bool hooked; // the exit hook is registered
    bool closed; // the exit hook ran
};
thread_local KeptResults tl_kept;

struct KeptResultsExit {
    bool armed = false;
    ~KeptResultsExit() {
        KeptResults &k = tl_kept;
        k.closed = true;
        while (k.n) delete k.r[--k.n];
    }
};
thread_local KeptResultsExit tl_kept_exit;

aisid_result *new_result() {
    KeptResults &k = tl_kept;
    if (k.n) {
        aisid_result *r = k.r[--k.n];
        r->reset();
        return r;
    }
    return new aisid_result; // default-initialized: no need to zero the name buffer
}

void free_result(aisid_result *r) {
    KeptResults &k = tl_kept;
    if (k.n < kKeptResults && !k.closed) {
        if (!k.hooked) {
            tl_kept_exit.armed = true; // constructs it: its destructor runs at this thread's exit
            k.hooked = true;
        }
        k.r[k.n++] = r;
        return;
    }
    delete r;
}

// Owns a result until it is handed to the caller.
struct ResultGuard {
    aisid_result *r = new_result();
    ~ResultGuard() {
        if (r) free_result(r);
    }
    aisid_result *release() { return std::exchange(r, nullptr); }
};

} // namespace

extern "C" {

aisid_status_t aisid_client_new(aisid_client_t **out) { return aisid_client_new_flags(out, 0); }

aisid_status_t aisid_client_new_flags(aisid_client_t **out, unsigned flags) {
    if (!out) return AISID_EINVAL;
    *out = nullptr;
    return guarded([&] {
        auto *c = new aisid_client(flags);
        auto errs = c->impl.zones().load_errors();
        std::string msg;
        for (const auto &e : errs) msg += (msg.empty() ? "" : "; ") + e;
        set_error(msg);
        *out = c;
        return AISID_OK;
    });
}

void aisid_client_free(aisid_client_t *c) { delete c; }

aisid_status_t aisid_client_add_zone_file(aisid_client_t *c, const char *path) {
    if (!c || !path) return AISID_EINVAL;
    return guarded([&] {
        std::string err;
        if (!c->impl.zones().add_file(path, err)) {
            set_error(err);
            return AISID_EZONE;
        }
        set_error("");
        return AISID_OK;
    });
}

aisid_status_t aisid_client_set_upstreams(aisid_client_t *c, const char *csv) {
    if (!c || !csv) return AISID_EINVAL;
    return guarded([&] {
        aisid_status_t s = c->impl.legacy().set_upstreams(csv);
        set_error(s == AISID_OK ? "" : std::string("bad upstream list '") + csv + "' (ADDR[:PORT],...)");
        return s;
    });
}

aisid_status_t aisid_client_set_attempt_delay(aisid_client_t *c, int ms) {
    if (!c || ms < 10 || ms > 10000) return AISID_EINVAL;
    c->impl.set_attempt_delay_ms(ms);
    return AISID_OK;
}

aisid_status_t aisid_client_set_legacy_timeout(aisid_client_t *c, int ms) {
    if (!c || ms < 1) return AISID_EINVAL;
    c->impl.legacy().set_timeout_ms(ms);
    return AISID_OK;
}

aisid_status_t aisid_client_reload(aisid_client_t *c) {
    if (!c) return AISID_EINVAL;
    return guarded([&] {
        std::string err;
        bool ok = c->impl.zones().reload(err);
        set_error(err);
        return ok ? AISID_OK : AISID_EZONE;
    });
}

uint64_t aisid_client_zone_generation(const aisid_client_t *c) {
    return c ? const_cast<aisid_client_t *>(c)->impl.zones().generation() : 0;
}

void aisid_client_forget(aisid_client_t *c) {
    if (!c) return;
    c->impl.forget_networks();
    c->impl.legacy().clear_cache();
}

aisid_status_t aisid_resolve(aisid_client_t *c, const char *name, aisid_result_t **out) {
    if (!out) return AISID_EINVAL;
    *out = nullptr;
    if (!c || !name) return AISID_EINVAL;
    return guarded([&] {
        ResultGuard g;
        aisid_status_t s = c->impl.resolve(name, *g.r, aisid::transport::Clock::time_point::max());
        if (s != AISID_OK) {
            set_error(std::string(name) + ": " + aisid_strerror(s));
            return s;
        }
        *out = g.release();
        return AISID_OK;
    });
}

aisid_status_t aisid_explain(aisid_client_t *c, const char *query, aisid_result_t **out) {
    if (!out) return AISID_EINVAL;
    *out = nullptr;
    if (!c || !query) return AISID_EINVAL;
    return guarded([&] {
        ResultGuard g;
        bool filled = false;
        aisid_status_t s = c->impl.explain(query, *g.r, filled);
        if (s != AISID_OK) set_error(std::string(query) + ": " + aisid_strerror(s));
        if (filled) *out = g.release();
        return s;
    });
}

size_t aisid_result_count(const aisid_result_t *r) { return r ? r->addrs.size() : 0; }

int aisid_result_address(const aisid_result_t *r, size_t i, struct in6_addr *out) {
    if (!r || !out || i >= r->addrs.size()) return -1;
    *out = r->addrs[i];
    return 0;
}

int aisid_result_is_aisid(const aisid_result_t *r) { return r && r->source == AISID_SOURCE_AISID; }

aisid_source_t aisid_result_source(const aisid_result_t *r) { return r ? r->source : AISID_SOURCE_LEGACY; }

const char *aisid_result_name(const aisid_result_t *r) { return r ? r->name().c_str() : ""; }

uint32_t aisid_result_ttl(const aisid_result_t *r) { return r ? r->ttl : 0; }

int aisid_result_fields(const aisid_result_t *r, aisid_fields_t *out) {
    if (!r || !out || !r->has_fields) return -1;
    *out = r->fields;
    return 0;
}

const char *aisid_result_term(const aisid_result_t *r, aisid_dim_t d) {
    if (!r || !r->has_fields || d < AISID_DIM_OBJECT || d > AISID_DIM_METHOD) return nullptr;
    const std::string *t = r->term(d);
    return t ? t->c_str() : nullptr;
}

const char *aisid_result_zone(const aisid_result_t *r) { return r && r->zone ? r->zone_name().c_str() : nullptr; }

size_t aisid_result_fallback_count(const aisid_result_t *r) { return r ? r->fallbacks().size() : 0; }

int aisid_result_fallback(const aisid_result_t *r, size_t i, const char **target, uint16_t *port) {
    if (!r || i >= r->fallbacks().size()) return -1;
    if (target) *target = r->fallbacks()[i].first.c_str();
    if (port) *port = r->fallbacks()[i].second;
    return 0;
}

aisid_rule_t aisid_result_rule(const aisid_result_t *r) { return r ? r->rule : AISID_RULE_NONE; }

const char *aisid_result_local_zone(const aisid_result_t *r) {
    return r && r->local_zone ? r->local_zone_name().c_str() : nullptr;
}

const char *aisid_result_zone_file(const aisid_result_t *r) {
    return r && r->local_zone && !r->local_zone->file().empty() ? r->local_zone->file().c_str() : nullptr;
}

size_t aisid_result_verification_count(const aisid_result_t *r) {
    return r && r->local_zone ? r->local_zone->verification().size() : 0;
}

int aisid_result_verification(const aisid_result_t *r, size_t i, const char **key, const char **value) {
    if (!r || !r->local_zone || i >= r->local_zone->verification().size()) return -1;
    const auto &[k, v] = r->local_zone->verification()[i];
    if (key) *key = k.c_str();
    if (value) *value = v.c_str();
    return 0;
}

size_t aisid_result_svcb_count(const aisid_result_t *r) { return r ? r->svcb().size() : 0; }

int aisid_result_svcb(const aisid_result_t *r, size_t i, uint16_t *priority, const char **target, uint16_t *port) {
    if (!r || i >= r->svcb().size()) return -1;
    const aisid_result::Svcb &s = r->svcb()[i];
    if (priority) *priority = s.priority;
    if (target) *target = s.target.c_str();
    if (port) *port = s.port;
    return 0;
}

aisid_status_t aisid_name_canonical(const char *name, char *buf, size_t size) {
    if (!name || !*name || !buf) return AISID_EINVAL;
    aisid::WireName n;
    if (!aisid::name_from_text(name, n)) return AISID_EINVAL;
    return guarded([&] {
        std::string t = aisid::name_to_text(n.wire());
        if (t.size() >= size) return AISID_EINVAL;
        std::memcpy(buf, t.c_str(), t.size() + 1);
        return AISID_OK;
    });
}

aisid_status_t aisid_parse_sockaddr(const char *text, uint16_t default_port, struct sockaddr_storage *out,
                                    socklen_t *len) {
    if (!text || !out || !len || default_port == 0) return AISID_EINVAL;
    return guarded([&] {
        auto sa = aisid::parse_sockaddr(text, aisid::AddressRules{default_port});
        if (!sa) return AISID_EINVAL;
        *out = sa->ss;
        *len = sa->len;
        return AISID_OK;
    });
}

void aisid_result_free(aisid_result_t *r) {
    if (r) free_result(r);
}

aisid_status_t aisid_resolve_async(aisid_client_t *c, const char *name, aisid_resolve_cb cb, void *arg) {
    if (!c || !name || !cb) return AISID_EINVAL;
    return guarded([&] {
        ResultGuard r;
        auto &impl = c->impl;
        switch (impl.resolve_local(name, *r.r)) {
        case aisid::sdk::Local::Answered:
            impl.counters().count_resolve(r.r->source == AISID_SOURCE_AISID);
            cb(arg, AISID_OK, r.release());
            return AISID_OK;
        case aisid::sdk::Local::NotFound:
            impl.counters().count_resolve(true);
            cb(arg, AISID_ENOTFOUND, nullptr);
            return AISID_OK;
        case aisid::sdk::Local::NoData:
            impl.counters().count_resolve(true);
            cb(arg, AISID_ENODATA, nullptr);
            return AISID_OK;
        case aisid::sdk::Local::Invalid: return AISID_EINVAL;
        case aisid::sdk::Local::NotLocal: break;
        }
        impl.counters().count_resolve(false);
        aisid::WireName n;
        aisid::name_from_text(name, n);
        std::string canon = aisid::name_to_text(n.wire());
        return impl.legacy().resolve_async(name, [cb, arg, canon](aisid::sdk::LegacyAnswer &&a) {
            if (a.status != AISID_OK) {
                cb(arg, a.status, nullptr);
                return;
            }
            aisid_result *res = new (std::nothrow) aisid_result();
            if (!res) {
                cb(arg, AISID_ENOMEM, nullptr);
                return;
            }
            res->set_name_text(canon);
            res->source = AISID_SOURCE_LEGACY;
            res->ttl = a.ttl;
            res->addrs = std::move(a.addrs);
            cb(arg, AISID_OK, res);
        });
    });
}

size_t aisid_async_fds(aisid_client_t *c, struct pollfd *fds, size_t max) {
    if (!c || (!fds && max)) return 0;
    return c->impl.legacy().async_fds(fds, max);
}

int aisid_async_timeout(aisid_client_t *c) { return c ? c->impl.legacy().async_timeout_ms() : -1; }

void aisid_async_process(aisid_client_t *c, const struct pollfd *fds, size_t n) {
    if (c) c->impl.legacy().async_process(fds, fds ? n : 0);
}

void aisid_async_process_fd(aisid_client_t *c, int read_fd, int write_fd) {
    if (c) c->impl.legacy().async_process_fd(read_fd, write_fd);
}

size_t aisid_async_pending(aisid_client_t *c) { return c ? c->impl.legacy().async_pending() : 0; }

void aisid_async_cancel(aisid_client_t *c) {
    if (c) c->impl.legacy().async_cancel();
}

int aisid_connect(aisid_client_t *c, const char *name, uint16_t port, int timeout_ms, aisid_status_t *err) {
    return aisid_connect_ex(c, name, port, timeout_ms, err, nullptr);
}

int aisid_connect_ex(aisid_client_t *c, const char *name, uint16_t port, int timeout_ms, aisid_status_t *err,
                     aisid_connect_info_t *info) {
    aisid_connect_info_t local{};
    aisid_connect_info_t &inf = info ? *info : local;
    aisid_status_t st = AISID_EINVAL;
    int fd = -1;
    if (c && name) {
        st = guarded([&] {
            aisid_status_t s;
            fd = c->impl.connect(name, port, timeout_ms, inf, s);
            return s;
        });
        if (st != AISID_OK) set_error(std::string(name) + ": " + aisid_strerror(st));
    }
    if (err) *err = st;
    return st == AISID_OK ? fd : -1;
}

void aisid_client_counters(const aisid_client_t *c, aisid_counters_t *out, size_t size) {
    if (!c || !out) return;
    auto &impl = const_cast<aisid_client_t *>(c)->impl;
    auto &k = impl.counters();
    auto &l = impl.legacy().counters;
    auto &z = impl.zones();
    aisid_counters_t v{};
    v.resolve_aisid = k.resolves.sum(aisid::sdk::ResolveCounters::kResolveAisid);
    v.resolve_legacy = k.resolves.sum(aisid::sdk::ResolveCounters::kResolveLegacy);
    v.legacy_cache_hits = l.cache_hits.load();
    v.legacy_queries = l.queries.load();
    v.connect_aisid_won = k.connect_aisid_won.load();
    v.connect_fallback_won = k.connect_fallback_won.load();
    v.connect_legacy = k.connect_legacy.load();
    v.connect_failed = k.connect_failed.load();
    v.fallback_unreachable = k.fb_unreachable.load();
    v.fallback_refused = k.fb_refused.load();
    v.fallback_delay = k.fb_delay.load();
    v.fallback_remembered = k.fb_remembered.load();
    v.fallback_error = k.fb_error.load();
    v.zone_reloads = z.reloads();
    v.zone_reload_errors = z.reload_errors();
    std::memcpy(out, &v, std::min(size, sizeof v));
}

const char *aisid_strerror(aisid_status_t s) {
    switch (s) {
    case AISID_OK: return "success";
    case AISID_ENOTFOUND: return "name not found";
    case AISID_ENODATA: return "name has no address";
    case AISID_EINVAL: return "invalid argument";
    case AISID_ENOMEM: return "out of memory";
    case AISID_EZONE: return "bad zone file";
    case AISID_ETIMEOUT: return "timed out";
    case AISID_ESERVFAIL: return "legacy DNS upstream failed";
    case AISID_ENETWORK: return "no legacy DNS upstream reachable";
    case AISID_ECONNECT: return "could not connect";
    case AISID_EAGAIN: return "query pending";
    case AISID_ECANCELLED: return "cancelled";
    case AISID_ESYSTEM: return "system error";
    }
    return "unknown status";
}

const char *aisid_last_error(void) { return tl_error.c_str(); }

const char *aisid_version(void) { return AISID_VERSION; }

} // extern "C"
