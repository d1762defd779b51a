// aisid_connect: the AISID first, the service's SVCB legacy endpoint when the
// AISID fails at once or has not connected within the connection attempt delay
// (RFC 8305 §5); legacy names with Happy Eyeballs v2 (RFC 8305 §4, §5).
#include "aisid/client/client.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace aisid::sdk {

namespace {

bool is_v4mapped(const in6_addr &a) { return IN6_IS_ADDR_V4MAPPED(&a); }

// RFC 8305 §4: interleave the families, the first one (IPv6) first.
std::vector<in6_addr> happy_eyeballs_order(const std::vector<in6_addr> &in) {
    std::vector<in6_addr> v6, v4, out;
    for (const in6_addr &a : in) (is_v4mapped(a) ? v4 : v6).push_back(a);
    size_t i = 0, j = 0;
    while (i < v6.size() || j < v4.size()) {
        if (i < v6.size()) out.push_back(v6[i++]);
        if (j < v4.size()) out.push_back(v4[j++]);
    }
    return out;
}

struct Candidate {
    in6_addr addr;
    uint16_t port;
    aisid_path_t path;
};

struct Attempt {
    int fd;
    Candidate c;
    transport::Clock::time_point started;
};

// Starts a non-blocking connect. Returns the fd (in progress or connected),
// or -1 with errno set when it failed at once.
int start_connect(const Candidate &c, bool &connected) {
    connected = false;
    sockaddr_storage ss{};
    socklen_t len;
    int fam;
    if (is_v4mapped(c.addr)) {
        auto *s = reinterpret_cast<sockaddr_in *>(&ss);
        s->sin_family = AF_INET;
        s->sin_port = htons(c.port);
        std::memcpy(&s->sin_addr, &c.addr.s6_addr[12], 4);
        len = sizeof(sockaddr_in);
        fam = AF_INET;
    } else {
        auto *s = reinterpret_cast<sockaddr_in6 *>(&ss);
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(c.port);
        s->sin6_addr = c.addr;
        len = sizeof(sockaddr_in6);
        fam = AF_INET6;
    }
    int fd = ::socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<sockaddr *>(&ss), len) == 0) {
        connected = true;
        return fd;
    }
    if (errno == EINPROGRESS) return fd;
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
}

aisid_fallback_reason_t reason_of(int err) {
    switch (err) {
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EADDRNOTAVAIL:
    case ENETDOWN: return AISID_FALLBACK_UNREACHABLE;
    case ECONNREFUSED: return AISID_FALLBACK_REFUSED;
    case ETIMEDOUT: return AISID_FALLBACK_DELAY;
    default: return AISID_FALLBACK_ERROR;
    }
}

// Which network this host would use toward an AISID prefix: a connected UDP
// socket makes the kernel pick the route and source address, no packet sent.
std::string network_key(const in6_addr &aisid) {
    std::string key(reinterpret_cast<const char *>(aisid.s6_addr), 8);
    int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return key + "|nosock";
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    to.sin6_port = htons(9);
    to.sin6_addr = aisid;
    if (::connect(fd, reinterpret_cast<sockaddr *>(&to), sizeof to) != 0) {
        int e = errno;
        ::close(fd);
        return key + "|noroute:" + std::to_string(e);
    }
    sockaddr_in6 me{};
    socklen_t l = sizeof me;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&me), &l);
    ::close(fd);
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &me.sin6_addr, buf, sizeof buf);
    return key + "|src:" + buf + "%" + std::to_string(me.sin6_scope_id);
}

int ms_until(transport::Clock::time_point t) {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(t - transport::Clock::now()).count();
    if (d < 0) return 0;
    return static_cast<int>(std::min<long long>(d + 1, 1 << 30));
}

} // namespace

