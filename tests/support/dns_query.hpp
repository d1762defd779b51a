// DNS query messages built by hand for tests (malformed variants are made by
// editing these bytes): one place for the wire name and the query builder.
#pragma once

#include <cstdint>
#include <string>

namespace aisid::test {

/// "a.example" → "\1a\7example\0" (no escapes, no validation: tests only).
inline std::string wire_name(const std::string &name) {
    std::string o;
    size_t s = 0;
    while (s < name.size()) {
        size_t d = name.find('.', s);
        if (d == std::string::npos) d = name.size();
        o += char(d - s);  // an empty label stays: tests build malformed names too
        o += name.substr(s, d - s);
        s = d + 1;
    }
    o += '\0';
    return o;
}

/// A query for (name, type, IN); with EDNS an OPT of `bufsize` (DO bit as asked).
inline std::string build_query(uint16_t id, const std::string &name, uint16_t type, bool edns = true,
                               uint16_t flags = 0x0100, uint16_t bufsize = 1232, bool do_bit = false) {
    std::string m;
    auto u16 = [&](uint16_t v) {
        m += char(v >> 8);
        m += char(v & 0xff);
    };
    u16(id);
    u16(flags);
    u16(1);
    u16(0);
    u16(0);
    u16(edns ? 1 : 0);
    m += wire_name(name);
    u16(type);
    u16(1);
    if (edns) {
        m += '\0';
        u16(41);
        u16(bufsize);
        u16(0);
        u16(do_bit ? 0x8000 : 0);
        u16(0);
    }
    return m;
}

} // namespace aisid::test
