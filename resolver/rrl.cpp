#include "rrl.hpp"

#include "wire.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cstring>

namespace aisid::resolver {

namespace {

enum Category : uint8_t { kAnswer = 1, kNegative = 2, kError = 3 };

// FNV-1a from a secret starting point, then a 64-bit finalizer (MurmurHash3's
// fmix64): cheap on short keys, and not predictable from outside without the seed.
struct Hasher {
    uint64_t h;
    void byte(uint8_t b) { h = (h ^ b) * 0x100000001b3ull; }
    void bytes(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; ++i) byte(p[i]);
    }
    uint64_t finish() const {
        uint64_t x = h;
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ull;
        x ^= x >> 33;
        return x;
    }
};

uint64_t pack(uint32_t t, int64_t balance) { return (uint64_t{t} << 32) | uint32_t(int32_t(balance)); }

} // namespace

RateLimiter::RateLimiter(size_t slots) {
    size_t n = 1024;
    while (n < slots && n < (size_t{1} << 26)) n <<= 1;
    slots_ = std::make_unique<Slot[]>(n);
    mask_ = n - 1;
    if (getrandom(&seed_, sizeof seed_, 0) != sizeof seed_) seed_ = 0xcbf29ce484222325ull ^ uint64_t(this);
}

RrlAction RateLimiter::check(const RrlSettings &s, const sockaddr_storage &peer, uint8_t *resp, size_t &len,
                             uint64_t now_ms) {
    if (!s.enabled() || len < kHeaderLen) return RrlAction::send;
    for (const Cidr &c : s.exempt)
        if (c.contains(peer)) return RrlAction::send;

    // What the reply is: its rcode, question and (negative) zone.
    const uint8_t rcode = resp[3] & 0x0f;
    const uint16_t qd = rd16(resp + 4), an = rd16(resp + 6), ns = rd16(resp + 8);
    Reader r(resp, len, kHeaderLen);
    WireName qname, zone;
    uint16_t qtype = 0;
    size_t qend = kHeaderLen;
    bool have_q = false;
    if (qd >= 1 && r.name(qname)) {
        qtype = r.u16();
        r.u16();
        if (r.ok()) {
            have_q = true;
            qend = r.pos();
        }
    }
    Category cat = rcode == kNoError && an > 0 ? kAnswer
                   : rcode == kNoError || rcode == kNxDomain ? kNegative
                                                             : kError;
    const WireName *name = have_q ? &qname : nullptr;
    if (cat == kNegative && have_q && ns > 0) {
        for (uint16_t i = 0; i < an && r.ok(); ++i) {
            r.skip_name();
            r.skip(8);
            r.skip(r.u16());
        }
        if (r.ok() && r.name(zone) && r.u16() == 6 /* SOA */) name = &zone;
    }

    Hasher h{seed_};
    h.byte(cat);
    h.byte(rcode);
    uint8_t a[16];
    addr16(peer, a);
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned bits = std::memcmp(a, kMapped, 12) == 0 ? 96u + std::min<unsigned>(s.ipv4_prefix, 32)
                                                     : std::min<unsigned>(s.ipv6_prefix, 128);
    for (unsigned i = 0; i < 16; ++i) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        h.byte(keep ? uint8_t(a[i] & uint8_t(0xff << (8 - keep))) : 0);
    }
    if (cat != kError && name) {
        h.bytes(name->buf, name->len);
        if (cat == kAnswer) {
            h.byte(uint8_t(qtype >> 8));
            h.byte(uint8_t(qtype));
        }
    }
    const uint64_t key = h.finish();
    const uint64_t tag = key >> 16;
    Slot &slot = slots_[key & mask_];

    const uint32_t rate = cat == kError && s.errors_per_second ? s.errors_per_second : s.responses_per_second;
    const int64_t cap = int64_t(rate) * 1000;
    const int64_t floor = -int64_t(std::min(s.window, kRrlMaxWindow)) * cap;
    const uint32_t now32 = uint32_t(now_ms);

    uint64_t w = slot.tag.load(std::memory_order_relaxed);
    if ((w >> 16) != tag) {
        // A new bucket (or another key's): it starts full, this reply paid.
        slot.tag.store(tag << 16, std::memory_order_relaxed);
        slot.state.store(pack(now32, cap - 1000), std::memory_order_relaxed);
        return RrlAction::send;
    }
    bool limited = false;
    uint64_t st = slot.state.load(std::memory_order_relaxed);
    for (;;) {
        uint32_t t = uint32_t(st >> 32);
        int64_t bal = int32_t(uint32_t(st));
        int32_t el = int32_t(now32 - t);  // workers' clocks may be read a little apart: never backwards
        uint32_t tnew = el > 0 ? now32 : t;
        int64_t b = el > 0 ? std::min(cap, bal + int64_t(el) * rate) : bal;
        limited = b < 1000;
        uint64_t next = pack(tnew, std::max(floor, b - 1000));
        if (slot.state.compare_exchange_weak(st, next, std::memory_order_relaxed)) break;
    }
    if (!limited) return RrlAction::send;
    if (s.slip == 0) return RrlAction::drop;
    uint64_t cnt;
    for (;;) {
        if ((w >> 16) != tag) {  // the slot changed hands meanwhile
            cnt = 1;
            break;
        }
        cnt = (w & 0xffff) + 1;
        if (slot.tag.compare_exchange_weak(w, (w & ~uint64_t{0xffff}) | (cnt & 0xffff), std::memory_order_relaxed))
            break;
    }
    if (cnt % s.slip != 0) return RrlAction::drop;
    // Truncated: header and question only, TC set, NOERROR (a client must not
    // take a negative answer from it), no OPT.
    resp[2] |= 0x02;
    resp[3] &= 0xf0;
    if (!have_q) wr16(resp + 4, 0);
    std::memset(resp + 6, 0, 6);
    len = qend;
    return RrlAction::slip;
}

} // namespace aisid::resolver
