// aisid-lookup --server: the same view, built from a DNS server's answers
// (ldns), with the public API for what the client's zone data adds.
#include "lookup_view.hpp"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <net/if.h>

#include <cstring>
#include <memory>
#include <optional>

namespace aisid::cli {

namespace {

// --server ADDR[:PORT], 53 when no port is given: the grammar of every aisid
// program (aisid_parse_sockaddr).
std::optional<sockaddr_storage> parse_server(const std::string &text) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (aisid_parse_sockaddr(text.c_str(), 53, &ss, &len) != AISID_OK) return std::nullopt;
    return ss;
}

std::string host_text(const sockaddr_storage &ss) {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in &>(ss).sin_addr, buf, sizeof buf);
        return buf;
    }
    const auto &s6 = reinterpret_cast<const sockaddr_in6 &>(ss);
    inet_ntop(AF_INET6, &s6.sin6_addr, buf, sizeof buf);
    std::string out = buf;
    if (s6.sin6_scope_id != 0) {
        char name[IF_NAMESIZE];
        out += '%';
        out += if_indextoname(s6.sin6_scope_id, name) ? std::string(name) : std::to_string(s6.sin6_scope_id);
    }
    return out;
}

// The labels of a name, left to right, as their bytes (escapes undone), from
// its canonical text; nullopt when it is no domain name.
std::optional<std::vector<std::string>> name_labels(const std::string &name) {
    auto canon = canonical_name(name);
    if (!canon) return std::nullopt;
    const std::string &t = *canon;
    std::vector<std::string> out;
    std::string cur;
    for (size_t i = 0; i < t.size(); ++i) {
        char c = t[i];
        if (c == '\\' && i + 1 < t.size()) {
            if (t[i + 1] >= '0' && t[i + 1] <= '9' && i + 3 < t.size()) {
                cur += static_cast<char>((t[i + 1] - '0') * 100 + (t[i + 2] - '0') * 10 + (t[i + 3] - '0'));
                i += 3;
            } else {
                cur += t[++i];
            }
        } else if (c == '.') {
            if (!cur.empty()) out.push_back(std::move(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

// "p<perf>", perf 1..65535 without a leading zero (SPEC §2).
bool is_perf_label(const std::string &l) {
    if (l.size() < 2 || l.size() > 6 || l[0] != 'p' || l[1] == '0') return false;
    uint32_t v = 0;
    for (size_t i = 1; i < l.size(); ++i) {
        if (l[i] < '0' || l[i] > '9') return false;
        v = v * 10 + static_cast<uint32_t>(l[i] - '0');
    }
    return v <= 65535;
}

using ResPtr = std::unique_ptr<ldns_resolver, void (*)(ldns_resolver *)>;
using PktPtr = std::unique_ptr<ldns_pkt, void (*)(ldns_pkt *)>;
using RdfPtr = std::unique_ptr<ldns_rdf, void (*)(ldns_rdf *)>;

struct Asker {
    ldns_resolver *res;
    std::string err;
    // Sends one question; nullptr and err set on a network failure.
    PktPtr ask(const std::string &name, ldns_rr_type type) {
        ldns_rdf *dn = ldns_dname_new_frm_str(name.c_str());
        if (!dn) {
            err = "bad name " + name;
            return PktPtr(nullptr, ldns_pkt_free);
        }
        RdfPtr owned(dn, ldns_rdf_deep_free);
        ldns_pkt *p = nullptr;
        ldns_status st = ldns_resolver_send(&p, res, dn, type, LDNS_RR_CLASS_IN, LDNS_RD);
        if (st != LDNS_STATUS_OK || !p) {
            err = std::string("no answer from the server: ") + ldns_get_errorstr_by_id(st);
            return PktPtr(nullptr, ldns_pkt_free);
        }
        return PktPtr(p, ldns_pkt_free);
    }
};

std::string rdf_str(const ldns_rdf *r) {
    char *s = ldns_rdf2str(r);
    std::string o = s ? s : "";
    free(s);
    return o;
}

int rcode_exit(ldns_pkt *p, const std::string &what, std::string &err) {
    switch (ldns_pkt_get_rcode(p)) {
    case LDNS_RCODE_NOERROR: return 0;
    case LDNS_RCODE_NXDOMAIN: err = what + " does not exist (NXDOMAIN)"; return 1;
    case LDNS_RCODE_REFUSED: err = "the server refused the query for " + what; return 4;
    default: {
        char *s = ldns_pkt_rcode2str(ldns_pkt_get_rcode(p));
        err = "the server answered " + std::string(s ? s : "an error") + " for " + what;
        free(s);
        return 3;
    }
    }
}

// Finds the AISID prefix of the zone that holds `name` by asking for its SOA
// and then the zone's _aisid TXT.
bool server_prefix(Asker &a, const std::string &name, std::string &zone, uint64_t &prefix) {
    PktPtr p = a.ask(name, LDNS_RR_TYPE_SOA);
    if (!p) return false;
    ldns_rr_list *lists[2] = {ldns_pkt_answer(p.get()), ldns_pkt_authority(p.get())};
    for (ldns_rr_list *l : lists)
        for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); ++i)
            if (ldns_rr_get_type(ldns_rr_list_rr(l, i)) == LDNS_RR_TYPE_SOA) zone = rdf_str(ldns_rr_owner(ldns_rr_list_rr(l, i)));
    if (zone.empty()) return false;
    PktPtr t = a.ask("_aisid." + zone, LDNS_RR_TYPE_TXT);
    if (!t) return false;
    ldns_rr_list *ans = ldns_pkt_answer(t.get());
    for (size_t i = 0; ans && i < ldns_rr_list_rr_count(ans); ++i) {
        ldns_rr *rr = ldns_rr_list_rr(ans, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT) continue;
        for (size_t k = 0; k < ldns_rr_rd_count(rr); ++k) {
            std::string s = rdf_str(ldns_rr_rdf(rr, k));
            if (s.size() >= 2 && s.front() == '"') s = s.substr(1, s.size() - 2);
            if (s.rfind("prefix=", 0) == 0)
                if (auto pf = parse_prefix64(s.substr(7))) {
                    prefix = *pf;
                    return true;
                }
        }
    }
    return false;
}

// Terms from the service name itself, right to left: object, function, method.
void terms_from_name(const std::string &name, const std::string &zone, LookupView &v) {
    auto n = name_labels(name), z = name_labels(zone);
    if (!n || !z || n->size() < z->size()) return;
    size_t at = n->size() - z->size();
    size_t first = (at >= 2 && is_perf_label((*n)[0])) ? 1 : 0;
    for (size_t k = 0; k + first < at && k < 3; ++k) {
        Dim d = static_cast<Dim>(k);
        if (v.aisid.code(d)) v.terms[k] = (*n)[at - 1 - k];
    }
}

} // namespace

int explain_server(Client &client, const std::string &server, const std::string &query, LookupView &v,
                   std::string &err) {
    auto sa = parse_server(server);
    if (!sa) {
        err = "bad --server '" + server + "' (want ADDR[:PORT] or [V6]:PORT)";
        return 2;
    }
    ldns_resolver *r = ldns_resolver_new();
    ResPtr res(r, ldns_resolver_deep_free);
    uint16_t port = 0;
    ldns_rdf *ns = ldns_sockaddr_storage2rdf(&*sa, &port);
    if (!ns) {
        err = "bad server address " + host_text(*sa);
        return 2;
    }
    ldns_resolver_push_nameserver(r, ns);
    ldns_rdf_deep_free(ns);
    ldns_resolver_set_port(r, port);
    ldns_resolver_set_retry(r, 2);
    ldns_resolver_set_retrans(r, 1);
    ldns_resolver_set_timeout(r, timeval{2, 0});
    ldns_resolver_set_recursive(r, true);
    ldns_resolver_set_fallback(r, true);  // TCP when the answer is truncated
    Asker a{r, {}};
    v.query = query;

    if (auto addr = Aisid::parse(query)) {
        // Reverse: PTR for the ip6.arpa name.
        ldns_rdf *arpa_in = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_AAAA, addr->to_string().c_str());
        ldns_rdf *arpa = arpa_in ? ldns_rdf_address_reverse(arpa_in) : nullptr;
        if (arpa_in) ldns_rdf_deep_free(arpa_in);
        if (!arpa) {
            err = "cannot build the reverse name";
            return 2;
        }
        std::string rname = rdf_str(arpa);
        ldns_rdf_deep_free(arpa);
        PktPtr p = a.ask(rname, LDNS_RR_TYPE_PTR);
        if (!p) {
            err = a.err;
            return 3;
        }
        if (int rc = rcode_exit(p.get(), addr->to_string(), err)) return rc;
        ldns_rr_list *ans = ldns_pkt_answer(p.get());
        for (size_t i = 0; ans && i < ldns_rr_list_rr_count(ans); ++i)
            if (ldns_rr_get_type(ldns_rr_list_rr(ans, i)) == LDNS_RR_TYPE_PTR)
                v.name = rdf_str(ldns_rr_rdf(ldns_rr_list_rr(ans, i), 0));
        if (v.name.empty()) {
            err = "no PTR record for " + addr->to_string();
            return 1;
        }
        v.addresses.push_back(addr->to_string());
        decode_address(client, *addr, v);
        std::string zone;
        uint64_t prefix = 0;
        if (server_prefix(a, v.name, zone, prefix) && prefix == addr->prefix()) {
            v.zone = zone;
            terms_from_name(v.name, zone, v);
        }
        v.why = "PTR answer from " + server + (ldns_pkt_aa(p.get()) ? " (authoritative)" : "");
        return 0;
    }

    auto canon = canonical_name(query);
    if (!canon) {
        err = "'" + query + "' is neither a domain name nor an IPv6 address";
        return 2;
    }
    v.name = *canon;
    PktPtr p = a.ask(v.name, LDNS_RR_TYPE_AAAA);
    if (!p) {
        err = a.err;
        return 3;
    }
    if (int rc = rcode_exit(p.get(), v.name, err)) return rc;
    bool aa = ldns_pkt_aa(p.get());
    ldns_rr_list *ans = ldns_pkt_answer(p.get());
    for (size_t i = 0; ans && i < ldns_rr_list_rr_count(ans); ++i) {
        ldns_rr *rr = ldns_rr_list_rr(ans, i);
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_AAAA) v.addresses.push_back(rdf_str(ldns_rr_rdf(rr, 0)));
    }
    // Legacy names may have only A records: show them IPv4-mapped-free, as given.
    if (v.addresses.empty()) {
        PktPtr p4 = a.ask(v.name, LDNS_RR_TYPE_A);
        if (p4 && ldns_pkt_get_rcode(p4.get()) == LDNS_RCODE_NOERROR) {
            ldns_rr_list *a4 = ldns_pkt_answer(p4.get());
            for (size_t i = 0; a4 && i < ldns_rr_list_rr_count(a4); ++i)
                if (ldns_rr_get_type(ldns_rr_list_rr(a4, i)) == LDNS_RR_TYPE_A)
                    v.addresses.push_back(rdf_str(ldns_rr_rdf(ldns_rr_list_rr(a4, i), 0)));
        }
    }
    if (v.addresses.empty()) {
        err = v.name + " has no address records (NODATA)";
        return 1;
    }
    v.source = "legacy";
    std::string zone;
    uint64_t prefix = 0;
    auto first = Aisid::parse(v.addresses.front());
    if (first && server_prefix(a, v.name, zone, prefix) && prefix == first->prefix()) {
        v.source = "aisid";
        v.zone = zone;
        decode_address(client, *first, v);
        if (v.terms[0].empty()) terms_from_name(v.name, zone, v);
        // The legacy endpoint, if the server has the service's SVCB.
        PktPtr s = a.ask(v.name, static_cast<ldns_rr_type>(64));
        if (s && ldns_pkt_get_rcode(s.get()) == LDNS_RCODE_NOERROR) {
            ldns_rr_list *sl = ldns_pkt_answer(s.get());
            for (size_t i = 0; sl && i < ldns_rr_list_rr_count(sl); ++i) {
                ldns_rr *rr = ldns_rr_list_rr(sl, i);
                if (ldns_rr_get_type(rr) != 64 || ldns_rr_rd_count(rr) < 2) continue;
                std::string f = rdf_str(ldns_rr_rdf(rr, 1));
                for (size_t k = 2; k < ldns_rr_rd_count(rr); ++k) {
                    std::string kv = rdf_str(ldns_rr_rdf(rr, k));
                    if (kv.rfind("port=", 0) == 0) f += ":" + kv.substr(5);
                }
                v.fallbacks.push_back(f);
            }
        }
        v.why = "AAAA inside the AISID prefix of " + zone + " (answered by " + server +
                (aa ? ", authoritative)" : ")");
    } else {
        v.why = "answered by " + server + (aa ? " (authoritative)" : "");
    }
    return 0;
}

} // namespace aisid::cli
