// The TCP front end (RFC 7766): accepted connections, pipelined queries
// answered as each is complete, bounded output, idle and stuck clients closed.
#include "worker_impl.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace aisid::resolver {

using namespace worker_detail;

// The connection idle the longest (nothing in flight, no reply waiting),
// of `peer`'s client when given; 0 when there is none.
uint64_t Worker::Impl::idle_victim(std::optional<sockaddr_storage> peer) {
    uint64_t victim = 0, oldest = UINT64_MAX;
    uint8_t want[16], have[16];
    if (peer) addr16(*peer, want);
    for (auto &[id, c] : conns) {
        if (c.inflight != 0 || c.out.size() != c.out_off || c.last_ms >= oldest) continue;
        if (peer) {
            addr16(c.peer, have);
            static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            bool v4 = std::memcmp(want, kMapped, 12) == 0;
            if (std::memcmp(want, have, v4 ? 16 : 8) != 0) continue;  // IPv4: the address; IPv6: the /64
        }
        oldest = c.last_ms;
        victim = id;
    }
    return victim;
}

void Worker::Impl::on_accept(int lfd) {
    for (;;) {
        sockaddr_storage peer{};
        socklen_t l = sizeof peer;
        int fd = accept4(lfd, reinterpret_cast<sockaddr *>(&peer), &l, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (v4_mapped(peer)) {
            close(fd);
            continue;
        }
        int32_t slot = sh.client_conns.acquire(peer, rt->tcp_connections_per_client);
        if (slot < 0) {
            // This client holds its share already: its own connection idle
            // the longest makes room (every local process is 127.0.0.1, so
            // one stalled program must not lock out the others); with none
            // idle here, the newcomer is refused.
            uint64_t victim = idle_victim(peer);
            if (victim) {
                close_conn(victim);
                slot = sh.client_conns.acquire(peer, rt->tcp_connections_per_client);
            }
            stats.hit(Limit::tcp_per_client);
            if (slot < 0) {
                close(fd);
                continue;
            }
        }
        if (conns.size() >= rt->tcp_connections_per_worker) {
            // Make room (RFC 7766 §6.2.2): the connection idle the longest
            // goes, never one with a query in flight or replies to take;
            // with none idle the newcomer is refused instead.
            uint64_t victim = idle_victim();
            if (!victim) {
                stats.hit(Limit::tcp_full);
                sh.client_conns.release(slot);
                close(fd);
                continue;
            }
            stats.hit(Limit::tcp_idle_evicted);
            close_conn(victim);
        }
        set_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
        uint64_t id = next_conn++;
        Conn &c = conns[id];
        c.fd = fd;
        c.id = id;
        c.peer = peer;
        c.client_slot = slot;
        c.last_ms = now_ms_monotonic();
        ep_add(fd, EPOLLIN, tag(kTcpConn, id));
    }
}

void Worker::Impl::close_conn(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    epoll_ctl(ep, EPOLL_CTL_DEL, it->second.fd, nullptr);
    close(it->second.fd);
    sh.client_conns.release(it->second.client_slot);
    conns.erase(it);
}

void Worker::Impl::tcp_send(Conn &c, const uint8_t *msg, size_t len) {
    uint8_t l2[2];
    wr16(l2, uint16_t(len));
    if (c.out.size() == c.out_off) {
        c.out.clear();
        c.out_off = 0;
        iovec iov[2] = {{l2, 2}, {const_cast<uint8_t *>(msg), len}};
        msghdr mh{};
        mh.msg_iov = iov;
        mh.msg_iovlen = 2;
        ssize_t k = sendmsg(c.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k == ssize_t(len + 2)) return;
        if (k < 0 && errno != EAGAIN) {
            close_conn(c.id);
            return;
        }
        size_t done = k > 0 ? size_t(k) : 0;
        c.out.assign(reinterpret_cast<char *>(l2), 2);
        c.out.append(reinterpret_cast<const char *>(msg), len);
        c.out.erase(0, done);
        c.out_since_ms = now_ms_monotonic();
    } else {
        c.out.append(reinterpret_cast<char *>(l2), 2);
        c.out.append(reinterpret_cast<const char *>(msg), len);
    }
    if (!c.want_out) {
        c.want_out = true;
        conn_events(c);
    }
}

void Worker::Impl::conn_events(Conn &c) {
    ep_mod(c.fd, (c.paused ? 0u : uint32_t(EPOLLIN)) | (c.want_out ? uint32_t(EPOLLOUT) : 0u), tag(kTcpConn, c.id));
}

// A forwarded answer went back on this connection: queries waiting in its
// buffer may go now.
void Worker::Impl::conn_reply_done(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    if (it->second.inflight) --it->second.inflight;
    process_conn(id);
}

void Worker::Impl::on_conn(uint64_t id, uint32_t events) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn &c = it->second;
    uint64_t now = now_ms_monotonic();
    if (events & EPOLLOUT) {
        while (c.out_off < c.out.size()) {
            ssize_t k = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
            if (k < 0) {
                if (errno == EAGAIN) break;
                close_conn(id);
                return;
            }
            c.out_off += size_t(k);
            c.out_since_ms = now;
        }
        if (c.out_off == c.out.size()) {
            c.out.clear();
            c.out_off = 0;
            c.want_out = false;
            conn_events(c);
        } else if (c.out_off > (64u << 10)) {  // keep the buffer from holding what went out
            c.out.erase(0, c.out_off);
            c.out_off = 0;
        }
        c.last_ms = now;
        // Room again: the queries waiting in its buffer go on (and reading resumes).
        if (c.paused && out_waiting(c) <= rt->tcp_output_limit) {
            process_conn(id);
            if (conns.find(id) == conns.end()) return;
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c.paused) return;
    for (;;) {
        ssize_t k = recv(c.fd, scratch, sizeof scratch, 0);
        if (k == 0) {
            close_conn(id);
            return;
        }
        if (k < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            close_conn(id);
            return;
        }
        c.in.append(reinterpret_cast<const char *>(scratch), size_t(k));
        c.last_ms = now;
        if (c.in.size() > 2 * 65537) break;
    }
    process_conn(id);
}

void Worker::Impl::process_conn(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end() || it->second.processing) return;
    Conn &c = it->second;
    c.processing = true;
    uint64_t now = now_ms_monotonic();
    // RFC 7766 §6.2.1: queries may be pipelined; each is handled as it is complete.
    size_t off = 0;
    uint64_t t0 = now_ns_monotonic();
    while (c.in.size() - off >= 2) {
        size_t len = rd16(reinterpret_cast<const uint8_t *>(c.in.data() + off));
        if (c.in.size() - off < len + 2) break;
        if (c.inflight >= kMaxInflightPerConn) break;
        // RFC 7766 §6.2.5 leaves the bound to us: a client that does not read
        // its replies gets no more answered until it does.
        if (out_waiting(c) > rt->tcp_output_limit) break;
        const uint8_t *msg = reinterpret_cast<const uint8_t *>(c.in.data() + off + 2);
        off += len + 2;
        Query q;
        uint8_t out[65535];
        CoreResult r = core.handle(msg, len, c.peer, true, now, out, sizeof out, q);
        if (r.verdict == Verdict::Answered || r.verdict == Verdict::Fail) {
            account(r, t0);
            if (r.prefetch) prefetch(q, msg, len);
            if (r.len) tcp_send(c, out, r.len);
            if (conns.find(id) == conns.end()) return;
        } else if (r.verdict == Verdict::Pass) {
            ++c.inflight;
            if (r.to_authority) {
                to_authority(msg, len, true, -1, c.peer, id);
            } else {
                ClientRef cl;
                cl.tcp = true;
                cl.conn_id = id;
                cl.peer = c.peer;
                cl.start_ns = t0;
                if (r.cname_out) forward(q, msg, len, std::move(cl), out, r.len);
                else forward(q, msg, len, std::move(cl));
                if (conns.find(id) == conns.end()) return;
            }
        } else {
            // A malformed message on a stream: we cannot trust the framing any more.
            stats.outcomes[static_cast<size_t>(Outcome::dropped)].fetch_add(1, std::memory_order_relaxed);
            close_conn(id);
            return;
        }
    }
    c.in.erase(0, off);
    c.processing = false;
    // Stop reading while the client has too much in flight (or buffered);
    // resume when its answers have gone out.
    bool out_full = out_waiting(c) > rt->tcp_output_limit;
    bool full = c.inflight >= kMaxInflightPerConn || c.in.size() > 2 * 65537 || out_full;
    if (out_full && !c.paused) stats.hit(Limit::tcp_output);
    if (full != c.paused) {
        c.paused = full;
        conn_events(c);
    }
}

// RFC 7766 §6.2.3: idle client connections are closed.
void Worker::Impl::sweep_conns(uint64_t now) {
    std::vector<uint64_t> idle, stuck;
    for (auto &[id, c] : conns) {
        if (c.inflight == 0 && c.out.size() == c.out_off && now - c.last_ms >= rt->tcp_idle_ms) idle.push_back(id);
        // Replies waiting and none taken for the idle timeout: a client
        // that does not read (Unbound closes such a one the same way).
        else if (c.out.size() != c.out_off && now - c.out_since_ms >= rt->tcp_idle_ms) stuck.push_back(id);
    }
    for (uint64_t id : idle) close_conn(id);
    for (uint64_t id : stuck) {
        stats.hit(Limit::tcp_write_timeout);
        close_conn(id);
    }
}

} // namespace aisid::resolver
