// DNS over HTTPS (RFC 8484) with the libcurl multi interface: POST of
// application/dns-message (§4.1), HTTP/2 negotiated by ALPN and required
// (§5.2), every query a stream on one shared connection (CURLPIPE_MULTIPLEX,
// PIPEWAIT), certificate and host verification always on, https only.
// Driven through curl's socket/timer callbacks, so the caller's poll loop
// owns the descriptors.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <mutex>

#include "transport_internal.hpp"

namespace aisid::transport {

namespace {

using MultiPtr = std::unique_ptr<CURLM, Deleter<curl_multi_cleanup>>;
using EasyPtr = std::unique_ptr<CURL, Deleter<curl_easy_cleanup>>;
using SlistPtr = std::unique_ptr<curl_slist, Deleter<curl_slist_free_all>>;
using SharePtr = std::unique_ptr<CURLSH, Deleter<curl_share_cleanup>>;

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
    for (char &c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

class DohUpstream;

struct Transfer {
    DohUpstream *owner = nullptr;
    EasyPtr easy;
    std::vector<uint8_t> body;      // the POST body: the query, ID 0, padded
    std::vector<uint8_t> question;  // the caller's query
    std::vector<uint8_t> response;
    std::string content_type;
    int64_t max_age = -1, age = 0;
    uint16_t orig_id = 0;
    bool added_opt = false;
    bool too_big = false;
    Callback cb;
    char errbuf[CURL_ERROR_SIZE] = {0};
};

class DohUpstream final : public Upstream {
public:
    DohUpstream(const UpstreamEndpoint &ep, const Options &opt) : ep_(ep), opt_(opt) {}

    ~DohUpstream() override {
        for (auto &[easy, t] : transfers_) curl_multi_remove_handle(multi_.get(), easy);
        transfers_.clear();
        idle_.clear();
        multi_.reset();
    }

    Expected<bool, Error> init() {
        global_init();
        multi_.reset(curl_multi_init());
        share_.reset(curl_share_init());
        if (!multi_ || !share_) return unexpected(make_error(ErrorKind::http, ep_.uri, "curl init failed"));
        // RFC 8484 §5.2 with HTTP/2: all queries as streams of one connection.
        curl_multi_setopt(multi_.get(), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
        curl_multi_setopt(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
        curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, &DohUpstream::socket_cb);
        curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETDATA, this);
        curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, &DohUpstream::timer_cb);
        curl_multi_setopt(multi_.get(), CURLMOPT_TIMERDATA, this);
        // TLS sessions shared by all transfers, so a reconnect can resume.
        curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        headers_.reset(curl_slist_append(nullptr, "Content-Type: application/dns-message"));
        curl_slist *h = curl_slist_append(headers_.get(), "Accept: application/dns-message");
        if (!h) return unexpected(make_error(ErrorKind::http, ep_.uri, "curl init failed"));
        for (const std::string &r : opt_.resolve) {
            curl_slist *n = curl_slist_append(resolve_.get(), r.c_str());
            if (!n) return unexpected(make_error(ErrorKind::http, ep_.uri, "curl init failed"));
            if (!resolve_) resolve_.reset(n);
        }
        return true;
    }

    const std::string &uri() const override { return ep_.uri; }
    size_t in_flight() const override { return transfers_.size(); }
    const Stats &stats() const override { return stats_; }

    void submit(std::span<const uint8_t> query, Callback cb) override {
        ++stats_.queries;
        if (!check_query(query)) {
            fail(std::move(cb), ErrorKind::bad_query, "not a DNS query with one question");
            done_.deliver();
            return;
        }
        auto t = std::make_unique<Transfer>();
        t->owner = this;
        t->orig_id = uint16_t(query[0] << 8 | query[1]);
        t->question.assign(query.begin(), query.end());
        if (opt_.padding) {
            auto padded = pad_query(query, 128, t->added_opt);  // RFC 8467 §4.1, RFC 8484 §8
            if (!padded) {
                fail(std::move(cb), ErrorKind::bad_query, padded.error());
                done_.deliver();
                return;
            }
            t->body = std::move(*padded);
        } else {
            t->body.assign(query.begin(), query.end());
        }
        // RFC 8484 §4.1: ID 0 keeps the request cache-friendly; the answer is
        // matched by its stream, and gets the caller's ID back.
        t->body[0] = t->body[1] = 0;
        t->cb = std::move(cb);
        // A finished transfer's handle is reused with its options (curl keeps
        // them); only the per-query ones are set again below.
        bool fresh = idle_.empty();
        if (fresh) {
            t->easy.reset(curl_easy_init());
        } else {
            t->easy = std::move(idle_.back());
            idle_.pop_back();
        }
        CURL *e = t->easy.get();
        if (!e) {
            fail(std::move(t->cb), ErrorKind::http, "curl_easy_init failed");
            done_.deliver();
            return;
        }
        if (fresh) {
            curl_easy_setopt(e, CURLOPT_URL, ep_.url.c_str());
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");  // never a clear-text downgrade
            curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
            curl_easy_setopt(e, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_2TLS));
            curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
            curl_easy_setopt(e, CURLOPT_SSLVERSION, long(CURL_SSLVERSION_TLSv1_2));
            if (!opt_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, opt_.ca_file.c_str());
            if (resolve_) curl_easy_setopt(e, CURLOPT_RESOLVE, resolve_.get());
            curl_easy_setopt(e, CURLOPT_SHARE, share_.get());
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, long(opt_.timeout_ms));
            curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, long(opt_.timeout_ms));
            curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, long(std::max<uint32_t>(1, opt_.idle_timeout_ms / 1000)));
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_.get());
            curl_easy_setopt(e, CURLOPT_USERAGENT, "aisid");
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &DohUpstream::write_cb);
            curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &DohUpstream::header_cb);
        }
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, reinterpret_cast<const char *>(t->body.data()));
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, long(t->body.size()));
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
        curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
        curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
        if (curl_multi_add_handle(multi_.get(), e) != CURLM_OK) {
            fail(std::move(t->cb), ErrorKind::http, "curl_multi_add_handle failed");
            done_.deliver();
            return;
        }
        transfers_.emplace(e, std::move(t));
        // Start the transfer now rather than at the caller's next timer tick
        // (curl asks for a 0 ms timeout after curl_multi_add_handle).
        int running = 0;
        timer_.reset();
        curl_multi_socket_action(multi_.get(), CURL_SOCKET_TIMEOUT, 0, &running);
        drain();
        done_.deliver();
    }

    void fds(std::vector<PollFd> &out) const override {
        for (const auto &[fd, ev] : sockets_) out.push_back({fd, ev});
    }

    void process(int fd, short revents) override {
        if (fd < 0 || !sockets_.count(fd) || revents == 0) return;
        int mask = 0;
        if (revents & POLLIN) mask |= CURL_CSELECT_IN;
        if (revents & POLLOUT) mask |= CURL_CSELECT_OUT;
        if (revents & (POLLERR | POLLHUP)) mask |= CURL_CSELECT_ERR;
        int running = 0;
        curl_multi_socket_action(multi_.get(), fd, mask, &running);
        drain();
        done_.deliver();
    }

    std::optional<Clock::time_point> next_deadline() const override { return timer_; }

    void process_timeouts(Clock::time_point now) override {
        if (timer_ && now >= *timer_) {
            timer_.reset();
            int running = 0;
            curl_multi_socket_action(multi_.get(), CURL_SOCKET_TIMEOUT, 0, &running);
            drain();
        }
        done_.deliver();
    }

