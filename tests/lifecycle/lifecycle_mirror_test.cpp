// Zones from HTTPS mirrors, verified before they are served: a zone signed
// at test time with ldns-signzone (DNSSEC and ZONEMD SHA-384), two mirrors
// (tests/lifecycle/zone_mirror_server.py behind TLS, a CA made with openssl
// here), aisidd fetching with --zone-url, and every way a copy must be
// refused: a tampered byte, a stale serial, the wrong zone, an expired
// signature, a key the anchor does not name, a missing ZONEMD; a hanging
// mirror; a migrate on the primary seen within one refresh; 304s.
#include "lifecycle_fixture.hpp"
#include "net.hpp"
#include "skip.hpp"
#include "tls.hpp"

#include <sys/socket.h>
#include <netinet/in.h>
#include <poll.h>

#include <filesystem>
#include <fstream>

using namespace lifecycle_test;

namespace {

const std::string kServer = std::string(AISID_SOURCE_DIR) + "/tests/lifecycle/zone_mirror_server.py";

void need_tools() {
    for (const char *p : {"ldns-signzone", "ldns-keygen", "openssl", "python3"})
        skip_unless_program(p);
}

// The example zone with a short SOA refresh (1 s) so refreshes happen in test time.
std::string zone_text(uint32_t serial, const std::string &fallback = "yolo-legacy.provider.example.",
                      int port = 8443, const std::string &origin = "ai.example.") {
    return "$ORIGIN " + origin + "\n$TTL 300\n@ SOA ns admin " + std::to_string(serial) +
           " 1 1 86400 60\n@ NS ns\nns AAAA 2001:db8:53::1\n"
           "_aisid TXT \"v=aisid1\" \"prefix=2001:db8:abcd:12::/64\"\n"
           "image._object TXT \"code=1\"\ndetection._function TXT \"code=2\"\nyolo._method TXT \"code=1\"\n"
           "yolo.detection.image AAAA 2001:db8:abcd:12:1:2:1:0\n"
           "yolo.detection.image SVCB 1 " + fallback + " port=" + std::to_string(port) + "\n";
}

size_t count(const std::string &hay, const std::string &needle) {
    size_t n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}

struct Mirror {
    std::string dir;
    int port = 0;
    std::optional<Process> proc;
    std::string url() const { return "https://127.0.0.1:" + std::to_string(port) + "/ai.example.zone"; }
    std::string requests() const { return read_file(dir + "/requests.log"); }
    void hang(bool on) { write_file(dir + "/.mode", on ? "hang" : "normal"); }
    void serve(const std::string &text) {  // atomically, as a mirror's sync would
        write_file(dir + "/ai.example.zone.tmp", text);
        REQUIRE(::rename((dir + "/ai.example.zone.tmp").c_str(), (dir + "/ai.example.zone").c_str()) == 0);
    }
};

// Keys, a CA and two mirrors; everything in one temporary directory.
struct World {
    TempDir d;
    Pki pki{d.path};  // the mirrors' certificate, for 127.0.0.1
    std::string key_base, ds, key_tag;
    Mirror m[2];

