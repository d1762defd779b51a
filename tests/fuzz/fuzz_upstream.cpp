// aisidd's upstream answer handling (QueryCore::check_upstream and
// answer_from_upstream), checked against ldns and against what a forwarder
// must never do:
//  - an answer accepted (Check::ok) carries our ID, QR, opcode QUERY and the
//    question we asked (RFC 5452 §9.1), as ldns reads it;
//  - a well-formed NOERROR/NXDOMAIN answer to our question is never ignored
//    (ignoring it would turn a good answer into a timeout);
//  - bailiwick: after an accepted answer, no other (name, type) it carries is
//    served from the cache — only the question asked is;
//  - the cached answer, served back, has the upstream's answer records (owner,
//    type, class, rdata) and TTLs no larger than received, and ldns reads it
//    whenever ldns reads the upstream's answer (with an OPT appended, see below).
// Input: byte 0 picks the question type, bit 7 of byte 0 the transport; the
// rest is the upstream's response.
#include "aisid/resolver/query_core.hpp"
#include "ldns_quirks.hpp"

#include <arpa/inet.h>
#include <ldns/ldns.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace aisid;
using namespace aisid::resolver;

namespace {

using PktPtr = std::unique_ptr<ldns_pkt, decltype(&ldns_pkt_free)>;


PktPtr parse(const uint8_t *m, size_t n) {
    ldns_pkt *p = nullptr;
    if (fuzz::two_tsigs(m, n)) return PktPtr(nullptr, ldns_pkt_free);
    if (ldns_wire2pkt(&p, m, n) != LDNS_STATUS_OK) {
        if (p) ldns_pkt_free(p);
        p = nullptr;
    }
    return PktPtr(p, ldns_pkt_free);
}

sockaddr_storage loopback() {
    sockaddr_storage ss{};
    auto &s4 = reinterpret_cast<sockaddr_in &>(ss);
    s4.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &s4.sin_addr);
    return ss;
}

const uint16_t kTypes[] = {1, 28, 5, 15, 16, 2, 6, 12, 33, 64, 65, 99, 255};

// A client query (ID 0x1234, RD, EDNS 1232) for `owner` (ldns dname) and type.
std::vector<uint8_t> client_query(const ldns_rdf *owner, uint16_t type) {
    std::vector<uint8_t> m = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1};
    const uint8_t *d = ldns_rdf_data(owner);
    m.insert(m.end(), d, d + ldns_rdf_size(owner));
    for (uint8_t b : {uint8_t(type >> 8), uint8_t(type), uint8_t(0), uint8_t(1)}) m.push_back(b);
    for (uint8_t b : {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0}) m.push_back(uint8_t(b));
    return m;
}

