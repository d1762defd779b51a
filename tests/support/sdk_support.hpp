// Test helpers for the SDK tests: temporary directories, free loopback ports,
// and a real Unbound started on a free port (and always stopped).
#pragma once

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace aisid::test {

/// A directory removed with its files when the object dies.
class TempDir {
public:
    TempDir() {
        char t[] = "/tmp/aisid-sdk-XXXXXX";
        if (!::mkdtemp(t)) throw std::runtime_error("mkdtemp");
        path_ = t;
    }
    ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
    const std::string &path() const { return path_; }
    std::string file(const std::string &name) const { return path_ + "/" + name; }
    /// Writes a file atomically (temporary + rename), as editors and aisidd do.
    std::string write(const std::string &name, const std::string &text, bool atomic = true) const {
        std::string p = file(name), tmp = atomic ? p + ".tmp~" : p;
        {
            std::ofstream f(tmp, std::ios::trunc);
            f << text;
        }
        if (atomic) std::rename(tmp.c_str(), p.c_str());
        return p;
    }

private:
    std::string path_;
};

/// A port free for both UDP and TCP on 127.0.0.1 (the kernel picks it).
inline uint16_t free_port() {
    for (int tries = 0; tries < 50; ++tries) {
        int t = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(t, reinterpret_cast<sockaddr *>(&a), sizeof a);
        socklen_t l = sizeof a;
        ::getsockname(t, reinterpret_cast<sockaddr *>(&a), &l);
        int u = ::socket(AF_INET, SOCK_DGRAM, 0);
        bool ok = ::bind(u, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
        ::close(u);
        ::close(t);
        if (ok) return ntohs(a.sin_port);
    }
    throw std::runtime_error("no free port");
}

/// Puts the calling thread into a named network namespace (/run/netns/NAME,
/// made by `ip netns add`) and back when it dies. Sockets keep the namespace
/// they were made in. An empty name does nothing.
class NetnsGuard {
public:
    explicit NetnsGuard(const std::string &name) {
        if (name.empty()) return;
        self_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
        if (self_ < 0 || fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
            if (fd >= 0) ::close(fd);
            throw std::runtime_error("setns " + name + ": " + std::strerror(errno));
        }
        ::close(fd);
    }
    ~NetnsGuard() {
        if (self_ < 0) return;
        (void)::setns(self_, CLONE_NEWNET);
        ::close(self_);
    }
    NetnsGuard(const NetnsGuard &) = delete;

private:
    int self_ = -1;
};

/// Sends one DNS query for `name` A over UDP; true when any answer comes back.
inline bool dns_answers(uint16_t port, const std::string &name = "probe.invalid.", const char *addr = "127.0.0.1") {
    std::vector<uint8_t> q = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    size_t s = 0;
    while (s < name.size()) {
        size_t e = name.find('.', s);
        if (e == std::string::npos) e = name.size();
        if (e > s) {
            q.push_back(static_cast<uint8_t>(e - s));
            q.insert(q.end(), name.begin() + s, name.begin() + e);
        }
        s = e + 1;
    }
    q.insert(q.end(), {0, 0, 1, 0, 1});
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, addr, &a.sin_addr);
    ::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr *>(&a), sizeof a);
    pollfd p{fd, POLLIN, 0};
    bool ok = ::poll(&p, 1, 200) == 1;
    ::close(fd);
    return ok;
}

/// Runs a program with arguments; returns its pid.
inline pid_t spawn(const std::vector<std::string> &argv, const std::string &log = "/dev/null") {
    pid_t pid = ::fork();
    if (pid == 0) {
        // Plain descriptors: freopen would flush the parent's buffered stdout
        // a second time (doctest_discover_tests reads that stdout).
        int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = ::open("/dev/null", O_RDWR);
        if (err < 0 || nul < 0) _exit(127);
        ::dup2(nul, 0);
        ::dup2(nul, 1);
        ::dup2(err, 2);
        std::vector<char *> a;
        for (const std::string &s : argv) a.push_back(const_cast<char *>(s.c_str()));
        a.push_back(nullptr);
        ::execvp(a[0], a.data());
        _exit(127);
    }
    return pid;
}

inline void stop(pid_t pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 100; ++i) {
        int st;
        if (::waitpid(pid, &st, WNOHANG) == pid) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
}

