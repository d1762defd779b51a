// A zone held in memory: generic records by owner name, and for AISID domains
// (SPEC §3) the codebook and the registered services in compact indexes built
// at load time. A Zone is immutable once published; changes make a new one,
// which shares every part the change did not touch (cow_map.hpp).
#pragma once

#include "aisid/address.hpp"
#include "aisid/core/cow_map.hpp"
#include "aisid/core/dname.hpp"
#include "aisid/core/expected.hpp"
#include "aisid/core/flat_map.hpp"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace aisid {

// FNV-1a: names and terms are short, and this beats a general byte hash there.
struct SvHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
        return static_cast<size_t>(h ^ (h >> 29));
    }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, SvHash, std::equal_to<>>;

enum : uint16_t {
    kTypeA = 1, kTypeNS = 2, kTypeCNAME = 5, kTypeSOA = 6, kTypePTR = 12, kTypeTXT = 16, kTypeDS = 43,
    kTypeAAAA = 28, kTypeOPT = 41, kTypeSVCB = 64, kTypeHTTPS = 65, kTypeIXFR = 251,
    kTypeAXFR = 252, kTypeANY = 255,
};
inline constexpr uint16_t kClassIN = 1, kClassCH = 3;

/// Labels in wire-form labels without the root.
inline unsigned count_labels(std::string_view wire) {
    unsigned n = 0;
    for (size_t p = 0; p < wire.size() && wire[p]; p += 1 + static_cast<uint8_t>(wire[p])) ++n;
    return n;
}

/// A resource record set; rdata in uncompressed wire form.
struct RRset {
    uint16_t type = 0;
    uint32_t ttl = 0;
    std::vector<std::string> rdata;
};

/// An owner name with its record sets; none at an empty non-terminal.
struct Node {
    std::vector<RRset> rrsets;
    uint32_t children = 0;  // nodes one label below: an empty node without any is no name (RFC 8020)
    const RRset *find(uint16_t type) const {
        for (const RRset &r : rrsets)
            if (r.type == type) return &r;
        return nullptr;
    }
    /// The TTL one record of `rs` is served and transferred with. A name
    /// keeps one TTL per type (RFC 2181 §5.2), but the RRSIGs at a name cover
    /// different RRsets with TTLs of their own, and each must carry the TTL
    /// of the RRset it covers (RFC 4034 §3): that set's, when it is at this
    /// name, else the signature's Original TTL field.
    uint32_t ttl_of(const RRset &rs, std::string_view rdata) const {
        constexpr uint16_t kRrsig = 46;
        if (rs.type != kRrsig || rdata.size() < 8) return rs.ttl;
        const auto *b = reinterpret_cast<const unsigned char *>(rdata.data());
        if (const RRset *covered = find(static_cast<uint16_t>(b[0] << 8 | b[1]))) return covered->ttl;
        return uint32_t{b[4]} << 24 | uint32_t{b[5]} << 16 | uint32_t{b[6]} << 8 | b[7];
    }
};

/// A 64-bit hash for short strings, eight bytes at a time.
inline uint64_t short_hash(std::string_view s) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ s.size();
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    return h | 1;  // FlatMap keys are non-zero
}

/// One codebook dimension: term ↔ code, both ways, each one probe of a flat
/// table (the per-lookup cost of a service name is three of these).
class Dimension {
public:
    /// The code of a lowercase term, 0 when it is not in the codebook.
    uint16_t code(std::string_view term) const {
        const uint32_t *i = by_hash_.find(short_hash(term));
        if (!i) return 0;
        const Entry &e = entries_[*i - 1];
        return e.term == term ? e.code : 0;
    }
    /// The term of a code; nullptr when none has it.
    const std::string *term(uint16_t code) const {
        const uint32_t *i = code ? by_code_.find(code) : nullptr;
        return i ? &entries_[*i - 1].term : nullptr;
    }
    /// The line the term was defined on (0 if unknown).
    int line_of(std::string_view term) const {
        const uint32_t *i = by_hash_.find(short_hash(term));
        return (i && entries_[*i - 1].term == term) ? entries_[*i - 1].line : 0;
    }
    uint16_t lowest_free_code() const;
    /// False when the term or the code is taken (or, never in practice, the
    /// term's 64-bit hash is another term's).
    bool add(const std::string &term, uint16_t code, int line);
    bool remove(std::string_view term);
    size_t size() const { return by_code_.size(); }
    template <class F> void for_each(F &&f) const {
        for (const Entry &e : entries_)
            if (e.code) f(e.term, e.code);
    }

private:
    struct Entry {
        std::string term;
        uint16_t code = 0;  // 0: removed
        int line = 0;
    };
    std::vector<Entry> entries_;
    FlatMap<uint32_t> by_hash_;  // short_hash(term) → index + 1
    FlatMap<uint32_t> by_code_;  // code → index + 1
};

