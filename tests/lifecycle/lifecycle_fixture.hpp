// Helpers for the lifecycle integration tests: aisidd and BIND 9 named as
// primaries and secondaries (support/aisidd.hpp, named.hpp) set up the same
// way, a DNS client and a signed-UPDATE sender built on the authority
// library, aisid-admin and nsupdate runs.
#pragma once

#include "aisidd.hpp"
#include "lifecycle_support.hpp"
#include "named.hpp"
#include "paths.hpp"
#include "proc.hpp"
#include "test_zone.hpp"
#include "aisid/proto/records.hpp"
#include "aisid/proto/tsig.hpp"
#include "aisid/proto/update.hpp"
#include "aisid/proto/xfr.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace lifecycle_test {

using namespace aisid;
using namespace aisid::proto;
using namespace aisid::test;  // tests/support

inline const char *kSecret = "c2VjcmV0LWZvci1haXNpZC1saWZlY3ljbGUtdGVzdHMhIQ==";
inline const char *kOtherSecret = "b3RoZXItc2VjcmV0LW5vdC10aGUtcmlnaHQtb25lLi4uLg==";
inline std::string key_arg() { return std::string("k1:") + kSecret; }

inline sockaddr_storage loopback(int port, socklen_t &len) {
    auto a = aisid::parse_sockaddr("127.0.0.1:" + std::to_string(port), aisid::AddressRules{});
    REQUIRE(a);
    len = a->len;
    return a->ss;
}

struct Answer {
    int rcode = -1;  // -1: no answer
    bool aa = false;
    std::vector<Record> answer, authority;
    bool has(uint16_t type, const std::string &rdata_text_contains = "") const {
        for (const Record &r : answer)
            if (r.type == type &&
                (rdata_text_contains.empty() || record_to_text(r).find(rdata_text_contains) != std::string::npos))
                return true;
        return false;
    }
};

inline Answer query(int port, const std::string &name, uint16_t type, int timeout_ms = 1000) {
    std::string w;
    REQUIRE(wire_from_text(name, w));
    LdnsRdfPtr owner(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, w.size(), w.data()));
    LdnsPktPtr q(ldns_pkt_query_new(owner.release(), static_cast<ldns_rr_type>(type), LDNS_RR_CLASS_IN, 0));
    ldns_pkt_set_random_id(q.get());
    uint8_t *buf = nullptr;
    size_t n = 0;
    ldns_pkt2wire(&buf, q.get(), &n);
    std::string req(reinterpret_cast<char *>(buf), n), resp, err;
    free(buf);
    socklen_t l;
    sockaddr_storage ss = loopback(port, l);
    Answer a;
    if (!udp_exchange(ss, l, req, resp, timeout_ms, err)) return a;
    ldns_pkt *raw = nullptr;
    if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t *>(resp.data()), resp.size()) != LDNS_STATUS_OK) return a;
    LdnsPktPtr p(raw);
    a.rcode = ldns_pkt_get_rcode(p.get());
    a.aa = ldns_pkt_aa(p.get());
    a.answer = records_of(ldns_pkt_answer(p.get()));
    a.authority = records_of(ldns_pkt_authority(p.get()));
    return a;
}

inline uint32_t serial_of(int port, const std::string &zone = "ai.example.") {
    Answer a = query(port, zone, aisid::kTypeSOA);
    for (const Record &r : a.answer)
        if (r.type == aisid::kTypeSOA) return soa_serial(r.rdata);
    return 0;
}

/// Polls `f` every 5 ms until it holds or `ms` pass; the time it took (ms), or -1.
inline double wait_until(const std::function<bool()> &f, int ms) {
    auto t0 = std::chrono::steady_clock::now();
    for (;;) {
        if (f()) return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(ms)) return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

struct UpdateReply {
    int rcode = -1;
    int tsig_error = -1;  // -1: no TSIG in the reply
    bool verified = false;
};

enum class Signing { good, none, wrong_secret, unknown_key, skewed };

/// Sends an UPDATE message as given (bytes), over TCP; `mac` (the request's
/// MAC, when signed by us) to verify the reply. `reply_out` gets the reply's bytes.
inline UpdateReply exchange_update(int port, const std::string &req, const ldns_rdf *mac,
                                   std::string *reply_out = nullptr) {
    auto key = parse_tsig_key(key_arg());
    REQUIRE(key);
    socklen_t l;
    sockaddr_storage ss = loopback(port, l);
    std::vector<std::string> rs;
    std::string err;
    UpdateReply r;
    if (!tcp_exchange(ss, l, req, rs, 3000, err)) return r;
    if (reply_out) *reply_out = rs[0];
    ldns_pkt *raw = nullptr;
    if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t *>(rs[0].data()), rs[0].size()) != LDNS_STATUS_OK) return r;
    LdnsPktPtr p(raw);
    r.rcode = ldns_pkt_get_rcode(p.get());
    if (const ldns_rr *t = ldns_pkt_tsig(p.get()); t && ldns_rr_rd_count(t) >= 6) {
        const ldns_rdf *e = ldns_rr_rdf(t, 5);
        r.tsig_error = (ldns_rdf_data(e)[0] << 8) | ldns_rdf_data(e)[1];
    }
    if (mac) r.verified = tsig_verify_response(p.get(), reinterpret_cast<const uint8_t *>(rs[0].data()), rs[0].size(),
                                               *key, mac, false, nullptr);
    return r;
}

