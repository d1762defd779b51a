// What aisid-lookup shows about a name or an address, whichever way it was
// resolved (in process or through a DNS server).
#pragma once

#include "aisid/address.hpp"
#include "aisid/core/zone_set.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace aisid::cli {

struct LookupView {
    std::string query;               // as the user gave it
    std::string name;                // the service (or legacy) name, trailing dot
    std::string source = "aisid";    // "aisid" or "legacy"
    std::string why;                 // which rule answered
    std::string zone;                // the AISID domain, if any
    std::vector<std::string> addresses;
    bool has_aisid = false;
    Aisid aisid;
    std::string terms[3];            // object, function, method ("" = any / unknown)
    std::vector<std::string> fallbacks;  // "target:port"
    // How the zone's local data was verified before aisidd wrote it: the
    // "; aisid-verified: key=value ..." first line of the zone file
    // (resolver/authority/include/aisid/authority/zone_verify.hpp, verified_line). Empty file: not
    // looked up (legacy names, --server).
    std::string zone_file;
    std::vector<std::pair<std::string, std::string>> verified;  // empty: not verified
};

/// Resolves a name or an address from local zone data (SPEC §2). Returns the
/// exit code: 0 found, 1 the name does not exist; `err` says why for 1.
int explain_local(const ZoneSet &zones, const std::string &query, LookupView &v, std::string &err);
/// Fills the AISID part (fields, terms) of v for an address, using zones for terms.
void decode_address(const ZoneSet &zones, const Aisid &a, LookupView &v);

/// Asks a DNS server (ADDR[:PORT]) about a name or an address and fills the
/// same view, decoding AISIDs with `zones` when they hold the prefix.
/// Returns the exit code (SPEC §4).
int explain_server(const ZoneSet &zones, const std::string &server, const std::string &query, LookupView &v,
                   std::string &err);

/// Fills zone_file and verified for v.zone from the zone data in `zones`.
void read_verification(const ZoneSet &zones, LookupView &v);

void print_text(const LookupView &v, FILE *out);
void print_json(const LookupView &v, FILE *out);

} // namespace aisid::cli
