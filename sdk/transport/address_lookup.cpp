#include "aisid/transport/address_lookup.hpp"

#include <poll.h>

#include <algorithm>
#include <cstring>

#include "aisid/core/wire.hpp"
#include "transport_internal.hpp"

namespace aisid::transport {

namespace {

constexpr uint16_t kTypeA = 1, kTypeCname = 5, kTypeAaaa = 28;

size_t skip_name(std::span<const uint8_t> w, size_t o) { return wire_skip_name(w.data(), w.size(), o); }

} // namespace

bool read_answer(std::span<const uint8_t> w, int &rcode, std::vector<in6_addr> &addrs, int64_t &ttl) {
    if (w.size() < 12) return false;
    rcode = w[3] & 0x0f;
    size_t o = 12;
    for (unsigned i = 0, n = unsigned(w[4] << 8 | w[5]); i < n; ++i) {
        o = skip_name(w, o);
        if (o == kWireNpos || o + 4 > w.size()) return false;
        o += 4;
    }
    for (unsigned i = 0, n = unsigned(w[6] << 8 | w[7]); i < n; ++i) {
        o = skip_name(w, o);
        if (o == kWireNpos || o + 10 > w.size()) return false;
        uint16_t type = rd16(&w[o]);
        uint32_t t32 = rd32(&w[o + 4]);
        int64_t t = t32 & 0x80000000u ? 0 : t32; // RFC 2181 §8: the top bit set means 0
        size_t len = rd16(&w[o + 8]);
        o += 10;
        if (o + len > w.size()) return false;
        in6_addr x{};
        bool addr = false;
        if (type == kTypeAaaa && len == 16) {
            std::memcpy(&x, &w[o], 16);
            addr = true;
        } else if (type == kTypeA && len == 4) {
            x.s6_addr[10] = x.s6_addr[11] = 0xff;
            std::memcpy(&x.s6_addr[12], &w[o], 4);
            addr = true;
        }
        if (addr || type == kTypeCname)
            if (ttl < 0 || t < ttl) ttl = t;
        if (addr && std::none_of(addrs.begin(), addrs.end(),
                                 [&](const in6_addr &y) { return std::memcmp(&x, &y, 16) == 0; }))
            addrs.push_back(x);
        o += len;
    }
    return true;
}

Expected<std::vector<uint8_t>, std::string> build_query(std::string_view name, uint16_t qtype, uint16_t id) {
    std::vector<uint8_t> q = {uint8_t(id >> 8), uint8_t(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty()) return unexpected(std::string("empty name"));
    size_t total = 1;
    while (!name.empty()) {
        size_t dot = name.find('.');
        std::string_view label = name.substr(0, dot);
        if (label.empty() || label.size() > 63) return unexpected(std::string("bad label in name"));
        total += 1 + label.size();
        if (total > 255) return unexpected(std::string("name longer than 255 octets"));
        q.push_back(uint8_t(label.size()));
        q.insert(q.end(), label.begin(), label.end());
        name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
        if (dot != std::string_view::npos && name.empty()) return unexpected(std::string("empty label in name"));
    }
    q.push_back(0);
    q.push_back(uint8_t(qtype >> 8));
    q.push_back(uint8_t(qtype));
    q.push_back(0);
    q.push_back(1);  // class IN
    return q;
}

void AddressLookup::split_upstreams(std::string_view csv, std::vector<std::string> &encrypted, std::string &plain) {
    while (true) {
        size_t comma = csv.find(',');
        std::string_view e = csv.substr(0, comma);
        while (!e.empty() && e.front() == ' ') e.remove_prefix(1);
        while (!e.empty() && e.back() == ' ') e.remove_suffix(1);
        if (is_encrypted_uri(e) || e.starts_with("http://"))
            encrypted.emplace_back(e);
        else if (!e.empty() || comma != std::string_view::npos)
            plain += (plain.empty() ? "" : ",") + std::string(e);
        if (comma == std::string_view::npos) break;
        csv.remove_prefix(comma + 1);
    }
}

Expected<std::unique_ptr<AddressLookup>, Error> AddressLookup::create(const std::vector<std::string> &uris,
                                                                     const Options &opt) {
    auto p = UpstreamPool::create(uris, opt);
    if (!p) return unexpected(p.error());
    return std::unique_ptr<AddressLookup>(new AddressLookup(std::move(*p)));
}

namespace {

// AAAA and A results into one answer: AAAA first, the smallest TTL, and a
// status that says why nothing came back.
void combine(UpstreamResult &r6, UpstreamResult &r4, AddressLookup::Addresses &out) {
    using Status = AddressLookup::Status;
    std::vector<in6_addr> v6, v4;
    int64_t ttl = -1;
    Status s[2] = {Status::ok, Status::ok};
    UpstreamResult *rs[2] = {&r6, &r4};
    std::vector<in6_addr> *dst[2] = {&v6, &v4};
    for (int i = 0; i < 2; ++i) {
        UpstreamResult &r = *rs[i];
        if (!r) {
            out.failure = r.error().text();
            s[i] = r.error().kind == ErrorKind::timeout ? Status::timeout : Status::network;
            continue;
        }
        int rcode = 0;
        if (!read_answer(r->wire, rcode, *dst[i], ttl)) {
            s[i] = Status::servfail;
            out.failure = r->upstream + ": malformed answer";
        } else if (rcode == 3) {
            s[i] = Status::nxdomain;  // RFC 8020: nothing below it either
        } else if (rcode != 0) {
            s[i] = Status::servfail;
            out.failure = r->upstream + ": RCODE " + std::to_string(rcode);
        }
    }
    out.addrs = std::move(v6);
    out.addrs.insert(out.addrs.end(), v4.begin(), v4.end());
    out.ttl = ttl < 0 ? 0 : uint32_t(std::min<int64_t>(ttl, INT32_MAX));
    if (!out.addrs.empty())
        out.status = Status::ok;
    else if (s[0] == Status::nxdomain || s[1] == Status::nxdomain)
        out.status = Status::nxdomain;
    else if (s[0] != Status::ok)
        out.status = s[0];
    else if (s[1] != Status::ok)
        out.status = s[1];
    else
        out.status = Status::nodata;
    if (out.status == Status::ok || out.status == Status::nxdomain || out.status == Status::nodata) out.failure.clear();
}

} // namespace

AddressLookup::Addresses AddressLookup::resolve(const std::string &name, Clock::time_point deadline) {
    Addresses out;
    auto q6 = build_query(name, kTypeAaaa, 0), q4 = build_query(name, kTypeA, 0);
    if (!q6 || !q4) {
        out.status = Status::bad_name;
        out.failure = q6 ? q4.error() : q6.error();
        return out;
    }
    auto guard = pool_.lock(); // one caller drives the pool at a time
    UpstreamPool *pool = guard->get();
    // Shared with the callbacks: a query still in the pool when the deadline
    // comes completes later (while another caller drives) into this state.
    struct Both {
        std::optional<UpstreamResult> r6, r4;
    };
    auto both = std::make_shared<Both>();
    pool->submit(*q6, [both](UpstreamResult r) { both->r6 = std::move(r); });
    pool->submit(*q4, [both](UpstreamResult r) { both->r4 = std::move(r); });
    std::vector<pollfd> pf;
    while (!(both->r6 && both->r4)) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) break;
        pf.clear();
        for (const PollFd &f : pool->fds()) pf.push_back({f.fd, f.events, 0});
        int t = pool->next_timeout_ms();
        int wait = int(std::min<int64_t>(left, t < 0 ? 1000 : t));
        if (poll(pf.data(), nfds_t(pf.size()), wait) > 0)
            for (const pollfd &f : pf)
                if (f.revents) pool->process(f.fd, f.revents);
        pool->process_timeouts();
    }
    if (!(both->r6 && both->r4)) {
        out.status = Status::timeout;
        out.failure = "no answer before the deadline";
        return out;
    }
    combine(*both->r6, *both->r4, out);
    return out;
}

