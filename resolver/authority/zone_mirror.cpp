#include "aisid/authority/zone_mirror.hpp"

#include "aisid/resolver/config.hpp"
#include "aisid/core/dname.hpp"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace aisid::resolver {

using namespace proto;

namespace {

struct CurlFree {
    void operator()(CURL *c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
    void operator()(curl_slist *l) const { curl_slist_free_all(l); }
};

struct Sink {
    HttpResult *out;
    uint64_t max;
    bool too_big = false;
};

size_t on_body(char *p, size_t size, size_t n, void *ud) {
    auto *s = static_cast<Sink *>(ud);
    size_t len = size * n;
    if (s->out->body.size() + len > s->max) {
        s->too_big = true;
        return 0;  // curl aborts the transfer
    }
    s->out->body.append(p, len);
    return len;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.pop_back();
    size_t b = 0;
    while (b < s.size() && s[b] == ' ') ++b;
    return s.substr(b);
}

size_t on_header(char *p, size_t size, size_t n, void *ud) {
    auto *s = static_cast<Sink *>(ud);
    std::string h(p, size * n);
    if (h.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect): forget the last one's headers
        s->out->etag.clear();
        s->out->last_modified.clear();
        s->out->gzip = false;
    }
    size_t colon = h.find(':');
    if (colon == std::string::npos) return size * n;
    std::string k = h.substr(0, colon);
    for (char &c : k) c = ascii_lower(c);
    std::string v = trim(h.substr(colon + 1));
    if (k == "etag") s->out->etag = v;
    else if (k == "last-modified") s->out->last_modified = v;
    else if (k == "content-encoding") s->out->gzip = v.find("gzip") != std::string::npos;
    return size * n;
}

int on_progress(void *ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto *cancel = static_cast<const std::atomic<bool> *>(ud);
    return cancel && cancel->load() ? 1 : 0;  // non-zero aborts the transfer
}

std::string soa_text(uint32_t serial) { return "serial " + std::to_string(serial); }

} // namespace

HttpResult http_get(const HttpRequest &req) {
    HttpResult r;
    std::unique_ptr<CURL, CurlFree> c(curl_easy_init());
    if (!c) {
        r.error = "curl_easy_init failed";
        return r;
    }
    CURL *e = c.get();
    Sink sink{&r, req.max_bytes};
    std::unique_ptr<curl_slist, SlistFree> headers;
    auto add_header = [&](const std::string &h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
    if (!req.etag.empty()) add_header("If-None-Match: " + req.etag);
    if (!req.last_modified.empty()) add_header("If-Modified-Since: " + req.last_modified);
    curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
    // HTTPS only, certificates checked: the verification of the data is
    // the real trust, TLS keeps the fetch private and a mirror honest about
    // its name (never a clear-text downgrade, even through a redirect).
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, long(CURL_SSLVERSION_TLSv1_2));
    if (!req.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, req.ca_file.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    // A mirror that hangs (accepts, then sends nothing or trickles) costs at
    // most the whole-request deadline; one that stalls mid-body is cut
    // sooner by the low-speed limit (under 1 byte/s for 5 s, or the deadline).
    curl_easy_setopt(e, CURLOPT_TIMEOUT, long(std::max<uint32_t>(1, req.timeout_s)));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, long(std::max<uint32_t>(1, std::min<uint32_t>(req.timeout_s, 10))));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, long(std::max<uint32_t>(1, std::min<uint32_t>(req.timeout_s, 5))));
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");  // curl inflates; max_bytes counts the inflated body
    curl_easy_setopt(e, CURLOPT_USERAGENT, "aisidd");
    if (headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &sink);
    if (req.cancel) {  // a stop does not wait out a hanging mirror's deadline
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, &on_progress);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool> *>(req.cancel));
    }
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
    if (rc != CURLE_OK) {
        r.body.clear();
        r.error = sink.too_big ? "the zone is larger than " + std::to_string(req.max_bytes) + " bytes"
                               : std::string(errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return r;
    }
    if (r.status == 304) {
        r.kind = HttpResult::Kind::not_modified;
        r.body.clear();
    } else if (r.status == 200) {
        r.kind = HttpResult::Kind::ok;
    } else {
        r.error = "HTTP status " + std::to_string(r.status);
        r.body.clear();
    }
    return r;
}

