// UPDATE handling: any message must get an answer or none, never a
// crash. Two layers: the whole Authority::handle path (parse, TSIG, errors)
// and, past TSIG, the RFC 2136 logic on the message's sections — whose result
// must either be refused with nothing changed or be a zone that its own diff
// rebuilds (the journal's replay invariant).
#include "aisid/authority/authority.hpp"
#include "aisid/proto/records.hpp"
#include "aisid/proto/update.hpp"
#include "aisid/core/zone_builder.hpp"

#include "../support/test_zone.hpp"

#include <netinet/in.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

using namespace aisid;
using namespace aisid::resolver;
using namespace aisid::proto;

namespace {

struct World {
    ZonePtr zone;
    std::shared_ptr<const ZoneSet> set;
    std::unique_ptr<Authority> auth;
    std::string dir;
    ~World() {
        auth.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    World() {
        zone = *load_zone_text(aisid::test::kTestZone, "fuzz");
        auto s = std::make_shared<ZoneSet>();
        s->add(zone);
        set = s;
        char tmpl[] = "/tmp/aisid-fuzz-update-XXXXXX";
        if (!mkdtemp(tmpl)) __builtin_trap();
        dir = tmpl;
        AuthorityOptions o;
        o.keys = {"k1:c2VjcmV0LWZvci1haXNpZC1saWZlY3ljbGUtdGVzdHMhIQ=="};
        o.update_keys = {"k1"};
        o.state_dir = dir;
        o.start_threads = false;
        o.log = [](const std::string &) {};
        auth = std::make_unique<Authority>(
            o, [this] { return set; }, [](ZonePtr) {});
        (void)auth->start();
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static World w;
    if (size > 65535) return 0;
    sockaddr_storage peer{};
    auto *s4 = reinterpret_cast<sockaddr_in *>(&peer);
    s4->sin_family = AF_INET;
    s4->sin_addr.s_addr = htonl(0x7f000001);
    for (bool tcp : {false, true}) {
        std::vector<std::string> replies;
        w.auth->handle(data, size, peer, tcp, replies);
        for (const std::string &r : replies)
            if (r.size() < 12) __builtin_trap();
    }
    // Past TSIG: the UPDATE logic on the sections.
    ldns_pkt *raw = nullptr;
    if (ldns_wire2pkt(&raw, data, size) != LDNS_STATUS_OK) return 0;
    LdnsPktPtr p(raw);
    std::vector<Record> prereq = records_of(ldns_pkt_answer(p.get()));
    std::vector<Record> updates = records_of(ldns_pkt_authority(p.get()));
    UpdateResult r = apply_update(*w.zone, prereq, updates);
    if (r.rcode != kRcodeNoError && r.zone) __builtin_trap();
    if (r.changed) {
        if (!r.zone || r.diff.from != w.zone->serial() || r.diff.to != r.zone->serial()) __builtin_trap();
        ZonePtr again;
        std::string why;
        if (!apply_diff(*w.zone, r.diff, again, why)) __builtin_trap();
        if (zone_to_text(*again) != zone_to_text(*r.zone)) __builtin_trap();
        // What compaction writes must read back as the same zone,
        // whatever bytes the accepted names and rdata hold.
        auto back = load_zone_text(zone_to_text(*r.zone), "fuzz");
        if (!back || zone_to_text(**back) != zone_to_text(*r.zone)) __builtin_trap();
    }
    return 0;
}
