// The Authority without a network: messages in, messages out, a fixed clock.
// Journal replay across instances, compaction, IXFR from the journal and the
// AXFR fallback, TSIG error answers (RFC 8945 §5.3.2) that verify.
#include "aisid/authority/authority.hpp"
#include "lifecycle_support.hpp"
#include "aisid/resolver/query_core.hpp"
#include "aisid/proto/update.hpp"
#include "aisid/proto/xfr.hpp"

#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <thread>

using namespace aisid;
using namespace aisid::resolver;
using namespace aisid::proto;
using lifecycle_test::bare;
using aisid::test::kTestZone;
using lifecycle_test::rr;

namespace {

const char *kKey = "k1:c2VjcmV0LWZvci1haXNpZC1saWZlY3ljbGUtdGVzdHMhIQ==";
constexpr time_t kNow = 1795600000;

struct Env {
    std::string dir;
    std::shared_ptr<const ZoneSet> set;
    std::vector<std::string> logs;
    std::unique_ptr<Authority> auth;
    ZonePtr file_zone;
    time_t clock = kNow;
    size_t journal_keep = 1000;
    int publishes = 0;

    explicit Env(std::string d = {}) : dir(std::move(d)) {
        if (dir.empty()) {
            char tmpl[] = "/tmp/aisid-auth-XXXXXX";
            REQUIRE(mkdtemp(tmpl));
            dir = tmpl;
        }
        file_zone = *load_zone_text(kTestZone, "ai.example.zone");
        restart();
    }
    void restart() {
        auth.reset();
        auto s = std::make_shared<ZoneSet>();
        s->add(file_zone);
        set = s;
        AuthorityOptions o;
        o.keys = {kKey};
        o.update_keys = {"k1"};
        o.state_dir = dir;
        o.start_threads = false;
        o.compact_on_stop = false;
        o.journal_keep = journal_keep;  // each restart is a crash: the journal must carry everything
        o.now = [this] { return clock; };
        o.log = [this](const std::string &l) { logs.push_back(l); };
        auth = std::make_unique<Authority>(
            o, [this] { return set; },
            [this](ZonePtr z) {
                ++publishes;
                auto s = std::make_shared<ZoneSet>(*set);
                s->add(z);
                set = s;
            });
        auto st = auth->start();
        REQUIRE_MESSAGE(st.has_value(), (st ? "" : st.error().message));
    }
    const Zone &zone() const { return *set->find(file_zone->origin_wire()); }
    bool logged(const std::string &s) const {
        for (auto &l : logs)
            if (l.find(s) != std::string::npos) return true;
        return false;
    }
    std::vector<std::string> send(const std::string &wire, bool tcp = true) {
        sockaddr_storage peer{};
        auto *a = reinterpret_cast<sockaddr_in *>(&peer);
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(0x7f000001);
        std::vector<std::string> out;
        auth->handle(reinterpret_cast<const uint8_t *>(wire.data()), wire.size(), peer, tcp, out);
        return out;
    }
    // Messages that arrived together (the runner's batch).
    std::vector<std::vector<std::string>> send_batch(const std::vector<std::string> &wires) {
        std::vector<AuthorityHook::Request> reqs(wires.size());
        for (size_t i = 0; i < wires.size(); ++i) {
            reqs[i].msg = reinterpret_cast<const uint8_t *>(wires[i].data());
            reqs[i].len = wires[i].size();
            auto *a = reinterpret_cast<sockaddr_in *>(&reqs[i].peer);
            a->sin_family = AF_INET;
            a->sin_addr.s_addr = htonl(0x7f000001);
            reqs[i].tcp = true;
        }
        auth->handle_batch(reqs);
        std::vector<std::vector<std::string>> out;
        for (auto &r : reqs) out.push_back(std::move(r.replies));
        return out;
    }
    ~Env() {
        auth.reset();
        std::filesystem::remove_all(dir);
    }
};

std::string pkt_wire(ldns_pkt *p) {
    uint8_t *buf = nullptr;
    size_t n = 0;
    REQUIRE(ldns_pkt2wire(&buf, p, &n) == LDNS_STATUS_OK);
    std::string s(reinterpret_cast<char *>(buf), n);
    free(buf);
    return s;
}

// An UPDATE signed here (not by ldns) at a chosen time; the server verifies with ldns.
std::string update(const std::vector<Record> &pre, const std::vector<Record> &upd, time_t when, std::string *mac = nullptr) {
    std::string zw;
    wire_from_text("ai.example.", zw);
    LdnsRrListPtr pr = ldns_list_of(pre), up = ldns_list_of(upd);
    LdnsPktPtr u(ldns_update_pkt_new(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, zw.size(), zw.data()), LDNS_RR_CLASS_IN,
                                 pr.get(), up.get(), nullptr));
    ldns_pkt_set_id(u.get(), 4242);
    std::string w = pkt_wire(u.get());
    auto k = parse_tsig_key(kKey);
    tsig_append(w, &*k, {}, static_cast<uint64_t>(when), kTsigFudge, 0, {}, {});
    if (mac) {
        ldns_pkt *raw = nullptr;
        ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t *>(w.data()), w.size());
        LdnsPktPtr p(raw);
        const ldns_rdf *m = tsig_mac_rdf(p.get());
        *mac = std::string(reinterpret_cast<const char *>(ldns_rdf_data(m)), ldns_rdf_size(m));
    }
    return w;
}

