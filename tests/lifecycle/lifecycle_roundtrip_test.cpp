// Every UPDATE the primary accepts, written out as a zone
// file (compaction) and read back, gives the same zone - whatever bytes its
// names and rdata hold: quotes, backslashes, blanks, semicolons, parentheses,
// dots inside labels, '@', '$', bytes outside ASCII. A property test over
// seeded random updates, and the Authority restarted over a compacted file.
#include "aisid/authority/authority.hpp"
#include "lifecycle_support.hpp"
#include "aisid/proto/update.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <random>

using namespace aisid;
using namespace aisid::resolver;
using namespace aisid::proto;
using aisid::test::kTestZone;

namespace {

const char kHazards[] = "\"\\ ;().@$\t\n'#*-_aZ09";

std::string random_label(std::mt19937 &rng) {
    std::string l;
    size_t n = 1 + rng() % 12;
    for (size_t i = 0; i < n; ++i) {
        unsigned pick = rng() % 4;
        if (pick == 0) l.push_back(static_cast<char>(rng() % 256));         // any byte, non-ASCII too
        else if (pick == 1) l.push_back(static_cast<char>('a' + rng() % 26));
        else l.push_back(kHazards[rng() % (sizeof kHazards - 1)]);
    }
    // Whole-label forms the reader treats specially.
    switch (rng() % 10) {
    case 0: l = "@"; break;
    case 1: l = "$INCLUDE"; break;
    case 2: l = "$ORIGIN"; break;
    case 3: l = "\"q\\\"uote"; break;
    default: break;
    }
    for (char &c : l) c = ascii_lower(c);  // owners are kept lowercase
    return l;
}

// <hazard labels>.hosts.ai.example. in wire form.
std::string random_owner(std::mt19937 &rng) {
    std::string w;
    unsigned n = 1 + rng() % 2;
    for (unsigned i = 0; i < n; ++i) {
        std::string l = random_label(rng);
        w.push_back(static_cast<char>(l.size()));
        w += l;
    }
    std::string suffix;
    REQUIRE(wire_from_text("hosts.ai.example.", suffix));
    return w + suffix;
}

std::string random_target(std::mt19937 &rng) {
    std::string w;
    std::string l = random_label(rng);
    // rdata names keep their case
    if (rng() % 2) l[0] = static_cast<char>('A' + rng() % 26);
    w.push_back(static_cast<char>(l.size()));
    w += l;
    std::string suffix;
    REQUIRE(wire_from_text("provider.example.", suffix));
    return w + suffix;
}

Record random_add(std::mt19937 &rng, const std::vector<std::string> &owners) {
    Record r;
    r.owner = owners[rng() % owners.size()];
    r.cls = kClassIN;
    r.ttl = 60 + rng() % 1000;
    switch (rng() % 6) {
    case 0: {  // TXT: one to three strings of any bytes
        r.type = kTypeTXT;
        unsigned n = 1 + rng() % 3;
        for (unsigned i = 0; i < n; ++i) {
            std::string s = random_label(rng);
            if (rng() % 3 == 0) s += "code=1\" \"x";
            r.rdata.push_back(static_cast<char>(s.size()));
            r.rdata += s;
        }
        break;
    }
    case 1:
        r.type = kTypeA;
        for (int i = 0; i < 4; ++i) r.rdata.push_back(static_cast<char>(rng()));
        break;
    case 2:
        r.type = kTypePTR;
        r.rdata = random_target(rng);
        break;
    case 3:
        r.type = 15;  // MX
        r.rdata = std::string("\0\x0a", 2) + random_target(rng);
        break;
    case 4:
        r.type = kTypeAAAA;
        r.rdata = std::string("\x20\x01\x0d\xb8", 4) + std::string(11, '\0') + static_cast<char>(1 + rng() % 200);
        break;
    default:
        r.type = 0xff00 + rng() % 16;  // an unknown type: RFC 3597 text
        for (unsigned i = 0, n = rng() % 9; i < n; ++i) r.rdata.push_back(static_cast<char>(rng()));
        break;
    }
    return r;
}

void check_round_trip(const Zone &z, bool write = true) {
    std::string text = zone_to_text(z);
    auto back = load_zone_text(text, "compacted.zone");
    REQUIRE_MESSAGE(back.has_value(), (back ? std::string() : back.error().to_string()) << "\n" << text);
    std::vector<Record> a = zone_records(z), b = zone_records(**back);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        INFO("record " << i << ": " << record_to_text(a[i]) << " read back as " << record_to_text(b[i]));
        CHECK(a[i].same_rr(b[i]));
        CHECK(a[i].ttl == b[i].ttl);
    }
    if (!write) return;
    std::string err;
    char tmpl[] = "/tmp/aisid-rt-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    std::string path = std::string(tmpl) + "/z.zone";
    CHECK_MESSAGE(write_zone_file(path, z, err), err);
    std::filesystem::remove_all(tmpl);
}

} // namespace

TEST_CASE("roundtrip: names and rdata that need escaping are written so the zone parser reads them back") {
    ZonePtr z = *load_zone_text(kTestZone, "ai.example.zone");
    for (const char *name : {"q\\\"uote.ai.example.", "back\\\\slash.ai.example.", "sp\\032ace.ai.example.",
                             "semi\\;colon.ai.example.", "pa\\(re\\)n.ai.example.", "dot\\.inside.ai.example.",
                             "\\@.ai.example.", "\\$INCLUDE.ai.example.", "\\$x.ai.example.", "b\\255yte.ai.example."}) {
        CAPTURE(name);
        Record r = lifecycle_test::rr(std::string(name) + " 300 IN TXT \"a \\\"quoted\\\" ; (text) \\\\\"");
        UpdateResult u = apply_update(*z, {}, {r});
        REQUIRE(u.rcode == kRcodeNoError);
        REQUIRE(u.changed);
        z = u.zone;
        check_round_trip(*z);
    }
}

