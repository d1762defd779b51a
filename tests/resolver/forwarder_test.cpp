// The Forwarder (resolver/include/aisid/resolver/forwarder.hpp) driven by scripts with a fake clock
// and no sockets, in the manner of Unbound's .rpl replay tests. Each script in
// tests/resolver/forwarder/ lists client queries, upstream answers, time steps and
// the actions expected in reply; the interpreter below plays the worker's part
// (cache and local answers through QueryCore::handle first, misses to the
// Forwarder, answers shared between workers delivered at once).
//
// Script lines ('#' starts a comment):
//   upstreams udp udp tls        the configured upstreams, in order
//   workers N                    N forwarders sharing one cache and registry
//   stale-timeout MS             the RFC 8767 client-response timer (default 1800)
//   [wN] query C NAME TYPE [tcp] [do] [norec]
//                                client C asks (through worker N, default 0)
//   answer T RCODE [tc] [aa] [badid] [wrongq] [; RR]... [; auth: RR]...
//                                the upstream of try T answers
//   error T                      the transport of try T failed
//   time +MS                     the clock moves on; every forwarder ticks
//   [wN] send T up=I PROTO NAME TYPE
//                                expected: a try to upstream I over PROTO (udp,
//                                tcp, encrypted) for NAME TYPE, named T from here on
//   [wN] reply C RCODE [outcome=O] [TYPE RDATA] [ttl<=N] [ttl>=N] [an=N]
//                                expected: the reply to client C
//   [wN] nothing                 expected: no send and no reply pending
#include <doctest/doctest.h>

#include "aisid/resolver/forwarder.hpp"

#include <ldns/ldns.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>

using namespace aisid::resolver;

namespace {

struct Pkt {
    ldns_pkt *p = nullptr;
    ~Pkt() {
        if (p) ldns_pkt_free(p);
    }
};

std::string wire_of(ldns_pkt *p) {
    uint8_t *buf = nullptr;
    size_t len = 0;
    REQUIRE(ldns_pkt2wire(&buf, p, &len) == LDNS_STATUS_OK);
    std::string s(reinterpret_cast<char *>(buf), len);
    free(buf);
    return s;
}

std::vector<std::string> words(const std::string &line) {
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string x; in >> x;) w.push_back(x);
    return w;
}