bool has_record(const Zone &z, const std::string &text) {
    Record want = rr(text);
    for (const Record &r : records_at(z, want.owner))
        if (r.same_rr(want)) return true;
    return false;
}

LdnsPktPtr parse(const std::string &w) {
    ldns_pkt *raw = nullptr;
    REQUIRE(ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t *>(w.data()), w.size()) == LDNS_STATUS_OK);
    return LdnsPktPtr(raw);
}

std::string xfr_query(uint16_t type, std::optional<uint32_t> serial, LdnsRdfPtr *mac) {
    std::string zw;
    wire_from_text("ai.example.", zw);
    LdnsPktPtr q(ldns_pkt_query_new(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, zw.size(), zw.data()),
                                static_cast<ldns_rr_type>(type), LDNS_RR_CLASS_IN, 0));
    if (serial)
        ldns_pkt_push_rr(q.get(), LDNS_SECTION_AUTHORITY,
                         record_to_ldns(rr("ai.example. 300 IN SOA ns.ai.example. admin.ai.example. " +
                                           std::to_string(*serial) + " 3600 600 86400 60"))
                             .release());
    std::string w;
    // ldns signs with the real clock: the test's clock follows it for these.
    REQUIRE(tsig_sign_pkt(q.get(), *parse_tsig_key(kKey), nullptr, false, w, mac));
    return w;
}

} // namespace

TEST_CASE("authority: signed UPDATE applies, is journaled, replays in a new instance, compacts") {
    Env e;
    std::string mac;
    auto out = e.send(update({}, {rr("vit._method.ai.example. 300 IN TXT \"code=3\"")}, kNow + 100, &mac));
    REQUIRE(out.size() == 1);
    LdnsPktPtr r = parse(out[0]);
    CHECK(ldns_pkt_get_rcode(r.get()) == LDNS_RCODE_NOERROR);
    CHECK(ldns_pkt_id(r.get()) == 4242);
    // signed back with the request's MAC
    auto k = parse_tsig_key(kKey);
    LdnsRdfPtr req_mac(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_INT16_DATA, mac.size(), mac.data()));
    CHECK(tsig_verify_response(r.get(), reinterpret_cast<const uint8_t *>(out[0].data()), out[0].size(), *k,
                               req_mac.get(), false, nullptr));
    CHECK(e.zone().serial() == 2026112502u);
    CHECK(e.zone().dim(Dim::method).code("vit") == 3);

    out = e.send(update({}, {rr("vit.detection.image.ai.example. 300 IN AAAA 2001:db8:abcd:12:1:2:3:0")}, kNow));
    CHECK(ldns_pkt_get_rcode(parse(out[0]).get()) == LDNS_RCODE_NOERROR);

    e.restart();  // the file zone again + the journal
    CHECK(e.zone().serial() == 2026112503u);
    CHECK(e.zone().service(1, 2, 3) != nullptr);
    CHECK(e.logged("replayed 2 journal entries"));

    e.auth->compact_now();
    std::string compacted = e.dir + "/ai.example.zone";
    REQUIRE(std::filesystem::exists(compacted));
    auto z = load_zone_file(compacted);
    REQUIRE(z.has_value());
    CHECK((*z)->serial() == 2026112503u);
    e.logs.clear();
    e.restart();
    CHECK(e.zone().serial() == 2026112503u);
    CHECK_FALSE(e.logged("replayed"));  // the compacted file already holds them
}

TEST_CASE("authority: TSIG failures answer NOTAUTH with the TSIG error - BADTIME is signed and verifies") {
    Env e;
    std::string mac;
    auto out = e.send(update({}, {rr("vit._method.ai.example. 300 IN TXT \"code=3\"")}, kNow - 301, &mac));
    REQUIRE(out.size() == 1);
    LdnsPktPtr r = parse(out[0]);
    CHECK(ldns_pkt_get_rcode(r.get()) == LDNS_RCODE_NOTAUTH);
    const ldns_rr *t = ldns_pkt_tsig(r.get());
    REQUIRE(t);
    const ldns_rdf *err = ldns_rr_rdf(t, 5);
    CHECK(((ldns_rdf_data(err)[0] << 8) | ldns_rdf_data(err)[1]) == kTsigBadTime);
    auto k = parse_tsig_key(kKey);
    LdnsRdfPtr req_mac(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_INT16_DATA, mac.size(), mac.data()));
    CHECK(tsig_verify_response(r.get(), reinterpret_cast<const uint8_t *>(out[0].data()), out[0].size(), *k,
                               req_mac.get(), false, nullptr));
    CHECK(e.zone().serial() == 2026112501u);
    // inside the fudge: accepted
    out = e.send(update({}, {rr("vit._method.ai.example. 300 IN TXT \"code=3\"")}, kNow - 299));
    CHECK(ldns_pkt_get_rcode(parse(out[0]).get()) == LDNS_RCODE_NOERROR);
    // a flipped MAC byte: BADSIG, unsigned
    std::string w = update({}, {rr("x._method.ai.example. 300 IN TXT \"code=9\"")}, kNow);
    w[w.size() - 12] ^= 1;
    out = e.send(w);
    r = parse(out[0]);
    CHECK(ldns_pkt_get_rcode(r.get()) == LDNS_RCODE_NOTAUTH);
    err = ldns_rr_rdf(ldns_pkt_tsig(r.get()), 5);
    CHECK(((ldns_rdf_data(err)[0] << 8) | ldns_rdf_data(err)[1]) == kTsigBadSig);
    CHECK(e.zone().serial() == 2026112502u);
}

