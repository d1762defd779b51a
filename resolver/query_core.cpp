#include "aisid/resolver/query_core.hpp"

#include <ldns/ldns.h>

#include <algorithm>
#include <bitset>
#include <cstring>
#include <string>

namespace aisid::resolver {

const char *outcome_name(Outcome o) {
    switch (o) {
    case Outcome::aisid: return "aisid";
    case Outcome::aisid_nxdomain: return "aisid_nxdomain";
    case Outcome::cache_hit: return "cache_hit";
    case Outcome::forwarded: return "forwarded";
    case Outcome::stale: return "stale";
    case Outcome::servfail: return "servfail";
    case Outcome::refused: return "refused";
    case Outcome::formerr: return "formerr";
    case Outcome::notimp: return "notimp";
    case Outcome::authority: return "authority";
    case Outcome::dropped: return "dropped";
    case Outcome::count_: break;
    }
    return "?";
}

ParseError parse_query(const uint8_t *msg, size_t len, Query &q) {
    if (len < kHeaderLen) return ParseError::drop;
    q = Query{};
    q.id = rd16(msg);
    q.flags = rd16(msg + 2);
    q.opcode = static_cast<uint8_t>((q.flags >> 11) & 0xf);
    if (q.flags & kFlagQR) return ParseError::drop;  // never answer a response (reflection loops)
    // IQUERY, STATUS, DSO (RFC 8490) and unassigned opcodes: NOTIMP, before
    // looking at sections whose meaning depends on the opcode.
    if (q.opcode != kOpQuery && q.opcode != kOpNotify && q.opcode != kOpUpdate) return ParseError::notimp;
    uint16_t qd = rd16(msg + 4), an = rd16(msg + 6), ns = rd16(msg + 8), ar = rd16(msg + 10);
    if (qd != 1) return ParseError::formerr;
    WireReader r(msg, len, kHeaderLen);
    size_t name_at = r.pos();
    if (!r.name(q.qname)) return ParseError::formerr;
    // The question name must be uncompressed: replies point into it.
    if (r.pos() - name_at != q.qname.len) return ParseError::formerr;
    q.qtype = r.u16();
    q.qclass = r.u16();
    if (!r.ok()) return ParseError::formerr;
    q.question_end = r.pos();
    if (q.opcode != kOpQuery) return ParseError::none;  // UPDATE/NOTIFY sections are the hook's business
    // RFC 1035 §4.1.2: a query has no answer/authority records; skip them anyway
    // (some clients send them) and find the OPT in the additional section.
    unsigned total = unsigned(an) + ns + ar;
    bool seen_opt = false;
    for (unsigned i = 0; i < total; ++i) {
        size_t rr_at = r.pos();
        r.skip_name();
        size_t owner_end = r.pos();
        uint16_t type = r.u16(), cls = r.u16();
        uint32_t ttl = r.u32();
        uint16_t rdlen = r.u16();
        r.skip(rdlen);
        if (!r.ok()) return ParseError::formerr;
        if (type == 250) {  // TSIG (RFC 8945)
            q.tsig = true;
            q.tsig_at = rr_at;
        }
        if (type == kTypeOPT) {
            // RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root.
            if (seen_opt || i < unsigned(an) + ns || owner_end != rr_at + 1)
                return ParseError::formerr;
            seen_opt = true;
            q.edns = true;
            q.udp_size = std::max<uint16_t>(cls, 512);
            q.edns_version = static_cast<uint8_t>(ttl >> 16);
            q.do_bit = ttl & 0x8000;
        }
    }
    if (r.left() != 0) return ParseError::formerr;  // trailing garbage
    if (q.edns && q.edns_version > 0) return ParseError::badvers;
    return ParseError::none;
}

size_t QueryCore::reply_limit(const Query &q, bool tcp) {
    if (tcp) return 65535;
    if (!q.edns) return 512;
    return std::clamp<size_t>(q.udp_size, 512, kEdnsPayload);
}

namespace {

uint16_t reply_flags(const Query &q, uint8_t rcode, bool aa) {
    uint16_t f = kFlagQR | static_cast<uint16_t>(q.opcode << 11) | (q.flags & (kFlagRD | kFlagCD)) | rcode;
    if (aa) f |= kFlagAA;
    if (q.opcode == kOpQuery) f |= kFlagRA;  // we offer recursion (forwarding)
    return f;
}

void write_opt(WireWriter &w, const Query &q, uint8_t ext_rcode = 0) {
    w.u8(0);
    w.u16(kTypeOPT);
    w.u16(kEdnsPayload);
    w.u32((uint32_t{ext_rcode} << 24) | (q.do_bit ? 0x8000u : 0u));
    w.u16(0);
}

// Header + question (copied from the client, so its letter case is kept) +
// OPT with TC set: the reply when the full one does not fit (RFC 2181 §9).
size_t write_truncated(const Query &q, const uint8_t *msg, uint16_t flags, uint8_t *out, size_t cap) {
    WireWriter w(out, cap);
    w.u16(q.id);
    w.u16(flags | kFlagTC);
    w.u16(1);
    w.u16(0);
    w.u16(0);
    w.u16(q.edns ? 1 : 0);
    w.bytes(msg + kHeaderLen, q.question_end - kHeaderLen);
    if (q.edns) write_opt(w, q);
    return w.ok() ? w.size() : 0;
}

struct LocalAnswer {
    WireWriter w;
    const Query &q;
    uint16_t an = 0, ns = 0;
    LocalAnswer(uint8_t *out, size_t cap, const Query &q_, const uint8_t *msg, uint16_t flags) : w(out, cap), q(q_) {
        w.u16(q.id);
        w.u16(flags);
        w.u16(1);
        w.u16(0);
        w.u16(0);
        w.u16(0);
        w.bytes(msg + kHeaderLen, q.question_end - kHeaderLen);
    }
    // The owner as a pointer to label i of the question name.
    void owner_label(unsigned i) {
        if (i >= q.qname.nlabels) w.u8(0);
        else w.ptr(kHeaderLen + q.qname.offs[i]);
    }
    void rr_tail(uint16_t type, uint32_t ttl, std::string_view rdata) {
        w.u16(type);
        w.u16(kClassIN);
        w.u32(ttl);
        w.u16(static_cast<uint16_t>(rdata.size()));
        w.bytes(rdata);
    }
};

// The zone's SOA in the authority section with the negative TTL.
// RFC 2308 §3: the TTL of the SOA is min(SOA TTL, SOA.MINIMUM).
void add_soa(LocalAnswer &a, const Zone &z, unsigned origin_at, bool suffix_of_qname) {
    const RRset &soa = z.soa();
    if (soa.rdata.empty()) return;
    if (suffix_of_qname) a.owner_label(origin_at);
    else a.w.bytes(z.origin_wire());
    a.rr_tail(kTypeSOA, std::min(soa.ttl, z.soa_minimum()), soa.rdata.front());
    ++a.ns;
}

void add_rrset(LocalAnswer &a, const Node &node, const RRset &rs) {
    for (const std::string &rd : rs.rdata) {
        a.owner_label(0);
        a.rr_tail(rs.type, node.ttl_of(rs, rd), rd);
        ++a.an;
    }
}

} // namespace

size_t write_error(const Query &q, const uint8_t *msg, bool with_question, uint8_t rcode, uint8_t *out,
                   size_t cap) {
    WireWriter w(out, cap);
    w.u16(q.id);
    w.u16(reply_flags(q, static_cast<uint8_t>(rcode & 0xf), false));
    w.u16(with_question ? 1 : 0);
    w.u16(0);
    w.u16(0);
    w.u16(q.edns ? 1 : 0);
    if (with_question) w.bytes(msg + kHeaderLen, q.question_end - kHeaderLen);
    // RFC 6891 §6.1.1: a client that sent a valid OPT gets one back, FORMERR included.
    if (q.edns) write_opt(w, q, static_cast<uint8_t>(rcode >> 4));
    return w.ok() ? w.size() : 0;
}

namespace {

// RFC 8906 §3.1.4: an opcode we do not implement gets NOTIMP, whatever else the
// message holds: the header only, no RD/CD echoed (they mean nothing there).
size_t write_notimp_bare(const Query &q, uint8_t *out, size_t cap) {
    WireWriter w(out, cap);
    w.u16(q.id);
    w.u16(static_cast<uint16_t>(kFlagQR | (q.opcode << 11) | kNotImp));
    for (int i = 0; i < 4; ++i) w.u16(0);
    return w.ok() ? w.size() : 0;
}

// RFC 8945 §5.2.1: a signed query for a key we do not have gets NOTAUTH with a
// TSIG record carrying error BADKEY (17), unsigned, with the request's key
// name, algorithm, time and fudge, no MAC. 0 when the TSIG record is unreadable.
size_t write_badkey(const Query &q, const uint8_t *msg, size_t len, uint8_t *out, size_t cap) {
    WireReader r(msg, len, q.tsig_at);
    WireName key, alg;
    if (!r.name(key)) return 0;
    r.skip(8); // type, class, TTL
    uint16_t rdlen = r.u16();
    size_t rd_end = r.pos() + rdlen;
    if (!r.name(alg)) return 0;
    uint8_t time_fudge[8];
    for (uint8_t &b : time_fudge) b = r.u8(); // time signed (48 bits), fudge
    uint16_t mac_len = r.u16();
    r.skip(mac_len);
    uint16_t orig_id = r.u16();
    if (!r.ok() || r.pos() + 4 > rd_end) return 0;
    WireWriter w(out, cap);
    w.u16(q.id);
    w.u16(static_cast<uint16_t>(kFlagQR | (q.opcode << 11) | (q.flags & (kFlagRD | kFlagCD)) | kNotAuth));
    w.u16(1);
    w.u16(0);
    w.u16(0);
    w.u16(1);
    w.bytes(msg + kHeaderLen, q.question_end - kHeaderLen);
    w.bytes(key.wire());
    w.u16(250);
    w.u16(255); // class ANY
    w.u32(0);
    const size_t rdlen_at = w.size();
    w.u16(0);
    w.bytes(alg.wire());
    w.bytes(std::string_view(reinterpret_cast<const char *>(time_fudge), sizeof time_fudge));
    w.u16(0); // MAC size
    w.u16(orig_id);
    w.u16(17); // BADKEY
    w.u16(0);  // other len
    if (!w.ok()) return 0;
    w.patch16(rdlen_at, static_cast<uint16_t>(w.size() - rdlen_at - 2));
    return w.size();
}

// A name in ip6.arpa made of 16 to 32 nibble labels: the /64 it is under
// (the 16 nibbles next to ip6.arpa) and how many nibbles it has.
bool reverse_position(const WireName &n, uint64_t &prefix, unsigned &nibbles) {
    if (n.nlabels < 18 || n.nlabels > 34) return false;
    const unsigned k = n.nlabels - 2;
    if (n.label(k) != "ip6" || n.label(k + 1) != "arpa") return false;
    prefix = 0;
    for (unsigned i = 0; i < k; ++i) {
        std::string_view l = n.label(i);
        if (l.size() != 1) return false;
        char c = l[0];
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0) return false;
        // The label next to ip6.arpa is the address's first nibble.
        const unsigned nib = k - 1 - i;
        if (nib < 16) prefix |= uint64_t(v) << (4 * (15 - nib));
    }
    nibbles = k;
    return true;
}

bool chaos_name(const WireName &n, std::string_view a, std::string_view b) {
    return n.nlabels == 2 && n.label(0) == a && n.label(1) == b;
}

} // namespace

