#include "aisid/authority/zone_verify.hpp"

#include "aisid/core/dname.hpp"

#include <cstdio>
#include <stdio_ext.h>
#include <cstring>
#include <filesystem>

namespace aisid::resolver {

using namespace proto;

namespace {

struct DnssecZoneFree {
    void operator()(ldns_dnssec_zone *z) const { ldns_dnssec_zone_deep_free(z); }
};
using DnssecZonePtr = std::unique_ptr<ldns_dnssec_zone, DnssecZoneFree>;
struct FileClose {
    void operator()(FILE *f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileClose>;
// A list that points at records owned elsewhere (the dnssec zone).
struct ShallowListFree {
    void operator()(ldns_rr_list *l) const { ldns_rr_list_free(l); }
};
using ShallowListPtr = std::unique_ptr<ldns_rr_list, ShallowListFree>;

std::string rdf_wire_lower(const ldns_rdf *d) {
    std::string w(reinterpret_cast<const char *>(ldns_rdf_data(d)), ldns_rdf_size(d));
    for (char &c : w) c = ascii_lower(c);  // label lengths are < 64: never letters
    return w;
}

// ldns counts a line once it has read its end: the record it just read
// (or failed to) is on the line before.
int rr_line(int ldns_line) { return ldns_line > 1 ? ldns_line - 1 : 1; }

ZoneVerdict fail(ZoneVerdict v, std::string reason, std::string message) {
    v.ok = false;
    v.reason = std::move(reason);
    v.message = std::move(message);
    return v;
}

ldns_dnssec_rrsets *apex_rrset(ldns_dnssec_zone *z, ldns_rr_type t) {
    return ldns_dnssec_zone_find_rrset(z, z->soa->name, t);
}

ShallowListPtr list_of(const ldns_dnssec_rrs *r) {
    ShallowListPtr l(ldns_rr_list_new());
    for (; r; r = r->next) ldns_rr_list_push_rr(l.get(), r->rr);
    return l;
}

std::string type_name(ldns_rr_type t) {
    char *s = ldns_rr_type2str(t);
    std::string r = s ? s : "TYPE" + std::to_string(t);
    free(s);
    return r;
}

// RFC 4035 §5.3: one RRSIG over the RRset by one of `keys`, valid at `now`,
// is enough. Returns the status of the best attempt (an expired signature
// is reported as such rather than as "no key").
ldns_status verify_rrset(ldns_dnssec_rrsets *set, const ldns_rr_list *keys, time_t now, ldns_rr_list *good_keys,
                         uint32_t &expires) {
    if (!set || !set->signatures) return LDNS_STATUS_CRYPTO_NO_RRSIG;
    ShallowListPtr rrs = list_of(set->rrs);
    ldns_status best = LDNS_STATUS_CRYPTO_NO_MATCHING_KEYTAG_DNSKEY;
    for (const ldns_dnssec_rrs *s = set->signatures; s; s = s->next) {
        ldns_status st = ldns_verify_rrsig_keylist_time(rrs.get(), s->rr, keys, now, good_keys);
        if (st == LDNS_STATUS_OK) {
            uint32_t exp = ldns_rdf2native_time_t(ldns_rr_rrsig_expiration(s->rr));
            if (!expires || exp < expires) expires = exp;
            return st;
        }
        if (st == LDNS_STATUS_CRYPTO_SIG_EXPIRED || st == LDNS_STATUS_CRYPTO_SIG_NOT_INCEPTED ||
            best == LDNS_STATUS_CRYPTO_NO_MATCHING_KEYTAG_DNSKEY)
            best = st;
    }
    return best;
}

std::string sig_reason(ldns_status st) {
    switch (st) {
    case LDNS_STATUS_CRYPTO_SIG_EXPIRED:
    case LDNS_STATUS_CRYPTO_SIG_NOT_INCEPTED: return "signature_expired";
    case LDNS_STATUS_CRYPTO_NO_RRSIG: return "unsigned";
    case LDNS_STATUS_CRYPTO_NO_MATCHING_KEYTAG_DNSKEY:
    case LDNS_STATUS_CRYPTO_NO_TRUSTED_DNSKEY:
    case LDNS_STATUS_CRYPTO_NO_DNSKEY: return "no_trusted_key";
    default: return "bad_signature";
    }
}

// The checks on a zone read into ldns: origin, ZONEMD, apex signatures.
ZoneVerdict verify_dnssec_zone(ldns_dnssec_zone *z, const std::string &origin_wire, const VerifyPolicy &p) {
    ZoneVerdict v;
    const std::string want = name_to_text(origin_wire);
    if (!z->soa || !z->soa->name) return fail(v, "no_soa", "the data has no SOA record");
    v.origin_wire = rdf_wire_lower(z->soa->name);
    if (v.origin_wire != origin_wire)
        return fail(v, "wrong_zone", "the data is zone " + name_to_text(v.origin_wire) + ", not " + want);
    ldns_dnssec_rrsets *soa = apex_rrset(z, LDNS_RR_TYPE_SOA);
    if (!soa || !soa->rrs || soa->rrs->next) return fail(v, "no_soa", "not exactly one SOA at the apex");
    v.serial = ldns_rdf2native_int32(ldns_rr_rdf(soa->rrs->rr, 2));

    // RFC 8976 §4: verify the digest when the zone carries one; the policy
    // (or a trust anchor, whose signatures would otherwise cover only the
    // apex) makes it mandatory.
    ldns_dnssec_rrsets *zonemd = apex_rrset(z, LDNS_RR_TYPE_ZONEMD);
    const bool need_zonemd = p.require_zonemd || p.anchor;
    if (!zonemd) {
        if (need_zonemd) return fail(v, "no_zonemd", "the zone has no ZONEMD record at its apex");
    } else {
        bool sha384 = false;
        for (const ldns_dnssec_rrs *r = zonemd->rrs; r; r = r->next)
            if (ldns_rr_rd_count(r->rr) == 4 && ldns_rdf2native_int8(ldns_rr_rdf(r->rr, 1)) == 1 &&
                ldns_rdf2native_int8(ldns_rr_rdf(r->rr, 2)) == 1)
                sha384 = true;
        if (!sha384)
            return fail(v, "zonemd_unsupported", "no ZONEMD with the SIMPLE scheme and SHA-384 (RFC 8976 §2.2)");
        ldns_status st = ldns_dnssec_zone_verify_zonemd(z);
        if (st != LDNS_STATUS_OK) {
            std::string why = ldns_get_errorstr_by_id(st) ? ldns_get_errorstr_by_id(st) : "error";
            return fail(v, st == LDNS_STATUS_NO_VALID_ZONEMD ? "zonemd_mismatch" : "zonemd_invalid",
                        "ZONEMD does not verify: " + why);
        }
        v.zonemd = true;
    }

    if (p.anchor) {
        const time_t now = p.now ? p.now : ::time(nullptr);
        ldns_dnssec_rrsets *keys = apex_rrset(z, LDNS_RR_TYPE_DNSKEY);
        if (!keys) return fail(v, "no_trusted_key", "the zone has no DNSKEY RRset");
        // The zone's DNSKEYs that the anchor names: by DS digest or as the very key.
        ShallowListPtr trusted(ldns_rr_list_new());
        for (const ldns_dnssec_rrs *k = keys->rrs; k; k = k->next)
            for (size_t i = 0; i < ldns_rr_list_rr_count(p.anchor->rrs.get()); ++i) {
                const ldns_rr *a = ldns_rr_list_rr(p.anchor->rrs.get(), i);
                bool match = ldns_rr_get_type(a) == LDNS_RR_TYPE_DS ? ldns_rr_compare_ds(k->rr, a)
                                                                      : ldns_rr_compare(k->rr, a) == 0 ||
                                                                            (ldns_rr_rd_count(k->rr) == 4 &&
                                                                             ldns_rr_rd_count(a) == 4 &&
                                                                             ldns_rdf_compare(ldns_rr_rdf(k->rr, 3),
                                                                                              ldns_rr_rdf(a, 3)) == 0);
                if (match) {
                    ldns_rr_list_push_rr(trusted.get(), k->rr);
                    break;
                }
            }
        if (ldns_rr_list_rr_count(trusted.get()) == 0)
            return fail(v, "no_trusted_key", "no DNSKEY of the zone matches the trust anchor " + p.anchor->file);
        // RFC 4035 §5.2: the DNSKEY RRset signed by an anchored key; then
        // every key in it may sign the SOA and ZONEMD RRsets.
        ShallowListPtr good(ldns_rr_list_new());
        ldns_status st = verify_rrset(keys, trusted.get(), now, good.get(), v.sig_expires);
        if (st != LDNS_STATUS_OK)
            return fail(v, sig_reason(st),
                        "the DNSKEY RRset does not verify with the trust anchor: " +
                            std::string(ldns_get_errorstr_by_id(st) ? ldns_get_errorstr_by_id(st) : "error"));
        v.key_tag = ldns_calc_keytag(ldns_rr_list_rr(good.get(), 0));
        ShallowListPtr all = list_of(keys->rrs);
        for (ldns_rr_type t : {LDNS_RR_TYPE_SOA, LDNS_RR_TYPE_ZONEMD}) {
            st = verify_rrset(apex_rrset(z, t), all.get(), now, nullptr, v.sig_expires);
            if (st != LDNS_STATUS_OK)
                return fail(v, sig_reason(st),
                            "the apex " + type_name(t) + " RRset does not verify: " +
                                std::string(ldns_get_errorstr_by_id(st) ? ldns_get_errorstr_by_id(st) : "error"));
        }
    }
    v.ok = true;
    return v;
}

} // namespace

Expected<TrustAnchor, std::string> load_trust_anchor(const std::string &zone_text, const std::string &file) {
    TrustAnchor a;
    a.file = file;
    std::string z = zone_text;
    if (z.empty() || z.back() != '.') z += '.';
    if (!wire_from_text(z, a.origin_wire)) return unexpected("'" + zone_text + "' is not a zone name");
    FilePtr f(std::fopen(file.c_str(), "r"));
    if (!f) return unexpected(file + ": " + std::strerror(errno));
    a.rrs.reset(ldns_rr_list_new());
    LdnsRdfPtr origin(ldns_dname_new_frm_str(z.c_str()));
    ldns_rdf *cur_origin = ldns_rdf_clone(origin.get()), *prev = nullptr;
    uint32_t ttl = 3600;
    int line = 1;
    std::string err;
    while (!std::feof(f.get()) && err.empty()) {
        ldns_rr *rr = nullptr;
        ldns_status st = ldns_rr_new_frm_fp_l(&rr, f.get(), &ttl, &cur_origin, &prev, &line);
        if (st == LDNS_STATUS_SYNTAX_EMPTY || st == LDNS_STATUS_SYNTAX_TTL || st == LDNS_STATUS_SYNTAX_ORIGIN) continue;
        if (st != LDNS_STATUS_OK) {
            err = file + ":" + std::to_string(rr_line(line)) + ": " + ldns_get_errorstr_by_id(st);
            break;
        }
        LdnsRrPtr owned(rr);
        ldns_rr_type t = ldns_rr_get_type(rr);
        if (t != LDNS_RR_TYPE_DS && t != LDNS_RR_TYPE_DNSKEY) {
            err = file + ":" + std::to_string(rr_line(line)) + ": a trust anchor is DS or DNSKEY records";
        } else if (rdf_wire_lower(ldns_rr_owner(rr)) != a.origin_wire) {
            err = file + ":" + std::to_string(rr_line(line)) + ": the record is not for " + z;
        } else {
            a.key_tags.push_back(t == LDNS_RR_TYPE_DS ? ldns_rdf2native_int16(ldns_rr_rdf(rr, 0))
                                                      : ldns_calc_keytag(rr));
            ldns_rr_list_push_rr(a.rrs.get(), owned.release());
        }
    }
    ldns_rdf_deep_free(cur_origin);
    if (prev) ldns_rdf_deep_free(prev);
    if (!err.empty()) return unexpected(err);
    if (ldns_rr_list_rr_count(a.rrs.get()) == 0) return unexpected(file + ": no DS or DNSKEY record");
    return a;
}

ZoneVerdict verify_zone_text(std::string_view text, const std::string &origin_wire, const VerifyPolicy &p) {
    ZoneVerdict v;
    if (text.empty()) return fail(v, "parse", "empty zone data");
    // fmemopen reads the caller's bytes in place: no copy of a large zone.
    FilePtr f(fmemopen(const_cast<char *>(text.data()), text.size(), "r"));
    if (!f) return fail(v, "parse", std::string("fmemopen: ") + std::strerror(errno));
    // ldns reads the zone one getc at a time; this stream is ours alone, so
    // skip stdio's per-call locking.
    __fsetlocking(f.get(), FSETLOCKING_BYCALLER);
    ldns_dnssec_zone *raw = nullptr;
    int line = 1;
    ldns_status st = ldns_dnssec_zone_new_frm_fp_l(&raw, f.get(), nullptr, 3600, LDNS_RR_CLASS_IN, &line);
    if (st != LDNS_STATUS_OK)
        return fail(v, "parse", "line " + std::to_string(rr_line(line)) + ": " + ldns_get_errorstr_by_id(st));
    DnssecZonePtr z(raw);
    return verify_dnssec_zone(z.get(), origin_wire, p);
}

ZoneVerdict verify_zone_records(const std::vector<Record> &records, const std::string &origin_wire,
                                const VerifyPolicy &p) {
    DnssecZonePtr z(ldns_dnssec_zone_new());
    // NSEC3 records (and their signatures) attach to names that must be in
    // the tree already: add them last.
    auto nsec3ish = [](const Record &r) -> bool {
        if (r.type == LDNS_RR_TYPE_NSEC3) return true;
        return r.type == LDNS_RR_TYPE_RRSIG && r.rdata.size() >= 2 &&
               ((uint8_t(r.rdata[0]) << 8) | uint8_t(r.rdata[1])) == LDNS_RR_TYPE_NSEC3;
    };
    // RFC 4034 §3: an RRSIG has the TTL of the RRset it covers. aisid's Zone
    // keeps one TTL per owner and type, so the RRSIGs at one name (over
    // NSEC at 60 s, over TXT at 300 s) come back with a single TTL; the
    // digest covers TTLs, so each gets its covered RRset's TTL again (or,
    // without that RRset, the original TTL the signer recorded in it).
    std::map<std::pair<std::string, uint16_t>, uint32_t> ttl_of;
    for (const Record &r : records)
        if (r.type != LDNS_RR_TYPE_RRSIG) ttl_of.emplace(std::make_pair(r.owner, r.type), r.ttl);
    auto fixed_ttl = [&](const Record &r) -> uint32_t {
        if (r.type != LDNS_RR_TYPE_RRSIG || r.rdata.size() < 8) return r.ttl;
        uint16_t covered = uint16_t((uint8_t(r.rdata[0]) << 8) | uint8_t(r.rdata[1]));
        auto it = ttl_of.find({r.owner, covered});
        if (it != ttl_of.end()) return it->second;
        return (uint32_t(uint8_t(r.rdata[4])) << 24) | (uint32_t(uint8_t(r.rdata[5])) << 16) |
               (uint32_t(uint8_t(r.rdata[6])) << 8) | uint32_t(uint8_t(r.rdata[7]));
    };
    for (int pass = 0; pass < 2; ++pass)
        for (const Record &r : records) {
            if (nsec3ish(r) != (pass == 1)) continue;
            LdnsRrPtr rr = record_to_ldns(r);
            if (rr) ldns_rr_set_ttl(rr.get(), fixed_ttl(r));
            if (!rr) return fail(ZoneVerdict{}, "parse", "a record does not convert: " + record_to_text(r));
            ldns_status st = ldns_dnssec_zone_add_rr(z.get(), rr.get());
            if (st != LDNS_STATUS_OK)
                return fail(ZoneVerdict{}, "parse", record_to_text(r) + ": " + ldns_get_errorstr_by_id(st));
            rr.release();  // the zone owns it now
        }
    return verify_dnssec_zone(z.get(), origin_wire, p);
}

Expected<std::shared_ptr<const ZonePolicy>, std::string> ZonePolicy::make(bool require_zonemd,
                                                                         const std::vector<std::string> &anchors) {
    auto p = std::make_shared<ZonePolicy>();
    p->require_zonemd_ = require_zonemd;
    for (const std::string &a : anchors) {
        size_t eq = a.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == a.size())
            return unexpected("bad --trust-anchor '" + a + "' (want ZONE=FILE)");
        std::error_code ec;
        std::string file = std::filesystem::absolute(a.substr(eq + 1), ec).string();  // shown by aisid-lookup later
        auto t = load_trust_anchor(a.substr(0, eq), ec ? a.substr(eq + 1) : file);
        if (!t) return unexpected("--trust-anchor " + a + ": " + t.error());
        if (p->anchor(t->origin_wire))
            return unexpected("--trust-anchor " + a + ": zone " + name_to_text(t->origin_wire) + " has an anchor already");
        p->anchors_.push_back(std::move(*t));
    }
    return std::shared_ptr<const ZonePolicy>(std::move(p));
}

const TrustAnchor *ZonePolicy::anchor(const std::string &origin_wire) const {
    for (const TrustAnchor &a : anchors_)
        if (a.origin_wire == origin_wire) return &a;
    return nullptr;
}

ZoneVerdict ZonePolicy::check(const Zone &z, time_t now) const {
    return verify_zone_records(zone_records(z), z.origin_wire(), policy(z.origin_wire(), now));
}

void ZonePolicy::count_refusal(const std::string &origin_wire, const std::string &reason) const {
    ++(*refused_.lock())[{name_to_text(origin_wire), reason}];
}

void ZonePolicy::append_metrics(std::string &out) const {
    out += "# HELP aisidd_zone_verify_failures_total Zone copies refused (from a mirror, a transfer, a file or the "
           "state directory), by reason; the old data stays.\n# TYPE aisidd_zone_verify_failures_total counter\n";
    auto refused = refused_.lock();
    for (auto &[k, n] : *refused)
        out += "aisidd_zone_verify_failures_total{zone=\"" + k.first + "\",reason=\"" + k.second + "\"} " +
               std::to_string(n) + "\n";
}

std::string verified_line(const ZoneVerdict &v, time_t when, const std::string &anchor_file,
                          const std::string &source) {
    auto nospace = [](std::string s) {
        for (char &c : s)
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') c = '_';
        return s;
    };
    char ts[32];
    struct tm tm;
    gmtime_r(&when, &tm);
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::string s = "; aisid-verified: time=" + std::string(ts) + " zone=" + name_to_text(v.origin_wire) +
                    " serial=" + std::to_string(v.serial) + " zonemd=" + (v.zonemd ? "sha384" : "none");
    if (v.key_tag) s += " key-tag=" + std::to_string(v.key_tag) + " anchor=" + nospace(anchor_file);
    if (v.sig_expires) s += " sig-expires=" + std::to_string(v.sig_expires);
    if (!source.empty()) s += " source=" + nospace(source);
    return s + "\n";
}

} // namespace aisid::resolver
