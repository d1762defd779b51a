#include "aisid/authority/authority.hpp"

#include "aisid/core/dname.hpp"
#include "aisid/resolver/query_core.hpp"
#include "aisid/proto/update.hpp"
#include "aisid/proto/xfr.hpp"
#include "aisid/authority/xfr_out.hpp"
#include "aisid/core/zone_builder.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

namespace aisid::resolver {

using namespace proto;

namespace {

// A zone file aisidd wrote itself (a compacted copy, a secondary's copy) is
// read back whatever its size: the byte limit guards against files an
// operator names, and a 1M-service zone is over its 64 MiB default.
ZoneLoadLimits own_file_limits(const struct stat &st) {
    ZoneLoadLimits lim;
    lim.max_bytes = std::max<uint64_t>(lim.max_bytes, static_cast<uint64_t>(st.st_size));
    lim.max_includes = 0;  // we never write $INCLUDE
    return lim;
}

std::string raw_mac(const ldns_rdf *mac) {
    if (!mac || ldns_rdf_size(mac) < 2) return {};
    return std::string(reinterpret_cast<const char *>(ldns_rdf_data(mac)) + 2, ldns_rdf_size(mac) - 2);
}

std::string to_wire(ldns_pkt *p) {
    uint8_t *buf = nullptr;
    size_t n = 0;
    if (ldns_pkt2wire(&buf, p, &n) != LDNS_STATUS_OK) return {};
    std::string s(reinterpret_cast<const char *>(buf), n);
    free(buf);
    return s;
}

// A bare error reply when the message cannot be parsed: the header echoed.
std::string header_reply(const uint8_t *msg, size_t len, uint8_t rcode) {
    if (len < 12) return {};
    std::string r(reinterpret_cast<const char *>(msg), 12);
    r[2] = static_cast<char>((r[2] & 0x78) | 0x80);  // QR, keep the opcode
    r[3] = static_cast<char>(rcode & 0x0f);
    for (int i = 4; i < 12; ++i) r[i] = 0;
    return r;
}

std::string soa_text(uint32_t serial) { return "serial " + std::to_string(serial); }

bool mkdirs(const std::string &d, std::string &err) {
    std::error_code ec;
    std::filesystem::create_directories(d, ec);
    if (ec) {
        err = "cannot create " + d + ": " + ec.message();
        return false;
    }
    return true;
}

} // namespace

Authority::Authority(AuthorityOptions opt, CurrentFn current, PublishFn publish)
    : opt_(std::move(opt)), current_(std::move(current)), publish_(std::move(publish)) {}

Authority::~Authority() { stop(); }

void Authority::log(const std::string &s) const {
    if (opt_.log) opt_.log(s);
    else std::fprintf(stderr, "aisidd: %s\n", s.c_str());
}

time_t Authority::now() const { return opt_.now ? opt_.now() : ::time(nullptr); }

void Authority::append_metrics(std::string &out) const {
    out += "# HELP aisidd_authority_refused_total UPDATE, NOTIFY and transfer requests refused (each counted, "
           "logged or not).\n# TYPE aisidd_authority_refused_total counter\naisidd_authority_refused_total " +
           std::to_string(refusals_.load()) + "\n";
    out += "# HELP aisidd_authority_replays_refused_total Signed UPDATEs refused because the journal shows them "
           "applied before a restart.\n# TYPE aisidd_authority_replays_refused_total counter\n"
           "aisidd_authority_replays_refused_total " + std::to_string(replays_refused_.load()) + "\n";
}

// Refused UPDATE, NOTIFY and XFR are the lines anyone who can reach
// the port can make us write. At most opt_.refusal_log_lines of them per 10 s
// (as the rate limiter's own log line, worker.cpp); the rest are counted and
// summed up in one line when the next window opens.
void Authority::log_refusal(const std::string &s) {
    const int64_t t = static_cast<int64_t>(now());
    std::string summary;
    bool print = false;
    {
        std::lock_guard lk(refusal_mu_);
        ++refusals_;
        if (t >= refusal_window_ + 10 || t < refusal_window_) {
            if (refusal_suppressed_)
                summary = std::to_string(refusal_suppressed_) +
                          " more refused UPDATE/NOTIFY/XFR lines not logged in 10 s; the last: " + refusal_last_;
            refusal_window_ = t;
            refusal_lines_ = 0;
            refusal_suppressed_ = 0;
        }
        if (refusal_lines_ < opt_.refusal_log_lines) {
            ++refusal_lines_;
            print = true;
        } else {
            ++refusal_suppressed_;
            refusal_last_ = s;
        }
    }
    if (!summary.empty()) log(summary);
    if (print) log(s);
}

Expected<bool, AuthorityError> Authority::start() {
    for (const std::string &k : opt_.keys) {
        auto key = parse_tsig_key(k);
        if (!key) return unexpected(AuthorityError{"bad --key '" + k + "' (want NAME:BASE64SECRET)"});
        keys_.push_back(*key);
    }
    for (const std::string &n : opt_.update_keys) {
        std::string t = n;
        for (char &c : t) c = ascii_lower(c);
        if (t.back() != '.') t += '.';
        std::string w;
        if (!wire_from_text(t, w)) return unexpected(AuthorityError{"bad --update-key '" + n + "'"});
        if (std::none_of(keys_.begin(), keys_.end(), [&](const TsigKey &k) { return k.name_wire == w; }))
            return unexpected(AuthorityError{"--update-key " + n + " names no --key"});
        update_keys_.push_back(w);
    }
    for (const std::string &n : opt_.notify) {
        auto a = parse_sockaddr(n, AddressRules{.default_port = 53});
        if (!a) return unexpected(AuthorityError{"bad --notify '" + n + "'"});
        notify_targets_.push_back({a->ss, a->len});
    }
    std::string err;
    if (!mkdirs(opt_.state_dir, err)) return unexpected(AuthorityError{err});

    for (const std::string &s : opt_.secondaries) {
        size_t eq = s.find('=');
        auto sec = std::make_unique<Secondary>();
        std::optional<SockAddr> primary;
        if (eq != std::string::npos) primary = parse_sockaddr(std::string_view(s).substr(eq + 1), AddressRules{.default_port = 53});
        if (eq == std::string::npos || eq == 0 || !wire_from_text(s.substr(0, eq), sec->origin_wire) || !primary)
            return unexpected(AuthorityError{"bad --secondary '" + s + "' (want ZONE=ADDR[:PORT])"});
        sec->primary = primary->ss;
        sec->primary_len = primary->len;
        sec->text = name_to_text(sec->origin_wire);
        sec->path = opt_.state_dir + "/" + zone_file_stem(sec->origin_wire) + ".zone";
        struct stat st;
        if (::stat(sec->path.c_str(), &st) == 0) {
            auto z = load_zone_file(sec->path, own_file_limits(st));
            std::string header;
            if (z && (*z)->origin_wire() == sec->origin_wire && !verified_ok(*sec, **z, sec->path, header)) {
                // Already logged and counted: no copy until a transfer verifies.
            } else if (z && (*z)->origin_wire() == sec->origin_wire) {
                sec->zone = *z;
                publish_(sec->zone);
                log("zone " + sec->text + ": serving the last good copy (" + soa_text(sec->zone->serial()) +
                    ") from " + sec->path);
            } else {
                log("zone " + sec->text + ": ignoring " + sec->path + ": " +
                    (z ? std::string("another zone") : z.error().to_string()));
            }
        }
        secondaries_.push_back(std::move(sec));
    }

    auto set = current_();
    for (const ZonePtr &z : set->zones()) {
        bool is_secondary = std::any_of(secondaries_.begin(), secondaries_.end(),
                                        [&](const auto &s) { return s->origin_wire == z->origin_wire(); });
        if (is_secondary) continue;
        if (!setup_primary(z, err)) return unexpected(AuthorityError{err});
    }
    if (opt_.start_threads) {
        sec_thread_ = std::thread([this] { secondary_loop(); });
        notify_thread_ = std::thread([this] { notifier_loop(); });
        writer_thread_ = std::thread([this] { writer_loop(); });
    }
    return true;
}

void Authority::stop() {
    if (stopping_.exchange(true)) return;
    sec_cv_.notify_all();
    ncv_.notify_all();
    if (sec_thread_.joinable()) sec_thread_.join();
    if (notify_thread_.joinable()) notify_thread_.join();
    wcv_.notify_all();
    if (writer_thread_.joinable()) writer_thread_.join();
    flush_writes();
    // Leave a compact zone file behind on a clean exit.
    if (!opt_.compact_on_stop) return;
    std::vector<std::string> names;
    {
        std::lock_guard lk(mu_);
        for (auto &[o, p] : primaries_) names.push_back(o);
    }
    for (auto &o : names) compact(o, false);
}

bool Authority::setup_primary(const ZonePtr &file_zone, std::string &err) {
    const std::string &origin = file_zone->origin_wire();
    Primary p;
    std::string stem = zone_file_stem(origin);
    p.zone_path = opt_.state_dir + "/" + stem + ".zone";
    ZonePtr cur = file_zone;
    struct stat st;
    if (::stat(p.zone_path.c_str(), &st) == 0) {
        auto saved = load_zone_file(p.zone_path, own_file_limits(st));
        if (saved && (*saved)->origin_wire() == origin && serial_gt((*saved)->serial(), cur->serial())) {
            cur = *saved;
            p.compacted_serial = cur->serial();
        } else if (!saved) {
            // The journal's entries start from this copy; replaying
            // them over the older zone file would fail, and cutting them would
            // lose acknowledged updates. Keep everything and refuse to start.
            err = "zone " + file_zone->origin_text() + ": cannot load the compacted copy: " +
                  saved.error().to_string() + "; the journal " + opt_.state_dir + "/" + stem +
                  ".jnl is kept untouched; refusing to start (repair " + p.zone_path + ", or move it and the journal away)";
            return false;
        }
    }
    std::vector<Diff> entries;
    std::string note;
    if (!p.journal.open(opt_.state_dir + "/" + stem + ".jnl", entries, note, err)) return false;
    if (!note.empty()) log(note);
    size_t applied = 0;
    for (const Diff &d : entries) {
        if (d.from == cur->serial()) {
            ZonePtr next;
            std::string why;
            if (!apply_diff(*cur, d, next, why)) {
                err = "journal " + p.journal.path() + ": entry " + std::to_string(d.from) + "->" +
                      std::to_string(d.to) + " does not apply (" + why +
                      "); the journal is kept untouched; refusing to start";
                return false;
            }
            cur = next;
            ++applied;
        } else if (serial_gt(d.to, cur->serial())) {
            // A gap: the base (zone file or compacted copy) is not the one the
            // journal was written over. Never cut acknowledged updates for it.
            err = "journal " + p.journal.path() + ": entry " + std::to_string(d.from) + "->" + std::to_string(d.to) +
                  " does not follow serial " + std::to_string(cur->serial()) + " of " +
                  (cur == file_zone ? file_zone->file() : p.zone_path) +
                  "; the journal is kept untouched; refusing to start (give the zone file a serial past " +
                  std::to_string(entries.back().to) + " to start from it, or restore the compacted copy)";
            return false;
        }
    }
    // The diffs that lead to the current serial serve IXFR.
    std::vector<Diff> chain;
    uint32_t want = cur->serial();
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
        if (it->to != want) continue;
        chain.push_back(*it);
        want = it->from;
    }
    std::reverse(chain.begin(), chain.end());
    if (chain.size() != entries.size()) {  // only entries older than the base: the file moved on
        if (!p.journal.rewrite(chain, err)) return false;
    }
    // The signed UPDATEs still inside their fudge window are
    // remembered across the restart; the same message again is refused.
    {
        const uint64_t t = static_cast<uint64_t>(now());
        std::lock_guard lk(replay_mu_);
        for (const Diff &d : entries)
            if (!d.tsig_mac.empty() && d.tsig_time + d.tsig_fudge >= t)
                seen_updates_[d.tsig_key + d.tsig_mac] = SeenUpdate{d.tsig_time + d.tsig_fudge, {}};
    }
    p.history.assign(chain.begin(), chain.end());
    if (applied)
        log("zone " + cur->origin_text() + ": replayed " + std::to_string(applied) + " journal entries, now at " +
            soa_text(cur->serial()));
    p.zone = cur;
    if (cur != file_zone) publish_(cur);
    std::lock_guard lk(mu_);
    primaries_[origin] = std::move(p);
    return true;
}

