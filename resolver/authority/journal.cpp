#include "aisid/authority/journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace aisid::resolver {

using namespace proto;

namespace {

constexpr char kMagic[4] = {'A', 'J', 'N', '1'};
constexpr size_t kHeader = 12;
constexpr uint32_t kMaxEntry = 64u << 20;

void put16(std::string &s, uint16_t v) {
    s.push_back(static_cast<char>(v >> 8));
    s.push_back(static_cast<char>(v));
}
void put32(std::string &s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
}

struct In {
    std::string_view s;
    size_t p = 0;
    bool ok = true;
    uint32_t n(int bytes) {
        if (p + static_cast<size_t>(bytes) > s.size()) {
            ok = false;
            return 0;
        }
        uint32_t v = 0;
        for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(s[p++]);
        return v;
    }
    std::string bytes(size_t k) {
        if (p + k > s.size()) {
            ok = false;
            return {};
        }
        std::string out(s.substr(p, k));
        p += k;
        return out;
    }
};

void put_records(std::string &s, const std::vector<Record> &rs) {
    put32(s, static_cast<uint32_t>(rs.size()));
    for (const Record &r : rs) {
        s.push_back(static_cast<char>(r.owner.size()));
        s += r.owner;
        put16(s, r.type);
        put32(s, r.ttl);
        put16(s, static_cast<uint16_t>(r.rdata.size()));
        s += r.rdata;
    }
}

bool get_records(In &in, std::vector<Record> &rs) {
    uint32_t n = in.n(4);
    if (!in.ok || n > in.s.size()) return false;
    rs.reserve(n);
    for (uint32_t i = 0; i < n && in.ok; ++i) {
        Record r;
        r.owner = in.bytes(in.n(1));
        r.type = static_cast<uint16_t>(in.n(2));
        r.ttl = in.n(4);
        r.rdata = in.bytes(in.n(2));
        if (r.owner.empty() || static_cast<uint8_t>(r.owner.back()) != 0) return false;
        rs.push_back(std::move(r));
    }
    return in.ok;
}

bool write_all(int fd, std::string_view d) {
    size_t off = 0;
    while (off < d.size()) {
        ssize_t n = ::write(fd, d.data() + off, d.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        off += static_cast<size_t>(n);
    }
    return true;
}

} // namespace

uint32_t crc32c(std::string_view data) {
    static uint32_t table[256] = {};
    static bool init = [] {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return true;
    }();
    (void)init;
    uint32_t c = 0xffffffffu;
    for (char ch : data) c = table[(c ^ static_cast<uint8_t>(ch)) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

std::string encode_diff(const Diff &d) {
    std::string s;
    put32(s, d.from);
    put32(s, d.to);
    put_records(s, d.del);
    put_records(s, d.add);
    if (!d.tsig_mac.empty() && d.tsig_key.size() < 256 && d.tsig_mac.size() < 65536) {
        // Optional trailer: 'T', key (u8 length), MAC (u16 length), u48 time, u16 fudge.
        s.push_back('T');
        s.push_back(static_cast<char>(d.tsig_key.size()));
        s += d.tsig_key;
        put16(s, static_cast<uint16_t>(d.tsig_mac.size()));
        s += d.tsig_mac;
        put16(s, static_cast<uint16_t>(d.tsig_time >> 32));
        put32(s, static_cast<uint32_t>(d.tsig_time));
        put16(s, d.tsig_fudge);
    }
    return s;
}

bool decode_diff(std::string_view payload, Diff &out) {
    In in{payload};
    out.from = in.n(4);
    out.to = in.n(4);
    if (!in.ok) return false;
    if (!get_records(in, out.del) || !get_records(in, out.add)) return false;
    if (in.p < payload.size()) {
        if (in.n(1) != 'T') return false;
        out.tsig_key = in.bytes(in.n(1));
        out.tsig_mac = in.bytes(in.n(2));
        uint64_t hi = in.n(2);
        out.tsig_time = (hi << 32) | in.n(4);
        out.tsig_fudge = static_cast<uint16_t>(in.n(2));
        if (!in.ok) return false;
    }
    return in.p == payload.size();
}

std::string frame_entry(std::string_view payload) {
    std::string s(kMagic, 4);
    put32(s, static_cast<uint32_t>(payload.size()));
    put32(s, crc32c(payload));
    s += payload;
    return s;
}

Journal::~Journal() {
    if (fd_ >= 0) ::close(fd_);
}
Journal::Journal(Journal &&o) noexcept
    : path_(std::move(o.path_)), fd_(o.fd_), size_(o.size_), staged_end_(o.staged_end_), staged_n_(o.staged_n_) {
    o.fd_ = -1;
}
Journal &Journal::operator=(Journal &&o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        path_ = std::move(o.path_);
        fd_ = o.fd_;
        size_ = o.size_;
        staged_end_ = o.staged_end_;
        staged_n_ = o.staged_n_;
        o.fd_ = -1;
    }
    return *this;
}

bool Journal::open(const std::string &path, std::vector<Diff> &entries, std::string &note, std::string &err) {
    path_ = path;
    struct stat st;
    bool created = ::stat(path.c_str(), &st) != 0;
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        err = "cannot open journal " + path + ": " + std::strerror(errno);
        return false;
    }
    if (created) {
        // The new file's directory entry must be durable too, or a crash could
        // lose a journal whose entries were each fdatasync'ed.
        std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
        int dfd = ::open(dir.empty() ? "/" : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }
    std::string data;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            err = "cannot read journal " + path + ": " + std::strerror(errno);
            return false;
        }
        if (n == 0) break;
        data.append(buf, static_cast<size_t>(n));
    }
    size_t p = 0;
    std::string why;
    while (p < data.size()) {
        if (data.size() - p < kHeader) {
            why = "a header cut short";
            break;
        }
        if (std::memcmp(data.data() + p, kMagic, 4) != 0) {
            why = "a bad entry marker";
            break;
        }
        In h{std::string_view(data).substr(p + 4, 8)};
        uint32_t len = h.n(4), crc = h.n(4);
        if (len > kMaxEntry || data.size() - p - kHeader < len) {
            why = "an entry cut short";
            break;
        }
        std::string_view payload(data.data() + p + kHeader, len);
        Diff d;
        if (crc32c(payload) != crc || !decode_diff(payload, d)) {
            why = "a checksum mismatch";
            break;
        }
        entries.push_back(std::move(d));
        p += kHeader + len;
    }
    if (p < data.size()) {
        note = "journal " + path + ": dropped a torn last entry (" + why + ", " + std::to_string(data.size() - p) +
               " bytes at offset " + std::to_string(p) + "); recovered " + std::to_string(entries.size()) +
               " whole entries";
        if (::ftruncate(fd_, static_cast<off_t>(p)) != 0 || ::fsync(fd_) != 0) {
            err = "cannot truncate journal " + path + ": " + std::strerror(errno);
            return false;
        }
    }
    size_ = staged_end_ = p;
    staged_n_ = 0;
    if (::lseek(fd_, static_cast<off_t>(p), SEEK_SET) < 0) {
        err = "cannot seek journal " + path + ": " + std::strerror(errno);
        return false;
    }
    return true;
}

