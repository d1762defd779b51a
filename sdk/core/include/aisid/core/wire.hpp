// DNS message wire format (RFC 1035 §4.1): a bounds-checked reader and
// writer, and the name and record walk every part of aisid uses on messages
// (the query core's hot path, TSIG, the transports). No allocation; every read
// is checked against the end of the message. Off the hot path (zones, UPDATE,
// transfers) ldns parses.
#pragma once

#include "aisid/core/dname.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace aisid {

inline constexpr size_t kWireNpos = size_t(-1);

/// How strictly a compression pointer is checked when a name is skipped (the
/// pointer is never followed). `any`: as ldns and the query core read
/// messages. `backward`: RFC 1035 §4.1.4 to the letter, a pointer to a prior
/// occurrence of a name; one into the header, to the name itself or past it is
/// refused - for code that moves bytes or changes counts after the name.
enum class WirePointers { any, backward };

/// Offset just past the (possibly compressed) name at `o` in `msg`, or
/// kWireNpos; a name has at most 127 labels.
inline size_t wire_skip_name(const uint8_t *msg, size_t len, size_t o, WirePointers ptrs = WirePointers::any) {
    const size_t start = o;
    for (int labels = 0; labels < 128; ++labels) {
        if (o >= len) return kWireNpos;
        uint8_t l = msg[o];
        if (l == 0) return o + 1;
        if ((l & 0xc0) == 0xc0) {
            if (o + 2 > len) return kWireNpos;
            if (ptrs == WirePointers::any) return o + 2;
            size_t target = size_t(l & 0x3f) << 8 | msg[o + 1];
            return target >= 12 && target < start ? o + 2 : kWireNpos;
        }
        if (l & 0xc0) return kWireNpos;
        o += 1 + l;
    }
    return kWireNpos;
}

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

class WireReader {
public:
    WireReader(const uint8_t *msg, size_t len, size_t pos = 0) : m_(msg), n_(len), pos_(pos) {}
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
    // Skips a (possibly compressed) name without decoding it (wire_skip_name's rules).
    void skip_name() {
        if (!ok_) return;
        size_t e = wire_skip_name(m_, n_, pos_);
        if (e == kWireNpos) ok_ = false;
        else pos_ = e;
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

class WireWriter {
public:
    WireWriter(uint8_t *buf, size_t cap) : b_(buf), cap_(cap) {}
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

/// One resource record's place in a message.
struct WireRr {
    size_t start, type_at, rdata_at, end;
    uint16_t type;
};

/// Walks the questions and the records of a message; calls f(section, rr)
/// for each record (section 1 answer, 2 authority, 3 additional) and stops
/// with false when f does or the message is malformed. `end_out` gets the
/// offset after the last record.
template <class F>
bool wire_walk(const uint8_t *w, size_t len, size_t *end_out, F &&f, WirePointers ptrs = WirePointers::any) {
    if (len < kHeaderLen) return false;
    size_t o = kHeaderLen;
    for (unsigned i = 0, n = rd16(w + 4); i < n; ++i) {
        o = wire_skip_name(w, len, o, ptrs);
        if (o == kWireNpos || o + 4 > len) return false;
        o += 4;
    }
    for (int s = 1; s <= 3; ++s) {
        for (unsigned i = 0, n = rd16(w + 4 + 2 * s); i < n; ++i) {
            WireRr rr{};
            rr.start = o;
            o = wire_skip_name(w, len, o, ptrs);
            if (o == kWireNpos || o + 10 > len) return false;
            rr.type_at = o;
            rr.type = rd16(w + o);
            size_t rdlen = rd16(w + o + 8);
            rr.rdata_at = o + 10;
            rr.end = rr.rdata_at + rdlen;
            if (rr.end > len) return false;
            if (!f(s, rr)) return false;
            o = rr.end;
        }
    }
    if (end_out) *end_out = o;
    return true;
}

} // namespace aisid