void Authority::zone_replaced(const Zone &z) {
    // Called from inside ServedZones's publish (maybe our own): take no lock
    // here that a publisher may hold; the notifier thread sorts it out.
    {
        std::lock_guard nl(nmu_);
        std::string key = "\x01" + z.origin_wire();
        if (std::find(notify_queue_.begin(), notify_queue_.end(), key) == notify_queue_.end())
            notify_queue_.push_back(key);
    }
    ncv_.notify_all();
}

void Authority::reassert(const std::string &origin) {
    auto set = current_();
    ZonePtr served;
    for (const ZonePtr &p : set->zones())
        if (p->origin_wire() == origin) served = p;
    ZonePtr ours;
    {
        std::lock_guard lk(mu_);
        auto it = primaries_.find(origin);
        if (it != primaries_.end()) {
            Primary &p = it->second;
            if (served == p.zone) return;
            if (served && serial_gt(served->serial(), p.zone->serial())) {
                // The operator edited the zone file and moved its serial on: it
                // wins; the journal starts again from it.
                log("zone " + served->origin_text() + ": the zone file moved to " + soa_text(served->serial()) +
                    "; it replaces the journaled copy");
                p.zone = served;
                p.history.clear();
                std::string err;
                if (!p.journal.rewrite({}, err)) log(err);
                p.since_compact = 1;
                return;
            }
            ours = p.zone;
        }
    }
    if (!ours) {
        std::lock_guard lk(sec_mu_);
        for (auto &s : secondaries_)
            if (s->origin_wire == origin) ours = s->zone;
    }
    // A reload of an older file (or one without our secondaries) must not undo
    // acknowledged updates or drop pulled zones.
    if (ours && served != ours) publish_(ours);
}

