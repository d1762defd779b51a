#include "aisid/proto/records.hpp"

#include "aisid/core/dname.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace aisid::proto {

namespace {

uint32_t rd32(std::string_view s, size_t o) {
    return (uint32_t{static_cast<uint8_t>(s[o])} << 24) | (uint32_t{static_cast<uint8_t>(s[o + 1])} << 16) |
           (uint32_t{static_cast<uint8_t>(s[o + 2])} << 8) | static_cast<uint8_t>(s[o + 3]);
}

std::string lower_wire(const ldns_rdf *r) {
    std::string s(reinterpret_cast<const char *>(ldns_rdf_data(r)), ldns_rdf_size(r));
    // Labels are length-prefixed: lowering length bytes (< 64) changes nothing.
    for (char &c : s) c = ascii_lower(c);
    return s;
}

void append_service_records(const Zone &z, uint16_t o, uint16_t f, uint16_t m, const Service &s,
                            std::vector<Record> &out) {
    std::string rel;
    if (!z.relative_name(o, f, m, rel)) return;
    std::string owner;
    if (!wire_from_text(rel + "." + z.origin_text(), owner)) return;
    Aisid a = z.aisid_of(o, f, m, 0);
    out.push_back(Record{owner, kTypeAAAA, kClassIN, s.aaaa_ttl,
                         std::string(reinterpret_cast<const char *>(a.data()), 16)});
    z.for_each_svcb(s, [&](std::string_view r) {
        out.push_back(Record{owner, kTypeSVCB, kClassIN, s.svcb_ttl, std::string(r)});
    });
}

} // namespace

bool wire_from_text(std::string_view text, std::string &out) {
    WireName n;
    if (!name_from_text(text, n)) return false;
    out.assign(n.wire());
    return true;
}

std::string zone_file_stem(std::string_view origin_wire) {
    std::string t = name_to_text(std::string(origin_wire));
    if (t == ".") return "root";
    if (!t.empty() && t.back() == '.') t.pop_back();
    for (char &c : t)
        if (c == '/' || c == '\\' || c == ' ') c = '_';
    return t;
}