CoreResult QueryCore::local(const Query &q, const uint8_t *msg, bool tcp, uint8_t *out, size_t cap) {
    return zones_ ? answer_local(*zones_, q, msg, tcp, out, cap) : CoreResult{};
}

// RFC 1034 §4.3.2 step 3a: the CNAME chain is followed inside our own zones
// and answered whole, each record owned by its full name; it stops at a name
// outside them (`left` is set: QueryCore::handle resolves the rest through the
// cache or the upstreams), at a loop, or after 8 links. A chain that ends in NXDOMAIN or NODATA inside a zone carries that
// zone's SOA; the rcode is the last name's (RFC 6604 §2.1).
static uint8_t chase_cname(const ZoneSet &zs, const Query &q, const RRset &first, LocalAnswer &a, bool &left) {
    WireName seen[9];
    unsigned nseen = 0;
    seen[nseen++] = q.qname;
    const std::string *target = &first.rdata.front();
    for (unsigned hop = 0; hop < 8; ++hop) {
        WireName cur;
        WireReader r(reinterpret_cast<const uint8_t *>(target->data()), target->size(), 0);
        if (!r.name(cur)) return kNoError;
        for (unsigned i = 0; i < nseen; ++i)
            if (seen[i].wire() == cur.wire()) return kNoError; // a loop: stop here
        seen[nseen++] = cur;
        Match mm = zs.lookup(cur);
        auto owner = [&] { a.w.bytes(cur.wire()); };
        auto negative = [&](uint8_t rc) {
            const RRset &soa = mm.zone->soa();
            if (!soa.rdata.empty()) {
                a.w.bytes(mm.zone->origin_wire());
                a.rr_tail(kTypeSOA, std::min(soa.ttl, mm.zone->soa_minimum()), soa.rdata.front());
                ++a.ns;
            }
            return rc;
        };
        if (mm.kind == Match::Kind::NotLocal) {
            left = true;
            return kNoError;
        }
        if (mm.kind == Match::Kind::NxDomain) return negative(kNxDomain);
        const uint16_t before = a.an;
        if (mm.kind == Match::Kind::Synthesized) {
            if (q.qtype == kTypeAAAA) {
                owner();
                a.rr_tail(kTypeAAAA, mm.zone->aisid_ttl(), {reinterpret_cast<const char *>(mm.aisid.data()), 16});
                ++a.an;
            }
            return a.an == before ? negative(kNoError) : uint8_t{kNoError};
        }
        if (mm.service && q.qtype == kTypeAAAA) {
            owner();
            a.rr_tail(kTypeAAAA, mm.service->aaaa_ttl, {reinterpret_cast<const char *>(mm.aisid.data()), 16});
            ++a.an;
        }
        if (mm.service && q.qtype == kTypeSVCB) {
            mm.zone->for_each_svcb(*mm.service, [&](std::string_view rd) {
                owner();
                a.rr_tail(kTypeSVCB, mm.service->svcb_ttl, rd);
                ++a.an;
            });
        }
        if (mm.node) {
            if (const RRset *rs = mm.node->find(q.qtype)) {
                for (const std::string &rd : rs->rdata) {
                    owner();
                    a.rr_tail(rs->type, mm.node->ttl_of(*rs, rd), rd);
                    ++a.an;
                }
            } else if (a.an == before) {
                if (const RRset *cn = mm.node->find(kTypeCNAME)) {
                    owner();
                    a.rr_tail(kTypeCNAME, cn->ttl, cn->rdata.front());
                    ++a.an;
                    target = &cn->rdata.front();
                    continue;
                }
            }
        }
        return a.an == before ? negative(kNoError) : uint8_t{kNoError};
    }
    return kNoError;
}