TEST_CASE("authority: IXFR from the journal, AXFR-style fallback when it does not reach back, up to date") {
    Env e;
    e.clock = ::time(nullptr);
    for (int i = 0; i < 3; ++i)
        REQUIRE(ldns_pkt_get_rcode(parse(e.send(update({}, {rr("h" + std::to_string(i) + ".hosts.ai.example. 300 IN AAAA 2001:db8::" + std::to_string(i + 1))}, e.clock))[0]).get()) == 0);
    auto records = [](const std::vector<std::string> &msgs) {
        std::vector<Record> all;
        for (auto &m : msgs) {
            LdnsPktPtr p = parse(m);
            auto rs = records_of(ldns_pkt_answer(p.get()));
            all.insert(all.end(), rs.begin(), rs.end());
        }
        return all;
    };
    LdnsRdfPtr mac;
    auto inc = parse_xfr_stream(records(e.send(xfr_query(kTypeIXFR, 2026112502u, &mac))), true, 2026112502u, false);
    REQUIRE(inc);
    CHECK(inc->kind == XfrResult::Kind::incremental);
    CHECK(inc->diffs.size() == 2);
    auto full = parse_xfr_stream(records(e.send(xfr_query(kTypeIXFR, 2026110000u, &mac))), true, 2026110000u, false);
    REQUIRE(full);
    CHECK(full->kind == XfrResult::Kind::full);
    auto up = e.send(xfr_query(kTypeIXFR, 2026112504u, &mac));
    CHECK(records(up).size() == 1);
    auto ax = parse_xfr_stream(records(e.send(xfr_query(kTypeAXFR, std::nullopt, &mac))), false, std::nullopt, false);
    REQUIRE(ax);
    CHECK(ax->full.size() == zone_records(e.zone()).size());
    // over UDP: TC, go to TCP
    auto udp = e.send(xfr_query(kTypeAXFR, std::nullopt, &mac), false);
    CHECK(ldns_pkt_tc(parse(udp[0]).get()));
    // unsigned: REFUSED
    std::string zw;
    wire_from_text("ai.example.", zw);
    LdnsPktPtr q(ldns_pkt_query_new(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, zw.size(), zw.data()), LDNS_RR_TYPE_AXFR,
                                LDNS_RR_CLASS_IN, 0));
    CHECK(ldns_pkt_get_rcode(parse(e.send(pkt_wire(q.get()))[0]).get()) == LDNS_RCODE_REFUSED);
}

TEST_CASE("authority: a big zone goes out in several signed messages that verify in order") {
    Env e;
    e.clock = ::time(nullptr);
    std::vector<Record> many;
    for (int i = 0; i < 1500; ++i)
        many.push_back(rr("host" + std::to_string(i) + ".bulk.ai.example. 300 IN AAAA 2001:db8:1::" + std::to_string(i + 1)));
    REQUIRE(ldns_pkt_get_rcode(parse(e.send(update({}, many, e.clock))[0]).get()) == 0);
    LdnsRdfPtr mac;
    auto msgs = e.send(xfr_query(kTypeAXFR, std::nullopt, &mac));
    REQUIRE(msgs.size() > 1);
    auto k = parse_tsig_key(kKey);
    LdnsRdfPtr prev = std::move(mac);
    size_t n = 0;
    for (size_t i = 0; i < msgs.size(); ++i) {
        LdnsPktPtr p = parse(msgs[i]);
        LdnsRdfPtr next;
        CHECK_MESSAGE(tsig_verify_response(p.get(), reinterpret_cast<const uint8_t *>(msgs[i].data()), msgs[i].size(),
                                           *k, prev.get(), i > 0, &next),
                      "message " << i);
        prev = std::move(next);
        n += ldns_rr_list_rr_count(ldns_pkt_answer(p.get()));
    }
    CHECK(n == zone_records(e.zone()).size() + 1);
}

