// aisid-admin: the AISID lifecycle against a primary (SPEC §4): define,
// register, migrate, decommission, query — as RFC 2136 UPDATEs signed with
// TSIG hmac-sha256 (RFC 8945), checked against the zone's codebook (read by
// AXFR) before they are sent, with prerequisites that make a race lose
// instead of corrupting the codebook. Works against aisidd and BIND 9.
#include "aisid/version.h"
#include "aisid/core/rdata_text.hpp"
#include "aisid/proto/records.hpp"
#include "aisid/proto/tsig.hpp"
#include "aisid/proto/update.hpp"
#include "aisid/proto/xfr.hpp"
#include "aisid/core/zone_builder.hpp"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace aisid;
using namespace aisid::proto;

namespace {

const char *kUsage =
    "usage: aisid-admin --server ADDR[:PORT] --key NAME:BASE64SECRET [--zone ZONE] COMMAND\n"
    "\n"
    "commands:\n"
    "  define object|function|method TERM [--code N]   add a codebook term (lowest free code by default)\n"
    "  register NAME [--fallback HOST:PORT]           add a service's AAAA (its AISID) and SVCB fallback\n"
    "  migrate NAME --fallback HOST:PORT              move the service's legacy endpoint; the AISID stays\n"
    "  decommission NAME                              delete the service's records\n"
    "  query NAME                                     show the service's AISID and fallback\n"
    "\n"
    "NAME is <method>.<function>.<object>.<domain>. --zone defaults to the zone that\n"
    "holds NAME (found by an SOA query); define needs it.\n"
    "\n"
    "  --server ADDR[:PORT]  the primary (default port 53)\n"
    "  --key NAME:SECRET     hmac-sha256 TSIG key (also hmac-sha256:NAME:SECRET)\n"
    "  --timeout MS          per exchange (default 5000)\n"
    "  --help, --version\n"
    "\n"
    "exit: 0 ok, 1 not found or conflict, 2 usage, 3 network, 4 refused (TSIG, ACL)\n";

struct AdminError {
    int code;
    std::string msg;
};

[[noreturn]] void fail(int code, const std::string &msg) { throw AdminError{code, msg}; }

struct Ctx {
    sockaddr_storage server{};
    socklen_t slen = 0;
    std::string server_text;
    TsigKey key;
    std::string zone_wire;
    int timeout_ms = 5000;
};

std::string lower(std::string s) {
    for (char &c : s) c = ascii_lower(c);
    return s;
}

std::string absolute(std::string n) {
    if (n.empty() || n.back() != '.') n += '.';
    return lower(n);
}

std::string pkt_wire(ldns_pkt *p) {
    uint8_t *buf = nullptr;
    size_t n = 0;
    if (ldns_pkt2wire(&buf, p, &n) != LDNS_STATUS_OK) fail(2, "cannot encode a message");
    std::string s(reinterpret_cast<const char *>(buf), n);
    free(buf);
    return s;
}

// The zone that holds `name`: the owner of the SOA an SOA query returns
// (answer for the apex, authority for a name below it).
std::string find_zone(const Ctx &c, const std::string &name_text) {
    std::string w;
    if (!wire_from_text(name_text, w)) fail(2, "'" + name_text + "' is not a domain name");
    LdnsRdfPtr owner(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, w.size(), w.data()));
    LdnsPktPtr q(ldns_pkt_query_new(owner.release(), LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, LDNS_RD));
    ldns_pkt_set_random_id(q.get());
    std::string req = pkt_wire(q.get()), resp, err;
    if (!udp_exchange(c.server, c.slen, req, resp, c.timeout_ms, err)) {
        std::vector<std::string> rs;
        if (!tcp_exchange(c.server, c.slen, req, rs, c.timeout_ms, err)) fail(3, err);
        resp = rs.front();
    }
    ldns_pkt *raw = nullptr;
    if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t *>(resp.data()), resp.size()) != LDNS_STATUS_OK)
        fail(3, "malformed answer from " + c.server_text);
    LdnsPktPtr p(raw);
    for (const ldns_rr_list *l : {ldns_pkt_answer(p.get()), ldns_pkt_authority(p.get())})
        for (const Record &r : records_of(l))
            if (r.type == kTypeSOA) return r.owner;
    auto rc = ldns_pkt_get_rcode(p.get());
    if (rc == LDNS_RCODE_REFUSED) fail(4, c.server_text + " refused the SOA query for " + name_text);
    fail(1, "no zone holds " + name_text + " at " + c.server_text + " (no SOA in the answer); give --zone");
}

