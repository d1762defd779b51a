// The host's local zones and the resolution order of SPEC §2. No I/O: a
// question in, a verdict out, so the SDK, the NSS module and aisidd share it.
#pragma once

#include "aisid/core/zone.hpp"

#include <vector>

namespace aisid {

/// The decoded parts of a service name.
struct ServiceName {
    uint16_t code[3] = {0, 0, 0};  // object, function, method; 0 = any
    uint16_t performance = 0;
};

struct Match {
    enum class Kind : uint8_t {
        NotLocal,     // under no local zone: a legacy name
        Explicit,     // the zone has records at that exact name (rule 1)
        Synthesized,  // a valid service name matching a registered service (rule 2)
        NxDomain,     // in a local zone, neither (rule 3)
    };
    Kind kind = Kind::NotLocal;
    const Zone *zone = nullptr;
    const Node *node = nullptr;        // Explicit: generic records at the name (may be null)
    const Service *service = nullptr;  // Explicit: the name is a registered service's
    ServiceName parsed;                // Synthesized, or the service's codes
    Aisid aisid;                       // Synthesized, or the service's AISID
};

class ZoneSet {
public:
    /// Adds a zone, replacing one with the same origin.
    void add(ZonePtr z);
    bool remove(std::string_view origin_wire);
    const std::vector<ZonePtr> &zones() const { return zones_; }
    const Zone *find(std::string_view origin_wire) const;

    /// The zone a name falls in (closest enclosing), and its label index there.
    const Zone *zone_for(const WireName &name, unsigned &origin_at) const;
    /// SPEC §2 resolution, no allocation.
    Match lookup(const WireName &name) const;
    /// Reverse (SPEC §2): the service name of an address inside an AISID prefix,
    /// as text with a trailing dot. False for NXDOMAIN or when no prefix holds it.
    bool reverse(const Aisid &a, std::string &out, const Zone **zone = nullptr) const;
    /// The zone whose prefix holds an address, or nullptr.
    const Zone *zone_for_prefix(uint64_t prefix) const;

private:
    std::vector<ZonePtr> zones_;
    StringMap<const Zone *> by_origin_;
    std::unordered_map<uint64_t, const Zone *> by_prefix_;
    size_t max_origin_labels_ = 0;
};

/// Parses the labels of `name` left of label `origin_at` as a service name of
/// zone z (SPEC §2 grammar; terms must be in z's codebook).
bool parse_service_name(const Zone &z, const WireName &name, unsigned origin_at, ServiceName &out);

/// "d.c.b.a.<...>.ip6.arpa." (32 nibbles) to an address; false otherwise.
bool parse_ip6_arpa(const WireName &name, Aisid &out);

} // namespace aisid