TEST_CASE("authority: compaction trims the journal but keeps what replay and recent IXFR need") {
    Env e;
    e.journal_keep = 2;
    e.restart();
    e.clock = ::time(nullptr);
    auto add = [&](int i) {
        auto out = e.send(update({}, {rr("h" + std::to_string(i) + ".hosts.ai.example. 300 IN AAAA 2001:db8::" + std::to_string(i + 1))}, e.clock));
        REQUIRE(ldns_pkt_get_rcode(parse(out[0]).get()) == 0);
    };
    for (int i = 0; i < 10; ++i) add(i);
    e.auth->compact_now();  // 10 diffs > 2 * keep: trimmed to the last 2
    for (int i = 10; i < 13; ++i) add(i);
    e.restart();  // a crash: the compacted file + the 3 diffs after it
    CHECK(e.zone().serial() == 2026112501u + 13);
    CHECK(e.logged("replayed 3 journal entries"));
    for (int i = 0; i < 13; ++i) CHECK_FALSE(records_at(e.zone(), rr("h" + std::to_string(i) + ".hosts.ai.example. 300 IN A 192.0.2.1").owner).empty());
    auto records = [&](uint32_t serial) {
        LdnsRdfPtr mac;
        std::vector<Record> all;
        for (auto &m : e.send(xfr_query(kTypeIXFR, serial, &mac))) {
            LdnsPktPtr p = parse(m);
            auto rs = records_of(ldns_pkt_answer(p.get()));
            all.insert(all.end(), rs.begin(), rs.end());
        }
        return parse_xfr_stream(all, true, serial, false);
    };
    auto inc = records(2026112501u + 8);  // still in the journal
    REQUIRE(inc);
    CHECK(inc->kind == XfrResult::Kind::incremental);
    CHECK(inc->diffs.size() == 5);
    auto full = records(2026112501u + 3);  // trimmed away: the whole zone instead
    REQUIRE(full);
    CHECK(full->kind == XfrResult::Kind::full);
}

namespace {

// A query as a client sends it (letter case as given, RD, EDNS or not), and
// the same query signed at `when` with the test key; `mac` gets its MAC.
struct SignedQuery {
    std::string plain, signed_wire, mac;
};
SignedQuery make_query(const std::string &name, uint16_t type, bool edns, time_t when) {
    ldns_rdf *owner = nullptr;
    REQUIRE(ldns_str2rdf_dname(&owner, name.c_str()) == LDNS_STATUS_OK);
    LdnsPktPtr q(ldns_pkt_query_new(owner, static_cast<ldns_rr_type>(type), LDNS_RR_CLASS_IN, LDNS_RD));
    ldns_pkt_set_id(q.get(), 777);
    if (edns) ldns_pkt_set_edns_udp_size(q.get(), 1232);
    SignedQuery sq;
    sq.plain = pkt_wire(q.get());
    sq.signed_wire = sq.plain;
    auto k = parse_tsig_key(kKey);
    tsig_append(sq.signed_wire, &*k, {}, static_cast<uint64_t>(when), kTsigFudge, 0, {}, {});
    LdnsPktPtr p = parse(sq.signed_wire);
    const ldns_rdf *m = tsig_mac_rdf(p.get());
    sq.mac.assign(reinterpret_cast<const char *>(ldns_rdf_data(m)), ldns_rdf_size(m));
    return sq;
}

// What aisidd's query core answers the unsigned query with (a loopback client).
std::string core_answer(const ZoneSet &zones, const std::string &msg, bool tcp) {
    Cache cache(1 << 20);
    CoreSettings settings;
    QueryCore core(cache, settings);
    core.set_zones(&zones);
    sockaddr_storage peer{};
    auto *a = reinterpret_cast<sockaddr_in *>(&peer);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(0x7f000001);
    std::vector<uint8_t> out(65535);
    Query q;
    CoreResult r = core.handle(reinterpret_cast<const uint8_t *>(msg.data()), msg.size(), peer, tcp, 0, out.data(),
                           out.size(), q);
    REQUIRE(r.verdict == Verdict::Answered);
    return std::string(reinterpret_cast<const char *>(out.data()), r.len);
}

bool verifies(const std::string &reply, const std::string &request_mac) {
    LdnsPktPtr r = parse(reply);
    LdnsRdfPtr m(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_INT16_DATA, request_mac.size(), request_mac.data()));
    return tsig_verify_response(r.get(), reinterpret_cast<const uint8_t *>(reply.data()), reply.size(),
                                *parse_tsig_key(kKey), m.get(), false, nullptr);
}

// The signed reply is the query core's unsigned reply, byte for byte, plus a
// TSIG (the last record, counted in ARCOUNT) that verifies.
void check_signed_same(Env &e, const std::string &name, uint16_t type, bool edns, bool tcp = false) {
    CAPTURE(name);
    CAPTURE(type);
    CAPTURE(edns);
    CAPTURE(tcp);
    SignedQuery sq = make_query(name, type, edns, e.clock);
    std::string want = core_answer(*e.set, sq.plain, tcp);
    auto out = e.send(sq.signed_wire, tcp);
    REQUIRE(out.size() == 1);
    const std::string &got = out[0];
    REQUIRE(got.size() > want.size());
    std::string stripped = got.substr(0, want.size());
    uint16_t ar = static_cast<uint16_t>((static_cast<uint8_t>(stripped[10]) << 8) | static_cast<uint8_t>(stripped[11]));
    REQUIRE(ar >= 1);
    --ar;
    stripped[10] = static_cast<char>(ar >> 8);
    stripped[11] = static_cast<char>(ar);
    CHECK(stripped == want);
    CHECK(ldns_pkt_tsig(parse(got).get()) != nullptr);
    CHECK(verifies(got, sq.mac));
}

} // namespace

