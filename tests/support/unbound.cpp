#include "unbound.hpp"

#include "net.hpp"
#include "netns.hpp"
#include "skip.hpp"
#include "tls.hpp"

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace aisid::test {

UnboundOptions &UnboundOptions::in(const TempDir &dir, std::string tag) {
    dir_ = dir.path;
    tag_ = std::move(tag);
    return *this;
}
UnboundOptions &UnboundOptions::local_zone(std::string zone, std::string type) {
    lines_.push_back("local-zone: \"" + zone + "\" " + type);
    return *this;
}
UnboundOptions &UnboundOptions::local_data(std::string rr) {
    // Single quotes: TXT rdata has double ones.
    char q = rr.find('\'') == std::string::npos ? '\'' : '"';
    lines_.push_back("local-data: " + std::string(1, q) + rr + q);
    return *this;
}
UnboundOptions &UnboundOptions::local_data(const std::vector<std::string> &rrs) {
    for (const std::string &rr : rrs) local_data(rr);
    return *this;
}
UnboundOptions &UnboundOptions::port(int p) {
    port_ = p;
    return *this;
}
UnboundOptions &UnboundOptions::interface(std::string ip) {
    iface_ = std::move(ip);
    return *this;
}
UnboundOptions &UnboundOptions::netns(std::string name) {
    netns_ = std::move(name);
    return *this;
}
UnboundOptions &UnboundOptions::tls(const Pki &pki) {
    tls_ = true;
    key_ = pki.key;
    cert_ = pki.cert;
    return *this;
}
UnboundOptions &UnboundOptions::verbosity(int v) {
    verbosity_ = v;
    return *this;
}
UnboundOptions &UnboundOptions::server(std::string line) {
    lines_.push_back(std::move(line));
    return *this;
}
UnboundOptions &UnboundOptions::clause(std::string text) {
    clauses_ += text;
    return *this;
}

Unbound::Unbound(UnboundOptions o) : o_(std::move(o)) {
    skip_unless_program("unbound", "package unbound");
    if (o_.dir_.empty()) {
        own_ = std::make_unique<TempDir>();
        dir_ = own_->path;
    } else {
        dir_ = o_.dir_;
    }
    log_path = dir_ + "/" + o_.tag_ + ".log";
    // A namespace of the test's own has port 53 free; elsewhere a free port.
    // A namespace of the test's own has port 53 free; elsewhere free ports,
    // new ones when one was taken in between (start_retrying).
    fixed_ = o_.port_ != 0 || !o_.netns_.empty();
    port = o_.port_ ? o_.port_ : 53;
    auto pick_and_launch = [&] {
        if (!fixed_) port = free_port();
        if (o_.tls_) {
            dot = free_port();
            doh = free_port();
        }
        return launch();
    };
    if (!fixed_) {
        start_retrying(proc, log_path, pick_and_launch, "unbound");
    } else if (!pick_and_launch()) {
        proc.stop();
        throw std::runtime_error("unbound did not start: " + log());
    }
}

Unbound::~Unbound() { stop(); }

void Unbound::start() {
    if (launch()) return;
    proc.stop();
    throw std::runtime_error("unbound did not start again: " + log());
}

void Unbound::stop() { proc.stop(); }

bool Unbound::launch() {
    const std::string &ip = o_.iface_;
    const char *env = std::getenv("AISID_UNBOUND_VERBOSITY");
    std::ostringstream c;
    c << "server:\n"
      << "  interface: " << ip << "@" << port << "\n"
      << "  port: " << port << "\n";
    if (o_.tls_)
        c << "  interface: " << ip << "@" << dot << "\n"
          << "  interface: " << ip << "@" << doh << "\n"
          << "  tls-port: " << dot << "\n"
          << "  https-port: " << doh << "\n"
          << "  tls-service-key: \"" << o_.key_ << "\"\n"
          << "  tls-service-pem: \"" << o_.cert_ << "\"\n"
          << "  http-endpoint: \"/dns-query\"\n";
    c << "  do-ip6: no\n"
      << "  chroot: \"\"\n"
      << "  username: \"\"\n"
      << "  do-daemonize: no\n"
      << "  directory: \"" << dir_ << "\"\n"
      << "  pidfile: \"\"\n"
      << "  use-syslog: no\n"
      << "  logfile: \"\"\n"
      << "  verbosity: " << (env && *env ? std::atoi(env) : o_.verbosity_) << "\n"
      << "  num-threads: 1\n"
      << "  do-not-query-localhost: no\n"
      << "  access-control: 0.0.0.0/0 allow\n"
      << "  module-config: \"iterator\"\n"
      << "  local-zone: \".\" refuse\n";
    for (const std::string &l : o_.lines_) c << "  " << l << "\n";
    c << o_.clauses_ << "remote-control:\n  control-enable: no\n";
    std::string conf = dir_ + "/" + o_.tag_ + ".conf";
    write_file(conf, c.str());
    std::vector<std::string> argv = {"unbound", "-d", "-c", conf};
    if (!o_.netns_.empty()) argv.insert(argv.begin(), {"ip", "netns", "exec", o_.netns_});
    proc = Process(argv, log_path);
    std::vector<Listening> want = {{port, false}, {port, true}};
    if (o_.tls_) want.insert(want.end(), {{dot, true}, {doh, true}});
    // Ready: the ports are this Unbound's, and it answers (a moment after
    // binding them; the first query of a test must not wait for that).
    if (!wait_listening(proc, want)) return false;
    for (int i = 0; i < 50; ++i) {
        {
            NetnsGuard in(o_.netns_);
            if (dns_answers(ip, port)) return true;
        }
        if (!proc.running()) return false;
    }
    return false;
}

std::string Unbound::addr() const { return o_.iface_ + ":" + std::to_string(port); }

std::string Unbound::dot_uri(const std::string &name) const {
    return "tls://" + o_.iface_ + ":" + std::to_string(dot) + (name.empty() ? "" : "#" + name);
}

std::string Unbound::doh_uri(const std::string &host) const {
    return "https://" + host + ":" + std::to_string(doh) + "/dns-query";
}

} // namespace aisid::test
