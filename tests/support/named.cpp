#include "named.hpp"

#include "skip.hpp"

#include <sys/stat.h>

#include <sstream>
#include <stdexcept>

namespace aisid::test {

NamedOptions &NamedOptions::in(const TempDir &dir, std::string name) {
    dir_ = dir.path;
    name_ = std::move(name);
    return *this;
}
NamedOptions &NamedOptions::key(std::string name, std::string secret) {
    keys_.emplace_back(std::move(name), std::move(secret));
    return *this;
}
NamedOptions &NamedOptions::file(std::string name, std::string text) {
    files_.emplace_back(std::move(name), std::move(text));
    return *this;
}
NamedOptions &NamedOptions::conf(std::string text) {
    conf_ += text;
    return *this;
}

Named::Named(NamedOptions o, Deferred) : o_(std::move(o)) {
    if (o_.dir_.empty()) {
        own_ = std::make_unique<TempDir>();
        o_.dir_ = own_->path;
    }
    home = o_.dir_ + "/" + o_.name_;
    port = free_port();
}

Named::Named(NamedOptions o) : Named(std::move(o), deferred) { start(); }

Named::~Named() { proc.stop(5000); }

void Named::start() {
    skip_unless_program("named", "package bind9");
    if (mkdir(home.c_str(), 0755) != 0 && errno != EEXIST) throw std::runtime_error("mkdir " + home);
    for (const auto &[name, text] : o_.files_) write_file(home + "/" + name, text);
    std::ostringstream c;
    for (const auto &[name, secret] : o_.keys_)
        c << "key \"" << name << "\" { algorithm hmac-sha256; secret \"" << secret << "\"; };\n";
    c << "options {\n"
      << "  directory \"" << home << "\";\n"
      << "  pid-file \"" << home << "/named.pid\";\n"
      << "  session-keyfile \"" << home << "/session.key\";\n"
      << "  managed-keys-directory \"" << home << "\";\n"
      << "  listen-on port " << port << " { 127.0.0.1; };\n"
      << "  listen-on-v6 { none; };\n"
      << "  recursion no;\n  dnssec-validation no;\n  notify explicit;\n  notify-delay 0;\n"
      << "  minimal-responses yes;\n"
      << "};\n"
      << "controls { };\n"
      << o_.conf_;
    write_file(home + "/named.conf", c.str());
    proc =
        Process({"named", "-g", "-c", home + "/named.conf", "-n", "1"}, o_.dir_, o_.name_ + "-" + std::to_string(port));
    if (!wait_listening(proc, {{port, false}, {port, true}})) {
        proc.stop();
        throw std::runtime_error("named did not start: " + proc.err());
    }
}

} // namespace aisid::test