    World() {
        need_tools();
        key_base = keygen("ai.example");
        ds = key_base + ".ds";
        // "Kai.example.+013+44703": the key tag is the last field.
        key_tag = key_base.substr(key_base.rfind('+') + 1);
        while (key_tag.size() > 1 && key_tag[0] == '0') key_tag.erase(0, 1);
        for (int i = 0; i < 2; ++i) {
            m[i].dir = d.file("mirror" + std::to_string(i + 1));
            std::filesystem::create_directories(m[i].dir);
            m[i].port = free_port();
        }
    }
    std::string keygen(const std::string &zone) {
        CmdResult r = run({"sh", "-c", "cd '" + d.path + "' && ldns-keygen -a ECDSAP256SHA256 -k " + zone});
        REQUIRE_MESSAGE(r.code == 0, r.err);
        std::string base = r.out;
        while (!base.empty() && (base.back() == '\n' || base.back() == '\r')) base.pop_back();
        return d.file(base);
    }
    // ldns-signzone: ZONEMD SIMPLE SHA-384 unless told not to; validity
    // from `inception` to `expiration` (YYYYMMDDhhmmss), default now..+30 days.
    std::string sign(const std::string &text, bool zonemd = true, const std::string &inception = "",
                     const std::string &expiration = "", const std::string &key = "") {
        static int n = 0;
        std::string in = d.file("unsigned-" + std::to_string(++n) + ".zone"), out = in + ".signed";
        write_file(in, text);
        std::vector<std::string> argv{"ldns-signzone", "-f", out};
        if (zonemd) argv.insert(argv.end(), {"-z", "1:1"});
        if (!inception.empty()) argv.insert(argv.end(), {"-i", inception});
        if (!expiration.empty()) argv.insert(argv.end(), {"-e", expiration});
        argv.push_back(in);
        argv.push_back(key.empty() ? key_base : key);
        CmdResult r = run(argv);
        REQUIRE_MESSAGE(r.code == 0, r.err);
        return read_file(out);
    }
    void start_mirrors() {  // both at once: Python takes a while to start
        for (auto &mi : m)
            mi.proc.emplace(std::vector<std::string>{"python3", kServer, "--port", std::to_string(mi.port), "--cert",
                                                     pki.cert, "--key", pki.key, "--dir", mi.dir},
                            d.path, "mirror-" + std::to_string(mi.port));
        for (auto &mi : m) REQUIRE_MESSAGE(wait_listening(*mi.proc, {{mi.port, true}}, 15000), mi.proc->err());
    }
    void serve(const std::string &text) {
        for (auto &mi : m) mi.serve(text);
    }
    std::vector<std::string> aisidd_args(int fetch_timeout = 2) {
        return {"--zone-url",     "ai.example=" + m[0].url(),
                "--zone-url",     "ai.example=" + m[1].url(),
                "--trust-anchor", "ai.example=" + ds,
                "--require-zonemd", "yes",
                "--ca-file",      pki.ca,
                "--zone-fetch-timeout", std::to_string(fetch_timeout)};
    }
};

bool answers_aaaa(int port) {
    return query(port, "yolo.detection.image.ai.example.", aisid::kTypeAAAA, 300).has(aisid::kTypeAAAA);
}

std::string lookup(const std::vector<std::string> &args) {
    std::vector<std::string> argv{aisid_lookup_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    CmdResult r = run(argv);
    REQUIRE_MESSAGE(r.code == 0, r.err);
    return r.out;
}

} // namespace

TEST_CASE("mirror: a signed zone fetched over HTTPS is verified and answered - 304 reloads nothing - a migrate is "
          "seen within one refresh - aisid-lookup shows how it verified") {
    World w;
    const uint32_t serial = 2026120501;
    w.serve(w.sign(zone_text(serial)));
    w.start_mirrors();
    Aisidd a(authority(w.d, "host").args(w.aisidd_args()));
    REQUIRE_MESSAGE(wait_until([&] { return answers_aaaa(a.port); }, 5000) >= 0, a.log());
    CHECK(serial_of(a.port) == serial);

    // The state file for the SDK and NSS (written just after the zone is
    // served): verified data, with how it verified first.
    const std::string state = a.state_dir + "/ai.example.zone";
    REQUIRE(wait_until([&] { return read_file(state).rfind("; aisid-verified: ", 0) == 0; }, 2000) >= 0);
    CHECK(wait_until([&] { return a.log().find("ZONEMD verified, signed by key " + w.key_tag) != std::string::npos; },
                     2000) >= 0);
    std::string head = read_file(state).substr(0, read_file(state).find('\n'));
    CHECK(head.rfind("; aisid-verified: ", 0) == 0);
    CHECK(head.find("serial=" + std::to_string(serial)) != std::string::npos);
    CHECK(head.find("key-tag=" + w.key_tag) != std::string::npos);
    std::string out = lookup({"--zone", state, "yolo.detection.image.ai.example"});
    CHECK(out.find("verified:    yes, ZONEMD SHA-384, DNSSEC key tag " + w.key_tag + " (anchor " + w.ds + ")") !=
          std::string::npos);
    std::string json = lookup({"--json", "--zone", state, "p7.yolo.detection.image.ai.example"});
    CHECK(json.find("\"key_tag\":" + w.key_tag) != std::string::npos);
    CHECK(json.find("\"zonemd\":\"sha384\"") != std::string::npos);
    // A zone file aisidd did not verify says so.
    std::string plain = w.d.file("plain.zone");
    write_file(plain, zone_text(serial));
    CHECK(lookup({"--zone", plain, "yolo.detection.image.ai.example"}).find("verified:    no") != std::string::npos);

    // The first fetch came compressed; the refreshes after it are 304s, and nothing is loaded again.
    CHECK(w.m[0].requests().find(" 200 gzip") != std::string::npos);
    REQUIRE(wait_until([&] { return count(w.m[0].requests(), " 304 ") >= 2; }, 4000) >= 0);
    CHECK(count(a.log(), "ZONEMD verified") == 1);

    // A SIGHUP reload re-reads the zone files; the mirrored zone stays served throughout.
    a.proc.signal(SIGHUP);
    for (int i = 0; i < 20; ++i) {
        CHECK(answers_aaaa(a.port));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(wait_until([&] { return a.log().find("reloaded:") != std::string::npos; }, 2000) >= 0);
    CHECK(answers_aaaa(a.port));

    // Migrate on the primary: re-signed with the new fallback, published to the mirrors.
    w.serve(w.sign(zone_text(serial + 1, "new.provider.example.", 443)));
    double ms = wait_until(
        [&] {
            return query(a.port, "yolo.detection.image.ai.example.", aisid::kTypeSVCB, 300)
                .has(aisid::kTypeSVCB, "new.provider.example.");
        },
        5000);
    REQUIRE_MESSAGE(ms >= 0, a.log());
    CHECK(ms <= 2500);  // one refresh interval (1 s) and a fetch
    CHECK(serial_of(a.port) == serial + 1);
    REQUIRE(wait_until([&] { return read_file(state).find("serial=" + std::to_string(serial + 1)) != std::string::npos; },
                       2000) >= 0);
    out = lookup({"--zone", state, "yolo.detection.image.ai.example"});
    CHECK(out.find("new.provider.example.:443") != std::string::npos);
    CHECK(out.find("serial " + std::to_string(serial + 1)) != std::string::npos);
}

TEST_CASE("mirror: refused copies keep the old data and say why in the log and the metrics") {
    World w;
    const uint32_t serial = 2026120510;
    const std::string good = w.sign(zone_text(serial));
    w.serve(good);
    w.start_mirrors();
    Aisidd a(authority(w.d, "host").args(w.aisidd_args()).metrics());
    REQUIRE_MESSAGE(wait_until([&] { return answers_aaaa(a.port); }, 5000) >= 0, a.log());
    const std::string state = a.state_dir + "/ai.example.zone";
    REQUIRE(wait_until([&] { return read_file(state).rfind("; aisid-verified: ", 0) == 0; }, 2000) >= 0);
    const std::string state_before = read_file(state);

    // A tampered byte: the next serial, signed, then the SVCB port changed in the mirror's copy.
    std::string tampered = w.sign(zone_text(serial + 1));
    size_t at = tampered.find("port=8443");
    REQUIRE(at != std::string::npos);
    tampered[at + 8] = '4';
    std::string other_key = w.keygen("ai.example");
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"zonemd_mismatch", tampered},
        {"serial_rollback", w.sign(zone_text(serial - 1))},
        {"wrong_zone", zone_text(serial + 1, "x.provider.example.", 443, "other.example.")},
        {"signature_expired", w.sign(zone_text(serial + 1), true, "20200101000000", "20200201000000")},
        {"no_trusted_key", w.sign(zone_text(serial + 1), true, "", "", other_key)},
        {"no_zonemd", w.sign(zone_text(serial + 1), false)},
    };
    for (const auto &item : bad) {
        const std::string &reason = item.first;
        CAPTURE(reason);
        w.serve(item.second);
        REQUIRE_MESSAGE(wait_until([&] { return a.log().find("refused (" + reason + ")") != std::string::npos; },
                                   5000) >= 0,
                        a.log());
        CHECK(serial_of(a.port) == serial);  // the old data stays
        CHECK(answers_aaaa(a.port));
        std::string m = a.metrics();
        CHECK(metric(m, "aisidd_zone_verify_failures_total{zone=\"ai.example.\",reason=\"" + reason + "\"}") >= 1);
        CHECK(metric(m, "aisidd_zone_mirror_serial{zone=\"ai.example.\"}") == serial);
    }
    CHECK(read_file(state) == state_before);  // the SDK's copy was never touched
    CHECK(query(a.port, "yolo.detection.image.ai.example.", aisid::kTypeSVCB, 300).has(aisid::kTypeSVCB, "8443"));

