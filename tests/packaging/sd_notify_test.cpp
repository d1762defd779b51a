// resolver/include/aisid/resolver/sd_notify.hpp: the datagram reaches $NOTIFY_SOCKET, for a path
// and for an abstract ('@') socket, and nothing happens without one.
#include "aisid/resolver/sd_notify.hpp"

#include <doctest/doctest.h>

#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

struct Listener {
    int fd = -1;
    std::string name;  // what goes into NOTIFY_SOCKET
    explicit Listener(bool abstract) {
        fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::string id = "aisid-notify-test-" + std::to_string(::getpid()) + (abstract ? "-a" : "-p");
        socklen_t len;
        if (abstract) {
            name = "@" + id;
            std::memcpy(sa.sun_path + 1, id.data(), id.size());
            len = socklen_t(offsetof(sockaddr_un, sun_path) + 1 + id.size());
        } else {
            name = "/tmp/" + id;
            ::unlink(name.c_str());
            std::memcpy(sa.sun_path, name.c_str(), name.size() + 1);
            len = socklen_t(offsetof(sockaddr_un, sun_path) + name.size() + 1);
        }
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&sa), len) == 0);
    }
    ~Listener() {
        ::close(fd);
        if (name[0] == '/') ::unlink(name.c_str());
    }
    std::string receive() {
        char buf[256];
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        return n < 0 ? std::string("<nothing>") : std::string(buf, size_t(n));
    }
};

} // namespace

TEST_CASE("sd_notify sends READY=1 to a socket path") {
    Listener l(false);
    ::setenv("NOTIFY_SOCKET", l.name.c_str(), 1);
    CHECK(aisid::sd_notify("READY=1") == 1);
    CHECK(l.receive() == "READY=1");
    ::unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("sd_notify handles the abstract namespace") {
    Listener l(true);
    ::setenv("NOTIFY_SOCKET", l.name.c_str(), 1);
    CHECK(aisid::sd_notify("READY=1\nSTATUS=serving") == 1);
    CHECK(l.receive() == "READY=1\nSTATUS=serving");
    ::unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("sd_notify without a manager, or with a bad address") {
    ::unsetenv("NOTIFY_SOCKET");
    CHECK(aisid::sd_notify("READY=1") == 0);
    ::setenv("NOTIFY_SOCKET", "relative/path", 1);
    CHECK(aisid::sd_notify("READY=1") == -EINVAL);
    ::setenv("NOTIFY_SOCKET", "/nonexistent/aisid/notify", 1);
    CHECK(aisid::sd_notify("READY=1") < 0);
    ::unsetenv("NOTIFY_SOCKET");
}
