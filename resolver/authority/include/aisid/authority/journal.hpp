// The update journal of a primary zone: one entry per accepted UPDATE, the
// IXFR-shaped difference (RFC 1995 §4) between two serials. Each entry is
// framed and checksummed, appended and fdatasync'ed before the UPDATE is
// acknowledged, so an acknowledged change survives kill -9; a torn last
// entry (a crash mid-write) is detected on open and cut off.
#pragma once

#include "aisid/proto/records.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace aisid::resolver {

using proto::Diff;
using proto::Record;

std::string encode_diff(const Diff &d);
bool decode_diff(std::string_view payload, Diff &out);
uint32_t crc32c(std::string_view data);

/// Frames an entry: "AJN1" magic, u32 payload length, u32 CRC-32C, payload.
std::string frame_entry(std::string_view payload);

class Journal {
public:
    Journal() = default;
    ~Journal();
    Journal(const Journal &) = delete;
    Journal &operator=(const Journal &) = delete;
    Journal(Journal &&o) noexcept;
    Journal &operator=(Journal &&o) noexcept;

    /// Opens (creating) the journal and reads its entries. A torn or corrupt
    /// tail is cut off; `note` then says what was dropped.
    bool open(const std::string &path, std::vector<Diff> &entries, std::string &note, std::string &err);
    /// Appends one entry and syncs it to disk (fdatasync) before returning.
    bool append(const Diff &d, std::string &err);
    /// Group commit: stage() writes an entry after those staged before it,
    /// not yet synced; commit() makes all staged entries durable with one
    /// fdatasync. An UPDATE may be acknowledged only after the commit that
    /// covers its entry. A failed stage() cuts back its own entry only; a
    /// failed commit() (or discard()) cuts back every staged entry.
    bool stage(const Diff &d, std::string &err);
    bool commit(std::string &err);
    void discard();
    /// Entries staged and not yet committed.
    size_t staged() const { return staged_n_; }
    /// Replaces the journal by `keep` (write temp + fsync + rename).
    bool rewrite(const std::vector<Diff> &keep, std::string &err);
    const std::string &path() const { return path_; }
    bool is_open() const { return fd_ >= 0; }
    uint64_t size() const { return size_; }

private:
    std::string path_;
    int fd_ = -1;
    uint64_t size_ = 0;        // durable: up to the last commit
    uint64_t staged_end_ = 0;  // written: the staged entries end here
    size_t staged_n_ = 0;
};

} // namespace aisid::resolver