/// A registered service: the AAAA and the SVCB legacy endpoints at
/// <method>.<function>.<object>. Its AISID is the zone prefix + its codes.
struct Service {
    uint32_t aaaa_ttl = 0;
    uint32_t svcb_ttl = 0;
    uint32_t svcb_off = 0;    // into *svcb_arena: [u16 len][rdata]...
    uint16_t svcb_count = 0;  // SVCB records; 0 when it has no fallback
    uint16_t refs = 0;        // for wildcard keys: how many services it covers
    const std::string *svcb_arena = nullptr;  // the SVCB bytes of the shard holding it
};

/// One shard of a zone's services: the index and the SVCB bytes of the
/// services whose key hashes there. A copy (for a change) packs the bytes
/// anew and points its services at its own.
struct ServiceShard {
    FlatMap<Service> map;
    std::string arena;
    ServiceShard() = default;
    ServiceShard(const ServiceShard &o);
    ServiceShard &operator=(const ServiceShard &) = delete;
    /// Appends one SVCB rdata to a service of this shard (its block stays contiguous).
    void append_svcb(Service &s, std::string_view rdata);
    /// Copies a service of another shard here, with its SVCB bytes.
    void adopt(uint64_t key, const Service &s);
};

inline constexpr uint64_t service_key(uint16_t o, uint16_t f, uint16_t m) {
    return (uint64_t{o} << 32) | (uint64_t{f} << 16) | m;
}

struct ZoneError {
    std::string file;
    int line = 0;
    std::string message;
    /// "FILE:LINE: message" (or "FILE: message" without a line).
    std::string to_string() const;
};

class Zone {
public:
    const std::string &origin_wire() const { return origin_wire_; }
    const std::string &origin_text() const { return origin_text_; }
    unsigned origin_labels() const { return origin_labels_; }
    const std::string &file() const { return file_; }
    /// How the data was verified before aisidd wrote the file: the key=value
    /// pairs of its "; aisid-verified:" first line, in order (see
    /// resolver/authority/zone_verify.hpp, verified_line); empty when the
    /// file has no such line. A change (ZoneBuilder from a zone) drops them.
    const std::vector<std::pair<std::string, std::string>> &verification() const { return verification_; }

    bool is_aisid() const { return is_aisid_; }
    uint64_t prefix() const { return prefix_; }
    /// TTL for synthesized answers: that of the apex `_aisid` TXT.
    uint32_t aisid_ttl() const { return aisid_ttl_; }
    const Dimension &dim(Dim d) const { return *dims_[static_cast<int>(d)]; }

    /// Records at a name relative to the origin (wire labels, no root; "" = apex).
    const Node *node(std::string_view rel) const {
        return node(rel, count_labels(rel));
    }
    /// The same, when the caller knows how many labels rel has: most lookups
    /// skip the hash table since no generic record sits at that depth.
    const Node *node(std::string_view rel, unsigned nlabels) const {
        if (nlabels < 64 && !(node_depths_ & (uint64_t{1} << nlabels))) return nullptr;
        return nodes_.find(rel);
    }
    const Node &apex() const { return *node({}); }
    const RRset &soa() const { return *apex().find(kTypeSOA); }
    uint32_t serial() const;
    uint32_t soa_minimum() const;

