#include "aisid/resolver/control.hpp"

#include "aisid/core/dname.hpp"
#include "aisid/core/log.hpp"
#include "aisid/resolver/metrics.hpp"

#include <grp.h>
#include <ldns/ldns.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

namespace aisid::resolver {

namespace {

constexpr int kRequestTimeoutMs = 2000;
constexpr int kSendStallSeconds = 10;
constexpr size_t kDumpChunk = 64 << 10;

std::string utc(int64_t unix_s) {
    if (unix_s <= 0) return "never";
    time_t t = static_cast<time_t>(unix_s);
    tm tmv{};
    gmtime_r(&t, &tmv);
    char b[32];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    return b;
}

// Inside "...": quotes and backslashes escaped, control bytes as \xHH, so a
// line stays one line and one field.
std::string quoted(const std::string &s) {
    std::string o;
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        if (c < 0x20 || c == 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", c);
            o += b;
        } else {
            o += char(c);
        }
    }
    return o;
}

std::string fmt(const char *f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

// The same series as /metrics (render_metrics), without the HELP/TYPE
// comments: one "name{labels} value" a line, so stats and a scrape agree.
std::string stats_text(const Shared &sh) {
    std::string all = render_metrics(sh), out;
    size_t at = 0;
    while (at < all.size()) {
        size_t nl = all.find('\n', at);
        if (nl == std::string::npos) nl = all.size();
        if (all[at] != '#' && nl > at) out.append(all, at, nl - at).push_back('\n');
        at = nl + 1;
    }
    return out;
}

std::string zone_status_text(const Shared &sh) {
    std::vector<AuthorityZoneStatus> auth;
    if (sh.authority) auth = sh.authority->zone_status();
    std::vector<ZoneInfo> files = sh.zone_info();
    auto set = sh.zones.current();
    std::string out;
    std::vector<std::string> shown;
    auto line_for = [&](const std::string &origin, const uint32_t *served) {
        const ZoneInfo *fi = nullptr;
        for (const ZoneInfo &z : files)
            if (z.origin == origin) fi = &z;
        const AuthorityZoneStatus *as = nullptr;
        for (const AuthorityZoneStatus &z : auth)
            if (z.origin == origin) as = &z;
        std::string l = origin;
        bool has = served || (as && as->has_copy);
        l += " serial=" + (has ? std::to_string(served ? *served : as->serial) : std::string("none"));
        if (as && as->role == "secondary") {
            l += " source=axfr:" + as->source + " refreshed=" + utc(as->changed_unix) +
                 " next-refresh=" + utc(as->next_refresh_unix) + " failures=" + std::to_string(as->failures);
            if (!as->last_error.empty()) l += " last-error=\"" + quoted(as->last_error) + "\"";
        } else {
            if (fi) l += " source=file:" + fi->file + " loaded=" + utc(int64_t(fi->loaded_unix));
            else l += " source=unknown";
            if (as) {
                l += " journal=" + as->source + " updated=" + utc(as->changed_unix) +
                     " unsaved-changes=" + std::to_string(as->pending_compaction);
            }
        }
        out += l + "\n";
        shown.push_back(origin);
    };
    for (const ZonePtr &z : set->zones()) {
        uint32_t serial = z->serial();
        line_for(z->origin_text(), &serial);
    }
    // Secondaries not served yet (no transfer has worked so far).
    for (const AuthorityZoneStatus &z : auth)
        if (std::find(shown.begin(), shown.end(), z.origin) == shown.end()) line_for(z.origin, nullptr);
    return out;
}

std::string upstreams_text(const Shared &sh) {
    auto rt = sh.runtime();
    std::string out;
    size_t n = rt->upstreams.size();
    uint32_t pref = n ? sh.preferred_upstream.load(std::memory_order_relaxed) % n : 0;
    for (size_t i = 0; i < n; ++i) {
        const UpstreamHealth &u = *rt->upstreams[i];
        out += redacted_upstream(u.up.text);
        out += u.healthy() ? " state=up" : " state=down";
        out += " queries=" + std::to_string(u.queries.load(std::memory_order_relaxed));
        out += " answers=" + std::to_string(u.answers.load(std::memory_order_relaxed));
        out += " failures=" + std::to_string(u.failures.load(std::memory_order_relaxed));
        out += " failures-in-a-row=" + std::to_string(u.consecutive_failures.load(std::memory_order_relaxed));
        out += " rtt-ms=" + fmt("%.3f", double(u.rtt_us_ewma.load(std::memory_order_relaxed)) / 1000.0);
        if (i == pref) out += " asked-first";
        out += "\n";
    }
    if (!n) out = "; no upstreams: names outside the local zones get SERVFAIL\n";
    return out;
}

struct PktFree {
    void operator()(ldns_pkt *p) const { ldns_pkt_free(p); }
};
struct CharFree {
    void operator()(char *p) const { free(p); }
};

// One cached answer as zone-file text: a comment with the question and its
// state, then its records with the TTLs a client would get now (0 when stale).
void dump_entry(const CacheEntry &e, uint64_t now_ms, std::string &out) {
    if (e.key.size() <= Cache::kKeyTail) return;
    const size_t nlen = e.key.size() - Cache::kKeyTail;
    const auto *tail = reinterpret_cast<const uint8_t *>(e.key.data()) + nlen;
    const uint16_t qtype = uint16_t(tail[0] << 8 | tail[1]), qclass = uint16_t(tail[2] << 8 | tail[3]);
    const bool stale = now_ms >= e.expires_ms;
    const uint64_t elapsed = now_ms > e.stored_ms ? (now_ms - e.stored_ms) / 1000 : 0;
    // Header, the question as the key holds it, the stored body: the same
    // offsets as the upstream's answer (its question had this length), so
    // compression pointers in the body still hold.
    std::string msg = {0, 0, char(0x81), char(0x80 | (e.flags & 0xf)), 0, 1,
                       char(e.an >> 8), char(e.an), char(e.ns >> 8), char(e.ns), char(e.ar >> 8), char(e.ar)};
    msg.append(e.key, 0, nlen);
    msg.append(e.key, nlen, 4);
    const size_t body_at = msg.size();
    msg += e.body;
    for (uint16_t off : e.ttl_offs) {
        if (body_at + off + 4 > msg.size()) continue;
        auto *p = reinterpret_cast<uint8_t *>(msg.data() + body_at + off);
        uint32_t t = uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
        uint32_t nt = stale ? 0 : (t > elapsed ? t - uint32_t(elapsed) : 0);
        p[0] = uint8_t(nt >> 24), p[1] = uint8_t(nt >> 16), p[2] = uint8_t(nt >> 8), p[3] = uint8_t(nt);
    }
    std::unique_ptr<char, CharFree> type(ldns_rr_type2str(ldns_rr_type(qtype)));
    std::unique_ptr<char, CharFree> cls(ldns_rr_class2str(ldns_rr_class(qclass)));
    const ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, e.flags & 0xf);
    out += "; " + name_to_text(e.key.substr(0, nlen)) + " " + (cls ? cls.get() : "?") + " " + (type ? type.get() : "?");
    out += std::string(" rcode=") + (rc ? rc->name : std::to_string(e.flags & 0xf).c_str());
    if (e.negative) out += " negative";
    if (tail[4] & 1) out += " +do";
    if (tail[4] & 2) out += " +cd";
    if (stale)
        out += " stale expired-ago=" + std::to_string((now_ms - e.expires_ms) / 1000) +
               " stale-for=" + std::to_string(e.stale_until_ms > now_ms ? (e.stale_until_ms - now_ms + 999) / 1000 : 0);
    else
        out += " expires-in=" + std::to_string((e.expires_ms - now_ms + 999) / 1000);
    out += "\n";
    ldns_pkt *raw = nullptr;
    if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t *>(msg.data()), msg.size()) != LDNS_STATUS_OK) {
        out += ";   (not readable as a message)\n";
        return;
    }
    std::unique_ptr<ldns_pkt, PktFree> pkt(raw);
    for (ldns_rr_list *sec : {ldns_pkt_answer(raw), ldns_pkt_authority(raw), ldns_pkt_additional(raw)}) {
        for (size_t i = 0; sec && i < ldns_rr_list_rr_count(sec); ++i) {
            std::unique_ptr<char, CharFree> t(ldns_rr2str(ldns_rr_list_rr(sec, i)));
            if (t) out += t.get();
        }
    }
}

