#include "aisid/core/zone.hpp"
#include "aisid/core/ldns_ptr.hpp"

#include "aisid/core/zone_builder.hpp"

#include <ldns/ldns.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace aisid {

std::string ZoneError::to_string() const {
    std::string s = file;
    if (line > 0) s += ":" + std::to_string(line);
    if (!s.empty()) s += ": ";
    return s + message;
}

bool valid_term(std::string_view t) {
    if (t.empty() || t.size() > 63) return false;
    if (t[0] < 'a' || t[0] > 'z') return false;
    for (char c : t)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    if (t == "any") return false;
    if (t.size() >= 2 && t[0] == 'p' &&
        std::all_of(t.begin() + 1, t.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    return true;
}

uint32_t parse_perf_label(std::string_view l) {
    if (l.size() < 2 || l.size() > 6 || l[0] != 'p' || l[1] == '0') return 0;
    uint32_t v = 0;
    for (size_t i = 1; i < l.size(); ++i) {
        if (l[i] < '0' || l[i] > '9') return 0;
        v = v * 10 + static_cast<uint32_t>(l[i] - '0');
    }
    return v <= 65535 ? v : 0;
}

uint16_t Dimension::lowest_free_code() const {
    for (uint32_t c = 1; c < kReservedCode; ++c)
        if (!by_code_.find(c)) return static_cast<uint16_t>(c);
    return 0;
}

bool Dimension::add(const std::string &term, uint16_t code, int line) {
    uint64_t h = short_hash(term);
    if (code == 0 || by_hash_.find(h) || by_code_.find(code)) return false;
    entries_.push_back(Entry{term, code, line});
    *by_hash_.emplace(h).first = static_cast<uint32_t>(entries_.size());
    *by_code_.emplace(code).first = static_cast<uint32_t>(entries_.size());
    return true;
}

bool Dimension::remove(std::string_view term) {
    uint64_t h = short_hash(term);
    const uint32_t *i = by_hash_.find(h);
    if (!i || entries_[*i - 1].term != term) return false;
    Entry &e = entries_[*i - 1];
    by_code_.erase(e.code);
    by_hash_.erase(h);
    e.code = 0;
    e.term.clear();
    return true;
}

static uint32_t rd32(std::string_view s, size_t o) {
    return (uint32_t{static_cast<uint8_t>(s[o])} << 24) | (uint32_t{static_cast<uint8_t>(s[o + 1])} << 16) |
           (uint32_t{static_cast<uint8_t>(s[o + 2])} << 8) | static_cast<uint8_t>(s[o + 3]);
}

// SOA rdata: MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM; names are
// uncompressed in stored rdata, so the five counters are the last 20 bytes.
uint32_t Zone::serial() const {
    const std::string &r = soa().rdata.at(0);
    return rd32(r, r.size() - 20);
}
uint32_t Zone::soa_minimum() const {
    const std::string &r = soa().rdata.at(0);
    return rd32(r, r.size() - 4);
}

bool Zone::append_relative_name(uint16_t o, uint16_t f, uint16_t m, std::string &out) const {
    const std::string *to = dim(Dim::object).term(o);
    if (!to) return false;
    if (m) {
        const std::string *tm = dim(Dim::method).term(m);
        if (!tm || !f) return false;
        out += *tm;
        out += '.';
    }
    if (f) {
        const std::string *tf = dim(Dim::function).term(f);
        if (!tf) return false;
        out += *tf;
        out += '.';
    }
    out += *to;
    return true;
}

ServiceShard::ServiceShard(const ServiceShard &o) : map(o.map) {
    // Packed anew: the bytes of removed or moved SVCB blocks stay behind.
    arena.reserve(o.arena.size());
    map.for_each_mut([&](uint64_t, Service &s) {
        s.svcb_arena = &arena;
        if (!s.svcb_count) return;
        size_t p = s.svcb_off;
        for (unsigned i = 0; i < s.svcb_count; ++i)
            p += 2 + ((static_cast<uint8_t>(o.arena[p]) << 8) | static_cast<uint8_t>(o.arena[p + 1]));
        size_t at = arena.size();
        arena.append(o.arena, s.svcb_off, p - s.svcb_off);
        s.svcb_off = static_cast<uint32_t>(at);
    });
}

void ServiceShard::append_svcb(Service &s, std::string_view rdata) {
    std::string &a = arena;
    s.svcb_arena = &arena;
    if (s.svcb_count) {
        // Keep a service's records contiguous: move its block to the end first.
        size_t p = s.svcb_off;
        for (unsigned i = 0; i < s.svcb_count; ++i)
            p += 2 + ((static_cast<uint8_t>(a[p]) << 8) | static_cast<uint8_t>(a[p + 1]));
        if (p != a.size()) {
            std::string block = a.substr(s.svcb_off, p - s.svcb_off);
            s.svcb_off = static_cast<uint32_t>(a.size());
            a += block;
        }
    } else {
        s.svcb_off = static_cast<uint32_t>(a.size());
    }
    a.push_back(static_cast<char>(rdata.size() >> 8));
    a.push_back(static_cast<char>(rdata.size()));
    a.append(rdata);
    ++s.svcb_count;
}

void ServiceShard::adopt(uint64_t key, const Service &s) {
    Service &d = *map.emplace(key).first;
    d = s;
    d.svcb_arena = &arena;
    d.svcb_count = 0;
    if (!s.svcb_count) return;
    size_t p = s.svcb_off;
    for (unsigned i = 0; i < s.svcb_count; ++i)
        p += 2 + ((static_cast<uint8_t>((*s.svcb_arena)[p]) << 8) | static_cast<uint8_t>((*s.svcb_arena)[p + 1]));
    d.svcb_off = static_cast<uint32_t>(arena.size());
    d.svcb_count = s.svcb_count;
    arena.append(*s.svcb_arena, s.svcb_off, p - s.svcb_off);
}

namespace {
size_t node_bytes(std::string_view k, const Node &node) {
    size_t n = k.size() + 32 + sizeof(node) + 64;
    for (const RRset &r : node.rrsets)
        for (const std::string &d : r.rdata) n += d.capacity() + sizeof(d);
    return n;
}
size_t shard_bytes(const ServiceShard &s) { return s.map.memory_bytes() + s.arena.capacity() + sizeof s; }
} // namespace

size_t Zone::memory_bytes() const {
    size_t n = 0;
    for (size_t i = 0; i < services_.count(); ++i) n += shard_bytes(services_.at(i));
    nodes_.for_each([&](std::string_view k, const Node &node) { n += node_bytes(k, node); });
    return n;
}

size_t Zone::unshared_bytes(const Zone &o) const {
    size_t n = 0;
    for (size_t i = 0; i < services_.count(); ++i)
        if (i >= o.services_.count() || &services_.at(i) != &o.services_.at(i)) n += shard_bytes(services_.at(i));
    const auto &a = nodes_.shards(), &b = o.nodes_.shards();
    for (size_t i = 0; i < a.count(); ++i)
        if (i >= b.count() || &a.at(i) != &b.at(i))
            for (const auto &[k, node] : a.at(i)) n += node_bytes(k, node);
    return n;
}

// ---------------------------------------------------------------------------
// Master file reading. ldns parses each record; $INCLUDE (which ldns does not
// implement), continuation lines and line numbers for errors are handled here.

namespace {


struct Entry {
    std::string text;
    int line = 0;
    bool blank_owner = false;
};

// Splits master-file text into logical entries, one at a time: comments
// dropped, parentheses joined (RFC 1035 §5.1), the line each entry starts on
// kept. Streaming, so a million-record file never exists twice in memory.
class Splitter {
public:
    explicit Splitter(std::string_view t) : t_(t) {}
    size_t consumed() const { return i_; }

    // False at the end or on an error (then why is set).
    bool next(Entry &e, int &bad_line, std::string &why) {
        for (;;) {
            if (i_ >= t_.size()) return false;
            e.text.clear();
            e.line = line_;
            e.blank_owner = (t_[i_] == ' ' || t_[i_] == '\t');
            int depth = 0;
            bool quote = false;
            for (; i_ < t_.size(); ++i_) {
                char c = t_[i_];
                if (c == '\\' && i_ + 1 < t_.size()) {
                    e.text.push_back(c);
                    e.text.push_back(t_[++i_]);
                    if (t_[i_] == '\n') ++line_;
                    continue;
                }
                if (quote) {
                    if (c == '"') quote = false;
                    if (c == '\n') {
                        bad_line = e.line;
                        why = "unterminated quoted string";
                        return false;
                    }
                    e.text.push_back(c);
                    continue;
                }
                if (c == '"') {
                    quote = true;
                    e.text.push_back(c);
                } else if (c == ';') {
                    while (i_ + 1 < t_.size() && t_[i_ + 1] != '\n') ++i_;
                } else if (c == '(') {
                    ++depth;
                    e.text.push_back(' ');
                } else if (c == ')') {
                    if (--depth < 0) {
                        bad_line = line_;
                        why = "unbalanced ')'";
                        return false;
                    }
                    e.text.push_back(' ');
                } else if (c == '\n') {
                    ++line_;
                    if (depth == 0) {
                        ++i_;
                        break;
                    }
                    e.text.push_back(' ');
                } else if (c == '\r') {
                    e.text.push_back(' ');
                } else {
                    e.text.push_back(c);
                }
            }
            if (quote) {
                bad_line = e.line;
                why = "unterminated quoted string";
                return false;
            }
            if (depth > 0) {
                bad_line = e.line;
                why = "unbalanced '(' (the record never closes)";
                return false;
            }
            if (e.text.find_first_not_of(" \t") != std::string::npos) return true;
        }
    }

private:
    std::string_view t_;
    size_t i_ = 0;
    int line_ = 1;
};

std::string first_token(std::string_view s, size_t &end) {
    size_t b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) {
        end = s.size();
        return {};
    }
    size_t e = s.find_first_of(" \t", b);
    if (e == std::string_view::npos) e = s.size();
    end = e;
    return std::string(s.substr(b, e - b));
}

std::string dirname_of(const std::string &path) {
    auto p = path.rfind('/');
    return p == std::string::npos ? std::string(".") : path.substr(0, p);
}

// A zone file read whole with read(2). Not mmap: a file truncated while
// mapped would raise SIGBUS, and this code runs inside other programs (NSS).
class ZoneFileText {
public:
    // False with errno; EFBIG when the file is over `budget` bytes (nothing
    // more than budget + 1 bytes is read).
    bool open(const std::string &path, uint64_t budget = UINT64_MAX) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            errno = EINVAL;
            return false;
        }
        if (static_cast<uint64_t>(st.st_size) > budget) {
            ::close(fd);
            errno = EFBIG;
            return false;
        }
        data_.resize(static_cast<size_t>(st.st_size));
        size_t got = 0;
        for (;;) {
            if (got > budget) {  // the file grew past the budget while read
                ::close(fd);
                errno = EFBIG;
                return false;
            }
            if (got == data_.size()) data_.resize(data_.size() + 65536);  // the file grew
            ssize_t n = ::read(fd, data_.data() + got, data_.size() - got);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                int e = errno;
                ::close(fd);
                errno = e;
                return false;
            }
            if (n == 0) break;
            got += static_cast<size_t>(n);
        }
        data_.resize(got);
        ::close(fd);
        return true;
    }
    std::string_view text() const { return data_; }

