// Builds a Zone record by record, enforcing SPEC §3 as it goes; used by the
// master-file reader, by zone transfers and by UPDATE (which starts from a copy).
#pragma once

#include "zone.hpp"

namespace aisid {

class ZoneBuilder {
public:
    explicit ZoneBuilder(std::string file);
    /// Starts from a copy of an existing zone (for incremental changes).
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
                            const std::string &file, int line, bool final, ZoneError &err);
    void add_generic(std::string_view rel, uint16_t type, uint32_t ttl, std::string_view rdata);
    size_t remove_generic(std::string_view rel, uint16_t type, const std::string_view *rdata);
    void prune_empty_nodes();
    void register_wildcards(uint16_t o, uint16_t f, uint16_t m, int delta);
    void append_svcb(Service &s, std::string_view rdata);

    std::unique_ptr<Zone> z_;
    bool have_soa_ = false;
    bool editing_ = false;  // changing a published zone: a new SOA replaces the old
    std::vector<Pending> pending_;
    std::string first_codebook_file_;
    int first_codebook_line_ = 0;
};

/// The character-strings of TXT rdata.
std::vector<std::string_view> txt_strings(std::string_view rdata);
/// A record type's mnemonic ("AAAA", "TYPE65280").
std::string type_name(uint16_t type);

} // namespace aisid
