// What a resolution gives back: the C API's aisid_result_t, shared by the C++
// API, the legacy path and connect.
//
// An AISID answer points into the zone snapshot it came from (held by a
// shared_ptr, so a reload never pulls it away) and makes its text (name, zone,
// SVCB endpoints) only when asked: the hot path builds no strings.
#pragma once

#include "aisid/aisid.h"
#include "aisid/core/dname.hpp"
#include "aisid/core/zone_set.hpp"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace aisid::sdk {

/// Addresses of an answer: one (the usual AISID answer) kept inline, so the
/// hot path allocates only the result itself; more go to the heap.
class AddrList {
public:
    size_t size() const { return heap_.empty() ? n_ : heap_.size(); }
    bool empty() const { return size() == 0; }
    const in6_addr *begin() const { return heap_.empty() ? &one_ : heap_.data(); }
    const in6_addr *end() const { return begin() + size(); }
    const in6_addr &operator[](size_t i) const { return begin()[i]; }
    void push_back(const in6_addr &a) {
        if (heap_.empty() && n_ == 0) {
            one_ = a;
            n_ = 1;
            return;
        }
        if (heap_.empty()) heap_.push_back(one_);
        heap_.push_back(a);
    }
    void clear() {
        heap_.clear();
        n_ = 0;
    }
    void assign_one(const in6_addr &a) {
        heap_.clear();
        one_ = a;
        n_ = 1;
    }
    AddrList &operator=(std::vector<in6_addr> &&v) {
        heap_.clear();
        n_ = 0;
        for (const in6_addr &a : v) push_back(a);
        return *this;
    }
    std::vector<in6_addr> to_vector() const { return {begin(), end()}; }

private:
    in6_addr one_;
    uint8_t n_ = 0;
    std::vector<in6_addr> heap_;
};

} // namespace aisid::sdk

struct aisid_result {
    aisid_source_t source = AISID_SOURCE_LEGACY;
    uint32_t ttl = 0;
    aisid::sdk::AddrList addrs;
    bool has_fields = false;
    aisid_fields_t fields{};
    const aisid::Zone *prefix_zone = nullptr;  // the zone whose prefix holds the AISID (its codebook)

    std::shared_ptr<const aisid::ZoneSet> snapshot;  // keeps zone, service and terms alive
    const aisid::Zone *zone = nullptr;               // the AISID domain, null for legacy answers
    const aisid::Zone *local_zone = nullptr;         // the local zone that decided, AISID domain or not
    aisid_rule_t rule = AISID_RULE_NONE;             // which rule of SPEC §2 decided
    const aisid::Service *service = nullptr;         // the registered service, for its SVCB endpoints
    // A synthesized name's service is looked up by these codes in `zone` when
    // its endpoints are asked for: most callers never ask.
    bool service_by_codes = false;
    uint16_t service_codes[3] = {0, 0, 0};

    /// Makes a used result as new for the next answer (a thread's freed
    /// results are reused: c_api.cpp). The snapshot reference stays: the next
    /// answer most often comes from the same snapshot, and assigning the same
    /// shared_ptr again costs no atomic operation.
    void reset() {
        source = AISID_SOURCE_LEGACY;
        ttl = 0;
        addrs.clear();
        has_fields = false;
        fields = aisid_fields_t{};
        prefix_zone = nullptr;
        zone = nullptr;
        local_zone = nullptr;
        rule = AISID_RULE_NONE;
        service = nullptr;
        service_by_codes = false;
        wire_len_ = 0;
        made_.store(0, std::memory_order_relaxed);
        name_text_.clear();
        zone_text_.clear();
        local_zone_text_.clear();
        fallbacks_.clear();
        svcb_.clear();
    }

    /// The codebook term of a field, into the snapshot; null for 0 (any) or an unknown code.
    const std::string *term(int d) const {
        uint16_t c = d == 0 ? fields.object : d == 1 ? fields.function : fields.method;
        return has_fields && prefix_zone && c ? prefix_zone->dim(static_cast<aisid::Dim>(d)).term(c) : nullptr;
    }
    /// The registered service whose SVCB records are the endpoints, if any.
    const aisid::Service *find_service() const {
        if (service || !service_by_codes || !zone) return service;
        return zone->service(service_codes[0], service_codes[1], service_codes[2]);
    }
    /// The canonical name (trailing dot).
    const std::string &name() const {
        make_once(kMadeName, [&] {
            if (name_text_.empty() && wire_len_) name_text_ = aisid::name_to_text(std::string_view(wire_, wire_len_));
        });
        return name_text_;
    }
    /// The AISID domain's name, "" for legacy answers.
    const std::string &zone_name() const {
        make_once(kMadeZone, [&] {
            if (zone) zone_text_ = zone->origin_text();
        });
        return zone_text_;
    }
    /// The local zone's name, "" for legacy answers.
    const std::string &local_zone_name() const {
        make_once(kMadeLocalZone, [&] {
            if (local_zone) local_zone_text_ = local_zone->origin_text();
        });
        return local_zone_text_;
    }
    /// SVCB legacy endpoints (target, port) in priority order (RFC 9460 §2.4.1).
    const std::vector<std::pair<std::string, uint16_t>> &fallbacks() const;
    /// One SVCB record of the service, as the zone has it.
    struct Svcb {
        uint16_t priority = 0;
        std::string target; // presentation, trailing dot; "." is the owner itself
        uint16_t port = 0;
    };
    /// The service's SVCB records in zone order, AliasMode included.
    const std::vector<Svcb> &svcb() const;

    void set_name_wire(std::string_view w) {
        wire_len_ = static_cast<uint16_t>(w.size());
        std::memcpy(wire_, w.data(), w.size());
    }
    void set_name_text(std::string s) { name_text_ = std::move(s); }

private:
    // What is made on first use, one bit each; made under the result's mutex
    // so that threads reading one result share the work. Unlike std::once_flag
    // this can be reset for the result's next use.
    enum : uint8_t { kMadeName = 1, kMadeZone = 2, kMadeFallbacks = 4, kMadeLocalZone = 8, kMadeSvcb = 16 };
    template <class F> void make_once(uint8_t bit, F &&f) const {
        if (made_.load(std::memory_order_acquire) & bit) return;
        std::lock_guard lk(made_mu_);
        if (made_.load(std::memory_order_relaxed) & bit) return;
        f();
        made_.fetch_or(bit, std::memory_order_release);
    }

    char wire_[aisid::kMaxNameLen + 1];
    uint16_t wire_len_ = 0;
    mutable std::atomic<uint8_t> made_{0};
    mutable std::mutex made_mu_;
    mutable std::string name_text_, zone_text_, local_zone_text_;
    mutable std::vector<std::pair<std::string, uint16_t>> fallbacks_;
    mutable std::vector<Svcb> svcb_;
};

namespace aisid::sdk {
} // namespace aisid::sdk
