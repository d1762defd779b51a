// Zones changed in place of rebuilt: random UPDATEs applied incrementally give
// the very zone a rebuild from scratch gives (records, names, empty
// non-terminals, services, answers), older versions stay as they were, and a
// change copies only the shards it touches.
#include "lifecycle_support.hpp"
#include "aisid/proto/update.hpp"
#include "aisid/core/zone_builder.hpp"
#include "aisid/core/zone_set.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

using namespace aisid;
using namespace aisid::proto;
using lifecycle_test::bare;
using lifecycle_test::rr;

namespace {

ZonePtr load(const std::string &text) {
    auto z = load_zone_text(text, "test");
    REQUIRE_MESSAGE(z.has_value(), (z ? "" : z.error().to_string()));
    return *z;
}

// Every name of the zone (empty non-terminals too) with its record sets, sorted.
std::map<std::string, std::vector<std::string>> names_of(const Zone &z) {
    std::map<std::string, std::vector<std::string>> out;
    z.for_each_node([&](std::string_view rel, const Node &n) {
        std::vector<std::string> sets;
        for (const RRset &s : n.rrsets) {
            std::vector<std::string> rd = s.rdata;
            std::sort(rd.begin(), rd.end());
            std::string line = std::to_string(s.type) + "/" + std::to_string(s.ttl);
            for (auto &r : rd) line += "|" + r;
            sets.push_back(line);
        }
        std::sort(sets.begin(), sets.end());
        sets.push_back("children=" + std::to_string(n.children));
        out[std::string(rel)] = sets;
    });
    return out;
}

std::map<uint64_t, std::string> services_of(const Zone &z) {
    std::map<uint64_t, std::string> out;
    z.for_each_service([&](uint16_t o, uint16_t f, uint16_t m, const Service &s) {
        // The SVCB TTL means something only with SVCB records; their order is no part of the answer.
        std::string v = std::to_string(s.aaaa_ttl) + "/" + std::to_string(s.svcb_count ? s.svcb_ttl : 0) + "/" +
                        std::to_string(s.refs);
        std::vector<std::string> rds;
        z.for_each_svcb(s, [&](std::string_view r) { rds.emplace_back(r); });
        std::sort(rds.begin(), rds.end());
        for (auto &r : rds) v += "|" + r;
        out[service_key(o, f, m)] = v;
    });
    return out;
}

std::string answer(const ZoneSet &set, const std::string &name) {
    WireName n;
    REQUIRE(name_from_text(name, n));
    Match m = set.lookup(n);
    std::string out = std::to_string(static_cast<int>(m.kind));
    if (m.node) out += " node" + std::to_string(m.node->rrsets.size());
    if (m.service) out += " svc" + std::to_string(m.service->svcb_count);
    if (m.kind == Match::Kind::Synthesized) out += " " + m.aisid.to_string();
    // The records at the name, in a fixed order (the order of RRsets at a node is no part of the answer).
    std::vector<std::string> recs;
    for (const Record &r : records_at(*set.zones().front(), std::string(n.wire()))) {
        static const char hex[] = "0123456789abcdef";
        std::string x = " " + std::to_string(r.type) + ":" + std::to_string(r.ttl) + ":";
        for (unsigned char c : r.rdata) x += std::string{hex[c >> 4], hex[c & 15]};
        recs.push_back(x);
    }
    std::sort(recs.begin(), recs.end());
    for (auto &x : recs) out += x;
    return out;
}

void same_zone(const Zone &inc, const Zone &full, const std::vector<std::string> &names) {
    CHECK(inc.serial() == full.serial());
    CHECK(inc.service_count() == full.service_count());
    CHECK(names_of(inc) == names_of(full));
    CHECK(services_of(inc) == services_of(full));
    for (int d = 0; d < 3; ++d) CHECK(inc.dim(static_cast<Dim>(d)).size() == full.dim(static_cast<Dim>(d)).size());
    ZoneSet a, b;
    a.add(std::make_shared<Zone>(inc));
    b.add(std::make_shared<Zone>(full));
    for (const std::string &n : names) CHECK_MESSAGE(answer(a, n) == answer(b, n), n);
}

std::string zone_text(int k) {
    std::string z = "$ORIGIN inc.example.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns AAAA 2001:db8::53\n"
                    "_aisid TXT \"v=aisid1\" \"prefix=2001:db8:cafe:1::/64\"\n";
    for (int i = 1; i <= k; ++i)
        z += "o" + std::to_string(i) + "._object TXT \"code=" + std::to_string(i) + "\"\nf" + std::to_string(i) +
             "._function TXT \"code=" + std::to_string(i) + "\"\nm" + std::to_string(i) + "._method TXT \"code=" +
             std::to_string(i) + "\"\n";
    return z;
}

std::string aaaa_of(int o, int f, int m) {
    char b[80];
    std::snprintf(b, sizeof b, "2001:db8:cafe:1:%x:%x:%x:0", o, f, m);
    return b;
}

} // namespace