int ClientCore::connect(const char *name, uint16_t port, int timeout_ms, aisid_connect_info_t &info,
                    aisid_status_t &err) {
    const auto t0 = transport::Clock::now();
    info = aisid_connect_info_t{};
    if (timeout_ms <= 0) timeout_ms = 30000;
    const auto deadline = t0 + std::chrono::milliseconds(timeout_ms);
    const auto delay = std::chrono::milliseconds(attempt_delay_ms());
    auto fail = [&](aisid_status_t s) {
        counters_.connect_failed.fetch_add(1, std::memory_order_relaxed);
        info.elapsed_us = static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(transport::Clock::now() - t0).count());
        err = s;
        return -1;
    };
    if (!name || port == 0) return fail(AISID_EINVAL);

    aisid_result ans;
    aisid_status_t st = resolve(name, ans, deadline);
    if (st != AISID_OK) return fail(st);
    if (ans.addrs.empty()) return fail(AISID_ENODATA);

    const bool aisid = ans.source == AISID_SOURCE_AISID;
    std::deque<Candidate> queue;
    std::vector<std::pair<std::string, uint16_t>> fallbacks;
    if (aisid) fallbacks = ans.fallbacks();
    bool fallback_started = false;  // its names resolved and its addresses queued
    bool aisid_failed = false;
    aisid_fallback_reason_t reason = AISID_FALLBACK_NONE;
    std::string netkey;
    if (aisid) {
        netkey = network_key(ans.addrs[0]);
        if (!fallbacks.empty() && network_state(netkey) == NetState::LegacyOnly) {
            reason = AISID_FALLBACK_REMEMBERED;
            aisid_failed = true;
        } else {
            for (const in6_addr &a : ans.addrs) queue.push_back({a, port, AISID_PATH_AISID});
        }
    } else {
        for (const in6_addr &a : happy_eyeballs_order(ans.addrs.to_vector())) queue.push_back({a, port, AISID_PATH_LEGACY});
    }

    std::vector<Attempt> inflight;
    auto close_all = [&](int keep) {
        for (Attempt &a : inflight)
            if (a.fd != keep) ::close(a.fd);
        inflight.clear();
    };
    transport::Clock::time_point next_start = t0;
    transport::Clock::time_point aisid_started{};
    aisid_status_t last_err = AISID_ECONNECT;

    // The AISID path is over (failed, or past its delay): start the fallback.
    auto trigger_fallback = [&](aisid_fallback_reason_t why) {
        if (reason == AISID_FALLBACK_NONE) reason = why;
        aisid_failed = aisid_failed || why != AISID_FALLBACK_DELAY;
    };
    auto start_fallback = [&] {
        fallback_started = true;
        auto &c = reason == AISID_FALLBACK_UNREACHABLE  ? counters_.fb_unreachable
                  : reason == AISID_FALLBACK_REFUSED    ? counters_.fb_refused
                  : reason == AISID_FALLBACK_DELAY      ? counters_.fb_delay
                  : reason == AISID_FALLBACK_REMEMBERED ? counters_.fb_remembered
                                                        : counters_.fb_error;
        c.fetch_add(1, std::memory_order_relaxed);
        // Resolved through legacy DNS (c-ares), endpoints in SVCB priority order.
        // The AISID attempt stays in flight meanwhile: if it connects first it still wins.
        std::vector<Candidate> fb;
        for (const auto &[target, fport] : fallbacks) {
            aisid_result fa;
            aisid_status_t s = resolve(target.c_str(), fa, deadline);
            if (s != AISID_OK) {
                last_err = s;
                continue;
            }
            for (const in6_addr &a : happy_eyeballs_order(fa.addrs.to_vector()))
                fb.push_back({a, fport ? fport : port, AISID_PATH_FALLBACK});
        }
        // Fallback addresses go before any remaining AISID addresses.
        queue.insert(queue.begin(), fb.begin(), fb.end());
        next_start = transport::Clock::now();
    };

    int winner = -1;
    Candidate won{};
    while (winner < 0) {
        auto now = transport::Clock::now();
        if (now >= deadline) {
            last_err = AISID_ETIMEOUT;
            break;
        }
        // The AISID has had its attempt delay without connecting (RFC 8305 §5).
        if (aisid && !fallbacks.empty() && reason == AISID_FALLBACK_NONE && aisid_started != transport::Clock::time_point{} &&
            now >= aisid_started + delay)
            trigger_fallback(AISID_FALLBACK_DELAY);
        if (aisid && !fallbacks.empty() && reason != AISID_FALLBACK_NONE && !fallback_started) {
            start_fallback();
            continue;
        }
        // Start the next attempt: when its turn comes, or at once when nothing is in flight.
        if (!queue.empty() && (inflight.empty() || now >= next_start)) {
            Candidate c = queue.front();
            queue.pop_front();
            bool connected;
            int fd = start_connect(c, connected);
            ++info.attempts;
            if (c.path == AISID_PATH_AISID && aisid_started == transport::Clock::time_point{}) aisid_started = transport::Clock::now();
            if (fd < 0) {
                int e = errno;
                last_err = AISID_ECONNECT;
                if (c.path == AISID_PATH_AISID) {
                    bool more = std::any_of(queue.begin(), queue.end(),
                                            [](const Candidate &q) { return q.path == AISID_PATH_AISID; });
                    if (!more && !fallbacks.empty()) trigger_fallback(reason_of(e));
                    if (!more && (e == ENETUNREACH || e == EHOSTUNREACH)) remember_network(netkey, NetState::LegacyOnly);
                }
                continue;  // failed at once: the next one starts now
            }
            if (connected) {
                winner = fd;
                won = c;
                break;
            }
            inflight.push_back({fd, c, transport::Clock::now()});
            next_start = transport::Clock::now() + delay;
        }
        if (inflight.empty() && queue.empty()) {
            if (aisid && !fallbacks.empty() && !fallback_started) {
                if (reason == AISID_FALLBACK_NONE) trigger_fallback(AISID_FALLBACK_ERROR);
                continue;
            }
            break;  // nothing left to try
        }
        // Wait for a connection, the next attempt's turn, or the deadline.
        transport::Clock::time_point wake = deadline;
        if (!queue.empty()) wake = std::min(wake, next_start);
        if (aisid && !fallbacks.empty() && reason == AISID_FALLBACK_NONE && aisid_started != transport::Clock::time_point{})
            wake = std::min(wake, aisid_started + delay);
        std::vector<pollfd> p;
        for (const Attempt &a : inflight) p.push_back({a.fd, POLLOUT, 0});
        int r = ::poll(p.data(), p.size(), ms_until(wake));
        if (r < 0 && errno != EINTR) {
            last_err = AISID_ESYSTEM;
            break;
        }
        if (r <= 0) continue;
        for (size_t i = 0; i < p.size() && winner < 0; ++i) {
            if (!p[i].revents) continue;
            int soerr = 0;
            socklen_t l = sizeof soerr;
            ::getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
            if (soerr == 0 && (p[i].revents & POLLOUT)) {
                winner = p[i].fd;
                won = inflight[i].c;
                break;
            }
            if (soerr == 0) soerr = ECONNREFUSED;
            inflight[i].fd = -inflight[i].fd - 1;  // mark failed
            ::close(p[i].fd);
            last_err = AISID_ECONNECT;
            if (inflight[i].c.path == AISID_PATH_AISID) {
                bool more = std::any_of(queue.begin(), queue.end(), [](const Candidate &q) { return q.path == AISID_PATH_AISID; }) ||
                            std::any_of(inflight.begin(), inflight.end(), [&](const Attempt &a) {
                                return a.fd >= 0 && a.c.path == AISID_PATH_AISID;
                            });
                if (!more && !fallbacks.empty()) trigger_fallback(reason_of(soerr));
                if (!more && (soerr == ENETUNREACH || soerr == EHOSTUNREACH))
                    remember_network(netkey, NetState::LegacyOnly);
            }
            next_start = transport::Clock::now();  // a failure lets the next attempt start at once
        }
        inflight.erase(std::remove_if(inflight.begin(), inflight.end(), [](const Attempt &a) { return a.fd < 0; }),
                       inflight.end());
    }
    close_all(winner);
    if (winner < 0) {
        if (aisid && reason == AISID_FALLBACK_DELAY && !aisid_failed) remember_network(netkey, NetState::LegacyOnly);
        info.reason = reason;
        return fail(last_err);
    }
    // The caller gets an ordinary blocking socket.
    int fl = ::fcntl(winner, F_GETFL);
    if (fl >= 0) ::fcntl(winner, F_SETFL, fl & ~O_NONBLOCK);
    info.path = won.path;
    info.reason = reason;
    info.peer.sin6_family = AF_INET6;
    info.peer.sin6_port = htons(won.port);
    info.peer.sin6_addr = won.addr;
    info.elapsed_us =
        static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(transport::Clock::now() - t0).count());
    switch (won.path) {
    case AISID_PATH_AISID:
        counters_.connect_aisid_won.fetch_add(1, std::memory_order_relaxed);
        remember_network(netkey, NetState::Reachable);
        break;
    case AISID_PATH_FALLBACK:
        counters_.connect_fallback_won.fetch_add(1, std::memory_order_relaxed);
        // The fallback won the race: this network does not (usefully) reach AISIDs.
        if (reason != AISID_FALLBACK_REFUSED) remember_network(netkey, NetState::LegacyOnly);
        break;
    default: counters_.connect_legacy.fetch_add(1, std::memory_order_relaxed); break;
    }
    err = AISID_OK;
    return winner;
}

} // namespace aisid::sdk
