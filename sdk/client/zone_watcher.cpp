#include "aisid/client/zone_watcher.hpp"

#include "aisid/core/host_zones.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <poll.h>
#include <set>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

namespace aisid::sdk {

namespace {

std::atomic<uint64_t> g_next_store_id{1};

// A few stores per thread: an application rarely has more than one client.
struct TlEntry {
    uint64_t id = 0;
    uint64_t gen = 0;
    std::shared_ptr<const ZoneSet> set;
};
constexpr unsigned kTlSlots = 4;
thread_local TlEntry tl_cache[kTlSlots];
thread_local unsigned tl_next = 0;

// Editors write a temporary file and rename it over the zone: what identifies
// a version is the inode as well as size and times.
std::string file_sig(const std::string &path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return {};
    char b[160];
    std::snprintf(b, sizeof b, "%lu/%lu/%lld/%lld.%09ld/%lld.%09ld", static_cast<unsigned long>(st.st_dev),
                  static_cast<unsigned long>(st.st_ino), static_cast<long long>(st.st_size),
                  static_cast<long long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec,
                  static_cast<long long>(st.st_ctim.tv_sec), st.st_ctim.tv_nsec);
    return b;
}

std::string dir_of(const std::string &path) {
    auto s = path.find_last_of('/');
    if (s == std::string::npos) return ".";
    if (s == 0) return "/";
    return path.substr(0, s);
}

std::string base_of(const std::string &path) {
    auto s = path.find_last_of('/');
    return s == std::string::npos ? path : path.substr(s + 1);
}

// Debounce: an editor's save is several events; reload once they settle.
constexpr int kSettleMs = 20;

} // namespace

ZoneWatcher::ZoneWatcher(bool host, bool watch, std::vector<std::string> host_dirs)
    : id_(g_next_store_id.fetch_add(1)), host_(host), host_dirs_(std::move(host_dirs)) {
    if (host_dirs_.empty()) host_dirs_.assign(std::begin(kHostZoneDirs), std::end(kHostZoneDirs));
    {
        std::lock_guard lk(reload_mu_);
        // Host zones that fail are skipped, not fatal; load_errors() says which.
        reload_locked(load_errors_);
        reloads_.store(0);
        reload_errors_.store(0);
    }
    if (watch) {
        stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (stop_fd_ >= 0) watcher_ = std::thread([this] { watch_loop(); });
    }
}

ZoneWatcher::~ZoneWatcher() {
    if (watcher_.joinable()) {
        uint64_t one = 1;
        stop_.store(true);
        (void)!::write(stop_fd_, &one, sizeof one);
        watcher_.join();
    }
    if (stop_fd_ >= 0) ::close(stop_fd_);
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
}

const std::shared_ptr<const ZoneSet> &ZoneWatcher::current_shared() const {
    uint64_t g = snapshots_.generation();
    TlEntry *e = nullptr;
    for (TlEntry &t : tl_cache)
        if (t.id == id_) {
            if (t.gen == g) return t.set;
            e = &t;
            break;
        }
    if (!e) {
        e = &tl_cache[tl_next++ % kTlSlots];
        e->id = id_;
    }
    e->set = snapshots_.get(e->gen);
    return e->set;
}

std::shared_ptr<const ZoneSet> ZoneWatcher::current_ref() const {
    for (const TlEntry &t : tl_cache)
        if (t.id == id_) return t.set;
    return snapshot();
}

std::shared_ptr<const ZoneSet> ZoneWatcher::snapshot() const { return snapshots_.get(); }

std::vector<std::string> ZoneWatcher::load_errors() const {
    std::lock_guard lk(const_cast<std::mutex &>(reload_mu_));
    return load_errors_;
}

std::vector<std::string> ZoneWatcher::files_locked() const {
    std::vector<std::string> out;
    if (host_) out = zone_files_in(host_dirs_);
    for (const std::string &f : app_files_) out.push_back(f);
    return out;
}

bool ZoneWatcher::add_file(const std::string &path, std::string &err) {
    auto z = load_zone_file(path);
    if (!z) {
        err = z.error().to_string();
        return false;
    }
    {
        std::lock_guard lk(reload_mu_);
        bool known = false;
        for (const std::string &f : app_files_) known |= f == path;
        if (!known) app_files_.push_back(path);
        files_[path] = FileState{file_sig(path), *z};
        std::vector<std::string> errs;
        reload_locked(errs);
    }
    // The watcher must now also watch this file's directory.
    dirty_watches_.store(true);
    if (stop_fd_ >= 0) {
        uint64_t one = 1;
        (void)!::write(stop_fd_, &one, sizeof one);
    }
    return true;
}

bool ZoneWatcher::reload(std::string &err) {
    std::lock_guard lk(reload_mu_);
    std::vector<std::string> errs;
    bool ok = reload_locked(errs);
    for (const std::string &e : errs) err += (err.empty() ? "" : "; ") + e;
    return ok;
}

bool ZoneWatcher::reload_locked(std::vector<std::string> &errs) {
    bool ok = true;
    bool changed = false;
    std::vector<std::string> list = files_locked();
    std::set<std::string> seen;
    std::vector<ZonePtr> zones;
    for (const std::string &path : list) {
        if (!seen.insert(path).second) continue;
        FileState &st = files_[path];
        std::string sig = file_sig(path);
        if (sig.empty()) {
            // Gone: a deleted zone file takes its zone away.
            if (st.zone) changed = true;
            files_.erase(path);
            continue;
        }
        if (sig != st.sig) {
            auto z = load_zone_file(path);
            st.sig = sig;
            if (z) {
                st.zone = *z;
                changed = true;
            } else {
                // A broken version keeps the last good one (as aisidd on SIGHUP).
                ok = false;
                errs.push_back(z.error().to_string());
                reload_errors_.fetch_add(1, std::memory_order_relaxed);
            }
        }
        if (st.zone) zones.push_back(st.zone);
    }
    for (auto it = files_.begin(); it != files_.end();) {
        if (!seen.count(it->first)) {
            if (it->second.zone) changed = true;
            it = files_.erase(it);
        } else {
            ++it;
        }
    }
    // The file states may have changed before (add_file): compare with what is published.
    std::vector<const Zone *> now;
    for (const ZonePtr &z : zones) now.push_back(z.get());
    if (now != published_) changed = true;
    if (!changed) return ok;
    published_ = std::move(now);
    std::shared_ptr<const ZoneSet> set;
    {
        auto s = std::make_shared<ZoneSet>();
        for (ZonePtr &z : zones) s->add(std::move(z));  // later files replace earlier zones of the same origin
        set = std::move(s);
    }
    set = snapshots_.publish(std::move(set));
    retired_.push_back(std::move(set));
    collect_retired_locked();
    reloads_.fetch_add(1, std::memory_order_relaxed);
    return ok;
}

void ZoneWatcher::collect_retired_locked() {
    // use_count() == 1: only this list holds it; no reader can take it again
    // (readers only copy the current one). A reader's thread-local copy keeps it here.
    retired_.erase(std::remove_if(retired_.begin(), retired_.end(),
                                  [](const std::shared_ptr<const ZoneSet> &s) { return s.use_count() == 1; }),
                   retired_.end());
}

int ZoneWatcher::make_watches() {
    // A fresh inotify instance each time: the watch set follows the file list,
    // and the caller re-reads the files after this so no change falls between.
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
    watches_.clear();
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ < 0) return -1;
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB |
                          IN_DELETE_SELF | IN_MOVE_SELF;
    std::map<std::string, std::pair<bool, std::set<std::string>>> dirs;
    {
        std::lock_guard lk(reload_mu_);
        if (host_)
            for (const std::string &d : host_dirs_) dirs[d].first = true;
        for (const std::string &f : app_files_) dirs[dir_of(f)].second.insert(base_of(f));
    }
    for (auto &[d, what] : dirs) {
        int wd = ::inotify_add_watch(inotify_fd_, d.c_str(), mask);
        std::string dir = d;
        // A host zone directory that does not exist yet: watch the closest
        // existing ancestor for its creation.
        while (wd < 0 && errno == ENOENT && dir != "/" && dir != ".") {
            dir = dir_of(dir);
            wd = ::inotify_add_watch(inotify_fd_, dir.c_str(), IN_CREATE | IN_MOVED_TO);
            if (wd >= 0) watches_[wd] = {dir, true};
        }
        if (wd >= 0 && dir == d) watches_[wd] = {d, what.first};
    }
    return inotify_fd_;
}