bool printable(std::string_view s) {
    for (unsigned char c : s)
        if ((c < 0x20 && c != '\t') || c >= 0x7f) return false;
    return true;
}

std::vector<std::string_view> split(std::string_view s) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
        size_t b = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
        if (i > b) out.push_back(s.substr(b, i - b));
    }
    return out;
}

} // namespace

const char *control_commands() {
    return "stats, flush NAME, flush-all, reload, zone-status, upstreams, dump-cache";
}

void control_execute(Shared &sh, std::string_view line, const std::function<std::string(std::string &)> &reload,
                     const std::function<bool(std::string_view)> &write) {
    auto error = [&](const std::string &m) { write("error " + m + "\n"); };
    if (line.size() > kControlMaxRequest)
        return error("request longer than " + std::to_string(kControlMaxRequest) + " bytes");
    if (!printable(line)) return error("malformed request: control characters or non-ASCII bytes");
    auto w = split(line);
    if (w.empty()) return error(std::string("empty request; commands: ") + control_commands());
    const std::string cmd(w[0]);
    auto args = [&](size_t n) {
        if (w.size() == n + 1) return true;
        error(cmd + " takes " + (n ? std::to_string(n) + " argument" : std::string("no arguments")));
        return false;
    };
    if (cmd == "stats") {
        if (args(0)) write("ok\n" + stats_text(sh));
    } else if (cmd == "flush") {
        if (!args(1)) return;
        WireName n;
        if (!name_from_text(w[1], n)) return error("bad name '" + std::string(w[1]) + "'");
        size_t k = sh.cache.erase_name(n.wire());
        write("ok\nflushed " + std::to_string(k) + " answer(s) for " + name_to_text(std::string(n.wire())) + "\n");
    } else if (cmd == "flush-all") {
        if (!args(0)) return;
        size_t k = sh.cache.entries();
        sh.cache.clear();
        write("ok\nflushed " + std::to_string(k) + " answer(s)\n");
    } else if (cmd == "reload") {
        if (!args(0)) return;
        std::string summary;
        std::string e = reload(summary);
        if (!e.empty()) return error("reload failed, nothing changed: " + e);
        write("ok\n" + summary + "\n");
    } else if (cmd == "zone-status") {
        if (args(0)) write("ok\n" + zone_status_text(sh));
    } else if (cmd == "upstreams") {
        if (args(0)) write("ok\n" + upstreams_text(sh));
    } else if (cmd == "dump-cache") {
        if (!args(0)) return;
        // Streamed in chunks: a large cache never sits in memory twice.
        std::string buf = "ok\n; aisidd cache: " + std::to_string(sh.cache.entries()) +
                          " answer(s); TTLs as a client would get them now\n";
        bool alive = true;
        const uint64_t now = now_ms_monotonic();
        sh.cache.for_each(now, [&](const CacheEntry &e) {
            if (!alive) return;
            dump_entry(e, now, buf);
            if (buf.size() >= kDumpChunk) {
                alive = write(buf);
                buf.clear();
            }
        });
        if (alive) write(buf);
    } else {
        error("unknown command '" + cmd + "'; commands: " + control_commands());
    }
}