// ---------------------------------------------------------------------------

void Authority::handle(const uint8_t *msg, size_t len, const sockaddr_storage &peer, bool tcp,
                       std::vector<std::string> &replies) {
    dispatch(msg, len, peer, tcp, replies, nullptr);
}

// An UPDATE waiting for the rest of its batch: checked, then applied, then
// answered after the journal sync that covers it.
struct Authority::UpdateJob {
    LdnsPktPtr q;
    const uint8_t *msg = nullptr;
    size_t len = 0;
    sockaddr_storage peer{};
    std::vector<std::string> *replies = nullptr;
    TsigCheck tc;
    std::string who, zone_name, seen_key, origin;
    std::vector<Record> prereq, updates;
    uint8_t rcode = kRcodeNoError;
    bool done = false;         // answered before anything was applied
    bool after_stage = false;  // decided on top of changes not yet synced
    bool aa = true;
    int dup_of = -1;           // the same signed message earlier in the batch
};

void Authority::handle_batch(std::vector<Request> &reqs) {
    std::vector<UpdateJob> updates;
    for (Request &r : reqs) dispatch(r.msg, r.len, r.peer, r.tcp, r.replies, &updates);
    if (updates.empty()) return;
    try {
        handle_updates(updates);
    } catch (const std::exception &e) {
        log(std::string("authority: ") + e.what());
        for (UpdateJob &j : updates)
            if (j.replies->empty())
                if (std::string r = header_reply(j.msg, j.len, kRcodeServFail); !r.empty()) j.replies->push_back(r);
    }
}

void Authority::dispatch(const uint8_t *msg, size_t len, const sockaddr_storage &peer, bool tcp,
                         std::vector<std::string> &replies, std::vector<UpdateJob> *updates) {
    try {
        ldns_pkt *raw = nullptr;
        if (len < 12 || ldns_wire2pkt(&raw, msg, len) != LDNS_STATUS_OK) {
            std::string r = header_reply(msg, len, kRcodeFormErr);
            if (!r.empty()) replies.push_back(r);
            return;
        }
        LdnsPktPtr q(raw);
        if (ldns_pkt_qr(q.get())) return;  // never answer an answer
        switch (ldns_pkt_get_opcode(q.get())) {
        case LDNS_PACKET_UPDATE: {
            UpdateJob j;
            j.q = std::move(q);
            j.msg = msg;
            j.len = len;
            j.peer = peer;
            j.replies = &replies;
            if (updates) {
                updates->push_back(std::move(j));
                return;
            }
            std::vector<UpdateJob> one;
            one.push_back(std::move(j));
            handle_updates(one);
            return;
        }
        case LDNS_PACKET_NOTIFY: handle_notify(q.get(), msg, len, peer, replies); return;
        case LDNS_PACKET_QUERY: {
            const ldns_rr_list *qs = ldns_pkt_question(q.get());
            if (ldns_rr_list_rr_count(qs) == 1) {
                auto t = ldns_rr_get_type(ldns_rr_list_rr(qs, 0));
                if (t == LDNS_RR_TYPE_AXFR || t == LDNS_RR_TYPE_IXFR) {
                    handle_xfr(q.get(), msg, len, tcp, replies);
                    return;
                }
                handle_query(q.get(), msg, len, tcp, replies);
                return;
            }
            break;
        }
        default: break;
        }
        replies.push_back(header_reply(msg, len, kRcodeNotImp));
    } catch (const std::exception &e) {
        log(std::string("authority: ") + e.what());
        std::string r = header_reply(msg, len, kRcodeServFail);
        if (!r.empty()) replies.push_back(r);
    }
}

namespace {

// The reply to a request: header, question echoed, TSIG as RFC 8945 §5.3 wants.
std::string make_reply(const ldns_pkt *q, uint8_t rcode, const TsigCheck &tc, time_t now, bool aa = true) {
    LdnsPktPtr p(ldns_pkt_new());
    ldns_pkt_set_id(p.get(), ldns_pkt_id(q));
    ldns_pkt_set_qr(p.get(), true);
    ldns_pkt_set_aa(p.get(), aa);
    ldns_pkt_set_opcode(p.get(), ldns_pkt_get_opcode(q));
    ldns_pkt_set_rcode(p.get(), rcode);
    const ldns_rr_list *qs = ldns_pkt_question(q);
    for (size_t i = 0; i < ldns_rr_list_rr_count(qs); ++i)
        ldns_pkt_push_rr(p.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(ldns_rr_list_rr(qs, i)));
    using R = TsigCheck::Result;
    switch (tc.result) {
    case R::ok: {
        std::string wire;
        if (tsig_sign_pkt(p.get(), *tc.key, tc.request_mac.get(), false, wire, nullptr)) return wire;
        return to_wire(p.get());
    }
    case R::bad_key:
    case R::bad_alg:
    case R::bad_sig: {
        // §5.3.2: NOTAUTH, an unsigned TSIG carrying the error.
        ldns_pkt_set_rcode(p.get(), kRcodeNotAuth);
        std::string wire = to_wire(p.get());
        tsig_append(wire, nullptr, tc.key_name_wire, tc.time_signed, kTsigFudge,
                    tc.result == R::bad_sig ? kTsigBadSig : kTsigBadKey, {}, {});
        return wire;
    }
    case R::bad_time: {
        // §5.2.3: signed, the request's time in Time Signed, ours in Other Data.
        ldns_pkt_set_rcode(p.get(), kRcodeNotAuth);
        std::string wire = to_wire(p.get());
        std::string other;
        for (int i = 5; i >= 0; --i) other.push_back(static_cast<char>(static_cast<uint64_t>(now) >> (8 * i)));
        tsig_append(wire, tc.key, tc.key_name_wire, tc.time_signed, kTsigFudge, kTsigBadTime,
                    raw_mac(tc.request_mac.get()), other);
        return wire;
    }
    case R::malformed: ldns_pkt_set_rcode(p.get(), kRcodeFormErr); return to_wire(p.get());
    case R::unsigned_msg: return to_wire(p.get());
    }
    return to_wire(p.get());
}

} // namespace