bool same_name(const ldns_rdf *a, const ldns_rdf *b) { return ldns_dname_compare(a, b) == 0; }

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static Cache cache(1 << 20);
    static CoreSettings settings;
    static QueryCore core(cache, settings);
    cache.clear();  // each input stands alone
    const uint64_t now = 5000000;
    bool tcp = data[0] & 0x80;
    uint16_t qtype = kTypes[(data[0] & 0x7f) % (sizeof kTypes / sizeof kTypes[0])];
    const uint8_t *resp = data + 1;
    size_t n = size - 1;

    static const uint8_t kWww[] = {3, 'w', 'w', 'w', 6, 'l', 'e', 'g', 'a', 'c', 'y', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0};
    ldns_rdf *qname_rdf = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, sizeof kWww, kWww);
    std::unique_ptr<ldns_rdf, decltype(&ldns_rdf_deep_free)> qname(qname_rdf, ldns_rdf_deep_free);
    std::vector<uint8_t> cq = client_query(qname.get(), qtype);
    Query q;
    if (parse_query(cq.data(), cq.size(), q) != ParseError::none) abort();

    const uint16_t id = 0xbeef;
    auto check = QueryCore::check_upstream(q, id, resp, n);
    PktPtr up = parse(resp, n);

    // What ldns says the answer is.
    bool ours = false;  // ldns-valid, our ID, a response to a QUERY, our question
    if (up) {
        ldns_rr_list *qs = ldns_pkt_question(up.get());
        ours = ldns_pkt_id(up.get()) == id && ldns_pkt_qr(up.get()) && ldns_pkt_get_opcode(up.get()) == LDNS_PACKET_QUERY &&
               ldns_rr_list_rr_count(qs) == 1 && ldns_pkt_qdcount(up.get()) == 1 &&
               same_name(ldns_rr_owner(ldns_rr_list_rr(qs, 0)), qname.get()) &&
               ldns_rr_get_type(ldns_rr_list_rr(qs, 0)) == qtype &&
               ldns_rr_get_class(ldns_rr_list_rr(qs, 0)) == LDNS_RR_CLASS_IN;
    }
    if (check == QueryCore::Check::ok) {
        // Accepted: the header says ours, whatever ldns thinks of the rest.
        if (n < 12 || rd16(resp) != id || !(rd16(resp + 2) & kFlagQR)) abort();
        if (up && !ours) abort();  // ldns reads another question or ID
    }
    if (ours && check == QueryCore::Check::ignore) {
        ldns_pkt_rcode rc = ldns_pkt_get_rcode(up.get());
        // Only a question compressed in the response may be skipped (parse_query rejects those from clients;
        // check_upstream compares names after decompression, so even that must be accepted).
        if (!ldns_pkt_tc(up.get()) && (rc == LDNS_RCODE_NOERROR || rc == LDNS_RCODE_NXDOMAIN)) abort();
    }
    if (check != QueryCore::Check::ok) return 0;
    // F3 (open, docs/reliability.md): an OPT in the answer or authority section
    // (RFC 6891 §6.1.1: only in the additional one) is accepted; the cache then
    // strips it and miscounts the additional section (0 - 1 wraps to 65535).
    // AISID_FUZZ_STRICT=1 makes it a crash (reproducer in tests/fuzz/findings/).
    if (up) {
        bool opt_misplaced = false;
        for (ldns_rr_list *l : {ldns_pkt_answer(up.get()), ldns_pkt_authority(up.get())})
            for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); ++i)
                opt_misplaced |= ldns_rr_get_type(ldns_rr_list_rr(l, i)) == LDNS_RR_TYPE_OPT;
        if (opt_misplaced) {
            if (std::getenv("AISID_FUZZ_STRICT")) abort();
            return 0;
        }
    }

    static uint8_t out[65535];
    CoreResult r = core.answer_from_upstream(q, cq.data(), resp, n, tcp, now, out, sizeof out);
    if (r.verdict != Verdict::Answered && r.verdict != Verdict::Fail) abort();
    if (!up) return 0;
    if (r.verdict == Verdict::Answered) {
        // F2 (fixed in 8ea844e): RFC 2181 §8 says a TTL with the top bit set
        // is 0, for the client too.
        PktPtr direct = parse(out, r.len);
        ldns_rr_list *l = direct ? ldns_pkt_answer(direct.get()) : nullptr;
        for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); ++i)
            if (ldns_rr_ttl(ldns_rr_list_rr(l, i)) & 0x80000000u) abort();
    }

    // Bailiwick: nothing else the answer carries comes out of the cache.
    ldns_pkt_section secs[] = {LDNS_SECTION_ANSWER, LDNS_SECTION_AUTHORITY, LDNS_SECTION_ADDITIONAL};
    for (ldns_pkt_section s : secs) {
        ldns_rr_list *l = ldns_pkt_get_section_clone(up.get(), s);
        for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); ++i) {
            ldns_rr *rr = ldns_rr_list_rr(l, i);
            uint16_t t = uint16_t(ldns_rr_get_type(rr));
            if (t == 41) continue;
            const ldns_rdf *owner = ldns_rr_owner(rr);
            for (uint16_t ask : {t, uint16_t(1), uint16_t(28)}) {
                if (same_name(owner, qname.get()) && ask == qtype) continue;
                std::vector<uint8_t> other = client_query(owner, ask);
                Query oq;
                if (parse_query(other.data(), other.size(), oq) != ParseError::none) continue;
                static uint8_t o2[65535];
                CoreResult rr2 = core.handle(other.data(), other.size(), loopback(), false, now + 1000, o2, sizeof o2, oq);
                if (rr2.outcome == Outcome::cache_hit) abort();
            }
        }
        if (l) ldns_rr_list_deep_free(l);
    }

    // The cached answer, served back: the upstream's answer section, TTLs not raised.
    if (r.verdict != Verdict::Answered) return 0;
    // ldns does not always consume a record's whole rdata (HINFO with bytes
    // after its two strings): harmless at the end of a message, a parse error
    // once our OPT follows. Compare only when ldns reads the upstream's bytes
    // with an OPT after them too.
    {
        std::vector<uint8_t> withopt(resp, resp + n);
        wr16(withopt.data() + 10, uint16_t(rd16(resp + 10) + 1));
        for (uint8_t b : {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0}) withopt.push_back(uint8_t(b));
        if (!parse(withopt.data(), withopt.size())) return 0;
    }
    // Served at once (bytes as stored), then 2 s later (TTLs counted down).
    auto serve = [&](uint64_t at, Outcome &o) {
        Query q2;
        static uint8_t o3[65535];
        CoreResult again = core.handle(cq.data(), cq.size(), loopback(), true, at, o3, sizeof o3, q2);
        o = again.outcome;
        PktPtr p = parse(o3, again.len);
        if (p && ldns_pkt_id(p.get()) != 0x1234) abort();
        return p;
    };
    Outcome o0, o2;
    PktPtr served = serve(now, o0);
    if (o0 != Outcome::cache_hit) return 0;  // TTL 0: expired at once
    if (!served) abort();
    PktPtr later = serve(now + 2000, o2);
    // F1 (docs/reliability.md, fixed in 8ea844e): a compression pointer into a
    // TTL field the cache rewrites made the answer unreadable once counted down.
    if (o2 == Outcome::cache_hit && !later) abort();
    ldns_rr_list *a = ldns_pkt_answer(up.get());
    ldns_rr_list *b = ldns_pkt_answer(served.get());
    if (ldns_rr_list_rr_count(a) != ldns_rr_list_rr_count(b)) abort();
    for (size_t i = 0; i < ldns_rr_list_rr_count(a); ++i) {
        ldns_rr *x = ldns_rr_list_rr(a, i), *y = ldns_rr_list_rr(b, i);
        uint32_t tx = ldns_rr_ttl(x), ty = ldns_rr_ttl(y);
        if (ty > tx) abort();
        ldns_rr *xc = ldns_rr_clone(x), *yc = ldns_rr_clone(y);
        ldns_rr_set_ttl(xc, 0);
        ldns_rr_set_ttl(yc, 0);
        int c = ldns_rr_compare(xc, yc);
        ldns_rr_free(xc);
        ldns_rr_free(yc);
        if (c != 0) abort();
    }
    return 0;
}
