// TLS test peers: a CA and server certificates made with the openssl CLI in a
// temporary directory (never committed), and dnsdist with DoT and DoH
// listeners in front of a plain DNS backend. Unbound's own DoT and DoH
// listeners: UnboundOptions::tls (unbound.hpp).
#pragma once

#include "proc.hpp"

#include <string>

namespace aisid::test {

/// A CA, a server certificate for dns.example + 127.0.0.1 signed by it, and a
/// second CA (`rogue`) that signed nothing the servers use. Files in `dir`.
struct Pki {
    std::string dir, ca, cert, key, rogue_ca;
    explicit Pki(const std::string &dir);
};

class DnsdistOptions {
public:
    /// Config and log in `dir` as TAG.conf and TAG.log.
    DnsdistOptions &in(const TempDir &dir, std::string tag = "dnsdist");
    /// The server certificate (required).
    DnsdistOptions &tls(const Pki &pki);
    /// The plain DNS backend on 127.0.0.1 (required).
    DnsdistOptions &backend(int port);
    /// More addDOHLocal options (Lua table fields), e.g. custom response headers.
    DnsdistOptions &doh_options(std::string lua);

private:
    friend class Dnsdist;
    std::string dir_, tag_ = "dnsdist", cert_, key_, doh_options_;
    int backend_ = 0;
};

/// dnsdist with DoT and DoH listeners on free loopback ports. maxInFlight
/// turns on dnsdist's out-of-order processing of pipelined DoT queries;
/// without it dnsdist 1.7 serves them one at a time and stalls on a burst (it
/// waits for the socket while queries sit decrypted in its TLS buffer) until
/// its read timeout closes the connection.
class Dnsdist {
public:
    explicit Dnsdist(DnsdistOptions o);
    Dnsdist(const Dnsdist &) = delete;
    Dnsdist &operator=(const Dnsdist &) = delete;
    std::string dot_uri(const std::string &name = "dns.example") const;
    std::string doh_uri(const std::string &host = "127.0.0.1") const;
    std::string log() const { return read_file(log_path); }

    int dot = 0, doh = 0;
    Process proc;
    std::string log_path;

private:
    std::unique_ptr<TempDir> own_;
};

} // namespace aisid::test