bool Journal::append(const Diff &d, std::string &err) { return stage(d, err) && commit(err); }

bool Journal::stage(const Diff &d, std::string &err) {
    std::string e = frame_entry(encode_diff(d));
    if (!write_all(fd_, e)) {
        err = "cannot write journal " + path_ + ": " + std::strerror(errno);
        // Cut back a partial write so the next entry starts on a boundary.
        if (::ftruncate(fd_, static_cast<off_t>(staged_end_)) == 0)
            ::lseek(fd_, static_cast<off_t>(staged_end_), SEEK_SET);
        return false;
    }
    staged_end_ += e.size();
    ++staged_n_;
    return true;
}

bool Journal::commit(std::string &err) {
    if (staged_n_ == 0) return true;
    // The entries must be on disk before their UPDATEs are acknowledged (SPEC §4).
    if (::fdatasync(fd_) != 0) {
        err = "cannot sync journal " + path_ + ": " + std::strerror(errno);
        discard();
        return false;
    }
    size_ = staged_end_;
    staged_n_ = 0;
    return true;
}

void Journal::discard() {
    if (::ftruncate(fd_, static_cast<off_t>(size_)) == 0) ::lseek(fd_, static_cast<off_t>(size_), SEEK_SET);
    staged_end_ = size_;
    staged_n_ = 0;
}

bool Journal::rewrite(const std::vector<Diff> &keep, std::string &err) {
    std::string data;
    for (const Diff &d : keep) data += frame_entry(encode_diff(d));
    if (!write_file_atomic(path_, data, err)) return false;
    int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        err = "cannot reopen journal " + path_ + ": " + std::strerror(errno);
        return false;
    }
    ::lseek(fd, 0, SEEK_END);
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    size_ = staged_end_ = data.size();
    staged_n_ = 0;
    return true;
}

} // namespace aisid::resolver
