// Test helpers for starting real programs on loopback: free ports, spawning a
// process (stdout/stderr captured to files), waiting until it listens on its
// ports, stopping it (always: the destructor kills what is still running),
// and running a command to capture its output. Header-only; needs no doctest.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace aisid::test {

inline std::string read_file(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

inline void write_file(const std::string &path, const std::string &text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
}

/// A fresh directory under $TMPDIR, removed (recursively) by the destructor,
/// unless AISID_TEST_KEEP is set (debugging: keep configs and logs).
struct TempDir {
    std::string path;
    TempDir() {
        const char *t = std::getenv("TMPDIR");
        std::string tmpl = std::string(t && *t ? t : "/tmp") + "/aisid-test-XXXXXX";
        std::vector<char> b(tmpl.begin(), tmpl.end());
        b.push_back(0);
        if (!mkdtemp(b.data())) throw std::runtime_error("mkdtemp failed");
        path = b.data();
    }
    ~TempDir() {
        if (!path.empty() && !std::getenv("AISID_TEST_KEEP")) {
            std::string cmd = "rm -rf '" + path + "'";
            (void)!std::system(cmd.c_str());
        }
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    std::string file(const std::string &name) const { return path + "/" + name; }
    /// Writes a file, by default atomically (temporary + rename, as editors
    /// and aisidd do, so a watcher never sees half a file); returns its path.
    std::string write(const std::string &name, const std::string &text, bool atomic = true) const {
        std::string p = file(name), tmp = atomic ? p + ".tmp~" : p;
        write_file(tmp, text);
        if (atomic) std::rename(tmp.c_str(), p.c_str());
        return p;
    }
};

/// A loopback port free for both UDP and TCP, on 127.0.0.1 and on [::1], right
/// now. Drawn below the ephemeral range (net.ipv4.ip_local_port_range): a port
/// the kernel picked would go back to the pool when released here, and the
/// test's own next outgoing connection could take it before the server binds it.
inline int free_port(const char *host = "127.0.0.1") {
    int low = 32768;
    {
        std::ifstream r("/proc/sys/net/ipv4/ip_local_port_range");
        int lo = 0;
        if (r >> lo && lo > 12000) low = lo;
    }
    static unsigned seed = static_cast<unsigned>(getpid()) * 2654435761u ^
                           static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
    auto bindable = [](int family, int type, int port, const char *addr) -> bool {
        int fd = socket(family, type, 0);
        if (fd < 0) return false;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        bool ok;
        if (family == AF_INET) {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(static_cast<uint16_t>(port));
            inet_pton(AF_INET, addr, &a.sin_addr);
            ok = bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
        } else {
            int v6only = 1;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
            sockaddr_in6 a{};
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(static_cast<uint16_t>(port));
            a.sin6_addr = in6addr_loopback;
            ok = bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 || errno == EADDRNOTAVAIL;
        }
        close(fd);
        return ok;
    };
    for (int attempt = 0; attempt < 500; ++attempt) {
        seed = seed * 1103515245u + 12345u;
        const int port = 10000 + static_cast<int>((seed >> 8) % static_cast<unsigned>(low - 10000));
        if (bindable(AF_INET, SOCK_STREAM, port, host) && bindable(AF_INET, SOCK_DGRAM, port, host) &&
            bindable(AF_INET6, SOCK_STREAM, port, nullptr) && bindable(AF_INET6, SOCK_DGRAM, port, nullptr))
            return port;
    }
    throw std::runtime_error("no free port");
}

/// A child process, killed (SIGKILL) and reaped by the destructor if still
/// running, and by the kernel if the test process dies first (no destructor
/// runs then).
class Process {
public:
    Process() = default;
    /// Starts argv[0] (looked up in PATH) with stdout/stderr redirected to
    /// files in `logdir` (NAME.out, NAME.err); `env` ("KEY=VALUE") added to
    /// the environment.
    Process(std::vector<std::string> argv, const std::string &logdir, const std::string &name,
            const std::vector<std::string> &env = {})
        : out_path_(logdir + "/" + name + ".out"), err_path_(logdir + "/" + name + ".err") {
        start(std::move(argv), env);
    }
    /// Starts argv[0] with stdout and stderr both to `log` (one file, in order).
    Process(std::vector<std::string> argv, const std::string &log, const std::vector<std::string> &env = {})
        : out_path_(log), err_path_(log) {
        start(std::move(argv), env);
    }
    Process(const Process &) = delete;
    Process &operator=(const Process &) = delete;
    Process(Process &&o) noexcept { *this = std::move(o); }
    Process &operator=(Process &&o) noexcept {
        stop_now();
        pid_ = o.pid_;
        status_ = o.status_;
        out_path_ = std::move(o.out_path_);
        err_path_ = std::move(o.err_path_);
        o.pid_ = -1;
        return *this;
    }
    ~Process() { stop_now(); }

    pid_t pid() const { return pid_; }
    bool running() {
        if (pid_ <= 0) return false;
        int st;
        pid_t r = waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            status_ = st;
            pid_ = -1;  // reaped: never signal that number again
            return false;
        }
        return true;
    }
    void signal(int sig) const {
        if (pid_ > 0) ::kill(pid_, sig);
    }
    /// Waits for the exit; the exit code, 128+signal, or -1 on timeout.
    int wait(int timeout_ms = 5000) {
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (running()) {
            if (std::chrono::steady_clock::now() >= end) return -1;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return exit_code();
    }
    /// SIGTERM (a stopped process is continued first), then SIGKILL if it does
    /// not exit in time; the exit code.
    int stop(int timeout_ms = 5000) {
        signal(SIGCONT);
        signal(SIGTERM);
        int rc = wait(timeout_ms);
        if (rc == -1) {
            signal(SIGKILL);
            rc = wait(5000);
        }
        return rc;
    }
    int exit_code() const {
        if (WIFEXITED(status_)) return WEXITSTATUS(status_);
        if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
        return -1;
    }
    std::string out() const { return read_file(out_path_); }
    std::string err() const { return read_file(err_path_); }
    /// User + system CPU time of the process so far, in seconds (/proc/PID/stat).
    double cpu_seconds() const {
        std::string s = read_file("/proc/" + std::to_string(pid_) + "/stat");
        size_t close = s.rfind(')');
        if (close == std::string::npos) return 0;
        std::istringstream in(s.substr(close + 2));
        std::string f;
        unsigned long long ut = 0, st = 0;
        for (int i = 3; i <= 15 && in >> f; ++i) {
            if (i == 14) ut = std::stoull(f);
            if (i == 15) st = std::stoull(f);
        }
        return double(ut + st) / double(sysconf(_SC_CLK_TCK));
    }

private:
    void start(std::vector<std::string> argv, const std::vector<std::string> &env) {
        std::vector<char *> av;
        for (auto &a : argv) av.push_back(a.data());
        av.push_back(nullptr);
        // The environment, made before fork (no allocation in the child).
        std::vector<std::string> envs;
        for (char **e = environ; *e; ++e) {
            std::string kv = *e, key = kv.substr(0, kv.find('=') + 1);
            bool replaced = false;
            for (const std::string &x : env) replaced |= x.compare(0, key.size(), key) == 0;
            if (!replaced) envs.push_back(kv);
        }
        envs.insert(envs.end(), env.begin(), env.end());
        std::vector<char *> ev;
        for (auto &e : envs) ev.push_back(e.data());
        ev.push_back(nullptr);
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            // Plain descriptors, no stdio in the child: a flush there would
            // repeat the parent's buffered stdout (doctest_discover_tests reads it).
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() == 1) _exit(127);
            int o = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int e = err_path_ == out_path_ ? o : open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int n = open("/dev/null", O_RDONLY);
            if (o < 0 || e < 0 || n < 0) _exit(127);
            dup2(n, 0);
            dup2(o, 1);
            dup2(e, 2);
            // A test runner's blocked signals must not leak into the server.
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, nullptr);
            execvpe(av[0], av.data(), ev.data());
            _exit(127);
        }
    }
    void stop_now() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int st;
            waitpid(pid_, &st, 0);
            pid_ = -1;
        }
    }
    pid_t pid_ = -1;
    int status_ = 0;
    std::string out_path_, err_path_;
};