std::string lower(std::string s) {
    for (char &c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

class Script {
public:
    explicit Script(std::string path) : path_(std::move(path)) {}

    void run() {
        std::ifstream f(path_);
        REQUIRE_MESSAGE(f.good(), "cannot read " << path_);
        std::string line;
        while (std::getline(f, line)) {
            ++lineno_;
            if (auto h = line.find('#'); h != std::string::npos) line.erase(h);
            if (words(line).empty()) continue;
            INFO(path_ << ":" << lineno_ << ": " << line);
            step(line);
        }
        for (size_t w = 0; w < fwds_.size(); ++w) {
            INFO(path_ << ": at the end, worker " << w);
            expect_nothing(w);
        }
    }

private:
    void setup() {
        if (!fwds_.empty()) return;
        rt_.timeout_ms = 1500;
        rt_.max_inflight = 4096;
        cs_.stale_seconds = 86400;
        cs_.stale_answer_ttl = 30;
        core_ = std::make_unique<QueryCore>(cache_, cs_);
        for (unsigned w = 0; w < workers_; ++w) {
            ForwarderOptions o;
            o.stale_client_timeout_ms = stale_timeout_;
            o.worker = w;
            o.preferred = &preferred_;
            fwds_.push_back(std::make_unique<Forwarder>(*core_, o, workers_ > 1 ? &registry_ : nullptr,
                                                        [this] { return next_id_++; }));
            fwds_.back()->set_runtime(&rt_);
            queues_.emplace_back();
        }
    }

    void step(const std::string &line) {
        auto w = words(line);
        size_t worker = 0;
        if (w[0].size() >= 2 && w[0][0] == 'w' && std::isdigit(static_cast<unsigned char>(w[0][1]))) {
            worker = std::stoul(w[0].substr(1));
            w.erase(w.begin());
        }
        const std::string &cmd = w[0];
        if (cmd == "upstreams") {
            for (size_t i = 1; i < w.size(); ++i) {
                auto h = std::make_shared<UpstreamHealth>();
                h->up.text = (w[i] == "tls" ? "tls://192.0.2." : "192.0.2.") + std::to_string(i);
                h->up.encrypted = w[i] == "tls";
                rt_.upstreams.push_back(h);
            }
            return;
        }
        if (cmd == "workers") {
            workers_ = unsigned(std::stoul(w.at(1)));
            return;
        }
        if (cmd == "stale-timeout") {
            stale_timeout_ = uint32_t(std::stoul(w.at(1)));
            return;
        }
        setup();
        REQUIRE(worker < fwds_.size());
        if (cmd == "query") return query(worker, w);
        if (cmd == "answer") return answer(line);
        if (cmd == "error") {
            Try &t = tries_.at(w.at(1));
            fwds_[t.worker]->upstream_error(t.id, now_us_);
            return collect();
        }
        if (cmd == "time") {
            now_us_ += std::stoull(w.at(1).substr(1)) * 1000;
            for (auto &f : fwds_) f->tick(now_us_);
            return collect();
        }
        if (cmd == "send") return expect_send(worker, w);
        if (cmd == "reply") return expect_reply(worker, w);
        if (cmd == "nothing") return expect_nothing(worker);
        FAIL("unknown script command " << cmd);
    }

    // What the worker does with every action: keep it for the expectations,
    // and hand shared answers to the workers waiting on them at once.
    void collect() {
        for (bool more = true; more;) {
            more = false;
            for (size_t w = 0; w < fwds_.size(); ++w) {
                for (FwdAction &a : fwds_[w]->take_actions()) {
                    if (a.kind == FwdAction::Kind::share) {
                        for (size_t o = 0; o < fwds_.size(); ++o)
                            if (a.workers >> o & 1)
                                fwds_[o]->shared_answer(a.key, reinterpret_cast<const uint8_t *>(a.bytes.data()),
                                                        a.bytes.size(), now_us_);
                        more = true;
                        continue;
                    }
                    queues_[w].push_back(std::move(a));
                }
            }
        }
    }

    void query(size_t worker, const std::vector<std::string> &w) {
        const std::string &cname = w.at(1);
        bool tcp = false, do_bit = false, rd = true;
        for (size_t i = 4; i < w.size(); ++i) {
            if (w[i] == "tcp") tcp = true;
            else if (w[i] == "do") do_bit = true;
            else if (w[i] == "norec") rd = false;
            else FAIL("unknown query option " << w[i]);
        }
        ldns_rdf *name = ldns_dname_new_frm_str(w.at(2).c_str());
        REQUIRE(name);
        Pkt qp;
        qp.p = ldns_pkt_query_new(name, ldns_get_rr_type_by_name(w.at(3).c_str()), LDNS_RR_CLASS_IN,
                                  rd ? LDNS_RD : 0);
        ldns_pkt_set_id(qp.p, uint16_t(0x100 + clients_.size()));
        if (do_bit) {
            ldns_pkt_set_edns_udp_size(qp.p, 1232);
            ldns_pkt_set_edns_do(qp.p, true);
        }
        std::string msg = wire_of(qp.p);
        uint64_t conn = clients_.size() + 1;
        clients_[cname] = conn;
        Query q;
        sockaddr_storage peer{};
        peer.ss_family = AF_INET6;
        reinterpret_cast<sockaddr_in6 &>(peer).sin6_addr = in6addr_loopback;
        uint8_t out[65535];
        // The worker's order: local zones and the cache first (QueryCore), the
        // Forwarder only for a miss; a hit near expiry also asks for a prefetch.
        CoreResult r = core_->handle(reinterpret_cast<const uint8_t *>(msg.data()), msg.size(), peer, tcp,
                                 now_us_ / 1000, out, sizeof out, q);
        if (r.verdict == Verdict::Pass) {
            ClientRef c;
            c.tcp = tcp;
            c.conn_id = conn;
            fwds_[worker]->query(q, std::move(msg), std::move(c), now_us_);
        } else {
            FwdAction a;
            a.kind = FwdAction::Kind::reply;
            a.client.conn_id = conn;
            a.outcome = r.outcome;
            a.bytes.assign(reinterpret_cast<const char *>(out), r.len);
            queues_[worker].push_back(std::move(a));
            if (r.prefetch) fwds_[worker]->prefetch(q, std::move(msg), now_us_);
        }
        collect();
    }

    void answer(const std::string &line) {
        std::vector<std::string> parts;
        {
            std::string cur;
            for (char c : line) {
                if (c == ';') {
                    parts.push_back(cur);
                    cur.clear();
                } else {
                    cur += c;
                }
            }
            parts.push_back(cur);
        }
        auto w = words(parts[0]);
        Try &t = tries_.at(w.at(1));
        Pkt sent;
        REQUIRE(ldns_wire2pkt(&sent.p, reinterpret_cast<const uint8_t *>(t.query.data()), t.query.size()) ==
                LDNS_STATUS_OK);
        Pkt a;
        a.p = ldns_pkt_new();
        ldns_pkt_set_id(a.p, ldns_pkt_id(sent.p));
        ldns_pkt_set_qr(a.p, true);
        ldns_pkt_set_rd(a.p, ldns_pkt_rd(sent.p));
        ldns_pkt_set_ra(a.p, true);
        ldns_lookup_table *rc = ldns_lookup_by_name(ldns_rcodes, w.at(2).c_str());
        REQUIRE_MESSAGE(rc, "unknown rcode " << w.at(2));
        ldns_pkt_set_rcode(a.p, uint8_t(rc->id));
        ldns_rr *question = ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(sent.p), 0));
        for (size_t i = 3; i < w.size(); ++i) {
            if (w[i] == "tc") ldns_pkt_set_tc(a.p, true);
            else if (w[i] == "aa") ldns_pkt_set_aa(a.p, true);
            else if (w[i] == "badid") ldns_pkt_set_id(a.p, uint16_t(ldns_pkt_id(sent.p) + 1));
            else if (w[i] == "wrongq") {
                ldns_rdf_deep_free(ldns_rr_owner(question));
                ldns_rr_set_owner(question, ldns_dname_new_frm_str("other.invalid."));
            } else FAIL("unknown answer option " << w[i]);
        }
        ldns_pkt_push_rr(a.p, LDNS_SECTION_QUESTION, question);
        if (ldns_pkt_edns(sent.p)) {
            ldns_pkt_set_edns_udp_size(a.p, 1232);
            ldns_pkt_set_edns_do(a.p, ldns_pkt_edns_do(sent.p));
        }
        for (size_t i = 1; i < parts.size(); ++i) {
            std::string rr = parts[i];
            ldns_pkt_section sec = LDNS_SECTION_ANSWER;
            if (auto at = rr.find("auth:"); at != std::string::npos) {
                sec = LDNS_SECTION_AUTHORITY;
                rr.erase(0, at + 5);
            }
            rr.erase(0, rr.find_first_not_of(' '));
            rr.erase(rr.find_last_not_of(' ') + 1);
            ldns_rr *r = nullptr;
            REQUIRE_MESSAGE(ldns_rr_new_frm_str(&r, rr.c_str(), 0, nullptr, nullptr) == LDNS_STATUS_OK, rr);
            ldns_pkt_push_rr(a.p, sec, r);
        }
        std::string bytes = wire_of(a.p);
        fwds_[t.worker]->upstream_bytes(t.id, reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size(),
                                        now_us_);
        collect();
    }

    void expect_send(size_t worker, const std::vector<std::string> &w) {
        auto &q = queues_[worker];
        auto it = std::find_if(q.begin(), q.end(), [](const FwdAction &a) { return a.kind == FwdAction::Kind::send; });
        REQUIRE_MESSAGE(it != q.end(), "no try was sent");
        FwdAction a = std::move(*it);
        q.erase(it);
        REQUIRE(w.size() >= 6);
        CHECK(w[2] == "up=" + std::to_string(a.upstream));
        CHECK(w[3] == proto_name(a.proto));
        Pkt p;
        REQUIRE(ldns_wire2pkt(&p.p, reinterpret_cast<const uint8_t *>(a.bytes.data()), a.bytes.size()) ==
                LDNS_STATUS_OK);
        ldns_rr *question = ldns_rr_list_rr(ldns_pkt_question(p.p), 0);
        char *owner = ldns_rdf2str(ldns_rr_owner(question));
        CHECK(lower(owner) == lower(w[4]));
        free(owner);
        CHECK(ldns_rr_get_type(question) == ldns_get_rr_type_by_name(w[5].c_str()));
        tries_[w[1]] = Try{worker, a.try_id, a.bytes};
    }

    void expect_reply(size_t worker, const std::vector<std::string> &w) {
        uint64_t conn = clients_.at(w.at(1));
        auto &q = queues_[worker];
        auto it = std::find_if(q.begin(), q.end(), [&](const FwdAction &a) {
            return a.kind == FwdAction::Kind::reply && a.client.conn_id == conn;
        });
        REQUIRE_MESSAGE(it != q.end(), "no reply to " << w[1]);
        FwdAction a = std::move(*it);
        q.erase(it);
        Pkt p;
        REQUIRE(ldns_wire2pkt(&p.p, reinterpret_cast<const uint8_t *>(a.bytes.data()), a.bytes.size()) ==
                LDNS_STATUS_OK);
        ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, ldns_pkt_get_rcode(p.p));
        CHECK(std::string(rc ? rc->name : "?") == w.at(2));
        CHECK(ldns_pkt_id(p.p) == 0x100 + conn - 1);  // the client's own ID, never ours
        ldns_rr_list *an = ldns_pkt_answer(p.p);
        for (size_t i = 3; i < w.size(); ++i) {
            const std::string &x = w[i];
            if (x.rfind("outcome=", 0) == 0) {
                CHECK(std::string(outcome_name(a.outcome)) == x.substr(8));
            } else if (x.rfind("an=", 0) == 0) {
                CHECK(ldns_rr_list_rr_count(an) == std::stoul(x.substr(3)));
            } else if (x.rfind("ttl<=", 0) == 0 || x.rfind("ttl>=", 0) == 0) {
                uint32_t lim = uint32_t(std::stoul(x.substr(5)));
                REQUIRE(ldns_rr_list_rr_count(an) > 0);
                uint32_t ttl = ldns_rr_ttl(ldns_rr_list_rr(an, 0));
                if (x[3] == '<') CHECK(ttl <= lim);
                else CHECK(ttl >= lim);
            } else {
                // TYPE RDATA: an answer record of that type with that data.
                REQUIRE(i + 1 < w.size());
                ldns_rr_type type = ldns_get_rr_type_by_name(x.c_str());
                const std::string &want = w[++i];
                bool found = false;
                for (size_t k = 0; k < ldns_rr_list_rr_count(an); ++k) {
                    ldns_rr *rr = ldns_rr_list_rr(an, k);
                    if (ldns_rr_get_type(rr) != type) continue;
                    char *s = ldns_rdf2str(ldns_rr_rdf(rr, 0));
                    found = found || want == s;
                    free(s);
                }
                CHECK_MESSAGE(found, "no " << x << " " << want << " in the answer");
            }
        }
    }

    void expect_nothing(size_t worker) {
        for (const FwdAction &a : queues_[worker]) {
            std::string what = a.kind == FwdAction::Kind::send ? std::string("a send to upstream ") + std::to_string(a.upstream)
                                                               : "a reply to client #" + std::to_string(a.client.conn_id);
            CHECK_MESSAGE(a.kind == FwdAction::Kind::cancel, "unexpected: " << what);
        }
        queues_[worker].clear();
    }

    struct Try {
        size_t worker = 0;
        uint64_t id = 0;
        std::string query;
    };

    std::string path_;
    unsigned lineno_ = 0;
    unsigned workers_ = 1;
    uint32_t stale_timeout_ = 1800;
    Runtime rt_;
    CoreSettings cs_;
    Cache cache_{1 << 20};
    std::unique_ptr<QueryCore> core_;
    InflightRegistry registry_;
    std::atomic<uint32_t> preferred_{0};
    std::vector<std::unique_ptr<Forwarder>> fwds_;
    std::vector<std::vector<FwdAction>> queues_;
    std::map<std::string, Try> tries_;
    std::map<std::string, uint64_t> clients_;
    uint64_t now_us_ = 1000000000;
    uint16_t next_id_ = 0x1000;
};