void Authority::handle_updates(std::vector<UpdateJob> &jobs) {
    using R = TsigCheck::Result;
    // 1. Each on its own: the signature, a replay, the key's right, the form.
    for (size_t i = 0; i < jobs.size(); ++i) {
        UpdateJob &j = jobs[i];
        ldns_pkt *q = j.q.get();
        j.tc = tsig_verify_request(q, j.msg, j.len, keys_, now());
        j.who = sockaddr_text(j.peer);
        const ldns_rr_list *zs = ldns_pkt_question(q);
        j.zone_name = ldns_rr_list_rr_count(zs) == 1 ? name_to_text(record_from_ldns(ldns_rr_list_rr(zs, 0)).owner)
                                                     : std::string("?");
        const TsigCheck &tc = j.tc;
        if (tc.result != R::ok) {
            uint8_t rc = tc.result == R::unsigned_msg ? kRcodeRefused : kRcodeNotAuth;
            log_refusal("UPDATE " + j.zone_name + " from " + j.who + " refused: " + tc.text());
            j.replies->push_back(make_reply(q, rc, tc, now()));
            j.done = true;
            continue;
        }
        // Seen before (same key, same MAC: the same signed message)? Then the
        // first replies again, nothing applied twice.
        j.seen_key = tc.key->name_wire + raw_mac(tc.request_mac.get());
        {
            std::lock_guard lk(replay_mu_);
            const uint64_t t = static_cast<uint64_t>(now());
            if (t != last_seen_sweep_) {  // expired entries go once a second at most
                last_seen_sweep_ = t;
                for (auto it = seen_updates_.begin(); it != seen_updates_.end();)
                    it = it->second.expires < t ? seen_updates_.erase(it) : std::next(it);
            }
            auto it = seen_updates_.find(j.seen_key);
            if (it != seen_updates_.end() && it->second.replies.empty()) {
                // Applied before a restart (known from the journal): its replies
                // are gone, and applying it again would roll the zone back.
                // Refused as a stale signature: NOTAUTH, TSIG error BADTIME, signed.
                log_refusal("UPDATE " + j.zone_name + " from " + j.who + " key " + tc.key->name +
                            " refused: the same signed message was applied before the restart (a replay)");
                replays_refused_.fetch_add(1);
                TsigCheck stale;
                stale.result = R::bad_time;
                stale.key = tc.key;
                stale.request_mac.reset(ldns_rdf_clone(tc.request_mac.get()));
                stale.time_signed = tc.time_signed;
                stale.fudge = tc.fudge;
                stale.key_name_wire = tc.key_name_wire;
                j.replies->push_back(make_reply(q, kRcodeNotAuth, stale, now()));
                j.done = true;
                continue;
            }
            if (it != seen_updates_.end()) {
                log_refusal("UPDATE " + j.zone_name + " from " + j.who + " key " + tc.key->name +
                    ": the same signed message again (a retransmission or a replay): not applied again, first reply resent");
                *j.replies = it->second.replies;
                j.done = true;
                continue;
            }
        }
        for (size_t k = 0; k < i && j.dup_of < 0; ++k)
            if (!jobs[k].seen_key.empty() && jobs[k].seen_key == j.seen_key) j.dup_of = static_cast<int>(k);
        if (j.dup_of >= 0) continue;
        if (std::find(update_keys_.begin(), update_keys_.end(), tc.key->name_wire) == update_keys_.end()) {
            log_refusal("UPDATE " + j.zone_name + " from " + j.who + " refused: key " + tc.key->name + " may not update");
            j.rcode = kRcodeRefused;
            continue;
        }
        // RFC 2136 §3.1.1: exactly one zone, of type SOA.
        if (ldns_rr_list_rr_count(zs) != 1 || ldns_rr_get_type(ldns_rr_list_rr(zs, 0)) != LDNS_RR_TYPE_SOA) {
            j.rcode = kRcodeFormErr;
            continue;
        }
        Record zrec = record_from_ldns(ldns_rr_list_rr(zs, 0));
        if (zrec.cls != kClassIN) {
            log_refusal("UPDATE " + j.zone_name + " from " + j.who + ": not a primary zone here (NOTAUTH)");
            j.rcode = kRcodeNotAuth;
            j.aa = false;
            continue;
        }
        j.origin = zrec.owner;
        j.prereq = records_of(ldns_pkt_answer(q));
        j.updates = records_of(ldns_pkt_authority(q));
    }

    // 2. In order, each on the zone the ones before it made; journal entries
    // staged, then one sync for all (group commit).
    struct Staged {
        ZonePtr zone;
        std::vector<Diff> diffs;
        bool failed = false;
        ZonePtr published;
    };
    std::map<std::string, Staged> staged;
    std::unique_lock lk(mu_);
    try {
        for (UpdateJob &j : jobs) {
            if (j.done || j.dup_of >= 0 || j.origin.empty() || j.rcode != kRcodeNoError) continue;
            auto it = primaries_.find(j.origin);
            if (it == primaries_.end()) {
                log_refusal("UPDATE " + j.zone_name + " from " + j.who + ": not a primary zone here (NOTAUTH)");
                j.rcode = kRcodeNotAuth;
                j.aa = false;
                continue;
            }
            // A zone that must verify (--require-zonemd, --trust-anchor) is not
            // changed here: aisidd does not sign, so a change would break its
            // ZONEMD and put unverified data in the state file. Change it on the
            // signer and publish it again.
            if (opt_.policy && opt_.policy->active(j.origin)) {
                log_refusal("UPDATE " + j.zone_name + " from " + j.who +
                            " refused: the zone must verify (ZONEMD/DNSSEC) and aisidd does not sign");
                j.rcode = kRcodeRefused;
                continue;
            }
            Primary &p = it->second;
            Staged &st = staged[j.origin];
            if (!st.zone) st.zone = p.zone;
            j.after_stage = !st.diffs.empty();
            UpdateResult res = apply_update(*st.zone, j.prereq, j.updates, opt_.max_records_per_name);
            j.rcode = res.rcode;
            if (res.rcode != kRcodeNoError) {
                log_refusal("UPDATE " + j.zone_name + " from " + j.who + " key " + j.tc.key->name + ": " +
                            rcode_name(res.rcode) + ": " + res.why);
            } else if (res.changed) {
                std::string err;
                res.diff.tsig_key = j.tc.key->name_wire;
                res.diff.tsig_mac = raw_mac(j.tc.request_mac.get());
                res.diff.tsig_time = j.tc.time_signed;
                res.diff.tsig_fudge = j.tc.fudge;
                if (!p.journal.stage(res.diff, err)) {
                    log("UPDATE " + j.zone_name + ": " + err + " (SERVFAIL, nothing changed)");
                    j.rcode = kRcodeServFail;
                } else {
                    st.zone = res.zone;
                    st.diffs.push_back(std::move(res.diff));
                    j.after_stage = true;
                }
            }
        }
        for (auto &[origin, st] : staged) {
            if (st.diffs.empty()) continue;
            Primary &p = primaries_[origin];
            std::string err;
            // On disk before NOERROR (SPEC §4): a crash after this loses nothing acknowledged.
            if (!p.journal.commit(err)) {
                log("UPDATE " + name_to_text(origin) + ": " + err + " (SERVFAIL for " + std::to_string(st.diffs.size()) +
                    " updates, nothing changed)");
                st.failed = true;
                continue;
            }
            p.zone = st.zone;
            p.changed = now();
            for (Diff &d : st.diffs) p.history.push_back(std::move(d));
            p.since_compact += st.diffs.size();
            last_change_.store(std::chrono::steady_clock::now().time_since_epoch().count());
            st.published = p.zone;
        }
    } catch (...) {
        // Nothing staged may be synced later by another batch: it was never applied.
        for (auto &[origin, st] : staged)
            if (auto it = primaries_.find(origin); it != primaries_.end() && it->second.journal.staged())
                it->second.journal.discard();
        throw;
    }
    lk.unlock();
    // 3. Outside the lock (ServedZones runs its change callbacks, zone_replaced,
    // inline): publish once per zone, then answer each.
    for (auto &[origin, st] : staged)
        if (st.published) publish_(st.published);
    std::set<std::string> notify;
    for (UpdateJob &j : jobs) {
        if (j.done || j.dup_of >= 0) continue;
        auto st = staged.find(j.origin);
        if (st != staged.end() && st->second.failed && j.after_stage) j.rcode = kRcodeServFail;
        if (j.rcode == kRcodeNoError) notify.insert(j.origin);
        j.replies->push_back(make_reply(j.q.get(), j.rcode, j.tc, now(), j.aa));
        std::lock_guard lk(replay_mu_);
        if (seen_updates_.size() >= kMaxSeenUpdates) seen_updates_.erase(seen_updates_.begin());
        seen_updates_[j.seen_key] = SeenUpdate{j.tc.time_signed + j.tc.fudge, *j.replies};
    }
    for (UpdateJob &j : jobs) {
        if (j.dup_of < 0) continue;
        log_refusal("UPDATE " + j.zone_name + " from " + j.who + " key " + j.tc.key->name +
                    ": the same signed message again (a retransmission or a replay): not applied again, first reply resent");
        *j.replies = *jobs[static_cast<size_t>(j.dup_of)].replies;
    }
    for (const std::string &o : notify) queue_notify(o);
}

