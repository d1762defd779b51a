#include "aisid/core/zone_builder.hpp"

#include <ldns/ldns.h>

#include <algorithm>
#include <bit>
#include <cstring>

namespace aisid {

std::vector<std::string_view> txt_strings(std::string_view r) {
    std::vector<std::string_view> out;
    size_t p = 0;
    while (p < r.size()) {
        size_t n = static_cast<uint8_t>(r[p]);
        if (p + 1 + n > r.size()) break;
        out.push_back(r.substr(p + 1, n));
        p += 1 + n;
    }
    return out;
}

std::string type_name(uint16_t type) {
    char *s = ldns_rr_type2str(static_cast<ldns_rr_type>(type));
    std::string out = s ? s : "TYPE" + std::to_string(type);
    free(s);
    return out;
}

namespace {

std::string rel_text(std::string_view rel, const std::string &origin_wire) {
    std::string s;
    append_labels_text(s, rel);
    std::string o = name_to_text(origin_wire);
    if (s.empty()) return o;
    return s + (o == "." ? "." : "." + o);
}

int dim_of_label(std::string_view l) {
    if (l == "_object") return 0;
    if (l == "_function") return 1;
    if (l == "_method") return 2;
    return -1;
}

// "code=N" among the TXT strings; 0 when absent or out of range.
bool parse_code(std::string_view rdata, uint32_t &code) {
    for (std::string_view s : txt_strings(rdata)) {
        if (s.substr(0, 5) != "code=") continue;
        std::string_view v = s.substr(5);
        if (v.empty() || v.size() > 5) return false;
        uint32_t c = 0;
        for (char ch : v) {
            if (ch < '0' || ch > '9') return false;
            c = c * 10 + static_cast<uint32_t>(ch - '0');
        }
        code = c;
        return true;
    }
    return false;
}

} // namespace

ZoneBuilder::ZoneBuilder(std::string file) : z_(std::make_unique<Zone>()) { z_->file_ = std::move(file); }

ZoneBuilder::ZoneBuilder(const Zone &base) : z_(std::make_unique<Zone>(base)), have_soa_(true), editing_(true) {
    z_->views_valid_ = false;  // its shards change from here on: lookups go through them until finish()
    z_->verification_.clear(); // changed data is not the data that was verified
}

bool ZoneBuilder::add(std::string_view owner_wire, uint16_t type, uint32_t ttl, std::string_view rdata,
                      const std::string &file, int line, ZoneError &err) {
    auto fail = [&](std::string msg) {
        err = ZoneError{file, line, std::move(msg)};
        return false;
    };
    WireName n;
    size_t pos = 0;
    if (!name_from_wire(reinterpret_cast<const uint8_t *>(owner_wire.data()), owner_wire.size(), pos, n))
        return fail("bad owner name");
    Zone &z = *z_;
    if (!have_soa_) {
        if (type != kTypeSOA)
            return fail("the first record must be the zone's SOA (found " + type_name(type) + " at " +
                        name_to_text(n.wire()) + ")");
        z.origin_wire_.assign(n.wire());
        z.origin_text_ = name_to_text(n.wire());
        z.origin_labels_ = n.nlabels;
        have_soa_ = true;
    }
    if (n.nlabels < z.origin_labels_ || n.suffix(n.nlabels - z.origin_labels_) != z.origin_wire_)
        return fail(name_to_text(n.wire()) + " is outside the zone " + z.origin_text());
    unsigned nrel = n.nlabels - z.origin_labels_;
    std::string_view rel = n.prefix_labels(nrel);

    if (type == kTypeSOA) {
        if (nrel != 0) return fail("SOA record not at the zone apex");
        const Node *apex = z.node({});
        if (apex && apex->find(kTypeSOA)) {
            // UPDATE replaces the SOA; a master file may hold only one.
            if (!editing_) return fail("a second SOA record");
            remove_generic({}, kTypeSOA, nullptr);
        }
        add_generic(rel, type, ttl, rdata);
        return true;
    }
    if (nrel == 1 && n.label(0) == "_aisid" && type == kTypeTXT) {
        if (z.is_aisid_) return fail("a second _aisid TXT record");
        bool v = false;
        std::optional<uint64_t> prefix;
        for (std::string_view s : txt_strings(rdata)) {
            // Tokens may share one string or sit in several.
            size_t p = 0;
            while (p < s.size()) {
                size_t e = s.find(' ', p);
                if (e == std::string_view::npos) e = s.size();
                std::string_view tok = s.substr(p, e - p);
                if (tok == "v=aisid1") v = true;
                else if (tok.substr(0, 7) == "prefix=") {
                    prefix = parse_prefix64(tok.substr(7));
                    if (!prefix) return fail("bad prefix '" + std::string(tok.substr(7)) + "' in _aisid (want a /64)");
                }
                p = e + 1;
            }
        }
        if (!v) return fail("_aisid TXT without \"v=aisid1\"");
        if (!prefix) return fail("_aisid TXT without \"prefix=<IPv6>/64\"");
        z.is_aisid_ = true;
        z.prefix_ = *prefix;
        z.aisid_ttl_ = ttl;
        add_generic(rel, type, ttl, rdata);
        return true;
    }
    if (nrel == 2 && type == kTypeTXT) {
        int d = dim_of_label(n.label(1));
        if (d >= 0) {
            std::string term(n.label(0));
            if (!valid_term(term))
                return fail("'" + term + "' is not a valid " + dim_name(static_cast<Dim>(d)) +
                            " term (want [a-z][a-z0-9-]{0,62}, not 'any' nor p<digits>)");
            uint32_t code = 0;
            if (!parse_code(rdata, code)) return fail("codebook TXT for '" + term + "' without \"code=N\"");
            // Two codes ("code=600" "code=601") would mean whichever a reader takes first.
            size_t codes = 0;
            for (std::string_view t : txt_strings(rdata)) codes += t.substr(0, 5) == "code=";
            if (codes > 1) return fail("codebook TXT for '" + term + "' with more than one \"code=N\"");
            if (code == 0 || code >= kReservedCode)
                return fail("code " + std::to_string(code) + " of '" + term + "' is out of range (1..65534)");
            const Dimension &dim = *z.dims_[d];
            if (dim.code(term))
                return fail(std::string(dim_name(static_cast<Dim>(d))) + " term '" + term + "' is already defined" +
                            (dim.line_of(term) ? " (line " + std::to_string(dim.line_of(term)) + ")" : ""));
            if (const std::string *other = dim.term(static_cast<uint16_t>(code)))
                return fail(std::string(dim_name(static_cast<Dim>(d))) + " code " + std::to_string(code) + " of '" +
                            term + "' is already used by '" + *other + "'" +
                            (dim.line_of(*other) ? " (line " + std::to_string(dim.line_of(*other)) + ")" : ""));
            if (!z.dims_[d].mut().add(term, static_cast<uint16_t>(code), line))
                return fail("cannot index term '" + term + "' (hash collision with another term)");
            codebook_changed_ = true;
            if (!first_codebook_line_) {
                first_codebook_line_ = line;
                first_codebook_file_ = file;
            }
            add_generic(rel, type, ttl, rdata);
            return true;
        }
    }
    if (nrel == 3 && (type == kTypeAAAA || type == kTypeSVCB)) {
        bool shaped = true;
        for (unsigned i = 0; i < 3; ++i) shaped = shaped && valid_term(n.label(i));
        if (shaped) {
            bool known = z.is_aisid_;
            for (unsigned i = 0; i < 3 && known; ++i) known = z.dims_[2 - i]->code(n.label(i)) != 0;
            if (!known) {
                // The codebook may come later in the file: decide at the end.
                pending_.push_back(Pending{std::string(rel), type, ttl, std::string(rdata), file, line});
                return true;
            }
            return add_service_record(n, nrel, type, ttl, rdata, file, line, err);
        }
    }
    add_generic(rel, type, ttl, rdata);
    return true;
}

bool ZoneBuilder::add_service_record(const WireName &n, unsigned nrel, uint16_t type, uint32_t ttl,
                                     std::string_view rdata, const std::string &file, int line, ZoneError &err) {
    Zone &z = *z_;
    uint16_t code[3];
    const char *missing_dim = nullptr;
    std::string missing;
    for (unsigned i = 0; i < 3; ++i) {
        code[2 - i] = z.is_aisid_ ? z.dims_[2 - i]->code(n.label(i)) : 0;
        if (!code[2 - i] && !missing_dim) {
            missing_dim = dim_name(static_cast<Dim>(2 - i));
            missing = n.label(i);
        }
    }
    std::string_view rel = n.prefix_labels(nrel);
    if (missing_dim) {
        // Not a service name of this zone: a plain record, unless it claims an
        // address inside the AISID prefix.
        if (type == kTypeAAAA && z.is_aisid_ && rdata.size() == 16) {
            std::array<uint8_t, 16> b;
            std::memcpy(b.data(), rdata.data(), 16);
            if (Aisid(b).prefix() == z.prefix_) {
                err = ZoneError{file, line,
                                "AAAA at " + rel_text(rel, z.origin_wire_) + " disagrees with the codebook: '" +
                                    missing + "' is not a " + missing_dim + " term"};
                return false;
            }
        }
        add_generic(rel, type, ttl, rdata);
        return true;
    }
    uint64_t key = service_key(code[0], code[1], code[2]);
    if (type == kTypeAAAA) {
        if (rdata.size() != 16) {
            err = ZoneError{file, line, "bad AAAA rdata"};
            return false;
        }
        std::array<uint8_t, 16> b;
        std::memcpy(b.data(), rdata.data(), 16);
        Aisid got(b), want = z.aisid_of(code[0], code[1], code[2], 0);
        if (got.prefix() != z.prefix_) {
            err = ZoneError{file, line,
                            "AAAA " + got.to_string() + " of service " + rel_text(rel, z.origin_wire_) +
                                " lies outside the AISID prefix " + format_prefix64(z.prefix_) + " (want " +
                                want.to_string() + ")"};
            return false;
        }
        if (got != want) {
            err = ZoneError{file, line,
                            "AAAA " + got.to_string() + " of service " + rel_text(rel, z.origin_wire_) +
                                " disagrees with the codebook (want " + want.to_string() + ")"};
            return false;
        }
        ServiceShard *sh;
        Service *s = svc_emplace(key, sh);
        if (s->refs) {
            err = ZoneError{file, line, "service " + rel_text(rel, z.origin_wire_) + " is registered twice"};
            return false;
        }
        s->refs = 1;
        s->aaaa_ttl = ttl;
        ++z.service_count_;
        // SVCB records already at the name (added while it had no AAAA) are
        // the service's now, as they would be in a zone read from a file.
        if (const Node *node = z.nodes_.find(rel); node && node->find(kTypeSVCB)) {
            RRset svcb = *node->find(kTypeSVCB);
            s->svcb_ttl = s->svcb_count ? std::min(s->svcb_ttl, svcb.ttl) : svcb.ttl;
            for (const std::string &r : svcb.rdata) {
                bool dup = false;
                z.for_each_svcb(*s, [&](std::string_view x) { dup = dup || x == r; });
                if (!dup) sh->append_svcb(*s, r);
            }
            remove_generic(rel, kTypeSVCB, nullptr);
        }
        register_wildcards(code[0], code[1], code[2], +1);
        return true;
    }
    // SVCB: the service's legacy endpoint(s). It may precede the AAAA.
    ServiceShard *sh;
    Service *s = svc_emplace(key, sh);
    // RFC 2181 §5.2: one TTL per RRset; keep the smallest.
    s->svcb_ttl = s->svcb_count ? std::min(s->svcb_ttl, ttl) : ttl;
    bool dup = false;
    z.for_each_svcb(*s, [&](std::string_view r) { dup = dup || r == rdata; });
    if (!dup) sh->append_svcb(*s, rdata);
    return true;
}

ServiceShard &ZoneBuilder::svc_shard(uint64_t key) {
    return z_->services_.mut(z_->services_.index(FlatMap<Service>::mix(key)));
}

Service *ZoneBuilder::svc_emplace(uint64_t key, ServiceShard *&shard) {
    shard = &svc_shard(key);
    auto [s, inserted] = shard->map.emplace(key);
    if (inserted) {
        s->svcb_arena = &shard->arena;
        ++z_->service_keys_;
    }
    if (editing_) touched_keys_.push_back(key);
    return s;
}

Service *ZoneBuilder::svc_find_mut(uint64_t key, ServiceShard *&shard) {
    if (!z_->find_service(key)) return nullptr;  // a miss copies nothing
    shard = &svc_shard(key);
    if (editing_) touched_keys_.push_back(key);
    return shard->map.find(key);
}

void ZoneBuilder::svc_erase(uint64_t key) {
    if (!z_->find_service(key)) return;
    if (svc_shard(key).map.erase(key)) --z_->service_keys_;
}

// One shard while a whole zone is read; at the end (and when a zone has grown
// or shrunk fourfold by changes) about kServicesPerShard keys per shard.
void ZoneBuilder::rebalance_services() {
    Zone &z = *z_;
    size_t want = std::bit_ceil(std::max<size_t>(1, z.service_keys_ / Zone::kServicesPerShard));
    size_t have = z.services_.count();
    if (want <= have * 4 && want * 4 >= have) return;
    CowShards<ServiceShard> next(want);
    for (size_t i = 0; i < have; ++i)
        z.services_.at(i).map.for_each([&](uint64_t k, const Service &s) {
            next.mut(next.index(FlatMap<Service>::mix(k))).adopt(k, s);
        });
    z.services_ = std::move(next);
}

void ZoneBuilder::register_wildcards(uint16_t o, uint16_t f, uint16_t m, int delta) {
    for (uint64_t k : {service_key(o, 0, 0), service_key(o, f, 0)}) {
        ServiceShard *sh;
        if (delta > 0) {
            ++svc_emplace(k, sh)->refs;
        } else if (Service *w = svc_find_mut(k, sh)) {
            if (--w->refs == 0) svc_erase(k);
        }
    }
}

// The node at rel, made with every missing ancestor (empty non-terminals
// exist, RFC 8020); each parent counts its children.
Node *ZoneBuilder::ensure_node(std::string_view rel) {
    Zone &z = *z_;
    auto [node, inserted] = z.nodes_.emplace(rel);
    if (!inserted) return node;
    z.node_depths_ |= uint64_t{1} << std::min(count_labels(rel), 63u);
    std::string_view up = rel;
    while (!up.empty()) {
        up = up.substr(1 + static_cast<uint8_t>(up[0]));
        // The node's shard is ours now: a parent in another shard copies that one only.
        auto [parent, made] = z.nodes_.emplace(up);
        ++parent->children;
        if (!made) break;
        z.node_depths_ |= uint64_t{1} << std::min(count_labels(up), 63u);
    }
    return node;
}

// After deletes: a node left with no records and nothing below it is no
// name any more (NXDOMAIN, not NODATA); one with data below it stays, an
// empty non-terminal (RFC 8020). Its parent may go the same way.
void ZoneBuilder::prune_up(std::string rel) {
    Zone &z = *z_;
    while (!rel.empty()) {
        const Node *n = z.nodes_.find(rel);
        if (!n || !n->rrsets.empty() || n->children) return;
        z.nodes_.erase(rel);
        rel.erase(0, 1 + static_cast<uint8_t>(rel[0]));
        if (Node *p = z.nodes_.find_mut(rel)) --p->children;
    }
}

void ZoneBuilder::add_generic(std::string_view rel, uint16_t type, uint32_t ttl, std::string_view rdata) {
    if (editing_) touched_rels_.emplace_back(rel);
    Node &node = *ensure_node(rel);
    RRset *set = nullptr;
    for (RRset &r : node.rrsets)
        if (r.type == type) set = &r;
    if (!set) {
        node.rrsets.push_back(RRset{type, ttl, {}});
        set = &node.rrsets.back();
    }
    set->ttl = set->rdata.empty() ? ttl : std::min(set->ttl, ttl);
    if (std::find(set->rdata.begin(), set->rdata.end(), rdata) == set->rdata.end()) set->rdata.emplace_back(rdata);
}

size_t ZoneBuilder::remove_generic(std::string_view rel, uint16_t type, const std::string_view *rdata) {
    Zone &z = *z_;
    const Node *peek = z.nodes_.find(rel);
    if (!peek || peek->rrsets.empty()) return 0;
    bool any = false;
    for (const RRset &r : peek->rrsets) any = any || type == kTypeANY || r.type == type;
    if (!any) return 0;
    if (editing_) touched_rels_.emplace_back(rel);
    size_t n = 0;
    auto &sets = z.nodes_.find_mut(rel)->rrsets;
    for (auto s = sets.begin(); s != sets.end();) {
        if (type != kTypeANY && s->type != type) {
            ++s;
            continue;
        }
        if (rdata) {
            auto r = std::find(s->rdata.begin(), s->rdata.end(), *rdata);
            if (r != s->rdata.end()) {
                s->rdata.erase(r);
                ++n;
            }
        } else {
            n += s->rdata.size();
            s->rdata.clear();
        }
        if (s->rdata.empty()) s = sets.erase(s);
        else ++s;
    }
    return n;
}

size_t ZoneBuilder::remove(std::string_view owner_wire, uint16_t type, const std::string_view *rdata) {
    WireName n;
    size_t pos = 0;
    Zone &z = *z_;
    if (!name_from_wire(reinterpret_cast<const uint8_t *>(owner_wire.data()), owner_wire.size(), pos, n)) return 0;
    if (n.nlabels < z.origin_labels_ || n.suffix(n.nlabels - z.origin_labels_) != z.origin_wire_) return 0;
    unsigned nrel = n.nlabels - z.origin_labels_;
    size_t removed = 0;
    if (nrel == 3 && z.is_aisid_) {
        uint16_t o = z.dims_[0]->code(n.label(2)), f = z.dims_[1]->code(n.label(1)), m = z.dims_[2]->code(n.label(0));
        if (o && f && m) {
            uint64_t key = service_key(o, f, m);
            ServiceShard *sh;
            if (Service *s = svc_find_mut(key, sh)) {
                if ((type == kTypeSVCB || type == kTypeANY) && s->svcb_count) {
                    if (rdata) {
                        // Rebuild the block without the one record.
                        std::vector<std::string> keep;
                        z.for_each_svcb(*s, [&](std::string_view r) {
                            if (r != *rdata) keep.emplace_back(r);
                        });
                        removed += s->svcb_count - keep.size();
                        s->svcb_count = 0;
                        for (auto &r : keep) sh->append_svcb(*s, r);
                    } else {
                        removed += s->svcb_count;
                        s->svcb_count = 0;
                    }
                }
                if ((type == kTypeAAAA || type == kTypeANY) && s->refs) {
                    bool match = true;
                    if (rdata) match = *rdata == std::string_view(reinterpret_cast<const char *>(
                                                                      z.aisid_of(o, f, m, 0).data()),
                                                                  16);
                    if (match) {
                        s->refs = 0;
                        --z.service_count_;
                        ++removed;
                        // May move slots of this shard: s is found again below.
                        register_wildcards(o, f, m, -1);
                        s = sh->map.find(key);
                    }
                }
                if (!s->refs && !s->svcb_count) svc_erase(key);
            }
        }
    }
    if (nrel == 2 && (type == kTypeTXT || type == kTypeANY)) {
        int d = dim_of_label(n.label(1));
        if (d >= 0 && z.dims_[d]->code(n.label(0))) {
            z.dims_[d].mut().remove(n.label(0));
            codebook_changed_ = true;
        }
    }
    if (nrel == 1 && n.label(0) == "_aisid" && (type == kTypeTXT || type == kTypeANY)) z.is_aisid_ = false;
    removed += remove_generic(n.prefix_labels(nrel), type, rdata);
    return removed;
}

// RFC 1034 §3.6.2: a CNAME has no other data beside it - neither other
// records at its node nor a registered service's AAAA/SVCB at its name.
bool ZoneBuilder::check_cname(std::string_view rel, const Node &node, ZoneError &err) const {
    const Zone &z = *z_;
    if (!node.find(kTypeCNAME)) return true;
    bool other = false;
    for (const RRset &r : node.rrsets)
        other = other || (r.type != kTypeCNAME && r.type != 46 && r.type != 47);  // RRSIG, NSEC may
    if (!other && count_labels(rel) == 3 && z.is_aisid_) {
        std::string w = std::string(rel) + z.origin_wire_;
        WireName n;
        size_t pos = 0;
        if (name_from_wire(reinterpret_cast<const uint8_t *>(w.data()), w.size(), pos, n)) {
            uint16_t o = z.dims_[0]->code(n.label(2)), f = z.dims_[1]->code(n.label(1)), m = z.dims_[2]->code(n.label(0));
            other = o && f && m && z.find_service(service_key(o, f, m)) != nullptr;
        }
    }
    if (other) err = ZoneError{z.file_, 0, "CNAME at " + rel_text(rel, z.origin_wire_) + " beside other data (RFC 1034 §3.6.2)"};
    return !other;
}

Expected<ZonePtr, ZoneError> ZoneBuilder::finish() {
    Zone &z = *z_;
    if (!have_soa_) return unexpected(ZoneError{z.file_, 0, "no SOA record: the zone is empty"});
    for (Pending &p : pending_) {
        // Rebuild the full owner from the relative labels and the origin.
        std::string wire = p.rel + z.origin_wire_;
        WireName n;
        size_t pos = 0;
        name_from_wire(reinterpret_cast<const uint8_t *>(wire.data()), wire.size(), pos, n);
        ZoneError err;
        if (!add_service_record(n, 3, p.type, p.ttl, p.rdata, p.file, p.line, err)) return unexpected(err);
    }
    pending_.clear();
    if (!z.is_aisid_ && first_codebook_line_)
        return unexpected(ZoneError{first_codebook_file_, first_codebook_line_,
                                    "codebook record in a zone without an _aisid TXT record at its apex"});
    // An SVCB with no AAAA beside it registers nothing: serve it as a plain
    // record. A change looks at the keys it touched; a whole zone at all.
    std::vector<uint64_t> orphans;
    if (editing_) {
        std::sort(touched_keys_.begin(), touched_keys_.end());
        touched_keys_.erase(std::unique(touched_keys_.begin(), touched_keys_.end()), touched_keys_.end());
        for (uint64_t k : touched_keys_)
            if (const Service *s = z.find_service(k); s && !s->refs) orphans.push_back(k);
    } else {
        z.for_each_service([&](uint16_t o, uint16_t f, uint16_t m, const Service &s) {
            if (!s.refs) orphans.push_back(service_key(o, f, m));
        });
    }
    for (uint64_t k : orphans) {
        const Service s = *z.find_service(k);
        std::string name;
        z.relative_name(static_cast<uint16_t>(k >> 32), static_cast<uint16_t>(k >> 16), static_cast<uint16_t>(k), name);
        WireName rn;
        name_from_text(name, rn);
        std::string rel(rn.prefix_labels(rn.nlabels));
        std::vector<std::string> recs;
        z.for_each_svcb(s, [&](std::string_view r) { recs.emplace_back(r); });
        svc_erase(k);
        for (auto &r : recs) add_generic(rel, kTypeSVCB, s.svcb_ttl, r);
    }
    ZoneError err;
    if (editing_) {
        std::sort(touched_rels_.begin(), touched_rels_.end());
        touched_rels_.erase(std::unique(touched_rels_.begin(), touched_rels_.end()), touched_rels_.end());
        for (const std::string &rel : touched_rels_)
            if (const Node *n = z.nodes_.find(rel); n && !check_cname(rel, *n, err)) return unexpected(err);
        // A service registered at a name that holds a CNAME.
        for (uint64_t k : touched_keys_) {
            const Service *s = z.find_service(k);
            std::string name;
            if (!s || !s->refs || !(k & 0xffff) || !((k >> 16) & 0xffff)) continue;
            if (!z.relative_name(static_cast<uint16_t>(k >> 32), static_cast<uint16_t>(k >> 16),
                                 static_cast<uint16_t>(k), name))
                continue;
            WireName rn;
            if (!name_from_text(name, rn)) continue;
            std::string_view rel = rn.prefix_labels(rn.nlabels);
            if (const Node *n = z.nodes_.find(rel); n && !check_cname(rel, *n, err)) return unexpected(err);
        }
        for (const std::string &rel : touched_rels_) prune_up(rel);
    } else {
        bool ok = true;
        z.nodes_.for_each([&](std::string_view rel, const Node &n) { ok = ok && check_cname(rel, n, err); });
        if (!ok) return unexpected(err);
    }
    z.nodes_.rebalance();
    rebalance_services();
    z.service_views_.resize(z.services_.count());
    for (size_t i = 0; i < z.services_.count(); ++i)
        z.service_views_[i] = Zone::ServiceView{z.services_.at(i).map.slots(), z.services_.at(i).map.mask()};
    z.views_valid_ = true;
    return ZonePtr(std::move(z_));
}

} // namespace aisid