private:
    static int socket_cb(CURL *, curl_socket_t s, int what, void *userp, void *) {
        auto *self = static_cast<DohUpstream *>(userp);
        switch (what) {
        case CURL_POLL_REMOVE: self->sockets_.erase(s); break;
        case CURL_POLL_IN: self->sockets_[s] = POLLIN; break;
        case CURL_POLL_OUT: self->sockets_[s] = POLLOUT; break;
        case CURL_POLL_INOUT: self->sockets_[s] = POLLIN | POLLOUT; break;
        default: break;
        }
        return 0;
    }

    static int timer_cb(CURLM *, long ms, void *userp) {
        auto *self = static_cast<DohUpstream *>(userp);
        if (ms < 0)
            self->timer_.reset();
        else
            self->timer_ = Clock::now() + std::chrono::milliseconds(ms);
        return 0;
    }

    static size_t write_cb(char *p, size_t size, size_t n, void *userp) {
        auto *t = static_cast<Transfer *>(userp);
        size_t len = size * n;
        if (t->response.size() + len > 65535) {  // a DNS message has a 16-bit length
            t->too_big = true;
            return 0;
        }
        t->response.insert(t->response.end(), p, p + len);
        return len;
    }

    static size_t header_cb(char *p, size_t size, size_t n, void *userp) {
        auto *t = static_cast<Transfer *>(userp);
        std::string line(p, size * n);
        size_t colon = line.find(':');
        if (colon == std::string::npos) return size * n;
        std::string name = lower(line.substr(0, colon));
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
            value.pop_back();
        if (name == "content-type") {
            t->content_type = lower(value);
        } else if (name == "cache-control") {
            // RFC 9111 §5.2.2.1 max-age=N (RFC 8484 §5.1 freshness lifetime).
            std::string v = lower(value);
            size_t at = v.find("max-age=");
            if (at != std::string::npos) {
                t->max_age = std::strtoll(v.c_str() + at + 8, nullptr, 10);
                if (t->max_age < 0) t->max_age = 0;
            }
        } else if (name == "age") {
            t->age = std::max<int64_t>(0, std::strtoll(value.c_str(), nullptr, 10));
        }
        return size * n;
    }

    void fail(Callback cb, ErrorKind k, std::string why) {
        ++stats_.failures;
        done_.add(std::move(cb), unexpected(make_error(k, ep_.uri, std::move(why))));
    }

    void drain() {
        int left = 0;
        while (CURLMsg *m = curl_multi_info_read(multi_.get(), &left)) {
            if (m->msg != CURLMSG_DONE) continue;
            CURL *e = m->easy_handle;
            CURLcode rc = m->data.result;
            auto it = transfers_.find(e);
            if (it == transfers_.end()) continue;
            std::unique_ptr<Transfer> t = std::move(it->second);
            transfers_.erase(it);
            long conns = 0;
            curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &conns);
            stats_.connections += uint64_t(conns);
            stats_.handshakes += uint64_t(conns);  // every https connection is a TLS handshake
            curl_multi_remove_handle(multi_.get(), e);
            finish(*t, rc);
            if (idle_.size() < 256) {
                // Nothing of the finished transfer may stay reachable from the handle.
                curl_easy_setopt(e, CURLOPT_ERRORBUFFER, nullptr);
                curl_easy_setopt(e, CURLOPT_WRITEDATA, nullptr);
                curl_easy_setopt(e, CURLOPT_HEADERDATA, nullptr);
                curl_easy_setopt(e, CURLOPT_PRIVATE, nullptr);
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, nullptr);
                idle_.push_back(std::move(t->easy));
            }
        }
    }

    void finish(Transfer &t, CURLcode rc) {
        CURL *e = t.easy.get();
        if (rc != CURLE_OK) {
            std::string detail = t.errbuf[0] ? t.errbuf : curl_easy_strerror(rc);
            ErrorKind k = ErrorKind::http;
            switch (rc) {
            case CURLE_OPERATION_TIMEDOUT: k = ErrorKind::timeout; break;
            case CURLE_COULDNT_CONNECT:
            case CURLE_COULDNT_RESOLVE_HOST: k = ErrorKind::connect; break;
            case CURLE_PEER_FAILED_VERIFICATION:
            case CURLE_SSL_CACERT_BADFILE:
            case CURLE_SSL_PINNEDPUBKEYNOTMATCH: k = ErrorKind::tls_verify; break;
            case CURLE_SSL_CONNECT_ERROR: k = ErrorKind::tls; break;
            case CURLE_RECV_ERROR:
            case CURLE_SEND_ERROR:
            case CURLE_GOT_NOTHING:
            case CURLE_HTTP2:
            case CURLE_HTTP2_STREAM: k = ErrorKind::closed; break;
            default: break;
            }
            if (rc == CURLE_WRITE_ERROR && t.too_big) detail = "answer larger than 65535 bytes";
            if (k == ErrorKind::tls_verify) detail = "certificate verification failed: " + detail;
            fail(std::move(t.cb), k, detail);
            return;
        }
        long status = 0, version = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
        if (opt_.require_h2 && version != CURL_HTTP_VERSION_2_0) {
            fail(std::move(t.cb), ErrorKind::http, "the server did not negotiate HTTP/2 (RFC 8484 §5.2)");
            return;
        }
        if (status != 200) {
            fail(std::move(t.cb), ErrorKind::http, "HTTP status " + std::to_string(status));
            return;
        }
        if (t.content_type.rfind("application/dns-message", 0) != 0) {
            fail(std::move(t.cb), ErrorKind::http, "unexpected content type '" + t.content_type + "'");
            return;
        }
        std::vector<uint8_t> &w = t.response;
        if (w.size() < 12 || !(w[2] & 0x80) || !same_question(t.question, w)) {
            fail(std::move(t.cb), ErrorKind::bad_answer, "the answer does not match the question");
            return;
        }
        w[0] = uint8_t(t.orig_id >> 8);
        w[1] = uint8_t(t.orig_id);
        if (t.added_opt) strip_opt(w);  // RFC 6891 §7
        UpstreamAnswer a;
        a.upstream = ep_.uri;
        if (t.max_age >= 0) {
            a.http_max_age = std::max<int64_t>(0, t.max_age - t.age);
            // RFC 8484 §5.1: the answer must not outlive its HTTP freshness.
            if (opt_.doh_cap_ttl) cap_ttls(w, uint32_t(std::min<int64_t>(a.http_max_age, INT32_MAX)));
        }
        a.wire = std::move(w);
        ++stats_.answers;
        done_.add(std::move(t.cb), std::move(a));
    }

    UpstreamEndpoint ep_;
    Options opt_;
    SlistPtr headers_;
    SlistPtr resolve_;
    // Destroyed before the share (declared after it): easies reference it.
    SharePtr share_;
    MultiPtr multi_;
    std::map<CURL *, std::unique_ptr<Transfer>> transfers_;
    std::vector<EasyPtr> idle_;  // finished handles, options kept, for the next queries
    std::map<int, short> sockets_;
    std::optional<Clock::time_point> timer_;
    Stats stats_;
    Completions done_;
};

} // namespace

Expected<std::unique_ptr<Upstream>, Error> make_doh(const UpstreamEndpoint &ep, const Options &opt) {
    auto u = std::make_unique<DohUpstream>(ep, opt);
    auto ok = u->init();
    if (!ok) return unexpected(ok.error());
    return std::unique_ptr<Upstream>(std::move(u));
}

} // namespace aisid::transport
