// aisid-lookup: what a name resolves to, and why (SPEC §4). Only the public
// API (<aisid/aisid.hpp>) and libaisid, as any application (cli/CMakeLists.txt
// checks what it links).
#include "lookup_view.hpp"
#include "aisid/version.h"

#include <cstring>
#include <string>
#include <vector>

using namespace aisid;
using namespace aisid::cli;

namespace {

const char *kUsage =
    "usage: aisid-lookup [--zone FILE]... [--server ADDR[:PORT]] [--upstream ADDR[:PORT]]... [--json]\n"
    "                    NAME|ADDRESS\n"
    "\n"
    "Shows what NAME resolves to (or which service name an AISID ADDRESS is) and why.\n"
    "Without --server it resolves in process with libaisid, as a linked application\n"
    "would: AISID names from zone data (the --zone files, else the host's\n"
    "/etc/aisid/zones and /var/lib/aisid/zones), other names through legacy DNS\n"
    "(the --upstream servers, else those of /etc/resolv.conf).\n"
    "\n"
    "  --zone FILE       load this zone file (repeatable)\n"
    "  --server ADDR     ask this DNS server instead (ADDR[:PORT], [V6]:PORT)\n"
    "  --upstream ADDR   legacy DNS server for names outside AISID domains\n"
    "                    (ADDR[:PORT], [V6]:PORT; repeatable)\n"
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
    std::string server, query, upstreams;
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
        } else if (a == "--upstream" || a.rfind("--upstream=", 0) == 0) {
            std::string u;
            if (a == "--upstream") {
                if (!value(u)) return usage_error("--upstream needs ADDR[:PORT]");
            } else {
                u = a.substr(11);
            }
            if (u.empty() || u.find(',') != std::string::npos) return usage_error("bad --upstream '" + u + "'");
            upstreams += (upstreams.empty() ? "" : ",") + u;
        } else if (!a.empty() && a[0] == '-' && a != "-") {
            return usage_error("unknown option " + a);
        } else if (query.empty()) {
            query = a;
        } else {
            return usage_error("one NAME or ADDRESS, please");
        }
    }
    if (query.empty()) return usage_error("missing NAME or ADDRESS");

    // The SDK client, as an application has it: host zones unless files are named.
    auto client = Client::create({.host_zones = zone_files.empty(), .watch = false});
    if (!client) {
        std::fprintf(stderr, "aisid-lookup: %s: %s\n", to_string(client.status()), last_error().c_str());
        return 3;
    }
    // Host zone files that failed are skipped: the client says which, "; " between them.
    for (std::string errs = last_error(); !errs.empty();) {
        size_t e = errs.find("; ");
        std::fprintf(stderr, "aisid-lookup: %s (skipped)\n", errs.substr(0, e).c_str());
        errs = e == std::string::npos ? "" : errs.substr(e + 2);
    }
    for (const std::string &f : zone_files) {
        if (client->add_zone_file(f) != Status::ok) {
            std::fprintf(stderr, "aisid-lookup: %s\n", last_error().c_str());
            return 2;
        }
    }
    if (!upstreams.empty() && client->set_upstreams(upstreams) != Status::ok)
        return usage_error("bad --upstream '" + upstreams + "' (ADDR[:PORT], [V6]:PORT)");

    LookupView v;
    std::string err;
    int rc = server.empty() ? explain_local(*client, query, v, err) : explain_server(*client, server, query, v, err);
    if (rc != 0) {
        std::fprintf(stderr, "aisid-lookup: %s\n", err.c_str());
        return rc;
    }
    if (json) print_json(v, stdout);
    else print_text(v, stdout);
    return 0;
}