std::vector<Record> zone_records(const Zone &z) {
    std::vector<Record> out;
    const RRset &soa = z.soa();
    out.push_back(Record{z.origin_wire(), kTypeSOA, kClassIN, soa.ttl, soa.rdata.at(0)});
    // A stable order (apex first, then by name, then type) so zone files
    // and transfers of the same zone are the same bytes.
    std::vector<std::pair<std::string_view, const Node *>> nodes;
    z.for_each_node([&](std::string_view rel, const Node &n) { nodes.emplace_back(rel, &n); });
    std::sort(nodes.begin(), nodes.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
    for (const auto &[rel, n] : nodes) {
        std::string owner = std::string(rel) + z.origin_wire();
        std::vector<const RRset *> sets;
        for (const RRset &s : n->rrsets) sets.push_back(&s);
        std::sort(sets.begin(), sets.end(), [](const RRset *a, const RRset *b) { return a->type < b->type; });
        for (const RRset *s : sets) {
            if (rel.empty() && s->type == kTypeSOA) continue;
            std::vector<std::string> rds = s->rdata;
            std::sort(rds.begin(), rds.end());
            for (const std::string &r : rds) out.push_back(Record{owner, s->type, kClassIN, n->ttl_of(*s, r), r});
        }
    }

    std::vector<Record> svc;
    z.for_each_service([&](uint16_t o, uint16_t f, uint16_t m, const Service &s) {
        append_service_records(z, o, f, m, s, svc);
    });
    std::stable_sort(svc.begin(), svc.end(), [](const Record &a, const Record &b) {
        return a.owner != b.owner ? a.owner < b.owner : a.type < b.type;
    });
    out.insert(out.end(), svc.begin(), svc.end());
    return out;
}

std::vector<Record> records_at(const Zone &z, std::string_view owner_wire) {
    std::vector<Record> out;
    WireName n;
    size_t pos = 0;
    if (!name_from_wire(reinterpret_cast<const uint8_t *>(owner_wire.data()), owner_wire.size(), pos, n)) return out;
    if (n.nlabels < z.origin_labels()) return out;
    unsigned nrel = n.nlabels - z.origin_labels();
    if (n.suffix(nrel) != z.origin_wire()) return out;
    std::string owner(n.wire());
    if (const Node *node = z.node(n.prefix_labels(nrel)))
        for (const RRset &s : node->rrsets)
            for (const std::string &r : s.rdata) out.push_back(Record{owner, s.type, kClassIN, node->ttl_of(s, r), r});
    if (nrel == 3 && z.is_aisid()) {
        uint16_t o = z.dim(Dim::object).code(n.label(2)), f = z.dim(Dim::function).code(n.label(1)),
                 m = z.dim(Dim::method).code(n.label(0));
        if (o && f && m)
            if (const Service *s = z.service(o, f, m); s && s->refs) append_service_records(z, o, f, m, *s, out);
    }
    return out;
}

namespace {
std::string record_text(const Record &r, const std::string &owner_text);
}

std::string record_to_text(const Record &r) { return record_text(r, name_to_text(r.owner)); }

namespace {

std::string record_text(const Record &r, const std::string &owner_text) {
    // RFC 1035 §5.1: every name is written with name_to_text, which escapes
    // what the master-file reader would take as syntax (quote, semicolon,
    // parentheses, backslash, dot inside a label, '@', '$', blanks, bytes
    // outside printable ASCII). ldns_rr2str leaves a '"' or a leading '$'
    // bare in names, and a compacted file with one could not be read back.
    // Other rdata fields go through ldns, which quotes and
    // escapes character-strings and writes unknown types as RFC 3597 \#.
    LdnsRrPtr rr = record_to_ldns(r);
    if (!rr) return {};
    std::string out = owner_text;
    out += '\t';
    out += std::to_string(r.ttl);
    char *cls = ldns_rr_class2str(ldns_rr_get_class(rr.get()));
    char *type = ldns_rr_type2str(ldns_rr_get_type(rr.get()));
    out += '\t';
    out += cls ? cls : "IN";
    out += '\t';
    out += type ? type : ("TYPE" + std::to_string(r.type)).c_str();
    free(cls);
    free(type);
    // ldns reads an rdata name whose first label is "@" as the origin, even
    // escaped (\@, \064): such rdata goes out in RFC 3597 §5 generic form.
    bool generic = false;
    for (size_t i = 0; i < ldns_rr_rd_count(rr.get()); ++i) {
        const ldns_rdf *f = ldns_rr_rdf(rr.get(), i);
        if (ldns_rdf_get_type(f) == LDNS_RDF_TYPE_DNAME && ldns_rdf_size(f) >= 2 && ldns_rdf_data(f)[0] == 1 &&
            ldns_rdf_data(f)[1] == '@')
            generic = true;
    }
    if (generic) {
        static const char hex[] = "0123456789abcdef";
        out += "\t\\# " + std::to_string(r.rdata.size()) + (r.rdata.empty() ? "" : " ");
        for (unsigned char c : r.rdata) {
            out += hex[c >> 4];
            out += hex[c & 15];
        }
        out += '\n';
        return out;
    }
    for (size_t i = 0; i < ldns_rr_rd_count(rr.get()); ++i) {
        const ldns_rdf *f = ldns_rr_rdf(rr.get(), i);
        out += i == 0 ? '\t' : ' ';
        if (ldns_rdf_get_type(f) == LDNS_RDF_TYPE_DNAME) {
            out += name_to_text(std::string_view(reinterpret_cast<const char *>(ldns_rdf_data(f)), ldns_rdf_size(f)));
        } else {
            char *s = ldns_rdf2str(f);
            if (!s) return {};
            out += s;
            free(s);
        }
    }
    out += '\n';
    return out;
}

} // namespace

bool rdata_round_trips(const Record &r) {
    Record probe = r;
    probe.owner.assign(1, '\0');
    probe.cls = kClassIN;
    std::string text = record_text(probe, ".");
    if (text.empty()) return false;
    ldns_rr *raw = nullptr;
    if (ldns_rr_new_frm_str(&raw, text.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK) return false;
    LdnsRrPtr rr(raw);
    Record back = record_from_ldns(rr.get());
    return back.type == r.type && back.rdata == r.rdata;
}

std::string zone_to_text(const Zone &z) { return zone_to_text(z, zone_records(z)); }

std::string zone_to_text(const Zone &z, const std::vector<Record> &records) {
    std::string out = "; written by aisidd (serial " + std::to_string(z.serial()) + ")\n";
    out += "$ORIGIN " + z.origin_text() + "\n";
    for (const Record &r : records) {
        std::string owner = name_to_text(r.owner);
        // ldns reads an owner token of at most 255 characters; escapes can
        // make a legal name (255 bytes) four times longer. Such an owner is
        // written as its first label under an $ORIGIN of its parent.
        if (owner.size() > 250 && !r.owner.empty() && r.owner[0] != 0) {
            size_t l = 1 + static_cast<uint8_t>(r.owner[0]);
            std::string first;
            append_labels_text(first, r.owner.substr(0, l));
            out += "$ORIGIN " + name_to_text(std::string_view(r.owner).substr(l)) + "\n";
            out += record_text(r, first);
            out += "$ORIGIN " + z.origin_text() + "\n";
            continue;
        }
        out += record_text(r, owner);
    }
    return out;
}

bool write_zone_file(const std::string &path, const Zone &z, std::string &err, std::string_view header) {
    // The records once: a big zone's list is several times the zone's size.
    std::vector<Record> a = zone_records(z);
    std::string text = zone_to_text(z, a);
    // Written only if it reads back as the same zone: a file that cannot be
    // loaded would stop journal replay at the next start.
    ZoneLoadLimits lim;
    lim.max_bytes = std::max<uint64_t>(lim.max_bytes, text.size());  // our own text, however big the zone
    auto back = load_zone_text(text, path, {}, lim);
    if (!back) {
        err = "the zone text for " + path + " does not read back (" + back.error().to_string() + "); not written";
        return false;
    }
    std::vector<Record> b = zone_records(**back);
    back->reset();
    auto same = [](const Record &x, const Record &y) { return x.same_rr(y) && x.ttl == y.ttl && x.cls == y.cls; };
    if (a.size() != b.size() || !std::equal(a.begin(), a.end(), b.begin(), same)) {
        size_t i = 0;
        while (i < a.size() && i < b.size() && same(a[i], b[i])) ++i;
        err = "the zone text for " + path + " reads back as another zone (first difference at record " +
              std::to_string(i + 1) + (i < a.size() ? ", " + name_to_text(a[i].owner) : std::string()) +
              "); not written";
        return false;
    }
    if (!header.empty()) text.insert(0, header);
    return write_file_atomic(path, text, err);
}

bool write_file_atomic(const std::string &path, std::string_view data, std::string &err) {
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = "cannot create " + tmp + ": " + std::strerror(errno);
        return false;
    }
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            err = "cannot write " + tmp + ": " + std::strerror(errno);
            ::close(fd);
            ::unlink(tmp.c_str());
            return false;
        }
        off += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        err = "cannot sync " + tmp + ": " + std::strerror(errno);
        ::close(fd);
        ::unlink(tmp.c_str());
        return false;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        err = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
        ::unlink(tmp.c_str());
        return false;
    }
    // The rename itself must reach the disk too.
    std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
    if (dir.empty()) dir = "/";
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return true;
}

