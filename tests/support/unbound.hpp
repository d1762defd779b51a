// Unbound as a test peer: a resolver with local data that refuses everything
// else (`local-zone: "." refuse`), optionally with DoT and DoH listeners, on
// free loopback ports (or a fixed port, or port 53 in a network namespace).
// Started through its options, ready when the constructor returns (the ports
// are bound by this Unbound, not by something else), stopped by the
// destructor.
//
//     Unbound ub(UnboundOptions().local_zone("legacy.example.").local_data("www.legacy.example. 300 IN A 192.0.2.10"));
//     aisidd ... --upstream ub.addr()
#pragma once

#include "proc.hpp"

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace aisid::test {

struct Pki;

class UnboundOptions {
public:
    /// Config and log in `dir` as TAG.conf and TAG.log (default: a directory of its own).
    UnboundOptions &in(const TempDir &dir, std::string tag = "unbound");
    /// `local-zone: "ZONE" TYPE`.
    UnboundOptions &local_zone(std::string zone, std::string type = "static");
    /// `local-data: 'RR'` (in double quotes when the record has a single quote).
    UnboundOptions &local_data(std::string rr);
    UnboundOptions &local_data(const std::vector<std::string> &rrs);
    UnboundOptions &local_data(std::initializer_list<std::string> rrs) {
        return local_data(std::vector<std::string>(rrs));
    }
    /// A fixed port (kept across stop() and start()); default: a free one.
    UnboundOptions &port(int p);
    /// The address to listen on (IPv4); default 127.0.0.1.
    UnboundOptions &interface(std::string ip);
    /// Runs in the network namespace NAME (`ip netns exec`), on port 53 unless port() says otherwise.
    UnboundOptions &netns(std::string name);
    /// DoT and DoH listeners (free ports) with the server certificate of `pki`.
    UnboundOptions &tls(const Pki &pki);
    /// Log verbosity (default 1; AISID_UNBOUND_VERBOSITY overrides).
    UnboundOptions &verbosity(int v);
    /// One more line in the server: clause ("incoming-num-tcp: 64").
    UnboundOptions &server(std::string line);
    /// Whole clauses after server: ("forward-zone:\n  name: ...\n").
    UnboundOptions &clause(std::string text);

private:
    friend class Unbound;
    std::string dir_, tag_ = "unbound", iface_ = "127.0.0.1", netns_, key_, cert_, clauses_;
    std::vector<std::string> lines_;
    int port_ = 0, verbosity_ = 1;
    bool tls_ = false;
};

class Unbound {
public:
    explicit Unbound(UnboundOptions o = {});
    ~Unbound();
    Unbound(const Unbound &) = delete;
    Unbound &operator=(const Unbound &) = delete;

    /// Starts it again on the same ports (after stop()).
    void start();
    void stop();
    /// "IP:PORT" of the plain DNS listener (UDP and TCP).
    std::string addr() const;
    std::string dot_uri(const std::string &name = "dns.example") const;
    std::string doh_uri(const std::string &host = "127.0.0.1") const;
    /// What Unbound wrote (stdout and stderr, one file).
    std::string log() const { return read_file(log_path); }

    int port = 0, dot = 0, doh = 0;
    Process proc;
    std::string log_path;

private:
    bool launch();
    UnboundOptions o_;
    std::unique_ptr<TempDir> own_;
    std::string dir_;
    bool fixed_ = false;
};

} // namespace aisid::test