void Authority::handle_notify(ldns_pkt *q, const uint8_t *msg, size_t len, const sockaddr_storage &peer,
                              std::vector<std::string> &replies) {
    TsigCheck tc = tsig_verify_request(q, msg, len, keys_, now());
    using R = TsigCheck::Result;
    if (tc.result != R::ok && tc.result != R::unsigned_msg) {
        replies.push_back(make_reply(q, kRcodeNotAuth, tc, now()));
        return;
    }
    const ldns_rr_list *qs = ldns_pkt_question(q);
    if (ldns_rr_list_rr_count(qs) != 1) {
        replies.push_back(make_reply(q, kRcodeFormErr, tc, now()));
        return;
    }
    Record z = record_from_ldns(ldns_rr_list_rr(qs, 0));
    bool accepted = false;
    {
        std::lock_guard lk(sec_mu_);
        for (auto &s : secondaries_) {
            if (s->origin_wire != z.owner) continue;
            // RFC 1996 §3.10: only from our primary (or signed with one of our keys).
            if (tc.result == R::ok || SockAddr::from(peer).same_host(SockAddr::from(s->primary))) {
                s->notified = true;
                accepted = true;
            }
        }
    }
    if (!accepted) {
        log_refusal("NOTIFY " + name_to_text(z.owner) + " from " + sockaddr_text(peer) + " ignored: not our primary");
        replies.push_back(make_reply(q, kRcodeRefused, tc, now()));
        return;
    }
    sec_cv_.notify_all();
    // RFC 1996 §4.7: the answer echoes the question, with QR and AA.
    replies.push_back(make_reply(q, kRcodeNoError, tc, now()));
}

void Authority::handle_query(ldns_pkt *q, const uint8_t *msg, size_t len, bool tcp,
                             std::vector<std::string> &replies) {
    // A signed query (a secondary's SOA refresh, RFC 1996 §3.11, or any client
    // holding a key) gets the very answer an unsigned one gets from the query
    // core (SPEC §2 over the served zones: explicit records, synthesized and
    // wildcard service names, reverse PTR, NXDOMAIN/NODATA with the SOA; the
    // same records, TTLs, flags and rcode), with a TSIG added (RFC 8945 §5.3).
    TsigCheck tc = tsig_verify_request(q, msg, len, keys_, now());
    using R = TsigCheck::Result;
    if (tc.result != R::ok && tc.result != R::unsigned_msg) {
        replies.push_back(make_reply(q, kRcodeNotAuth, tc, now()));
        return;
    }
    Query pq;
    if (parse_query(msg, len, pq) != ParseError::none) {
        replies.push_back(make_reply(q, kRcodeFormErr, tc, now(), false));
        return;
    }
    bool sign = tc.result == R::ok;
    // RFC 8945 §5.3: the TSIG must fit in the client's limit too; the answer
    // is written (or truncated, TC) in what is left.
    // Key name, type/class/TTL/RDLENGTH, "hmac-sha256.", time, fudge, MAC
    // size, the MAC, original ID/error/other length.
    size_t tsig_len = sign ? tc.key->name_wire.size() + 10 + 13 + 6 + 2 + 2 + 32 + 6 : 0;
    size_t limit = QueryCore::reply_limit(pq, tcp);
    std::string out(limit, '\0');
    uint8_t *o = reinterpret_cast<uint8_t *>(out.data());
    size_t cap = limit - tsig_len;
    size_t n = 0;
    if (pq.qtype == kTypeOPT || pq.qtype == 0) {
        n = write_error(pq, msg, true, kFormErr, o, cap);  // meta types are not asked for (RFC 6895 §3.1)
    } else {
        auto set = current_();
        CoreResult r = answer_local(*set, pq, msg, tcp, o, cap);
        // Outside our zones: an authority does not recurse for signed queries.
        n = r.verdict == Verdict::Answered ? r.len : write_error(pq, msg, true, kRefused, o, cap);
    }
    if (n == 0) {
        replies.push_back(make_reply(q, kRcodeServFail, tc, now(), false));
        return;
    }
    out.resize(n);
    if (sign) tsig_append(out, tc.key, {}, static_cast<uint64_t>(now()), kTsigFudge, 0, raw_mac(tc.request_mac.get()), {});
    replies.push_back(std::move(out));
}