TEST_CASE("authority: a signed query gets the query core's local answer (SPEC §2), signed") {
    Env e;
    const std::string rev = "4.6.0.0.1.0.0.0.2.0.0.0.1.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.";
    const std::vector<std::pair<std::string, uint16_t>> cases{
        {"p100.yolo.detection.image.ai.example.", kTypeAAAA},  // synthesized
        {"detection.image.ai.example.", kTypeAAAA},            // wildcard
        {"image.ai.example.", kTypeAAAA},
        {rev, kTypePTR},                                       // reverse
        {rev, kTypeAAAA},                                      // reverse NODATA
        {"yolo.detection.image.ai.example.", kTypeAAAA},       // explicit service
        {"yolo.detection.image.ai.example.", kTypeSVCB},
        {"yolo.detection.image.ai.example.", kTypeANY},
        {"ns.ai.example.", kTypeAAAA},                         // explicit record
        {"ai.example.", kTypeSOA},
        {"ai.example.", kTypeANY},
        {"yolo.detection.image.ai.example.", kTypeTXT},        // NODATA
        {"nosuch.ai.example.", kTypeAAAA},                     // NXDOMAIN
        {"YOLO.Detection.image.AI.Example.", kTypeAAAA},       // letter case kept
        {"www.legacy.example.", kTypeAAAA},                    // not ours: REFUSED below
    };
    for (bool edns : {false, true})
        for (auto &[name, type] : cases) {
            if (name == "www.legacy.example.") continue;
            check_signed_same(e, name, type, edns);
        }
    check_signed_same(e, "p100.yolo.detection.image.ai.example.", kTypeANY, true, true);

    // outside every local zone: REFUSED, signed
    SignedQuery sq = make_query("www.legacy.example.", kTypeAAAA, true, e.clock);
    auto out = e.send(sq.signed_wire, false);
    REQUIRE(out.size() == 1);
    CHECK(ldns_pkt_get_rcode(parse(out[0]).get()) == LDNS_RCODE_REFUSED);
    CHECK(verifies(out[0], sq.mac));

    // the answer and the TSIG fit the client's 512 bytes: TC, still signed (RFC 8945 §5.3)
    std::vector<Record> many;
    for (int i = 0; i < 40; ++i)
        many.push_back(rr("big.hosts.ai.example. 300 IN AAAA 2001:db8:1::" + std::to_string(i + 1)));
    REQUIRE(ldns_pkt_get_rcode(parse(e.send(update({}, many, e.clock))[0]).get()) == 0);
    sq = make_query("big.hosts.ai.example.", kTypeAAAA, false, e.clock);
    out = e.send(sq.signed_wire, false);
    REQUIRE(out.size() == 1);
    CHECK(out[0].size() <= 512);
    CHECK(ldns_pkt_tc(parse(out[0]).get()));
    CHECK(verifies(out[0], sq.mac));
    check_signed_same(e, "big.hosts.ai.example.", kTypeAAAA, false);  // both TC
    // 1169 bytes fit 1232 unsigned, not with the TSIG: TC, signed
    sq = make_query("big.hosts.ai.example.", kTypeAAAA, true, e.clock);
    CHECK(core_answer(*e.set, sq.plain, false).size() > 1232 - 80);
    out = e.send(sq.signed_wire, false);
    CHECK(out[0].size() <= 1232);
    CHECK(ldns_pkt_tc(parse(out[0]).get()));
    CHECK(verifies(out[0], sq.mac));
    check_signed_same(e, "big.hosts.ai.example.", kTypeAAAA, false, true);  // TCP: all of it

    // a wrong key: NOTAUTH/BADSIG as before
    sq = make_query("p100.yolo.detection.image.ai.example.", kTypeAAAA, false, e.clock);
    sq.signed_wire[sq.signed_wire.size() - 12] ^= 1;
    out = e.send(sq.signed_wire, false);
    CHECK(ldns_pkt_get_rcode(parse(out[0]).get()) == LDNS_RCODE_NOTAUTH);
}

