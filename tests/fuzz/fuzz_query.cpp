// aisidd's query core: bytes in → verdict and bytes out. The first byte picks
// the path (client query over UDP/TCP from an allowed or a refused peer, or
// the bytes as an upstream's answer to a fixed query); whatever the core
// writes must be a DNS message ldns can parse, with the client's ID, and fit
// the client's limit.
#include "aisid/resolver/query_core.hpp"
#include "aisid/resolver/rrl.hpp"
#include "aisid/core/zone_set.hpp"

#include <arpa/inet.h>
#include <ldns/ldns.h>

#include <cstdlib>
#include <cstring>
#include <string>

using namespace aisid;
using namespace aisid::resolver;

namespace {

const ZoneSet &zones() {
    static ZoneSet set = [] {
        ZoneSet s;
        auto z = load_zone_text(R"($ORIGIN ai.example.
$TTL 300
@ SOA ns admin 1 3600 600 86400 60
@ NS ns
ns AAAA 2001:db8:53::1
www CNAME ns
_aisid TXT "v=aisid1" "prefix=2001:db8:abcd:12::/64"
image._object TXT "code=1"
detection._function TXT "code=2"
yolo._method TXT "code=1"
yolo.detection.image AAAA 2001:db8:abcd:12:1:2:1:0
yolo.detection.image SVCB 1 yolo.provider.example. port=8443
big TXT "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
big TXT "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
big TXT "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
big TXT "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
big TXT "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
)",
                                "fuzz");
        if (!z) abort();
        s.add(*z);
        return s;
    }();
    return set;
}

sockaddr_storage peer(bool allowed) {
    sockaddr_storage ss{};
    auto &s4 = reinterpret_cast<sockaddr_in &>(ss);
    s4.sin_family = AF_INET;
    inet_pton(AF_INET, allowed ? "127.0.0.1" : "192.0.2.1", &s4.sin_addr);
    return ss;
}

void must_parse(const uint8_t *out, size_t len, uint16_t id, size_t limit) {
    if (len == 0) return;
    if (len > limit) abort();
    ldns_pkt *p = nullptr;
    if (ldns_wire2pkt(&p, out, len) != LDNS_STATUS_OK) abort();
    if (ldns_pkt_id(p) != id || !ldns_pkt_qr(p)) abort();
    ldns_pkt_free(p);
}

// The same for answers served again from the cache: ldns reads rdata by type
// and, for records whose rdata it misreads past their length, the TTLs we
// count down change what it sees; so these are held to the framing (every
// record within its length, the message ends where the last one does).
void must_frame(const uint8_t *out, size_t len, uint16_t id, size_t limit) {
    if (len == 0) return;
    if (len > limit || len < kHeaderLen || rd16(out) != id || !(rd16(out + 2) & kFlagQR)) abort();
    WireReader r(out, len, kHeaderLen);
    for (unsigned i = 0; i < rd16(out + 4); ++i) r.skip_name(), r.skip(4);
    unsigned total = unsigned(rd16(out + 6)) + rd16(out + 8) + rd16(out + 10);
    for (unsigned i = 0; i < total; ++i) {
        size_t at = r.pos();
        WireName owner;
        if (!name_from_wire(out, len, at, owner)) abort();
        r.skip_name();
        r.skip(8);
        r.skip(r.u16());
    }
    if (!r.ok() || r.left() != 0) abort();
}