/// A port a server should hold: bound (UDP) or listening (TCP).
struct Listening {
    int port;
    bool tcp;
};

/// True when process `pid` itself holds `port`: a UDP socket bound to it or
/// a TCP socket listening on it, in the process's network namespace (its
/// /proc/PID/net). Not just "something answers there": a port taken by
/// another program in between does not count.
inline bool owns_port(pid_t pid, const Listening &want) {
    std::set<std::string> inodes; // the process's sockets
    std::string fds = "/proc/" + std::to_string(pid) + "/fd";
    if (DIR *d = opendir(fds.c_str())) {
        while (dirent *e = readdir(d)) {
            char link[64];
            ssize_t n = readlink((fds + "/" + e->d_name).c_str(), link, sizeof link - 1);
            if (n > 9 && std::strncmp(link, "socket:[", 8) == 0) inodes.insert(std::string(link + 8, size_t(n) - 9));
        }
        closedir(d);
    }
    static const char *const tables[2][2] = {{"udp", "udp6"}, {"tcp", "tcp6"}};
    for (const char *table : tables[want.tcp ? 1 : 0]) {
        std::ifstream f("/proc/" + std::to_string(pid) + "/net/" + table);
        std::string line;
        std::getline(f, line); // the header
        while (std::getline(f, line)) {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            std::istringstream in(line);
            std::string sl, local, remote, st, queues, timer, retr, uid, timeout, inode;
            if (!(in >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode)) continue;
            size_t colon = local.rfind(':');
            if (colon == std::string::npos || std::stoi(local.substr(colon + 1), nullptr, 16) != want.port) continue;
            if (want.tcp && st != "0A") continue; // TCP_LISTEN
            if (inodes.count(inode)) return true;
        }
    }
    return false;
}