TEST_CASE("incremental: random UPDATEs give the zone a rebuild from scratch gives, and old versions stay") {
    const int k = 6;
    ZonePtr z = load(zone_text(k));
    std::mt19937 rng(2026);
    auto pick = [&](int n) { return 1 + static_cast<int>(rng() % static_cast<unsigned>(n)); };
    std::vector<std::string> names;  // asked of both zones
    for (int o = 1; o <= k; ++o)
        for (int f = 1; f <= k; ++f) {
            for (int m = 1; m <= k; ++m)
                names.push_back("m" + std::to_string(m) + ".f" + std::to_string(f) + ".o" + std::to_string(o) +
                                ".inc.example.");
            names.push_back("f" + std::to_string(f) + ".o" + std::to_string(o) + ".inc.example.");
        }
    for (const char *g : {"a.inc.example.", "b.a.inc.example.", "c.b.a.inc.example.", "d.c.b.a.inc.example.",
                          "x.inc.example.", "y.x.inc.example.", "m1.f1.o1.a.inc.example.", "inc.example.",
                          "p7.m1.f1.o1.inc.example.", "_aisid.inc.example.", "o1._object.inc.example."})
        names.push_back(g);
    int applied = 0, refused = 0;
    for (int step = 0; step < 400; ++step) {
        std::vector<Record> ups;
        int ops = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < ops; ++i) {
            int o = pick(k), f = pick(k), m = pick(k);
            std::string svc = "m" + std::to_string(m) + ".f" + std::to_string(f) + ".o" + std::to_string(o) + ".inc.example.";
            const std::string &g = names[names.size() - 11 + static_cast<size_t>(rng() % 7)];
            switch (rng() % 9) {
            case 0: ups.push_back(rr(svc + " 300 IN AAAA " + aaaa_of(o, f, m))); break;
            case 1: ups.push_back(rr(svc + " " + std::to_string(60 + pick(3)) + " IN SVCB 1 s" + std::to_string(pick(3)) + ".legacy.example. port=443")); break;
            case 2: ups.push_back(bare(svc, kTypeANY, kClassANY)); break;
            case 3: ups.push_back(bare(svc, kTypeSVCB, kClassANY)); break;
            case 4: ups.push_back(rr(g + " 300 IN TXT \"t" + std::to_string(pick(3)) + "\"")); break;
            case 5: ups.push_back(bare(g, kTypeANY, kClassANY)); break;
            case 6: ups.push_back(rr(g + " 300 IN TXT \"t" + std::to_string(pick(3)) + "\"", kClassNONE)); break;
            case 7: ups.push_back(rr(svc + " 300 IN CNAME elsewhere.example.")); break;
            case 8: ups.push_back(rr(svc + " 300 IN SVCB 1 s1.legacy.example. port=443", kClassNONE)); break;
            }
        }
        std::vector<Record> before = zone_records(*z);
        UpdateResult r = apply_update(*z, {}, ups);
        // The version it started from is untouched.
        std::vector<Record> after = zone_records(*z);
        REQUIRE(before.size() == after.size());
        for (size_t i = 0; i < before.size(); ++i) REQUIRE(before[i].same_rr(after[i]));
        if (r.rcode != kRcodeNoError) {
            ++refused;
            continue;
        }
        if (!r.changed) continue;
        ++applied;
        ZonePtr full = load(zone_to_text(*r.zone));
        same_zone(*r.zone, *full, names);
        // The journal's diff replays over the old version to the same zone too.
        ZonePtr replayed;
        std::string why;
        REQUIRE_MESSAGE(apply_diff(*z, r.diff, replayed, why), why);
        same_zone(*replayed, *full, names);
        z = r.zone;
    }
    CHECK(applied > 150);
    CHECK(refused > 5);  // CNAMEs beside data
}