TEST_CASE("authority: a signed UPDATE replayed after a restart within its fudge window is refused (NOTAUTH/BADTIME) - the zone is unchanged") {
    Env e;
    const std::string svc = "yolo.detection.image.ai.example.";
    auto migrate = [&](const std::string &target) {
        return std::vector<Record>{lifecycle_test::bare(svc, kTypeSVCB, kClassANY),
                                   rr(svc + " 300 IN SVCB 1 " + target + " port=443")};
    };
    auto target = [&] {
        for (const Record &r : records_at(e.zone(), [&] {
                 std::string w;
                 wire_from_text(svc, w);
                 return w;
             }()))
            if (r.type == kTypeSVCB) return record_to_text(r);
        return std::string("?");
    };
    std::string mac;
    std::string first = update({}, migrate("a.provider.example."), kNow, &mac);
    REQUIRE(ldns_pkt_get_rcode(parse(e.send(first)[0]).get()) == LDNS_RCODE_NOERROR);
    REQUIRE(ldns_pkt_get_rcode(parse(e.send(update({}, migrate("b.provider.example."), kNow + 1))[0]).get()) ==
            LDNS_RCODE_NOERROR);
    CHECK(e.zone().serial() == 2026112503u);
    e.restart();  // a crash: only the journal remembers
    e.clock = kNow + 60;  // well inside the 300 s fudge
    CHECK(e.zone().serial() == 2026112503u);
    CHECK(target().find("b.provider.example.") != std::string::npos);
    auto out = e.send(first);
    REQUIRE(out.size() == 1);
    LdnsPktPtr r = parse(out[0]);
    CHECK(ldns_pkt_get_rcode(r.get()) == LDNS_RCODE_NOTAUTH);
    const ldns_rr *t = ldns_pkt_tsig(r.get());
    REQUIRE(t);
    const ldns_rdf *err = ldns_rr_rdf(t, 5);
    CHECK(((ldns_rdf_data(err)[0] << 8) | ldns_rdf_data(err)[1]) == kTsigBadTime);
    auto k = parse_tsig_key(kKey);
    LdnsRdfPtr req_mac(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_INT16_DATA, mac.size(), mac.data()));
    CHECK(tsig_verify_response(r.get(), reinterpret_cast<const uint8_t *>(out[0].data()), out[0].size(), *k,
                               req_mac.get(), false, nullptr));
    CHECK(e.zone().serial() == 2026112503u);
    CHECK(target().find("b.provider.example.") != std::string::npos);
    CHECK(e.logged("applied before the restart"));
    std::string m;
    e.auth->append_metrics(m);
    CHECK_MESSAGE(m.find("\naisidd_authority_replays_refused_total 1\n") != std::string::npos, m);
    // Compaction trims nothing needed; after a second restart it is still known.
    e.auth->compact_now();
    e.restart();
    CHECK(ldns_pkt_get_rcode(parse(e.send(first)[0]).get()) == LDNS_RCODE_NOTAUTH);
    CHECK(target().find("b.provider.example.") != std::string::npos);
    // The same change signed anew is a new message and applies.
    CHECK(ldns_pkt_get_rcode(parse(e.send(update({}, migrate("a.provider.example."), kNow + 61))[0]).get()) ==
          LDNS_RCODE_NOERROR);
    CHECK(target().find("a.provider.example.") != std::string::npos);
}

TEST_CASE("authority: refused UPDATE, NOTIFY and XFR lines are rate limited - the rest summed up in one line") {
    Env e;
    auto refused_lines = [&] {
        size_t n = 0;
        for (auto &l : e.logs) n += l.find("refused") != std::string::npos || l.find("ignored") != std::string::npos;
        return n;
    };
    for (int i = 0; i < 500; ++i) {
        std::string w = update({}, {rr("x._method.ai.example. 300 IN TXT \"code=9\"")}, kNow);
        w[w.size() - 12] ^= 1;  // BADSIG
        auto out = e.send(w);
        REQUIRE(out.size() == 1);
        CHECK(ldns_pkt_get_rcode(parse(out[0]).get()) == LDNS_RCODE_NOTAUTH);
    }
    CHECK(refused_lines() == 10);
    CHECK(e.auth->refusals() == 500);
    CHECK_FALSE(e.logged("not logged"));
    e.clock += 11;
    std::string w = update({}, {rr("x._method.ai.example. 300 IN TXT \"code=9\"")}, e.clock);
    w[w.size() - 12] ^= 1;
    e.send(w);
    CHECK(e.logged("490 more refused UPDATE/NOTIFY/XFR lines not logged in 10 s"));
    CHECK(refused_lines() == 12);  // the summary and the new window's first line
    std::string m;
    e.auth->append_metrics(m);
    CHECK_MESSAGE(m.find("\naisidd_authority_refused_total 501\n") != std::string::npos, m);
    CHECK(e.zone().serial() == 2026112501u);
}

namespace {

// A primary on loopback that answers one transfer with the replies a real
// Authority gives, passed through `tamper` first.
struct FakePrimary {
    int fd = -1;
    int port = 0;
    std::thread th;
    FakePrimary(Env &e, std::function<void(std::vector<std::string> &)> tamper) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd, 4) == 0);
        socklen_t l = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &l);
        port = ntohs(a.sin_port);
        th = std::thread([this, &e, tamper] {
            int c = ::accept(fd, nullptr, nullptr);
            if (c < 0) return;
            uint8_t hdr[2];
            std::string q;
            if (::recv(c, hdr, 2, MSG_WAITALL) == 2) {
                q.resize((hdr[0] << 8) | hdr[1]);
                if (::recv(c, q.data(), q.size(), MSG_WAITALL) != static_cast<ssize_t>(q.size())) q.clear();
            }
            std::vector<std::string> msgs = q.empty() ? std::vector<std::string>{} : e.send(q);
            tamper(msgs);
            for (const std::string &m : msgs) {
                std::string framed{static_cast<char>(m.size() >> 8), static_cast<char>(m.size())};
                framed += m;
                (void)!::send(c, framed.data(), framed.size(), MSG_NOSIGNAL);
            }
            ::close(c);
        });
    }
    ~FakePrimary() {
        ::shutdown(fd, SHUT_RDWR);
        if (th.joinable()) th.join();
        ::close(fd);
    }
};

