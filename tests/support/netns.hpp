// Network namespaces made by the tests (`ip netns add`): running code of the
// test itself in one.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

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
            int e = errno;
            if (fd >= 0) ::close(fd);
            if (self_ >= 0) ::close(self_);
            self_ = -1;
            throw std::runtime_error("setns " + name + ": " + std::strerror(e));
        }
        ::close(fd);
    }
    ~NetnsGuard() {
        if (self_ < 0) return;
        (void)::setns(self_, CLONE_NEWNET);
        ::close(self_);
    }
    NetnsGuard(const NetnsGuard &) = delete;
    NetnsGuard &operator=(const NetnsGuard &) = delete;

private:
    int self_ = -1;
};

} // namespace aisid::test
