// DNS messages built by hand for tests (malformed variants are made by
// editing these bytes): the one name-to-wire helper, the query builder, and
// the header fields read back.
#pragma once

#include <cstdint>
#include <string>

namespace aisid::test {

inline std::string be16(uint16_t v) { return {char(v >> 8), char(v & 0xff)}; }
inline std::string be32(uint32_t v) { return be16(uint16_t(v >> 16)) + be16(uint16_t(v)); }

/// "a.example" or "a.example." → "\1a\7example\0"; "" and "." → "\0" (the
/// root). No escapes and no validation (tests only): an empty label inside
/// ("a..b") stays, tests build malformed names too.
inline std::string wire_name(const std::string &name) {
    std::string o;
    size_t s = 0;
    const size_t end = name == "." ? 0 : name.size();
    while (s < end) {
        size_t d = name.find('.', s);
        if (d == std::string::npos) d = end;
        o += char(d - s);
        o += name.substr(s, d - s);
        s = d + 1;
    }
    o += '\0';
    return o;
}

/// A query for (name, type, IN); with EDNS an OPT of `bufsize` (DO bit as asked).
inline std::string build_query(uint16_t id, const std::string &name, uint16_t type, bool edns = true,
                               uint16_t flags = 0x0100, uint16_t bufsize = 1232, bool do_bit = false) {
    std::string m = be16(id) + be16(flags) + be16(1) + be16(0) + be16(0) + be16(edns ? 1 : 0);
    m += wire_name(name) + be16(type) + be16(1);
    if (edns) m += std::string(1, '\0') + be16(41) + be16(bufsize) + be16(0) + be16(do_bit ? 0x8000 : 0) + be16(0);
    return m;
}

/// build_query without EDNS unless asked, flags before it: what dig cannot send.
inline std::string raw_query(uint16_t id, const std::string &name, uint16_t type, uint16_t flags = 0x0100,
                             bool edns = false) {
    return build_query(id, name, type, edns, flags);
}

// Header fields of a message (std::string or std::vector<uint8_t>).
template <class Bytes> uint16_t msg_id(const Bytes &m) {
    return m.size() >= 2 ? uint16_t((uint8_t(m[0]) << 8) | uint8_t(m[1])) : 0;
}
template <class Bytes> int msg_rcode(const Bytes &m) { return m.size() >= 4 ? (uint8_t(m[3]) & 0xf) : -1; }
/// The count of section 0..3 (question, answer, authority, additional); 0 when too short.
template <class Bytes> uint16_t msg_count(const Bytes &m, int section) {
    return m.size() >= 12 ? uint16_t((uint8_t(m[4 + 2 * section]) << 8) | uint8_t(m[5 + 2 * section])) : 0;
}
/// ANCOUNT; -1 when too short.
template <class Bytes> int msg_ancount(const Bytes &m) {
    return m.size() >= 8 ? ((uint8_t(m[6]) << 8) | uint8_t(m[7])) : -1;
}

} // namespace aisid::test