std::string unsigned_copy(const std::string &msg, const std::vector<Record> &extra_first) {
    LdnsPktPtr p = parse(msg);
    ldns_rr *tsig = ldns_pkt_tsig(p.get());
    ldns_pkt_set_tsig(p.get(), nullptr);  // ldns does not free the one it drops
    ldns_rr_free(tsig);
    if (!extra_first.empty()) {
        ldns_rr_list *l = ldns_rr_list_new();
        for (const Record &r : extra_first) ldns_rr_list_push_rr(l, record_to_ldns(r).release());
        ldns_rr_list *old = ldns_pkt_answer(p.get());
        for (size_t i = 0; i < ldns_rr_list_rr_count(old); ++i) ldns_rr_list_push_rr(l, ldns_rr_clone(ldns_rr_list_rr(old, i)));
        ldns_pkt_set_answer(p.get(), l);
        ldns_rr_list_deep_free(old);
        ldns_pkt_set_ancount(p.get(), static_cast<uint16_t>(ldns_rr_list_rr_count(l)));
    }
    return pkt_wire(p.get());
}

} // namespace

TEST_CASE("xfr client: a transfer whose last message is unsigned is refused (RFC 8945 §5.3.1) - nothing injected") {
    Env e;
    e.clock = ::time(nullptr);  // the client signs with the real clock
    std::vector<Record> many;
    for (int i = 0; i < 1500; ++i)
        many.push_back(rr("host" + std::to_string(i) + ".bulk.ai.example. 300 IN AAAA 2001:db8:1::" + std::to_string(i + 1)));
    REQUIRE(ldns_pkt_get_rcode(parse(e.send(update({}, many, e.clock))[0]).get()) == 0);
    const size_t zone_size = zone_records(e.zone()).size();
    auto k = parse_tsig_key(kKey);
    std::string origin;
    wire_from_text("ai.example.", origin);
    auto pull = [&](std::function<void(std::vector<std::string> &)> tamper, size_t *messages = nullptr) {
        FakePrimary fp(e, [&](std::vector<std::string> &m) {
            if (messages) *messages = m.size();
            tamper(m);
        });
        socklen_t l;
        sockaddr_storage ss{};
        auto *a = reinterpret_cast<sockaddr_in *>(&ss);
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons(static_cast<uint16_t>(fp.port));
        l = sizeof(sockaddr_in);
        return xfr_pull(ss, l, origin, std::nullopt, &*k, 3000);
    };
    // Untouched: every message signed, the whole zone.
    size_t n = 0;
    XfrResult ok = pull([](std::vector<std::string> &) {}, &n);
    REQUIRE(n >= 3);
    CHECK(ok.kind == XfrResult::Kind::full);
    CHECK(ok.full.size() == zone_size);
    // The last message unsigned, with a record the key never covered.
    Record injected = rr("www.ai.example. 300 IN A 6.6.6.6");
    XfrResult bad = pull([&](std::vector<std::string> &m) { m.back() = unsigned_copy(m.back(), {injected}); });
    CHECK(bad.kind == XfrResult::Kind::failed);
    CHECK(bad.refused);
    CHECK_MESSAGE(bad.why.find("last message is not signed") != std::string::npos, bad.why);
    for (const Record &r : bad.full) CHECK_FALSE(r.same_rr(injected));
    // The last one unsigned, even unchanged: refused the same.
    bad = pull([&](std::vector<std::string> &m) { m.back() = unsigned_copy(m.back(), {}); });
    CHECK(bad.kind == XfrResult::Kind::failed);
    CHECK(bad.refused);
    // A middle message stripped of its TSIG: the next MAC does not cover it as sent.
    bad = pull([&](std::vector<std::string> &m) { m[1] = unsigned_copy(m[1], {injected}); });
    CHECK(bad.kind == XfrResult::Kind::failed);
    CHECK(bad.refused);
    CHECK_MESSAGE(bad.why.find("does not verify") != std::string::npos, bad.why);
    // The first message unsigned: refused.
    bad = pull([&](std::vector<std::string> &m) { m[0] = unsigned_copy(m[0], {}); });
    CHECK(bad.kind == XfrResult::Kind::failed);
    CHECK(bad.refused);
}

TEST_CASE("authority: after an UPDATE deletes every record at a name the name answers NXDOMAIN - not NODATA") {
    Env e;
    auto ask = [&](const std::string &name) {
        std::string w;
        wire_from_text(name, w);
        LdnsPktPtr q(ldns_pkt_query_new(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, w.size(), w.data()), LDNS_RR_TYPE_A,
                                    LDNS_RR_CLASS_IN, 0));
        auto out = e.send(pkt_wire(q.get()), false);
        REQUIRE(out.size() == 1);
        return ldns_pkt_get_rcode(parse(out[0]).get());
    };
    CHECK(ask("gone.hosts.ai.example.") == LDNS_RCODE_NXDOMAIN);
    REQUIRE(ldns_pkt_get_rcode(parse(e.send(update({}, {rr("gone.hosts.ai.example. 300 IN A 192.0.2.9"),
                                                          rr("gone.hosts.ai.example. 300 IN TXT \"x\"")},
                                                     kNow))[0])
                                   .get()) == LDNS_RCODE_NOERROR);
    CHECK(ask("gone.hosts.ai.example.") == LDNS_RCODE_NOERROR);
    REQUIRE(ldns_pkt_get_rcode(parse(e.send(update({}, {lifecycle_test::bare("gone.hosts.ai.example.", kTypeANY,
                                                                               kClassANY)},
                                                     kNow + 1))[0])
                                   .get()) == LDNS_RCODE_NOERROR);
    CHECK(ask("gone.hosts.ai.example.") == LDNS_RCODE_NXDOMAIN);
    CHECK(ask("hosts.ai.example.") == LDNS_RCODE_NXDOMAIN);
    // and after a restart (journal replay) the same
    e.restart();
    CHECK(ask("gone.hosts.ai.example.") == LDNS_RCODE_NXDOMAIN);
}