// ---- asynchronous ----

struct AsyncAddressLookup::Lookup {
    Done done;
    std::optional<UpstreamResult> r6, r4;
};

Expected<std::unique_ptr<AsyncAddressLookup>, Error> AsyncAddressLookup::create(const std::vector<std::string> &uris,
                                                                               const Options &opt) {
    auto p = UpstreamPool::create(uris, opt);
    if (!p) return unexpected(p.error());
    return std::unique_ptr<AsyncAddressLookup>(new AsyncAddressLookup(std::move(*p)));
}

AsyncAddressLookup::~AsyncAddressLookup() { cancel(); }

void AsyncAddressLookup::resolve(const std::string &name, Done done) {
    auto q6 = build_query(name, kTypeAaaa, 0), q4 = build_query(name, kTypeA, 0);
    if (!q6 || !q4) {
        AddressLookup::Addresses out;
        out.status = AddressLookup::Status::bad_name;
        out.failure = q6 ? q4.error() : q6.error();
        done(std::move(out));
        return;
    }
    uint64_t id = next_id_++;
    auto l = std::make_shared<Lookup>();
    l->done = std::move(done);
    lookups_.emplace(id, l);
    // The callbacks hold the lookup: after cancel() they complete into it and
    // nothing else happens.
    pool_->submit(*q6, [this, id, l](UpstreamResult r) {
        l->r6 = std::move(r);
        if (l->r4) finished(id);
    });
    pool_->submit(*q4, [this, id, l](UpstreamResult r) {
        l->r4 = std::move(r);
        if (l->r6) finished(id);
    });
}

void AsyncAddressLookup::finished(uint64_t id) {
    auto it = lookups_.find(id);
    if (it == lookups_.end()) return;  // cancelled
    std::shared_ptr<Lookup> l = it->second;
    lookups_.erase(it);
    AddressLookup::Addresses out;
    combine(*l->r6, *l->r4, out);
    Done d = std::move(l->done);
    d(std::move(out));
}

void AsyncAddressLookup::fds(std::vector<PollFd> &out) const {
    auto v = pool_->fds();
    out.insert(out.end(), v.begin(), v.end());
}

void AsyncAddressLookup::process(int fd, short revents) { pool_->process(fd, revents); }
int AsyncAddressLookup::next_timeout_ms() const { return pool_->next_timeout_ms(); }
void AsyncAddressLookup::process_timeouts() { pool_->process_timeouts(); }

void AsyncAddressLookup::cancel() {
    auto all = std::move(lookups_);
    lookups_.clear();
    for (auto &[id, l] : all) {
        AddressLookup::Addresses out;
        out.status = AddressLookup::Status::cancelled;
        Done d = std::move(l->done);
        if (d) d(std::move(out));
    }
}

} // namespace aisid::transport
