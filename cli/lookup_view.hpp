// What aisid-lookup shows about a name or an address, whichever way it was
// resolved (in process or through a DNS server). Built on the public API only
// (<aisid/aisid.hpp>), as any application would be.
#pragma once

#include "aisid/address.hpp"
#include "aisid/aisid.hpp"

#include <cstdio>
#include <string>
#include <utility>
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
    // How the zone's local data was verified before aisidd wrote it (the SDK
    // reads the "; aisid-verified: key=value ..." first line of the zone file:
    // aisid_result_verification). Empty file: not looked up (legacy names,
    // --server).
    std::string zone_file;
    std::vector<std::pair<std::string, std::string>> verified;  // empty: not verified
};

/// Resolves a name or an address in process, as an application linking
/// libaisid would (aisid::Client::explain: local zone data, SPEC §2, else
/// legacy DNS). Returns the exit code (SPEC §4): 0 found, 1 the name does not
/// exist, 2 bad input, 3 legacy DNS failed; `err` says why.
int explain_local(Client &client, const std::string &query, LookupView &v, std::string &err);
/// Fills the AISID part (fields, terms, zone) of v for an address, with the
/// client's zone data for the terms.
void decode_address(Client &client, const Aisid &a, LookupView &v);

/// Asks a DNS server (ADDR[:PORT]) about a name or an address and fills the
/// same view, decoding AISIDs with the client's zone data when it holds the
/// prefix. Returns the exit code (SPEC §4).
int explain_server(Client &client, const std::string &server, const std::string &query, LookupView &v,
                   std::string &err);

void print_text(const LookupView &v, FILE *out);
void print_json(const LookupView &v, FILE *out);

} // namespace aisid::cli
