#include "aisid/cli/lookup_view.hpp"

#include "aisid/core/dname.hpp"
#include "aisid/core/rdata_text.hpp"

#include <fstream>

namespace aisid::cli {

namespace {

void add_fallbacks(const Zone &z, const Service &s, LookupView &v) {
    z.for_each_svcb(s, [&](std::string_view r) {
        SvcbEndpoint e;
        if (parse_svcb(r, e)) v.fallbacks.push_back(e.target + (e.port ? ":" + std::to_string(e.port) : ""));
    });
}

void fill_terms(const Zone &z, const Aisid &a, LookupView &v) {
    for (int d = 0; d < 3; ++d) {
        uint16_t c = a.code(static_cast<Dim>(d));
        const std::string *t = c ? z.dim(static_cast<Dim>(d)).term(c) : nullptr;
        v.terms[d] = t ? *t : "";
    }
}

std::string json_escape(const std::string &s) {
    std::string o;
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += static_cast<char>(c);
        } else if (c < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            o += b;
        } else {
            o += static_cast<char>(c);
        }
    }
    return o;
}

} // namespace

void decode_address(const ZoneSet &zones, const Aisid &a, LookupView &v) {
    v.has_aisid = true;
    v.aisid = a;
    if (const Zone *z = zones.zone_for_prefix(a.prefix())) {
        v.zone = z->origin_text();
        fill_terms(*z, a, v);
    }
}

int explain_local(const ZoneSet &zones, const std::string &query, LookupView &v, std::string &err) {
    v.query = query;
    if (auto a = Aisid::parse(query)) {
        const Zone *z = nullptr;
        std::string name;
        if (!zones.reverse(*a, name, &z)) {
            err = z ? "no registered service at " + a->to_string() + " in " + z->origin_text()
                    : a->to_string() + " is inside no AISID prefix";
            return 1;
        }
        v.name = name;
        v.why = "reverse: codes decoded with the codebook of " + z->origin_text();
        v.addresses.push_back(a->to_string());
        decode_address(zones, *a, v);
        if (const Service *s = z->service(a->object(), a->function(), a->method())) add_fallbacks(*z, *s, v);
        return 0;
    }
    WireName n;
    if (!name_from_text(query, n)) {
        err = "'" + query + "' is neither a domain name nor an IPv6 address";
        return 2;
    }
    v.name = name_to_text(n.wire());
    Match m = zones.lookup(n);
    switch (m.kind) {
    case Match::Kind::NotLocal:
        v.source = "legacy";
        err = v.name + " is under no AISID domain";
        return -1;  // the caller goes to legacy DNS
    case Match::Kind::NxDomain:
        err = v.name + " does not exist (NXDOMAIN from " + m.zone->origin_text() + ")";
        return 1;
    case Match::Kind::Explicit:
    case Match::Kind::Synthesized:
        break;
    }
    v.zone = m.zone->origin_text();
    if (m.kind == Match::Kind::Explicit) {
        if (m.service) {
            v.why = "rule 1: registered service (AAAA and SVCB records at the name)";
            v.addresses.push_back(m.aisid.to_string());
            decode_address(zones, m.aisid, v);
            add_fallbacks(*m.zone, *m.service, v);
            return 0;
        }
        v.why = "rule 1: records at the name";
        const RRset *aaaa = m.node ? m.node->find(kTypeAAAA) : nullptr;
        if (!aaaa) {
            err = v.name + " has no AAAA record (NODATA)";
            return 1;
        }
        for (const std::string &r : aaaa->rdata) {
            std::array<uint8_t, 16> b;
            std::copy(r.begin(), r.end(), b.begin());
            v.addresses.push_back(Aisid(b).to_string());
        }
        v.source = m.zone->is_aisid() ? "aisid" : "legacy";
        return 0;
    }
    v.why = "rule 2: synthesized from the codebook";
    if (!m.parsed.code[1] || !m.parsed.code[2]) v.why += " (0 = any: the egress gateway picks a matching service)";
    v.addresses.push_back(m.aisid.to_string());
    decode_address(zones, m.aisid, v);
    if (const Service *s = m.zone->service(m.parsed.code[0], m.parsed.code[1], m.parsed.code[2]))
        add_fallbacks(*m.zone, *s, v);
    return 0;
}

void read_verification(const ZoneSet &zones, LookupView &v) {
    WireName w;
    if (v.zone.empty() || !name_from_text(v.zone, w)) return;
    const Zone *z = zones.find(w.wire());
    if (!z || z->file().empty()) return;
    v.zone_file = z->file();
    std::ifstream f(v.zone_file);
    std::string line;
    static const std::string kTag = "; aisid-verified:";
    if (!std::getline(f, line) || line.rfind(kTag, 0) != 0) return;
    size_t i = kTag.size();
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') ++i;
        size_t e = line.find(' ', i);
        std::string tok = line.substr(i, e == std::string::npos ? std::string::npos : e - i);
        i = e == std::string::npos ? line.size() : e;
        size_t eq = tok.find('=');
        if (eq != std::string::npos && eq > 0) v.verified.emplace_back(tok.substr(0, eq), tok.substr(eq + 1));
    }
}

