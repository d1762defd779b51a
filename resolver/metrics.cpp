#include "metrics.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdarg>
#include <cstring>

namespace aisid::resolver {

namespace {
void line(std::string &o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void line(std::string &o, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) o.append(buf, std::min<size_t>(size_t(n), sizeof buf - 1));
    o += '\n';
}
std::string esc(const std::string &s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        if (c == '\n') {
            o += "\\n";
            continue;
        }
        o += c;
    }
    return o;
}
} // namespace

std::string render_metrics(const Shared &sh) {
    std::string o;
    auto sum = [&](auto get) {
        uint64_t t = 0;
        for (const auto &s : sh.stats) t += get(*s);
        return t;
    };
    line(o, "# HELP aisidd_queries_total Queries answered, by outcome.");
    line(o, "# TYPE aisidd_queries_total counter");
    for (size_t i = 0; i < size_t(Outcome::count_); ++i)
        line(o, "aisidd_queries_total{outcome=\"%s\"} %llu", outcome_name(Outcome(i)),
             (unsigned long long)sum([&](const WorkerStats &s) { return s.outcomes[i].load(std::memory_order_relaxed); }));
    line(o, "# HELP aisidd_query_duration_seconds Time from receiving a query to sending its answer.");
    line(o, "# TYPE aisidd_query_duration_seconds histogram");
    uint64_t cum = 0;
    for (size_t b = 0; b <= kNumBuckets; ++b) {
        cum += sum([&](const WorkerStats &s) { return s.latency[b].load(std::memory_order_relaxed); });
        if (b < kNumBuckets) line(o, "aisidd_query_duration_seconds_bucket{le=\"%g\"} %llu", kLatencyBuckets[b], (unsigned long long)cum);
        else line(o, "aisidd_query_duration_seconds_bucket{le=\"+Inf\"} %llu", (unsigned long long)cum);
    }
    line(o, "aisidd_query_duration_seconds_sum %.9f",
         double(sum([](const WorkerStats &s) { return s.latency_sum_ns.load(std::memory_order_relaxed); })) / 1e9);
    line(o, "aisidd_query_duration_seconds_count %llu", (unsigned long long)cum);
    line(o, "# HELP aisidd_cache_entries Answers in the cache (all workers).");
    line(o, "# TYPE aisidd_cache_entries gauge");
    line(o, "aisidd_cache_entries %llu", (unsigned long long)sum([](const WorkerStats &s) { return s.cache_entries.load(); }));
    line(o, "# HELP aisidd_cache_bytes Approximate memory held by the cache.");
    line(o, "# TYPE aisidd_cache_bytes gauge");
    line(o, "aisidd_cache_bytes %llu", (unsigned long long)sum([](const WorkerStats &s) { return s.cache_bytes.load(); }));
    line(o, "# HELP aisidd_cache_evictions_total Answers evicted to keep the cache within its memory bound.");
    line(o, "# TYPE aisidd_cache_evictions_total counter");
    line(o, "aisidd_cache_evictions_total %llu", (unsigned long long)sum([](const WorkerStats &s) { return s.cache_evictions.load(); }));
    line(o, "# HELP aisidd_rate_limited_total UDP replies held back by response rate limiting: dropped, or sent truncated (slipped).");
    line(o, "# TYPE aisidd_rate_limited_total counter");
    line(o, "aisidd_rate_limited_total{action=\"dropped\"} %llu", (unsigned long long)sum([](const WorkerStats &s) { return s.rrl_dropped.load(); }));
    line(o, "aisidd_rate_limited_total{action=\"slipped\"} %llu", (unsigned long long)sum([](const WorkerStats &s) { return s.rrl_slipped.load(); }));
    line(o, "# HELP aisidd_tcp_connections Open client TCP connections.");
    line(o, "# TYPE aisidd_tcp_connections gauge");
    line(o, "aisidd_tcp_connections %llu", (unsigned long long)sum([](const WorkerStats &s) { return s.tcp_connections.load(); }));

    auto rt = sh.runtime();
    line(o, "# HELP aisidd_upstream_up 1 when the upstream answered recently (fewer than 3 failures in a row).");
    line(o, "# TYPE aisidd_upstream_up gauge");
    for (const auto &u : rt->upstreams) line(o, "aisidd_upstream_up{upstream=\"%s\"} %d", esc(u->up.text).c_str(), u->healthy() ? 1 : 0);
    line(o, "# HELP aisidd_upstream_queries_total Queries sent to each upstream.");
    line(o, "# TYPE aisidd_upstream_queries_total counter");
    for (const auto &u : rt->upstreams) line(o, "aisidd_upstream_queries_total{upstream=\"%s\"} %llu", esc(u->up.text).c_str(), (unsigned long long)u->queries.load());
    line(o, "# HELP aisidd_upstream_failures_total Tries that failed (timeout, refused, SERVFAIL).");
    line(o, "# TYPE aisidd_upstream_failures_total counter");
    for (const auto &u : rt->upstreams) line(o, "aisidd_upstream_failures_total{upstream=\"%s\"} %llu", esc(u->up.text).c_str(), (unsigned long long)u->failures.load());
    line(o, "# HELP aisidd_upstream_rtt_seconds Smoothed round-trip time of each upstream.");
    line(o, "# TYPE aisidd_upstream_rtt_seconds gauge");
    for (const auto &u : rt->upstreams) line(o, "aisidd_upstream_rtt_seconds{upstream=\"%s\"} %.6f", esc(u->up.text).c_str(), double(u->rtt_us_ewma.load()) / 1e6);

    line(o, "# HELP aisidd_zone_serial SOA serial of each loaded zone.");
    line(o, "# TYPE aisidd_zone_serial gauge");
    auto zi = sh.zone_info();
    for (const ZoneInfo &z : zi) line(o, "aisidd_zone_serial{zone=\"%s\"} %u", esc(z.origin).c_str(), z.serial);
    line(o, "# HELP aisidd_zone_loaded_timestamp_seconds When each zone was last loaded (Unix time).");
    line(o, "# TYPE aisidd_zone_loaded_timestamp_seconds gauge");
    for (const ZoneInfo &z : zi) line(o, "aisidd_zone_loaded_timestamp_seconds{zone=\"%s\"} %.3f", esc(z.origin).c_str(), z.loaded_unix);
    line(o, "# HELP aisidd_zone_services Registered services in each zone.");
    line(o, "# TYPE aisidd_zone_services gauge");
    for (const ZoneInfo &z : zi) line(o, "aisidd_zone_services{zone=\"%s\"} %zu", esc(z.origin).c_str(), z.services);
    line(o, "# HELP aisidd_reloads_total SIGHUP reloads, by result.");
    line(o, "# TYPE aisidd_reloads_total counter");
    line(o, "aisidd_reloads_total{result=\"ok\"} %llu", (unsigned long long)sh.reloads.load());
    line(o, "aisidd_reloads_total{result=\"failed\"} %llu", (unsigned long long)sh.reload_failures.load());
    if (sh.authority) sh.authority->append_metrics(o);  // issue 15: the authority side's counters
    return o;
}