// The zone as it is now, read by a signed AXFR.
ZonePtr read_zone(const Ctx &c) {
    XfrResult r = xfr_pull(c.server, c.slen, c.zone_wire, std::nullopt, &c.key, c.timeout_ms);
    std::string zt = name_to_text(c.zone_wire);
    if (r.kind != XfrResult::Kind::full) {
        if (r.refused) fail(4, "zone transfer of " + zt + " refused: " + r.why);
        fail(3, "zone transfer of " + zt + " from " + c.server_text + " failed: " + r.why);
    }
    ZoneBuilder b("AXFR " + zt);
    for (const Record &rec : r.full) {
        ZoneError err;
        if (!b.add(rec.owner, rec.type, rec.ttl, rec.rdata, "AXFR " + zt, 0, err))
            fail(1, "zone " + zt + " breaks the AISID rules: " + err.message);
    }
    auto z = b.finish();
    if (!z) fail(1, "zone " + zt + " breaks the AISID rules: " + z.error().message);
    if (!(*z)->is_aisid()) fail(1, "zone " + zt + " is not an AISID domain (no _aisid TXT at its apex)");
    return *z;
}

Record parse_rr(const std::string &text) {
    ldns_rr *raw = nullptr;
    if (ldns_rr_new_frm_str(&raw, text.c_str(), 300, nullptr, nullptr) != LDNS_STATUS_OK)
        fail(2, "cannot build the record '" + text + "'");
    Record r = record_from_ldns(raw);
    ldns_rr_free(raw);
    return r;
}

Record bare(const std::string &owner_wire, uint16_t type, uint16_t cls) {
    Record r;
    r.owner = owner_wire;
    r.type = type;
    r.cls = cls;
    return r;
}

Record soa_value(const Zone &z) {
    // RFC 2136 §2.4.2: a value-dependent prerequisite (TTL 0, class IN).
    return Record{z.origin_wire(), kTypeSOA, kClassIN, 0, z.soa().rdata.at(0)};
}

enum class Sent { ok, prereq_failed };

// Sends one UPDATE over TCP, signed; checks the answer's signature.
Sent send_update(const Ctx &c, const std::vector<Record> &prereq, const std::vector<Record> &updates,
                 std::string &rcode_text) {
    for (const std::vector<Record> *rs : {&prereq, &updates})
        for (const Record &r : *rs)
            if (!record_to_ldns(r)) fail(2, "cannot encode a record of the update");
    LdnsRdfPtr zone(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, c.zone_wire.size(), c.zone_wire.data()));
    LdnsRrListPtr pr = ldns_list_of(prereq), up = ldns_list_of(updates);
    LdnsPktPtr u(ldns_update_pkt_new(ldns_rdf_clone(zone.get()), LDNS_RR_CLASS_IN, pr.get(), up.get(), nullptr));
    ldns_pkt_set_random_id(u.get());
    std::string req;
    LdnsRdfPtr mac;
    if (!tsig_sign_pkt(u.get(), c.key, nullptr, false, req, &mac)) fail(2, "cannot sign the update");
    std::vector<std::string> rs;
    std::string err;
    if (!tcp_exchange(c.server, c.slen, req, rs, c.timeout_ms, err)) fail(3, err);
    const std::string &resp = rs.front();
    ldns_pkt *raw = nullptr;
    if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t *>(resp.data()), resp.size()) != LDNS_STATUS_OK)
        fail(3, "malformed answer from " + c.server_text);
    LdnsPktPtr p(raw);
    unsigned rc = ldns_pkt_get_rcode(p.get());
    rcode_text = rcode_name(rc);
    if (rc == kRcodeNotAuth || rc == kRcodeRefused) {
        std::string extra;
        if (const ldns_rr *t = ldns_pkt_tsig(p.get()); t && ldns_rr_rd_count(t) >= 6) {
            const ldns_rdf *e = ldns_rr_rdf(t, 5);
            uint16_t code = ldns_rdf_size(e) == 2 ? static_cast<uint16_t>((ldns_rdf_data(e)[0] << 8) | ldns_rdf_data(e)[1]) : 0;
            if (code == kTsigBadSig) extra = " (TSIG: BADSIG, wrong secret)";
            else if (code == kTsigBadKey) extra = " (TSIG: BADKEY, unknown key)";
            else if (code == kTsigBadTime) extra = " (TSIG: BADTIME, check the clocks)";
        }
        fail(4, c.server_text + " refused the update: " + rcode_text + extra);
    }
    if (!tsig_verify_response(p.get(), reinterpret_cast<const uint8_t *>(resp.data()), resp.size(), c.key, mac.get(),
                              false, nullptr))
        fail(4, "the answer from " + c.server_text + " is not signed with " + c.key.name);
    if (rc == kRcodeNoError) return Sent::ok;
    if (rc == kRcodeYxDomain || rc == kRcodeYxRrset || rc == kRcodeNxDomain || rc == kRcodeNxRrset)
        return Sent::prereq_failed;
    fail(3, c.server_text + " answered " + rcode_text);
}