CoreResult answer_local(const ZoneSet &zs, const Query &q, const uint8_t *msg, bool tcp, uint8_t *out, size_t cap) {
    CoreResult res;
    Match m = zs.lookup(q.qname);
    const Zone *rev_zone = nullptr;
    Aisid rev_addr;
    unsigned rev_nibbles = 0; // labels below ip6.arpa: 16 at the reverse apex, 32 at an address
    if (m.kind == Match::Kind::NotLocal) {
        // The reverse zone of each AISID prefix (SPEC §2 reverse), synthesized:
        // its apex is the /64 in ip6.arpa, its leaves are the addresses.
        uint64_t prefix = 0;
        if (!reverse_position(q.qname, prefix, rev_nibbles)) return res;
        rev_zone = zs.zone_for_prefix(prefix);
        if (!rev_zone) return res;
        if (rev_nibbles == 32 && !parse_ip6_arpa(q.qname, rev_addr)) return res;
    } else if (q.qtype == kTypeDS && q.qname.nlabels == m.zone->origin_labels()) {
        // DS lives in the parent (RFC 4035 §3.1.4.1): a recursive server asks
        // for it there, so a forwarder forwards it rather than answering NODATA
        // from the child.
        return res;
    }
    res.verdict = Verdict::Answered;
    bool left_zones = false;  // a CNAME chain that ends outside our zones
    if (q.qclass != kClassIN && q.qclass != 255) {
        res.outcome = Outcome::refused;
        res.len = write_error(q, msg, true, kRefused, out, cap);
        return res;
    }
    size_t limit = std::min(cap, QueryCore::reply_limit(q, tcp));
    uint8_t rcode = kNoError;
    const Zone *z = rev_zone ? rev_zone : m.zone;
    // Where the zone's apex starts in the question name (the owner of its SOA).
    unsigned origin_at = rev_zone ? rev_nibbles - 16 : q.qname.nlabels - z->origin_labels();
    LocalAnswer a(out, limit, q, msg, 0);
    bool any = q.qtype == kTypeANY;

    if (rev_zone && rev_nibbles == 16) {
        // The reverse apex: its SOA (the forward zone's, under this owner) and
        // the forward zone's name servers; anything else NODATA.
        if (q.qtype == kTypeSOA || any) {
            const RRset &soa = z->soa();
            if (!soa.rdata.empty()) {
                a.owner_label(0);
                a.rr_tail(kTypeSOA, soa.ttl, soa.rdata.front());
                ++a.an;
            }
        }
        if (q.qtype == kTypeNS || any) {
            if (const RRset *ns = z->apex().find(kTypeNS)) add_rrset(a, z->apex(), *ns);
        }
    } else if (rev_zone && rev_nibbles < 32) {
        // Between the apex and the addresses: empty non-terminals (RFC 8020:
        // not NXDOMAIN, there are names below), NODATA below.
    } else if (rev_zone) {
        // Thread-local scratch: the reverse name is built as text by the SDK.
        thread_local std::string text;
        WireName target;
        if (zs.reverse(rev_addr, text) && name_from_text(text, target)) {
            if (q.qtype == kTypePTR || any) {
                a.owner_label(0);
                a.rr_tail(kTypePTR, z->aisid_ttl(), target.wire());
                ++a.an;
            } else {
                add_soa(a, *z, origin_at, true);
            }
        } else {
            rcode = kNxDomain;
            add_soa(a, *z, origin_at, true);
        }
    } else if (m.kind == Match::Kind::NxDomain) {
        rcode = kNxDomain;
        add_soa(a, *z, origin_at, true);
    } else if (m.kind == Match::Kind::Synthesized) {
        res.synthesized = true;
        std::memcpy(res.service_key, m.aisid.data(), sizeof res.service_key);
        if (q.qtype == kTypeAAAA || any) {
            a.owner_label(0);
            a.rr_tail(kTypeAAAA, z->aisid_ttl(), {reinterpret_cast<const char *>(m.aisid.data()), 16});
            ++a.an;
        }
    } else {  // Explicit
        if (m.service) {
            if (q.qtype == kTypeAAAA || any) {
                a.owner_label(0);
                a.rr_tail(kTypeAAAA, m.service->aaaa_ttl, {reinterpret_cast<const char *>(m.aisid.data()), 16});
                ++a.an;
            }
            if (q.qtype == kTypeSVCB || any) {
                z->for_each_svcb(*m.service, [&](std::string_view rd) {
                    a.owner_label(0);
                    a.rr_tail(kTypeSVCB, m.service->svcb_ttl, rd);
                    ++a.an;
                });
            }
        }
        if (m.node) {
            if (any) {
                for (const RRset &rs : m.node->rrsets) add_rrset(a, *m.node, rs);
            } else if (const RRset *rs = m.node->find(q.qtype)) {
                add_rrset(a, *m.node, *rs);
            } else if (const RRset *cn = m.node->find(kTypeCNAME)) {
                add_rrset(a, *m.node, *cn);
                rcode = chase_cname(zs, q, *cn, a, left_zones);
            }
        }
    }
    if (a.an == 0 && a.ns == 0 && rcode == kNoError) add_soa(a, *z, origin_at, true);  // NODATA (RFC 2308 §2.2)
    uint16_t flags = reply_flags(q, rcode, true);
    if (q.edns) write_opt(a.w, q);
    if (!a.w.ok()) {
        res.len = write_truncated(q, msg, flags, out, cap);
        res.outcome = rcode == kNxDomain ? Outcome::aisid_nxdomain : Outcome::aisid;
        return res;
    }
    a.w.patch16(2, flags);
    a.w.patch16(6, a.an);
    a.w.patch16(8, a.ns);
    a.w.patch16(10, q.edns ? 1 : 0);
    res.len = a.w.size();
    res.outcome = rcode == kNxDomain ? Outcome::aisid_nxdomain : Outcome::aisid;
    res.cname_out = left_zones && rcode == kNoError;
    return res;
}

