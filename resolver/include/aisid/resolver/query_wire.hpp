// The query core's view of a query message: parse_query reads what the core
// needs (header, question, EDNS, TSIG position) without allocation, over the
// shared wire reader (aisid/core/wire.hpp).
#pragma once

#include "aisid/core/wire.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace aisid::resolver {

/// A parsed query: what the core needs, without allocation.
struct Query {
    uint16_t id = 0;
    uint16_t flags = 0;
    uint8_t opcode = 0;
    WireName qname;
    uint16_t qtype = 0, qclass = 0;
    size_t question_end = 0;  // offset just after the question
    bool edns = false;
    bool do_bit = false;
    uint8_t edns_version = 0;
    uint16_t udp_size = 512;  // the client's advertised payload size (RFC 6891 §6.2.3)
    bool tsig = false;        // signed (RFC 8945): answered by the authority side, which signs back
    size_t tsig_at = 0;       // offset of the TSIG record (the last of the message)
    bool rd() const { return flags & kFlagRD; }
    bool cd() const { return flags & kFlagCD; }
};

enum class ParseError { none, drop, formerr, badvers, notimp };

/// Parses a query message. `drop` for what must not be answered (a response,
/// shorter than a header); `formerr` when a FORMERR can be sent (the header
/// was readable; `q.id`/`q.flags`/`q.opcode` are set); `notimp` for an opcode
/// we do not implement (RFC 8906 §3.1.4), whatever the rest of the message.
ParseError parse_query(const uint8_t *msg, size_t len, Query &q);

} // namespace aisid::resolver