ControlServer::~ControlServer() { stop(); }

std::string ControlServer::open(const std::string &path) {
    auto fail = [&](const std::string &why) { return "--control-socket " + path + ": " + why; };
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof a.sun_path) return fail("path empty or too long");
    std::memcpy(a.sun_path, path.data(), path.size());
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return fail("exists and is not a socket");
        // A socket file: in use by a running aisidd, or left by one that died.
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
        if (probe >= 0) close(probe);
        if (live) return fail("another process serves it");
        if (unlink(path.c_str()) != 0) return fail(std::strerror(errno));
    }
    if (struct group *g = getgrnam(kControlGroup)) {
        group_ = g->gr_gid;
        have_group_ = true;
    }
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return fail(std::strerror(errno));
    std::string err;
    // Bound, then its mode and group set, and only then listening: nobody can
    // connect while the file still has the umask's mode.
    if (bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        err = fail(std::strerror(errno));
    } else if ((have_group_ && chown(path.c_str(), uid_t(-1), group_) != 0) ||
               chmod(path.c_str(), have_group_ ? 0660 : 0600) != 0 || listen(fd_, 16) != 0) {
        err = fail(std::strerror(errno));
        unlink(path.c_str());
    }
    if (!err.empty()) {
        close(fd_);
        fd_ = -1;
        return err;
    }
    path_ = path;
    if (lstat(path.c_str(), &st) == 0) ino_ = st.st_ino, dev_ = st.st_dev;
    return {};
}