bool QueryCore::allowed(const sockaddr_storage &peer) const {
    auto in = [&](const std::vector<Cidr> &l) {
        return std::any_of(l.begin(), l.end(), [&](const Cidr &c) { return c.contains(peer); });
    };
    if (in(s_->allow)) return true;
    return is_loopback(peer) && !in(s_->deny);
}

CoreResult QueryCore::handle(const uint8_t *msg, size_t len, const sockaddr_storage &peer, bool tcp, uint64_t now_ms,
                         uint8_t *out, size_t cap, Query &q) {
    CoreResult res;
    ParseError pe = parse_query(msg, len, q);
    if (pe == ParseError::drop) return res;
    bool allowed = this->allowed(peer);
    res.verdict = Verdict::Answered;
    if (pe == ParseError::notimp) {
        res.outcome = allowed ? Outcome::notimp : Outcome::refused;
        res.len = allowed ? write_notimp_bare(q, out, cap) : write_error(q, msg, false, kRefused, out, cap);
        return res;
    }
    if (pe == ParseError::formerr) {
        if (!allowed) {  // do not help strangers probe us: REFUSED says nothing more
            res.outcome = Outcome::refused;
            res.len = write_error(q, msg, false, kRefused, out, cap);
            return res;
        }
        res.outcome = Outcome::formerr;
        res.len = write_error(q, msg, false, kFormErr, out, cap);
        return res;
    }
    if (!allowed) {
        res.outcome = Outcome::refused;
        res.len = write_error(q, msg, true, kRefused, out, cap);
        return res;
    }
    if (pe == ParseError::badvers) {  // RFC 6891 §6.1.3: BADVERS (16) with our version 0
        res.outcome = Outcome::formerr;
        res.len = write_error(q, msg, true, 16, out, cap);
        return res;
    }
    // The one dispatch point for the authority side: NOTIFY and
    // UPDATE messages, zone transfer requests.
    bool transfer = q.opcode == kOpQuery && (q.qtype == kTypeAXFR || q.qtype == kTypeIXFR);
    // A signed query (a secondary's SOA refresh) must be answered signed: the authority side does it.
    if (q.tsig && s_->has_authority) {
        res.verdict = Verdict::Pass;
        res.to_authority = true;
        res.outcome = Outcome::authority;
        return res;
    }
    if (q.tsig) {
        // No keys at all here (no authority side): RFC 8945 §5.2 NOTAUTH/BADKEY,
        // never an unsigned answer the client would take as verified.
        res.outcome = Outcome::refused;
        res.len = write_badkey(q, msg, len, out, cap);
        if (!res.len) {
            res.outcome = Outcome::formerr;
            res.len = write_error(q, msg, true, kFormErr, out, cap);
        }
        return res;
    }
    if (q.opcode == kOpNotify || q.opcode == kOpUpdate || transfer) {
        if (s_->has_authority) {
            res.verdict = Verdict::Pass;
            res.to_authority = true;
            res.outcome = Outcome::authority;
            return res;
        }
        res.outcome = transfer ? Outcome::refused : Outcome::notimp;
        res.len = write_error(q, msg, true, transfer ? kRefused : kNotImp, out, cap);
        return res;
    }
    if (q.opcode != kOpQuery) {
        res.outcome = Outcome::notimp;
        res.len = write_error(q, msg, true, kNotImp, out, cap);
        return res;
    }
    if (q.qtype == kTypeOPT || q.qtype == 0) {  // meta types are not asked for (RFC 6895 §3.1)
        res.outcome = Outcome::formerr;
        res.len = write_error(q, msg, true, kFormErr, out, cap);
        return res;
    }
    if (q.qclass == kClassCH) return chaos(q, msg, out, cap);
    // Local data first; inside our zones a missing name is NXDOMAIN, never forwarded.
    CoreResult l = local(q, msg, tcp, out, cap);
    if (l.verdict == Verdict::Answered && l.cname_out) return finish_cname(q, tcp, now_ms, out, cap, l);
    if (l.verdict == Verdict::Answered) return l;
    uint8_t key[kMaxNameLen + 8];
    size_t klen = make_cache_key(q.qname.wire(), q.qtype, q.qclass, q.do_bit, q.cd(), key);
    // The reply is written while the entry's shard is locked (a memcpy and
    // the TTL fix-ups): the entry cannot be evicted under us by another worker.
    if (cache_.visit({reinterpret_cast<const char *>(key), klen}, now_ms, false, [&](const CacheEntry &e) {
            res.len = serve_entry(e, q, msg, tcp, now_ms, false, out, cap);
            // Unbound's prefetch: a hit in the last tenth of the answer's
            // life asks the caller to refresh it, so a popular name never
            // expires in the cache (and never costs a client a round trip).
            uint64_t life = e.expires_ms - e.stored_ms;
            res.prefetch = life >= kPrefetchMinLifeMs && e.expires_ms - now_ms < life / 10;
        })) {
        res.outcome = Outcome::cache_hit;
        if (res.len) return res;
    }
    if (!q.rd()) {
        // RFC 1034 §4.3.1: no recursion asked for, so none done: what the
        // cache holds (above) or REFUSED, since a forwarder has no referral to give.
        res.verdict = Verdict::Answered;
        res.outcome = Outcome::refused;
        res.len = write_error(q, msg, true, kRefused, out, cap);
        return res;
    }
    res.verdict = Verdict::Pass;
    res.outcome = Outcome::forwarded;
    res.len = 0;
    return res;
}

