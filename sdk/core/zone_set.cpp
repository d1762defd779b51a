#include "aisid/core/zone_set.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace aisid {

void ZoneSet::add(ZonePtr z) {
    remove(z->origin_wire());
    by_origin_.emplace(z->origin_wire(), z.get());
    if (z->is_aisid()) by_prefix_[z->prefix()] = z.get();
    max_origin_labels_ = std::max<size_t>(max_origin_labels_, z->origin_labels());
    zones_.push_back(std::move(z));
}

bool ZoneSet::remove(std::string_view origin_wire) {
    auto it = by_origin_.find(origin_wire);
    if (it == by_origin_.end()) return false;
    const Zone *z = it->second;
    by_origin_.erase(it);
    auto p = by_prefix_.find(z->prefix());
    if (p != by_prefix_.end() && p->second == z) by_prefix_.erase(p);
    zones_.erase(std::remove_if(zones_.begin(), zones_.end(), [&](const ZonePtr &x) { return x.get() == z; }),
                 zones_.end());
    // Another zone may claim the same prefix; the latest loaded wins.
    for (const ZonePtr &x : zones_)
        if (x->is_aisid() && !by_prefix_.count(x->prefix())) by_prefix_[x->prefix()] = x.get();
    return true;
}

const Zone *ZoneSet::find(std::string_view origin_wire) const {
    auto it = by_origin_.find(origin_wire);
    return it == by_origin_.end() ? nullptr : it->second;
}

const Zone *ZoneSet::zone_for(const WireName &name, unsigned &origin_at) const {
    if (by_origin_.empty()) return nullptr;
    if (zones_.size() <= 8) {
        // A host has a handful of zones: comparing each origin with the
        // name's suffix of the same length beats hashing every suffix.
        const Zone *best = nullptr;
        for (const ZonePtr &z : zones_) {
            unsigned zl = z->origin_labels();
            if (zl > name.nlabels || (best && zl <= best->origin_labels())) continue;
            std::string_view suf = name.suffix(name.nlabels - zl);
            if (suf.size() == z->origin_wire().size() && std::memcmp(suf.data(), z->origin_wire().data(), suf.size()) == 0)
                best = z.get();
        }
        if (best) origin_at = name.nlabels - best->origin_labels();
        return best;
    }
    // Closest enclosing zone first: try suffixes from the longest down.
    unsigned start = name.nlabels > max_origin_labels_ ? name.nlabels - static_cast<unsigned>(max_origin_labels_) : 0;
    for (unsigned i = start; i <= name.nlabels; ++i) {
        auto it = by_origin_.find(name.suffix(i));
        if (it != by_origin_.end()) {
            origin_at = i;
            return it->second;
        }
    }
    return nullptr;
}

const Zone *ZoneSet::zone_for_prefix(uint64_t prefix) const {
    auto it = by_prefix_.find(prefix);
    return it == by_prefix_.end() ? nullptr : it->second;
}

bool parse_service_name(const Zone &z, const WireName &name, unsigned origin_at, ServiceName &out) {
    unsigned first = 0;
    out = ServiceName{};
    if (origin_at >= 2) {
        if (uint32_t p = parse_perf_label(name.label(0))) {
            out.performance = static_cast<uint16_t>(p);
            first = 1;
        }
    }
    unsigned nterms = origin_at - first;
    if (nterms < 1 || nterms > 3) return false;
    // Right to left: object, function, method.
    for (unsigned k = 0; k < nterms; ++k) {
        std::string_view term = name.label(origin_at - 1 - k);
        uint16_t c = z.dim(static_cast<Dim>(k)).code(term);
        if (!c) return false;
        out.code[k] = c;
    }
    return true;
}

Match ZoneSet::lookup(const WireName &name) const {
    Match m;
    unsigned at = 0;
    const Zone *z = zone_for(name, at);
    if (!z) return m;
    m.zone = z;
    // Rule 1: records at that exact name.
    const Node *here = z->node(name.prefix_labels(at), at);
    m.node = (here && !here->rrsets.empty()) ? here : nullptr;  // an empty non-terminal has no records  // an empty non-terminal has no records
    if (z->is_aisid() && at == 3) {
        uint16_t o = z->dim(Dim::object).code(name.label(2));
        uint16_t f = o ? z->dim(Dim::function).code(name.label(1)) : 0;
        uint16_t me = f ? z->dim(Dim::method).code(name.label(0)) : 0;
        if (me) {
            const Service *s = z->service(o, f, me);
            if (s && s->refs) {
                m.service = s;
                m.parsed.code[0] = o;
                m.parsed.code[1] = f;
                m.parsed.code[2] = me;
                m.aisid = z->aisid_of(o, f, me, 0);
            }
        }
    }
    if (m.node || m.service) {
        m.kind = Match::Kind::Explicit;
        return m;
    }
    // Rule 2: a service name whose triple matches a registered service.
    if (z->is_aisid() && parse_service_name(*z, name, at, m.parsed) &&
        z->matches(m.parsed.code[0], m.parsed.code[1], m.parsed.code[2])) {
        m.kind = Match::Kind::Synthesized;
        m.aisid = z->aisid_of(m.parsed.code[0], m.parsed.code[1], m.parsed.code[2], m.parsed.performance);
        return m;
    }
    // An empty non-terminal exists (NODATA, RFC 8020): report it as explicit with no records.
    if (here) {
        m.kind = Match::Kind::Explicit;
        return m;
    }
    m.kind = Match::Kind::NxDomain;
    return m;
}

bool ZoneSet::reverse(const Aisid &a, std::string &out, const Zone **zone) const {
    const Zone *z = zone_for_prefix(a.prefix());
    if (zone) *zone = z;
    if (!z) return false;
    uint16_t o = a.object(), f = a.function(), m = a.method();
    if (!z->matches(o, f, m)) return false;
    // Appends in place: no temporaries, so a caller's reserved string never reallocates.
    out.clear();
    if (uint16_t p = a.performance()) {
        char digits[8];
        auto r = std::to_chars(digits, digits + sizeof digits, p);
        out += 'p';
        out.append(digits, r.ptr);
        out += '.';
    }
    if (!z->append_relative_name(o, f, m, out)) return false;
    out += '.';
    out += z->origin_text();
    return true;
}

bool parse_ip6_arpa(const WireName &name, Aisid &out) {
    if (name.nlabels != 34 || name.label(32) != "ip6" || name.label(33) != "arpa") return false;
    std::array<uint8_t, 16> b{};
    for (unsigned i = 0; i < 32; ++i) {
        std::string_view l = name.label(i);
        if (l.size() != 1) return false;
        char c = l[0];
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0) return false;
        // label 0 is the lowest nibble of the last byte.
        unsigned nib = 31 - i;
        b[nib / 2] |= static_cast<uint8_t>(nib % 2 ? v : v << 4);
    }
    out = Aisid(b);
    return true;
}

} // namespace aisid
