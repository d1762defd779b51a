// Differential: the hand-written fast paths against ldns (docs/DEVELOPING.md:
// "a hand-written fast path on the hot path only with a differential fuzz
// target against ldns").
//  - sdk/core/dname: name_from_wire vs ldns_wire2dname (same verdict, same
//    name modulo case, same end position), name_from_text vs
//    ldns_dname_new_frm_str (when both accept: the same name);
//  - resolver/wire: parse_query vs ldns_wire2pkt (when both accept: the same
//    ID, flags, question and EDNS fields).
// Input: byte 0 is the wire offset where a name is read; the rest the bytes.
#include "aisid/resolver/query_wire.hpp"
#include "ldns_quirks.hpp"

#include <ldns/ldns.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

using namespace aisid;
using namespace aisid::resolver;

namespace {

std::string lower(const uint8_t *p, size_t n) {
    std::string s(reinterpret_cast<const char *>(p), n);
    // Lowercase the label bytes only (length bytes are < 64, never 'A'..'Z').
    for (auto &c : s) c = ascii_lower(c);
    return s;
}

void names_from_wire(const uint8_t *m, size_t n, size_t start) {
    size_t pos = start;
    WireName w;
    bool ours = name_from_wire(m, n, pos, w);
    ldns_rdf *d = nullptr;
    size_t lpos = start;
    bool theirs = ldns_wire2dname(&d, m, n, &lpos) == LDNS_STATUS_OK;
    std::unique_ptr<ldns_rdf, decltype(&ldns_rdf_deep_free)> dp(d, ldns_rdf_deep_free);
    if (ours && theirs) {
        if (lower(ldns_rdf_data(d), ldns_rdf_size(d)) != w.wire()) abort();
        if (pos != lpos) abort();
    } else if (ours != theirs) {
        // Known, deliberate differences, found by walking the name:
        //  - ldns follows forward pointers and up to 65535 of them; aisid
        //    takes only backward pointers (no loops) and at most 64 hops;
        //  - ldns refuses a pointer to offset 0 (ldns wire2host.c); aisid
        //    takes it (the header's bytes read as labels: the name is then
        //    nonsense, but bounded and checked like any other).
        // Anything else is a disagreement.
        size_t p = start;
        bool forward = false, zero = false;
        int hops = 0;
        for (; hops < 70000 && p < n; ) {
            uint8_t l = m[p];
            if ((l & 0xc0) == 0xc0) {
                if (p + 1 >= n) break;
                size_t t = (size_t(l & 0x3f) << 8) | m[p + 1];
                ++hops;
                if (t >= p) {
                    forward = true;
                    break;
                }
                if (t == 0) zero = true;
                p = t;
                continue;
            }
            if (l == 0 || (l & 0xc0)) break;
            p += 1 + l;
        }
        if (ours && !zero) abort();                    // we accept what ldns rejects
        if (theirs && !forward && hops <= 64) abort();  // we reject what ldns accepts
    }
}

void names_from_text(const uint8_t *data, size_t size) {
    std::string text(reinterpret_cast<const char *>(data), size);
    if (text.find('\0') != std::string::npos) return;  // C string for ldns
    WireName w;
    bool ours = name_from_text(text, w);
    ldns_rdf *d = ldns_dname_new_frm_str(text.c_str());
    std::unique_ptr<ldns_rdf, decltype(&ldns_rdf_deep_free)> dp(d, ldns_rdf_deep_free);
    if (ours && d) {
        // ldns keeps a relative name relative; ours is always absolute.
        std::string theirs = lower(ldns_rdf_data(d), ldns_rdf_size(d));
        if (!ldns_dname_str_absolute(text.c_str()) && !theirs.empty() && theirs.back() != '\0') theirs += '\0';
        if (theirs != w.wire()) abort();
    }
    // One-sided verdicts are not a bug in themselves (ldns accepts some names
    // longer than 255 octets in text, we accept ""); they are counted in the
    // reliability doc's table by running the corpus, not trapped here.
}


void query_vs_ldns(const uint8_t *m, size_t n) {
    Query q;
    ParseError pe = parse_query(m, n, q);
    ldns_pkt *p = nullptr;
    bool theirs = !fuzz::two_tsigs(m, n) && ldns_wire2pkt(&p, m, n) == LDNS_STATUS_OK;
    std::unique_ptr<ldns_pkt, decltype(&ldns_pkt_free)> pp(theirs ? p : nullptr, ldns_pkt_free);
    if (pe == ParseError::drop) {
        if (n >= 12 && !(rd16(m + 2) & kFlagQR)) abort();  // only responses and runts are dropped
        return;
    }
    if (n >= 2 && q.id != rd16(m)) abort();
    if (pe != ParseError::none && pe != ParseError::badvers) return;
    if (!theirs) return;  // ldns also checks rdata we do not read
    if (ldns_pkt_id(p) != q.id || ldns_pkt_qdcount(p) != 1) abort();
    if (ldns_pkt_get_opcode(p) != q.opcode || bool(ldns_pkt_rd(p)) != q.rd() || bool(ldns_pkt_cd(p)) != q.cd())
        abort();
    ldns_rr *qr = ldns_rr_list_rr(ldns_pkt_question(p), 0);
    if (!qr) abort();
    const ldns_rdf *owner = ldns_rr_owner(qr);
    if (lower(ldns_rdf_data(owner), ldns_rdf_size(owner)) != q.qname.wire()) abort();
    if (ldns_rr_get_type(qr) != q.qtype || ldns_rr_get_class(qr) != q.qclass) abort();
    if (q.opcode != kOpQuery) return;
    if (bool(ldns_pkt_edns(p)) != q.edns && ldns_pkt_edns_udp_size(p) != 0) abort();
    if (q.edns) {
        if (std::max<uint16_t>(ldns_pkt_edns_udp_size(p), 512) != q.udp_size) abort();
        if (bool(ldns_pkt_edns_do(p)) != q.do_bit) abort();
        if (ldns_pkt_edns_version(p) != q.edns_version) abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *m = data + 1;
    size_t n = size - 1;
    if (n) names_from_wire(m, n, data[0] % n);
    names_from_text(m, n);
    query_vs_ldns(m, n);
    return 0;
}