ZoneMirror::ZoneMirror(MirrorOptions opt, PublishFn publish) : opt_(std::move(opt)), publish_(std::move(publish)) {}

ZoneMirror::~ZoneMirror() { stop(); }

void ZoneMirror::log(const std::string &s) const {
    if (opt_.log) opt_.log(s);
    else std::fprintf(stderr, "aisidd: %s\n", s.c_str());
}

time_t ZoneMirror::now() const { return opt_.now ? opt_.now() : ::time(nullptr); }

Expected<bool, std::string> ZoneMirror::start() {
    if (!opt_.policy) {
        auto p = ZonePolicy::make(false, {});
        opt_.policy = *p;
    }
    for (const std::string &s : opt_.zone_urls) {
        size_t eq = s.find('=');
        std::string zone = eq == std::string::npos ? std::string() : s.substr(0, eq);
        std::string url = eq == std::string::npos ? std::string() : s.substr(eq + 1);
        std::string w, zt = zone;
        if (!zt.empty() && zt.back() != '.') zt += '.';
        if (zone.empty() || !wire_from_text(zt, w) || url.rfind("https://", 0) != 0 || url.size() <= 8)
            return unexpected("bad --zone-url '" + s + "' (want ZONE=https://HOST[:PORT]/PATH)");
        MZone *z = nullptr;
        for (auto &m : zones_)
            if (m->origin_wire == w) z = m.get();
        if (!z) {
            zones_.push_back(std::make_unique<MZone>());
            z = zones_.back().get();
            z->origin_wire = w;
            z->text = name_to_text(w);
            z->path = opt_.state_dir + "/" + zone_file_stem(w) + ".zone";
        }
        for (const Source &src : z->sources)
            if (src.url == url) return unexpected("--zone-url " + s + " is given twice");
        z->sources.push_back(Source{url, redacted_upstream(url), {}, {}, 0, 0, 0});
    }
    if (!zones_.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(opt_.state_dir, ec);
        if (ec) return unexpected("cannot create " + opt_.state_dir + ": " + ec.message());
    }
    for (auto &z : zones_) load_state(*z);
    if (opt_.start_thread && !zones_.empty()) thread_ = std::thread([this] { loop(); });
    return true;
}

