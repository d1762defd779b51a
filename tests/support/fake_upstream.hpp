// A fake upstream DNS server for fault tests: a UDP socket (and a TCP one on
// the same port) on a free loopback port, 127.0.0.1 or, with Family::v6,
// [::1], that the test controls (silent, slow, garbage, wrong ID or question
// first, answers from another port, extra records for other names, every
// answer late at once: `delayed`, a slow server), and that
// records every query it receives (ID, source address and port, name, type,
// UDP or TCP). Its thread
// is stopped and joined by the destructor, so it never outlives a test.
#pragma once

#include "dns_query.hpp"
#include "proc.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace aisid::test {

/// Lowercase presentation text ("www.legacy.example.") from an uncompressed wire name at m[pos]; pos moves past it.
inline bool read_plain_name(const std::string &m, size_t &pos, std::string &text) {
    text.clear();
    while (pos < m.size()) {
        uint8_t l = uint8_t(m[pos]);
        if (l == 0) {
            ++pos;
            if (text.empty()) text = ".";
            return true;
        }
        if (l > 63 || pos + 1 + l > m.size()) return false;
        for (size_t i = 0; i < l; ++i) text += char(std::tolower(uint8_t(m[pos + 1 + i])));
        text += '.';
        pos += 1 + l;
    }
    return false;
}

/// One resource record: owner wire, type, class IN, TTL, rdata.
inline std::string rr_wire(const std::string &owner, uint16_t type, uint32_t ttl, const std::string &rdata) {
    return wire_name(owner) + be16(type) + be16(1) + be32(ttl) + be16(uint16_t(rdata.size())) + rdata;
}
inline std::string a_rdata(const char *ip) {
    in_addr a{};
    inet_pton(AF_INET, ip, &a);
    return std::string(reinterpret_cast<const char *>(&a), 4);
}

struct SeenQuery {
    uint16_t id = 0;
    uint16_t src_port = 0;
    std::string name;  // lowercase, trailing dot
    uint16_t type = 0;
    bool tcp = false;
    std::string src;  // the sender's address, "127.0.0.1" or "::1"
};

/// A sockaddr for a loopback address of either family; `len` gets its size.
inline sockaddr_storage loopback_sockaddr(bool v6, uint16_t port, socklen_t &len) {
    sockaddr_storage ss{};
    if (v6) {
        auto &a = reinterpret_cast<sockaddr_in6 &>(ss);
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        a.sin6_addr = in6addr_loopback;
        len = sizeof a;
    } else {
        auto &a = reinterpret_cast<sockaddr_in &>(ss);
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        len = sizeof a;
    }
    return ss;
}
/// Address text and port of a sockaddr of either family.
inline std::string sockaddr_host(const sockaddr_storage &ss) {
    char buf[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6 &>(ss).sin6_addr, buf, sizeof buf);
    else if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in &>(ss).sin_addr, buf, sizeof buf);
    return buf;
}
inline uint16_t sockaddr_port(const sockaddr_storage &ss) {
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6 &>(ss).sin6_port);
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in &>(ss).sin_port);
    return 0;
}

class FakeUpstream {
public:
    enum class Mode {
        answer,           // the right answer at once
        silent,           // nothing
        slow,             // the right answer after delay_ms
        garbage,          // random bytes (with the query's ID, so only parsing can reject them)
        wrong_id_first,   // a bogus answer with another ID, then the right one
        wrong_q_first,    // a bogus answer for another name, then the right one
        spoof_first,      // a bogus answer from another port, then the right one
        spoof_only,       // only the bogus answer from another port
        extra_records,    // the right answer plus records for other names (answer and additional)
        tc_then_tcp,      // TC over UDP, then the right answer over TCP
        tc_then_tcp_half, // TC over UDP, then half an answer over TCP, then nothing (the connection stays open)
        delayed,          // the right answer after delay_ms, every query at once (a slow server, not a serial one)
    };
    // The right answer's address, and the one nothing must ever serve.
    static constexpr const char *kGood = "192.0.2.1";
    static constexpr const char *kBogus = "192.0.2.66";

    enum class Family { v4, v6 };  // listens on 127.0.0.1 or on [::1]

    std::atomic<Mode> mode{Mode::answer};
    std::atomic<int> delay_ms{0};
    std::atomic<uint32_t> ttl{300};  // of the A record in the right answer
    int port = 0;