std::vector<Record> Authority::xfr_records(const std::string &origin, uint16_t qtype,
                                           std::optional<uint32_t> client_serial, const Record **) {
    ZonePtr z;
    std::vector<const Diff *> chain;
    std::vector<Diff> chain_copy;
    {
        std::lock_guard lk(mu_);
        auto it = primaries_.find(origin);
        if (it != primaries_.end()) {
            z = it->second.zone;
            if (qtype == kTypeIXFR && client_serial) {
                // The diffs from the client's serial to ours, if the journal reaches back.
                auto &h = it->second.history;
                size_t start = h.size();
                for (size_t i = 0; i < h.size(); ++i)
                    if (h[i].from == *client_serial) {
                        start = i;
                        break;
                    }
                if (start < h.size() && h.back().to == z->serial()) {
                    bool ok = true;
                    for (size_t i = start; i + 1 < h.size(); ++i) ok = ok && h[i].to == h[i + 1].from;
                    if (ok) chain_copy.assign(h.begin() + static_cast<long>(start), h.end());
                }
            }
        }
    }
    if (!z) {
        auto set = current_();
        if (const Zone *found = set->find(origin))
            for (const ZonePtr &p : set->zones())
                if (p.get() == found) z = p;
    }
    if (!z) return {};
    Record soa{z->origin_wire(), kTypeSOA, kClassIN, z->soa().ttl, z->soa().rdata.at(0)};
    if (qtype == kTypeIXFR && client_serial && !serial_gt(z->serial(), *client_serial)) return {soa};
    if (!chain_copy.empty()) {
        for (const Diff &d : chain_copy) chain.push_back(&d);
        return ixfr_stream(soa, chain);
    }
    // RFC 1995 §4: the journal does not reach back: the whole zone (AXFR form).
    return axfr_stream(zone_records(*z));
}

void Authority::handle_xfr(ldns_pkt *q, const uint8_t *msg, size_t len, bool tcp, std::vector<std::string> &replies) {
    TsigCheck tc = tsig_verify_request(q, msg, len, keys_, now());
    using R = TsigCheck::Result;
    const ldns_rr *qr = ldns_rr_list_rr(ldns_pkt_question(q), 0);
    Record qrec = record_from_ldns(qr);
    std::string what = std::string(qrec.type == kTypeAXFR ? "AXFR " : "IXFR ") + name_to_text(qrec.owner);
    if (tc.result != R::ok) {
        log_refusal(what + " refused: " + tc.text());
        replies.push_back(make_reply(q, tc.result == R::unsigned_msg ? kRcodeRefused : kRcodeNotAuth, tc, now()));
        return;
    }
    if (!tcp) {
        // RFC 5936 §4.2 / RFC 1995 §2: transfers go over TCP; TC sends the client there.
        LdnsPktPtr p(ldns_pkt_new());
        ldns_pkt_set_id(p.get(), ldns_pkt_id(q));
        ldns_pkt_set_qr(p.get(), true);
        ldns_pkt_set_tc(p.get(), true);
        ldns_pkt_push_rr(p.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(qr));
        std::string wire;
        if (!tsig_sign_pkt(p.get(), *tc.key, tc.request_mac.get(), false, wire, nullptr)) wire = to_wire(p.get());
        replies.push_back(wire);
        return;
    }
    std::optional<uint32_t> client_serial;
    if (qrec.type == kTypeIXFR) {
        std::vector<Record> auth = records_of(ldns_pkt_authority(q));
        for (const Record &r : auth)
            if (r.type == kTypeSOA) client_serial = soa_serial(r.rdata);
        if (!client_serial) {
            replies.push_back(make_reply(q, kRcodeFormErr, tc, now()));
            return;
        }
    }
    std::vector<Record> stream = xfr_records(qrec.owner, qrec.type, client_serial, nullptr);
    if (stream.empty()) {
        log_refusal(what + ": not a zone of ours (NOTAUTH)");
        replies.push_back(make_reply(q, kRcodeNotAuth, tc, now(), false));
        return;
    }
    {
        // RFC 1995 §4: an IXFR answered incrementally starts SOA(new), SOA(old).
        bool incremental = stream.size() > 1 && stream[1].type == kTypeSOA && stream.size() > 2 &&
                           soa_serial(stream[1].rdata) != soa_serial(stream[0].rdata);
        std::string how = stream.size() == 1 ? "up to date" : incremental ? "incremental" : "full zone";
        log(what + " to key " + tc.key->name + ": " + how + ", " + std::to_string(stream.size()) + " records, " +
            soa_text(soa_serial(stream[0].rdata)));
    }
    std::vector<std::string> msgs = pack_xfr(q, stream, tc.key, tc.request_mac.get());
    if (msgs.empty()) {
        replies.push_back(make_reply(q, kRcodeServFail, tc, now()));
        return;
    }
    for (auto &m : msgs) replies.push_back(std::move(m));
}

// ---------------------------------------------------------------------------
// NOTIFY out and compaction.

void Authority::queue_notify(const std::string &origin_wire) {
    {
        std::lock_guard lk(nmu_);
        if (std::find(notify_queue_.begin(), notify_queue_.end(), origin_wire) == notify_queue_.end())
            notify_queue_.push_back(origin_wire);
    }
    ncv_.notify_all();
}