// CHAOS class: who this server is (version.bind, version.server, id.server,
// hostname.bind), answered here rather than forwarded, as BIND and Unbound do;
// any other CH name is REFUSED.
CoreResult QueryCore::chaos(const Query &q, const uint8_t *msg, uint8_t *out, size_t cap) const {
    CoreResult res;
    res.verdict = Verdict::Answered;
    const std::string *text = nullptr;
    if (chaos_name(q.qname, "version", "bind") || chaos_name(q.qname, "version", "server")) text = &s_->version;
    else if (chaos_name(q.qname, "id", "server") || chaos_name(q.qname, "hostname", "bind")) text = &s_->identity;
    if (!text || text->empty() || (q.qtype != kTypeTXT && q.qtype != kTypeANY)) {
        res.outcome = Outcome::refused;
        res.len = write_error(q, msg, true, kRefused, out, cap);
        return res;
    }
    WireWriter w(out, cap);
    w.u16(q.id);
    w.u16(static_cast<uint16_t>(reply_flags(q, kNoError, true) & ~kFlagRA));
    w.u16(1);
    w.u16(1);
    w.u16(0);
    w.u16(q.edns ? 1 : 0);
    w.bytes(msg + kHeaderLen, q.question_end - kHeaderLen);
    w.ptr(kHeaderLen);
    w.u16(kTypeTXT);
    w.u16(kClassCH);
    w.u32(0);
    const size_t n = std::min<size_t>(text->size(), 255);
    w.u16(static_cast<uint16_t>(n + 1));
    w.u8(static_cast<uint8_t>(n));
    w.bytes(std::string_view(*text).substr(0, n));
    if (q.edns) write_opt(w, q);
    res.outcome = Outcome::aisid;
    res.len = w.ok() ? w.size() : 0;
    return res;
}

size_t QueryCore::serve_entry(const CacheEntry &e, const Query &q, const uint8_t *msg, bool tcp, uint64_t now_ms,
                              bool stale, uint8_t *out, size_t cap) const {
    uint16_t flags = static_cast<uint16_t>(reply_flags(q, 0, false) | (e.flags & 0xf));
    if ((e.flags & kFlagAD) && (q.do_bit || (q.flags & kFlagAD))) flags |= kFlagAD;  // RFC 6840 §5.8
    size_t limit = std::min(cap, reply_limit(q, tcp));
    size_t qlen = q.question_end - kHeaderLen;
    size_t need = kHeaderLen + qlen + e.body.size() + (q.edns ? 11 : 0);
    if (need > limit) return write_truncated(q, msg, flags, out, cap);
    WireWriter w(out, limit);
    w.u16(q.id);
    w.u16(flags);
    w.u16(1);
    w.u16(e.an);
    w.u16(e.ns);
    w.u16(static_cast<uint16_t>(e.ar + (q.edns ? 1 : 0)));
    w.bytes(msg + kHeaderLen, qlen);
    size_t body_at = w.size();
    w.bytes(e.body);
    if (!w.ok()) return 0;
    // RFC 1035 §7.1 / RFC 2181 §8: a cached record's TTL counts down.
    uint64_t elapsed = now_ms > e.stored_ms ? (now_ms - e.stored_ms) / 1000 : 0;
    uint8_t *b = out + body_at;
    for (uint16_t off : e.ttl_offs) {
        uint32_t t = rd32(b + off);
        uint32_t nt = stale ? std::min(t, s_->stale_answer_ttl) : (t > elapsed ? t - uint32_t(elapsed) : 0);
        wr32(b + off, nt);
    }
    if (q.edns) write_opt(w, q);
    return w.ok() ? w.size() : 0;
}