    explicit FakeUpstream(Family family = Family::v4) : v6_(family == Family::v6) {
        // The UDP port is the kernel's pick; TCP on the same number may be
        // taken by someone's connection: try again with a fresh pair.
        for (int attempt = 0;; ++attempt) {
            if (open_sockets()) break;
            close(udp_);
            close(spoof_);
            close(tcp_);
            if (attempt == 50) throw std::runtime_error("fake upstream: TCP bind failed");
        }
        thread_ = std::thread([this] { loop(); });
    }

private:
    bool open_sockets() {
        int fam = v6_ ? AF_INET6 : AF_INET;
        udp_ = socket(fam, SOCK_DGRAM, 0);
        spoof_ = socket(fam, SOCK_DGRAM, 0);
        socklen_t len = 0;
        sockaddr_storage a = loopback_sockaddr(v6_, 0, len);
        auto *sa = reinterpret_cast<sockaddr *>(&a);
        if (udp_ < 0 || spoof_ < 0 || bind(udp_, sa, len) != 0 || bind(spoof_, sa, len) != 0)
            throw std::runtime_error(v6_ ? "fake upstream: bind [::1] failed" : "fake upstream: bind failed");
        socklen_t l = sizeof a;
        getsockname(udp_, sa, &l);
        port = sockaddr_port(a);
        int big = 4 << 20;
        setsockopt(udp_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        tcp_ = socket(fam, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(tcp_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        return bind(tcp_, sa, len) == 0 && listen(tcp_, 16) == 0;
    }

public:
    FakeUpstream(const FakeUpstream &) = delete;
    FakeUpstream &operator=(const FakeUpstream &) = delete;
    ~FakeUpstream() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        close(udp_);
        close(spoof_);
        close(tcp_);
        for (int fd : held_) close(fd);
    }
    bool ipv6() const { return v6_; }
    /// The --upstream argument: "127.0.0.1:PORT" or "[::1]:PORT".
    std::string addr() const { return (v6_ ? "[::1]:" : "127.0.0.1:") + std::to_string(port); }
    std::vector<SeenQuery> seen() {
        std::lock_guard<std::mutex> g(mu_);
        return seen_;
    }
    size_t count(const std::string &name) {
        std::lock_guard<std::mutex> g(mu_);
        size_t n = 0;
        for (auto &s : seen_) n += s.name == name;
        return n;
    }
    void clear() {
        std::lock_guard<std::mutex> g(mu_);
        seen_.clear();
    }

private:
    void loop() {
        std::mt19937 rng(12345);
        while (!stop_) {
            flush_due();
            pollfd ps[2] = {{udp_, POLLIN, 0}, {tcp_, POLLIN, 0}};
            if (poll(ps, 2, due_.empty() ? 50 : 5) < 1) continue;
            if (ps[1].revents & POLLIN) serve_tcp();
            if (!(ps[0].revents & POLLIN)) continue;
            char buf[4096];
            sockaddr_storage from{};
            socklen_t fl = sizeof from;
            ssize_t n = recvfrom(udp_, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&from), &fl);
            if (n < 12) continue;
            std::string q(buf, size_t(n));
            size_t pos = 12;
            SeenQuery s;
            s.id = uint16_t((uint8_t(q[0]) << 8) | uint8_t(q[1]));
            s.src_port = sockaddr_port(from);
            s.src = sockaddr_host(from);
            if (!read_plain_name(q, pos, s.name) || pos + 4 > q.size()) continue;
            s.type = uint16_t((uint8_t(q[pos]) << 8) | uint8_t(q[pos + 1]));
            std::string question = q.substr(12, pos + 4 - 12);
            {
                std::lock_guard<std::mutex> g(mu_);
                seen_.push_back(s);
            }
            auto send_from = [&](int fd, const std::string &m) {
                sendto(fd, m.data(), m.size(), 0, reinterpret_cast<sockaddr *>(&from), fl);
            };
            std::string good = reply(s.id, question, s.type, kGood, "", "", 0, 0, ttl.load());
            switch (mode.load()) {
            case Mode::answer: send_from(udp_, good); break;
            case Mode::delayed:
                due_.push_back(Due{std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms.load()), from,
                                   fl, good});
                break;
            case Mode::silent: break;
            case Mode::slow:
                std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
                send_from(udp_, good);
                break;
            case Mode::garbage: {
                std::string g = be16(s.id) + be16(0x8180);
                size_t len = 2 + rng() % 200;
                for (size_t i = 0; i < len; ++i) g += char(rng());
                send_from(udp_, g);
                break;
            }
            case Mode::wrong_id_first:
                send_from(udp_, reply(uint16_t(s.id ^ 0x5a5a), question, s.type, kBogus, ""));
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                send_from(udp_, good);
                break;
            case Mode::wrong_q_first: {
                std::string other = wire_name("bogus.legacy.example") + be16(s.type) + be16(1);
                send_from(udp_, reply(s.id, other, s.type, kBogus, ""));
                // the right name with another type, too
                std::string other_type = question.substr(0, question.size() - 4) + be16(uint16_t(s.type == 1 ? 28 : 1)) + be16(1);
                send_from(udp_, reply(s.id, other_type, s.type, kBogus, ""));
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                send_from(udp_, good);
                break;
            }
            case Mode::spoof_first:
                send_from(spoof_, reply(s.id, question, s.type, kBogus, ""));
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                send_from(udp_, good);
                break;
            case Mode::spoof_only: send_from(spoof_, reply(s.id, question, s.type, kBogus, "")); break;
            case Mode::tc_then_tcp:
            case Mode::tc_then_tcp_half:
                send_from(udp_, be16(s.id) + be16(0x8380) + be16(1) + be16(0) + be16(0) + be16(0) + question);
                break;
            case Mode::extra_records: {
                // RFC 2181 §5.4.1 / bailiwick: the victim's records ride along in
                // the answer and additional sections of an answer about another name.
                std::string extra_an = rr_wire("victim.legacy.example", 1, 3600, a_rdata(kBogus));
                std::string extra_ar = rr_wire("victim2.legacy.example", 1, 3600, a_rdata(kBogus)) +
                                       rr_wire("www.legacy.example", 28, 3600, std::string(16, '\x66'));
                send_from(udp_, reply(s.id, question, s.type, kGood, extra_an, extra_ar, 1, 2));
                break;
            }
            }
        }
    }
    // One TCP client (aisidd after TC): reads one framed query, answers per mode.
    void serve_tcp() {
        sockaddr_storage peer{};
        socklen_t pl = sizeof peer;
        int c = accept(tcp_, reinterpret_cast<sockaddr *>(&peer), &pl);
        if (c < 0) return;
        std::string buf;
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (std::chrono::steady_clock::now() < end) {
            pollfd p{c, POLLIN, 0};
            if (poll(&p, 1, 100) != 1) continue;
            char b[4096];
            ssize_t k = recv(c, b, sizeof b, 0);
            if (k <= 0) break;
            buf.append(b, size_t(k));
            if (buf.size() >= 2 && buf.size() >= 2u + ((uint8_t(buf[0]) << 8) | uint8_t(buf[1]))) break;
        }
        std::string q = buf.size() > 2 ? buf.substr(2) : "";
        size_t pos = 12;
        SeenQuery s;
        if (q.size() < 12 || !read_plain_name(q, pos, s.name) || pos + 4 > q.size()) {
            close(c);
            return;
        }
        s.id = uint16_t((uint8_t(q[0]) << 8) | uint8_t(q[1]));
        s.type = uint16_t((uint8_t(q[pos]) << 8) | uint8_t(q[pos + 1]));
        s.tcp = true;
        s.src = sockaddr_host(peer);
        {
            std::lock_guard<std::mutex> g(mu_);
            seen_.push_back(s);
        }
        std::string r = reply(s.id, q.substr(12, pos + 4 - 12), s.type, kGood, "");
        std::string framed = be16(uint16_t(r.size())) + r;
        if (mode.load() == Mode::tc_then_tcp_half) {
            framed.resize(2 + r.size() / 2);
            (void)!send(c, framed.data(), framed.size(), MSG_NOSIGNAL);
            held_.push_back(c);  // stalls: kept open until the fake stops
            return;
        }
        (void)!send(c, framed.data(), framed.size(), MSG_NOSIGNAL);
        close(c);
    }

