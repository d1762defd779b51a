// aisidd as a test peer: started through its options on a free loopback port
// (or the listeners given), ready when it says so (sd_notify READY=1: every
// listener, the metrics and control sockets are open and the zones loaded),
// stopped by the destructor.
//
//     Aisidd d(AisiddOptions().example_zone().upstream(ub.addr()).workers(2).arg("--cache-size").arg("8K"));
//     dig(d.port, ...);
//
// Arguments go to aisidd in the order they were given, after --listen.
#pragma once

#include "proc.hpp"

#include <memory>
#include <string>
#include <vector>

namespace aisid::test {

class AisiddOptions {
public:
    /// Logs (NAME.out, NAME.err) and state_dir() in `dir` (default: a directory of its own).
    AisiddOptions &in(const TempDir &dir, std::string name = "aisidd");
    /// --listen ADDR instead of 127.0.0.1 and a free port (repeatable; `port` is the first one's).
    AisiddOptions &listen(std::string addr);
    AisiddOptions &zone(std::string path);
    /// zones/ai.example.zone of the source tree.
    AisiddOptions &example_zone();
    AisiddOptions &upstream(std::string addr);
    /// --threads N
    AisiddOptions &workers(int n);
    /// --state-dir DIR/NAME-state (see in()).
    AisiddOptions &state_dir();
    AisiddOptions &state_dir(std::string path);
    /// --metrics on 127.0.0.1 and a free port (Aisidd::metrics_port, Aisidd::metrics()).
    AisiddOptions &metrics();
    /// --control-socket DIR/NAME.control (Aisidd::control_socket).
    AisiddOptions &control_socket();
    AisiddOptions &arg(std::string a);
    AisiddOptions &args(const std::vector<std::string> &a);
    /// Runs in the network namespace NAME (`ip netns exec`); give its listeners with listen().
    AisiddOptions &netns(std::string name);

private:
    friend class Aisidd;
    std::string dir_, name_ = "aisidd", netns_, state_dir_;
    std::vector<std::string> listen_, args_;
    bool metrics_ = false, control_ = false;
};

/// For Aisidd(options, deferred): ports chosen (to put into another server's
/// options), not started until start().
struct Deferred {};
inline constexpr Deferred deferred{};

class Aisidd {
public:
    explicit Aisidd(AisiddOptions o = {});
    Aisidd(AisiddOptions o, Deferred);
    /// SIGTERM, then SIGKILL after 3 s.
    ~Aisidd();
    Aisidd(const Aisidd &) = delete;
    Aisidd &operator=(const Aisidd &) = delete;

    /// Starts it (again: same ports, arguments and state directory) and waits for READY=1.
    void start();
    /// SIGTERM; the exit code (SIGKILL after timeout_ms).
    int stop(int timeout_ms = 5000) { return proc.stop(timeout_ms); }
    /// SIGKILL, and reaped.
    void kill9();
    /// What aisidd logged (stderr).
    std::string log() const { return proc.err(); }
    /// "127.0.0.1:PORT" (the first listener).
    std::string addr() const;
    /// GET /metrics (with AisiddOptions::metrics()).
    std::string metrics() const;
    /// More arguments for the next start() (a peer's port known only now).
    void add_args(const std::vector<std::string> &more) { o_.args_.insert(o_.args_.end(), more.begin(), more.end()); }

    int port = 0;
    int metrics_port = 0;
    std::string state_dir, control_socket;
    Process proc;

private:
    bool launch(std::string &why);
    AisiddOptions o_;
    std::unique_ptr<TempDir> own_;
    std::string dir_;
    bool own_ports_ = false;
};

} // namespace aisid::test