/// A real Unbound on 127.0.0.1:<free port>, serving `local_data` lines
/// ("www.legacy.example. 300 IN A 192.0.2.10") and refusing everything else.
/// `extra` is appended to the server: clause (e.g. forward-zone config).
class Unbound {
public:
    /// In a network namespace, `netns` names it and `iface` is an IPv4 address there (port 53).
    explicit Unbound(const std::vector<std::string> &local_data, const std::vector<std::string> &local_zones = {},
                     const std::string &extra = "", const std::string &netns = "", const std::string &iface = "127.0.0.1",
                     uint16_t port = 0)
        : iface_(iface) {
        // A namespace of the test's own has port 53 free; elsewhere the kernel picks one.
        port_ = port ? port : netns.empty() ? free_port() : 53;
        std::string conf = "server:\n"
                           "  interface: " + iface + "\n"
                           "  port: " + std::to_string(port_) + "\n"
                           "  do-ip6: no\n"
                           "  chroot: \"\"\n"
                           "  username: \"\"\n"
                           "  do-daemonize: no\n"
                           "  directory: \"" + dir_.path() + "\"\n"
                           "  pidfile: \"\"\n"
                           "  use-syslog: no\n"
                           "  logfile: \"\"\n"
                           "  verbosity: 0\n"
                           "  num-threads: 1\n"
                           "  do-not-query-localhost: no\n"
                           "  access-control: 0.0.0.0/0 allow\n"
                           "  module-config: \"iterator\"\n"
                           "  local-zone: \".\" refuse\n";
        for (const std::string &z : local_zones) conf += "  local-zone: \"" + z + "\" static\n";
        for (const std::string &d : local_data) conf += "  local-data: \"" + d + "\"\n";
        conf += extra;  // more server: options, or whole clauses (forward-zone:) after them
        conf += "remote-control:\n  control-enable: no\n";
        std::string cf = dir_.write("unbound.conf", conf);
        std::vector<std::string> argv = {"unbound", "-d", "-c", cf};
        if (!netns.empty()) argv.insert(argv.begin(), {"ip", "netns", "exec", netns});
        pid_ = spawn(argv, dir_.file("unbound.log"));
        for (int i = 0; i < 100; ++i) {
            {
                NetnsGuard in(netns);
                if (dns_answers(port_, "probe.invalid.", iface.c_str())) return;
            }
            int st;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
        }
        std::ifstream lf(dir_.file("unbound.log"));
        std::string log((std::istreambuf_iterator<char>(lf)), {});
        stop(pid_);
        throw std::runtime_error("unbound did not start: " + log);
    }
    ~Unbound() { stop(pid_); }
    Unbound(const Unbound &) = delete;
    uint16_t port() const { return port_; }
    std::string address() const { return iface_ + ":" + std::to_string(port_); }

private:
    std::string iface_;
    TempDir dir_;
    uint16_t port_ = 0;
    pid_t pid_ = -1;
};

/// The Unbound local data the SDK tests share: legacy names and the SVCB
/// fallback targets of zones/ai.example.zone and of the test zones.
inline std::vector<std::string> legacy_test_data() {
    return {
        "www.legacy.example. 300 IN A 192.0.2.10",
        "www.legacy.example. 300 IN AAAA 2001:db8:1::10",
        "v4only.legacy.example. 300 IN A 192.0.2.11",
        "short.legacy.example. 1 IN A 192.0.2.12",
        "lo.legacy.example. 300 IN A 127.0.0.1",
        "lo.legacy.example. 300 IN AAAA ::1",
        "lo4.legacy.example. 300 IN A 127.0.0.1",
        "yolo-detection-image.legacy.provider.example. 300 IN A 127.0.0.1",
        "yolo-detection-image.legacy.provider.example. 300 IN AAAA ::1",
        "resnet-classification-image.legacy.provider.example. 300 IN A 127.0.0.1",
        "llama-generation-text.legacy.provider.example. 300 IN AAAA ::1",
    };
}
inline std::vector<std::string> legacy_test_zones() { return {"legacy.example.", "legacy.provider.example."}; }

/// Source tree paths.
inline std::string source_path(const std::string &rel) { return std::string(AISID_SOURCE_DIR) + "/" + rel; }

} // namespace aisid::test
