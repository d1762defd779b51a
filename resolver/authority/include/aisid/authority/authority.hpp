// aisidd's authority side, plugged in through AuthorityHook:
// - primary: RFC 2136 UPDATE signed with TSIG (RFC 8945), codebook rules of
//   SPEC §3, a journal synced before NOERROR, compaction, NOTIFY (RFC 1996),
//   AXFR (RFC 5936) and IXFR (RFC 1995) to signed requests;
// - secondary: zones pulled by IXFR/AXFR, refreshed on NOTIFY and the SOA
//   timers, the last good copy kept in the state directory.
// Zones are published through callbacks (ServedZones in aisidd), so this side
// can be driven without the daemon in tests.
#pragma once

#include "aisid/resolver/authority_hook.hpp"
#include "aisid/authority/journal.hpp"
#include "aisid/proto/tsig.hpp"
#include "aisid/authority/zone_verify.hpp"
#include "aisid/core/zone_set.hpp"

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace aisid::resolver {

using proto::TsigKey;

struct AuthorityOptions {
    std::vector<std::string> keys;         // NAME:BASE64SECRET
    std::vector<std::string> update_keys;  // key names allowed to UPDATE
    std::vector<std::string> secondaries;  // ZONE=ADDR[:PORT]
    std::vector<std::string> notify;       // ADDR[:PORT]
    std::string state_dir = "/var/lib/aisid/zones";
    size_t compact_every = 200;            // changes between zone-file compactions
    size_t journal_keep = 1000;            // diffs kept for IXFR after compaction
    int transfer_timeout_ms = 5000;
    bool start_threads = true;             // false: unit tests drive it synchronously
    bool compact_on_stop = true;           // false: a stop looks like a crash (tests)
    size_t max_records_per_name = 100;     // per owner and type, by UPDATE
    unsigned refusal_log_lines = 10;       // refused UPDATE/NOTIFY/XFR lines logged per 10 s
    std::shared_ptr<const ZonePolicy> policy;  // transferred zones must verify (--require-zonemd, --trust-anchor)
    std::function<time_t()> now;           // default: time()
    std::function<void(const std::string &)> log;  // default: stderr "aisidd: ..."
};

struct AuthorityError {
    std::string message;
};

class Authority : public AuthorityHook {
public:
    using CurrentFn = std::function<std::shared_ptr<const ZoneSet>()>;
    using PublishFn = std::function<void(ZonePtr)>;

    Authority(AuthorityOptions opt, CurrentFn current, PublishFn publish);
    ~Authority() override;

    /// Parses the options, replays journals over the file zones, loads the
    /// secondaries' last good copies, publishes them and starts the threads.
    Expected<bool, AuthorityError> start();
    void stop();

    void handle(const uint8_t *msg, size_t len, const sockaddr_storage &peer, bool tcp,
                std::vector<std::string> &replies) override;
    /// The UPDATEs among the requests are applied in order, each on top of
    /// the ones before it (prerequisites see them), their journal entries
    /// made durable with one fdatasync, the zone published once; each is
    /// answered only after that sync. Other requests are handled one by one.
    void handle_batch(std::vector<Request> &reqs) override;

    /// Another writer (SIGHUP reload) published `z`; re-assert our copy of a
    /// zone we own, or adopt a newer file.
    void zone_replaced(const Zone &z);

    /// For tests and the bench: pull a secondary zone now (true on success).
    bool refresh_now(const std::string &zone_text);
    /// Writes compacted zone files for the primary zones now.
    void compact_now();
    const std::vector<TsigKey> &keys() const { return keys_; }
    /// Refused UPDATE/NOTIFY/XFR messages so far (logged or not).
    uint64_t refusals() const { return refusals_.load(); }
    void append_metrics(std::string &out) const override;
    std::vector<AuthorityZoneStatus> zone_status() const override;

private:
    struct Primary {
        ZonePtr zone;
        Journal journal;
        std::deque<Diff> history;  // for IXFR, oldest first
        size_t since_compact = 0;
        std::string zone_path;     // state-dir copy
        uint32_t compacted_serial = 0;
        bool compact_pending = false;
        time_t changed = 0;        // the last UPDATE applied (0: none since start)
        // A compaction writes the whole zone: the next waits nine times as
        // long as the last took, so a big zone under steady updates spends
        // at most a tenth of a core on it (the journal carries the rest).
        std::chrono::steady_clock::time_point next_compact{};
    };
    struct Secondary {
        std::string origin_wire;
        std::string text;
        sockaddr_storage primary{};
        socklen_t primary_len = 0;
        ZonePtr zone;
        std::string path;
        time_t next_refresh = 0;
        bool notified = false;
        // Written by pull() under sec_mu_ (zone_status() reads them).
        unsigned failures = 0;
        time_t refreshed = 0;      // the last transfer or check that succeeded
        std::string last_error;    // why the last one failed
    };

    void log(const std::string &s) const;
    void log_refusal(const std::string &s);
    time_t now() const;
    struct UpdateJob;
    // Handles a message; an UPDATE goes to `updates` when given (a batch), else is handled at once.
    void dispatch(const uint8_t *msg, size_t len, const sockaddr_storage &peer, bool tcp,
                  std::vector<std::string> &replies, std::vector<UpdateJob> *updates);
    void handle_updates(std::vector<UpdateJob> &jobs);
    void handle_notify(ldns_pkt *q, const uint8_t *msg, size_t len, const sockaddr_storage &peer,
                       std::vector<std::string> &replies);
    void handle_query(ldns_pkt *q, const uint8_t *msg, size_t len, bool tcp, std::vector<std::string> &replies);
    void handle_xfr(ldns_pkt *q, const uint8_t *msg, size_t len, bool tcp, std::vector<std::string> &replies);
    std::vector<Record> xfr_records(const std::string &origin, uint16_t qtype, std::optional<uint32_t> client_serial,
                                    const Record **soa_out);

    bool setup_primary(const ZonePtr &file_zone, std::string &err);
    bool pull(Secondary &s);
    void secondary_loop();
    void notifier_loop();
    void queue_notify(const std::string &origin_wire);
    void compact(const std::string &origin, bool force);
    void reassert(const std::string &origin);
    void queue_write(const std::string &path, ZonePtr z, std::string header = {});
    bool verified_ok(const Secondary &s, const Zone &z, const std::string &from, std::string &header);
    // All pending zone files now (force), or those whose wait is over.
    void flush_writes(bool force = true);
    void writer_loop();

    AuthorityOptions opt_;
    CurrentFn current_;
    PublishFn publish_;
    std::vector<TsigKey> keys_;
    std::vector<std::string> update_keys_;  // wire names
    std::vector<std::pair<sockaddr_storage, socklen_t>> notify_targets_;

    // TSIG replay: every signed UPDATE's MAC and the replies it got,
    // kept while its time is inside its fudge window (after that the time
    // check refuses it anyway). The same message again — a capture replayed,
    // or a client's retransmission after a lost reply — gets the first
    // replies again and changes nothing.
    struct SeenUpdate {
        uint64_t expires = 0;  // unix seconds: time_signed + fudge
        std::vector<std::string> replies;
    };
    std::mutex replay_mu_;
    std::map<std::string, SeenUpdate> seen_updates_;  // key name wire + MAC → replies
    uint64_t last_seen_sweep_ = 0;
    static constexpr size_t kMaxSeenUpdates = 100000;

    std::mutex refusal_mu_;  // the refusal log's window (log_refusal)
    int64_t refusal_window_ = 0;
    unsigned refusal_lines_ = 0;
    uint64_t refusal_suppressed_ = 0;
    std::string refusal_last_;
    std::atomic<uint64_t> refusals_{0};
    std::atomic<uint64_t> replays_refused_{0};     // signed UPDATEs known from the journal, sent again

    mutable std::mutex mu_;  // primaries_ (UPDATE is serialized: one writer per zone set)
    std::map<std::string, Primary> primaries_;
    mutable std::mutex sec_mu_;
    std::condition_variable sec_cv_;
    std::vector<std::unique_ptr<Secondary>> secondaries_;
    std::mutex nmu_;
    std::condition_variable ncv_;
    std::deque<std::string> notify_queue_;
    std::atomic<bool> stopping_{false};
    std::mutex wmu_;
    std::condition_variable wcv_;
    std::map<std::string, std::pair<ZonePtr, std::string>> pending_writes_;  // path → latest version, header
    // A secondary's file is written again no sooner than nine times its last
    // write took (a 1M-service zone takes most of a minute to write).
    std::map<std::string, std::chrono::steady_clock::time_point> next_write_;  // guarded by wmu_
    std::atomic<int64_t> last_change_{0};             // steady_clock ticks of the last change
    std::thread sec_thread_, notify_thread_, writer_thread_;
};

} // namespace aisid::resolver
