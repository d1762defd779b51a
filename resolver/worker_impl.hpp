// Inside one worker (internal to worker*.cpp). The worker is split by concern:
//   worker.cpp           the loop, settings refresh, the inbox, rate limiting
//   worker_udp.cpp       the UDP front end (recvmmsg/sendmmsg batches)
//   worker_tcp.cpp       the TCP front end (RFC 7766 connections)
//   worker_upstream.cpp  executes the Forwarder's actions: upstream UDP/TCP
//                        sockets and the DoT/DoH transports
//   authority_runner.cpp the thread that runs the authority hook
// Decisions (which upstream, when, what a client is told) are the
// Forwarder's (forwarder.hpp); the code here only moves bytes.
#pragma once

#include "aisid/resolver/forwarder.hpp"
#include "aisid/core/log.hpp"
#include "aisid/transport/transport.hpp"
#include "aisid/resolver/worker.hpp"

#include <sys/socket.h>

#include <optional>
#include <unordered_map>

namespace aisid::resolver {

uint64_t now_us_monotonic();

namespace worker_detail {

enum Tag : uint64_t { kUdpListen = 1, kTcpListen = 2, kTcpConn = 3, kUpstream = 4, kWake = 5, kTls = 6 };
inline uint64_t tag(Tag t, uint64_t v) { return (uint64_t(t) << 56) | v; }

constexpr int kBatch = 64;
constexpr size_t kBuf = 4096;
constexpr unsigned kMaxInflightPerConn = 64;

inline int set_opt(int fd, int level, int opt, int v) { return setsockopt(fd, level, opt, &v, sizeof v); }

// A client's TCP connection.
struct Conn {
    int fd = -1;
    uint64_t id = 0;
    sockaddr_storage peer{};
    std::string in;
    std::string out;
    size_t out_off = 0;
    uint64_t last_ms = 0;
    unsigned inflight = 0;
    int32_t client_slot = -1;   // in Shared::client_conns
    uint64_t out_since_ms = 0;  // the last time a reply byte went out while some were waiting
    bool want_out = false;
    bool paused = false;      // not reading: too many queries of this client in flight
    bool processing = false;  // inside process_conn (replies may come back re-entrantly)
};

// One upstream socket (a UDP or TCP try of the Forwarder).
struct UpSocket {
    uint64_t try_id = 0;
    int fd = -1;
    bool tcp = false;
    bool connected = false;
    std::string buf;  // TCP: the outgoing query, then the incoming answer
    size_t off = 0;   // TCP: bytes of buf sent; SIZE_MAX once reading
};

} // namespace worker_detail

struct Worker::Impl {
    using Conn = worker_detail::Conn;
    using UpSocket = worker_detail::UpSocket;
    static constexpr int kBatch = worker_detail::kBatch;
    static constexpr size_t kBuf = worker_detail::kBuf;

    Shared &sh;
    unsigned index;
    ListenSockets socks;
    AuthorityRunner *auth;
    Worker *self = nullptr;
    int ep = -1;
    int wake_fd = -1;
    WorkerStats &stats;

    std::shared_ptr<const Runtime> rt;
    uint64_t rt_gen = 0;
    std::shared_ptr<const ZoneSet> zones;
    uint64_t zones_gen = 0;
    CoreSettings fallback_settings;
    Cache &cache;  // shared by every worker (Shared::cache)
    QueryCore core;
    ForwarderOptions fwd_opts;
    Forwarder fwd;
    bool running_actions = false;

    std::unordered_map<uint64_t, Conn> conns;
    uint64_t next_conn = 1;
    uint64_t next_sweep_ms = 0;
    uint64_t rrl_limited_since_log = 0, rrl_next_log_ms = 0;

    // From other threads: the authority's replies, and upstream answers of
    // questions another worker asked for us.
    std::mutex inbox_mu;
    std::vector<Delivery> inbox;
    std::vector<std::pair<std::string, std::string>> shared_inbox;  // cache key, upstream answer ("" = failed)

    // Upstream sockets (UDP and TCP tries), by descriptor and by try.
    std::unordered_map<int, UpSocket> up_socks;
    std::unordered_map<uint64_t, int> try_fd;