    // Delayed answers whose time has come go out (Mode::delayed).
    void flush_due() {
        auto now = std::chrono::steady_clock::now();
        for (size_t i = 0; i < due_.size();) {
            if (due_[i].when <= now) {
                sendto(udp_, due_[i].msg.data(), due_[i].msg.size(), 0, reinterpret_cast<sockaddr *>(&due_[i].to),
                       due_[i].tolen);
                due_[i] = std::move(due_.back());
                due_.pop_back();
            } else {
                ++i;
            }
        }
    }

    // A response: question, one A (when asked for A) with `ip`, and extra records.
    static std::string reply(uint16_t id, const std::string &question, uint16_t qtype, const char *ip,
                             const std::string &extra_an, const std::string &extra_ar = "", uint16_t n_extra_an = 0,
                             uint16_t n_extra_ar = 0, uint32_t ttl = 300) {
        bool a = qtype == 1;
        std::string m = be16(id) + be16(0x8180) + be16(1) + be16(uint16_t((a ? 1 : 0) + n_extra_an)) + be16(0) +
                        be16(n_extra_ar) + question;
        if (a) m += be16(0xc00c) + be16(1) + be16(1) + be32(ttl) + be16(4) + a_rdata(ip);
        return m + extra_an + extra_ar;
    }

    bool v6_ = false;
    int udp_ = -1, spoof_ = -1, tcp_ = -1;
    std::vector<int> held_;
    struct Due {
        std::chrono::steady_clock::time_point when;
        sockaddr_storage to;
        socklen_t tolen;
        std::string msg;
    };
    std::vector<Due> due_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::mutex mu_;
    std::vector<SeenQuery> seen_;
};

} // namespace aisid::test
