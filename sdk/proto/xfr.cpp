#include "aisid/proto/xfr.hpp"

#include "aisid/core/dname.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace aisid::proto {

namespace {



using XfrClock = std::chrono::steady_clock;

int remaining_ms(XfrClock::time_point deadline) {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - XfrClock::now()).count();
    return d < 0 ? 0 : static_cast<int>(d);
}

bool wait_fd(int fd, short ev, XfrClock::time_point deadline) {
    for (;;) {
        pollfd p{fd, ev, 0};
        int n = ::poll(&p, 1, remaining_ms(deadline));
        if (n > 0) return true;
        if (n == 0) return false;
        if (errno != EINTR) return false;
    }
}

bool read_exact(int fd, char *buf, size_t n, XfrClock::time_point deadline) {
    size_t got = 0;
    while (got < n) {
        if (!wait_fd(fd, POLLIN, deadline)) return false;
        ssize_t k = ::recv(fd, buf + got, n - got, 0);
        if (k <= 0) {
            if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            return false;
        }
        got += static_cast<size_t>(k);
    }
    return true;
}

bool write_exact(int fd, const char *buf, size_t n, XfrClock::time_point deadline) {
    size_t off = 0;
    while (off < n) {
        if (!wait_fd(fd, POLLOUT, deadline)) return false;
        ssize_t k = ::send(fd, buf + off, n - off, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return false;
        }
        off += static_cast<size_t>(k);
    }
    return true;
}

int connect_tcp(const sockaddr_storage &server, socklen_t slen, XfrClock::time_point deadline, std::string &err) {
    int fd = ::socket(server.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr *>(&server), slen) != 0 && errno != EINPROGRESS) {
        err = "connect to " + sockaddr_text(server) + ": " + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    if (!wait_fd(fd, POLLOUT, deadline)) {
        err = "connect to " + sockaddr_text(server) + ": timed out";
        ::close(fd);
        return -1;
    }
    int e = 0;
    socklen_t el = sizeof e;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e != 0) {
        err = "connect to " + sockaddr_text(server) + ": " + std::strerror(e);
        ::close(fd);
        return -1;
    }
    return fd;
}

} // namespace


std::optional<XfrResult> parse_xfr_stream(const std::vector<Record> &rrs, bool asked_ixfr,
                                          std::optional<uint32_t> have_serial, bool last_message_single) {
    XfrResult r;
    if (rrs.empty()) return std::nullopt;
    if (rrs[0].type != kTypeSOA) {
        r.why = "transfer does not start with an SOA";
        return r;
    }
    uint32_t s_new = soa_serial(rrs[0].rdata);
    r.serial = s_new;
    if (rrs.size() == 1) {
        // RFC 1995 §4: a lone SOA means "you are up to date" (or newer than us).
        if (asked_ixfr && last_message_single && have_serial && !serial_gt(s_new, *have_serial)) {
            r.kind = XfrResult::Kind::up_to_date;
            return r;
        }
        return std::nullopt;
    }
    bool incremental = asked_ixfr && rrs[1].type == kTypeSOA && soa_serial(rrs[1].rdata) != s_new;
    if (!incremental) {
        const Record &last = rrs.back();
        if (last.type != kTypeSOA || soa_serial(last.rdata) != s_new) return std::nullopt;
        r.kind = XfrResult::Kind::full;
        r.full.assign(rrs.begin(), rrs.end() - 1);
        return r;
    }
    size_t i = 1;
    while (i < rrs.size()) {
        if (rrs[i].type != kTypeSOA) {
            r.why = "IXFR diff does not start with an SOA";
            return r;
        }
        if (i == rrs.size() - 1) {
            if (soa_serial(rrs[i].rdata) == s_new) {
                r.kind = XfrResult::Kind::incremental;
                return r;
            }
            return std::nullopt;
        }
        Diff d;
        d.from = soa_serial(rrs[i].rdata);
        d.del.push_back(rrs[i++]);
        while (i < rrs.size() && rrs[i].type != kTypeSOA) d.del.push_back(rrs[i++]);
        if (i == rrs.size()) return std::nullopt;
        d.to = soa_serial(rrs[i].rdata);
        d.add.push_back(rrs[i++]);
        while (i < rrs.size() && rrs[i].type != kTypeSOA) d.add.push_back(rrs[i++]);
        r.diffs.push_back(std::move(d));
        if (i == rrs.size()) return std::nullopt;
    }
    return std::nullopt;
}

