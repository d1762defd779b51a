#include "aisid/core/rdata_text.hpp"

#include "aisid/core/dname.hpp"

#include <ldns/ldns.h>

#include <memory>

namespace aisid {

std::string rdata_to_text(uint16_t type, std::string_view rdata) {
    // Wrap the rdata in a whole record (root owner) so ldns can parse it.
    std::string wire;
    wire.push_back(0);
    wire.push_back(static_cast<char>(type >> 8));
    wire.push_back(static_cast<char>(type));
    wire.append("\x00\x01\x00\x00\x00\x00", 6);
    wire.push_back(static_cast<char>(rdata.size() >> 8));
    wire.push_back(static_cast<char>(rdata.size()));
    wire.append(rdata);
    ldns_rr *rr = nullptr;
    size_t pos = 0;
    if (ldns_wire2rr(&rr, reinterpret_cast<const uint8_t *>(wire.data()), wire.size(), &pos,
                     LDNS_SECTION_ANSWER) != LDNS_STATUS_OK)
        return "\\# " + std::to_string(rdata.size());
    std::unique_ptr<ldns_rr, void (*)(ldns_rr *)> owned(rr, ldns_rr_free);
    std::string out;
    for (size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
        char *s = ldns_rdf2str(ldns_rr_rdf(rr, i));
        if (!s) continue;
        if (!out.empty()) out += ' ';
        out += s;
        free(s);
    }
    return out;
}

bool parse_svcb(std::string_view r, SvcbEndpoint &out) {
    if (r.size() < 3) return false;
    out.priority = static_cast<uint16_t>((static_cast<uint8_t>(r[0]) << 8) | static_cast<uint8_t>(r[1]));
    size_t pos = 2;
    WireName n;
    if (!name_from_wire(reinterpret_cast<const uint8_t *>(r.data()), r.size(), pos, n)) return false;
    out.target = name_to_text(n.wire());
    out.port = 0;
    // SvcParams: key(2) length(2) value; key 3 is "port" (RFC 9460 §7.2).
    while (pos + 4 <= r.size()) {
        uint16_t key = static_cast<uint16_t>((static_cast<uint8_t>(r[pos]) << 8) | static_cast<uint8_t>(r[pos + 1]));
        uint16_t len = static_cast<uint16_t>((static_cast<uint8_t>(r[pos + 2]) << 8) | static_cast<uint8_t>(r[pos + 3]));
        pos += 4;
        if (pos + len > r.size()) return false;
        if (key == 3 && len == 2)
            out.port = static_cast<uint16_t>((static_cast<uint8_t>(r[pos]) << 8) | static_cast<uint8_t>(r[pos + 1]));
        pos += len;
    }
    return pos == r.size();
}

} // namespace aisid