TEST_CASE("roundtrip: every accepted random UPDATE, compacted then reloaded, gives the same zone (property, seeded)") {
    std::mt19937 rng(20261125);
    ZonePtr z = *load_zone_text(kTestZone, "ai.example.zone");
    std::vector<std::string> owners;
    size_t accepted = 0, refused = 0;
    for (int i = 0; i < 300; ++i) {
        if (owners.empty() || rng() % 3 == 0) owners.push_back(random_owner(rng));
        std::vector<Record> upd;
        unsigned n = 1 + rng() % 3;
        for (unsigned k = 0; k < n; ++k) {
            if (rng() % 5 == 0) {  // a delete: one RRset or the whole name
                Record d;
                d.owner = owners[rng() % owners.size()];
                d.type = rng() % 2 ? kTypeANY : kTypeTXT;
                d.cls = kClassANY;
                d.ttl = 0;
                upd.push_back(d);
            } else {
                upd.push_back(random_add(rng, owners));
            }
        }
        UpdateResult u = apply_update(*z, {}, upd);
        if (u.rcode != kRcodeNoError) {
            ++refused;
            continue;
        }
        ++accepted;
        if (!u.changed) continue;
        z = u.zone;
        check_round_trip(*z, false);
    }
    check_round_trip(*z);  // and through write_zone_file, which checks it too
    MESSAGE("roundtrip: " << accepted << " accepted, " << refused << " refused, " << zone_records(*z).size()
                          << " records at the end");
    CHECK(accepted > 250);
}

TEST_CASE("roundtrip: a 255-byte owner of escaped bytes (over ldns's 255-character token) and rdata that cannot be written are handled") {
    ZonePtr z = *load_zone_text(kTestZone, "ai.example.zone");
    // Four labels of 60 bytes 0x04 each under ai.example.: 4 * 61 + 12 = 256 > 255,
    // so three of 60 and one of 50: its text is about 900 characters.
    std::string owner;
    for (int len : {60, 60, 60, 50}) {
        owner.push_back(static_cast<char>(len));
        owner.append(static_cast<size_t>(len), '\x04');
    }
    std::string suffix;
    REQUIRE(wire_from_text("ai.example.", suffix));
    owner += suffix;
    REQUIRE(owner.size() <= 255);
    Record r{owner, kTypeTXT, kClassIN, 300, std::string("\x02ok", 3)};
    UpdateResult u = apply_update(*z, {}, {r});
    REQUIRE(u.rcode == kRcodeNoError);
    REQUIRE(name_to_text(owner).size() > 255);
    check_round_trip(*u.zone);
    // An AAAA of 0 bytes (seen from the fuzzer) cannot be written as text: FORMERR.
    std::string apex;
    REQUIRE(wire_from_text("x.ai.example.", apex));
    UpdateResult bad = apply_update(*z, {}, {Record{apex, kTypeAAAA, kClassIN, 300, ""}});
    CHECK(bad.rcode == kRcodeFormErr);
    CHECK(apply_update(*z, {}, {Record{apex, kTypeA, kClassIN, 300, "abc"}}).rcode == kRcodeFormErr);
}

TEST_CASE("RRSIGs keep the TTL of the RRset each covers (RFC 4034 §3) in transfers and zone files") {
    // One TTL per name and type is stored (RFC 2181 §5.2); the RRSIGs at a
    // name cover sets with TTLs of their own.
    const std::string sig = " 20300101000000 20200101000000 12345 sig.example. AAECAwQFBgcICQoLDA0ODw==";
    const std::string text = "$ORIGIN sig.example.\n"
                             "@ 3600 IN SOA ns.sig.example. h.sig.example. 1 3600 600 86400 300\n"
                             "@ 3600 IN NS ns.sig.example.\n"
                             "@ 300 IN DNSKEY 257 3 8 AwEAAQ==\n"
                             "@ 3600 IN RRSIG SOA 8 2 3600" + sig + "\n"
                             "@ 300 IN RRSIG DNSKEY 8 2 300" + sig + "\n"
                             "ns 600 IN AAAA 2001:db8::53\n"
                             "ns 600 IN RRSIG AAAA 8 3 600" + sig + "\n"
                             // Covers a set that is not at this name: its Original TTL.
                             "ns 600 IN RRSIG TXT 8 3 120" + sig + "\n";
    auto z = load_zone_text(text, "sig.zone");
    REQUIRE(z);
    std::map<std::pair<std::string, uint16_t>, uint32_t> ttl;  // (owner text, covered) → TTL
    for (const Record &r : zone_records(**z)) {
        if (r.type != 46) continue;
        uint16_t covered = static_cast<uint16_t>(uint8_t(r.rdata[0]) << 8 | uint8_t(r.rdata[1]));
        ttl[{name_to_text(r.owner), covered}] = r.ttl;
    }
    CHECK(ttl.size() == 4);
    CHECK(ttl[{"sig.example.", 6}] == 3600);
    CHECK(ttl[{"sig.example.", 48}] == 300);
    CHECK(ttl[{"ns.sig.example.", 28}] == 600);
    CHECK(ttl[{"ns.sig.example.", 16}] == 120);
    // The zone file written from it reads back with the same TTLs.
    auto again = load_zone_text(zone_to_text(**z), "again.zone");
    REQUIRE(again);
    std::string apex;
    REQUIRE(wire_from_text("sig.example.", apex));
    for (const Record &r : records_at(**again, apex))
        if (r.type == 46) CHECK(r.ttl == (uint8_t(r.rdata[1]) == 48 ? 300u : 3600u));
}