void Authority::compact(const std::string &origin, bool force) {
    ZonePtr z;
    {
        std::lock_guard lk(mu_);
        auto it = primaries_.find(origin);
        if (it == primaries_.end()) return;
        Primary &p = it->second;
        if (!force && p.zone->serial() == p.compacted_serial) return;
        if (p.since_compact == 0 && p.history.empty() && !force) return;
        z = p.zone;
        p.since_compact = 0;
    }
    std::string err;
    std::string path;
    {
        std::lock_guard lk(mu_);
        path = primaries_[origin].zone_path;
    }
    auto started = std::chrono::steady_clock::now();
    bool written = write_zone_file(path, *z, err);
    auto took = std::chrono::steady_clock::now() - started;
    {
        std::lock_guard lk(mu_);
        primaries_[origin].next_compact = std::chrono::steady_clock::now() + 9 * took;
    }
    if (!written) {
        log("zone " + z->origin_text() + ": compaction failed: " + err);
        return;
    }
    std::lock_guard lk(mu_);
    Primary &p = primaries_[origin];
    p.compacted_serial = z->serial();
    if (p.history.size() > 2 * opt_.journal_keep) {
        // Never drop what replay still needs: the diffs after the compacted serial.
        size_t needed = 0;
        for (auto it = p.history.rbegin(); it != p.history.rend() && it->to != p.compacted_serial; ++it) ++needed;
        size_t keep_n = std::max(opt_.journal_keep, needed);
        while (p.history.size() > keep_n) p.history.pop_front();
        std::vector<Diff> keep(p.history.begin(), p.history.end());
        if (!p.journal.rewrite(keep, err)) log("zone " + z->origin_text() + ": journal trim failed: " + err);
    }
}

void Authority::compact_now() {
    std::vector<std::string> names;
    {
        std::lock_guard lk(mu_);
        for (auto &[o, p] : primaries_) names.push_back(o);
    }
    for (auto &o : names) compact(o, true);
}

void Authority::notifier_loop() {
    using Clock = std::chrono::steady_clock;
    while (!stopping_) {
        std::string origin;
        {
            std::unique_lock lk(nmu_);
            ncv_.wait_for(lk, std::chrono::milliseconds(500), [&] { return stopping_ || !notify_queue_.empty(); });
            if (stopping_) break;
            if (!notify_queue_.empty()) {
                origin = notify_queue_.front();
                notify_queue_.pop_front();
            }
        }
        if (!origin.empty() && origin[0] == '\x01') {
            reassert(origin.substr(1));
            continue;
        }
        if (!origin.empty()) {
            last_change_.store(Clock::now().time_since_epoch().count());
            ZonePtr z;
            {
                std::lock_guard lk(mu_);
                auto it = primaries_.find(origin);
                if (it != primaries_.end()) z = it->second.zone;
            }
            if (!z) {
                std::lock_guard lk(sec_mu_);
                for (auto &s : secondaries_)
                    if (s->origin_wire == origin) z = s->zone;
            }
            if (!z) continue;
            for (auto &[ss, sl] : notify_targets_) {
                // RFC 1996 §3.6: retry a few times until the secondary answers.
                for (int attempt = 0; attempt < 3 && !stopping_; ++attempt) {
                    LdnsRdfPtr owner(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, origin.size(), origin.data()));
                    LdnsPktPtr n(ldns_pkt_query_new(owner.release(), LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, LDNS_AA));
                    ldns_pkt_set_opcode(n.get(), LDNS_PACKET_NOTIFY);
                    ldns_pkt_set_random_id(n.get());
                    Record soa{z->origin_wire(), kTypeSOA, kClassIN, z->soa().ttl, z->soa().rdata.at(0)};
                    if (LdnsRrPtr s = record_to_ldns(soa)) ldns_pkt_push_rr(n.get(), LDNS_SECTION_ANSWER, s.release());
                    std::string req = to_wire(n.get()), resp, err;
                    if (udp_exchange(ss, sl, req, resp, 1000, err)) break;
                    if (attempt == 2) log("NOTIFY " + z->origin_text() + " to " + sockaddr_text(ss) + ": " + err);
                }
            }
        }
    }
}

// Zone files are written off the paths that answer and pull: a secondary's
// copy after each transfer (latest version wins), a primary's compaction after
// a burst of changes or once things are quiet.
void Authority::queue_write(const std::string &path, ZonePtr z, std::string header) {
    if (!opt_.start_threads) {
        std::string err;
        if (!write_zone_file(path, *z, err, header)) log("zone " + z->origin_text() + ": " + err);
        return;
    }
    {
        std::lock_guard lk(wmu_);
        pending_writes_[path] = {std::move(z), std::move(header)};
    }
    wcv_.notify_all();
}

