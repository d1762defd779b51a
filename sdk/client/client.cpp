#include "aisid/client/client.hpp"

#include "aisid/core/rdata_text.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>

const std::vector<std::pair<std::string, uint16_t>> &aisid_result::fallbacks() const {
    make_once(kMadeFallbacks, [&] {
        const aisid::Service *svc = find_service();
        if (!zone || !svc) return;
        std::vector<aisid::SvcbEndpoint> eps;
        zone->for_each_svcb(*svc, [&](std::string_view r) {
            aisid::SvcbEndpoint e;
            // RFC 9460 §2.4.1: priority 0 is AliasMode; it names no endpoint of its own.
            if (aisid::parse_svcb(r, e) && e.priority != 0 && e.target != ".") eps.push_back(e);
        });
        // RFC 9460 §2.4.1: lower SvcPriority first.
        std::stable_sort(eps.begin(), eps.end(), [](auto &a, auto &b) { return a.priority < b.priority; });
        for (auto &e : eps) fallbacks_.emplace_back(std::move(e.target), e.port);
    });
    return fallbacks_;
}

const std::vector<aisid_result::Svcb> &aisid_result::svcb() const {
    make_once(kMadeSvcb, [&] {
        const aisid::Service *svc = find_service();
        if (!zone || !svc) return;
        zone->for_each_svcb(*svc, [&](std::string_view r) {
            aisid::SvcbEndpoint e;
            if (aisid::parse_svcb(r, e)) svcb_.push_back(Svcb{e.priority, std::move(e.target), e.port});
        });
    });
    return svcb_;
}