// A fixed client query: www.legacy.example A, with EDNS.
const uint8_t kClientQuery[] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                                3,    'w',  'w',  'w',  6,    'l',  'e',  'g',  'a',  'c',  'y',  7,
                                'e',  'x',  'a',  'm',  'p',  'l',  'e',  0,    0x00, 0x01, 0x00, 0x01,
                                0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static Cache cache(1 << 20);
    static CoreSettings settings;
    static QueryCore core(cache, settings);
    core.set_zones(&zones());
    // Each input stands alone (reproducible crashes): an empty cache, a fixed clock.
    cache.clear();
    uint64_t now = 1000000;
    uint8_t mode = data[0];
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    static uint8_t out[65535];
    Query q;
    if (mode < 0xc0) {
        bool tcp = mode & 1, allowed = !(mode & 2);
        settings.has_authority = mode & 4;
        CoreResult r = core.handle(msg, len, peer(allowed), tcp, now, out, sizeof out, q);
        if (r.verdict == Verdict::Answered || r.verdict == Verdict::Fail) {
            uint16_t id = len >= 2 ? uint16_t((msg[0] << 8) | msg[1]) : 0;
            must_parse(out, r.len, id, tcp ? 65535 : 1232);
            // Response rate limiting reads the reply; at one reply a second
            // with slip 1 the second check of the same reply always slips it:
            // the truncated reply must parse too and keep the ID.
            static RateLimiter rl(1024);
            static const RrlSettings rs = [] {
                RrlSettings x;
                x.responses_per_second = 1;
                x.slip = 1;
                return x;
            }();
            static uint8_t cut[65535];
            for (int k = 0; k < 2 && r.len; ++k) {
                std::memcpy(cut, out, r.len);
                size_t n = r.len;
                RrlAction a = rl.check(rs, peer(allowed), cut, n, now);
                if (k == 1 && a != RrlAction::slip) abort();
                if (a == RrlAction::slip) {
                    if (n > r.len || !(cut[2] & 0x02)) abort();
                    must_parse(cut, n, id, tcp ? 65535 : 1232);
                }
            }
        } else if (r.verdict == Verdict::Pass && !r.to_authority) {
            size_t n = core.upstream_query(q, msg, 0xabcd, out, sizeof out);
            ldns_pkt *p = nullptr;
            if (!n || ldns_wire2pkt(&p, out, n) != LDNS_STATUS_OK) abort();
            ldns_pkt_free(p);
            CoreResult f = core.answer_failure(q, msg, tcp, now, out, sizeof out);
            must_parse(out, f.len, q.id, tcp ? 65535 : 1232);
        }
        return 0;
    }
    // The bytes as an upstream's answer to kClientQuery (ID 0xbeef expected).
    ParseError pe = parse_query(kClientQuery, sizeof kClientQuery, q);
    if (pe != ParseError::none) abort();
    bool tcp = mode & 1;
    // TTL caps (--cache-max-ttl): with bit 1 low ones, which rewrite TTLs in
    // the reply as the countdown does (so that reply is held to the framing,
    // below); without, none can apply and the reply is held to ldns' reading.
    const bool caps = mode & 2;
    settings.max_ttl = caps ? 300 : 0x7fffffff;
    settings.max_negative_ttl = caps ? 60 : 0x7fffffff;
    auto check = QueryCore::check_upstream(q, 0xbeef, msg, len);
    if (check == QueryCore::Check::ok) {
        CoreResult r = core.answer_from_upstream(q, kClientQuery, msg, len, tcp, now, out, sizeof out);
        // Differential: whatever ldns accepts from the upstream, it accepts from us.
        // ldns reads rdata by type and forgives a short or long last record, so
        // the upstream answer is also checked with one more record (an OPT) after it.
        auto accepts = [](const uint8_t *b, size_t n) {
            ldns_pkt *p = nullptr;
            bool ok = ldns_wire2pkt(&p, b, n) == LDNS_STATUS_OK;
            if (p) ldns_pkt_free(p);
            return ok;
        };
        std::string more(reinterpret_cast<const char *>(msg), len);
        uint16_t ar = uint16_t((uint8_t(more[10]) << 8 | uint8_t(more[11])) + 1);
        more[10] = char(ar >> 8);
        more[11] = char(ar);
        more.append("\0\0\x29\x04\xd0\0\0\0\0\0\0", 11);
        bool valid = accepts(msg, len) && accepts(reinterpret_cast<const uint8_t *>(more.data()), more.size());
        if (valid && !caps) must_parse(out, r.len, 0x1234, tcp ? 65535 : 1232);
        else if (valid) must_frame(out, r.len, 0x1234, tcp ? 65535 : 1232);
        // And again from the cache.
        r = core.handle(kClientQuery, sizeof kClientQuery, peer(true), tcp, now + 1500, out, sizeof out, q);
        if (r.verdict == Verdict::Answered) must_frame(out, r.len, 0x1234, tcp ? 65535 : 1232);
        // Later, every upstream down: the stale answer (or SERVFAIL).
        r = core.answer_failure(q, kClientQuery, !tcp, now + 400000, out, sizeof out);
        must_frame(out, r.len, 0x1234, !tcp ? 65535 : 1232);
    }
    return 0;
}
