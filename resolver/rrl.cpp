#include "rrl.hpp"

#include "wire.hpp"

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

// ASCII upper case to lower in place, eight bytes at a time (SWAR; the
// last word partial). Label length bytes (at most 63) are never letters.
void fold_case(uint8_t *p, size_t n) {
    constexpr uint64_t k7f = 0x7f7f7f7f7f7f7f7full, k80 = 0x8080808080808080ull;
    while (n) {
        const size_t take = n < 8 ? n : 8;
        uint64_t w = 0;
        std::memcpy(&w, p, take);
        const uint64_t low7 = w & k7f;
        const uint64_t ge_a = low7 + 0x3f3f3f3f3f3f3f3full;  // bit 7 set where the byte is >= 'A'
        const uint64_t gt_z = low7 + 0x2525252525252525ull;  // bit 7 set where the byte is > 'Z'
        w |= ((ge_a ^ gt_z) & ~w & k80) >> 2;                // ASCII 'A'..'Z': + 0x20
        std::memcpy(p, &w, take);
        p += take;
        n -= take;
    }
}

// The name at `pos` in lowercase wire form, uncompressed, appended to out at
// o (at most 255 bytes); `pos` moves past the name. Compression pointers are
// followed (at most 32 hops). False when the name is malformed.
bool lower_name(const uint8_t *m, size_t n, size_t &pos, uint8_t *out, size_t &o_inout) {
    size_t p = pos, o = o_inout;  // locals: the compiler need not assume `out` aliases them
    const size_t limit = o + 254;  // labels and their lengths; the root byte after
    bool jumped = false;
    for (int hops = 0;;) {
        if (p >= n) return false;
        const uint8_t l = m[p];
        if (l == 0) {
            out[o++] = 0;
            if (!jumped) pos = p + 1;
            fold_case(out + o_inout, o - o_inout);
            o_inout = o;
            return true;
        }
        if ((l & 0xc0) == 0xc0) {
            if (p + 1 >= n || ++hops > 32) return false;
            if (!jumped) pos = p + 2;
            jumped = true;
            p = size_t(l & 0x3f) << 8 | m[p + 1];
            continue;
        }
        if ((l & 0xc0) || p + 1 + l > n || o + 1 + l > limit) return false;
        std::memcpy(out + o, m + p, 1 + l);  // the length and the label; case folded at the end
        o += 1 + l;
        p += 1 + l;
    }
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
                             uint64_t now_ms) {
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
    size_t pos = kHeaderLen, qend = kHeaderLen;
    const size_t name_at = kn;
    bool have_q = false;
    if (qd >= 1 && lower_name(resp, len, pos, k, kn) && pos + 4 <= len) {
        have_q = true;
        k[kn++] = resp[pos];  // qtype
        k[kn++] = resp[pos + 1];
        pos += 4;
        qend = pos;
    } else {
        kn = name_at;
    }
    if (cat == kError) {
        kn = name_at;  // errors: one bucket per client network
    } else if (cat == kNegative && have_q) {
        kn = name_at;  // negative: the zone (the SOA owner) if there is one, else the name
        size_t q_kn = kn;
        bool zone = false;
        if (ns > 0) {
            Reader r(resp, len, pos);
            for (uint16_t i = 0; i < an && r.ok(); ++i) {
                r.skip_name();
                r.skip(8);
                r.skip(r.u16());
            }
            size_t at = r.pos();
            zone = r.ok() && lower_name(resp, len, at, k, kn) && at + 2 <= len && rd16(resp + at) == 6 /* SOA */;
        }
        if (!zone) {
            kn = q_kn;
            size_t at = kHeaderLen;
            lower_name(resp, len, at, k, kn);
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
