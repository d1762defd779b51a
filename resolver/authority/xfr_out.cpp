#include "aisid/authority/xfr_out.hpp"

#include <algorithm>

namespace aisid::resolver {

using namespace proto;

namespace {

constexpr size_t kXfrMessageBudget = 16000;

size_t record_wire_size(const Record &r) { return r.owner.size() + 10 + r.rdata.size(); }

} // namespace

std::vector<Record> axfr_stream(const std::vector<Record> &zone) {
    std::vector<Record> s = zone;
    if (!zone.empty()) s.push_back(zone.front());
    return s;
}

std::vector<Record> ixfr_stream(const Record &cur_soa, const std::vector<const Diff *> &diffs) {
    std::vector<Record> s{cur_soa};
    for (const Diff *d : diffs) {
        s.insert(s.end(), d->del.begin(), d->del.end());
        s.insert(s.end(), d->add.begin(), d->add.end());
    }
    s.push_back(cur_soa);
    return s;
}

std::vector<std::string> pack_xfr(const ldns_pkt *query, const std::vector<Record> &stream, const TsigKey *key,
                                  const ldns_rdf *request_mac) {
    std::vector<std::string> out;
    LdnsRdfPtr prev;
    size_t i = 0;
    bool first = true;
    do {
        LdnsPktPtr p(ldns_pkt_new());
        ldns_pkt_set_id(p.get(), ldns_pkt_id(query));
        ldns_pkt_set_qr(p.get(), true);
        ldns_pkt_set_aa(p.get(), true);
        ldns_pkt_set_opcode(p.get(), LDNS_PACKET_QUERY);
        ldns_pkt_set_rcode(p.get(), LDNS_RCODE_NOERROR);
        if (first && ldns_pkt_qdcount(query) > 0) {
            ldns_pkt_push_rr(p.get(), LDNS_SECTION_QUESTION,
                             ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(query), 0)));
        }
        size_t used = 12 + 300;
        bool any = false;
        while (i < stream.size()) {
            size_t sz = record_wire_size(stream[i]);
            if (any && used + sz > kXfrMessageBudget) break;
            LdnsRrPtr rr = record_to_ldns(stream[i]);
            ++i;
            if (!rr) continue;
            ldns_pkt_push_rr(p.get(), LDNS_SECTION_ANSWER, rr.release());
            used += sz;
            any = true;
        }
        std::string wire;
        if (key) {
            LdnsRdfPtr mac;
            if (!tsig_sign_pkt(p.get(), *key, first ? request_mac : prev.get(), !first, wire, &mac)) return {};
            prev = std::move(mac);
        } else {
            uint8_t *buf = nullptr;
            size_t n = 0;
            if (ldns_pkt2wire(&buf, p.get(), &n) != LDNS_STATUS_OK) return {};
            wire.assign(reinterpret_cast<const char *>(buf), n);
            free(buf);
        }
        out.push_back(std::move(wire));
        first = false;
    } while (i < stream.size());
    return out;
}

} // namespace aisid::resolver
