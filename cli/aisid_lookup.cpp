// aisid-lookup: what a name resolves to, and why (SPEC §4).
#include "aisid/cli/lookup_view.hpp"
#include "aisid/version.h"
#include "aisid/client/client.hpp"

#include <arpa/inet.h>
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

// A name under no AISID domain: the SDK's legacy path (c-ares, AAAA and A).
int explain_legacy(sdk::Client &client, const std::string &query, LookupView &v, std::string &err) {
    sdk::Answer ans;
    auto deadline = sdk::Clock::now() + std::chrono::milliseconds(client.legacy().timeout_ms());
    aisid_status_t st = client.resolve(query.c_str(), ans, deadline);
    v.source = "legacy";
    switch (st) {
    case AISID_OK: break;
    case AISID_ENOTFOUND: err = v.name + " does not exist (NXDOMAIN from legacy DNS)"; return 1;
    case AISID_ENODATA: err = v.name + " has no address records (NODATA)"; return 1;
    case AISID_EINVAL: err = "'" + query + "' is not a valid name"; return 2;
    default: err = v.name + ": legacy DNS failed: " + aisid_strerror(st); return 3;
    }
    for (const in6_addr &a : ans.addrs) {
        char b[INET6_ADDRSTRLEN];
        // IPv4 answers are IPv4-mapped inside the SDK; shown as the A record gave them.
        if (IN6_IS_ADDR_V4MAPPED(&a)) inet_ntop(AF_INET, &a.s6_addr[12], b, sizeof b);
        else inet_ntop(AF_INET6, &a, b, sizeof b);
        v.addresses.push_back(b);
    }
    v.why = "under no AISID domain: legacy DNS (c-ares), TTL " + std::to_string(ans.ttl);
    return 0;
}

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
    sdk::Client client(AISID_CLIENT_NO_WATCH | (zone_files.empty() ? 0u : AISID_CLIENT_NO_HOST_ZONES));
    std::string err;
    for (const std::string &e : client.zones().load_errors())
        std::fprintf(stderr, "aisid-lookup: %s (skipped)\n", e.c_str());
    for (const std::string &f : zone_files) {
        if (!client.zones().add_file(f, err)) {
            std::fprintf(stderr, "aisid-lookup: %s\n", err.c_str());
            return 2;
        }
    }
    if (!upstreams.empty() && client.legacy().set_upstreams(upstreams) != AISID_OK)
        return usage_error("bad --upstream '" + upstreams + "' (ADDR[:PORT], [V6]:PORT)");
    std::shared_ptr<const ZoneSet> zones = client.zones().snapshot();

    LookupView v;
    int rc;
    if (!server.empty()) {
        rc = explain_server(*zones, server, query, v, err);
    } else {
        rc = explain_local(*zones, query, v, err);
        if (rc == -1) rc = explain_legacy(client, query, v, err);
        else if (rc == 0) read_verification(*zones, v);
    }
    if (rc != 0) {
        std::fprintf(stderr, "aisid-lookup: %s\n", err.c_str());
        return rc;
    }
    if (json) print_json(v, stdout);
    else print_text(v, stdout);
    return 0;
}
