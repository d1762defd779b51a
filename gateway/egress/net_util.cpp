#include "aisid/egress/net_util.hpp"

#include "aisid/core/socket_address.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

extern char **environ;

namespace aisid::gw {

std::string format_addr(const in6_addr &a) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a, buf, sizeof buf);
    return buf;
}

std::string format_sockaddr(const sockaddr_in6 &sa) {
    return "[" + format_addr(sa.sin6_addr) + "]:" + std::to_string(ntohs(sa.sin6_port));
}

std::string NetEndpoint::to_string() const { return format_sockaddr(sa); }

std::optional<NetEndpoint> parse_endpoint(std::string_view text, int default_port) {
    if (default_port > 65535) return std::nullopt;
    AddressRules rules{.ipv6_only = true};
    if (default_port >= 0) {
        rules.default_port = static_cast<uint16_t>(default_port);
        rules.port_zero = true;  // a SID: the port is not used
    }
    auto a = parse_sockaddr(text, rules);
    if (!a) return std::nullopt;
    NetEndpoint ep;
    ep.sa = reinterpret_cast<const sockaddr_in6 &>(a->ss);
    return ep;
}

int run_program(const std::vector<std::string> &argv, std::string *err) {
    std::vector<char *> args;
    for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    std::string text;
    if (rc == 0) {
        char buf[512];
        ssize_t n;
        while ((n = read(pfd[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    }
    close(pfd[0]);
    if (rc != 0) {
        if (err) *err = std::string("cannot run ") + argv[0] + ": " + std::strerror(rc);
        return -1;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (err) *err = text;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int connect_timeout(const NetEndpoint &ep, int timeout_ms) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int rc = connect(fd, reinterpret_cast<const sockaddr *>(&ep.sa), sizeof ep.sa);
    if (rc != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (rc != 0) {
        pollfd p{fd, POLLOUT, 0};
        int n;
        while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (n == 0) soerr = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
        if (soerr != 0) {
            close(fd);
            errno = soerr;
            return -1;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

uint64_t now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void raise_nofile_limit() {
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

std::vector<std::string> split_ws(std::string_view s) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
        size_t j = i;
        while (j < s.size() && !(s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r')) ++j;
        if (j > i) out.emplace_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

std::optional<std::string> field(std::string_view line, std::string_view key) {
    for (const auto &tok : split_ws(line)) {
        if (tok.size() > key.size() && tok.compare(0, key.size(), key) == 0 && tok[key.size()] == '=')
            return tok.substr(key.size() + 1);
    }
    return std::nullopt;
}

} // namespace aisid::gw
