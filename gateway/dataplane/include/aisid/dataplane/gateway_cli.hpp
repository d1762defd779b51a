// What both gateway daemons (aisid-ingress, aisid-egress) share at start:
// the command line (--config, --dataplane, --log-level, --check, --help,
// --version) and the reading of their "key value..." configuration files.
#pragma once

#include "aisid/dataplane/dataplane.hpp"

#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace aisid::gw {

struct GatewayArgs {
    std::string config;                  // --config FILE (required)
    std::optional<Dataplane> dataplane;  // --dataplane: overrides the file's choice
    bool check = false;                  // --check: read the configuration, then exit
};

/// Parses the gateways' command line. Returns nullopt to go on, or the exit
/// code to return now: 0 after --help/--version, 2 on a usage error (the
/// message on stderr as "PROG: ..."). Sets the log level.
std::optional<int> parse_gateway_args(int argc, char **argv, const char *prog, void (*usage)(FILE *),
                                      GatewayArgs &out);

/// Reads a configuration file of "key value..." lines ('#' starts a
/// comment; blank lines are skipped). `line` gets each line's words and a
/// `fail(what)` that records "FILE:LINE: what" and returns false; returning
/// false stops the reading. False (with `err` set) when the file cannot be
/// opened or a line failed.
using ConfigLineFn =
    std::function<bool(const std::vector<std::string> &words, const std::function<bool(const std::string &)> &fail)>;
bool read_config_file(const std::string &path, std::string &err, const ConfigLineFn &line);

} // namespace aisid::gw
