#include "aisidd.hpp"

#include "net.hpp"
#include "paths.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace aisid::test {

namespace {

// Stands for DIR/NAME-state in the arguments until the directory is known.
const char *kStateDir = "\x01state-dir";

// The service manager's end of sd_notify(3): a datagram socket aisidd is told
// about in $NOTIFY_SOCKET. Abstract (no file whose mode a dropped --user
// would need), except for a process in another network namespace, which sees
// only its own abstract names: a file there.
class NotifySocket {
public:
    explicit NotifySocket(const std::string &file) {
        static std::atomic<int> n{0};
        fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        if (file.empty()) {
            name_ = "@aisid-test-" + std::to_string(getpid()) + "-" + std::to_string(++n);
            std::memcpy(a.sun_path + 1, name_.data() + 1, name_.size() - 1);
        } else {
            if (file.size() >= sizeof a.sun_path) throw std::runtime_error("notify socket path too long: " + file);
            name_ = path_ = file;
            unlink(path_.c_str());
            std::memcpy(a.sun_path, file.data(), file.size());
        }
        socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + name_.size() + (path_.empty() ? 0 : 1));
        if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr *>(&a), len) != 0)
            throw std::runtime_error("notify socket " + name_ + ": " + std::strerror(errno));
    }
    ~NotifySocket() {
        if (fd_ >= 0) close(fd_);
        if (!path_.empty()) unlink(path_.c_str());
    }
    NotifySocket(const NotifySocket &) = delete;
    std::string env() const { return "NOTIFY_SOCKET=" + name_; }
    /// True once READY=1 arrives; false when the process exits or time runs out.
    bool wait_ready(Process &p, int timeout_ms) {
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < end) {
            pollfd pf{fd_, POLLIN, 0};
            if (poll(&pf, 1, 20) == 1) {
                char buf[4096];
                ssize_t k = recv(fd_, buf, sizeof buf, 0);
                if (k > 0 && std::string(buf, size_t(k)).find("READY=1") != std::string::npos) return true;
                continue;
            }
            if (!p.running()) return false;
        }
        return false;
    }

private:
    int fd_ = -1;
    std::string name_, path_;
};

int port_of(const std::string &addr) { return std::stoi(addr.substr(addr.rfind(':') + 1)); }

} // namespace

AisiddOptions &AisiddOptions::in(const TempDir &dir, std::string name) {
    dir_ = dir.path;
    name_ = std::move(name);
    return *this;
}
AisiddOptions &AisiddOptions::listen(std::string addr) {
    listen_.push_back(std::move(addr));
    return *this;
}
AisiddOptions &AisiddOptions::zone(std::string path) { return args({"--zone", std::move(path)}); }
AisiddOptions &AisiddOptions::example_zone() { return zone(example_zone_path()); }
AisiddOptions &AisiddOptions::upstream(std::string addr) { return args({"--upstream", std::move(addr)}); }
AisiddOptions &AisiddOptions::workers(int n) { return args({"--threads", std::to_string(n)}); }
AisiddOptions &AisiddOptions::state_dir() { return args({"--state-dir", kStateDir}); }
AisiddOptions &AisiddOptions::state_dir(std::string path) {
    state_dir_ = path;
    return args({"--state-dir", std::move(path)});
}
AisiddOptions &AisiddOptions::metrics() {
    metrics_ = true;
    return *this;
}
AisiddOptions &AisiddOptions::control_socket() {
    control_ = true;
    return *this;
}
AisiddOptions &AisiddOptions::arg(std::string a) {
    args_.push_back(std::move(a));
    return *this;
}
AisiddOptions &AisiddOptions::args(const std::vector<std::string> &a) {
    args_.insert(args_.end(), a.begin(), a.end());
    return *this;
}
AisiddOptions &AisiddOptions::netns(std::string name) {
    netns_ = std::move(name);
    return *this;
}

Aisidd::Aisidd(AisiddOptions o, Deferred) : o_(std::move(o)) {
    if (o_.dir_.empty()) {
        own_ = std::make_unique<TempDir>();
        dir_ = own_->path;
    } else {
        dir_ = o_.dir_;
    }
    state_dir = o_.state_dir_.empty() ? dir_ + "/" + o_.name_ + "-state" : o_.state_dir_;
    for (std::string &a : o_.args_)
        if (a == kStateDir) a = state_dir;
    if (o_.control_) control_socket = dir_ + "/" + o_.name_ + ".control";
    own_ports_ = o_.listen_.empty();
    port = own_ports_ ? free_port() : port_of(o_.listen_[0]);
    if (o_.metrics_) metrics_port = free_port();
}

Aisidd::Aisidd(AisiddOptions o) : Aisidd(std::move(o), deferred) {
    std::string why;
    // Ports free a moment ago may be taken in between by a test running in
    // parallel: new ones, when they are ours to choose.
    for (int attempt = 0; !launch(why); ++attempt) {
        if (attempt >= 5 || !port_taken(why) || (!own_ports_ && !o_.metrics_))
            throw std::runtime_error("aisidd did not start: " + why);
        if (own_ports_) port = free_port();
        if (o_.metrics_) metrics_port = free_port();
    }
}

Aisidd::~Aisidd() { proc.stop(3000); }

void Aisidd::start() {
    std::string why;
    if (!launch(why)) throw std::runtime_error("aisidd did not start: " + why);
}

bool Aisidd::launch(std::string &why) {
    std::vector<std::string> argv;
    if (!o_.netns_.empty()) argv = {"ip", "netns", "exec", o_.netns_};
    argv.push_back(aisidd_path());
    if (own_ports_) argv.insert(argv.end(), {"--listen", "127.0.0.1:" + std::to_string(port)});
    for (const std::string &l : o_.listen_) argv.insert(argv.end(), {"--listen", l});
    if (o_.metrics_) argv.insert(argv.end(), {"--metrics", "127.0.0.1:" + std::to_string(metrics_port)});
    if (o_.control_) argv.insert(argv.end(), {"--control-socket", control_socket});
    argv.insert(argv.end(), o_.args_.begin(), o_.args_.end());
    NotifySocket ready(o_.netns_.empty() ? "" : dir_ + "/" + o_.name_ + ".notify");
    proc = Process(argv, dir_, o_.name_, {ready.env()});
    // Slow under a sanitizer on a loaded machine: a generous bound.
    if (ready.wait_ready(proc, 30000)) return true;
    proc.stop(1000);
    why = "exit " + std::to_string(proc.exit_code()) + ": " + proc.err();
    return false;
}

void Aisidd::kill9() {
    proc.signal(SIGKILL);
    proc.wait(5000);
}

std::string Aisidd::addr() const { return (own_ports_ ? "127.0.0.1:" + std::to_string(port) : o_.listen_[0]); }

std::string Aisidd::metrics() const { return http_get(metrics_port, "/metrics"); }

} // namespace aisid::test