void ControlServer::serve() {
    if (fd_ < 0 || th_.joinable()) return;
    stopping_.store(false);
    th_ = std::thread([this] { run(); });
}

void ControlServer::stop() {
    stopping_.store(true);
    if (th_.joinable()) th_.join();
    if (fd_ >= 0) {
        close(fd_);
        fd_ = -1;
        // Only our own file: another aisidd may have taken the path since.
        struct stat st;
        if (lstat(path_.c_str(), &st) == 0 && st.st_ino == ino_ && st.st_dev == dev_) unlink(path_.c_str());
    }
}

void ControlServer::run() {
    while (!stopping_.load() && !sh_.stop.load()) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        serve(c);
        close(c);
    }
}

bool ControlServer::permitted(int fd, std::string &who) const {
    ucred cr{};
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
        who = "unknown peer";
        return false;
    }
    who = "uid " + std::to_string(cr.uid) + " pid " + std::to_string(cr.pid);
    if (cr.uid == 0 || cr.uid == geteuid()) return true;
    if (!have_group_) return false;
    if (cr.gid == group_) return true;
    // Supplementary groups (Linux 4.13+): the peer's own, not the group file's.
    std::vector<gid_t> groups(64);
    for (int i = 0; i < 2; ++i) {
        socklen_t gl = socklen_t(groups.size() * sizeof(gid_t));
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &gl) == 0) {
            groups.resize(gl / sizeof(gid_t));
            return std::find(groups.begin(), groups.end(), group_) != groups.end();
        }
        if (errno != ERANGE) return false;
        groups.resize(gl / sizeof(gid_t) + 1);
    }
    return false;
}

void ControlServer::serve(int fd) {
    auto send_all = [fd](std::string_view s) {
        while (!s.empty()) {
            ssize_t k = send(fd, s.data(), s.size(), MSG_NOSIGNAL);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) return false;  // gone, or nothing taken for kSendStallSeconds
            s.remove_prefix(size_t(k));
        }
        return true;
    };
    timeval tv{kSendStallSeconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    // The request line, within kRequestTimeoutMs.
    std::string req;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRequestTimeoutMs);
    bool ended = false;
    while (req.find('\n') == std::string::npos && req.size() <= kControlMaxRequest) {
        int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
                           .count());
        pollfd p{fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        char buf[1024];
        ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) {
            ended = true;
            break;
        }
        req.append(buf, size_t(k));
    }
    // Linux resets a Unix stream whose peer closes with input unread (the
    // client would see ECONNRESET, not the reply): the request is read before
    // any answer, and what follows it is drained after (finish()).
    auto finish = [fd] {
        shutdown(fd, SHUT_WR);
        char sink[4096];
        size_t drained = 0;
        pollfd p{fd, POLLIN, 0};
        while (drained < (64u << 10) && poll(&p, 1, 200) == 1) {
            ssize_t k = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
            if (k <= 0) break;
            drained += size_t(k);
        }
    };
    struct Finish {
        std::function<void()> f;
        ~Finish() { f(); }
    } at_end{finish};
    std::string who;
    if (!permitted(fd, who)) {
        AISID_LOG(LogLevel::warn, "control: refused " + who + " (not root, not aisidd's user, not in group " +
                                       kControlGroup + ")");
        send_all(std::string("refused only root, aisidd's own user and group ") + kControlGroup + " may control aisidd\n");
        return;
    }
    size_t nl = req.find('\n');
    if (nl == std::string::npos && req.size() > kControlMaxRequest) {
        send_all("error request longer than " + std::to_string(kControlMaxRequest) + " bytes\n");
        return;
    }
    if (nl == std::string::npos && !ended) {
        send_all("error no request line within " + std::to_string(kRequestTimeoutMs / 1000) + " s\n");
        return;
    }
    std::string_view line(req.data(), nl == std::string::npos ? req.size() : nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const bool changes = line.rfind("flush", 0) == 0 || line.rfind("reload", 0) == 0;
    AISID_LOG(changes ? LogLevel::info : LogLevel::debug,
               "control: " + who + ": " + (printable(line) ? std::string(line.substr(0, 80)) : "(malformed)"));
    control_execute(sh_, line, reload_, send_all);
}

} // namespace aisid::resolver
