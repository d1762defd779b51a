// aisid-lookup: what a name resolves to, and why (SPEC §4).
#include "lookup_view.hpp"
#include "host_zones.hpp"

#include <cstring>
#include <string>
#include <vector>

using namespace aisid;
using namespace aisid::cli;

namespace {

const char *kUsage =
    "usage: aisid-lookup [--zone FILE]... [--server ADDR[:PORT]] [--json] NAME|ADDRESS\n"
    "\n"
    "Shows what NAME resolves to (or which service name an AISID ADDRESS is) and why.\n"
    "Without --server it resolves in process from zone data, as a linked application\n"
    "would: the --zone files, else the host's /etc/aisid/zones and /var/lib/aisid/zones.\n"
    "\n"
    "  --zone FILE     load this zone file (repeatable)\n"
    "  --server ADDR   ask this DNS server instead (ADDR[:PORT], [V6]:PORT)\n"
    "  --json          print one JSON object\n"
    "  --help, --version\n"
    "\n"
    "exit: 0 found, 1 no such name, 2 bad usage or input, 3 network failure\n";

int usage_error(const std::string &msg) {
    std::fprintf(stderr, "aisid-lookup: %s\n%s", msg.c_str(), "try 'aisid-lookup --help'\n");
    return 2;
}

} // namespace

int main(int argc, char **argv) {
    std::vector<std::string> zone_files;
    std::string server, query;
    bool json = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](std::string &out) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (a == "--version") {
            std::printf("aisid-lookup %s\n", AISID_VERSION);
            return 0;
        } else if (a == "--json") {
            json = true;
        } else if (a == "--zone") {
            std::string f;
            if (!value(f)) return usage_error("--zone needs a file");
            zone_files.push_back(f);
        } else if (a.rfind("--zone=", 0) == 0) {
            zone_files.push_back(a.substr(7));
        } else if (a == "--server") {
            if (!value(server)) return usage_error("--server needs ADDR[:PORT]");
        } else if (a.rfind("--server=", 0) == 0) {
            server = a.substr(9);
        } else if (!a.empty() && a[0] == '-' && a != "-") {
            return usage_error("unknown option " + a);
        } else if (query.empty()) {
            query = a;
        } else {
            return usage_error("one NAME or ADDRESS, please");
        }
    }
    if (query.empty()) return usage_error("missing NAME or ADDRESS");

    ZoneSet zones;
    std::string err;
    if (zone_files.empty()) {
        // Host zone data, as the SDK would use it; unreadable files are reported, not fatal.
        for (const std::string &f : host_zone_files()) {
            auto z = load_zone_file(f);
            if (z) zones.add(*z);
            else std::fprintf(stderr, "aisid-lookup: %s (skipped)\n", z.error().to_string().c_str());
        }
    }
    for (const std::string &f : zone_files) {
        auto z = load_zone_file(f);
        if (!z) {
            std::fprintf(stderr, "aisid-lookup: %s\n", z.error().to_string().c_str());
            return 2;
        }
        zones.add(*z);
    }

    LookupView v;
    int rc;
    if (!server.empty()) {
        rc = explain_server(zones, server, query, v, err);
    } else {
        rc = explain_local(zones, query, v, err);
        if (rc == -1) rc = 1;  // legacy names need a DNS server in offline mode
    }
    if (rc != 0) {
        std::fprintf(stderr, "aisid-lookup: %s\n", err.c_str());
        return rc;
    }
    if (json) print_json(v, stdout);
    else print_text(v, stdout);
    return 0;
}
