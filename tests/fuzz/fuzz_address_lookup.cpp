// The SDK's encrypted legacy path reads an upstream's answer to its A and
// AAAA queries by hand (sdk/transport/address_lookup.cpp read_answer); these
// bytes come from a DoT or DoH server. Checked against ldns:
//  - nothing reads out of bounds (ASan) and nothing aborts;
//  - whenever ldns reads the message, read_answer does too, with ldns's RCODE,
//    exactly the distinct A (as ::ffff:a.b.c.d) and AAAA addresses of ldns's
//    answer section, in order, and the smallest TTL over its A, AAAA and
//    CNAME records, a TTL with the top bit set counting as 0 (RFC 2181 §8);
//  - build_query: a name it accepts gives a query ldns reads back with that
//    name, the type asked and RD set.
// Input: the message; build_query gets the same bytes as a name.
#include "aisid/transport/address_lookup.hpp"

#include "ldns_parse.hpp"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace aisid::transport;
using aisid::fuzz::ldns_parse;
using aisid::fuzz::PktPtr;

namespace {

// A broken property aborts with its line, so a crash names what broke.
#define require(ok) ((ok) ? void(0) : (std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #ok), std::abort()))

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int rcode = -1;
    std::vector<in6_addr> addrs;
    int64_t ttl = -1;
    bool ok = read_answer({data, size}, rcode, addrs, ttl);
    if (PktPtr p = ldns_parse(data, size)) {
        require(ok);
        require(rcode == (ldns_pkt_get_rcode(p.get()) & 0x0f));
        std::vector<in6_addr> want;
        int64_t want_ttl = -1;
        ldns_rr_list *an = ldns_pkt_answer(p.get());
        for (size_t i = 0; i < ldns_rr_list_rr_count(an); ++i) {
            ldns_rr *rr = ldns_rr_list_rr(an, i);
            ldns_rr_type t = ldns_rr_get_type(rr);
            if (t != LDNS_RR_TYPE_A && t != LDNS_RR_TYPE_AAAA && t != LDNS_RR_TYPE_CNAME) continue;
            // An A or AAAA record with RDATA of another size is no address
            // (ldns keeps an empty one): it is skipped, its TTL too.
            int64_t rt = ldns_rr_ttl(rr) & 0x80000000u ? 0 : ldns_rr_ttl(rr);
            const ldns_rdf *rd = ldns_rr_rd_count(rr) == 1 ? ldns_rr_rdf(rr, 0) : nullptr;
            in6_addr x{};
            if (t == LDNS_RR_TYPE_CNAME) {
                if (want_ttl < 0 || rt < want_ttl) want_ttl = rt;
                continue;
            } else if (t == LDNS_RR_TYPE_AAAA && rd && ldns_rdf_size(rd) == 16) {
                std::memcpy(&x, ldns_rdf_data(rd), 16);
            } else if (t == LDNS_RR_TYPE_A && rd && ldns_rdf_size(rd) == 4) {
                x.s6_addr[10] = x.s6_addr[11] = 0xff;
                std::memcpy(&x.s6_addr[12], ldns_rdf_data(rd), 4);
            } else {
                continue;
            }
            if (want_ttl < 0 || rt < want_ttl) want_ttl = rt;
            bool seen = false;
            for (const in6_addr &y : want) seen |= std::memcmp(&x, &y, 16) == 0;
            if (!seen) want.push_back(x);
        }
        require(ttl == want_ttl);
        require(addrs.size() == want.size());
        for (size_t i = 0; i < want.size(); ++i) require(std::memcmp(&addrs[i], &want[i], 16) == 0);
    }

    std::string name(reinterpret_cast<const char *>(data), size < 300 ? size : 300);
    for (uint16_t qtype : {uint16_t(1), uint16_t(28)}) {
        auto q = build_query(name, qtype, 0x1234);
        if (!q) continue;
        PktPtr p = ldns_parse(q->data(), q->size());
        require(p && ldns_pkt_rd(p.get()) && ldns_pkt_id(p.get()) == 0x1234 && ldns_pkt_qdcount(p.get()) == 1);
        ldns_rr *qr = ldns_rr_list_rr(ldns_pkt_question(p.get()), 0);
        require(ldns_rr_get_type(qr) == qtype && ldns_rr_get_class(qr) == LDNS_RR_CLASS_IN);
        // The name, as ldns prints it, is the text given (labels' special
        // characters aside, which ldns escapes).
        char *txt = ldns_rdf2str(ldns_rr_owner(qr));
        require(txt != nullptr);
        std::string got(txt);
        free(txt);
        std::string want = name.back() == '.' ? name : name + ".";
        bool plain = true;
        for (char c : name) plain &= std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
        if (plain) require(got == want);
    }
    return 0;
}
