// Records as the authority side moves them around: the zone as a list of
// records (for AXFR, IXFR diffs, the journal and zone files), and the small
// wire helpers that go with them. The published Zone keeps services in a
// compact index, so "every record of the zone" is rebuilt here.
#pragma once

#include "aisid/core/ldns_ptr.hpp"
#include "aisid/core/zone.hpp"

#include <ldns/ldns.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aisid::proto {

inline constexpr uint16_t kTypeTSIG = 250;
inline constexpr uint16_t kClassNONE = 254;
inline constexpr uint16_t kClassANY = 255;

/// One resource record; owner in lowercase wire form (with the root byte),
/// rdata uncompressed.
struct Record {
    std::string owner;
    uint16_t type = 0;
    uint16_t cls = kClassIN;
    uint32_t ttl = 0;
    std::string rdata;
    bool same_rr(const Record &o) const { return type == o.type && owner == o.owner && rdata == o.rdata; }
};


/// Every record of a zone, its SOA first (RFC 5936 §2.2 order for AXFR).
std::vector<Record> zone_records(const Zone &z);
/// The records at one owner name (full wire name, lowercase).
std::vector<Record> records_at(const Zone &z, std::string_view owner_wire);
/// The zone as an RFC 1035 master file (absolute names), readable by load_zone_text.
std::string zone_to_text(const Zone &z);
/// The same from the zone's records (zone_records), when the caller has them.
std::string zone_to_text(const Zone &z, const std::vector<Record> &records);
/// True when the record's rdata, written as master-file text, reads back as
/// the same bytes (so that a zone file can hold it).
bool rdata_round_trips(const Record &r);
/// The zone's records as one master-file line each.
std::string record_to_text(const Record &r);

/// Writes the zone as zone_to_text to `path` (atomically), after checking
/// that the text reads back through load_zone_text as the very same records;
/// false (nothing written) when it does not. `header` (comment lines, such as
/// verified_line()) goes first.
bool write_zone_file(const std::string &path, const Zone &z, std::string &err, std::string_view header = {});

/// Writes a file so that a crash leaves either the old or the new content:
/// a temporary beside it, fsync, rename, fsync of the directory.
bool write_file_atomic(const std::string &path, std::string_view data, std::string &err);

/// RFC 1982 serial arithmetic: true when a is after b.
inline bool serial_gt(uint32_t a, uint32_t b) {
    return a != b && ((a > b && a - b < 0x80000000u) || (a < b && b - a > 0x80000000u));
}
uint32_t soa_serial(std::string_view soa_rdata);
std::string soa_with_serial(std::string_view soa_rdata, uint32_t serial);
/// SOA refresh, retry, expire (seconds).
void soa_timers(std::string_view soa_rdata, uint32_t &refresh, uint32_t &retry, uint32_t &expire);

/// Conversions between ldns records and ours.
Record record_from_ldns(const ldns_rr *rr);
LdnsRrPtr record_to_ldns(const Record &r);
/// An ldns list of our records (ldns_update_pkt_new clones it: the caller keeps ownership).
LdnsRrListPtr ldns_list_of(const std::vector<Record> &rs);
/// The records of one ldns list.
std::vector<Record> records_of(const ldns_rr_list *l);

/// "ai.example." → lowercase wire; false when it is not a name.
bool wire_from_text(std::string_view text, std::string &out);
/// A file-name friendly zone name: "ai.example" (the root is "root").
std::string zone_file_stem(std::string_view origin_wire);

/// One change: the zone went from serial `from` to `to` by deleting `del`
/// (old SOA first) and adding `add` (new SOA first).
struct Diff {
    uint32_t from = 0;
    uint32_t to = 0;
    std::vector<Record> del;
    std::vector<Record> add;
    // The signed UPDATE that made the change: kept in the journal
    // so that after a restart the same message, replayed within its fudge
    // window, is still known and refused. Empty when unsigned (IXFR, tests).
    std::string tsig_key;   // key name, wire form
    std::string tsig_mac;   // the request's MAC
    uint64_t tsig_time = 0; // its Time Signed
    uint16_t tsig_fudge = 0;
};

} // namespace aisid::proto
