#include "aisid/dataplane/tun.hpp"

#include "aisid/egress/net_util.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace aisid::gw {

int open_tun(const std::string &pattern, int mtu, std::string &actual, std::string &err) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        err = std::string("/dev/net/tun: ") + std::strerror(errno) +
              (errno == ENOENT ? " (kernel without CONFIG_TUN, or no device node in this container)" : "");
        return -1;
    }
    ifreq ifr{};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    if (pattern.size() >= IFNAMSIZ) {
        err = "TUN device name '" + pattern + "' is longer than " + std::to_string(IFNAMSIZ - 1) + " characters";
        close(fd);
        return -1;
    }
    std::strncpy(ifr.ifr_name, pattern.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
        err = "TUNSETIFF " + pattern + ": " + std::strerror(errno);
        close(fd);
        return -1;
    }
    actual = ifr.ifr_name;
    std::vector<std::string> cmd = {"ip", "link", "set", "dev", actual};
    if (mtu > 0) cmd.insert(cmd.end(), {"mtu", std::to_string(mtu)});
    cmd.push_back("up");
    std::string e;
    if (run_program(cmd, &e) != 0) {
        err = "cannot bring up " + actual + ": " + e;
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

int interface_mtu(const std::string &dev) {
    std::ifstream in("/sys/class/net/" + dev + "/mtu");
    int mtu = 0;
    in >> mtu;
    return in ? mtu : 0;
}

long read_sysctl(const std::string &name, long fallback) {
    std::string path = "/proc/sys/";
    for (char c : name) path += c == '.' ? '/' : c;
    std::ifstream in(path);
    long v = 0;
    in >> v;
    return in ? v : fallback;
}

TunLoop::~TunLoop() {
    stop();
    if (fd_ >= 0) close(fd_);
}

void TunLoop::start() {
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    thread_ = std::thread([this] { loop(); });
}

void TunLoop::stop() {
    if (!thread_.joinable()) return;
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof one);
    thread_.join();
    close(stop_fd_);
    stop_fd_ = -1;
}

bool TunLoop::emit(std::span<const uint8_t> pkt) {
    if (write(fd_, pkt.data(), pkt.size()) == static_cast<ssize_t>(pkt.size())) return true;
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    return false;
}

void TunLoop::loop() {
    alignas(64) static thread_local uint8_t buf[65536];
    uint64_t next_tick = now_ms() + 1000;
    for (;;) {
        pollfd p[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
        int n = poll(p, 2, 1000);
        if (n < 0 && errno != EINTR) break;
        if (p[1].revents) break;
        if (p[0].revents & POLLIN) {
            // Drain what is queued (bounded, so timers still run under load).
            for (int burst = 0; burst < 1024; ++burst) {
                ssize_t r = read(fd_, buf, sizeof buf);
                if (r <= 0) break;
                handle(std::span<uint8_t>(buf, static_cast<size_t>(r)));
            }
        }
        const uint64_t now = now_ms();
        if (now >= next_tick) {
            tick(now);
            next_tick = now + 1000;
        }
    }
}

} // namespace aisid::gw