void Authority::flush_writes(bool force) {
    using Clock = std::chrono::steady_clock;
    std::map<std::string, std::pair<ZonePtr, std::string>> todo;
    {
        std::lock_guard lk(wmu_);
        for (auto it = pending_writes_.begin(); it != pending_writes_.end();) {
            auto nw = next_write_.find(it->first);
            if (force || nw == next_write_.end() || Clock::now() >= nw->second) {
                todo.insert(*it);
                it = pending_writes_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (auto &[path, w] : todo) {
        std::string err;
        auto started = Clock::now();
        if (!write_zone_file(path, *w.first, err, w.second)) log("zone " + w.first->origin_text() + ": " + err);
        auto took = Clock::now() - started;
        std::lock_guard lk(wmu_);
        next_write_[path] = Clock::now() + 9 * took;
    }
}

void Authority::writer_loop() {
    using Clock = std::chrono::steady_clock;
    while (!stopping_) {
        {
            std::unique_lock lk(wmu_);
            // A write still waiting out its turn does not wake the loop again.
            wcv_.wait_for(lk, std::chrono::milliseconds(250), [&] {
                if (stopping_) return true;
                for (auto &[path, z] : pending_writes_) {
                    auto nw = next_write_.find(path);
                    if (nw == next_write_.end() || Clock::now() >= nw->second) return true;
                }
                return false;
            });
        }
        if (stopping_) break;
        flush_writes(false);
        std::vector<std::string> due;
        {
            std::lock_guard lk(mu_);
            auto last = Clock::time_point(Clock::duration(last_change_.load()));
            bool quiet = Clock::now() - last > std::chrono::seconds(1);
            for (auto &[o, p] : primaries_)
                if ((p.since_compact >= opt_.compact_every || (quiet && p.since_compact > 0)) &&
                    Clock::now() >= p.next_compact)
                    due.push_back(o);
        }
        for (auto &o : due) compact(o, false);
    }
}

// ---------------------------------------------------------------------------
// Secondary zones.

bool Authority::pull(Secondary &s) {
    const TsigKey *key = keys_.empty() ? nullptr : &keys_.front();
    std::optional<Record> have;
    if (s.zone) have = Record{s.zone->origin_wire(), kTypeSOA, kClassIN, s.zone->soa().ttl, s.zone->soa().rdata.at(0)};
    XfrResult r = xfr_pull(s.primary, s.primary_len, s.origin_wire, have, key, opt_.transfer_timeout_ms);
    ZonePtr next;
    std::string how;
    if (r.kind == XfrResult::Kind::incremental && s.zone) {
        ZonePtr cur = s.zone;
        std::string why;
        for (const Diff &d : r.diffs) {
            ZonePtr n;
            if (!apply_diff(*cur, d, n, why)) {
                cur = nullptr;
                break;
            }
            cur = n;
        }
        if (cur) {
            next = cur;
            how = "IXFR";
        } else {
            log("zone " + s.text + ": IXFR does not apply (" + why + "); trying AXFR");
            r = xfr_pull(s.primary, s.primary_len, s.origin_wire, std::nullopt, key, opt_.transfer_timeout_ms);
        }
    }
    if (r.kind == XfrResult::Kind::full) {
        ZoneBuilder b(s.path);
        ZoneError err;
        bool ok = true;
        for (const Record &rec : r.full)
            if (!b.add(rec.owner, rec.type, rec.ttl, rec.rdata, s.path, 0, err)) {
                ok = false;
                break;
            }
        if (ok) {
            auto fin = b.finish();
            if (fin) next = *fin;
            else err = fin.error(), ok = false;
        }
        if (!ok) {
            log("zone " + s.text + ": the transferred zone breaks the rules (" + err.message +
                "); keeping the last good copy");
            r.kind = XfrResult::Kind::failed;
        }
        how = "AXFR";
    }
    time_t t = now();
    uint32_t refresh = 3600, retry = 600, expire = 86400;
    if (s.zone) soa_timers(s.zone->soa().rdata.at(0), refresh, retry, expire);
    if (r.kind == XfrResult::Kind::failed) {
        unsigned failures;
        {
            // Under sec_mu_: zone_status() reads these from the control thread.
            std::lock_guard lk(sec_mu_);
            failures = ++s.failures;
            s.last_error = r.why;
            // Without any copy, retry soon; with one, on the SOA retry timer.
            s.next_refresh = t + (s.zone ? std::clamp<uint32_t>(retry, 1, 3600)
                                         : std::min<uint32_t>(2 << std::min(failures, 5u), 60));
        }
        if (failures == 1 || failures % 10 == 0)
            log("zone " + s.text + ": transfer from " + sockaddr_text(s.primary) + " failed: " + r.why +
                (s.zone ? " (still serving " + soa_text(s.zone->serial()) + ")" : ""));
        return false;
    }
    std::string header;
    if (next && !verified_ok(s, *next, "the " + how + " from " + sockaddr_text(s.primary), header)) {
        // Refused (logged, counted): the last good copy stays; the next try on the retry timer.
        std::lock_guard lk(sec_mu_);
        ++s.failures;
        s.last_error = "the " + how + " did not verify";
        s.next_refresh = t + (s.zone ? std::clamp<uint32_t>(retry, 1, 3600) : 60);
        return false;
    }
    {
        std::lock_guard lk(sec_mu_);
        s.failures = 0;
        s.last_error.clear();
        s.refreshed = t;
        if (next) s.zone = next;
    }
    if (next) {
        // Answers first, then the copy on disk for the SDK and NSS (and restarts).
        publish_(next);
        queue_write(s.path, next, header);
        log("zone " + s.text + ": " + soa_text(next->serial()) + " from " + sockaddr_text(s.primary) + " by " + how);
        soa_timers(next->soa().rdata.at(0), refresh, retry, expire);
        queue_notify(s.origin_wire);
    }
    std::lock_guard lk(sec_mu_);
    s.next_refresh = t + std::clamp<uint32_t>(refresh, 1, 86400);
    return true;
}

std::vector<AuthorityZoneStatus> Authority::zone_status() const {
    std::vector<AuthorityZoneStatus> out;
    {
        std::lock_guard lk(mu_);
        for (const auto &[origin, p] : primaries_) {
            AuthorityZoneStatus z;
            z.origin = p.zone->origin_text();
            z.role = "primary";
            z.source = p.journal.path();
            z.serial = p.zone->serial();
            z.changed_unix = p.changed;
            z.pending_compaction = p.since_compact;
            out.push_back(std::move(z));
        }
    }
    std::lock_guard lk(sec_mu_);
    for (const auto &s : secondaries_) {
        AuthorityZoneStatus z;
        z.origin = s->text;
        z.role = "secondary";
        z.source = sockaddr_text(s->primary);
        z.has_copy = s->zone != nullptr;
        z.serial = s->zone ? s->zone->serial() : 0;
        z.changed_unix = s->refreshed;
        z.next_refresh_unix = s->next_refresh;
        z.failures = s->failures;
        z.last_error = s->last_error;
        out.push_back(std::move(z));
    }
    return out;
}

// With --require-zonemd or a trust anchor for the zone, a transferred copy
// (or the one saved from a transfer) is served and saved only when it
// verifies; `header` says how, for the state file.
bool Authority::verified_ok(const Secondary &s, const Zone &z, const std::string &from, std::string &header) {
    header.clear();
    if (!opt_.policy || !opt_.policy->active(s.origin_wire)) return true;
    ZoneVerdict v = opt_.policy->check(z, now());
    if (!v.ok) {
        opt_.policy->count_refusal(s.origin_wire, v.reason);
        log("zone " + s.text + ": refused " + from + " (" + v.reason + "): " + v.message +
            (s.zone ? "; still serving " + soa_text(s.zone->serial()) : ""));
        return false;
    }
    const TrustAnchor *a = opt_.policy->anchor(s.origin_wire);
    header = verified_line(v, now(), a ? a->file : std::string(), "xfr:" + sockaddr_text(s.primary));
    return true;
}

bool Authority::refresh_now(const std::string &zone_text) {
    std::string w;
    if (!wire_from_text(zone_text, w)) return false;
    for (auto &s : secondaries_)
        if (s->origin_wire == w) return pull(*s);
    return false;
}

void Authority::secondary_loop() {
    while (!stopping_) {
        Secondary *due = nullptr;
        {
            std::unique_lock lk(sec_mu_);
            time_t t = now();
            time_t soonest = t + 1;
            for (auto &s : secondaries_) {
                if (s->notified || s->next_refresh <= t) {
                    due = s.get();
                    break;
                }
                soonest = std::min(soonest, s->next_refresh);
            }
            if (!due) {
                sec_cv_.wait_for(lk, std::chrono::milliseconds(std::max<long>(50, (soonest - t) * 1000)), [&] {
                    if (stopping_) return true;
                    for (auto &s : secondaries_)
                        if (s->notified) return true;
                    return false;
                });
                continue;
            }
            due->notified = false;
        }
        pull(*due);
    }
}

} // namespace aisid::resolver