bool tcp_exchange(const sockaddr_storage &server, socklen_t slen, const std::string &request,
                  std::vector<std::string> &responses, int timeout_ms, std::string &err,
                  bool (*done)(const std::string &msg, void *ctx), void *ctx) {
    auto deadline = XfrClock::now() + std::chrono::milliseconds(timeout_ms);
    int fd = connect_tcp(server, slen, deadline, err);
    if (fd < 0) return false;
    std::string framed;
    framed.push_back(static_cast<char>(request.size() >> 8));
    framed.push_back(static_cast<char>(request.size()));
    framed += request;
    bool ok = write_exact(fd, framed.data(), framed.size(), deadline);
    if (!ok) err = "send to " + sockaddr_text(server) + " failed";
    while (ok) {
        char lb[2];
        if (!read_exact(fd, lb, 2, deadline)) {
            if (responses.empty()) {
                err = "no answer from " + sockaddr_text(server) + " over TCP";
                ok = false;
            } else if (done) {
                err = "transfer from " + sockaddr_text(server) + " ended early";
                ok = false;
            }
            break;
        }
        size_t n = (static_cast<uint8_t>(lb[0]) << 8) | static_cast<uint8_t>(lb[1]);
        std::string msg(n, '\0');
        if (!read_exact(fd, msg.data(), n, deadline)) {
            err = "short message from " + sockaddr_text(server);
            ok = false;
            break;
        }
        responses.push_back(std::move(msg));
        if (!done || done(responses.back(), ctx)) break;
    }
    ::close(fd);
    return ok;
}

bool udp_exchange(const sockaddr_storage &server, socklen_t slen, const std::string &request, std::string &response,
                  int timeout_ms, std::string &err) {
    int fd = ::socket(server.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = std::string("socket: ") + std::strerror(errno);
        return false;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr *>(&server), slen) != 0 ||
        ::send(fd, request.data(), request.size(), 0) < 0) {
        err = "send to " + sockaddr_text(server) + ": " + std::strerror(errno);
        ::close(fd);
        return false;
    }
    auto deadline = XfrClock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (!wait_fd(fd, POLLIN, deadline)) {
            err = "no answer from " + sockaddr_text(server);
            ::close(fd);
            return false;
        }
        char buf[65536];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            err = "receive from " + sockaddr_text(server) + ": " + std::strerror(errno);
            ::close(fd);
            return false;
        }
        // Only the answer to our ID (RFC 5452 spirit: ignore strays).
        if (n >= 12 && buf[0] == request[0] && buf[1] == request[1]) {
            response.assign(buf, static_cast<size_t>(n));
            ::close(fd);
            return true;
        }
    }
}