/// Sends one UPDATE over TCP, signed as asked; `sent` gets the request's bytes
/// and `mac` its MAC (to send it again).
inline UpdateReply send_update(int port, const std::string &zone, const std::vector<Record> &prereq,
                               const std::vector<Record> &updates, Signing how = Signing::good,
                               long clock_skew = 0, std::string *sent = nullptr, LdnsRdfPtr *mac_out = nullptr,
                               std::string *reply_out = nullptr) {
    std::string zw;
    REQUIRE(wire_from_text(zone, zw));
    LdnsRdfPtr z(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, zw.size(), zw.data()));
    LdnsRrListPtr pr = ldns_list_of(prereq), up = ldns_list_of(updates);
    LdnsPktPtr u(ldns_update_pkt_new(ldns_rdf_clone(z.get()), LDNS_RR_CLASS_IN, pr.get(), up.get(), nullptr));
    ldns_pkt_set_random_id(u.get());
    auto key = parse_tsig_key(key_arg());
    REQUIRE(key);
    std::string req;
    LdnsRdfPtr mac;
    if (how == Signing::good) {
        REQUIRE(tsig_sign_pkt(u.get(), *key, nullptr, false, req, &mac));
    } else {
        uint8_t *buf = nullptr;
        size_t n = 0;
        ldns_pkt2wire(&buf, u.get(), &n);
        req.assign(reinterpret_cast<char *>(buf), n);
        free(buf);
        if (how != Signing::none) {
            TsigKey k = *key;
            if (how == Signing::wrong_secret) k = *parse_tsig_key(std::string("k1:") + kOtherSecret);
            if (how == Signing::unknown_key) k = *parse_tsig_key(std::string("nobody:") + kSecret);
            tsig_append(req, &k, {}, static_cast<uint64_t>(::time(nullptr) + clock_skew), kTsigFudge, 0, {}, {});
        }
    }
    if (sent) *sent = req;
    UpdateReply r = exchange_update(port, req, mac.get(), reply_out);
    if (mac_out) *mac_out = std::move(mac);
    return r;
}

/// aisidd as these tests run it: no upstream to speak of, its state in
/// DIR/NAME-state, one worker; the test adds its zones, keys and peers.
inline AisiddOptions authority(const TempDir &d, const std::string &name) {
    return AisiddOptions().in(d, name).upstream("127.0.0.1:9").state_dir().workers(1);
}

/// The arguments that make aisidd a secondary of ai.example. transferred
/// (with key k1) from 127.0.0.1:PORT.
inline std::vector<std::string> secondary_args(int primary_port) {
    return {"--key", key_arg(), "--secondary", "ai.example=127.0.0.1:" + std::to_string(primary_port)};
}

/// BIND 9 named as primary of the test zone (ai.example.db): UPDATE and
/// transfers with key k1, NOTIFY to the secondary on 127.0.0.1:notify_port.
inline NamedOptions named_primary(const TempDir &d, int notify_port) {
    return NamedOptions()
        .in(d, "named-primary")
        .key("k1", kSecret)
        .file("ai.example.db", kTestZone)
        .conf("zone \"ai.example\" { type primary; file \"ai.example.db\"; allow-update { key k1; };\n"
              "  allow-transfer { key k1; }; also-notify { 127.0.0.1 port " + std::to_string(notify_port) + "; }; };\n");
}

/// BIND 9 named as secondary of ai.example. from the primary on
/// 127.0.0.1:primary_port (transfers with key k1, NOTIFY from it).
inline NamedOptions named_secondary(const TempDir &d, int primary_port) {
    return NamedOptions()
        .in(d, "named-secondary")
        .key("k1", kSecret)
        .conf("zone \"ai.example\" { type secondary; file \"ai.example.sec\";\n"
              "  primaries { 127.0.0.1 port " + std::to_string(primary_port) + " key k1; };\n"
              "  allow-notify { 127.0.0.1; }; };\n");
}

inline CmdResult admin(int port, std::vector<std::string> args, const std::string &key = key_arg()) {
    std::vector<std::string> argv{aisid_admin_path(), "--server", "127.0.0.1:" + std::to_string(port), "--key", key};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 20000);
}

inline CmdResult nsupdate(int port, const std::string &script) {
    std::string path = "/tmp/aisid-nsupdate-" + std::to_string(::getpid()) + "-" + std::to_string(port) + ".txt";
    write_file(path, "server 127.0.0.1 " + std::to_string(port) + "\nzone ai.example.\n" + script + "send\n");
    CmdResult r = run({"nsupdate", "-y", std::string("hmac-sha256:k1:") + kSecret, path}, 20000);
    ::unlink(path.c_str());
    return r;
}

} // namespace lifecycle_test
