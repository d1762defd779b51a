#include "aisid/proto/update.hpp"

#include "aisid/core/zone_builder.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace aisid::proto {

namespace {

bool in_zone(const Zone &z, std::string_view owner) {
    const std::string &o = z.origin_wire();
    if (owner.size() < o.size()) return false;
    if (owner.substr(owner.size() - o.size()) != o) return false;
    if (owner.size() == o.size()) return true;
    // The suffix must start on a label boundary.
    size_t p = 0;
    while (p < owner.size() - o.size()) p += 1 + static_cast<uint8_t>(owner[p]);
    return p == owner.size() - o.size();
}

bool is_meta_type(uint16_t t) { return t == 0 || t == kTypeOPT || (t >= 128 && t <= 255) || t == kTypeTSIG; }

bool has_rr(const std::vector<Record> &rs, const Record &r) {
    return std::any_of(rs.begin(), rs.end(), [&](const Record &x) { return x.same_rr(r); });
}

UpdateResult fail(uint8_t rcode, std::string why) {
    UpdateResult r;
    r.rcode = rcode;
    r.why = std::move(why);
    return r;
}

std::string owner_text(const std::string &w) { return name_to_text(w); }

} // namespace

const char *rcode_name(unsigned rc) {
    static const char *n[] = {"NOERROR", "FORMERR",  "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                              "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE"};
    return rc < 11 ? n[rc] : "RCODE?";
}

Diff diff_at(const Zone &from, const Zone &to, const std::vector<std::string> &owners) {
    Diff d;
    d.from = from.serial();
    d.to = to.serial();
    d.del.push_back(Record{from.origin_wire(), kTypeSOA, kClassIN, from.soa().ttl, from.soa().rdata.at(0)});
    d.add.push_back(Record{to.origin_wire(), kTypeSOA, kClassIN, to.soa().ttl, to.soa().rdata.at(0)});
    std::set<std::string> seen;
    for (const std::string &o : owners) {
        if (!seen.insert(o).second) continue;
        std::vector<Record> a = records_at(from, o), b = records_at(to, o);
        for (const Record &r : a)
            if (r.type != kTypeSOA && (!has_rr(b, r) || std::find_if(b.begin(), b.end(), [&](const Record &x) {
                                                          return x.same_rr(r) && x.ttl != r.ttl;
                                                      }) != b.end()))
                d.del.push_back(r);
        for (const Record &r : b)
            if (r.type != kTypeSOA && (!has_rr(a, r) || std::find_if(a.begin(), a.end(), [&](const Record &x) {
                                                          return x.same_rr(r) && x.ttl != r.ttl;
                                                      }) != a.end()))
                d.add.push_back(r);
    }
    return d;
}

UpdateResult apply_update(const Zone &z, const std::vector<Record> &prereq, const std::vector<Record> &updates,
                          size_t max_records_per_type) {
    // RFC 2136 §3.2: prerequisites, against the zone as it is now.
    std::map<std::pair<std::string, uint16_t>, std::vector<std::string>> value_sets;
    for (const Record &p : prereq) {
        if (p.ttl != 0) return fail(kRcodeFormErr, "prerequisite with a non-zero TTL");
        if (!in_zone(z, p.owner)) return fail(kRcodeNotZone, owner_text(p.owner) + " is outside the zone");
        std::vector<Record> at = records_at(z, p.owner);
        bool type_exists = std::any_of(at.begin(), at.end(), [&](const Record &r) { return r.type == p.type; });
        if (p.cls == kClassANY) {
            if (!p.rdata.empty()) return fail(kRcodeFormErr, "prerequisite of class ANY with data");
            if (p.type == kTypeANY) {
                if (at.empty()) return fail(kRcodeNxDomain, "prerequisite: " + owner_text(p.owner) + " is not in use");
            } else if (!type_exists) {
                return fail(kRcodeNxRrset,
                            "prerequisite: " + owner_text(p.owner) + " " + type_name(p.type) + " does not exist");
            }
        } else if (p.cls == kClassNONE) {
            if (!p.rdata.empty()) return fail(kRcodeFormErr, "prerequisite of class NONE with data");
            if (p.type == kTypeANY) {
                if (!at.empty()) return fail(kRcodeYxDomain, "prerequisite: " + owner_text(p.owner) + " is in use");
            } else if (type_exists) {
                return fail(kRcodeYxRrset, "prerequisite: " + owner_text(p.owner) + " " + type_name(p.type) + " exists");
            }
        } else if (p.cls == kClassIN) {
            value_sets[{p.owner, p.type}].push_back(p.rdata);
        } else {
            return fail(kRcodeFormErr, "prerequisite of an unknown class");
        }
    }
    // §3.2.3: value-dependent RRset exists: the sets must be equal.
    for (auto &[k, want] : value_sets) {
        std::vector<std::string> have;
        for (const Record &r : records_at(z, k.first))
            if (r.type == k.second) have.push_back(r.rdata);
        std::sort(want.begin(), want.end());
        want.erase(std::unique(want.begin(), want.end()), want.end());
        std::sort(have.begin(), have.end());
        if (have != want)
            return fail(kRcodeNxRrset, "prerequisite: " + owner_text(k.first) + " " + type_name(k.second) +
                                           " does not hold exactly the given records");
    }

    // §3.4.1: prescan.
    for (const Record &u : updates) {
        if (!in_zone(z, u.owner)) return fail(kRcodeNotZone, owner_text(u.owner) + " is outside the zone");
        if (u.cls == kClassIN) {
            if (is_meta_type(u.type)) return fail(kRcodeFormErr, "update adds a meta type");
            // What cannot be written to a zone file and read back
            // (e.g. an AAAA of 0 bytes) would be lost at the next compaction.
            if (!rdata_round_trips(u))
                return fail(kRcodeFormErr, owner_text(u.owner) + " " + type_name(u.type) +
                                               ": rdata not valid for its type");
        } else if (u.cls == kClassANY) {
            if (u.ttl != 0 || !u.rdata.empty()) return fail(kRcodeFormErr, "class ANY delete with TTL or data");
            if (is_meta_type(u.type) && u.type != kTypeANY) return fail(kRcodeFormErr, "delete of a meta type");
        } else if (u.cls == kClassNONE) {
            if (u.ttl != 0) return fail(kRcodeFormErr, "class NONE delete with a TTL");
            if (is_meta_type(u.type)) return fail(kRcodeFormErr, "delete of a meta type");
        } else {
            return fail(kRcodeFormErr, "update of an unknown class");
        }
    }

    // §3.4.2: apply, on a copy.
    ZoneBuilder b(z);
    const std::string &apex = z.origin_wire();
    std::string new_soa;  // an explicit SOA with a newer serial (§3.4.2.2)
    std::vector<std::string> owners;
    for (const Record &u : updates) {
        owners.push_back(u.owner);
        bool at_apex = u.owner == apex;
        if (u.cls == kClassIN) {
            if (u.type == kTypeSOA) {
                if (!at_apex) continue;
                uint32_t cur = soa_serial(b.zone().soa().rdata.at(0));
                if (!serial_gt(soa_serial(u.rdata), cur)) continue;
            }
            ZoneError err;
            if (!b.add(u.owner, u.type, u.ttl, u.rdata, "UPDATE", 0, err))
                return fail(kRcodeRefused, owner_text(u.owner) + " " + type_name(u.type) + ": " + err.message);
            if (u.type == kTypeSOA) new_soa = u.rdata;
        } else if (u.cls == kClassANY) {
            if (u.type == kTypeANY) {
                if (at_apex) {
                    // §3.4.2.3: the apex keeps its SOA and NS.
                    std::set<uint16_t> types;
                    for (const Record &r : records_at(b.zone(), u.owner))
                        if (r.type != kTypeSOA && r.type != kTypeNS) types.insert(r.type);
                    for (uint16_t t : types) b.remove(u.owner, t, nullptr);
                } else {
                    b.remove(u.owner, kTypeANY, nullptr);
                }
            } else {
                if (at_apex && (u.type == kTypeSOA || u.type == kTypeNS)) continue;
                b.remove(u.owner, u.type, nullptr);
            }
        } else {  // NONE: delete one RR
            if (u.type == kTypeSOA) continue;
            std::vector<Record> at = records_at(b.zone(), u.owner);
            if (!has_rr(at, u)) continue;
            if (at_apex && u.type == kTypeNS &&
                std::count_if(at.begin(), at.end(), [](const Record &r) { return r.type == kTypeNS; }) <= 1)
                continue;  // §3.4.2.4: never the last NS of the apex
            std::string_view rd(u.rdata);
            b.remove(u.owner, u.type, &rd);
        }
    }

    // A name's RRset cannot grow without bound (each later UPDATE
    // there would cost more and more: 12,000 TXT made one take 3.3 s).
    {
        std::set<std::pair<std::string, uint16_t>> grown;
        for (const Record &u : updates)
            if (u.cls == kClassIN) grown.insert({u.owner, u.type});
        for (const auto &[owner, type] : grown) {
            size_t n = 0;
            for (const Record &r : records_at(b.zone(), owner)) n += r.type == type;
            if (n > max_records_per_type)
                return fail(kRcodeRefused, owner_text(owner) + " " + type_name(type) + ": more than " +
                                               std::to_string(max_records_per_type) +
                                               " records (the max-records-per-name limit)");
        }
    }

    // SPEC §3 rules that ZoneBuilder cannot see record by record.
    const Zone &nz = b.zone();
    if (z.is_aisid() && !nz.is_aisid()) return fail(kRcodeRefused, "the zone's _aisid record cannot be deleted");
    if (z.is_aisid() && nz.prefix() != z.prefix())
        return fail(kRcodeRefused, "the AISID prefix of a zone cannot change by UPDATE");

    // Nothing changed: NOERROR, serial unchanged (§3.4.2.7 leaves it to us).
    {
        Diff probe = diff_at(z, nz, owners);
        bool codebook_changed = false;
        for (int d = 0; d < 3; ++d)
            if (nz.dim(static_cast<Dim>(d)).size() != z.dim(static_cast<Dim>(d)).size()) codebook_changed = true;
        if (probe.del.size() == 1 && probe.add.size() == 1 && new_soa.empty() && !codebook_changed &&
            nz.service_count() == z.service_count()) {
            UpdateResult r;
            return r;
        }
    }
    if (new_soa.empty()) {
        // RFC 1982 increment; serial 0 is skipped as BIND does.
        uint32_t next = z.serial() + 1;
        if (next == 0) next = 1;
        ZoneError err;
        std::string rd = soa_with_serial(z.soa().rdata.at(0), next);
        if (!b.add(apex, kTypeSOA, z.soa().ttl, rd, "UPDATE", 0, err)) return fail(kRcodeServFail, err.message);
    }
    const bool codebook_changed = b.codebook_changed();
    auto fin = b.finish();
    if (!fin) return fail(kRcodeRefused, fin.error().message);
    ZonePtr out = *fin;
    // A term a registered service uses cannot go or change under it. Only a
    // change to the codebook (rare: define, undefine) can do that, and only
    // then is every service looked at.
    std::string bad;
    if (codebook_changed) out->for_each_service([&](uint16_t o, uint16_t f, uint16_t m, const Service &) {
        std::string nn, on;
        if (!bad.empty()) return;
        if (!out->relative_name(o, f, m, nn)) {
            bad = "a codebook term in use by a registered service cannot be deleted";
            return;
        }
        if (z.service(o, f, m) && z.service(o, f, m)->refs && z.relative_name(o, f, m, on) && on != nn)
            bad = "codebook term of registered service " + on + " cannot be renamed";
    });
    if (!bad.empty()) return fail(kRcodeRefused, bad);

    UpdateResult r;
    r.changed = true;
    r.zone = out;
    r.diff = diff_at(z, *out, owners);
    return r;
}

bool apply_diff(const Zone &z, const Diff &d, ZonePtr &out, std::string &why) {
    if (d.from != z.serial()) {
        why = "diff starts at serial " + std::to_string(d.from) + ", the zone is at " + std::to_string(z.serial());
        return false;
    }
    ZoneBuilder b(z);
    for (const Record &r : d.del) {
        if (r.type == kTypeSOA) continue;
        std::string_view rd(r.rdata);
        b.remove(r.owner, r.type, &rd);
    }
    for (const Record &r : d.add) {
        ZoneError err;
        if (!b.add(r.owner, r.type, r.ttl, r.rdata, "IXFR", 0, err)) {
            why = name_to_text(r.owner) + " " + type_name(r.type) + ": " + err.message;
            return false;
        }
    }
    auto fin = b.finish();
    if (!fin) {
        why = fin.error().message;
        return false;
    }
    if ((*fin)->serial() != d.to) {
        why = "diff ends at serial " + std::to_string(d.to) + ", the zone came to " + std::to_string((*fin)->serial());
        return false;
    }
    out = *fin;
    return true;
}

} // namespace aisid::proto
