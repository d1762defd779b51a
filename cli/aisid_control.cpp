// aisid-control: operates a running aisidd over its control socket
// (aisidd --control-socket, resolver/include/aisid/resolver/control.hpp has the protocol), as
// unbound-control and resolvectl do for theirs: statistics, cache flushes and
// dumps, reloads, zone and upstream state. Sends one request line and copies
// the reply to stdout as it comes.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef AISID_VERSION
#define AISID_VERSION "0.0.0"
#endif

namespace {

const char *kDefaultSocket = "/run/aisid/control";
// The server takes at most 512 bytes a request (kControlMaxRequest).
constexpr size_t kMaxRequest = 512;

const char *kUsage =
    "usage: aisid-control [--socket PATH] [--timeout MS] COMMAND [ARG]\n"
    "\n"
    "Operates a running aisidd through its control socket (aisidd --control-socket).\n"
    "\n"
    "commands:\n"
    "  stats          counters and gauges, the same series as /metrics\n"
    "  flush NAME     drop every cached answer for NAME (all types)\n"
    "  flush-all      empty the answer cache\n"
    "  reload         re-read the configuration and every zone (as SIGHUP does)\n"
    "  zone-status    each zone: serial, source (file, journal, primary), last load or refresh\n"
    "  upstreams      each upstream: up or down, queries, failures, round-trip time\n"
    "  dump-cache     the cached answers as zone-file text, with TTLs left\n"
    "\n"
    "  --socket PATH  the control socket (default /run/aisid/control)\n"
    "  --timeout MS   longest wait for aisidd between two pieces of the reply (default 30000)\n"
    "  --help, --version\n"
    "\n"
    "Only root, aisidd's own user and members of group aisid may use it.\n"
    "exit: 0 ok, 2 usage or a request aisidd rejects (a reload that fails included),\n"
    "3 aisidd not reachable, 4 refused (not permitted)\n";

struct ControlError {
    int code;
    std::string msg;
    bool usage;  // our own command line was wrong: point at --help
};

[[noreturn]] void fail(int code, const std::string &msg) { throw ControlError{code, msg, code == 2}; }
[[noreturn]] void rejected(int code, const std::string &msg) { throw ControlError{code, msg, false}; }

bool write_out(const char *p, size_t n) {
    while (n) {
        ssize_t k = ::write(1, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= size_t(k);
    }
    return true;
}

int run(int argc, char **argv) {
    std::string path = kDefaultSocket;
    int timeout_ms = 30000;
    std::vector<std::string> words;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char *opt) {
            if (i + 1 >= argc) fail(2, std::string(opt) + " needs a value");
            return std::string(argv[++i]);
        };
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (a == "--version") {
            std::printf("aisid-control %s\n", AISID_VERSION);
            return 0;
        } else if (a == "--socket") {
            path = value("--socket");
        } else if (a.rfind("--socket=", 0) == 0) {
            path = a.substr(9);
        } else if (a == "--timeout") {
            std::string v = value("--timeout");
            char *end = nullptr;
            long t = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end || t < 1 || t > 3600000) fail(2, "bad --timeout '" + v + "' (ms)");
            timeout_ms = int(t);
        } else if (a.size() > 1 && a[0] == '-' && words.empty()) {
            fail(2, "unknown option '" + a + "'");
        } else {
            words.push_back(a);
        }
    }
    if (words.empty()) fail(2, "no command given");
    if (words.size() > 2) fail(2, "too many arguments");
    std::string req = words[0] + (words.size() > 1 ? " " + words[1] : "");
    for (char c : req)
        if (static_cast<unsigned char>(c) < 0x20) fail(2, "control characters in the request");
    if (req.size() > kMaxRequest) fail(2, "request too long");
    req += "\n";

    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof a.sun_path) fail(2, "bad --socket path '" + path + "'");
    std::memcpy(a.sun_path, path.data(), path.size());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(3, std::string("socket: ") + std::strerror(errno));
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        int e = errno;
        close(fd);
        if (e == EACCES || e == EPERM) fail(4, path + ": " + std::strerror(e) + " (root or group aisid only)");
        fail(3, "cannot reach aisidd at " + path + ": " + std::strerror(e) +
                    " (is it running with --control-socket " + path + "?)");
    }
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != ssize_t(req.size())) {
        int e = errno;
        close(fd);
        fail(3, "sending to aisidd: " + std::string(std::strerror(e)));
    }
    // The status line first ("ok", "error MESSAGE", "refused MESSAGE"), then
    // the reply until aisidd closes the connection.
    std::string status;
    bool have_status = false;
    char buf[65536];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            close(fd);
            fail(3, "no reply from aisidd within " + std::to_string(timeout_ms) + " ms");
        }
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            fail(3, "reading from aisidd: " + std::string(std::strerror(e)));
        }
        if (k == 0) break;
        const char *data = buf;
        size_t n = size_t(k);
        if (!have_status) {
            const char *nl = static_cast<const char *>(std::memchr(data, '\n', n));
            size_t take = nl ? size_t(nl - data) : n;
            status.append(data, take);
            if (status.size() > 4096) break;
            if (!nl) continue;
            have_status = true;
            data += take + 1;
            n -= take + 1;
            if (status != "ok") break;
        }
        if (!write_out(data, n)) {
            close(fd);
            return 3;  // stdout went away (a pager quit): nothing more to say
        }
    }
    close(fd);
    if (status == "ok" && have_status) return 0;
    if (status.rfind("refused ", 0) == 0) rejected(4, status.substr(8));
    if (status.rfind("error ", 0) == 0) rejected(2, status.substr(6));
    fail(3, "aisidd closed the connection without a complete reply");
}

} // namespace

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const ControlError &f) {
        std::fprintf(stderr, "aisid-control: %s\n", f.msg.c_str());
        if (f.usage) std::fprintf(stderr, "try 'aisid-control --help'\n");
        return f.code;
    }
}
