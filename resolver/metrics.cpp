#include "aisid/resolver/metrics.hpp"

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
    line(o, "# HELP aisidd_cache_entries Answers in the cache (shared by all workers).");
    line(o, "# TYPE aisidd_cache_entries gauge");
    line(o, "aisidd_cache_entries %llu", (unsigned long long)sh.cache.entries());
    line(o, "# HELP aisidd_cache_bytes Approximate memory held by the cache.");
    line(o, "# TYPE aisidd_cache_bytes gauge");
    line(o, "aisidd_cache_bytes %llu", (unsigned long long)sh.cache.bytes());
    line(o, "# HELP aisidd_cache_evictions_total Answers evicted to keep the cache within its memory bound.");
    line(o, "# TYPE aisidd_cache_evictions_total counter");
    line(o, "aisidd_cache_evictions_total %llu", (unsigned long long)sh.cache.evictions());
    line(o, "# HELP aisidd_rate_limited_total UDP replies held back by response rate limiting: dropped, or sent truncated (slipped).");
    line(o, "# TYPE aisidd_rate_limited_total counter");
    line(o, "aisidd_rate_limited_total{action=\"dropped\"} %llu", (unsigned long long)sum([](const WorkerStats &s) { return s.rrl_dropped.load(); }));
    line(o, "aisidd_rate_limited_total{action=\"slipped\"} %llu", (unsigned long long)sum([](const WorkerStats &s) { return s.rrl_slipped.load(); }));
    line(o, "# HELP aisidd_tcp_connections Open client TCP connections.");
    line(o, "# TYPE aisidd_tcp_connections gauge");
    line(o, "aisidd_tcp_connections %llu", (unsigned long long)sum([](const WorkerStats &s) { return s.tcp_connections.load(); }));

    line(o, "# HELP aisidd_limit_hits_total Times a limit held a client back, by limit (aisidd(8), LIMITS).");
    line(o, "# TYPE aisidd_limit_hits_total counter");
    for (size_t i = 0; i < size_t(Limit::count_); ++i) {
        uint64_t v = sum([&](const WorkerStats &s) { return s.limit_hits[i].load(std::memory_order_relaxed); });
        if (Limit(i) == Limit::authority_queue) v += sh.authority_dropped.load(std::memory_order_relaxed);
        line(o, "aisidd_limit_hits_total{limit=\"%s\"} %llu", limit_name(Limit(i)), (unsigned long long)v);
    }
    line(o, "# HELP aisidd_upstream_inflight Queries waiting for an upstream answer.");
    line(o, "# TYPE aisidd_upstream_inflight gauge");
    line(o, "aisidd_upstream_inflight %llu", (unsigned long long)sum([](const WorkerStats &s) { return s.inflight.load(); }));

    auto rt = sh.runtime();
    line(o, "# HELP aisidd_upstream_up 1 when the upstream answered recently (fewer than 3 failures in a row).");
    line(o, "# TYPE aisidd_upstream_up gauge");
    for (const auto &u : rt->upstreams) line(o, "aisidd_upstream_up{upstream=\"%s\"} %d", esc(redacted_upstream(u->up.text)).c_str(), u->healthy() ? 1 : 0);
    line(o, "# HELP aisidd_upstream_queries_total Queries sent to each upstream.");
    line(o, "# TYPE aisidd_upstream_queries_total counter");
    for (const auto &u : rt->upstreams) line(o, "aisidd_upstream_queries_total{upstream=\"%s\"} %llu", esc(redacted_upstream(u->up.text)).c_str(), (unsigned long long)u->queries.load());
    line(o, "# HELP aisidd_upstream_failures_total Tries that failed (timeout, refused, SERVFAIL).");
    line(o, "# TYPE aisidd_upstream_failures_total counter");
    for (const auto &u : rt->upstreams) line(o, "aisidd_upstream_failures_total{upstream=\"%s\"} %llu", esc(redacted_upstream(u->up.text)).c_str(), (unsigned long long)u->failures.load());
    line(o, "# HELP aisidd_upstream_rtt_seconds Smoothed round-trip time of each upstream.");
    line(o, "# TYPE aisidd_upstream_rtt_seconds gauge");
    for (const auto &u : rt->upstreams) line(o, "aisidd_upstream_rtt_seconds{upstream=\"%s\"} %.6f", esc(redacted_upstream(u->up.text)).c_str(), double(u->rtt_us_ewma.load()) / 1e6);

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
    line(o, "# HELP aisidd_reloads_total Reloads (SIGHUP or aisid-control reload), by result.");
    line(o, "# TYPE aisidd_reloads_total counter");
    line(o, "aisidd_reloads_total{result=\"ok\"} %llu", (unsigned long long)sh.reloads.load());
    line(o, "aisidd_reloads_total{result=\"failed\"} %llu", (unsigned long long)sh.reload_failures.load());
    if (sh.authority) sh.authority->append_metrics(o);  // the authority side's counters
    for (const auto &f : sh.metric_sources) f(o);
    return o;
}