TEST_CASE("authority: a batch of UPDATEs is applied in order, synced once, published once - each answered as alone") {
    Env e;
    int before = e.publishes;
    std::vector<std::string> wires;
    for (int i = 0; i < 20; ++i)
        wires.push_back(update({}, {rr("b" + std::to_string(i) + ".batch.ai.example. 300 IN AAAA 2001:db8:77::" +
                                       std::to_string(i + 1))},
                               kNow + i));
    // Its prerequisite holds only because of an UPDATE earlier in the same batch.
    wires.push_back(update({bare("b3.batch.ai.example.", kTypeAAAA, kClassANY)},
                           {rr("b3.batch.ai.example. 300 IN TXT \"after b3\"")}, kNow + 50));
    // One that fails its prerequisite, and the same signed message twice.
    wires.push_back(update({bare("nothing.batch.ai.example.", kTypeANY, kClassANY)},
                           {rr("x.batch.ai.example. 300 IN TXT \"no\"")}, kNow + 51));
    wires.push_back(wires[0]);
    auto out = e.send_batch(wires);
    REQUIRE(out.size() == wires.size());
    for (size_t i = 0; i < 21; ++i) {
        REQUIRE(out[i].size() == 1);
        CHECK_MESSAGE(ldns_pkt_get_rcode(parse(out[i][0]).get()) == LDNS_RCODE_NOERROR, i);
    }
    CHECK(ldns_pkt_get_rcode(parse(out[21][0]).get()) == LDNS_RCODE_NXDOMAIN);
    CHECK(out[22] == out[0]);  // the first reply again, byte for byte
    CHECK(e.publishes - before == 1);
    CHECK(e.zone().serial() == 2026112501u + 21);
    CHECK(has_record(e.zone(), "b3.batch.ai.example. 300 IN TXT \"after b3\""));
    // Each change is its own journal entry (IXFR and replay see them one by one).
    e.restart();
    CHECK(e.logged("replayed 21 journal entries"));
    CHECK(e.zone().serial() == 2026112501u + 21);
    CHECK(has_record(e.zone(), "b19.batch.ai.example. 300 IN AAAA 2001:db8:77::20"));
}

TEST_CASE("journal: group commit - staged entries are durable only after commit - a crash before it loses only them") {
    char tmpl[] = "/tmp/aisid-jnl-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    std::string path = std::string(tmpl) + "/z.jnl";
    auto diff = [](uint32_t from) {
        Diff d;
        d.from = from;
        d.to = from + 1;
        d.del.push_back(rr("ai.example. 300 IN SOA ns.ai.example. a.ai.example. " + std::to_string(from) + " 1 1 1 1"));
        d.add.push_back(rr("ai.example. 300 IN SOA ns.ai.example. a.ai.example. " + std::to_string(from + 1) + " 1 1 1 1"));
        d.add.push_back(rr("n" + std::to_string(from) + ".ai.example. 300 IN TXT \"x\""));
        return d;
    };
    uint64_t committed = 0;
    {
        Journal j;
        std::vector<Diff> got;
        std::string note, err;
        REQUIRE(j.open(path, got, note, err));
        for (uint32_t s = 1; s <= 3; ++s) REQUIRE(j.stage(diff(s), err));
        CHECK(j.staged() == 3);
        REQUIRE(j.commit(err));
        CHECK(j.staged() == 0);
        committed = j.size();
        for (uint32_t s = 4; s <= 6; ++s) REQUIRE(j.stage(diff(s), err));
        CHECK(j.size() == committed);  // not durable yet: not counted
        // A crash now: what was never synced may be lost, whole or torn.
    }
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(committed + 20)) == 0);
    {
        Journal j;
        std::vector<Diff> got;
        std::string note, err;
        REQUIRE(j.open(path, got, note, err));
        REQUIRE(got.size() == 3);  // every committed entry, nothing of the torn one
        CHECK(got[2].to == 4u);
        CHECK(note.find("torn") != std::string::npos);
        // discard() cuts back what is staged; the next commit syncs only what follows.
        REQUIRE(j.stage(diff(4), err));
        j.discard();
        REQUIRE(j.stage(diff(4), err));
        REQUIRE(j.stage(diff(5), err));
        REQUIRE(j.commit(err));
    }
    {
        Journal j;
        std::vector<Diff> got;
        std::string note, err;
        REQUIRE(j.open(path, got, note, err));
        REQUIRE(got.size() == 5);
        for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].from == i + 1);
        CHECK(note.empty());
    }
    std::filesystem::remove_all(tmpl);
}
