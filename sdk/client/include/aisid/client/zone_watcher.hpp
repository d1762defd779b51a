// Zone data for a client: the host's zone files and the application's, loaded
// into immutable ZoneSet snapshots. A watcher thread (inotify on the zone
// directories) re-reads changed files and publishes a new snapshot; readers
// never take a lock on the hot path: they compare a generation counter with the
// one their thread-local cached snapshot came from.
#pragma once

#include "aisid/core/published.hpp"
#include "aisid/core/zone_set.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace aisid::sdk {

class ZoneWatcher {
public:
    /// host: start with host_zone_files(); watch: run the inotify watcher thread.
    /// `host_dirs` overrides kHostZoneDirs (tests).
    ZoneWatcher(bool host, bool watch, std::vector<std::string> host_dirs = {});
    ~ZoneWatcher();
    ZoneWatcher(const ZoneWatcher &) = delete;
    ZoneWatcher &operator=(const ZoneWatcher &) = delete;

    /// Loads a file now and keeps it (it replaces a zone of the same origin).
    /// On failure: false and "FILE:LINE: why" in err; nothing changes.
    bool add_file(const std::string &path, std::string &err);
    /// Re-reads what changed and publishes a snapshot when something did.
    /// False when some file failed (its last good version, if any, is kept).
    bool reload(std::string &err);

    /// The current snapshot. Lock-free unless a new one was published since
    /// this thread last looked. The pointer stays valid until this thread calls
    /// current() again (on any store).
    const ZoneSet *current() const { return current_shared().get(); }
    /// The same, as this thread's counted reference (copy it to keep the snapshot).
    const std::shared_ptr<const ZoneSet> &current_shared() const;
    /// The snapshot current() gave this thread, counted (no lock; call current() first).
    std::shared_ptr<const ZoneSet> current_ref() const;
    /// A counted reference to the current snapshot (for longer use).
    std::shared_ptr<const ZoneSet> snapshot() const;
    uint64_t generation() const { return snapshots_.generation(); }

    uint64_t reloads() const { return reloads_.load(std::memory_order_relaxed); }
    uint64_t reload_errors() const { return reload_errors_.load(std::memory_order_relaxed); }
    /// Messages of the files that failed on the first load (host zones are skipped, not fatal).
    std::vector<std::string> load_errors() const;

private:
    struct FileState {
        std::string sig;  // dev/inode/size/mtime/ctime when it was last read
        ZonePtr zone;     // last good version (may be null)
    };
    bool reload_locked(std::vector<std::string> &errs);
    std::vector<std::string> files_locked() const;
    void watch_loop();
    int make_watches();

    const uint64_t id_;
    const bool host_;
    std::vector<std::string> host_dirs_;
    Published<ZoneSet> snapshots_{std::make_shared<const ZoneSet>(), 0};
    std::mutex reload_mu_;                      // one reload at a time; guards what follows
    std::vector<std::string> app_files_;
    std::map<std::string, FileState> files_;
    std::vector<std::string> load_errors_;
    std::vector<const Zone *> published_;  // the zones of the current snapshot
    // Snapshots replaced by a reload, kept here until no reader holds them, so
    // that freeing a big zone happens on the reloading thread, never on a
    // resolving one (guarded by reload_mu_).
    std::vector<std::shared_ptr<const ZoneSet>> retired_;
    void collect_retired_locked();
    std::map<int, std::pair<std::string, bool>> watches_;  // wd -> (dir, any file matters)
    std::atomic<uint64_t> reloads_{0}, reload_errors_{0};
    int inotify_fd_ = -1;
    int stop_fd_ = -1;
    std::atomic<bool> dirty_watches_{false};
    std::atomic<bool> stop_{false};
    std::thread watcher_;
};

} // namespace aisid::sdk
