#include "tls.hpp"

#include "skip.hpp"

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace aisid::test {

namespace {

void run_or_throw(const std::string &cmd) {
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("command failed: " + cmd);
}

} // namespace

Pki::Pki(const std::string &d) : dir(d) {
    skip_unless_program("openssl", "package openssl");
    ca = dir + "/ca.pem";
    cert = dir + "/server.pem";
    key = dir + "/server.key";
    rogue_ca = dir + "/rogue-ca.pem";
    write_file(dir + "/ext.cnf", "subjectAltName=DNS:dns.example,IP:127.0.0.1\n"
                                 "basicConstraints=critical,CA:FALSE\n"
                                 "keyUsage=critical,digitalSignature\n"
                                 "extendedKeyUsage=serverAuth\n");
    std::string q = " >/dev/null 2>&1";
    std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    std::string ca_ext = " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
    std::string in = "cd '" + dir + "' && openssl ";
    run_or_throw(in + "req -x509" + ec + " -keyout ca.key -out ca.pem -days 2 -subj /CN=aisid-test-ca" + ca_ext + q);
    run_or_throw(in + "req -x509" + ec + " -keyout rogue-ca.key -out rogue-ca.pem -days 2 -subj /CN=aisid-rogue-ca" +
                 ca_ext + q);
    run_or_throw(in + "req" + ec + " -keyout server.key -out server.csr -subj /CN=dns.example" + q);
    run_or_throw(in +
                 "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
                 "-extfile ext.cnf" +
                 q);
}

DnsdistOptions &DnsdistOptions::in(const TempDir &dir, std::string tag) {
    dir_ = dir.path;
    tag_ = std::move(tag);
    return *this;
}
DnsdistOptions &DnsdistOptions::tls(const Pki &pki) {
    cert_ = pki.cert;
    key_ = pki.key;
    return *this;
}
DnsdistOptions &DnsdistOptions::backend(int port) {
    backend_ = port;
    return *this;
}
DnsdistOptions &DnsdistOptions::doh_options(std::string lua) {
    doh_options_ = std::move(lua);
    return *this;
}

Dnsdist::Dnsdist(DnsdistOptions o) {
    skip_unless_program("dnsdist", "package dnsdist");
    if (o.cert_.empty() || !o.backend_) throw std::invalid_argument("Dnsdist: tls() and backend() are required");
    if (o.dir_.empty()) {
        own_ = std::make_unique<TempDir>();
        o.dir_ = own_->path;
    }
    std::string conf = o.dir_ + "/" + o.tag_ + ".conf";
    log_path = o.dir_ + "/" + o.tag_ + ".log";
    start_retrying(
        proc, log_path,
        [&] {
            dot = free_port();
            doh = free_port();
            std::ostringstream c;
            c << "setSecurityPollSuffix(\"\")\n"
              << "setLocal(\"127.0.0.1:" << free_port() << "\")\n"
              << "addTLSLocal(\"127.0.0.1:" << dot << "\", \"" << o.cert_ << "\", \"" << o.key_
              << "\", {maxInFlight=1000})\n"
              << "addDOHLocal(\"127.0.0.1:" << doh << "\", \"" << o.cert_ << "\", \"" << o.key_ << "\", \"/dns-query\""
              << (o.doh_options_.empty() ? "" : ", {" + o.doh_options_ + "}") << ")\n"
              << "newServer({address=\"127.0.0.1:" << o.backend_ << "\", checkName=\"a.legacy.example.\"})\n";
            write_file(conf, c.str());
            proc = Process({"dnsdist", "--supervised", "--disable-syslog", "-C", conf}, log_path);
            return wait_listening(proc, {{dot, true}, {doh, true}});
        },
        "dnsdist");
}

std::string Dnsdist::dot_uri(const std::string &name) const {
    return "tls://127.0.0.1:" + std::to_string(dot) + (name.empty() ? "" : "#" + name);
}

std::string Dnsdist::doh_uri(const std::string &host) const {
    return "https://" + host + ":" + std::to_string(doh) + "/dns-query";
}

} // namespace aisid::test