void ZoneWatcher::watch_loop() {
    std::set<std::string> app_names;
    auto refresh = [&] {
        make_watches();
        {
            std::lock_guard lk(reload_mu_);
            app_names.clear();
            for (const std::string &f : app_files_) app_names.insert(f);
        }
        std::string err;
        reload(err);
    };
    refresh();
    alignas(inotify_event) char buf[16 * (sizeof(inotify_event) + NAME_MAX + 1)];
    while (!stop_.load()) {
        pollfd p[2] = {{stop_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
        bool pending_gc;
        {
            std::lock_guard lk(reload_mu_);
            collect_retired_locked();
            pending_gc = !retired_.empty();
        }
        // While old snapshots wait for their readers, look again every second.
        int n = ::poll(p, inotify_fd_ >= 0 ? 2 : 1, pending_gc ? 1000 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (n == 0) continue;  // only the retired snapshots' second
        if (p[0].revents & POLLIN) {
            uint64_t v;
            (void)!::read(stop_fd_, &v, sizeof v);
            if (stop_.load()) return;
            if (dirty_watches_.exchange(false)) refresh();
            continue;
        }
        bool relevant = false, rewatch = false;
        // Collect events until they settle, then reload once.
        for (;;) {
            ssize_t r = ::read(inotify_fd_, buf, sizeof buf);
            if (r > 0) {
                for (char *q = buf; q < buf + r;) {
                    auto *ev = reinterpret_cast<inotify_event *>(q);
                    q += sizeof(inotify_event) + ev->len;
                    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW)) {
                        rewatch = relevant = true;
                        continue;
                    }
                    auto w = watches_.find(ev->wd);
                    if (w == watches_.end()) continue;
                    std::string name = ev->len ? std::string(ev->name) : std::string();
                    std::string full = w->second.first + "/" + name;
                    if (w->second.second || app_names.count(full)) relevant = true;
                    if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && (ev->mask & IN_ISDIR)) rewatch = true;
                    // A watched ancestor saw a directory appear: re-aim the watches.
                    if (w->second.second && (ev->mask & IN_CREATE)) rewatch = true;
                }
                continue;
            }
            pollfd w1{inotify_fd_, POLLIN, 0};
            if (::poll(&w1, 1, kSettleMs) <= 0) break;
        }
        if (rewatch) {
            refresh();
        } else if (relevant) {
            std::string err;
            reload(err);
        }
    }
}

} // namespace aisid::sdk
