// RFC 2136 UPDATE processing without I/O: prerequisites (§3.2) checked on the
// published zone, the update section (§3.4) applied on a copy through
// ZoneBuilder so the codebook rules of SPEC §3 hold, the serial moved on
// (RFC 1982), and the change as an IXFR-shaped diff for the journal.
#pragma once

#include "aisid/proto/records.hpp"
#include "aisid/proto/records.hpp"
#include "aisid/core/zone.hpp"

#include <string>
#include <vector>

namespace aisid::proto {

enum : uint8_t {
    kRcodeNoError = 0, kRcodeFormErr = 1, kRcodeServFail = 2, kRcodeNxDomain = 3, kRcodeNotImp = 4,
    kRcodeRefused = 5, kRcodeYxDomain = 6, kRcodeYxRrset = 7, kRcodeNxRrset = 8, kRcodeNotAuth = 9,
    kRcodeNotZone = 10,
};
const char *rcode_name(unsigned rcode);

struct UpdateResult {
    uint8_t rcode = kRcodeNoError;
    std::string why;      // for the log when not NOERROR
    bool changed = false; // NOERROR with nothing to do leaves the serial alone
    ZonePtr zone;         // the new zone when changed
    Diff diff;            // when changed
};

/// Checks the prerequisites against `z` and applies the updates to a copy.
/// Nothing of `z` changes; on any failure the result carries no zone.
/// An RRset may grow by UPDATE to `max_records_per_type` records at most
/// (BIND's max-records-per-type, CVE-2024-1737): beyond, REFUSED.
UpdateResult apply_update(const Zone &z, const std::vector<Record> &prereq, const std::vector<Record> &updates,
                          size_t max_records_per_type = 100);

/// Applies a diff (journal replay, IXFR) to a zone. False (with why) when the
/// diff does not start at the zone's serial or breaks the zone's rules.
bool apply_diff(const Zone &z, const Diff &d, ZonePtr &out, std::string &why);

/// The difference between two versions of a zone at the given owners (the
/// SOA is always included: old first in del, new first in add).
Diff diff_at(const Zone &from, const Zone &to, const std::vector<std::string> &owners);

} // namespace aisid::proto
