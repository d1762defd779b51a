// Builds a Zone record by record, enforcing SPEC §3 as it goes; used by the
// master-file reader, by zone transfers and by UPDATE (which starts from a copy).
#pragma once

#include "aisid/core/zone.hpp"

namespace aisid {

class ZoneBuilder {
public:
    explicit ZoneBuilder(std::string file);
    /// Starts from an existing zone for a change: the new zone shares all that
    /// the change leaves alone, and finish() checks only what it touched.
    explicit ZoneBuilder(const Zone &base);

    /// Adds one record; owner in wire form (any case). False with err filled
    /// when the record breaks the zone's rules.
    bool add(std::string_view owner_wire, uint16_t type, uint32_t ttl, std::string_view rdata,
             const std::string &file, int line, ZoneError &err);
    /// Removes one record (exact rdata) or, with rdata == nullptr, every record
    /// of that type (type 255: every record) at the owner. Returns how many went.
    size_t remove(std::string_view owner_wire, uint16_t type, const std::string_view *rdata);
    /// Checks what can only be checked at the end and publishes the zone.
    Expected<ZonePtr, ZoneError> finish();

    const Zone &zone() const { return *z_; }
    /// Sets Zone::verification (the reader of a zone file does, from its first line).
    void set_verification(std::vector<std::pair<std::string, std::string>> v) { z_->verification_ = std::move(v); }
    /// True when a codebook term was added or removed since the start.
    bool codebook_changed() const { return codebook_changed_; }

private:
    struct Pending {
        std::string rel;  // relative wire labels
        uint16_t type;
        uint32_t ttl;
        std::string rdata;
        std::string file;
        int line;
    };
    bool add_service_record(const WireName &n, unsigned nrel, uint16_t type, uint32_t ttl, std::string_view rdata,
                            const std::string &file, int line, ZoneError &err);
    void add_generic(std::string_view rel, uint16_t type, uint32_t ttl, std::string_view rdata);
    size_t remove_generic(std::string_view rel, uint16_t type, const std::string_view *rdata);
    Node *ensure_node(std::string_view rel);
    void prune_up(std::string rel);
    bool check_cname(std::string_view rel, const Node &node, ZoneError &err) const;
    void register_wildcards(uint16_t o, uint16_t f, uint16_t m, int delta);
    // The services index: a change copies the one shard its key falls in.
    ServiceShard &svc_shard(uint64_t key);
    Service *svc_emplace(uint64_t key, ServiceShard *&shard);
    Service *svc_find_mut(uint64_t key, ServiceShard *&shard);
    void svc_erase(uint64_t key);
    void rebalance_services();

    std::unique_ptr<Zone> z_;
    bool have_soa_ = false;
    bool editing_ = false;  // changing a published zone: a new SOA replaces the old
    bool codebook_changed_ = false;
    std::vector<Pending> pending_;
    // When editing: what the change touched, so that finish() checks only that.
    std::vector<std::string> touched_rels_;
    std::vector<uint64_t> touched_keys_;
    std::string first_codebook_file_;
    int first_codebook_line_ = 0;
};

/// The character-strings of TXT rdata.
std::vector<std::string_view> txt_strings(std::string_view rdata);
/// A record type's mnemonic ("AAAA", "TYPE65280").
std::string type_name(uint16_t type);

} // namespace aisid
