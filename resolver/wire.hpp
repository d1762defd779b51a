// A small bounds-checked reader and writer for DNS messages (RFC 1035 §4.1).
// The query hot path uses these instead of ldns: no allocation, and every read
// is checked against the end of the message. Off the hot path (zones) we use ldns.
#pragma once

#include "dname.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace aisid::resolver {

inline constexpr size_t kHeaderLen = 12;
inline constexpr uint16_t kFlagQR = 0x8000, kFlagAA = 0x0400, kFlagTC = 0x0200, kFlagRD = 0x0100,
                          kFlagRA = 0x0080, kFlagAD = 0x0020, kFlagCD = 0x0010;
enum Rcode : uint8_t { kNoError = 0, kFormErr = 1, kServFail = 2, kNxDomain = 3, kNotImp = 4, kRefused = 5,
                      kNotAuth = 9 };
enum Opcode : uint8_t { kOpQuery = 0, kOpNotify = 4, kOpUpdate = 5 };

inline uint16_t rd16(const uint8_t *p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t rd32(const uint8_t *p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void wr16(uint8_t *p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
inline void wr32(uint8_t *p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}

class Reader {
public:
    Reader(const uint8_t *msg, size_t len, size_t pos = 0) : m_(msg), n_(len), pos_(pos) {}
    bool ok() const { return ok_; }
    size_t pos() const { return pos_; }
    size_t left() const { return ok_ ? n_ - pos_ : 0; }
    uint8_t u8() {
        if (!need(1)) return 0;
        return m_[pos_++];
    }
    uint16_t u16() {
        if (!need(2)) return 0;
        uint16_t v = rd16(m_ + pos_);
        pos_ += 2;
        return v;
    }
    uint32_t u32() {
        if (!need(4)) return 0;
        uint32_t v = rd32(m_ + pos_);
        pos_ += 4;
        return v;
    }
    void skip(size_t k) {
        if (need(k)) pos_ += k;
    }
    bool name(WireName &out) {
        if (!ok_) return false;
        if (!name_from_wire(m_, n_, pos_, out)) ok_ = false;
        return ok_;
    }
    // Skips a (possibly compressed) name without decoding it.
    void skip_name() {
        while (ok_) {
            uint8_t l = u8();
            if (!ok_) return;
            if (l == 0) return;
            if ((l & 0xc0) == 0xc0) {
                u8();
                return;
            }
            if (l & 0xc0) {
                ok_ = false;
                return;
            }
            skip(l);
        }
    }

private:
    bool need(size_t k) {
        if (!ok_ || n_ - pos_ < k) ok_ = false;
        return ok_;
    }
    const uint8_t *m_;
    size_t n_, pos_;
    bool ok_ = true;
};

class Writer {
public:
    Writer(uint8_t *buf, size_t cap) : b_(buf), cap_(cap) {}
    bool ok() const { return ok_; }
    size_t size() const { return pos_; }
    uint8_t *data() { return b_; }
    void u8(uint8_t v) {
        if (need(1)) b_[pos_++] = v;
    }
    void u16(uint16_t v) {
        if (need(2)) {
            wr16(b_ + pos_, v);
            pos_ += 2;
        }
    }
    void u32(uint32_t v) {
        if (need(4)) {
            wr32(b_ + pos_, v);
            pos_ += 4;
        }
    }
    void bytes(const void *p, size_t k) {
        if (need(k)) {
            std::memcpy(b_ + pos_, p, k);
            pos_ += k;
        }
    }
    void bytes(std::string_view s) { bytes(s.data(), s.size()); }
    void ptr(size_t target) { u16(static_cast<uint16_t>(0xc000 | target)); }
    void patch16(size_t at, uint16_t v) {
        if (at + 2 <= pos_) wr16(b_ + at, v);
    }
    void truncate(size_t at) {
        if (at <= pos_) pos_ = at;
        ok_ = true;
    }

private:
    bool need(size_t k) {
        if (!ok_ || cap_ - pos_ < k) ok_ = false;
        return ok_;
    }
    uint8_t *b_;
    size_t cap_, pos_ = 0;
    bool ok_ = true;
};

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