TEST_CASE("incremental: one change to a 200k-service zone copies one service shard, and the old zone is intact") {
    std::string text = "$ORIGIN big.example.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\n"
                       "_aisid TXT \"v=aisid1\" \"prefix=2001:db8:b1:1::/64\"\n";
    const int k = 59;  // 59^3 > 200k
    for (int i = 1; i <= k; ++i)
        for (const char *d : {"o", "f", "m"})
            text += std::string(d) + std::to_string(i) + "._" +
                    (d[0] == 'o' ? "object" : d[0] == 'f' ? "function" : "method") + " TXT \"code=" + std::to_string(i) + "\"\n";
    int n = 0;
    for (int o = 1; o <= k && n < 200000; ++o)
        for (int f = 1; f <= k && n < 200000; ++f)
            for (int m = 1; m <= k && n < 200000; ++m, ++n) {
                char b[160];
                std::snprintf(b, sizeof b, "m%d.f%d.o%d AAAA 2001:db8:b1:1:%x:%x:%x:0\nm%d.f%d.o%d SVCB 1 s.legacy.example.\n",
                              m, f, o, o, f, m, m, f, o);
                text += b;
            }
    ZoneLoadLimits lim;
    lim.max_bytes = 256u << 20;
    auto loaded = load_zone_text(text, "big", {}, lim);
    REQUIRE(loaded.has_value());
    ZonePtr z = *loaded;
    REQUIRE(z->service_count() == 200000);
    UpdateResult r = apply_update(*z, {}, {rr("m1.f1.o1.big.example. 300 IN SVCB 1 moved.legacy.example. port=8443"),
                                           bare("m2.f1.o1.big.example.", kTypeANY, kClassANY)});
    REQUIRE_MESSAGE(r.rcode == kRcodeNoError, r.why);
    // Two services, their wildcard keys and the apex (SOA): a handful of shards.
    size_t copied = r.zone->unshared_bytes(*z);
    CHECK(copied < z->memory_bytes() / 50);
    CHECK(r.zone->service_count() == 199999);
    CHECK(z->service_count() == 200000);
    CHECK(z->service(1, 1, 2) != nullptr);
    CHECK(r.zone->service(1, 1, 2) == nullptr);
    int svcb_old = 0, svcb_new = 0;
    z->for_each_svcb(*z->service(1, 1, 1), [&](std::string_view) { ++svcb_old; });
    r.zone->for_each_svcb(*r.zone->service(1, 1, 1), [&](std::string_view) { ++svcb_new; });
    CHECK(svcb_old == 1);
    CHECK(svcb_new == 2);
}

TEST_CASE("incremental: within one UPDATE, later records see the earlier ones (a service added, then deleted)") {
    ZonePtr z = load(zone_text(3));
    // Added and deleted in the same message: RFC 2136 §3.4.2 applies them in order.
    UpdateResult r = apply_update(*z, {}, {rr("m1.f1.o1.inc.example. 300 IN AAAA " + aaaa_of(1, 1, 1)),
                                           rr("m1.f1.o1.inc.example. 300 IN AAAA " + aaaa_of(1, 1, 1), kClassNONE),
                                           rr("m2.f1.o1.inc.example. 300 IN AAAA " + aaaa_of(1, 1, 2))});
    REQUIRE_MESSAGE(r.rcode == kRcodeNoError, r.why);
    CHECK(r.zone->service(1, 1, 1) == nullptr);
    CHECK(r.zone->service(1, 1, 2) != nullptr);
    // The per-name limit counts the SVCBs this very UPDATE adds to a service.
    std::vector<Record> many{rr("m3.f1.o1.inc.example. 300 IN AAAA " + aaaa_of(1, 1, 3))};
    for (int i = 0; i < 5; ++i)
        many.push_back(rr("m3.f1.o1.inc.example. 300 IN SVCB 1 s" + std::to_string(i) + ".legacy.example."));
    CHECK(apply_update(*z, {}, many, 4).rcode == kRcodeRefused);
    CHECK(apply_update(*z, {}, many, 5).rcode == kRcodeNoError);
}
