// Zones fetched over HTTPS from any mirror or CDN (the RFC 8806 way of
// holding the root zone locally, and Unbound's auth-zone `url:`), trusted
// because they verify (zone_verify.hpp), not because of where they came from.
//
// For each `--zone-url ZONE=URL` zone: one or more mirrors, tried in turn
// (the one that answered last first); conditional requests (If-None-Match,
// If-Modified-Since) so an unchanged zone costs a 304; gzip accepted; the
// SOA refresh and retry timers; a deadline per request so a hanging mirror
// costs at most --zone-fetch-timeout before the next is tried. A fetched
// zone is verified, its serial must move forward (RFC 1982: never roll
// back), it must pass the SPEC §3 rules, and only then is it published and
// written to the state directory for the SDK and the NSS module. A refused
// copy changes nothing; the reason is logged and counted.
#pragma once

#include "aisid/core/zone_set.hpp"
#include "aisid/authority/zone_verify.hpp"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace aisid::resolver {

/// One HTTPS GET, as the mirror makes it (also used by the tests).
struct HttpRequest {
    std::string url;
    std::string etag;           // sent as If-None-Match when not empty
    std::string last_modified;  // sent as If-Modified-Since when not empty
    std::string ca_file;        // empty: the system's CA store
    uint32_t timeout_s = 30;    // the whole request, connect included
    uint64_t max_bytes = uint64_t{64} << 20;  // decoded body
    const std::atomic<bool> *cancel = nullptr;  // set: the request ends at once (aisidd stopping)
};
struct HttpResult {
    enum class Kind { ok, not_modified, failed } kind = Kind::failed;
    long status = 0;
    std::string body, etag, last_modified;
    std::string error;  // for failed
    bool gzip = false;  // the body came compressed
};
HttpResult http_get(const HttpRequest &req);

struct MirrorOptions {
    std::vector<std::string> zone_urls;  // ZONE=https://...; several per zone: failover in the order given
    std::shared_ptr<const ZonePolicy> policy;
    uint32_t fetch_timeout_s = 30;
    std::string ca_file;
    std::string state_dir = "/var/lib/aisid/zones";
    uint64_t max_bytes = uint64_t{64} << 20;
    bool start_thread = true;  // false: tests call refresh_now()
    std::function<time_t()> now;
    std::function<void(const std::string &)> log;
};

class ZoneMirror {
public:
    using PublishFn = std::function<void(ZonePtr)>;
    ZoneMirror(MirrorOptions opt, PublishFn publish);
    ~ZoneMirror();

    /// Parses the options, serves the last verified copies from the state
    /// directory (verified again) and starts fetching.
    Expected<bool, std::string> start();
    void stop();
    /// Fetches a zone now; true when a mirror gave a copy that is served
    /// (new or unchanged).
    bool refresh_now(const std::string &zone_text);
    /// Publishes every mirrored zone again (after a SIGHUP reload replaced the set).
    void republish();
    /// The copies it serves now.
    std::vector<ZonePtr> zones() const;
    void append_metrics(std::string &out) const;

private:
    struct Source {
        std::string url;
        std::string label;  // the URL without credentials or query (metrics, logs)
        std::string etag, last_modified;
        uint64_t ok = 0, not_modified = 0, failed = 0;
    };
    struct MZone {
        std::string origin_wire, text, path;
        std::vector<Source> sources;
        size_t preferred = 0;
        ZonePtr zone;
        ZoneVerdict verdict;
        time_t verified_at = 0;
        time_t next_refresh = 0;
        unsigned failures = 0;
    };
    enum class Outcome { published, unchanged, refused, failed };

    void log(const std::string &s) const;
    time_t now() const;
    bool fetch(MZone &z);
    Outcome take(MZone &z, Source &src, HttpResult &r);
    void refuse(MZone &z, const std::string &reason, const std::string &message);
    void load_state(MZone &z);
    void loop();

    MirrorOptions opt_;
    PublishFn publish_;
    mutable std::mutex mu_;  // zones_' contents (the loop, metrics and republish)
    std::vector<std::unique_ptr<MZone>> zones_;
    std::mutex fetch_mu_;    // one fetch at a time (the loop and refresh_now)
    std::condition_variable cv_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

} // namespace aisid::resolver
