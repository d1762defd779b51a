// Test helpers for the SDK tests: network namespaces, a DNS probe, and a real
// Unbound started on a free port (and always stopped). Temporary directories,
// ports and processes are proc.hpp's.
#pragma once

#include "proc.hpp"

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
                           "  directory: \"" + dir_.path + "\"\n"
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
        proc_ = Process(argv, dir_.file("unbound.log"));
        for (int i = 0; i < 100; ++i) {
            {
                NetnsGuard in(netns);
                if (dns_answers(port_, "probe.invalid.", iface.c_str())) return;
            }
            if (!proc_.running()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
        }
        proc_.stop();
        throw std::runtime_error("unbound did not start: " + read_file(dir_.file("unbound.log")));
    }
    Unbound(const Unbound &) = delete;
    uint16_t port() const { return port_; }
    std::string address() const { return iface_ + ":" + std::to_string(port_); }

private:
    std::string iface_;
    TempDir dir_;
    uint16_t port_ = 0;
    Process proc_;
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