struct ServiceRef {
    std::string owner;  // wire
    std::string text;   // with trailing dot
    uint16_t code[3] = {0, 0, 0};
    std::string term[3];
};

ServiceRef parse_service(const Zone &z, const std::string &name) {
    ServiceRef s;
    s.text = absolute(name);
    if (!wire_from_text(s.text, s.owner)) fail(2, "'" + name + "' is not a domain name");
    WireName n;
    size_t pos = 0;
    name_from_wire(reinterpret_cast<const uint8_t *>(s.owner.data()), s.owner.size(), pos, n);
    if (n.nlabels != z.origin_labels() + 3 || n.suffix(3) != z.origin_wire())
        fail(2, s.text + " is not <method>.<function>.<object>." + z.origin_text());
    for (int i = 0; i < 3; ++i) {
        s.term[2 - i] = std::string(n.label(static_cast<unsigned>(i)));
        Dim d = static_cast<Dim>(2 - i);
        if (!valid_term(s.term[2 - i])) fail(2, "'" + s.term[2 - i] + "' is not a valid " + dim_name(d) + " term");
        s.code[2 - i] = z.dim(d).code(s.term[2 - i]);
        if (!s.code[2 - i])
            fail(1, std::string(dim_name(d)) + " term '" + s.term[2 - i] + "' is not in the codebook of " +
                        z.origin_text() + " (define it first)");
    }
    return s;
}

Record codebook_record(const Zone &z, Dim d, const std::string &term, uint16_t code, uint32_t ttl) {
    std::string rel = term + "._" + dim_name(d) + ".";
    return parse_rr(rel + z.origin_text() + " " + std::to_string(ttl) + " IN TXT \"code=" + std::to_string(code) + "\"");
}

std::string svcb_text(const std::string &fallback) {
    // HOST:PORT (HOST may be [v6]: SVCB names a host, so a name is expected).
    std::string host = fallback, port;
    size_t c = fallback.rfind(':');
    if (c != std::string::npos && fallback.find(']') == std::string::npos) {
        host = fallback.substr(0, c);
        port = fallback.substr(c + 1);
    }
    if (host.empty()) fail(2, "--fallback needs HOST:PORT");
    if (!port.empty()) {
        char *end = nullptr;
        unsigned long p = std::strtoul(port.c_str(), &end, 10);
        if (!end || *end || p == 0 || p > 65535) fail(2, "bad port in --fallback '" + fallback + "'");
    }
    std::string h = absolute(host);
    std::string w;
    if (!wire_from_text(h, w)) fail(2, "bad host in --fallback '" + fallback + "'");
    return "1 " + h + (port.empty() ? "" : " port=" + port);
}

std::string fallback_of(const Zone &z, const ServiceRef &s) {
    std::string out;
    for (const Record &r : records_at(z, s.owner))
        if (r.type == kTypeSVCB) {
            SvcbEndpoint e;
            if (parse_svcb(r.rdata, e)) {
                if (!out.empty()) out += ", ";
                std::string t = e.target;
                if (t.size() > 1 && t.back() == '.') t.pop_back();
                out += t + (e.port ? ":" + std::to_string(e.port) : "");
            }
        }
    return out;
}

