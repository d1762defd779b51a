// BIND 9 named as a test peer (primary or secondary of a zone) on a free
// loopback port, in its own directory; started through its options, ready
// when its port is bound by it, stopped by the destructor.
//
//     Named n(NamedOptions().in(dir, "named-primary").key("k1", secret).file("ai.example.db", text)
//                 .conf("zone \"ai.example\" { type primary; file \"ai.example.db\"; };\n"));
#pragma once

#include "aisidd.hpp" // Deferred
#include "proc.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace aisid::test {

class NamedOptions {
public:
    /// Its directory: DIR/NAME (default: a directory of its own).
    NamedOptions &in(const TempDir &dir, std::string name = "named");
    /// A TSIG key (hmac-sha256), for zone stanzas to name.
    NamedOptions &key(std::string name, std::string secret);
    /// A file in its directory (a primary's zone).
    NamedOptions &file(std::string name, std::string text);
    /// Configuration after options { } (zone stanzas).
    NamedOptions &conf(std::string text);

private:
    friend class Named;
    std::string dir_, name_ = "named", conf_;
    std::vector<std::pair<std::string, std::string>> keys_, files_;
};

class Named {
public:
    explicit Named(NamedOptions o);
    /// Port chosen, not started until start().
    Named(NamedOptions o, Deferred);
    ~Named();
    Named(const Named &) = delete;
    Named &operator=(const Named &) = delete;
    void start();
    /// Configuration after options { } for the next start().
    std::string &conf() { return o_.conf_; }
    std::string log() const { return proc.err(); }

    int port = 0;
    std::string home;
    Process proc;

private:
    NamedOptions o_;
    std::unique_ptr<TempDir> own_;
};

} // namespace aisid::test
