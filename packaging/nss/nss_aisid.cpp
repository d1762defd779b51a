// libnss_aisid.so.2 — a glibc NSS "hosts" source (SPEC §5): getaddrinfo(),
// gethostbyname2() and getent answer AISID names from the host zone data
// (/etc/aisid/zones, /var/lib/aisid/zones) in process, with no daemon and no
// packet per lookup. Every other name is NOTFOUND so the next source in
// `hosts: files aisid dns` answers it.
//
// Loaded by glibc into any process that resolves a name, so it must be boring:
// no threads of its own, no exception ever escaping, no memory growth, and it
// exports only the _nss_aisid_* entry points (nss_aisid.map).
#include "aisid/core/host_zones.hpp"
#include "aisid/core/zone.hpp"
#include "aisid/core/zone_set.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <nss.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

// struct gaih_addrtuple (for gethostbyname4_r) comes from <nss.h>.

namespace {

using aisid::ZonePtr;
using aisid::ZoneSet;

constexpr int64_t kCheckEveryNs = 1'000'000'000;  // stat the zone files at most once a second
constexpr unsigned kMaxAddrs = 64;                 // addresses answered for one name

int64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void append_stat(std::string &sig, const struct stat &st) {
    char b[160];
    int n = snprintf(b, sizeof b, "%llx:%llx:%llx:%lld.%ld:%lld.%ld;", (unsigned long long)st.st_dev,
                     (unsigned long long)st.st_ino, (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
    sig.append(b, size_t(n));
}

// The host zone data: one ZoneSet snapshot, rebuilt when the signature of the
// zone directories and files (inode, size, mtime, ctime) changes. A lookup
// holds a counted reference, so a reload never pulls data from under a reader.
class HostZones {
public:
    HostZones() { pthread_atfork(&HostZones::prefork, &HostZones::postfork, &HostZones::postfork); }

    std::shared_ptr<const ZoneSet> get() {
        std::lock_guard<std::mutex> g(mu_);
        int64_t now = now_ns();
        if (!cur_ || now >= next_check_) {
            next_check_ = now + kCheckEveryNs;
            try {
                refresh();
            } catch (...) {
                // Out of memory while reloading: keep answering from the last snapshot.
            }
        }
        return cur_;
    }

    static HostZones &instance() {
        // Never destroyed: a thread still resolving while the process exits
        // must not see a destructed object.
        static HostZones *z = new HostZones;
        return *z;
    }

private:
    static void prefork() { instance().mu_.lock(); }
    static void postfork() { instance().mu_.unlock(); }

    void refresh() {
        std::string sig;
        for (const char *d : aisid::kHostZoneDirs) {
            struct stat st;
            sig += d;
            if (stat(d, &st) == 0) append_stat(sig, st);
            else sig += "-;";
        }
        std::vector<std::string> paths = aisid::host_zone_files();
        std::vector<std::string> file_sigs(paths.size());
        for (size_t i = 0; i < paths.size(); ++i) {
            struct stat st;
            if (stat(paths[i].c_str(), &st) == 0) append_stat(file_sigs[i], st);
            sig += paths[i];
            sig += '=';
            sig += file_sigs[i];
        }
        if (cur_ && sig == sig_) return;

        std::map<std::string, FileState> next;
        auto set = std::make_shared<ZoneSet>();
        for (size_t i = 0; i < paths.size(); ++i) {
            FileState fs{file_sigs[i], nullptr};
            auto old = files_.find(paths[i]);
            if (old != files_.end() && old->second.sig == fs.sig) {
                fs.zone = old->second.zone;
            } else {
                auto z = aisid::load_zone_file(paths[i]);
                if (z) fs.zone = *z;
                else if (old != files_.end()) fs.zone = old->second.zone;  // a bad edit keeps the last good copy
            }
            if (fs.zone) set->add(fs.zone);
            next.emplace(paths[i], std::move(fs));
        }
        files_.swap(next);
        sig_.swap(sig);
        cur_ = std::move(set);
    }

    struct FileState {
        std::string sig;
        ZonePtr zone;
    };
    std::mutex mu_;
    std::shared_ptr<const ZoneSet> cur_;
    std::string sig_;
    std::map<std::string, FileState> files_;
    int64_t next_check_ = 0;
};

// The addresses of one name of one family, or why there are none.
struct NssAnswer {
    enum Result { Found, NotFound, Error } result = NotFound;
    unsigned n4 = 0, n6 = 0;
    uint8_t a4[kMaxAddrs][4];
    uint8_t a6[kMaxAddrs][16];
    int32_t ttl = 0;
};

void resolve(const char *name, bool want4, bool want6, NssAnswer &ans) {
    aisid::WireName wn;
    if (!name || !aisid::name_from_text(name, wn) || wn.nlabels == 0) return;
    std::shared_ptr<const ZoneSet> zs = HostZones::instance().get();
    if (!zs) return;
    aisid::Match m = zs->lookup(wn);
    using K = aisid::Match::Kind;
    if (m.kind == K::Synthesized || (m.kind == K::Explicit && m.service)) {
        // AISIDs are IPv6 only: an AF_INET question for one is not ours.
        if (!want6) return;
        memcpy(ans.a6[0], m.aisid.data(), 16);
        ans.n6 = 1;
        ans.ttl = int32_t(m.kind == K::Synthesized ? m.zone->aisid_ttl() : m.service->aaaa_ttl);
    } else if (m.kind == K::Explicit && m.node) {
        // Other records in the zone (e.g. its name servers): what the zone holds.
        for (const aisid::RRset &rs : m.node->rrsets) {
            if (want6 && rs.type == aisid::kTypeAAAA) {
                for (const std::string &rd : rs.rdata)
                    if (rd.size() == 16 && ans.n6 < kMaxAddrs) memcpy(ans.a6[ans.n6++], rd.data(), 16);
                ans.ttl = int32_t(rs.ttl);
            } else if (want4 && rs.type == aisid::kTypeA) {
                for (const std::string &rd : rs.rdata)
                    if (rd.size() == 4 && ans.n4 < kMaxAddrs) memcpy(ans.a4[ans.n4++], rd.data(), 4);
                ans.ttl = int32_t(rs.ttl);
            }
        }
    }
    if (ans.n4 + ans.n6) ans.result = NssAnswer::Found;
}

// Carves aligned pieces out of the caller's buffer.
struct Arena {
    char *p;
    size_t left;
    void *take(size_t n, size_t align) {
        size_t pad = (align - reinterpret_cast<uintptr_t>(p) % align) % align;
        if (pad > left || n > left - pad) return nullptr;
        void *r = p + pad;
        p += pad + n;
        left -= pad + n;
        return r;
    }
    char *copy(const char *s, size_t len) {
        char *d = static_cast<char *>(take(len + 1, 1));
        if (d) {
            memcpy(d, s, len);
            d[len] = 0;
        }
        return d;
    }
};

// The name as asked, without a trailing dot (what nss_files reports too).
size_t name_len(const char *name) {
    size_t n = strlen(name);
    if (n > 1 && name[n - 1] == '.') --n;
    return n;
}

nss_status not_found(int *errnop, int *herrnop) {
    *errnop = ENOENT;
    *herrnop = HOST_NOT_FOUND;
    return NSS_STATUS_NOTFOUND;
}

nss_status too_small(int *errnop, int *herrnop) {
    // glibc grows the buffer and asks again on ERANGE.
    *errnop = ERANGE;
    *herrnop = NETDB_INTERNAL;
    return NSS_STATUS_TRYAGAIN;
}

nss_status internal_error(int *errnop, int *herrnop) {
    // UNAVAIL: glibc moves on to the next source.
    *errnop = ENOMEM;
    *herrnop = NO_RECOVERY;
    return NSS_STATUS_UNAVAIL;
}

nss_status fill_hostent(const char *name, int af, const NssAnswer &ans, hostent *result, char *buffer,
                        size_t buflen, int *errnop, int *herrnop, char **canonp) {
    const unsigned n = af == AF_INET6 ? ans.n6 : ans.n4;
    const size_t alen = af == AF_INET6 ? 16 : 4;
    Arena a{buffer, buflen};
    char *hname = a.copy(name, name_len(name));
    char **aliases = static_cast<char **>(a.take(sizeof(char *), alignof(char *)));
    char **list = static_cast<char **>(a.take((n + 1) * sizeof(char *), alignof(char *)));
    char *addrs = static_cast<char *>(a.take(n * alen, alignof(uint32_t)));
    if (!hname || !aliases || !list || !addrs) return too_small(errnop, herrnop);
    aliases[0] = nullptr;
    for (unsigned i = 0; i < n; ++i) {
        memcpy(addrs + i * alen, af == AF_INET6 ? ans.a6[i] : ans.a4[i], alen);
        list[i] = addrs + i * alen;
    }
    list[n] = nullptr;
    result->h_name = hname;
    result->h_aliases = aliases;
    result->h_addrtype = af;
    result->h_length = int(alen);
    result->h_addr_list = list;
    if (canonp) *canonp = hname;
    *errnop = 0;
    *herrnop = NETDB_SUCCESS;
    return NSS_STATUS_SUCCESS;
}

nss_status byname3(const char *name, int af, hostent *result, char *buffer, size_t buflen, int *errnop,
                   int *herrnop, int32_t *ttlp, char **canonp) noexcept {
    try {
        if (af != AF_INET && af != AF_INET6) {
            *errnop = EAFNOSUPPORT;
            *herrnop = NO_RECOVERY;
            return NSS_STATUS_UNAVAIL;
        }
        NssAnswer ans;
        resolve(name, af == AF_INET, af == AF_INET6, ans);
        if (ans.result != NssAnswer::Found) return not_found(errnop, herrnop);
        nss_status s = fill_hostent(name, af, ans, result, buffer, buflen, errnop, herrnop, canonp);
        if (s == NSS_STATUS_SUCCESS && ttlp) *ttlp = ans.ttl;
        return s;
    } catch (...) {
        return internal_error(errnop, herrnop);
    }
}

} // namespace

#define NSS_EXPORT extern "C" __attribute__((visibility("default")))

NSS_EXPORT nss_status _nss_aisid_gethostbyname4_r(const char *name, gaih_addrtuple **pat, char *buffer,
                                                  size_t buflen, int *errnop, int *herrnop,
                                                  int32_t *ttlp) noexcept {
    try {
        NssAnswer ans;
        resolve(name, true, true, ans);
        if (ans.result != NssAnswer::Found) return not_found(errnop, herrnop);
        Arena a{buffer, buflen};
        char *hname = a.copy(name, name_len(name));
        if (!hname) return too_small(errnop, herrnop);
        // IPv6 first: an AISID is the address the caller wants (RFC 6724 would
        // order them the same way for these prefixes).
        const unsigned total = ans.n6 + ans.n4;
        // Everything is carved out before *pat is touched: on ERANGE glibc
        // retries with a larger buffer, and *pat must not point into this one.
        gaih_addrtuple *first = *pat;  // glibc may hand us a tuple to fill first
        const unsigned fresh = first ? total - 1 : total;
        gaih_addrtuple *tuples = nullptr;
        if (fresh > 0) {
            tuples = static_cast<gaih_addrtuple *>(a.take(fresh * sizeof(gaih_addrtuple), alignof(gaih_addrtuple)));
            if (!tuples) return too_small(errnop, herrnop);
        }
        gaih_addrtuple *prev = nullptr;
        for (unsigned i = 0; i < total; ++i) {
            gaih_addrtuple *t = first ? (i == 0 ? first : &tuples[i - 1]) : &tuples[i];
            memset(t, 0, sizeof *t);
            t->name = i == 0 ? hname : nullptr;
            if (i < ans.n6) {
                t->family = AF_INET6;
                memcpy(t->addr, ans.a6[i], 16);
            } else {
                t->family = AF_INET;
                memcpy(t->addr, ans.a4[i - ans.n6], 4);
            }
            if (prev) prev->next = t;
            prev = t;
        }
        *pat = first ? first : tuples;
        if (ttlp) *ttlp = ans.ttl;
        *errnop = 0;
        *herrnop = NETDB_SUCCESS;
        return NSS_STATUS_SUCCESS;
    } catch (...) {
        return internal_error(errnop, herrnop);
    }
}

NSS_EXPORT nss_status _nss_aisid_gethostbyname3_r(const char *name, int af, hostent *result, char *buffer,
                                                  size_t buflen, int *errnop, int *herrnop, int32_t *ttlp,
                                                  char **canonp) noexcept {
    return byname3(name, af, result, buffer, buflen, errnop, herrnop, ttlp, canonp);
}

NSS_EXPORT nss_status _nss_aisid_gethostbyname2_r(const char *name, int af, hostent *result, char *buffer,
                                                  size_t buflen, int *errnop, int *herrnop) noexcept {
    return byname3(name, af, result, buffer, buflen, errnop, herrnop, nullptr, nullptr);
}

NSS_EXPORT nss_status _nss_aisid_gethostbyname_r(const char *name, hostent *result, char *buffer, size_t buflen,
                                                 int *errnop, int *herrnop) noexcept {
    // glibc asks gethostbyname_r for IPv4 (unless RES_USE_INET6): AISIDs never match.
    return byname3(name, AF_INET, result, buffer, buflen, errnop, herrnop, nullptr, nullptr);
}

NSS_EXPORT nss_status _nss_aisid_gethostbyaddr2_r(const void *addr, socklen_t len, int af, hostent *result,
                                                  char *buffer, size_t buflen, int *errnop, int *herrnop,
                                                  int32_t *ttlp) noexcept {
    try {
        if (af != AF_INET6 || len != 16 || !addr) return not_found(errnop, herrnop);
        std::shared_ptr<const ZoneSet> zs = HostZones::instance().get();
        if (!zs) return not_found(errnop, herrnop);
        std::array<uint8_t, 16> b;
        memcpy(b.data(), addr, 16);
        const aisid::Zone *z = nullptr;
        std::string name;
        if (!zs->reverse(aisid::Aisid(b), name, &z)) return not_found(errnop, herrnop);
        if (name.size() > 1 && name.back() == '.') name.pop_back();
        Arena a{buffer, buflen};
        char *hname = a.copy(name.data(), name.size());
        char **aliases = static_cast<char **>(a.take(sizeof(char *), alignof(char *)));
        char **list = static_cast<char **>(a.take(2 * sizeof(char *), alignof(char *)));
        char *abuf = static_cast<char *>(a.take(16, alignof(uint32_t)));
        if (!hname || !aliases || !list || !abuf) return too_small(errnop, herrnop);
        memcpy(abuf, addr, 16);
        aliases[0] = nullptr;
        list[0] = abuf;
        list[1] = nullptr;
        result->h_name = hname;
        result->h_aliases = aliases;
        result->h_addrtype = AF_INET6;
        result->h_length = 16;
        result->h_addr_list = list;
        if (ttlp) *ttlp = int32_t(z ? z->aisid_ttl() : 0);
        *errnop = 0;
        *herrnop = NETDB_SUCCESS;
        return NSS_STATUS_SUCCESS;
    } catch (...) {
        return internal_error(errnop, herrnop);
    }
}

NSS_EXPORT nss_status _nss_aisid_gethostbyaddr_r(const void *addr, socklen_t len, int af, hostent *result,
                                                 char *buffer, size_t buflen, int *errnop, int *herrnop) noexcept {
    return _nss_aisid_gethostbyaddr2_r(addr, len, af, result, buffer, buflen, errnop, herrnop, nullptr);
}
