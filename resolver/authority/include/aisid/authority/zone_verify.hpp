// Zone data that verifies before it is served: the ZONEMD digest (RFC 8976,
// SIMPLE scheme, SHA-384) and, with a trust anchor, the DNSSEC signatures on
// the apex SOA, DNSKEY and ZONEMD RRsets (RFC 4035 §5). A zone from any
// mirror, a transfer or a file is accepted only when it verifies; the
// verdict says why not, in a word for metrics and a sentence for the log.
//
// ldns does the work (ldns_dnssec_zone_verify_zonemd, ldns_verify_rrsig_*):
// the zone is read once into an ldns_dnssec_zone, checked, and freed before
// aisid builds its own Zone from the same text, so the two never coexist.
#pragma once

#include "aisid/core/published.hpp"
#include "aisid/proto/records.hpp"

#include <ctime>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aisid::resolver {

using proto::Record;

/// DS or DNSKEY records for one zone, read from a file in zone-file text
/// (`ai.example. IN DS 44703 13 2 36ee...`, as ldns-keygen and
/// dnssec-dsfromkey write them). Comments and $ORIGIN/$TTL lines are allowed.
struct TrustAnchor {
    std::string origin_wire;
    std::string file;
    LdnsRrListPtr rrs;
    std::vector<uint16_t> key_tags;  // of the DS or DNSKEY records, for messages
};
Expected<TrustAnchor, std::string> load_trust_anchor(const std::string &zone_text, const std::string &file);

struct VerifyPolicy {
    bool require_zonemd = false;          // refuse a zone without an apex ZONEMD
    const TrustAnchor *anchor = nullptr;  // check the apex signatures against it (ZONEMD then required too)
    time_t now = 0;                       // signature validity is checked at this time; 0: time()
};

struct ZoneVerdict {
    bool ok = false;
    std::string reason;        // one word, a metric label: zonemd_mismatch, no_zonemd, bad_signature, ...
    std::string message;       // for the log
    std::string origin_wire;   // the zone the data is for (its SOA owner)
    uint32_t serial = 0;
    bool zonemd = false;       // a SIMPLE SHA-384 ZONEMD matched the data
    uint16_t key_tag = 0;      // the anchored key that signed the DNSKEY RRset (0: no DNSSEC check)
    uint32_t sig_expires = 0;  // the earliest expiration of the signatures checked (Unix time)
    bool verified() const { return ok && (zonemd || key_tag); }
};

/// Verifies zone-file text (absolute names or its own $ORIGIN; no $INCLUDE)
/// as the zone `origin_wire`.
ZoneVerdict verify_zone_text(std::string_view text, const std::string &origin_wire, const VerifyPolicy &p);
/// The same for records already parsed (a transfer, a loaded Zone's records).
ZoneVerdict verify_zone_records(const std::vector<Record> &records, const std::string &origin_wire,
                                const VerifyPolicy &p);

/// What aisidd asks of every zone it takes in (--require-zonemd,
/// --trust-anchor): loaded once, shared by the file loads, the transfers and
/// the mirrors.
class ZonePolicy {
public:
    /// `anchors`: ZONE=FILE. An error names the option and the file's line.
    static Expected<std::shared_ptr<const ZonePolicy>, std::string> make(bool require_zonemd,
                                                                         const std::vector<std::string> &anchors);
    /// True when zones of this origin must verify (a ZONEMD at least).
    bool active(const std::string &origin_wire) const { return require_zonemd_ || anchor(origin_wire); }
    const TrustAnchor *anchor(const std::string &origin_wire) const;
    VerifyPolicy policy(const std::string &origin_wire, time_t now = 0) const {
        return VerifyPolicy{require_zonemd_, anchor(origin_wire), now};
    }
    /// A loaded zone (a file, a transfer), through its records.
    ZoneVerdict check(const Zone &z, time_t now = 0) const;
    /// Counts a refused copy (aisidd_zone_verify_failures_total{zone,reason}).
    void count_refusal(const std::string &origin_wire, const std::string &reason) const;
    void append_metrics(std::string &out) const;

private:
    bool require_zonemd_ = false;
    std::vector<TrustAnchor> anchors_;
    mutable LockGuarded<std::map<std::pair<std::string, std::string>, uint64_t>> refused_;  // (zone text, reason) → count
};

/// The first line of a state file written from verified data, read back by
/// aisid-lookup ("; aisid-verified: time=... serial=... zonemd=sha384
/// key-tag=44703 anchor=FILE source=URL"). Values hold no spaces.
std::string verified_line(const ZoneVerdict &v, time_t when, const std::string &anchor_file,
                          const std::string &source);

} // namespace aisid::resolver
