// Shared pieces of the aisidd integration tests: a real Unbound upstream and
// aisidd itself on free loopback ports, started and always stopped by the test,
// plus raw DNS messages for what dig cannot send.
#pragma once

#include "../support/dns_query.hpp"
#include "../support/proc.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <string>
#include <vector>

namespace aisid::test {

inline std::string aisidd_path() { return AISIDD_PATH; }
inline std::string example_zone() { return std::string(AISID_SOURCE_DIR) + "/zones/ai.example.zone"; }

/// Unbound as a forwarding target: refuses everything except its local data.
struct Unbound {
    TempDir dir;
    int port = 0;
    Process proc;
    explicit Unbound(const std::vector<std::string> &local_data = {}, int fixed_port = 0) {
        port = fixed_port ? fixed_port : free_port();
        std::string conf = "server:\n"
                           "  interface: 127.0.0.1@" + std::to_string(port) + "\n"
                           "  port: " + std::to_string(port) + "\n"
                           "  do-daemonize: no\n  chroot: \"\"\n  username: \"\"\n"
                           "  directory: \"" + dir.path + "\"\n  pidfile: \"\"\n  use-syslog: no\n"
                           "  verbosity: 1\n  num-threads: 1\n  do-not-query-localhost: no\n"
                           "  access-control: 127.0.0.0/8 allow\n"
                           "  local-zone: \".\" refuse\n"
                           "  local-zone: \"legacy.example.\" static\n"
                           "  local-data: \"legacy.example. 300 IN SOA ns.legacy.example. admin.legacy.example. 1 3600 600 86400 120\"\n"
                           "  local-data: \"www.legacy.example. 300 IN A 192.0.2.10\"\n"
                           "  local-data: \"www.legacy.example. 300 IN AAAA 2001:db8:1::10\"\n"
                           "  local-data: \"short.legacy.example. 2 IN A 192.0.2.11\"\n";
        for (const auto &d : local_data) conf += "  local-data: '" + d + "'\n";  // single quotes: TXT rdata has double ones
        conf += "remote-control:\n  control-enable: no\n";
        write_file(dir.file("unbound.conf"), conf);
        start();
    }
    void start() {
        proc = Process({"unbound", "-d", "-c", dir.file("unbound.conf")}, dir.path, "unbound");
        REQUIRE_MESSAGE(wait_for_tcp("127.0.0.1", port), "unbound did not start: " << proc.err());
    }
    void stop() { proc.stop(); }
    std::string addr() const { return "127.0.0.1:" + std::to_string(port); }
};

struct Aisidd {
    TempDir dir;
    int port = 0;
    Process proc;
    explicit Aisidd(std::vector<std::string> args, bool default_zone = true) {
        port = free_port();
        std::vector<std::string> argv = {aisidd_path(), "--listen", "127.0.0.1:" + std::to_string(port)};
        if (default_zone) {
            argv.push_back("--zone");
            argv.push_back(example_zone());
        }
        argv.insert(argv.end(), args.begin(), args.end());
        proc = Process(argv, dir.path, "aisidd");
        REQUIRE_MESSAGE(wait_for_tcp("127.0.0.1", port), "aisidd did not start: " << proc.err());
    }
    std::string p() const { return std::to_string(port); }
};

/// dig against 127.0.0.1:port; stdout.
inline std::string dig(int port, std::vector<std::string> args) {
    std::vector<std::string> argv = {"dig", "@127.0.0.1", "-p", std::to_string(port), "+tries=1", "+time=3"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv).out;
}
inline std::string status_of(const std::string &out) {
    std::smatch m;
    if (std::regex_search(out, m, std::regex("status: ([A-Z]+)"))) return m[1];
    return "(none)";
}
inline std::string flags_of(const std::string &out) {
    std::smatch m;
    if (std::regex_search(out, m, std::regex(";; flags: ([a-z ]+);"))) return m[1];
    return "";
}
inline bool has_flag(const std::string &out, const std::string &f) {
    std::string fl = " " + flags_of(out) + " ";
    return fl.find(" " + f + " ") != std::string::npos;
}

// ---- raw messages ----
inline std::string raw_query(uint16_t id, const std::string &name, uint16_t type, uint16_t flags = 0x0100,
                             bool edns = false) {
    return build_query(id, name, type, edns, flags);
}

/// One UDP exchange; "" when nothing comes back within timeout_ms.
inline std::string udp_ask(int port, const std::string &msg, int timeout_ms = 1000, const char *src = nullptr) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (src) {
        sockaddr_in b{};
        b.sin_family = AF_INET;
        inet_pton(AF_INET, src, &b.sin_addr);
        bind(fd, reinterpret_cast<sockaddr *>(&b), sizeof b);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr *>(&a), sizeof a);
    pollfd p{fd, POLLIN, 0};
    std::string out;
    if (poll(&p, 1, timeout_ms) == 1) {
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0) out.assign(buf, size_t(n));
    }
    close(fd);
    return out;
}

inline int tcp_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}
inline bool send_all(int fd, const std::string &s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t k = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (k <= 0) return false;
        off += size_t(k);
    }
    return true;
}
inline std::string framed(const std::string &m) { return std::string{char(m.size() >> 8), char(m.size() & 0xff)} + m; }
/// Reads one length-prefixed message; "" on EOF or timeout.
inline std::string tcp_read_msg(int fd, int timeout_ms = 2000) {
    std::string buf;
    size_t need = 2;
    while (buf.size() < need) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) != 1) return "";
        char tmp[4096];
        ssize_t k = recv(fd, tmp, std::min(sizeof tmp, need - buf.size()), 0);
        if (k <= 0) return "";
        buf.append(tmp, size_t(k));
        if (buf.size() == 2) need = 2 + ((uint8_t(buf[0]) << 8) | uint8_t(buf[1]));
    }
    return buf.substr(2);
}
inline uint16_t msg_id(const std::string &m) { return m.size() >= 2 ? uint16_t((uint8_t(m[0]) << 8) | uint8_t(m[1])) : 0; }
inline int msg_rcode(const std::string &m) { return m.size() >= 4 ? (uint8_t(m[3]) & 0xf) : -1; }
inline int msg_ancount(const std::string &m) { return m.size() >= 8 ? ((uint8_t(m[6]) << 8) | uint8_t(m[7])) : -1; }

/// GET /metrics over plain HTTP.
inline std::string http_get(int port, const std::string &path) {
    int fd = tcp_connect(port);
    if (fd < 0) return "";
    send_all(fd, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    std::string out;
    char buf[8192];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 3000) != 1) break;
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k <= 0) break;
        out.append(buf, size_t(k));
    }
    close(fd);
    return out;
}

/// The value of one metric line ("name{labels} value"); -1 when absent.
inline double metric(const std::string &text, const std::string &series) {
    size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + series.size() + 2));
}

} // namespace aisid::test