namespace {

struct PullCtx {
    bool ixfr;
    std::optional<uint32_t> have;
    std::vector<Record> rrs;
    const TsigKey *key;
    LdnsRdfPtr prev_mac;
    std::string error;
    bool refused = false;
    bool first = true;
    std::optional<XfrResult> result;
    std::optional<TsigStream> stream;  // when signed
};

bool pull_done(const std::string &msg, void *vctx) {
    auto &c = *static_cast<PullCtx *>(vctx);
    ldns_pkt *raw = nullptr;
    if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t *>(msg.data()), msg.size()) != LDNS_STATUS_OK) {
        c.error = "malformed transfer message";
        return true;
    }
    LdnsPktPtr p(raw);
    if (ldns_pkt_get_rcode(p.get()) != LDNS_RCODE_NOERROR) {
        auto rc = ldns_pkt_get_rcode(p.get());
        c.refused = rc == LDNS_RCODE_REFUSED || rc == LDNS_RCODE_NOTAUTH;
        ldns_lookup_table *lt = ldns_lookup_by_id(ldns_rcodes, rc);
        c.error = std::string("the primary answered ") + (lt ? lt->name : "an error");
        return true;
    }
    if (c.stream) {
        std::string why;
        if (!c.stream->next(msg, p.get(), why)) {
            c.error = why;
            c.refused = true;
            return true;
        }
    }
    c.first = false;
    std::vector<Record> rs = records_of(ldns_pkt_answer(p.get()));
    bool single = rs.size() == 1 && c.rrs.empty();
    c.rrs.insert(c.rrs.end(), rs.begin(), rs.end());
    c.result = parse_xfr_stream(c.rrs, c.ixfr, c.have, single);
    if (c.result && c.stream && !c.stream->complete()) {
        // RFC 8945 §5.3.1: the last message must be signed, covering the
        // unsigned ones before it; otherwise its records are anyone's.
        c.result.reset();
        c.error = "the transfer's last message is not signed (RFC 8945 §5.3.1)";
        c.refused = true;
        return true;
    }
    return c.result.has_value();
}

} // namespace

XfrResult xfr_pull(const sockaddr_storage &server, socklen_t slen, std::string_view origin_wire,
                   std::optional<Record> have_soa, const TsigKey *key, int timeout_ms) {
    XfrResult fail;
    LdnsRdfPtr owner(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, origin_wire.size(), origin_wire.data()));
    bool ixfr = have_soa.has_value();
    LdnsPktPtr q(ldns_pkt_query_new(ldns_rdf_clone(owner.get()), ixfr ? LDNS_RR_TYPE_IXFR : LDNS_RR_TYPE_AXFR,
                                LDNS_RR_CLASS_IN, 0));
    ldns_pkt_set_random_id(q.get());
    if (ixfr) {
        // RFC 1995 §3: the client's SOA in the authority section.
        LdnsRrPtr s = record_to_ldns(*have_soa);
        if (s) ldns_pkt_push_rr(q.get(), LDNS_SECTION_AUTHORITY, s.release());
    }
    std::string req;
    PullCtx ctx{ixfr, have_soa ? std::optional<uint32_t>(soa_serial(have_soa->rdata)) : std::nullopt, {}, key, {}, {},
                false, true, std::nullopt, std::nullopt};
    if (key) {
        LdnsRdfPtr mac;
        if (!tsig_sign_pkt(q.get(), *key, nullptr, false, req, &mac)) {
            fail.why = "cannot sign the transfer request";
            return fail;
        }
        ctx.prev_mac = std::move(mac);
        const ldns_rdf *m = ctx.prev_mac.get();
        ctx.stream.emplace(*key, m && ldns_rdf_size(m) >= 2
                                     ? std::string_view(reinterpret_cast<const char *>(ldns_rdf_data(m)) + 2,
                                                        ldns_rdf_size(m) - 2)
                                     : std::string_view());
    } else {
        uint8_t *buf = nullptr;
        size_t n = 0;
        ldns_pkt2wire(&buf, q.get(), &n);
        req.assign(reinterpret_cast<const char *>(buf), n);
        free(buf);
    }
    std::vector<std::string> msgs;
    std::string err;
    bool ok = tcp_exchange(server, slen, req, msgs, timeout_ms, err, pull_done, &ctx);
    if (!ctx.error.empty()) {
        fail.why = ctx.error;
        fail.refused = ctx.refused;
        return fail;
    }
    if (!ok || !ctx.result) {
        fail.why = err.empty() ? "transfer ended before its closing SOA" : err;
        return fail;
    }
    return std::move(*ctx.result);
}

} // namespace aisid::proto
