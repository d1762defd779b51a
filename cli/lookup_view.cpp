#include "lookup_view.hpp"

#include <arpa/inet.h>

namespace aisid::cli {

namespace {

// Every SVCB record of the service as the zone holds it, "target[:port]".
void add_fallbacks(const Answer &a, LookupView &v) {
    for (const Svcb &s : a.svcb()) v.fallbacks.push_back(s.target + (s.port ? ":" + std::to_string(s.port) : ""));
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

// The AISID part of an answer from local zone data: the address, its fields
// and terms, the zone whose prefix holds it.
void decode_answer(const Answer &a, LookupView &v) {
    v.has_aisid = true;
    v.aisid = Aisid::from_in6(a.address(0));
    if (!a.aisid()) return; // no loaded prefix holds it
    if (!a.zone().empty()) v.zone = std::string(a.zone());
    for (int d = 0; d < 3; ++d) v.terms[d] = std::string(a.term(static_cast<Dim>(d)));
}

// How the zone data was verified (the SDK read it with the zone).
void read_verification(const Answer &a, LookupView &v) {
    if (v.zone.empty() || a.zone_file().empty()) return;
    v.zone_file = std::string(a.zone_file());
    v.verified = a.verification();
}

int explain_legacy(const Status st, const Answer *a, const std::string &query, LookupView &v, std::string &err) {
    v.source = "legacy";
    switch (st) {
    case Status::ok: break;
    case Status::not_found: err = v.name + " does not exist (NXDOMAIN from legacy DNS)"; return 1;
    case Status::no_data: err = v.name + " has no address records (NODATA)"; return 1;
    case Status::invalid: err = "'" + query + "' is not a valid name"; return 2;
    default: err = v.name + ": legacy DNS failed: " + to_string(st); return 3;
    }
    for (const in6_addr &x : a->addresses()) {
        char b[INET6_ADDRSTRLEN];
        // IPv4 answers are IPv4-mapped in the SDK; shown as the A record gave them.
        if (IN6_IS_ADDR_V4MAPPED(&x))
            inet_ntop(AF_INET, &x.s6_addr[12], b, sizeof b);
        else
            inet_ntop(AF_INET6, &x, b, sizeof b);
        v.addresses.push_back(b);
    }
    v.why = "under no AISID domain: legacy DNS (c-ares), TTL " + std::to_string(a->ttl());
    return 0;
}

} // namespace

void decode_address(Client &client, const Aisid &a, LookupView &v) {
    v.has_aisid = true;
    v.aisid = a;
    // A literal address resolves to itself, decoded when a loaded prefix holds it.
    auto r = client.resolve(a.to_string());
    if (!r || r->zone().empty()) return;
    v.zone = std::string(r->zone());
    for (int d = 0; d < 3; ++d) v.terms[d] = std::string(r->term(static_cast<Dim>(d)));
}

int explain_local(Client &client, const std::string &query, LookupView &v, std::string &err) {
    v.query = query;
    Explanation e = client.explain(query);
    if (!e.answer) {
        if (e.status == Status::invalid) {
            err = "'" + query + "' is neither a domain name nor an IPv6 address";
            return 2;
        }
        err = query + ": " + to_string(e.status) + " (" + last_error() + ")";
        return 3;
    }
    const Answer &a = *e.answer;
    if (a.rule() == Rule::reverse) {
        std::string addr = Aisid::parse(query)->to_string();
        if (e.status != Status::ok) {
            err = !a.local_zone().empty() ? "no registered service at " + addr + " in " + std::string(a.local_zone())
                                          : addr + " is inside no AISID prefix";
            return 1;
        }
        v.name = std::string(a.name());
        v.why = "reverse: codes decoded with the codebook of " + std::string(a.local_zone());
        v.addresses.push_back(addr);
        decode_answer(a, v);
        add_fallbacks(a, v);
        read_verification(a, v);
        return 0;
    }
    v.name = std::string(a.name());
    switch (a.rule()) {
    case Rule::none: return explain_legacy(e.status, &a, query, v, err);
    case Rule::nxdomain: err = v.name + " does not exist (NXDOMAIN from " + std::string(a.local_zone()) + ")"; return 1;
    case Rule::records: {
        v.zone = std::string(a.local_zone());
        v.why = "rule 1: records at the name";
        // The AAAA records; A records (IPv4-mapped in the answer) are not shown.
        for (const in6_addr &x : a.addresses())
            if (!IN6_IS_ADDR_V4MAPPED(&x)) v.addresses.push_back(Aisid::from_in6(x).to_string());
        if (v.addresses.empty()) {
            err = v.name + " has no AAAA record (NODATA)";
            return 1;
        }
        v.source = a.source() == Source::aisid ? "aisid" : "legacy";
        read_verification(a, v);
        return 0;
    }
    case Rule::service:
    case Rule::synthesized: break;
    case Rule::reverse: break;
    }
    v.zone = std::string(a.local_zone());
    if (a.rule() == Rule::service) {
        v.why = "rule 1: registered service (AAAA and SVCB records at the name)";
    } else {
        v.why = "rule 2: synthesized from the codebook";
        auto x = a.aisid();
        if (x && (!x->function() || !x->method())) v.why += " (0 = any: the egress gateway picks a matching service)";
    }
    v.addresses.push_back(Aisid::from_in6(a.address(0)).to_string());
    decode_answer(a, v);
    add_fallbacks(a, v);
    read_verification(a, v);
    return 0;
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
