// The UDP front end: queries in batches (recvmmsg), local answers and cache
// hits straight back in batches (sendmmsg); misses go to the Forwarder.
#include "worker_impl.hpp"

#include <netinet/in.h>

#include <cerrno>
#include <cstring>

namespace aisid::resolver {

// The control message for a reply: the query's destination as the source.
size_t Worker::Impl::reply_ctl(const msghdr &in, uint8_t *out, size_t cap) {
    for (cmsghdr *c = CMSG_FIRSTHDR(&in); c; c = CMSG_NXTHDR(const_cast<msghdr *>(&in), c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && CMSG_SPACE(sizeof(in_pktinfo)) <= cap) {
            in_pktinfo pi;
            std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
            pi.ipi_spec_dst = pi.ipi_addr;
            pi.ipi_ifindex = 0;
            auto *o = reinterpret_cast<cmsghdr *>(out);
            o->cmsg_level = IPPROTO_IP;
            o->cmsg_type = IP_PKTINFO;
            o->cmsg_len = CMSG_LEN(sizeof pi);
            std::memcpy(CMSG_DATA(o), &pi, sizeof pi);
            return CMSG_SPACE(sizeof pi);
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && CMSG_SPACE(sizeof(in6_pktinfo)) <= cap) {
            auto *o = reinterpret_cast<cmsghdr *>(out);
            o->cmsg_level = IPPROTO_IPV6;
            o->cmsg_type = IPV6_PKTINFO;
            o->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
            std::memcpy(CMSG_DATA(o), CMSG_DATA(c), sizeof(in6_pktinfo));
            return CMSG_SPACE(sizeof(in6_pktinfo));
        }
    }
    return 0;
}

void Worker::Impl::on_udp(int fd, bool wild) {
    for (int round = 0; round < 8; ++round) {
        for (int i = 0; i < kBatch; ++i) {
            in_iov[i] = {in_buf[i], kBuf};
            in_hdr[i].msg_hdr = msghdr{};
            in_hdr[i].msg_hdr.msg_name = &in_addr[i];
            in_hdr[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
            in_hdr[i].msg_hdr.msg_iov = &in_iov[i];
            in_hdr[i].msg_hdr.msg_iovlen = 1;
            if (wild) {
                in_hdr[i].msg_hdr.msg_control = in_ctl[i];
                in_hdr[i].msg_hdr.msg_controllen = sizeof in_ctl[i];
            }
        }
        int n = recvmmsg(fd, in_hdr, kBatch, MSG_DONTWAIT, nullptr);
        if (n <= 0) return;
        uint64_t t0 = now_ns_monotonic();
        uint64_t now = t0 / 1000000u;
        int nout = 0;
        for (int i = 0; i < n; ++i) {
            if (v4_mapped(in_addr[i])) continue;
            Query q;
            CoreResult r = core.handle(in_buf[i], in_hdr[i].msg_len, in_addr[i], false, now, out_buf[nout], kBuf, q);
            if (r.verdict == Verdict::Answered || r.verdict == Verdict::Fail) {
                if (r.prefetch) prefetch(q, in_buf[i], in_hdr[i].msg_len);
                if (!r.len) continue;
                size_t len = r.len;
                if (!rate_limit(in_addr[i], out_buf[nout], len, now, &r)) {
                    stats.outcomes[static_cast<size_t>(r.outcome)].fetch_add(1, std::memory_order_relaxed);
                    continue;
                }
                out_iov[nout] = {out_buf[nout], len};
                out_hdr[nout].msg_hdr = msghdr{};
                out_hdr[nout].msg_hdr.msg_name = &in_addr[i];
                out_hdr[nout].msg_hdr.msg_namelen = in_hdr[i].msg_hdr.msg_namelen;
                out_hdr[nout].msg_hdr.msg_iov = &out_iov[nout];
                out_hdr[nout].msg_hdr.msg_iovlen = 1;
                if (wild) {
                    size_t cl = reply_ctl(in_hdr[i].msg_hdr, out_ctl[nout], sizeof out_ctl[nout]);
                    if (cl) {
                        out_hdr[nout].msg_hdr.msg_control = out_ctl[nout];
                        out_hdr[nout].msg_hdr.msg_controllen = cl;
                    }
                }
                ++nout;
                stats.outcomes[static_cast<size_t>(r.outcome)].fetch_add(1, std::memory_order_relaxed);
            } else if (r.verdict == Verdict::Pass) {
                if (r.to_authority) {
                    uint8_t ctl[64];
                    size_t cl = wild ? reply_ctl(in_hdr[i].msg_hdr, ctl, sizeof ctl) : 0;
                    to_authority(in_buf[i], in_hdr[i].msg_len, false, fd, in_addr[i], 0,
                                 std::string(reinterpret_cast<const char *>(ctl), cl));
                } else {
                    ClientRef c;
                    c.udp_fd = fd;
                    if (wild) {
                        uint8_t ctl[64];
                        size_t cl = reply_ctl(in_hdr[i].msg_hdr, ctl, sizeof ctl);
                        c.ctl.assign(reinterpret_cast<const char *>(ctl), cl);
                    }
                    c.peer = in_addr[i];
                    c.start_ns = t0;
                    if (r.cname_out) forward(q, in_buf[i], in_hdr[i].msg_len, std::move(c), out_buf[nout], r.len);
                    else forward(q, in_buf[i], in_hdr[i].msg_len, std::move(c));
                }
            } else {
                stats.outcomes[static_cast<size_t>(Outcome::dropped)].fetch_add(1, std::memory_order_relaxed);
            }
        }
        if (nout) {
            int sent = 0;
            while (sent < nout) {
                int k = sendmmsg(fd, out_hdr + sent, unsigned(nout - sent), MSG_DONTWAIT);
                if (k <= 0) {
                    if (k < 0 && errno == EINTR) continue;
                    ++sent;  // skip a datagram the kernel refuses (e.g. unreachable); UDP is lossy
                    continue;
                }
                sent += k;
            }
            uint64_t dt = now_ns_monotonic() - t0;
            // Local answers and cache hits: the batch's processing time, per answer.
            for (int i = 0; i < nout; ++i) stats.observe(dt);
        }
        if (n < kBatch) return;
    }
}

} // namespace aisid::resolver
