#include "aisid/dataplane/gateway_cli.hpp"

#include "aisid/core/log.hpp"
#include "aisid/egress/net_util.hpp"
#include "aisid/version.h"

#include <fstream>

namespace aisid::gw {

std::optional<int> parse_gateway_args(int argc, char **argv, const char *prog, void (*usage)(FILE *),
                                      GatewayArgs &out) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            usage(stdout);
            return 0;
        }
        if (a == "--version") {
            std::printf("%s %s\n", prog, AISID_VERSION);
            return 0;
        }
        if (a == "--check") {
            out.check = true;
            continue;
        }
        if (a != "--config" && a != "--dataplane" && a != "--log-level") {
            std::fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", prog, a.c_str());
            return 2;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "%s: %s needs a value\n", prog, a.c_str());
            return 2;
        }
        const std::string v = argv[++i];
        if (a == "--config") {
            out.config = v;
        } else if (a == "--dataplane") {
            out.dataplane = parse_dataplane(v);
            if (!out.dataplane) {
                std::fprintf(stderr, "%s: bad --dataplane '%s' (want kernel, userspace or auto)\n", prog, v.c_str());
                return 2;
            }
        } else if (auto lv = parse_log_level(v)) {
            set_log_level(*lv);
        } else {
            std::fprintf(stderr, "%s: unknown log level '%s'\n", prog, v.c_str());
            return 2;
        }
    }
    if (out.config.empty()) {
        std::fprintf(stderr, "%s: --config FILE is required (try --help)\n", prog);
        return 2;
    }
    return std::nullopt;
}

bool read_config_file(const std::string &path, std::string &err, const ConfigLineFn &line_fn) {
    std::ifstream in(path);
    if (!in) {
        err = path + ": cannot open";
        return false;
    }
    std::string line;
    int lineno = 0;
    bool failed = false;
    const std::function<bool(const std::string &)> fail = [&](const std::string &what) {
        err = path + ":" + std::to_string(lineno) + ": " + what;
        failed = true;
        return false;
    };
    while (std::getline(in, line)) {
        ++lineno;
        if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
        auto words = split_ws(line);
        if (words.empty()) continue;
        if (!line_fn(words, fail)) {
            if (!failed) fail("bad line");
            return false;
        }
    }
    return true;
}

} // namespace aisid::gw
