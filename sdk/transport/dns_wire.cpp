// The few DNS wire operations the transports need: pad a query, strip our
// OPT, cap TTLs, compare questions, over the shared message walk
// (aisid/core/wire.hpp). A malformed message is an error, never a read past its end.
#include <cctype>
#include <cstring>

#include "aisid/core/wire.hpp"
#include "aisid/transport/transport.hpp"
#include "transport_internal.hpp"

namespace aisid::transport {

namespace {

constexpr uint16_t kTypeOpt = 41;
constexpr uint16_t kTypeTsig = 250;
constexpr uint16_t kTypeSig = 24;
constexpr uint16_t kOptPadding = 12;  // RFC 7830 §3
constexpr uint16_t kEdnsUdpSize = 1232;

uint16_t rd16(std::span<const uint8_t> w, size_t o) { return aisid::rd16(w.data() + o); }

// Names here are skipped in messages whose bytes or counts we then change:
// only backward pointers (RFC 1035 §4.1.4) are taken.
size_t skip_name(std::span<const uint8_t> w, size_t o) {
    return wire_skip_name(w.data(), w.size(), o, WirePointers::backward);
}

using Rr = WireRr;

template <class F> bool walk(std::span<const uint8_t> w, size_t *end_out, F &&f) {
    return wire_walk(w.data(), w.size(), end_out, std::forward<F>(f), WirePointers::backward);
}

} // namespace

Expected<std::vector<uint8_t>, std::string> pad_query(std::span<const uint8_t> q, size_t block, bool &added_opt) {
    added_opt = false;
    std::optional<Rr> opt;
    bool has_padding = false, signed_msg = false;
    size_t end = 0;
    bool ok = walk(q, &end, [&](int s, const Rr &rr) {
        if (rr.type == kTypeOpt) {
            // RFC 6891 §6.1.1: one OPT, in the additional section.
            if (s != 3 || opt) return false;
            opt = rr;
            // Options: code(2) len(2) data, filling the RDATA exactly (RFC
            // 6891 §6.1.2); otherwise a padding option could hide past the end.
            size_t o = rr.rdata_at;
            while (o + 4 <= rr.end) {
                uint16_t code = rd16(q, o), len = rd16(q, o + 2);
                if (code == kOptPadding) has_padding = true;
                o += 4 + len;
            }
            if (o != rr.end) return false;
        }
        if (s == 3 && (rr.type == kTypeTsig || rr.type == kTypeSig)) signed_msg = true;
        return true;
    });
    if (!ok) return unexpected(std::string("malformed DNS query"));
    if (end != q.size()) return unexpected(std::string("trailing bytes after the DNS query"));
    std::vector<uint8_t> out(q.begin(), q.end());
    // A signed message must go out byte for byte; a padded one already is.
    if (has_padding || signed_msg || block == 0) return out;
    size_t grown = q.size() + 4 + (opt ? 0 : 11);
    size_t pad = (block - grown % block) % block;
    std::vector<uint8_t> option(4 + pad, 0);
    wr16(option.data(), kOptPadding);
    wr16(option.data() + 2, uint16_t(pad));
    if (opt) {
        // Append the option at the end of the existing OPT RDATA. Only when
        // the OPT is the last RR: a name after it may point past it, to bytes
        // the option would move.
        if (opt->end != end) return out;
        size_t rdlen = opt->end - opt->rdata_at;
        if (rdlen + option.size() > 0xffff) return out;
        out.insert(out.begin() + std::ptrdiff_t(opt->end), option.begin(), option.end());
        wr16(out.data() + opt->type_at + 8, uint16_t(rdlen + option.size()));
    } else {
        // RFC 6891 §6.1.2: root owner, TYPE 41, CLASS = UDP payload size,
        // TTL = extended RCODE/version/flags (all 0), then the RDATA.
        uint8_t rr[11] = {0, 0, kTypeOpt, 0, 0, 0, 0, 0, 0, 0, 0};
        wr16(rr + 3, kEdnsUdpSize);
        wr16(rr + 9, uint16_t(option.size()));
        out.insert(out.end(), rr, rr + 11);
        out.insert(out.end(), option.begin(), option.end());
        wr16(out.data() + 10, uint16_t(rd16(q, 10) + 1));
        added_opt = true;
    }
    return out;
}

bool strip_opt(std::vector<uint8_t> &w) {
    std::optional<Rr> opt;
    size_t end = 0;
    if (!walk(w, &end, [&](int s, const Rr &rr) {
            if (rr.type != kTypeOpt) return true;
            if (s != 3 || opt) return false; // RFC 6891 §6.1.1: one, in the additional section
            opt = rr;
            return true;
        }))
        return false;
    if (!opt) return true;
    // What follows the OPT (a TSIG, trailing bytes) may point into it or past
    // it, to bytes the erase would move: only a last OPT is taken out.
    if (opt->end != end || end != w.size()) return false;
    w.erase(w.begin() + std::ptrdiff_t(opt->start), w.begin() + std::ptrdiff_t(opt->end));
    wr16(w.data() + 10, uint16_t(rd16(w, 10) - 1));
    return true;
}

bool cap_ttls(std::vector<uint8_t> &w, uint32_t cap) {
    std::vector<size_t> at;
    if (!walk(w, nullptr, [&](int s, const Rr &rr) {
            // RFC 6891 §6.1.1: only an OPT in the additional section is a
            // pseudo-RR whose TTL field holds flags; anywhere else its TTL is
            // one (and a cache may keep it), so it is capped too.
            if (!(s == 3 && rr.type == kTypeOpt)) at.push_back(rr.type_at + 4);
            return true;
        }))
        return false;
    for (size_t o : at) {
        uint32_t ttl = uint32_t(w[o]) << 24 | uint32_t(w[o + 1]) << 16 | uint32_t(w[o + 2]) << 8 | w[o + 3];
        if (ttl > cap) {
            w[o] = uint8_t(cap >> 24);
            w[o + 1] = uint8_t(cap >> 16);
            w[o + 2] = uint8_t(cap >> 8);
            w[o + 3] = uint8_t(cap);
        }
    }
    return true;
}

bool same_question(std::span<const uint8_t> q, std::span<const uint8_t> r) {
    if (q.size() < 12 || r.size() < 12) return false;
    if (rd16(q, 4) != 1 || rd16(r, 4) != 1) return false;
    size_t qe = skip_name(q, 12), re = skip_name(r, 12);
    if (qe == npos || re == npos || qe != re || qe + 4 > q.size() || re + 4 > r.size()) return false;
    for (size_t i = 12; i < qe; ++i)
        if (std::tolower(q[i]) != std::tolower(r[i])) return false;
    return std::memcmp(q.data() + qe, r.data() + re, 4) == 0;
}

bool check_query(std::span<const uint8_t> q) {
    // RFC 8484 §4.1 and RFC 7858: one question, QR clear, fits a 16-bit length.
    return q.size() >= 12 && q.size() <= 65535 && (q[2] & 0x80) == 0 && rd16(q, 4) == 1 &&
           skip_name(q, 12) != npos;
}

} // namespace aisid::transport