    // A good copy again is taken.
    w.serve(w.sign(zone_text(serial + 2)));
    CHECK(wait_until([&] { return serial_of(a.port) == serial + 2; }, 4000) >= 0);

    // Signed again with the same serial: taken when its signatures last
    // longer (so the saved copy does not expire), not when they end sooner.
    auto stamp = [](long days) {
        time_t t = ::time(nullptr) + days * 86400;
        char b[32];
        struct tm tm;
        gmtime_r(&t, &tm);
        std::strftime(b, sizeof b, "%Y%m%d%H%M%S", &tm);
        return std::string(b);
    };
    const std::string line = "serial " + std::to_string(serial + 2) + " from";
    REQUIRE(wait_until([&] { return count(a.log(), line) == 1; }, 2000) >= 0);
    auto fetched = [&] { return count(w.m[0].requests() + w.m[1].requests(), " 200 "); };
    const size_t before = fetched();
    w.serve(w.sign(zone_text(serial + 2), true, "", stamp(10)));
    REQUIRE(wait_until([&] { return fetched() > before; }, 4000) >= 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(count(a.log(), line) == 1);
    w.serve(w.sign(zone_text(serial + 2), true, "", stamp(60)));
    CHECK(wait_until([&] { return count(a.log(), line) == 2; }, 4000) >= 0);
    CHECK(serial_of(a.port) == serial + 2);
}

TEST_CASE("mirror: the first mirror hangs - the second serves within the fetch timeout") {
    World w;
    w.serve(w.sign(zone_text(2026120520)));
    w.m[0].hang(true);
    w.start_mirrors();
    Aisidd a(authority(w.d, "host").args(w.aisidd_args(2)).metrics(), deferred);
    auto t0 = std::chrono::steady_clock::now();
    a.start();
    REQUIRE_MESSAGE(wait_until([&] { return answers_aaaa(a.port); }, 8000) >= 0, a.log());
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(s < 2 + 2.5);  // the 2 s deadline on the first mirror, then the second's answer
    CHECK(a.log().find("fetch from " + w.m[0].url() + " failed") != std::string::npos);
    std::string m = a.metrics();
    const std::string l0 = "aisidd_zone_fetches_total{zone=\"ai.example.\",mirror=\"" + w.m[0].url() + "\",result=\"",
                      l1 = "aisidd_zone_fetches_total{zone=\"ai.example.\",mirror=\"" + w.m[1].url() + "\",result=\"";
    CHECK(metric(m, l0 + "failed\"}") == 1);
    CHECK(metric(m, l1 + "ok\"}") == 1);
    // The mirror that answered is asked first from now on: refreshes do not wait on the hanging one.
    REQUIRE(wait_until([&] { return count(w.m[1].requests(), " 304 ") >= 1; }, 4000) >= 0);
    CHECK(metric(a.metrics(), l0 + "failed\"}") == 1);
}

TEST_CASE("mirror: --require-zonemd and the trust anchor hold for zone files and transfers too") {
    World w;
    const uint32_t serial = 2026120530;
    std::string signed_file = w.d.file("signed.zone"), plain_file = w.d.file("plain.zone");
    write_file(signed_file, w.sign(zone_text(serial)));
    write_file(plain_file, zone_text(serial));

    // A file without ZONEMD: aisidd refuses to start, and says why.
    CmdResult r = run({aisidd_path(), "--listen", "127.0.0.1:" + std::to_string(free_port()), "--upstream",
                       "127.0.0.1:9", "--zone", plain_file, "--require-zonemd", "yes"},
                      10000);
    CHECK(r.code == 2);
    CHECK(r.err.find("refused (no_zonemd)") != std::string::npos);

    // A signed primary; a secondary that verifies what it transfers.
    Aisidd primary(authority(w.d, "primary")
                       .args({"--zone", signed_file, "--key", key_arg(), "--update-key", "k1", "--require-zonemd",
                              "yes", "--trust-anchor", "ai.example=" + w.ds}));
    REQUIRE(answers_aaaa(primary.port));
    // aisidd does not sign: an UPDATE would leave the zone unverifiable, so it is refused.
    CHECK(send_update(primary.port, "ai.example.", {}, {rr("ns2.ai.example. 300 IN AAAA 2001:db8:53::2")}).rcode ==
          kRcodeRefused);
    CHECK(query(primary.port, "ns2.ai.example.", aisid::kTypeAAAA).rcode == kRcodeNxDomain);
    Aisidd secondary(authority(w.d, "secondary")
                         .args(secondary_args(primary.port))
                         .args({"--require-zonemd", "yes", "--trust-anchor", "ai.example=" + w.ds}));
    REQUIRE_MESSAGE(wait_until([&] { return answers_aaaa(secondary.port); }, 5000) >= 0, secondary.log());
    const std::string state = secondary.state_dir + "/ai.example.zone";
    REQUIRE(wait_until([&] { return read_file(state).rfind("; aisid-verified: ", 0) == 0; }, 3000) >= 0);
    CHECK(read_file(state).find("source=xfr:127.0.0.1") != std::string::npos);
    CHECK(lookup({"--zone", state, "yolo.detection.image.ai.example"}).find("verified:    yes") != std::string::npos);

    // An unsigned primary: the transfer is refused, nothing is served or saved.
    Aisidd plain(authority(w.d, "plain-primary").args({"--zone", plain_file, "--key", key_arg()}));
    Aisidd strict(authority(w.d, "strict").args(secondary_args(plain.port)).args({"--require-zonemd", "yes"}));
    REQUIRE_MESSAGE(wait_until([&] { return strict.log().find("refused the AXFR") != std::string::npos; }, 5000) >= 0,
                    strict.log());
    CHECK(strict.log().find("(no_zonemd)") != std::string::npos);
    CHECK(!answers_aaaa(strict.port));
    CHECK(!std::filesystem::exists(strict.state_dir + "/ai.example.zone"));
}