uint32_t soa_serial(std::string_view r) { return r.size() >= 20 ? rd32(r, r.size() - 20) : 0; }

std::string soa_with_serial(std::string_view r, uint32_t serial) {
    std::string s(r);
    if (s.size() < 20) return s;
    size_t o = s.size() - 20;
    s[o] = static_cast<char>(serial >> 24);
    s[o + 1] = static_cast<char>(serial >> 16);
    s[o + 2] = static_cast<char>(serial >> 8);
    s[o + 3] = static_cast<char>(serial);
    return s;
}

void soa_timers(std::string_view r, uint32_t &refresh, uint32_t &retry, uint32_t &expire) {
    if (r.size() < 20) {
        refresh = 3600, retry = 600, expire = 86400;
        return;
    }
    refresh = rd32(r, r.size() - 16);
    retry = rd32(r, r.size() - 12);
    expire = rd32(r, r.size() - 8);
}

Record record_from_ldns(const ldns_rr *rr) {
    Record r;
    r.owner = lower_wire(ldns_rr_owner(rr));
    r.type = static_cast<uint16_t>(ldns_rr_get_type(rr));
    r.cls = static_cast<uint16_t>(ldns_rr_get_class(rr));
    r.ttl = ldns_rr_ttl(rr);
    ldns_buffer *b = ldns_buffer_new(256);
    // Question-section and empty (RFC 2136 delete) records have no rdata.
    if (ldns_rr_rd_count(rr) > 0 && ldns_rr_rdata2buffer_wire(b, rr) == LDNS_STATUS_OK)
        r.rdata.assign(reinterpret_cast<const char *>(ldns_buffer_begin(b)), ldns_buffer_position(b));
    ldns_buffer_free(b);
    return r;
}

LdnsRrPtr record_to_ldns(const Record &r) {
    std::string wire = r.owner;
    auto put16 = [&](uint16_t v) {
        wire.push_back(static_cast<char>(v >> 8));
        wire.push_back(static_cast<char>(v));
    };
    put16(r.type);
    put16(r.cls);
    put16(static_cast<uint16_t>(r.ttl >> 16));
    put16(static_cast<uint16_t>(r.ttl));
    put16(static_cast<uint16_t>(r.rdata.size()));
    wire += r.rdata;
    ldns_rr *rr = nullptr;
    size_t pos = 0;
    if (ldns_wire2rr(&rr, reinterpret_cast<const uint8_t *>(wire.data()), wire.size(), &pos, LDNS_SECTION_ANSWER) !=
        LDNS_STATUS_OK)
        return nullptr;
    return LdnsRrPtr(rr);
}

LdnsRrListPtr ldns_list_of(const std::vector<Record> &rs) {
    LdnsRrListPtr l(ldns_rr_list_new());
    for (const Record &r : rs)
        if (LdnsRrPtr x = record_to_ldns(r)) ldns_rr_list_push_rr(l.get(), x.release());
    return l;
}

std::vector<Record> records_of(const ldns_rr_list *l) {
    std::vector<Record> out;
    if (!l) return out;
    for (size_t i = 0; i < ldns_rr_list_rr_count(l); ++i) out.push_back(record_from_ldns(ldns_rr_list_rr(l, i)));
    return out;
}

} // namespace aisid::proto