size_t QueryCore::upstream_query(const Query &q, const uint8_t *msg, uint16_t id, uint8_t *out, size_t cap) const {
    WireWriter w(out, cap);
    w.u16(id);
    w.u16(static_cast<uint16_t>(kFlagRD | (q.flags & kFlagCD)));
    w.u16(1);
    w.u16(0);
    w.u16(0);
    w.u16(1);
    w.bytes(msg + kHeaderLen, q.question_end - kHeaderLen);
    w.u8(0);  // OPT: we take up to 1232 bytes over UDP, TCP beyond (RFC 6891)
    w.u16(kTypeOPT);
    w.u16(kEdnsPayload);
    w.u32(q.do_bit ? 0x8000u : 0u);
    w.u16(0);
    return w.ok() ? w.size() : 0;
}

namespace {
using LabelStarts = std::bitset<65536>;

// A name in an upstream answer, stricter than the RFC: every compression
// pointer goes backwards (no loops) to where a label of a name read before
// begins. We rewrite header counts and TTLs when we serve from the cache: a
// name read from the header or from a TTL would change under us.
bool checked_name(const uint8_t *m, size_t end, size_t &pos, LabelStarts &starts) {
    size_t p = pos, total = 0;
    bool jumped = false;
    for (int hops = 0; hops < 128; ++hops) {
        if (p >= end) return false;
        uint8_t l = m[p];
        if ((l & 0xc0) == 0xc0) {
            if (p + 1 >= end) return false;
            size_t t = (size_t(l & 0x3f) << 8) | m[p + 1];
            if (t < kHeaderLen || t >= p || !starts[t]) return false;
            if (!jumped) pos = p + 2;
            jumped = true;
            p = t;
            continue;
        }
        if (l & 0xc0) return false;
        total += l + 1u;
        if (total > kMaxNameLen) return false;
        if (p + 1 + l > end) return false;
        if (!jumped) starts[p] = true;
        if (l == 0) {
            if (!jumped) pos = p + 1;
            return true;
        }
        p += 1 + l;
    }
    return false;
}
} // namespace

QueryCore::Check QueryCore::check_upstream(const Query &q, uint16_t id, const uint8_t *resp, size_t n) {
    if (n < kHeaderLen || rd16(resp) != id) return Check::ignore;
    uint16_t flags = rd16(resp + 2);
    if (!(flags & kFlagQR) || ((flags >> 11) & 0xf) != kOpQuery) return Check::ignore;
    if (rd16(resp + 4) != 1) {
        // A FORMERR/NOTIMP may come without a question.
        return (flags & 0xf) != kNoError ? Check::failed : Check::ignore;
    }
    WireReader r(resp, n, kHeaderLen);
    WireName name;
    if (!r.name(name)) return Check::ignore;
    uint16_t qt = r.u16(), qc = r.u16();
    // Only the answer to the question we asked (RFC 5452 §9.1).
    if (!r.ok() || name.wire() != q.qname.wire() || qt != q.qtype || qc != q.qclass) return Check::ignore;
    LabelStarts starts;
    size_t qpos = kHeaderLen;
    if (!checked_name(resp, n, qpos, starts)) return Check::failed;
    // The rest must be well formed too, or we would hand garbage on.
    unsigned total = unsigned(rd16(resp + 6)) + rd16(resp + 8) + rd16(resp + 10);
    bool bad_rdata = false;
    for (unsigned i = 0; i < total && r.ok() && !bad_rdata; ++i) {
        size_t at = r.pos();
        if (!checked_name(resp, n, at, starts)) {
            bad_rdata = true;
            break;
        }
        r.skip(at - r.pos());
        uint16_t type = r.u16();
        r.skip(6);
        uint16_t rdlen = r.u16();
        size_t rd = r.pos();
        r.skip(rdlen);
        if (!r.ok()) break;
        // RFC 6891 §6.1.1: an OPT record belongs in the additional section
        // only (our answer rewriting counts on it: F3 in docs/reliability.md).
        if (type == kTypeOPT && i < unsigned(rd16(resp + 6)) + rd16(resp + 8)) {
            bad_rdata = true;
            break;
        }
        // Names inside the rdata of the common types must decode (no pointer
        // past the end or into a loop): clients would choke on them.
        size_t names = 0, fixed = 0, lead = 0;
        switch (type) {
        case kTypeNS: case kTypeCNAME: case kTypePTR: case 39 /* DNAME */: names = 1; break;
        case kTypeSOA: names = 2; fixed = 20; break;
        case 15 /* MX */: lead = 2; names = 1; break;
        case kTypeA: bad_rdata = rdlen != 4; break;
        case kTypeAAAA: bad_rdata = rdlen != 16; break;
        default: break;
        }
        if (names) {
            size_t pos = rd + lead;
            for (size_t k = 0; k < names && !bad_rdata; ++k)
                bad_rdata = pos > rd + rdlen || !checked_name(resp, rd + rdlen, pos, starts);
            bad_rdata = bad_rdata || pos + fixed != rd + rdlen;
        }
    }
    // RFC 2181 §9: a truncated answer is retried over TCP whatever it holds.
    if (flags & kFlagTC) return Check::truncated;
    if (!r.ok() || r.left() != 0 || bad_rdata) return Check::failed;
    uint8_t rc = flags & 0xf;
    if (rc != kNoError && rc != kNxDomain) return Check::failed;
    return Check::ok;
}