namespace aisid::sdk {

namespace {

// A network once seen not to reach AISIDs is trusted for this long, then the
// AISID is tried again (the network may have gained AISID routing).
constexpr auto kRememberLegacyOnly = std::chrono::seconds(60);
constexpr auto kRememberReachable = std::chrono::seconds(600);

} // namespace

ClientCore::ClientCore(unsigned flags, std::vector<std::string> host_dirs)
    : zones_(!(flags & AISID_CLIENT_NO_HOST_ZONES), !(flags & AISID_CLIENT_NO_WATCH), std::move(host_dirs)) {}

void decode_into(const ZoneSet &zs, const in6_addr &addr, aisid_result &out, const Zone *known) {
    Aisid a = Aisid::from_in6(addr);
    const Zone *z = known && known->is_aisid() && known->prefix() == a.prefix() ? known : zs.zone_for_prefix(a.prefix());
    if (!z) return;
    out.has_fields = true;
    out.fields = aisid_fields_t{a.prefix(), a.object(), a.function(), a.method(), a.performance()};
    out.prefix_zone = z;  // terms are looked up when asked
    if (!out.zone) out.zone = z;
    if (!out.local_zone) out.local_zone = z;
}

namespace {

// The answer of a lookup in the snapshot (SPEC §2), with the rule and the
// zone that decided; points into the snapshot, so it holds a reference.
Local answer_match(const std::shared_ptr<const ZoneSet> &snap, const WireName &n, const Match &m, aisid_result &out) {
    if (m.kind == Match::Kind::NotLocal) return Local::NotLocal;
    out.snapshot = snap; // no atomic operation when it holds this snapshot already
    out.set_name_wire(n.wire());
    out.local_zone = m.zone;
    out.source = m.zone->is_aisid() ? AISID_SOURCE_AISID : AISID_SOURCE_LEGACY;
    if (m.kind == Match::Kind::NxDomain) {
        out.rule = AISID_RULE_NXDOMAIN;
        return Local::NotFound; // SPEC §2 rule 3: authoritative, never forwarded
    }
    if (m.zone->is_aisid()) out.zone = m.zone;
    if (m.kind == Match::Kind::Synthesized || m.service) {
        out.rule = m.service ? AISID_RULE_SERVICE : AISID_RULE_SYNTHESIZED;
        // The AISID of the zone's own prefix: its fields are the name's codes
        // (what decode_into would find again from the address).
        in6_addr x;
        std::memcpy(x.s6_addr, m.aisid.data(), 16);
        out.addrs.assign_one(x);
        out.ttl = m.service ? m.service->aaaa_ttl : m.zone->aisid_ttl();
        out.has_fields = true;
        out.fields = aisid_fields_t{m.zone->prefix(), m.parsed.code[0], m.parsed.code[1], m.parsed.code[2],
                                    m.parsed.performance};
        out.prefix_zone = m.zone;
        if (m.service) {
            out.service = m.service;
        } else {
            out.service_by_codes = true; // looked up if its endpoints are asked for
            std::memcpy(out.service_codes, m.parsed.code, sizeof out.service_codes);
        }
        return Local::Answered;
    }
    // Rule 1: records at the name.
    out.rule = AISID_RULE_RECORDS;
    const RRset *aaaa = m.node ? m.node->find(kTypeAAAA) : nullptr;
    const RRset *a = m.node ? m.node->find(kTypeA) : nullptr;
    if (!aaaa && !a) return Local::NoData;
    uint32_t ttl = UINT32_MAX;
    if (aaaa) {
        for (const std::string &r : aaaa->rdata) {
            in6_addr x;
            std::memcpy(&x, r.data(), 16);
            out.addrs.push_back(x);
        }
        ttl = aaaa->ttl;
    }
    if (a) {
        for (const std::string &r : a->rdata) {
            in6_addr x{};
            x.s6_addr[10] = x.s6_addr[11] = 0xff;
            std::memcpy(&x.s6_addr[12], r.data(), 4);
            out.addrs.push_back(x);
        }
        ttl = std::min(ttl, a->ttl);
    }
    out.ttl = ttl;
    if (!out.addrs.empty()) decode_into(*snap, out.addrs[0], out);
    return Local::Answered;
}

} // namespace

Local ClientCore::resolve_local(const char *name, aisid_result &out) {
    const std::shared_ptr<const ZoneSet> &snap = zones_.current_shared();
    const ZoneSet &zs = *snap;
    // The answer may point into the snapshot: it holds a reference (no lock: the
    // snapshot is this thread's cached one).
    auto hold = [&] { out.snapshot = snap; };
    // A literal address resolves to itself (as getaddrinfo does).
    in6_addr a6;
    in_addr a4;
    // Only text that could be an address is parsed as one (names are the hot
    // path: one pass finds a colon or the end, and gives the length).
    const char *colon = ::strchrnul(name, ':');
    const bool maybe6 = *colon == ':';
    const size_t len = maybe6 ? std::strlen(name) : static_cast<size_t>(colon - name);
    const bool maybe4 = !maybe6 && len && name[len - 1] >= '0' && name[len - 1] <= '9';
    if (maybe6 && inet_pton(AF_INET6, name, &a6) == 1) {
        out.set_name_text(name);
        out.addrs.assign_one(a6);
        decode_into(zs, a6, out);
        if (out.has_fields) hold();
        out.source = out.has_fields ? AISID_SOURCE_AISID : AISID_SOURCE_LEGACY;
        return Local::Answered;
    }
    if (maybe4 && inet_pton(AF_INET, name, &a4) == 1) {
        std::memset(&a6, 0, sizeof a6);
        a6.s6_addr[10] = a6.s6_addr[11] = 0xff;
        std::memcpy(&a6.s6_addr[12], &a4, 4);
        out.set_name_text(name);
        out.addrs.assign_one(a6);
        out.source = AISID_SOURCE_LEGACY;
        return Local::Answered;
    }
    WireName n;
    if (!name_from_text(std::string_view(name, len), n) || n.nlabels == 0) return Local::Invalid;
    return answer_match(snap, n, zs.lookup(n), out);
}

aisid_status_t ClientCore::resolve(const char *name, aisid_result &out, transport::Clock::time_point deadline) {
    // transport::Clock::time_point::max(): the legacy timeout from now, read only if legacy DNS is needed.
    if (!name) return AISID_EINVAL;
    switch (resolve_local(name, out)) {
    case Local::Answered: counters_.count_resolve(out.source == AISID_SOURCE_AISID); return AISID_OK;
    case Local::NotFound: counters_.count_resolve(true); return AISID_ENOTFOUND;
    case Local::NoData: counters_.count_resolve(true); return AISID_ENODATA;
    case Local::Invalid: return AISID_EINVAL;
    case Local::NotLocal: break;
    }
    counters_.count_resolve(false);
    if (deadline == transport::Clock::time_point::max())
        deadline = transport::Clock::now() + std::chrono::milliseconds(legacy_.timeout_ms());
    LegacyAnswer la = legacy_.resolve(name, deadline);
    if (la.status != AISID_OK) return la.status;
    WireName n;
    name_from_text(name, n);
    out.set_name_wire(n.wire());
    out.source = AISID_SOURCE_LEGACY;
    out.ttl = la.ttl;
    out.addrs = std::move(la.addrs);
    return AISID_OK;
}

aisid_status_t ClientCore::explain(const char *query, aisid_result &out, bool &filled) {
    filled = false;
    if (!query) return AISID_EINVAL;
    // A copy: resolve() below may replace this thread's cached snapshot.
    std::shared_ptr<const ZoneSet> snap = zones_.current_shared();
    if (auto a = Aisid::parse(query)) {
        // Reverse (SPEC §2): the service name of an address inside a loaded prefix.
        filled = true;
        out.rule = AISID_RULE_REVERSE;
        out.snapshot = snap;
        in6_addr x;
        a->to_in6(x);
        const Zone *z = nullptr;
        std::string name;
        bool found = snap->reverse(*a, name, &z);
        if (!z) return AISID_ENOTFOUND; // inside no AISID prefix
        counters_.count_resolve(true);
        out.local_zone = z;
        decode_into(*snap, x, out, z); // fields and terms, also when no service has them
        if (!found) return AISID_ENOTFOUND;
        out.set_name_text(std::move(name));
        out.addrs.assign_one(x);
        out.source = AISID_SOURCE_AISID;
        out.ttl = z->aisid_ttl();
        out.service_by_codes = true; // its SVCB, when a registered service has these very codes
        out.service_codes[0] = a->object();
        out.service_codes[1] = a->function();
        out.service_codes[2] = a->method();
        return AISID_OK;
    }
    WireName n;
    if (!name_from_text(query, n)) return AISID_EINVAL;
    filled = true;
    switch (answer_match(snap, n, snap->lookup(n), out)) {
    case Local::Answered: counters_.count_resolve(out.source == AISID_SOURCE_AISID); return AISID_OK;
    case Local::NotFound: counters_.count_resolve(true); return AISID_ENOTFOUND;
    case Local::NoData: counters_.count_resolve(true); return AISID_ENODATA;
    case Local::Invalid: return AISID_EINVAL;
    case Local::NotLocal: break;
    }
    // Under no local zone: what aisid_resolve does (legacy DNS, a literal IPv4
    // address), under the name as asked, canonical.
    aisid_status_t st = resolve(query, out, transport::Clock::time_point::max());
    out.rule = AISID_RULE_NONE;
    out.set_name_text(name_to_text(n.wire()));
    return st;
}

ClientCore::NetState ClientCore::network_state(const std::string &key) {
    std::lock_guard lk(net_mu_);
    auto it = networks_.find(key);
    if (it == networks_.end()) return NetState::Unknown;
    if (transport::Clock::now() >= it->second.until) {
        networks_.erase(it);
        return NetState::Unknown;
    }
    return it->second.state;
}

void ClientCore::remember_network(const std::string &key, NetState s) {
    std::lock_guard lk(net_mu_);
    networks_[key] = NetEntry{s, transport::Clock::now() + (s == NetState::LegacyOnly ? kRememberLegacyOnly : kRememberReachable)};
}

void ClientCore::forget_networks() {
    std::lock_guard lk(net_mu_);
    networks_.clear();
}

} // namespace aisid::sdk
