// Real DoT/DoH peers for the transport tests and the transport benchmark:
// a CA and server certificates made with the openssl CLI in a temp dir (never
// committed), Unbound (UDP, DoT, DoH) and dnsdist (DoT, DoH in front of that
// Unbound) on free loopback ports. Every process is stopped by its owner's
// destructor, whatever happens in the test.
#pragma once

#include "proc.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace aisid::test {

inline bool tcp_accepts(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(s, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    close(s);
    return ok;
}

/// Established TCP connections whose local port is `port` (the server side),
/// counted with ss(8); -1 when ss cannot run.
inline int established_to(int port) {
    std::string cmd = "ss -Htn state established '( sport = :" + std::to_string(port) + " )' 2>/dev/null";
    FILE *f = popen(cmd.c_str(), "r");
    if (!f) return -1;
    int lines = 0;
    char buf[512];
    while (std::fgets(buf, sizeof buf, f))
        if (buf[0] != '\n') ++lines;
    return pclose(f) == 0 ? lines : -1;
}

inline void run_or_throw(const std::string &cmd) {
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("command failed: " + cmd);
}

/// A CA, a server certificate for dns.example + 127.0.0.1 signed by it, and a
/// second CA (`rogue`) that signed nothing the servers use.
struct Pki {
    std::string dir, ca, cert, key, rogue_ca;
    explicit Pki(const std::string &d) : dir(d) {
        ca = dir + "/ca.pem";
        cert = dir + "/server.pem";
        key = dir + "/server.key";
        rogue_ca = dir + "/rogue-ca.pem";
        write_file(dir + "/ext.cnf",
             "subjectAltName=DNS:dns.example,IP:127.0.0.1\n"
             "basicConstraints=critical,CA:FALSE\n"
             "keyUsage=critical,digitalSignature\n"
             "extendedKeyUsage=serverAuth\n");
        std::string q = " >/dev/null 2>&1";
        std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        std::string ca_ext = " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
        run_or_throw("cd '" + dir + "' && openssl req -x509" + ec + " -keyout ca.key -out ca.pem -days 2 -subj /CN=aisid-test-ca" + ca_ext + q);
        run_or_throw("cd '" + dir + "' && openssl req -x509" + ec + " -keyout rogue-ca.key -out rogue-ca.pem -days 2 -subj /CN=aisid-rogue-ca" + ca_ext + q);
        run_or_throw("cd '" + dir + "' && openssl req" + ec + " -keyout server.key -out server.csr -subj /CN=dns.example" + q);
        run_or_throw("cd '" + dir + "' && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf" + q);
    }
};

inline bool wait_tcp(int port, Process &p, int ms = 10000) {
    for (int waited = 0; waited < ms; waited += 20) {
        if (tcp_accepts(port)) return true;
        if (!p.running()) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

/// Starts a server on ports free a moment ago: another program (tests of
/// other parts run in parallel) may take one in between, so a start that
/// fails with "Address already in use" is retried on new ports. A listener
/// that answered although our server exited was someone else's: retried too.
template <class Start> void start_retrying(Process &proc, const std::string &log, Start start, const char *what) {
    for (int attempt = 0;; ++attempt) {
        bool up = start();
        if (up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            up = proc.running();
        }
        if (up) return;
        proc.stop();
        std::string l = read_file(log);
        bool port_taken = l.find("already in use") != std::string::npos || l.find("Address in use") != std::string::npos;
        if (attempt < 5 && (port_taken || l.empty())) continue;
        throw std::runtime_error(std::string(what) + " did not start: " + l);
    }
}

/// Unbound on loopback: plain DNS on `udp`, DoT on `dot`, DoH on `doh`.
/// Data: a.legacy.example A 192.0.2.1 and AAAA 2001:db8::1, qN.legacy.example A 198.51.100.N
/// (N = 1..250), and anything under bench.example A 192.0.2.9 (a redirect
/// zone: every name is answered from local data, no cache hit possible).
struct Unbound {
    int udp = 0, dot = 0, doh = 0;
    Process proc;
    std::string log;
    /// `verbosity` 4 logs every query's length ("Reading ssl tcp query of length N").
    Unbound(const TempDir &tmp, const Pki &pki, const std::string &tag = "unbound", int verbosity = 1) {
        std::string conf = tmp.file(tag + ".conf");
        log = tmp.file(tag + ".log");
        start_retrying(proc, log, [&] {
            udp = free_port();
            dot = free_port();
            doh = free_port();
            write_config(conf, tmp, pki, verbosity);
            proc = Process({"unbound", "-d", "-c", conf}, log);
            return wait_tcp(dot, proc) && wait_tcp(doh, proc) && wait_tcp(udp, proc);
        }, "unbound");
    }
    void write_config(const std::string &conf, const TempDir &tmp, const Pki &pki, int verbosity) {
        std::ostringstream c;
        c << "server:\n"
          << "  interface: 127.0.0.1@" << udp << "\n"
          << "  interface: 127.0.0.1@" << dot << "\n"
          << "  interface: 127.0.0.1@" << doh << "\n"
          << "  tls-port: " << dot << "\n"
          << "  https-port: " << doh << "\n"
          << "  tls-service-key: \"" << pki.key << "\"\n"
          << "  tls-service-pem: \"" << pki.cert << "\"\n"
          << "  http-endpoint: \"/dns-query\"\n"
          << "  chroot: \"\"\n  username: \"\"\n  do-daemonize: no\n  pidfile: \"\"\n"
          << "  directory: \"" << tmp.path << "\"\n"
          << "  use-syslog: no\n  logfile: \"\"\n  verbosity: " << (std::getenv("AISID_TLS_VERBOSE") ? 4 : verbosity) << "\n  do-ip6: no\n  num-threads: 1\n"
          << "  module-config: \"iterator\"\n  do-not-query-localhost: no\n"
          << "  incoming-num-tcp: 64\n"
          << "  local-zone: \".\" refuse\n"
          << "  local-zone: \"legacy.example.\" static\n"
          << "  local-data: \"a.legacy.example. 300 IN A 192.0.2.1\"\n"
          << "  local-data: \"a.legacy.example. 300 IN AAAA 2001:db8::1\"\n";
        for (int i = 1; i <= 250; ++i)
            c << "  local-data: \"q" << i << ".legacy.example. 300 IN A 198.51.100." << i << "\"\n";
        c << "  local-zone: \"bench.example.\" redirect\n"
          << "  local-data: \"bench.example. 60 IN A 192.0.2.9\"\n"
          << "remote-control:\n  control-enable: no\n";
        write_file(conf, c.str());
    }
    std::string dot_uri(const std::string &name = "dns.example") const {
        return "tls://127.0.0.1:" + std::to_string(dot) + (name.empty() ? "" : "#" + name);
    }
    std::string doh_uri(const std::string &host = "127.0.0.1") const {
        return "https://" + host + ":" + std::to_string(doh) + "/dns-query";
    }
};

/// dnsdist with DoT and DoH listeners in front of a backend (plain DNS).
/// maxInFlight turns on dnsdist's out-of-order processing of pipelined DoT
/// queries; without it dnsdist 1.7 serves them one at a time and stalls on a
/// burst (it waits for the socket while queries sit decrypted in its TLS
/// buffer) until its read timeout closes the connection.
struct Dnsdist {
    int dot = 0, doh = 0;
    Process proc;
    std::string log;
    /// `doh_options`: extra addDOHLocal options (Lua table fields), e.g. custom headers.
    Dnsdist(const TempDir &tmp, const Pki &pki, int backend_port, const std::string &tag = "dnsdist",
            const std::string &doh_options = "") {
        std::string conf = tmp.file(tag + ".conf");
        log = tmp.file(tag + ".log");
        start_retrying(proc, log, [&] {
            dot = free_port();
            doh = free_port();
            write_config(conf, pki, backend_port, doh_options);
            proc = Process({"dnsdist", "--supervised", "--disable-syslog", "-C", conf}, log);
            return wait_tcp(dot, proc) && wait_tcp(doh, proc);
        }, "dnsdist");
    }
    void write_config(const std::string &conf, const Pki &pki, int backend_port, const std::string &doh_options) {
        std::ostringstream c;
        c << "setSecurityPollSuffix(\"\")\n"
          << "setLocal(\"127.0.0.1:" << free_port() << "\")\n"
          << "addTLSLocal(\"127.0.0.1:" << dot << "\", \"" << pki.cert << "\", \"" << pki.key << "\", {maxInFlight=1000})\n"
          << "addDOHLocal(\"127.0.0.1:" << doh << "\", \"" << pki.cert << "\", \"" << pki.key
          << "\", \"/dns-query\"" << (doh_options.empty() ? "" : ", {" + doh_options + "}") << ")\n"
          << "newServer({address=\"127.0.0.1:" << backend_port << "\", checkName=\"a.legacy.example.\"})\n";
        write_file(conf, c.str());
    }
    std::string dot_uri(const std::string &name = "dns.example") const {
        return "tls://127.0.0.1:" + std::to_string(dot) + (name.empty() ? "" : "#" + name);
    }
    std::string doh_uri(const std::string &host = "127.0.0.1") const {
        return "https://" + host + ":" + std::to_string(doh) + "/dns-query";
    }
};

// --- DNS messages for the tests (hand-built; the library is what is tested) --

/// A query for NAME (dotted, no trailing dot needed) TYPE A, RD set.
inline std::vector<uint8_t> make_query(const std::string &name, uint16_t id, uint16_t qtype = 1, bool edns = false) {
    std::vector<uint8_t> q = {uint8_t(id >> 8), uint8_t(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, uint8_t(edns ? 1 : 0)};
    size_t start = 0;
    std::string n = name;
    if (!n.empty() && n.back() == '.') n.pop_back();
    while (start <= n.size() && !n.empty()) {
        size_t dot = n.find('.', start);
        if (dot == std::string::npos) dot = n.size();
        q.push_back(uint8_t(dot - start));
        q.insert(q.end(), n.begin() + std::ptrdiff_t(start), n.begin() + std::ptrdiff_t(dot));
        start = dot + 1;
        if (dot == n.size()) break;
    }
    q.push_back(0);
    q.push_back(uint8_t(qtype >> 8));
    q.push_back(uint8_t(qtype));
    q.push_back(0);
    q.push_back(1);
    if (edns) {
        uint8_t opt[11] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
        q.insert(q.end(), opt, opt + 11);
    }
    return q;
}

inline uint16_t msg_id(const std::vector<uint8_t> &m) { return m.size() >= 2 ? uint16_t(m[0] << 8 | m[1]) : 0; }
inline int msg_rcode(const std::vector<uint8_t> &m) { return m.size() >= 4 ? m[3] & 0x0f : -1; }
inline uint16_t msg_count(const std::vector<uint8_t> &m, int section) {
    return m.size() >= 12 ? uint16_t(m[4 + 2 * section] << 8 | m[5 + 2 * section]) : 0;
}

/// The A addresses in the answer section, as text ("192.0.2.1"), and the
/// lowest answer TTL in `min_ttl`.
inline std::vector<std::string> answer_a(const std::vector<uint8_t> &m, uint32_t *min_ttl = nullptr) {
    std::vector<std::string> out;
    if (m.size() < 12) return out;
    auto skip = [&](size_t o) -> size_t {
        while (o < m.size()) {
            uint8_t l = m[o];
            if (l == 0) return o + 1;
            if ((l & 0xc0) == 0xc0) return o + 2;
            o += 1 + l;
        }
        return size_t(-1);
    };
    size_t o = 12;
    for (int i = 0; i < msg_count(m, 0); ++i) {
        o = skip(o);
        if (o == size_t(-1)) return out;
        o += 4;
    }
    if (min_ttl) *min_ttl = UINT32_MAX;
    for (int i = 0; i < msg_count(m, 1); ++i) {
        o = skip(o);
        if (o == size_t(-1) || o + 10 > m.size()) return out;
        uint16_t type = uint16_t(m[o] << 8 | m[o + 1]);
        uint32_t ttl = uint32_t(m[o + 4]) << 24 | uint32_t(m[o + 5]) << 16 | uint32_t(m[o + 6]) << 8 | m[o + 7];
        uint16_t len = uint16_t(m[o + 8] << 8 | m[o + 9]);
        o += 10;
        if (o + len > m.size()) return out;
        if (type == 1 && len == 4) {
            out.push_back(std::to_string(m[o]) + "." + std::to_string(m[o + 1]) + "." + std::to_string(m[o + 2]) +
                          "." + std::to_string(m[o + 3]));
            if (min_ttl && ttl < *min_ttl) *min_ttl = ttl;
        }
        o += len;
    }
    return out;
}

} // namespace aisid::test