void ZoneMirror::stop() {
    if (stopping_.exchange(true)) return;
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::vector<ZonePtr> ZoneMirror::zones() const {
    std::lock_guard lk(mu_);
    std::vector<ZonePtr> o;
    for (auto &z : zones_)
        if (z->zone) o.push_back(z->zone);
    return o;
}

// The last verified copy, from a previous run: verified again (its
// signatures may have expired since), then served until a mirror answers.
void ZoneMirror::load_state(MZone &z) {
    struct stat st;
    if (::stat(z.path.c_str(), &st) != 0) return;
    std::ifstream f(z.path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string text = ss.str();
    ZoneVerdict v = verify_zone_text(text, z.origin_wire, opt_.policy->policy(z.origin_wire, now()));
    if (!v.ok) {
        refuse(z, v.reason, "ignoring the saved copy " + z.path + ": " + v.message);
        return;
    }
    ZoneLoadLimits limits;
    limits.max_includes = 0;
    auto loaded = load_zone_text(text, z.path, {}, limits);
    if (!loaded) {
        refuse(z, "rules", "ignoring the saved copy " + z.path + ": " + loaded.error().to_string());
        return;
    }
    std::lock_guard lk(mu_);
    z.zone = *loaded;
    z.verdict = v;
    z.verified_at = now();
    publish_(z.zone);
    log("zone " + z.text + ": serving the saved copy (" + soa_text(v.serial) + ") from " + z.path);
}

void ZoneMirror::refuse(MZone &z, const std::string &reason, const std::string &message) {
    opt_.policy->count_refusal(z.origin_wire, reason);
    log("zone " + z.text + ": refused (" + reason + "): " + message +
        (z.zone ? "; still serving " + soa_text(z.zone->serial()) : ""));
}

ZoneMirror::Outcome ZoneMirror::take(MZone &z, Source &src, HttpResult &r) {
    const std::string from = " from " + src.label;
    ZoneVerdict v = verify_zone_text(r.body, z.origin_wire, opt_.policy->policy(z.origin_wire, now()));
    if (!v.ok) {
        refuse(z, v.reason, v.message + from);
        return Outcome::refused;
    }
    if (z.zone) {
        uint32_t have = z.zone->serial();
        // The same serial is the same data, unless it was signed again
        // (ldns-signzone keeps the serial): signatures that last longer are
        // worth taking, so the saved copy does not expire under us.
        if (v.serial == have && !(v.key_tag && v.sig_expires > z.verdict.sig_expires)) return Outcome::unchanged;
        // RFC 1982: an older serial is a stale mirror or a replay; never roll back.
        if (v.serial != have && !serial_gt(v.serial, have)) {
            refuse(z, "serial_rollback", soa_text(v.serial) + from + " is older than " + soa_text(have));
            return Outcome::refused;
        }
    }
    ZoneLoadLimits limits;
    limits.max_includes = 0;  // a fetched zone reads nothing from this host's disk
    auto loaded = load_zone_text(r.body, z.path, {}, limits);
    if (!loaded) {
        refuse(z, "rules", loaded.error().to_string() + from);
        return Outcome::refused;
    }
    // Served first, then written (with how it verified) for the SDK, the NSS
    // module and the next start: the state file only ever holds verified data.
    time_t t = now();
    {
        std::lock_guard lk(mu_);
        z.zone = *loaded;
        z.verdict = v;
        z.verified_at = t;
    }
    publish_(*loaded);
    std::string err;
    std::string head = v.verified() ? verified_line(v, t, opt_.policy->anchor(z.origin_wire)
                                                             ? opt_.policy->anchor(z.origin_wire)->file
                                                             : std::string(),
                                                    src.label)
                                    : std::string();
    std::string data;
    data.reserve(head.size() + r.body.size() + 1);
    data += head;
    data += r.body;
    if (data.back() != '\n') data += '\n';
    if (!write_file_atomic(z.path, data, err)) log("zone " + z.text + ": " + err);
    log("zone " + z.text + ": " + soa_text(v.serial) + from +
        (v.zonemd ? ", ZONEMD verified" : ", no ZONEMD") +
        (v.key_tag ? ", signed by key " + std::to_string(v.key_tag) : "") + (r.gzip ? " (gzip)" : ""));
    return Outcome::published;
}

bool ZoneMirror::fetch(MZone &z) {
    std::lock_guard fl(fetch_mu_);
    const size_t n = z.sources.size();
    bool served = false, all_failed = true;
    for (size_t i = 0; i < n && !stopping_; ++i) {
        size_t idx = (z.preferred + i) % n;
        Source &src = z.sources[idx];
        HttpRequest req;
        req.url = src.url;
        if (z.zone) {  // only worth asking "changed?" when we hold a copy
            req.etag = src.etag;
            req.last_modified = src.last_modified;
        }
        req.ca_file = opt_.ca_file;
        req.timeout_s = opt_.fetch_timeout_s;
        req.max_bytes = opt_.max_bytes;
        req.cancel = &stopping_;
        HttpResult r = http_get(req);
        if (r.kind == HttpResult::Kind::failed) {
            {
                std::lock_guard lk(mu_);
                ++src.failed;
            }
            log("zone " + z.text + ": fetch from " + src.label + " failed: " + r.error);
            continue;
        }
        all_failed = false;
        if (r.kind == HttpResult::Kind::not_modified) {
            std::lock_guard lk(mu_);
            ++src.not_modified;
            z.preferred = idx;
            served = true;
            break;
        }
        {
            std::lock_guard lk(mu_);
            ++src.ok;
        }
        Outcome o = take(z, src, r);
        if (o == Outcome::published || o == Outcome::unchanged) {
            src.etag = r.etag;
            src.last_modified = r.last_modified;
            z.preferred = idx;
            served = true;
            break;
        }
        // Refused: another mirror may hold a good copy.
    }
    time_t t = now();
    uint32_t refresh = 3600, retry = 600, expire = 86400;
    if (z.zone) soa_timers(z.zone->soa().rdata.at(0), refresh, retry, expire);
    if (served) {
        z.failures = 0;
        z.next_refresh = t + std::clamp<uint32_t>(refresh, 1, 86400);
    } else {
        ++z.failures;
        if (all_failed && z.failures > 1 && z.failures % 10 == 0)
            log("zone " + z.text + ": no mirror answered " + std::to_string(z.failures) + " times in a row");
        // With a copy, the SOA retry timer; without one, soon (backing off to a minute).
        z.next_refresh = t + (z.zone ? std::clamp<uint32_t>(retry, 1, 3600)
                                     : std::min<uint32_t>(1u << std::min(z.failures, 6u), 60));
    }
    return served;
}

bool ZoneMirror::refresh_now(const std::string &zone_text) {
    std::string w, t = zone_text;
    if (!t.empty() && t.back() != '.') t += '.';
    if (!wire_from_text(t, w)) return false;
    for (auto &z : zones_)
        if (z->origin_wire == w) return fetch(*z);
    return false;
}

void ZoneMirror::republish() {
    std::vector<ZonePtr> zs;
    {
        std::lock_guard lk(mu_);
        for (auto &z : zones_)
            if (z->zone) zs.push_back(z->zone);
    }
    for (auto &z : zs) publish_(z);
}

void ZoneMirror::loop() {
    while (!stopping_) {
        MZone *due = nullptr;
        time_t t = now(), soonest = t + 3600;
        for (auto &z : zones_) {
            if (z->next_refresh <= t) {
                due = z.get();
                break;
            }
            soonest = std::min(soonest, z->next_refresh);
        }
        if (due) {
            fetch(*due);
            continue;
        }
        std::mutex m;
        std::unique_lock lk(m);
        cv_.wait_for(lk, std::chrono::milliseconds(std::clamp<long>((soonest - t) * 1000, 50, 1000)),
                     [&] { return stopping_.load(); });
    }
}

void ZoneMirror::append_metrics(std::string &out) const {
    auto esc = [](const std::string &s) {
        std::string o;
        for (char c : s) {
            if (c == '\\' || c == '"') o += '\\';
            if (c == '\n') {
                o += "\\n";
                continue;
            }
            o += c;
        }
        return o;
    };
    std::lock_guard lk(mu_);
    out += "# HELP aisidd_zone_fetches_total HTTPS fetches of mirrored zones, by mirror and result (ok: a zone "
           "came, not_modified: 304, failed: no answer, an HTTP error or a timeout).\n"
           "# TYPE aisidd_zone_fetches_total counter\n";
    for (auto &z : zones_)
        for (const Source &s : z->sources) {
            std::string l = "{zone=\"" + esc(z->text) + "\",mirror=\"" + esc(s.label) + "\",result=\"";
            out += "aisidd_zone_fetches_total" + l + "ok\"} " + std::to_string(s.ok) + "\n";
            out += "aisidd_zone_fetches_total" + l + "not_modified\"} " + std::to_string(s.not_modified) + "\n";
            out += "aisidd_zone_fetches_total" + l + "failed\"} " + std::to_string(s.failed) + "\n";
        }
    out += "# HELP aisidd_zone_mirror_serial SOA serial of each mirrored zone served (0: none yet).\n"
           "# TYPE aisidd_zone_mirror_serial gauge\n";
    for (auto &z : zones_)
        out += "aisidd_zone_mirror_serial{zone=\"" + esc(z->text) + "\"} " +
               std::to_string(z->zone ? z->zone->serial() : 0) + "\n";
    out += "# HELP aisidd_zone_verified_timestamp_seconds When the served copy of each mirrored zone was verified "
           "(Unix time; 0: not verified).\n# TYPE aisidd_zone_verified_timestamp_seconds gauge\n";
    for (auto &z : zones_)
        out += "aisidd_zone_verified_timestamp_seconds{zone=\"" + esc(z->text) + "\"} " +
               std::to_string(z->zone && z->verdict.verified() ? z->verified_at : 0) + "\n";
}

} // namespace aisid::resolver