void run_script(const char *name) { Script(std::string(FORWARDER_SCRIPTS) + "/" + name).run(); }

} // namespace

TEST_CASE("forwarder: failover in order, from the upstream that answered last") { run_script("failover.fwd"); }
TEST_CASE("forwarder: timeouts and retries, then SERVFAIL") { run_script("timeouts.fwd"); }
TEST_CASE("forwarder: a truncated UDP answer is retried over TCP at the same server") { run_script("tc_tcp.fwd"); }
TEST_CASE("forwarder: identical questions share one upstream query, in a worker and across workers") {
    run_script("dedup.fwd");
    run_script("dedup_workers.fwd");
}
TEST_CASE("forwarder: serve-stale after the 1.8 s client-response timer while the refresh goes on") {
    run_script("stale.fwd");
}
TEST_CASE("forwarder: negative answers are cached for the SOA minimum, without SOA not at all") {
    run_script("negative.fwd");
}
TEST_CASE("forwarder: a popular name is refreshed before it expires") { run_script("prefetch.fwd"); }
TEST_CASE("forwarder: answers that are not ours are ignored or fail the try") { run_script("spoofing.fwd"); }
TEST_CASE("forwarder: an encrypted upstream is asked through its transport and fails over in order") {
    run_script("encrypted.fwd");
}