MetricsServer::~MetricsServer() { stop(); }

std::string MetricsServer::start(const SockAddr &addr) {
    fd_ = socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd_ < 0 || bind(fd_, addr.sa(), addr.len) != 0 || listen(fd_, 64) != 0) {
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

namespace {

// One scraper's connection: the request read, then the response written,
// both without blocking; the whole exchange has kMetricsDeadlineMs.
struct HttpConn {
    int fd = -1;
    uint64_t deadline_ms = 0;
    std::string in, out;
    size_t out_off = 0;
};
constexpr size_t kMetricsMaxConns = 32;
constexpr uint64_t kMetricsDeadlineMs = 2000;

std::string http_response(const Shared &sh, const std::string &req) {
    std::string status = "200 OK", body, type = "text/plain; version=0.0.4; charset=utf-8";
    if (req.rfind("GET /metrics", 0) == 0 && req.size() > 12 && (req[12] == ' ' || req[12] == '?')) {
        body = render_metrics(sh);
    } else if (req.rfind("GET ", 0) == 0) {
        status = "404 Not Found";
        body = "try /metrics\n";
        type = "text/plain";
    } else {
        status = "405 Method Not Allowed";
        body = "GET only\n";
        type = "text/plain";
    }
    return "HTTP/1.1 " + status + "\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
}

} // namespace

// A slow or stalled scraper (a byte now and then) holds only its own slot
// until its deadline: every other one is served meanwhile.
void MetricsServer::run() {
    std::vector<HttpConn> conns;
    std::vector<pollfd> pf;
    while (!sh_.stop.load()) {
        pf.clear();
        pf.push_back({fd_, POLLIN, 0});
        for (const HttpConn &c : conns) pf.push_back({c.fd, short(c.out.empty() ? POLLIN : POLLOUT), 0});
        if (poll(pf.data(), pf.size(), 200) < 0 && errno != EINTR) continue;
        uint64_t now = now_ms_monotonic();
        for (size_t i = 0; i < conns.size(); ++i) {
            HttpConn &c = conns[i];
            short re = pf[i + 1].revents;
            if (!re) continue;
            if (c.out.empty()) {
                char buf[2048];
                ssize_t k = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
                if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
                    c.deadline_ms = 0;  // gone: closed below
                    continue;
                }
                if (k > 0) c.in.append(buf, size_t(k));
                bool done = c.in.find("\r\n\r\n") != std::string::npos || c.in.find("\n\n") != std::string::npos;
                if (done || c.in.size() >= 8192) c.out = http_response(sh_, c.in);
            }
            if (!c.out.empty()) {
                ssize_t k = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k > 0) c.out_off += size_t(k);
                if ((k < 0 && errno != EAGAIN && errno != EINTR) || c.out_off == c.out.size()) c.deadline_ms = 0;
            }
        }
        // Finished, failed or past their deadline: closed.
        for (size_t i = 0; i < conns.size();) {
            if (conns[i].deadline_ms <= now) {
                close(conns[i].fd);
                conns[i] = std::move(conns.back());
                conns.pop_back();
            } else {
                ++i;
            }
        }
        if (pf[0].revents & POLLIN) {
            for (;;) {
                int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (c < 0) break;
                if (conns.size() >= kMetricsMaxConns) {  // the oldest goes: scrapers are few
                    size_t oldest = 0;
                    for (size_t i = 1; i < conns.size(); ++i)
                        if (conns[i].deadline_ms < conns[oldest].deadline_ms) oldest = i;
                    close(conns[oldest].fd);
                    conns[oldest] = std::move(conns.back());
                    conns.pop_back();
                }
                conns.push_back(HttpConn{c, now + kMetricsDeadlineMs, {}, {}, 0});
            }
        }
    }
    for (HttpConn &c : conns) close(c.fd);
}

} // namespace aisid::resolver