    // DoT/DoH upstreams (sdk/transport): one transport per URI in this worker,
    // driven by this loop (their descriptors are in epoll as kTls). Completions
    // are queued and handed to the Forwarder after the descriptors are synced,
    // so a socket the transport closed is never confused with one a new try opens.
    struct TlsUp {
        std::unique_ptr<transport::Upstream> t;
        std::string ca;
    };
    std::unordered_map<std::string, TlsUp> tls_ups;
    std::vector<std::pair<uint64_t, transport::UpstreamResult>> tls_done;  // try id, result
    std::unordered_map<int, uint32_t> tls_fds;
    std::unordered_map<uint64_t, uint32_t> tls_tries;  // encrypted tries in flight: try id -> upstream

    // UDP batches (recvmmsg / sendmmsg).
    mmsghdr in_hdr[kBatch];
    iovec in_iov[kBatch];
    sockaddr_storage in_addr[kBatch];
    uint8_t in_buf[kBatch][kBuf];
    alignas(cmsghdr) uint8_t in_ctl[kBatch][64];
    alignas(cmsghdr) uint8_t out_ctl[kBatch][64];
    mmsghdr out_hdr[kBatch];
    iovec out_iov[kBatch];
    uint8_t out_buf[kBatch][kBuf];
    uint8_t scratch[65535 + 2];

    Impl(Shared &s, unsigned i, ListenSockets ls, AuthorityRunner *a);
    ~Impl();

    // worker.cpp
    void refresh();
    void ep_add(int fd, uint32_t events, uint64_t data);
    void ep_mod(int fd, uint32_t events, uint64_t data);
    bool rate_limit(const sockaddr_storage &peer, uint8_t *buf, size_t &len, uint64_t now_ms,
                    const CoreResult *r = nullptr);
    void send_udp_reply(int fd, const sockaddr_storage &peer, const std::string &ctl_in, uint8_t *buf, size_t len,
                        uint64_t now_ms);
    void account(const CoreResult &r, uint64_t start_ns);
    bool v4_mapped(const sockaddr_storage &peer);
    void drain_inbox();
    void open_fds();
    void run();
    void sweep(uint64_t now);

    // worker_udp.cpp
    static size_t reply_ctl(const msghdr &in, uint8_t *out, size_t cap);
    void on_udp(int fd, bool wild);

    // worker_tcp.cpp
    uint64_t idle_victim(std::optional<sockaddr_storage> peer = std::nullopt);
    void on_accept(int lfd);
    void close_conn(uint64_t id);
    void tcp_send(Conn &c, const uint8_t *msg, size_t len);
    size_t out_waiting(const Conn &c) const { return c.out.size() - c.out_off; }
    void conn_events(Conn &c);
    void conn_reply_done(uint64_t id);
    void on_conn(uint64_t id, uint32_t events);
    void process_conn(uint64_t id);
    void sweep_conns(uint64_t now);

    // worker_upstream.cpp
    bool admit(ClientRef &c);
    // `chain`: a local CNAME chain that left our zones (CoreResult::cname_out); its target is asked.
    void forward(const Query &q, const uint8_t *msg, size_t len, ClientRef c, const uint8_t *chain = nullptr,
                 size_t chain_len = 0);
    void prefetch(const Query &q, const uint8_t *msg, size_t len);
    void run_actions();
    void execute(FwdAction &a);
    void send_udp(FwdAction &a, const UpstreamConfig &up);
    void send_tcp(FwdAction &a, const UpstreamConfig &up);
    void send_encrypted(FwdAction &a, const UpstreamConfig &up);
    void cancel(uint64_t try_id);
    void deliver_reply(FwdAction &a);
    void share(FwdAction &a);
    void close_up(int fd);
    void on_upstream(int fd, uint32_t events);
    void on_upstream_tcp(UpSocket &s, uint32_t events);
    transport::Upstream *tls_upstream(const UpstreamConfig &up);
    void tls_sync_fds();
    void tls_after();
    void on_tls(int fd, uint32_t events);
    void sweep_upstreams(uint64_t now);

    // authority hand-off (worker.cpp)
    void to_authority(const uint8_t *msg, size_t len, bool tcp, int udp_fd, const sockaddr_storage &peer,
                      uint64_t conn_id, std::string ctl = {});
};

} // namespace aisid::resolver