CoreResult QueryCore::answer_from_upstream(const Query &q, const uint8_t *msg, const uint8_t *resp, size_t n,
                                       bool tcp, uint64_t now_ms, uint8_t *out, size_t cap) {
    CoreResult res;
    res.verdict = Verdict::Answered;
    res.outcome = Outcome::forwarded;
    uint16_t flags = rd16(resp + 2);
    uint16_t an = rd16(resp + 6), ns = rd16(resp + 8), ar = rd16(resp + 10);
    WireReader r(resp, n, kHeaderLen);
    r.skip_name();
    r.skip(4);
    size_t body_at = r.pos();
    CacheEntry e;
    e.flags = flags & (0xf | kFlagAD);
    e.an = an;
    e.ns = ns;
    size_t body_end = n;
    uint32_t min_ttl = UINT32_MAX, neg_ttl = UINT32_MAX;
    // TTLs rewritten in the stored body: RFC 2181 §8 (top bit set: 0) and the
    // caps (Unbound's cache-max-ttl / cache-max-negative-ttl), so no client is
    // told to keep a record longer than we would.
    std::vector<std::pair<size_t, uint32_t>> fix_ttls;
    const bool negative = (flags & 0xf) == kNxDomain || an == 0;
    bool ok = r.ok() && body_at == q.question_end;  // same question length: compression offsets hold
    unsigned total = unsigned(an) + ns + ar;
    for (unsigned i = 0; ok && i < total; ++i) {
        size_t rr_at = r.pos();
        r.skip_name();
        uint16_t type = r.u16();
        r.u16();
        size_t ttl_at = r.pos();
        uint32_t ttl = r.u32();
        uint16_t rdlen = r.u16();
        size_t rd_at = r.pos();
        r.skip(rdlen);
        if (!r.ok()) {
            ok = false;
            break;
        }
        if (type == kTypeOPT) {
            // Dropped from the stored answer; each client gets its own OPT.
            if (i != total - 1) ok = false;  // not last: offsets after it would move
            body_end = rr_at;
            continue;
        }
        if (ttl & 0x80000000u) {  // RFC 2181 §8: a TTL with the top bit set means 0
            ttl = 0;
            fix_ttls.emplace_back(ttl_at - body_at, 0);
        } else {
            uint32_t cap = negative && i >= an && i < unsigned(an) + ns ? s_->max_negative_ttl : s_->max_ttl;
            if (ttl > cap) {
                ttl = cap;
                fix_ttls.emplace_back(ttl_at - body_at, cap);
            }
        }
        e.ttl_offs.push_back(static_cast<uint16_t>(ttl_at - body_at));
        if (i < an) min_ttl = std::min(min_ttl, ttl);
        else if (i < unsigned(an) + ns && type == kTypeSOA && rdlen >= 20)
            neg_ttl = std::min(ttl, rd32(resp + rd_at + rdlen - 4));  // RFC 2308 §5
        else if (i < unsigned(an) + ns) min_ttl = std::min(min_ttl, ttl);
    }
    if (!ok) {
        // Not storable as is (e.g. the OPT is not last, a compressed question):
        // rather SERVFAIL than relaying what we cannot check.
        res.len = write_error(q, msg, true, kServFail, out, cap);
        res.verdict = Verdict::Fail;
        res.outcome = Outcome::servfail;
        return res;
    }
    e.ar = static_cast<uint16_t>(ar - (body_end < n ? 1 : 0));
    e.body.assign(reinterpret_cast<const char *>(resp) + body_at, body_end - body_at);
    for (auto [off, v] : fix_ttls) wr32(reinterpret_cast<uint8_t *>(e.body.data()) + off, v);
    uint8_t rcode = flags & 0xf;
    uint32_t ttl;
    if (rcode == kNxDomain || an == 0) {
        e.negative = true;
        // RFC 2308 §5: without an SOA a negative answer is not cached.
        ttl = neg_ttl == UINT32_MAX ? 0 : std::min(neg_ttl, s_->max_negative_ttl);
    } else {
        ttl = min_ttl == UINT32_MAX ? 0 : std::min(min_ttl, s_->max_ttl);
    }
    e.stored_ms = now_ms;
    e.expires_ms = now_ms + uint64_t(ttl) * 1000;
    e.stale_until_ms = e.expires_ms + uint64_t(s_->stale_seconds) * 1000;
    uint8_t key[kMaxNameLen + 8];
    size_t klen = make_cache_key(q.qname.wire(), q.qtype, q.qclass, q.do_bit, q.cd(), key);
    e.key.assign(reinterpret_cast<const char *>(key), klen);
    res.len = serve_entry(e, q, msg, tcp, now_ms, false, out, cap);
    // A TTL of 0 is still kept for serve-stale, but expires at once.
    cache_.insert(std::move(e));
    if (!res.len) {
        res.len = write_error(q, msg, true, kServFail, out, cap);
        res.verdict = Verdict::Fail;
        res.outcome = Outcome::servfail;
    }
    return res;
}

// ---- CNAME chains that leave our zones ----

bool cname_target_query(const Query &q, const uint8_t *prefix, size_t plen, Query &tq, std::string &tmsg) {
    // The target is the data of the last answer record (the chain's last CNAME,
    // written uncompressed from zone data).
    if (plen < kHeaderLen) return false;
    WireReader r(prefix, plen, kHeaderLen);
    r.skip_name();
    r.skip(4);
    uint16_t an = rd16(prefix + 6);
    size_t rd_at = 0;
    uint16_t type = 0;
    for (uint16_t i = 0; i < an && r.ok(); ++i) {
        r.skip_name();
        type = r.u16();
        r.skip(6);
        uint16_t rdlen = r.u16();
        rd_at = r.pos();
        r.skip(rdlen);
    }
    if (!r.ok() || an == 0 || type != kTypeCNAME) return false;
    WireName target;
    WireReader t(prefix, plen, rd_at);
    if (!t.name(target)) return false;
    // The question the upstreams are asked, as if the client had asked it:
    // its ID, RD/CD, EDNS and DO bit.
    uint8_t buf[kHeaderLen + kMaxNameLen + 4 + 11];
    WireWriter w(buf, sizeof buf);
    w.u16(q.id);
    w.u16(q.flags & (kFlagRD | kFlagCD));
    w.u16(1);
    w.u16(0);
    w.u16(0);
    w.u16(q.edns ? 1 : 0);
    w.bytes(target.wire());
    w.u16(q.qtype);
    w.u16(q.qclass);
    if (q.edns) {
        w.u8(0);
        w.u16(kTypeOPT);
        w.u16(kEdnsPayload);
        w.u32(q.do_bit ? 0x8000u : 0u);
        w.u16(0);
    }
    if (!w.ok()) return false;
    tmsg.assign(reinterpret_cast<const char *>(buf), w.size());
    return parse_query(buf, w.size(), tq) == ParseError::none;
}