int run(int argc, char **argv) {
    Ctx c;
    std::string server, key, zone, code_text, fallback, timeout;
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](std::string &out) {
            size_t eq = a.find('=');
            if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
                out = a.substr(eq + 1);
                return;
            }
            if (i + 1 >= argc) fail(2, a + " needs a value");
            out = argv[++i];
        };
        std::string opt = a.substr(0, a.find('='));
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (a == "--version") {
            std::printf("aisid-admin %s\n", AISID_VERSION);
            return 0;
        } else if (opt == "--server") value(server);
        else if (opt == "--key") value(key);
        else if (opt == "--zone") value(zone);
        else if (opt == "--code") value(code_text);
        else if (opt == "--fallback") value(fallback);
        else if (opt == "--timeout") value(timeout);
        else if (a.rfind("--", 0) == 0) fail(2, "unknown option " + a);
        else args.push_back(a);
    }
    if (server.empty()) fail(2, "--server ADDR[:PORT] is required");
    if (key.empty()) fail(2, "--key NAME:BASE64SECRET is required");
    if (args.empty()) fail(2, "no command (define, register, migrate, decommission, query)");
    auto server_addr = parse_sockaddr(server, AddressRules{.default_port = 53});
    if (!server_addr) fail(2, "bad --server '" + server + "' (want ADDR[:PORT])");
    c.server = server_addr->ss;
    c.slen = server_addr->len;
    c.server_text = server_addr->to_string();
    auto k = parse_tsig_key(key);
    if (!k) fail(2, "bad --key (want NAME:BASE64SECRET)");
    c.key = *k;
    if (!timeout.empty()) c.timeout_ms = std::atoi(timeout.c_str());
    if (c.timeout_ms <= 0) fail(2, "bad --timeout");
    const std::string cmd = args[0];
    auto need = [&](size_t n, const char *shape) {
        if (args.size() != n) fail(2, std::string("usage: aisid-admin ... ") + shape);
    };
    if (cmd == "define") need(3, "define object|function|method TERM [--code N]");
    else if (cmd == "register") need(2, "register NAME [--fallback HOST:PORT]");
    else if (cmd == "migrate") {
        need(2, "migrate NAME --fallback HOST:PORT");
        if (fallback.empty()) fail(2, "migrate needs --fallback HOST:PORT");
    } else if (cmd == "decommission") need(2, "decommission NAME");
    else if (cmd == "query") need(2, "query NAME");
    else fail(2, "unknown command '" + cmd + "'");
    if (cmd != "define" && !code_text.empty()) fail(2, "--code goes with define");
    if (cmd != "register" && cmd != "migrate" && !fallback.empty()) fail(2, "--fallback goes with register or migrate");

    // Bad input is a usage error before anything goes on the network.
    Dim def_dim = Dim::object;
    std::string def_term;
    if (cmd == "define") {
        std::string dim_text = lower(args[1]);
        def_term = lower(args[2]);
        if (dim_text == "object") def_dim = Dim::object;
        else if (dim_text == "function") def_dim = Dim::function;
        else if (dim_text == "method") def_dim = Dim::method;
        else fail(2, "define object|function|method TERM (not '" + args[1] + "')");
        if (!valid_term(def_term))
            fail(2, "'" + def_term + "' is not a valid term (want [a-z][a-z0-9-]{0,62}, not 'any' nor p<digits>)");
    }
    if (!fallback.empty()) (void)svcb_text(fallback);

    if (!zone.empty()) {
        if (!wire_from_text(absolute(zone), c.zone_wire)) fail(2, "bad --zone '" + zone + "'");
    } else if (cmd == "define") {
        fail(2, "define needs --zone ZONE");
    } else {
        c.zone_wire = find_zone(c, absolute(args[1]));
    }

    // Read, check, send; if the zone changed in between (a prerequisite
    // failed), read again and check again.
    for (int attempt = 0; attempt < 3; ++attempt) {
        ZonePtr z = read_zone(c);
        std::vector<Record> prereq{soa_value(*z)}, updates;
        std::string done;
        // New records take the TTL of the zone's _aisid record (what synthesized answers use).
        uint32_t ttl = z->aisid_ttl() ? z->aisid_ttl() : 300;
        if (cmd == "define") {
            Dim d = def_dim;
            const std::string &term = def_term;
            const Dimension &dim = z->dim(d);
            if (uint16_t have = dim.code(term))
                fail(1, std::string(dim_name(d)) + " term '" + term + "' is already defined (code " +
                            std::to_string(have) + ")");
            uint16_t code;
            if (!code_text.empty()) {
                char *end = nullptr;
                unsigned long v = std::strtoul(code_text.c_str(), &end, 10);
                if (!end || *end || v == 0 || v >= kReservedCode) fail(2, "--code must be 1..65534");
                code = static_cast<uint16_t>(v);
                if (const std::string *other = dim.term(code))
                    fail(1, std::string(dim_name(d)) + " code " + std::to_string(code) + " is already used by '" +
                                *other + "'");
            } else {
                code = dim.lowest_free_code();
                if (!code) fail(1, std::string("no free ") + dim_name(d) + " code left");
            }
            Record rec = codebook_record(*z, d, term, code, ttl);
            prereq.push_back(bare(rec.owner, kTypeTXT, kClassNONE));  // RRset does not exist
            updates.push_back(rec);
            done = std::string(dim_name(d)) + " " + term + " code " + std::to_string(code);
        } else {
            ServiceRef s = parse_service(*z, args[1]);
            const Service *svc = z->service(s.code[0], s.code[1], s.code[2]);
            bool registered = svc && svc->refs;
            Aisid a = z->aisid_of(s.code[0], s.code[1], s.code[2], 0);
            std::string aaaa_rd(reinterpret_cast<const char *>(a.data()), 16);
            if (cmd == "query") {
                if (!registered) fail(1, s.text + " is not registered");
                std::string fb = fallback_of(*z, s);
                std::printf("%s\n", a.to_string().c_str());
                std::printf("name: %s\nobject: %s (%u)\nfunction: %s (%u)\nmethod: %s (%u)\nfallback: %s\n",
                            s.text.c_str(), s.term[0].c_str(), s.code[0], s.term[1].c_str(), s.code[1],
                            s.term[2].c_str(), s.code[2], fb.empty() ? "(none)" : fb.c_str());
                return 0;
            }
            if (cmd == "register") {
                if (registered) fail(1, s.text + " is already registered (" + a.to_string() + ")");
                if (!records_at(*z, s.owner).empty()) fail(1, s.text + " is in use by other records");
                prereq.push_back(bare(s.owner, kTypeANY, kClassNONE));  // name not in use
                // The codebook entries it is built from are still what we read.
                for (int i = 0; i < 3; ++i) {
                    std::string o;
                    wire_from_text(s.term[i] + "._" + dim_name(static_cast<Dim>(i)) + "." + z->origin_text(), o);
                    for (const Record &r : records_at(*z, o))
                        if (r.type == kTypeTXT) prereq.push_back(Record{o, kTypeTXT, kClassIN, 0, r.rdata});
                }
                prereq.erase(prereq.begin());  // unrelated changes elsewhere need not fail it
                updates.push_back(Record{s.owner, kTypeAAAA, kClassIN, ttl, aaaa_rd});
                if (!fallback.empty()) {
                    Record sv = parse_rr(s.text + " " + std::to_string(ttl) + " IN SVCB " + svcb_text(fallback));
                    updates.push_back(sv);
                }
            } else if (cmd == "migrate") {
                if (!registered) fail(1, s.text + " is not registered");
                prereq = {Record{s.owner, kTypeAAAA, kClassIN, 0, aaaa_rd}};  // the identity is unchanged
                updates.push_back(bare(s.owner, kTypeSVCB, kClassANY));
                updates.push_back(parse_rr(s.text + " " + std::to_string(ttl) + " IN SVCB " + svcb_text(fallback)));
            } else {  // decommission
                if (!registered) fail(1, s.text + " is not registered");
                prereq = {Record{s.owner, kTypeAAAA, kClassIN, 0, aaaa_rd}};
                updates.push_back(bare(s.owner, kTypeANY, kClassANY));
            }
            done = a.to_string();
        }
        std::string rc;
        if (send_update(c, prereq, updates, rc) == Sent::ok) {
            std::printf("%s\n", done.c_str());
            return 0;
        }
        if (attempt == 2) fail(1, "the zone changed while this ran (prerequisite failed: " + rc + "); try again");
    }
    return 1;
}

} // namespace

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const AdminError &f) {
        std::fprintf(stderr, "aisid-admin: %s\n", f.msg.c_str());
        if (f.code == 2) std::fprintf(stderr, "try 'aisid-admin --help'\n");
        return f.code;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "aisid-admin: %s\n", e.what());
        return 3;
    }
}