namespace {

std::string verified_value(const LookupView &v, const std::string &k) {
    for (auto &[key, val] : v.verified)
        if (key == k) return val;
    return {};
}

} // namespace

void print_text(const LookupView &v, FILE *out) {
    std::fprintf(out, "%s\n", v.name.c_str());
    std::fprintf(out, "  source:      %s\n", v.source.c_str());
    for (const std::string &a : v.addresses) std::fprintf(out, "  address:     %s\n", a.c_str());
    if (v.has_aisid) {
        std::fprintf(out, "  prefix:      %s\n", format_prefix64(v.aisid.prefix()).c_str());
        static const char *labels[3] = {"object:     ", "function:   ", "method:     "};
        for (int d = 0; d < 3; ++d) {
            uint16_t c = v.aisid.code(static_cast<Dim>(d));
            std::string t = c == 0 ? "any" : v.terms[d].empty() ? "not in the codebook" : v.terms[d];
            std::fprintf(out, "  %s %u (%s)\n", labels[d], c, t.c_str());
        }
        uint16_t p = v.aisid.performance();
        if (p) std::fprintf(out, "  performance: %u (latency budget %u ms)\n", p, p);
        else std::fprintf(out, "  performance: 0 (best effort)\n");
    }
    for (const std::string &f : v.fallbacks) std::fprintf(out, "  fallback:    %s (legacy endpoint, SVCB)\n", f.c_str());
    if (!v.zone.empty()) std::fprintf(out, "  zone:        %s\n", v.zone.c_str());
    if (!v.why.empty()) std::fprintf(out, "  why:         %s\n", v.why.c_str());
    if (!v.zone_file.empty()) {
        if (v.verified.empty()) {
            std::fprintf(out, "  verified:    no (%s carries no verification by aisidd)\n", v.zone_file.c_str());
        } else {
            std::string how, tag = verified_value(v, "key-tag"), src = verified_value(v, "source");
            if (verified_value(v, "zonemd") == "sha384") how = "ZONEMD SHA-384";
            if (!tag.empty())
                how += (how.empty() ? "" : ", ") + std::string("DNSSEC key tag ") + tag + " (anchor " +
                       verified_value(v, "anchor") + ")";
            std::fprintf(out, "  verified:    yes, %s, at %s, serial %s%s\n", how.c_str(),
                         verified_value(v, "time").c_str(), verified_value(v, "serial").c_str(),
                         src.empty() ? "" : (", from " + src).c_str());
        }
    }
}

void print_json(const LookupView &v, FILE *out) {
    std::string s = "{\"query\":\"" + json_escape(v.query) + "\",\"name\":\"" + json_escape(v.name) +
                    "\",\"source\":\"" + v.source + "\",\"addresses\":[";
    for (size_t i = 0; i < v.addresses.size(); ++i) s += (i ? ",\"" : "\"") + v.addresses[i] + "\"";
    s += "]";
    if (v.has_aisid) {
        // The prefix is text: as a JSON number its 64 bits would be rounded to a
        // double by jq and every JavaScript client, naming a different prefix.
        s += ",\"aisid\":{\"address\":\"" + v.aisid.to_string() + "\",\"prefix\":\"" +
             format_prefix64(v.aisid.prefix()) + "\",\"object\":" + std::to_string(v.aisid.object()) +
             ",\"function\":" + std::to_string(v.aisid.function()) + ",\"method\":" + std::to_string(v.aisid.method()) +
             ",\"performance\":" + std::to_string(v.aisid.performance()) + ",\"terms\":{";
        static const char *keys[3] = {"object", "function", "method"};
        for (int d = 0; d < 3; ++d)
            s += std::string(d ? "," : "") + "\"" + keys[d] + "\":" +
                 (v.terms[d].empty() ? std::string("null") : "\"" + json_escape(v.terms[d]) + "\"");
        s += "}}";
    }
    s += ",\"fallbacks\":[";
    for (size_t i = 0; i < v.fallbacks.size(); ++i) s += (i ? ",\"" : "\"") + json_escape(v.fallbacks[i]) + "\"";
    s += "]";
    if (!v.zone.empty()) s += ",\"zone\":\"" + json_escape(v.zone) + "\"";
    if (!v.why.empty()) s += ",\"why\":\"" + json_escape(v.why) + "\"";
    if (!v.zone_file.empty()) {
        s += ",\"zone_file\":\"" + json_escape(v.zone_file) + "\",\"verified\":";
        if (v.verified.empty()) {
            s += "null";
        } else {
            s += "{";
            for (size_t i = 0; i < v.verified.size(); ++i) {
                const auto &[k, val] = v.verified[i];
                bool num = (k == "serial" || k == "key-tag" || k == "sig-expires") && !val.empty() &&
                           val.find_first_not_of("0123456789") == std::string::npos;
                std::string key = k;
                for (char &c : key)
                    if (c == '-') c = '_';
                s += (i ? ",\"" : "\"") + json_escape(key) + "\":" + (num ? val : "\"" + json_escape(val) + "\"");
            }
            s += "}";
        }
    }
    s += "}\n";
    std::fputs(s.c_str(), out);
}

} // namespace aisid::cli