MetricsServer::~MetricsServer() { stop(); }

std::string MetricsServer::start(const SockAddr &addr) {
    fd_ = socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd_ < 0 || bind(fd_, addr.sa(), addr.len) != 0 || listen(fd_, 16) != 0) {
        std::string e = "cannot serve metrics on " + addr.to_string() + ": " + std::strerror(errno);
        if (fd_ >= 0) close(fd_);
        fd_ = -1;
        return e;
    }
    th_ = std::thread([this] { run(); });
    return {};
}

void MetricsServer::stop() {
    if (th_.joinable()) th_.join();
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
}

void MetricsServer::run() {
    while (!sh_.stop.load()) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        timeval tv{2, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        std::string req;
        char buf[2048];
        while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos && req.size() < 8192) {
            ssize_t k = recv(c, buf, sizeof buf, 0);
            if (k <= 0) break;
            req.append(buf, size_t(k));
        }
        std::string status = "200 OK", body, type = "text/plain; version=0.0.4; charset=utf-8";
        if (req.rfind("GET /metrics", 0) == 0 && req.size() > 12 && (req[12] == ' ' || req[12] == '?')) {
            body = render_metrics(sh_);
        } else if (req.rfind("GET ", 0) == 0) {
            status = "404 Not Found";
            body = "try /metrics\n";
            type = "text/plain";
        } else {
            status = "405 Method Not Allowed";
            body = "GET only\n";
            type = "text/plain";
        }
        std::string resp = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
        size_t off = 0;
        while (off < resp.size()) {
            ssize_t k = send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
            if (k <= 0) break;
            off += size_t(k);
        }
        close(c);
    }
}

} // namespace aisid::resolver
