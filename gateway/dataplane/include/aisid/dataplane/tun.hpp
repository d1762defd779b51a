// A TUN device (IFF_TUN | IFF_NO_PI: whole IP packets, no header) and the
// thread that reads it: the userspace data plane's I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <thread>

namespace aisid::gw {

/// Opens a TUN device named after `pattern` ("aisid%d" lets the kernel number
/// it), sets its MTU (0: leave the default) and brings it up. The device goes
/// away when the fd is closed. Returns the fd, or -1 with err set.
int open_tun(const std::string &pattern, int mtu, std::string &actual_name, std::string &err);

/// The MTU of interface `dev` (from sysfs), or 0 when unknown.
int interface_mtu(const std::string &dev);

/// A sysctl under /proc/sys (dotted or slashed name) as an integer; fallback when unreadable.
long read_sysctl(const std::string &name, long fallback);

/// Reads packets from a TUN fd on its own thread and hands each to handle(),
/// which may write packets back to the same fd (tun_fd()).
class TunLoop {
public:
    virtual ~TunLoop();
    void start();
    /// Stops and joins the thread; idempotent.
    void stop();
    int tun_fd() const { return fd_; }
    const std::string &tun_name() const { return name_; }

protected:
    TunLoop(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
    /// One packet from the kernel. The buffer is valid until handle returns.
    virtual void handle(std::span<uint8_t> pkt) = 0;
    /// Called about once a second on the data plane thread (timers).
    virtual void tick(uint64_t /*now_ms*/) {}
    /// Writes one packet to the device; false (and counted) when the kernel refused it.
    bool emit(std::span<const uint8_t> pkt);
    std::atomic<uint64_t> write_errors_{0};

private:
    void loop();
    int fd_;
    std::string name_;
    int stop_fd_ = -1;
    std::thread thread_;
};

} // namespace aisid::gw