    /// A registered service by its codes (all non-zero).
    const Service *service(uint16_t o, uint16_t f, uint16_t m) const { return lookup_service(service_key(o, f, m)); }
    /// True when some registered service matches (o, f, m), 0 meaning any.
    bool matches(uint16_t o, uint16_t f, uint16_t m) const {
        if (o == 0) return false;
        if (m != 0 && f == 0) return false;  // the grammar has no method without function
        return lookup_service(service_key(o, f, m)) != nullptr;
    }
    size_t service_count() const { return service_count_; }
    /// SVCB rdata of a service, one by one.
    template <class F> void for_each_svcb(const Service &s, F &&f) const {
        if (!s.svcb_count) return;
        std::string_view a(*s.svcb_arena);
        size_t p = s.svcb_off;
        for (unsigned i = 0; i < s.svcb_count; ++i) {
            size_t n = (static_cast<uint8_t>(a[p]) << 8) | static_cast<uint8_t>(a[p + 1]);
            f(a.substr(p + 2, n));
            p += 2 + n;
        }
    }
    /// Every registered service: f(o, f, m, const Service&).
    template <class F> void for_each_service(F &&f) const {
        for (size_t i = 0; i < services_.count(); ++i)
            services_.at(i).map.for_each([&](uint64_t k, const Service &s) {
                uint16_t m = static_cast<uint16_t>(k), fn = static_cast<uint16_t>(k >> 16),
                         o = static_cast<uint16_t>(k >> 32);
                if (o && fn && m) f(o, fn, m, s);
            });
    }
    template <class F> void for_each_node(F &&f) const { nodes_.for_each(f); }
    /// The AISID of a service or synthesized name.
    Aisid aisid_of(uint16_t o, uint16_t f, uint16_t m, uint16_t perf) const {
        return Aisid::make(prefix_, o, f, m, perf);
    }
    /// "<method>.<function>.<object>" relative name (text, no trailing dot) of codes, or
    /// false when a non-zero code has no term.
    bool relative_name(uint16_t o, uint16_t f, uint16_t m, std::string &out) const {
        out.clear();
        return append_relative_name(o, f, m, out);
    }
    bool append_relative_name(uint16_t o, uint16_t f, uint16_t m, std::string &out) const;

    /// Approximate heap use, for metrics and the 1M-service budget.
    size_t memory_bytes() const;
    /// Heap bytes this version does not share with `older` (what a change cost).
    size_t unshared_bytes(const Zone &older) const;

    /// Services per shard the index aims at: a change copies about this many.
    static constexpr size_t kServicesPerShard = 512;

private:
    friend class ZoneBuilder;
    std::string origin_wire_;
    std::string origin_text_;
    unsigned origin_labels_ = 0;
    std::string file_;
    std::vector<std::pair<std::string, std::string>> verification_;
    bool is_aisid_ = false;
    uint64_t prefix_ = 0;
    uint32_t aisid_ttl_ = 0;
    // Through the shards: for the builder, while it changes them.
    const Service *find_service(uint64_t key) const {
        return services_.for_hash(FlatMap<Service>::mix(key)).map.find(key);
    }
    // Through the views: one hop less for every lookup of a published zone.
    const Service *lookup_service(uint64_t key) const {
        if (!views_valid_) return find_service(key);  // a zone being built
        uint64_t h = FlatMap<Service>::mix(key);
        const ServiceView &v = service_views_[services_.index(h)];
        return FlatMap<Service>::find_in(v.slots, v.mask, key, h);
    }
    // Each shard's table, kept beside the others (ZoneBuilder::finish sets them).
    struct ServiceView {
        const FlatMap<Service>::Slot *slots = nullptr;
        size_t mask = 0;
    };
    std::vector<ServiceView> service_views_{1};
    bool views_valid_ = false;

    CowPtr<Dimension> dims_[3];
    CowStringMap<Node> nodes_;
    uint64_t node_depths_ = 0;  // bit n: some node has n labels below the origin (bit 63: 63 or more)
    CowShards<ServiceShard> services_;  // full keys: services; keys with zeros: wildcards
    size_t service_keys_ = 0;           // keys in services_, wildcards counted
    size_t service_count_ = 0;
};

using ZonePtr = std::shared_ptr<const Zone>;

/// What one zone load may read: $INCLUDE is bounded in depth (8),
/// in files and in bytes, and confined to the zone file's own directory and
/// the directories named here (symbolic links resolved).
struct ZoneLoadLimits {
    unsigned max_includes = 64;              // $INCLUDE files in one load, every level together
    uint64_t max_bytes = uint64_t{64} << 20; // bytes read in one load: the zone file and its includes
    std::vector<std::string> include_dirs;   // more directories $INCLUDE may read from
};

/// Loads an RFC 1035 master file ($ORIGIN, $TTL, $INCLUDE) with ldns and checks
/// it against SPEC §3. The origin is the owner of its one SOA record.
Expected<ZonePtr, ZoneError> load_zone_file(const std::string &path, const ZoneLoadLimits &limits = {});
/// The same from text; `file` names it in errors (its directory is where
/// $INCLUDE may read); `origin` is the starting $ORIGIN (may be empty).
Expected<ZonePtr, ZoneError> load_zone_text(std::string_view text, const std::string &file,
                                            std::string_view origin = {}, const ZoneLoadLimits &limits = {});

/// True when a lowercase label is a valid codebook term (SPEC §2).
bool valid_term(std::string_view term);
/// Parses a "p<perf>" label; 0 when it is not one (perf is 1..65535, no leading zero).
uint32_t parse_perf_label(std::string_view label);

} // namespace aisid
