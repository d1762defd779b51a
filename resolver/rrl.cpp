#include "aisid/resolver/rrl.hpp"

#include "aisid/resolver/query_wire.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace aisid::resolver {

namespace {

enum Category : uint8_t { kAnswer = 1, kNegative = 2, kError = 3 };

// A keyed hash of the bucket's key bytes, eight at a time, finished with
// MurmurHash3's fmix64: not predictable from outside without the seed.
uint64_t hash_key(const uint8_t *p, size_t n, uint64_t seed) {
    uint64_t h = seed ^ (uint64_t(n) * 0x9e3779b97f4a7c15ull);
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

uint64_t pack(uint32_t t, int64_t balance) { return (uint64_t{t} << 32) | uint32_t(int32_t(balance)); }

} // namespace

void RateLimiter::Free::operator()(uint64_t *p) const { std::free(p); }

RateLimiter::RateLimiter(size_t slots) {
    size_t n = 1024;
    while (n < slots && n < (size_t{1} << 26)) n <<= 1;
    words_.reset(static_cast<uint64_t *>(std::calloc(2 * n, sizeof(uint64_t))));
    if (!words_) throw std::bad_alloc();
    mask_ = n - 1;
    if (getrandom(&seed_, sizeof seed_, 0) != sizeof seed_) seed_ = 0xcbf29ce484222325ull ^ uint64_t(this);
}

RrlAction RateLimiter::check(const RrlSettings &s, const sockaddr_storage &peer, uint8_t *resp, size_t &len,
                             uint64_t now_ms, const uint8_t *service_key, size_t service_len) {
    if (!s.enabled() || len < kHeaderLen) return RrlAction::send;
    for (const Cidr &c : s.exempt)
        if (c.contains(peer)) return RrlAction::send;

    // The bucket's key: category, rcode, the client's network, and the
    // question (answers) or the zone (negative answers).
    const uint8_t rcode = resp[3] & 0x0f;
    const uint16_t qd = rd16(resp + 4), an = rd16(resp + 6), ns = rd16(resp + 8);
    const Category cat = rcode == kNoError && an > 0 ? kAnswer
                         : rcode == kNoError || rcode == kNxDomain ? kNegative
                                                                   : kError;
    uint8_t k[2 + 16 + 256 + 2];
    size_t kn = 0;
    k[kn++] = cat;
    k[kn++] = rcode;
    addr16(peer, k + kn);
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned bits = std::memcmp(k + kn, kMapped, 12) == 0 ? 96u + std::min<unsigned>(s.ipv4_prefix, 32)
                                                         : std::min<unsigned>(s.ipv6_prefix, 128);
    for (unsigned i = 0; i < 16; ++i) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        k[kn + i] = keep ? uint8_t(k[kn + i] & uint8_t(0xff << (8 - keep))) : 0;
    }
    kn += 16;
    // The question (name_from_wire lowercases it), and for a negative answer
    // the SOA owner in the authority section.
    WireReader r(resp, len, kHeaderLen);
    WireName qname, zone;
    const WireName *name = nullptr;
    uint16_t qtype = 0;
    size_t qend = kHeaderLen;
    if (qd >= 1 && r.name(qname)) {
        qtype = r.u16();
        r.u16();
        if (r.ok()) {
            name = &qname;
            qend = r.pos();
        }
    }
    if (cat == kNegative && name && ns > 0) {
        for (uint16_t i = 0; i < an && r.ok(); ++i) {
            r.skip_name();
            r.skip(8);
            r.skip(r.u16());
        }
        if (r.name(zone) && r.u16() == 6 /* SOA */) name = &zone;
    }
    const bool have_q = qend > kHeaderLen;
    if (cat == kAnswer && service_key && service_len && service_len <= 64) {
        k[kn++] = 0xff;  // never the first byte of a name (a label length is at most 63)
        std::memcpy(k + kn, service_key, service_len);
        kn += service_len;
        k[kn++] = uint8_t(qtype >> 8);
        k[kn++] = uint8_t(qtype);
    } else if (cat != kError && name) {  // errors: one bucket per client network
        std::memcpy(k + kn, name->buf, name->len);
        kn += name->len;
        if (cat == kAnswer) {
            k[kn++] = uint8_t(qtype >> 8);
            k[kn++] = uint8_t(qtype);
        }
    }
    const uint64_t key = hash_key(k, kn, seed_);
    const uint64_t tag = key >> 16;
    uint64_t *const slot_words = words_.get() + 2 * (key & mask_);
    static_assert(std::atomic_ref<uint64_t>::required_alignment <= alignof(uint64_t));
    std::atomic_ref<uint64_t> slot_tag(slot_words[0]);
    std::atomic_ref<uint64_t> slot_state(slot_words[1]);

    const uint32_t rate = cat == kError && s.errors_per_second ? s.errors_per_second : s.responses_per_second;
    const int64_t cap = int64_t(rate) * 1000;
    const int64_t floor = -int64_t(std::min(s.window, kRrlMaxWindow)) * cap;
    const uint32_t now32 = uint32_t(now_ms);

    uint64_t w = slot_tag.load(std::memory_order_acquire);
    if ((w >> 16) != tag) {
        // A new bucket (or another key's slot): one thread claims it, and it
        // starts full with this reply paid. A thread that loses the claim to
        // the same key goes on to count against it; one that sees a third key
        // take the slot sends uncounted (laxer, never stricter).
        if (slot_tag.compare_exchange_strong(w, tag << 16, std::memory_order_acq_rel)) {
            slot_state.store(pack(now32, cap - 1000), std::memory_order_release);
            return RrlAction::send;
        }
        if ((w >> 16) != tag) return RrlAction::send;
    }
    bool limited = false;
    uint64_t st = slot_state.load(std::memory_order_acquire);
    for (;;) {
        uint32_t t = uint32_t(st >> 32);
        int64_t bal = int32_t(uint32_t(st));
        int32_t el = int32_t(now32 - t);  // workers' clocks may be read a little apart: never backwards
        uint32_t tnew = el > 0 ? now32 : t;
        int64_t b = el > 0 ? std::min(cap, bal + int64_t(el) * rate) : bal;
        limited = b < 1000;
        uint64_t next = pack(tnew, std::max(floor, b - 1000));
        if (slot_state.compare_exchange_weak(st, next, std::memory_order_relaxed)) break;
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
        if (slot_tag.compare_exchange_weak(w, (w & ~uint64_t{0xffff}) | (cnt & 0xffff), std::memory_order_relaxed))
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
