#include "net.hpp"

#include "dns_query.hpp"
#include "proc.hpp"
#include "skip.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <regex>

namespace aisid::test {

std::string dig(int port, std::vector<std::string> args) {
    skip_unless_program("dig", "package bind9-dnsutils");
    std::vector<std::string> argv = {"dig", "@127.0.0.1", "-p", std::to_string(port), "+tries=1", "+time=3"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv).out;
}

std::string status_of(const std::string &out) {
    std::smatch m;
    if (std::regex_search(out, m, std::regex("status: ([A-Z]+)"))) return m[1];
    return "(none)";
}

std::string flags_of(const std::string &out) {
    std::smatch m;
    if (std::regex_search(out, m, std::regex(";; flags: ([a-z ]+);"))) return m[1];
    return "";
}

bool has_flag(const std::string &out, const std::string &f) {
    std::string fl = " " + flags_of(out) + " ";
    return fl.find(" " + f + " ") != std::string::npos;
}

std::string udp_ask(int port, const std::string &msg, int timeout_ms, const char *src) {
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

bool dns_answers(const std::string &ip, int port, int timeout_ms) {
    std::string q = build_query(0x5eed, "probe.invalid.", 1, false);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    bool ok = false;
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 && send(fd, q.data(), q.size(), 0) > 0) {
        pollfd p{fd, POLLIN, 0};
        char buf[512];
        ok =
            poll(&p, 1, timeout_ms) == 1 && recv(fd, buf, sizeof buf, 0) >= 12 && msg_id(std::string(buf, 2)) == 0x5eed;
    }
    close(fd);
    return ok;
}

int tcp_connect(int port) {
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

bool send_all(int fd, const std::string &s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t k = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (k <= 0) return false;
        off += size_t(k);
    }
    return true;
}

std::string framed(const std::string &m) { return std::string{char(m.size() >> 8), char(m.size() & 0xff)} + m; }

std::string read_until_closed(int fd, int timeout_ms) {
    std::string out;
    char buf[8192];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) != 1) break;
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k <= 0) break;
        out.append(buf, size_t(k));
    }
    return out;
}

std::string tcp_read_msg(int fd, int timeout_ms) {
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

std::string http_get(int port, const std::string &path) {
    int fd = tcp_connect(port);
    if (fd < 0) return "";
    send_all(fd, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    std::string out = read_until_closed(fd, 3000);
    close(fd);
    return out;
}

double metric(const std::string &text, const std::string &series) {
    size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + series.size() + 2));
}

} // namespace aisid::test
