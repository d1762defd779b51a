// The transports' DNS wire helpers (sdk/transport/dns_wire.cpp), checked
// against ldns. DoT/DoH pad every query we forward (a client's bytes, through
// aisidd) and strip the OPT we added from the upstream's answer, so both sides
// take untrusted bytes:
//  - nothing reads or writes out of bounds (ASan) and nothing aborts;
//  - a padded query is still the same message: when ldns reads the query it
//    reads the padded one, with the same header, sections and records, an OPT,
//    and a size that is a multiple of the block (RFC 8467 §4.1); padding twice
//    changes nothing;
//  - strip_opt removes exactly the OPT: ldns reads the rest unchanged;
//  - cap_ttls changes nothing but TTL fields, each to min(TTL, cap), and
//    leaves the OPT's flags alone;
//  - same_question holds between a message and itself with the name's case
//    changed, whenever the message has one question.
// Input: byte 0 picks the block size and the TTL cap; the rest is the message.
#include "aisid/transport/transport.hpp"

#include "ldns_parse.hpp"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

using namespace aisid::transport;
using aisid::fuzz::ldns_parse;
using aisid::fuzz::PktPtr;

namespace {

// A broken property aborts with its line, so a crash names what broke.
#define require(ok) ((ok) ? void(0) : (std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #ok), std::abort()))

bool same_list(ldns_rr_list *a, ldns_rr_list *b) {
    size_t n = ldns_rr_list_rr_count(a);
    if (n != ldns_rr_list_rr_count(b)) return false;
    for (size_t i = 0; i < n; ++i)
        if (ldns_rr_compare(ldns_rr_list_rr(a, i), ldns_rr_list_rr(b, i)) != 0) return false;
    return true;
}

// Header, sections and records equal; EDNS and TSIG aside.
bool same_records(ldns_pkt *a, ldns_pkt *b) {
    return ldns_pkt_id(a) == ldns_pkt_id(b) && ldns_pkt_qr(a) == ldns_pkt_qr(b) &&
           ldns_pkt_get_opcode(a) == ldns_pkt_get_opcode(b) && ldns_pkt_rd(a) == ldns_pkt_rd(b) &&
           same_list(ldns_pkt_question(a), ldns_pkt_question(b)) && same_list(ldns_pkt_answer(a), ldns_pkt_answer(b)) &&
           same_list(ldns_pkt_authority(a), ldns_pkt_authority(b)) &&
           same_list(ldns_pkt_additional(a), ldns_pkt_additional(b));
}

// The TTL fields of a message's RRs, with their section (0: none when the
// walk fails, as cap_ttls's does).
std::vector<std::pair<size_t, int>> ttl_fields(const std::vector<uint8_t> &m) {
    std::vector<std::pair<size_t, int>> out;
    if (m.size() < 12) return {};
    size_t o = 12;
    auto skip_name = [&]() -> bool {
        for (int i = 0; i < 128 && o < m.size(); ++i) {
            uint8_t l = m[o];
            if (l == 0) return ++o, true;
            if ((l & 0xc0) == 0xc0) return o += 2, o <= m.size();
            if (l & 0xc0) return false;
            o += 1 + l;
        }
        return false;
    };
    for (unsigned i = 0, qd = unsigned(m[4] << 8 | m[5]); i < qd; ++i)
        if (!skip_name() || (o += 4) > m.size()) return {};
    for (int s = 1; s <= 3; ++s)
        for (unsigned i = 0, n = unsigned(m[4 + 2 * s] << 8 | m[5 + 2 * s]); i < n; ++i) {
            if (!skip_name() || o + 10 > m.size()) return {};
            uint16_t type = uint16_t(m[o] << 8 | m[o + 1]);
            if (!(s == 3 && type == 41)) out.emplace_back(o + 4, s);
            o += 10 + size_t(m[o + 8] << 8 | m[o + 9]);
            if (o > m.size()) return {};
        }
    return out;
}

uint32_t rd32(const std::vector<uint8_t> &w, size_t o) {
    return uint32_t(w[o]) << 24 | uint32_t(w[o + 1]) << 16 | uint32_t(w[o + 2]) << 8 | w[o + 3];
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const size_t kBlocks[] = {128, 468, 0, 17};
    const size_t block = kBlocks[data[0] & 3];
    const uint32_t cap = uint32_t(data[0] >> 2) * 60;
    std::vector<uint8_t> m(data + 1, data + size);
    PktPtr in = ldns_parse(m.data(), m.size());

    (void)check_query(m);

    bool added = false;
    auto padded = pad_query(m, block, added);
    if (padded) {
        if (added) require(padded->size() > m.size());
        if (padded->size() != m.size() && block) require(padded->size() % block == 0);
        bool again = false;
        auto twice = pad_query(*padded, block, again);
        require(twice && !again && *twice == *padded);
        if (in) {
            PktPtr out = ldns_parse(padded->data(), padded->size());
            require(out && same_records(in.get(), out.get()));
            if (added) require(ldns_pkt_edns(out.get()) && ldns_pkt_edns_udp_size(out.get()) == 1232);
        }
        if (added) {
            // What the transport does to the answer: the query with our OPT
            // taken out again is the client's query, byte for byte.
            std::vector<uint8_t> back = *padded;
            require(strip_opt(back) && back == m);
        }
    }

    std::vector<uint8_t> w = m;
    if (strip_opt(w)) {
        require(w.size() <= m.size());
        if (in) {
            PktPtr out = ldns_parse(w.data(), w.size());
            require(out && same_records(in.get(), out.get()) && !ldns_pkt_edns(out.get()));
        }
    } else {
        require(w == m); // refused: untouched
    }

    w = m;
    if (cap_ttls(w, cap)) {
        // Byte for byte: only TTL fields change, each to min(TTL, cap). A name
        // read through a pointer into a TTL changes with it, which is why
        // ldns's records are not compared here: the upstream that sent the
        // answer could have sent that name outright.
        std::vector<uint8_t> want = m;
        for (auto [at, section] : ttl_fields(m))
            if (rd32(m, at) > cap)
                for (int k = 0; k < 4; ++k) want[at + size_t(k)] = uint8_t(cap >> (24 - 8 * k));
        require(w == want);
        if (PktPtr out = ldns_parse(w.data(), w.size()))
            for (ldns_rr_list *l : {ldns_pkt_answer(out.get()), ldns_pkt_authority(out.get())})
                for (size_t i = 0; i < ldns_rr_list_rr_count(l); ++i)
                    require(ldns_rr_ttl(ldns_rr_list_rr(l, i)) <= cap);
    } else {
        require(w == m);
    }

    if (m.size() >= 12 && m[4] == 0 && m[5] == 1 && check_query(m)) {
        std::vector<uint8_t> r = m;
        for (size_t i = 12; i < r.size() && r[i] && r[i] < 64; i += 1 + r[i])
            for (size_t k = i + 1; k <= i + r[i] && k < r.size(); ++k) r[k] = uint8_t(std::toupper(r[k]));
        require(same_question(m, r) == same_question(m, m));
    }
    return 0;
}
