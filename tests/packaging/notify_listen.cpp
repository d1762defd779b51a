// notify_listen: plays systemd's side of Type=notify for one service process.
//
//   notify_listen TIMEOUT_S COMMAND [ARGS...]
//
// Binds an AF_UNIX datagram socket, starts COMMAND with $NOTIFY_SOCKET naming
// it, and waits for "READY=1". Then it does what the unit does: SIGHUP
// (ExecReload) — the process must survive it — and SIGTERM, after which the
// process must exit 0. Exit 0 when all of that happened, 1 otherwise.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

pid_t child = -1;

int fail(const char *what) {
    std::fprintf(stderr, "notify_listen: %s\n", what);
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, nullptr, 0);
    }
    return 1;
}

// Did the child exit within ms? Fills status.
bool exited_within(int ms, int &status) {
    for (int i = 0; i < ms / 10; ++i) {
        if (waitpid(child, &status, WNOHANG) == child) return true;
        usleep(10000);
    }
    return false;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: notify_listen TIMEOUT_S COMMAND [ARGS...]\n");
        return 2;
    }
    const int timeout_ms = std::atoi(argv[1]) * 1000;
    std::string path = "/tmp/aisid-notify-" + std::to_string(getpid());
    unlink(path.c_str());
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) return fail("cannot bind the notify socket");

    child = fork();
    if (child == 0) {
        setenv("NOTIFY_SOCKET", path.c_str(), 1);
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    std::string got;
    bool ready = false;
    for (int waited = 0; !ready && waited < timeout_ms; waited += 100) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {
            char buf[512];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                got.assign(buf, size_t(n));
                ready = ("\n" + got + "\n").find("\nREADY=1\n") != std::string::npos;
            }
        }
        int st;
        if (!ready && waitpid(child, &st, WNOHANG) == child) {
            child = -1;
            unlink(path.c_str());
            return fail("the service exited before it was ready");
        }
    }
    unlink(path.c_str());
    if (!ready) return fail("no READY=1 on the notify socket (a Type=notify unit would time out)");
    std::printf("notify: got \"%s\"\n", got.c_str());

    int st = 0;
    kill(child, SIGHUP);
    if (exited_within(500, st)) {
        child = -1;
        return fail("the service died on SIGHUP (ExecReload)");
    }
    kill(child, SIGTERM);
    if (!exited_within(5000, st)) return fail("the service did not exit within 5 s of SIGTERM");
    child = -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return fail("the service did not exit 0 on SIGTERM");
    std::printf("notify: READY=1, survived SIGHUP, exited 0 on SIGTERM\n");
    return 0;
}
