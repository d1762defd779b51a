#include "aisid/proto/tsig.hpp"

#include "aisid/core/dname.hpp"
#include "aisid/core/wire.hpp"

#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>

namespace aisid::proto {

namespace {

std::string b64_decode(std::string_view s) {
    std::string in(s);
    std::string out(in.size(), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                            reinterpret_cast<const unsigned char *>(in.data()), static_cast<int>(in.size()));
    if (n < 0) return {};
    // EVP_DecodeBlock counts the padding as zero bytes.
    size_t pad = 0;
    while (!in.empty() && in.back() == '=') {
        in.pop_back();
        ++pad;
    }
    out.resize(static_cast<size_t>(n) - std::min<size_t>(pad, static_cast<size_t>(n)));
    return out;
}

void put16(std::string &s, uint16_t v) {
    s.push_back(static_cast<char>(v >> 8));
    s.push_back(static_cast<char>(v));
}
void put48(std::string &s, uint64_t v) {
    for (int i = 5; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
}

// The TSIG variables of RFC 8945 §4.3.3 (key name, class ANY, TTL 0,
// algorithm, time signed, fudge, error, other len, other data), as digested.
void put_tsig_variables(std::string &d, std::string_view key_wire, std::string_view alg_wire, uint64_t time_signed,
                        uint16_t fudge, uint16_t error, std::string_view other) {
    d += key_wire;
    put16(d, kClassANY);
    d.append(4, '\0');
    d += alg_wire;
    put48(d, time_signed);
    put16(d, fudge);
    put16(d, error);
    put16(d, static_cast<uint16_t>(other.size()));
    d += other;
}

uint64_t rdf_u48(const ldns_rdf *r) {
    if (!r || ldns_rdf_size(r) != 6) return 0;
    const uint8_t *d = ldns_rdf_data(r);
    uint64_t v = 0;
    for (int i = 0; i < 6; ++i) v = (v << 8) | d[i];
    return v;
}
uint16_t rdf_u16(const ldns_rdf *r) {
    if (!r || ldns_rdf_size(r) != 2) return 0;
    const uint8_t *d = ldns_rdf_data(r);
    return static_cast<uint16_t>((d[0] << 8) | d[1]);
}

std::string lower(std::string s) {
    for (char &c : s) c = ascii_lower(c);
    return s;
}

} // namespace

const char *TsigCheck::text() const {
    switch (result) {
    case Result::ok: return "ok";
    case Result::unsigned_msg: return "not signed";
    case Result::bad_key: return "unknown key (BADKEY)";
    case Result::bad_sig: return "bad signature (BADSIG)";
    case Result::bad_time: return "time outside the fudge window (BADTIME)";
    case Result::bad_alg: return "algorithm not hmac-sha256 (BADKEY)";
    case Result::malformed: return "malformed TSIG";
    }
    return "?";
}

std::optional<TsigKey> parse_tsig_key(std::string_view text) {
    std::string_view t = text;
    if (t.substr(0, 12) == "hmac-sha256:") t.remove_prefix(12);
    size_t c = t.find(':');
    if (c == std::string_view::npos || c == 0 || c + 1 >= t.size()) return std::nullopt;
    TsigKey k;
    k.name = lower(std::string(t.substr(0, c)));
    if (k.name.back() != '.') k.name += '.';
    if (!wire_from_text(k.name, k.name_wire)) return std::nullopt;
    k.secret_b64 = std::string(t.substr(c + 1));
    k.secret = b64_decode(k.secret_b64);
    if (k.secret.empty()) return std::nullopt;
    return k;
}

const ldns_rdf *tsig_mac_rdf(const ldns_pkt *pkt) {
    const ldns_rr *t = ldns_pkt_tsig(pkt);
    if (!t || ldns_rr_rd_count(t) < 4) return nullptr;
    return ldns_rr_rdf(t, 3);
}

TsigCheck tsig_verify_request(ldns_pkt *pkt, const uint8_t *wire, size_t len, const std::vector<TsigKey> &keys,
                              time_t now) {
    TsigCheck c;
    const ldns_rr *t = ldns_pkt_tsig(pkt);
    if (!t) return c;
    if (ldns_rr_rd_count(t) < 7) {
        c.result = TsigCheck::Result::malformed;
        return c;
    }
    const ldns_rdf *owner = ldns_rr_owner(t);
    c.key_name_wire = lower(std::string(reinterpret_cast<const char *>(ldns_rdf_data(owner)), ldns_rdf_size(owner)));
    c.time_signed = rdf_u48(ldns_rr_rdf(t, 1));
    uint16_t fudge = rdf_u16(ldns_rr_rdf(t, 2));
    c.fudge = fudge;
    c.original_id = rdf_u16(ldns_rr_rdf(t, 4));
    c.request_mac.reset(ldns_rdf_clone(ldns_rr_rdf(t, 3)));
    const TsigKey *key = nullptr;
    for (const TsigKey &k : keys)
        if (k.name_wire == c.key_name_wire) key = &k;
    if (!key) {
        c.result = TsigCheck::Result::bad_key;
        return c;
    }
    char *alg = ldns_rdf2str(ldns_rr_rdf(t, 0));
    bool sha256 = alg && lower(alg) == kHmacSha256;
    free(alg);
    if (!sha256) {
        c.result = TsigCheck::Result::bad_alg;
        return c;
    }
    // RFC 8945 §5.2: the MAC first (a bad MAC is BADSIG whatever the time), then the time.
    if (!ldns_pkt_tsig_verify_next(pkt, wire, len, key->name.c_str(), key->secret_b64.c_str(), nullptr, 0)) {
        c.result = TsigCheck::Result::bad_sig;
        return c;
    }
    c.key = key;
    uint64_t n = static_cast<uint64_t>(now);
    uint64_t d = n > c.time_signed ? n - c.time_signed : c.time_signed - n;
    if (d > fudge) {
        c.result = TsigCheck::Result::bad_time;
        return c;
    }
    c.result = TsigCheck::Result::ok;
    return c;
}

bool tsig_sign_pkt(ldns_pkt *pkt, const TsigKey &k, const ldns_rdf *prev_mac, bool timers_only, std::string &wire,
                   LdnsRdfPtr *mac_out) {
    ldns_status st = ldns_pkt_tsig_sign_next(pkt, k.name.c_str(), k.secret_b64.c_str(), kTsigFudge, kHmacSha256,
                                             prev_mac, timers_only ? 1 : 0);
    if (st != LDNS_STATUS_OK) return false;
    uint8_t *buf = nullptr;
    size_t n = 0;
    if (ldns_pkt2wire(&buf, pkt, &n) != LDNS_STATUS_OK) return false;
    wire.assign(reinterpret_cast<const char *>(buf), n);
    free(buf);
    if (mac_out) {
        const ldns_rdf *m = tsig_mac_rdf(pkt);
        mac_out->reset(m ? ldns_rdf_clone(m) : nullptr);
    }
    return true;
}

void tsig_append(std::string &wire, const TsigKey *key, std::string_view key_name_wire, uint64_t time_signed,
                 uint16_t fudge, uint16_t error, std::string_view request_mac, std::string_view other) {
    if (wire.size() < 12) return;
    std::string alg;
    wire_from_text(kHmacSha256, alg);
    std::string mac;
    uint16_t id = static_cast<uint16_t>((static_cast<uint8_t>(wire[0]) << 8) | static_cast<uint8_t>(wire[1]));
    if (key) {
        // RFC 8945 §4.3.3: [request MAC] + message + TSIG variables.
        std::string d;
        if (!request_mac.empty()) {
            put16(d, static_cast<uint16_t>(request_mac.size()));
            d += request_mac;
        }
        d += wire;
        put_tsig_variables(d, key->name_wire, alg, time_signed, fudge, error, other);
        unsigned char out[EVP_MAX_MD_SIZE];
        unsigned int olen = 0;
        HMAC(EVP_sha256(), key->secret.data(), static_cast<int>(key->secret.size()),
             reinterpret_cast<const unsigned char *>(d.data()), d.size(), out, &olen);
        mac.assign(reinterpret_cast<const char *>(out), olen);
    }
    std::string rd = alg;
    put48(rd, time_signed);
    put16(rd, fudge);
    put16(rd, static_cast<uint16_t>(mac.size()));
    rd += mac;
    put16(rd, id);
    put16(rd, error);
    put16(rd, static_cast<uint16_t>(other.size()));
    rd += other;
    wire += key ? std::string_view(key->name_wire) : key_name_wire;
    put16(wire, kTypeTSIG);
    put16(wire, kClassANY);
    wire.append(4, '\0');
    put16(wire, static_cast<uint16_t>(rd.size()));
    wire += rd;
    uint16_t ar = static_cast<uint16_t>((static_cast<uint8_t>(wire[10]) << 8) | static_cast<uint8_t>(wire[11]));
    ++ar;
    wire[10] = static_cast<char>(ar >> 8);
    wire[11] = static_cast<char>(ar);
}

bool tsig_verify_response(ldns_pkt *pkt, const uint8_t *wire, size_t len, const TsigKey &k, const ldns_rdf *prev_mac,
                          bool timers_only, LdnsRdfPtr *mac_out) {
    if (!ldns_pkt_tsig(pkt)) return false;
    if (!ldns_pkt_tsig_verify_next(pkt, wire, len, k.name.c_str(), k.secret_b64.c_str(), prev_mac,
                                   timers_only ? 1 : 0))
        return false;
    if (mac_out) {
        const ldns_rdf *m = tsig_mac_rdf(pkt);
        mac_out->reset(m ? ldns_rdf_clone(m) : nullptr);
    }
    return true;
}

bool TsigStream::next(std::string_view wire, const ldns_pkt *pkt, std::string &why) {
    const ldns_rr *t = ldns_pkt_tsig(pkt);
    if (!t) {
        if (first_) {
            why = "the transfer's first message is not signed";
            return false;
        }
        // RFC 8945 §5.3.1: "no more than 99" unsigned messages in a row.
        if (++unsigned_run_ > 99) {
            why = "more than 99 unsigned transfer messages in a row";
            return false;
        }
        unsigned_.append(wire);
        return true;
    }
    if (ldns_rr_rd_count(t) < 7 || wire.size() < 12) {
        why = "malformed TSIG in the transfer";
        return false;
    }
    // Where the TSIG RR starts: it is the last record of the message.
    const auto *m = reinterpret_cast<const uint8_t *>(wire.data());
    WireReader r(m, wire.size(), 4);
    unsigned qd = r.u16(), an = r.u16(), ns = r.u16(), ar = r.u16();
    if (ar == 0) {
        why = "malformed TSIG in the transfer";
        return false;
    }
    for (unsigned i = 0; i < qd && r.ok(); ++i) {
        r.skip_name();
        r.skip(4);
    }
    for (unsigned i = 0; i + 1 < an + ns + ar && r.ok(); ++i) {
        r.skip_name();
        r.skip(8);
        r.skip(r.u16());
    }
    size_t tsig_at = r.pos();
    if (!r.ok()) {
        why = "malformed transfer message";
        return false;
    }
    const ldns_rdf *owner = ldns_rr_owner(t);
    std::string key_wire = lower(std::string(reinterpret_cast<const char *>(ldns_rdf_data(owner)), ldns_rdf_size(owner)));
    char *alg = ldns_rdf2str(ldns_rr_rdf(t, 0));
    bool sha256 = alg && lower(alg) == kHmacSha256;
    free(alg);
    if (key_wire != k_.name_wire || !sha256) {
        why = "the transfer is signed with another key or algorithm";
        return false;
    }
    uint64_t time_signed = rdf_u48(ldns_rr_rdf(t, 1));
    uint16_t fudge = rdf_u16(ldns_rr_rdf(t, 2));
    const ldns_rdf *mac_rdf = ldns_rr_rdf(t, 3);
    uint16_t orig_id = rdf_u16(ldns_rr_rdf(t, 4));
    uint16_t error = rdf_u16(ldns_rr_rdf(t, 5));
    const ldns_rdf *other = ldns_rr_rdf(t, 6);
    if (!mac_rdf || ldns_rdf_size(mac_rdf) < 2) {
        why = "malformed TSIG in the transfer";
        return false;
    }
    std::string mac(reinterpret_cast<const char *>(ldns_rdf_data(mac_rdf)) + 2, ldns_rdf_size(mac_rdf) - 2);
    // The digest (RFC 8945 §4.3.1, §5.3.1): prior MAC, the unsigned messages
    // since, this message without its TSIG (original ID, ARCOUNT less one),
    // then the full TSIG variables on the first message, the timers after.
    std::string d;
    put16(d, static_cast<uint16_t>(prev_mac_.size()));
    d += prev_mac_;
    d += unsigned_;
    std::string body(wire.substr(0, tsig_at));
    body[0] = static_cast<char>(orig_id >> 8);
    body[1] = static_cast<char>(orig_id);
    body[10] = static_cast<char>((ar - 1) >> 8);
    body[11] = static_cast<char>(ar - 1);
    d += body;
    if (first_) {
        std::string alg_wire;
        wire_from_text(kHmacSha256, alg_wire);
        // ldns keeps Other Data with its length in front (INT16_DATA).
        size_t olen = other ? ldns_rdf_size(other) : 0;
        std::string_view other_data =
            olen >= 2 ? std::string_view(reinterpret_cast<const char *>(ldns_rdf_data(other)) + 2, olen - 2) : "";
        put_tsig_variables(d, key_wire, alg_wire, time_signed, fudge, error, other_data);
    } else {
        put48(d, time_signed);
        put16(d, fudge);
    }
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), k_.secret.data(), static_cast<int>(k_.secret.size()),
         reinterpret_cast<const unsigned char *>(d.data()), d.size(), out, &n);
    if (n != mac.size() || CRYPTO_memcmp(out, mac.data(), n) != 0) {
        why = unsigned_run_ ? "TSIG of the transfer does not verify (over " + std::to_string(unsigned_run_) +
                                  " unsigned messages before it)"
                            : std::string("TSIG of the transfer does not verify");
        return false;
    }
    if (error != 0) {
        why = "the transfer's TSIG carries error " + std::to_string(error);
        return false;
    }
    prev_mac_ = std::move(mac);
    unsigned_.clear();
    unsigned_run_ = 0;
    first_ = false;
    return true;
}

} // namespace aisid::proto