/// Waits until process `p` holds every port in `ports` (owns_port); false
/// when it exits first or time runs out.
inline bool wait_listening(Process &p, const std::vector<Listening> &ports, int timeout_ms = 10000) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < end) {
        if (!p.running()) return false;
        bool all = true;
        for (const Listening &l : ports) all = all && owns_port(p.pid(), l);
        if (all) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

/// A server's log saying a port it was given is taken.
inline bool port_taken(const std::string &log) {
    return log.find("already in use") != std::string::npos || log.find("Address in use") != std::string::npos;
}

/// Starts a server on ports free a moment ago: `start` picks the ports,
/// starts `proc` (logging to `log`) and says whether it came up
/// (wait_listening). Another program (tests of other parts run in parallel)
/// may take a port in between: a start that failed with "Address already in
/// use", or said nothing at all, is retried on new ports. Throws with the log
/// when it does not come up.
template <class Start> void start_retrying(Process &proc, const std::string &log, Start start, const char *what) {
    for (int attempt = 0;; ++attempt) {
        if (start()) return;
        proc.stop();
        std::string l = read_file(log);
        if (attempt < 5 && (port_taken(l) || l.empty())) continue;
        throw std::runtime_error(std::string(what) + " did not start: " + l);
    }
}

struct CmdResult {
    int code = -1;  // exit code; 128+signal; -1 when it timed out (then killed)
    std::string out, err;
};

/// Runs a command to completion (killed after timeout_ms) and captures its output.
inline CmdResult run(std::vector<std::string> argv, int timeout_ms = 20000) {
    TempDir d;
    Process p(std::move(argv), d.path, "cmd");
    CmdResult r;
    r.code = p.wait(timeout_ms);
    if (r.code == -1) p.stop(1000), r.code = -1;
    r.out = p.out();
    r.err = p.err();
    return r;
}

/// True when the program is in PATH (asked once per program and process).
inline bool have_program(const std::string &name) {
    static std::mutex m;
    static std::map<std::string, bool> known;
    std::lock_guard<std::mutex> lock(m);
    auto it = known.find(name);
    if (it != known.end()) return it->second;
    std::string cmd = "command -v '" + name + "' >/dev/null 2>&1";
    return known[name] = std::system(cmd.c_str()) == 0;
}

} // namespace aisid::test