size_t splice_cname(const Query &q, bool tcp, const uint8_t *prefix, size_t plen, const uint8_t *tail, size_t tlen,
                    uint8_t *out, size_t cap) {
    // Off the hot path (a chain that leaves our zones), so ldns does the
    // decompressing copy of the upstream's records.
    ldns_pkt *head = nullptr, *rest = nullptr;
    size_t n = 0;
    if (ldns_wire2pkt(&head, prefix, plen) == LDNS_STATUS_OK && ldns_wire2pkt(&rest, tail, tlen) == LDNS_STATUS_OK) {
        // RFC 1034 §4.3.2: the chain, then what the last name resolves to; the
        // rcode is the last name's (RFC 6604 §2.1). Not all of it is our
        // data, so not authoritative, and nothing is validated here (AD off).
        ldns_pkt_set_rcode(head, ldns_pkt_get_rcode(rest));
        ldns_pkt_set_aa(head, false);
        ldns_pkt_set_ad(head, false);
        ldns_rr_list *an = ldns_pkt_answer(rest);
        for (size_t i = 0; i < ldns_rr_list_rr_count(an); ++i)
            ldns_pkt_push_rr(head, LDNS_SECTION_ANSWER, ldns_rr_clone(ldns_rr_list_rr(an, i)));
        if (ldns_rr_list_rr_count(an) == 0) {
            ldns_rr_list *ns = ldns_pkt_authority(rest);
            for (size_t i = 0; i < ldns_rr_list_rr_count(ns); ++i)
                ldns_pkt_push_rr(head, LDNS_SECTION_AUTHORITY, ldns_rr_clone(ldns_rr_list_rr(ns, i)));
        }
        uint8_t *wire = nullptr;
        size_t wlen = 0;
        if (ldns_pkt2wire(&wire, head, &wlen) == LDNS_STATUS_OK) {
            if (wlen <= std::min(cap, QueryCore::reply_limit(q, tcp))) {
                std::memcpy(out, wire, wlen);
                n = wlen;
            } else {
                // Too big for this client: the header and question with TC
                // (and the client's OPT), so it asks again over TCP.
                uint16_t flags = rd16(prefix + 2) | kFlagTC;
                n = write_truncated(q, prefix, flags & ~uint16_t(kFlagAA), out, cap);
            }
            free(wire);
        }
    }
    if (head) ldns_pkt_free(head);
    if (rest) ldns_pkt_free(rest);
    return n;
}

CoreResult QueryCore::finish_cname(const Query &q, bool tcp, uint64_t now_ms, uint8_t *out, size_t cap,
                               const CoreResult &local_answer) {
    // RD=0, or a chain that cannot be followed: the chain alone, as before
    // (the client's resolver follows it).
    Query tq;
    std::string tmsg;
    if (!q.rd() || q.qclass != kClassIN || q.qtype == kTypeCNAME || q.qtype == kTypeANY ||
        !cname_target_query(q, out, local_answer.len, tq, tmsg))
        return local_answer;
    uint8_t key[kMaxNameLen + 8];
    size_t klen = make_cache_key(tq.qname.wire(), tq.qtype, tq.qclass, tq.do_bit, tq.cd(), key);
    std::string tail;
    cache_.visit({reinterpret_cast<const char *>(key), klen}, now_ms, false, [&](const CacheEntry &e) {
        tail.resize(65535);
        tail.resize(serve_entry(e, tq, reinterpret_cast<const uint8_t *>(tmsg.data()), true, now_ms, false,
                                reinterpret_cast<uint8_t *>(tail.data()), tail.size()));
    });
    CoreResult res = local_answer;
    if (tail.empty()) {
        // Not cached: the Forwarder asks for the target; `out` keeps the chain.
        res.verdict = Verdict::Pass;
        res.outcome = Outcome::forwarded;
        return res;
    }
    std::string head(reinterpret_cast<const char *>(out), local_answer.len);
    res.len = splice_cname(q, tcp, reinterpret_cast<const uint8_t *>(head.data()), head.size(),
                           reinterpret_cast<const uint8_t *>(tail.data()), tail.size(), out, cap);
    res.outcome = Outcome::cache_hit;
    res.cname_out = false;
    if (!res.len) {
        res.verdict = Verdict::Fail;
        res.outcome = Outcome::servfail;
        res.len = write_error(q, reinterpret_cast<const uint8_t *>(head.data()), true, kServFail, out, cap);
    }
    return res;
}

CoreResult QueryCore::answer_cached(const Query &q, const uint8_t *msg, bool tcp, uint64_t now_ms, uint8_t *out,
                                size_t cap) {
    CoreResult res;
    uint8_t key[kMaxNameLen + 8];
    size_t klen = make_cache_key(q.qname.wire(), q.qtype, q.qclass, q.do_bit, q.cd(), key);
    bool stale = false;
    if (cache_.visit({reinterpret_cast<const char *>(key), klen}, now_ms, true, [&](const CacheEntry &e) {
            stale = now_ms >= e.expires_ms;
            res.len = serve_entry(e, q, msg, tcp, now_ms, stale, out, cap);
        })) {
        if (res.len) {
            res.verdict = Verdict::Answered;
            res.outcome = stale ? Outcome::stale : Outcome::cache_hit;
        }
    }
    return res;
}

CoreResult QueryCore::answer_failure(const Query &q, const uint8_t *msg, bool tcp, uint64_t now_ms, uint8_t *out,
                                 size_t cap) {
    // RFC 8767 §4: when every upstream fails, an expired answer beats SERVFAIL.
    CoreResult res = answer_cached(q, msg, tcp, now_ms, out, cap);
    if (res.verdict == Verdict::Answered) return res;
    res.verdict = Verdict::Fail;
    res.outcome = Outcome::servfail;
    res.len = write_error(q, msg, true, kServFail, out, cap);
    return res;
}

} // namespace aisid::resolver