private:
    std::string data_;
};

// At most the first 20 bytes of a token, control and non-ASCII bytes as
// \DDD: an error must never echo a whole line of some file an $INCLUDE
// pointed at ("$INCLUDE /etc/shadow" would print a password hash).
std::string quote_token(std::string_view t) {
    constexpr size_t kMax = 20;
    std::string out = "'";
    for (size_t i = 0; i < t.size() && i < kMax; ++i) {
        unsigned char c = static_cast<unsigned char>(t[i]);
        if (c < 0x20 || c >= 0x7f) {
            char b[5];
            std::snprintf(b, sizeof b, "\\%03u", c);
            out += b;
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    if (t.size() > kMax) out += "...";
    return out + "'";
}

// The canonical directory (symbolic links resolved), empty when it does not exist.
std::string canonical_dir(const std::string &d) {
    char *r = ::realpath(d.c_str(), nullptr);
    if (!r) return {};
    std::string s = r;
    free(r);
    return s;
}

class ZoneFileReader {
public:
    ZoneFileReader(ZoneBuilder &b, const ZoneLoadLimits &limits, const std::string &top_file)
        : b_(b), buf_(ldns_buffer_new(512)), limits_(limits) {
        if (std::string d = canonical_dir(dirname_of(top_file)); !d.empty()) allowed_.push_back(d);
        for (const std::string &d : limits.include_dirs)
            if (std::string c = canonical_dir(d); !c.empty()) allowed_.push_back(c);
    }
    // Counts bytes read against the limit; false (error set) past it.
    bool count_bytes(const std::string &file, int line, uint64_t n) {
        bytes_ += n;
        if (bytes_ > limits_.max_bytes)
            return fail(file, line, "zone files over " + std::to_string(limits_.max_bytes) +
                                        " bytes in one load, $INCLUDE files counted (the zone-max-bytes limit)");
        return true;
    }
    uint64_t budget() const { return limits_.max_bytes >= bytes_ ? limits_.max_bytes - bytes_ : 0; }

    bool run(std::string_view text, const std::string &file, LdnsRdfPtr origin, uint32_t ttl, int depth) {
        Splitter sp(text);
        int bad_line = 0;
        std::string why;
        Entry e;
        for (;;) {
            if (!sp.next(e, bad_line, why)) {
                if (!why.empty()) return fail(file, bad_line, why);
                break;
            }
            size_t end;
            std::string tok = first_token(e.text, end);
            if (!e.blank_owner && !tok.empty() && tok[0] == '$') {
                std::string rest(e.text.substr(end));
                size_t e2;
                std::string arg = first_token(rest, e2);
                std::string arg2 = first_token(std::string_view(rest).substr(e2), e2);
                if (tok == "$ORIGIN") {
                    if (arg.empty()) return fail(file, e.line, "$ORIGIN needs a name");
                    ldns_rdf *o = nullptr;
                    if (arg.back() != '.') {
                        if (!origin) return fail(file, e.line, "relative $ORIGIN with no origin before it");
                        arg += "." + rdf_text(origin.get());
                    }
                    if (ldns_str2rdf_dname(&o, arg.c_str()) != LDNS_STATUS_OK)
                        return fail(file, e.line, "bad $ORIGIN name " + quote_token(arg));
                    origin.reset(o);
                } else if (tok == "$TTL") {
                    const char *endp = nullptr;
                    if (arg.empty()) return fail(file, e.line, "$TTL needs a value");
                    uint32_t v = ldns_str2period(arg.c_str(), &endp);
                    if (!endp || *endp != '\0') return fail(file, e.line, "bad $TTL value " + quote_token(arg));
                    ttl = v;
                } else if (tok == "$INCLUDE") {
                    if (arg.empty()) return fail(file, e.line, "$INCLUDE needs a file name");
                    if (depth >= 8) return fail(file, e.line, "$INCLUDE nested too deeply");
                    // A fan-out of includes must end, and stay in its directory.
                    if (++includes_ > limits_.max_includes)
                        return fail(file, e.line, "more than " + std::to_string(limits_.max_includes) +
                                                      " $INCLUDE files in one zone (the zone-max-includes limit)");
                    std::string path = arg[0] == '/' ? arg : dirname_of(file) + "/" + arg;
                    char *real = ::realpath(path.c_str(), nullptr);
                    if (!real)
                        return fail(file, e.line, "cannot read $INCLUDE file " + quote_token(arg) + ": " +
                                                      std::strerror(errno));
                    std::string canon = real;
                    free(real);
                    bool inside = false;
                    for (const std::string &d : allowed_)
                        if (canon.size() > d.size() && canon.compare(0, d.size(), d) == 0 &&
                            (d == "/" || canon[d.size()] == '/'))
                            inside = true;
                    if (!inside)
                        return fail(file, e.line, "$INCLUDE " + quote_token(arg) +
                                                      " is outside the zone file's directory (allow its directory "
                                                      "with zone-include-dir)");
                    ZoneFileText sub;
                    if (!sub.open(canon, budget())) {
                        if (errno == EFBIG) {
                            bytes_ = limits_.max_bytes;
                            return count_bytes(file, e.line, 1);
                        }
                        return fail(file, e.line, "cannot read $INCLUDE file " + quote_token(arg) + ": " +
                                                      std::strerror(errno));
                    }
                    if (!count_bytes(file, e.line, sub.text().size())) return false;
                    LdnsRdfPtr sub_origin;
                    if (!arg2.empty()) {
                        ldns_rdf *o = nullptr;
                        if (arg2.back() != '.' || ldns_str2rdf_dname(&o, arg2.c_str()) != LDNS_STATUS_OK)
                            return fail(file, e.line, "bad $INCLUDE origin " + quote_token(arg2));
                        sub_origin.reset(o);
                    } else if (origin) {
                        sub_origin.reset(ldns_rdf_clone(origin.get()));
                    }
                    // RFC 1035 §5.1: the included file's $ORIGIN does not leak back.
                    if (!run(sub.text(), path, std::move(sub_origin), ttl, depth + 1)) return false;
                } else {
                    return fail(file, e.line, "unknown directive " + quote_token(tok));
                }
                continue;
            }
            if (!origin && !e.blank_owner && (tok == "@" || tok.back() != '.'))
                return fail(file, e.line, "relative owner name " + quote_token(tok) + " with no $ORIGIN");
            if (e.blank_owner) {
                if (!prev_owner_) return fail(file, e.line, "record with no owner name and none before it");
                e.text = rdf_text(prev_owner_.get()) + e.text;
            }
            ldns_rr *raw = nullptr;
            ldns_status st = ldns_rr_new_frm_str(&raw, e.text.c_str(), ttl, origin.get(), nullptr);
            if (st != LDNS_STATUS_OK) {
                std::string msg = ldns_get_errorstr_by_id(st);
                if (st == LDNS_STATUS_SYNTAX_DNAME_ERR && !origin) msg += " (relative name with no $ORIGIN)";
                return fail(file, e.line, msg);
            }
            LdnsRrPtr rr(raw);
            // Kept as an rdf: text only for the rare line that continues this owner.
            prev_owner_.reset(ldns_rdf_clone(ldns_rr_owner(rr.get())));
            if (ldns_rr_get_class(rr.get()) != LDNS_RR_CLASS_IN)
                return fail(file, e.line, "only class IN is supported");
            ldns_buffer_clear(buf_.get());
            if (ldns_rr_rdata2buffer_wire(buf_.get(), rr.get()) != LDNS_STATUS_OK)
                return fail(file, e.line, "cannot encode record data");
            std::string_view rdata(reinterpret_cast<const char *>(ldns_buffer_begin(buf_.get())),
                                   ldns_buffer_position(buf_.get()));
            const ldns_rdf *owner = ldns_rr_owner(rr.get());
            std::string_view owner_wire(reinterpret_cast<const char *>(ldns_rdf_data(owner)), ldns_rdf_size(owner));
            ZoneError err;
            if (!b_.add(owner_wire, ldns_rr_get_type(rr.get()), ldns_rr_ttl(rr.get()), rdata, file, e.line, err)) {
                error_ = std::move(err);
                return false;
            }
        }
        return true;
    }

    bool fail(const std::string &file, int line, std::string msg) {
        error_ = ZoneError{file, line, std::move(msg)};
        return false;
    }
    ZoneError &error() { return error_; }

    static std::string rdf_text(const ldns_rdf *r) {
        char *s = ldns_rdf2str(r);
        std::string out = s ? s : "";
        free(s);
        return out;
    }

private:
    ZoneBuilder &b_;
    LdnsBufferPtr buf_;
    const ZoneLoadLimits &limits_;
    std::vector<std::string> allowed_;  // canonical directories $INCLUDE may read
    unsigned includes_ = 0;
    uint64_t bytes_ = 0;
    LdnsRdfPtr prev_owner_;
    ZoneError error_;
};

} // namespace

Expected<ZonePtr, ZoneError> load_zone_text(std::string_view text, const std::string &file, std::string_view origin,
                                            const ZoneLoadLimits &limits) {
    LdnsRdfPtr o;
    if (!origin.empty()) {
        std::string s(origin);
        if (s.back() != '.') s += '.';
        ldns_rdf *r = nullptr;
        if (ldns_str2rdf_dname(&r, s.c_str()) != LDNS_STATUS_OK)
            return unexpected(ZoneError{file, 0, "bad origin '" + s + "'"});
        o.reset(r);
    }
    ZoneBuilder b(file);
    ZoneFileReader rd(b, limits, file);
    if (!rd.count_bytes(file, 0, text.size())) return unexpected(std::move(rd.error()));
    if (!rd.run(text, file, std::move(o), 3600, 0)) return unexpected(std::move(rd.error()));
    return b.finish();
}

namespace {

// The pairs of a "; aisid-verified: key=value ..." first line (a comment to
// the zone file reader), which aisidd writes on the zone files it verified.
std::vector<std::pair<std::string, std::string>> verification_of(std::string_view text) {
    static constexpr std::string_view kTag = "; aisid-verified:";
    std::vector<std::pair<std::string, std::string>> out;
    if (text.substr(0, kTag.size()) != kTag) return out;
    std::string_view line = text.substr(kTag.size(), text.find('\n') - kTag.size());
    while (!line.empty()) {
        size_t sp = line.find(' ');
        std::string_view tok = line.substr(0, sp);
        line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
        size_t eq = tok.find('=');
        if (eq != std::string_view::npos && eq > 0) out.emplace_back(tok.substr(0, eq), tok.substr(eq + 1));
    }
    return out;
}

} // namespace

Expected<ZonePtr, ZoneError> load_zone_file(const std::string &path, const ZoneLoadLimits &limits) {
    ZoneFileText f;
    if (!f.open(path, limits.max_bytes)) {
        if (errno == EFBIG)
            return unexpected(ZoneError{path, 0, "over " + std::to_string(limits.max_bytes) +
                                                     " bytes (the zone-max-bytes limit)"});
        return unexpected(ZoneError{path, 0, std::string("cannot read: ") + std::strerror(errno)});
    }
    ZoneBuilder b(path);
    b.set_verification(verification_of(f.text()));
    ZoneFileReader rd(b, limits, path);
    if (!rd.count_bytes(path, 0, f.text().size())) return unexpected(std::move(rd.error()));
    if (!rd.run(f.text(), path, nullptr, 3600, 0)) return unexpected(std::move(rd.error()));
    return b.finish();
}

} // namespace aisid
