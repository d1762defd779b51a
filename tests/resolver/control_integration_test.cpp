// aisid-control against a real aisidd (--control-socket in a temporary
// directory) and a real Unbound upstream: every command, who may use the
// socket, and what a malformed request gets.
#include "aisidd.hpp"
#include "legacy_upstream.hpp"
#include "net.hpp"
#include "paths.hpp"
#include "skip.hpp"

#include <doctest/doctest.h>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <memory>
#include <regex>
#include <thread>

using namespace aisid::test;
using namespace std::chrono_literals;

namespace {

const char *kSecret = "c2VjcmV0LWZvci1haXNpZC1yZWxpYWJpbGl0eS10ZXN0cyE=";

CmdResult ctl(const std::string &sock, std::vector<std::string> args, std::vector<std::string> prefix = {}) {
    std::vector<std::string> argv = prefix;
    argv.push_back(aisid_control_path());
    argv.push_back("--socket");
    argv.push_back(sock);
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 10000);
}

/// The number after `key=` on the line that starts with `line_start` and a
/// space; -1 when there is no such line or key.
long field(const std::string &text, const std::string &line_start, const std::string &key) {
    std::string want = line_start + " ";
    size_t at = 0;
    while (at < text.size()) {
        size_t eol = text.find('\n', at);
        if (eol == std::string::npos) eol = text.size();
        std::string l = text.substr(at, eol - at);
        if (l.rfind(want, 0) == 0) {
            size_t k = l.find(" " + key + "=");
            if (k == std::string::npos) return -1;
            std::string v = l.substr(k + key.size() + 2);
            return v.empty() || v[0] < '0' || v[0] > '9' ? -1 : std::stol(v);
        }
        at = eol + 1;
    }
    return -1;
}

/// One raw exchange on the control socket: what aisidd writes back until it closes.
std::string raw_exchange(const std::string &sock, const std::string &bytes, bool shut_write) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, sock.data(), sock.size());
    REQUIRE(connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    if (!bytes.empty()) send_all(fd, bytes);
    if (shut_write) shutdown(fd, SHUT_WR);
    std::string out = read_until_closed(fd, 5000);
    close(fd);
    return out;
}

/// True when the control socket takes a connection (an empty request is
/// answered with an error at once).
bool control_accepts(const std::string &sock) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, sock.data(), sock.size());
    bool up = connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    close(fd);
    return up;
}

} // namespace

TEST_CASE("aisid-control: stats move, flush NAME and flush-all send the next query upstream, dump-cache, upstreams") {
    Unbound ub(legacy_upstream({"ttl1.legacy.example. 1 IN A 192.0.2.13"}));
    TempDir dir;
    Aisidd c(AisiddOptions().in(dir).control_socket().example_zone().upstream(ub.addr()).workers(2));
    struct stat st;
    REQUIRE(lstat(c.control_socket.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    // Group aisid when it exists, else root (and aisidd's user) only.
    CHECK((st.st_mode & 0777) == (getgrnam("aisid") ? 0660u : 0600u));

    CmdResult s0 = ctl(c.control_socket, {"stats"});
    REQUIRE_MESSAGE(s0.code == 0, s0.err);
    CHECK(s0.out.find('#') == std::string::npos);  // the series of /metrics, without comments
    CHECK(metric("\n" + s0.out, "aisidd_queries_total{outcome=\"forwarded\"}") == 0);

    CHECK(status_of(dig(c.port, {"www.legacy.example", "A"})) == "NOERROR");
    CHECK(status_of(dig(c.port, {"www.legacy.example", "A"})) == "NOERROR");
    CmdResult s1 = ctl(c.control_socket, {"stats"});
    CHECK(metric("\n" + s1.out, "aisidd_queries_total{outcome=\"forwarded\"}") == 1);
    CHECK(metric("\n" + s1.out, "aisidd_queries_total{outcome=\"cache_hit\"}") == 1);
    CHECK(metric("\n" + s1.out, "aisidd_cache_entries") == 1);

    CmdResult u1 = ctl(c.control_socket, {"upstreams"});
    REQUIRE(u1.code == 0);
    // Answers, not queries: on a loaded machine a try may time out and be repeated.
    CHECK(field(u1.out, ub.addr(), "answers") == 1);
    CHECK(field(u1.out, ub.addr(), "queries") >= 1);
    CHECK(u1.out.find(ub.addr() + " state=up") != std::string::npos);

    // dump-cache: zone-file text with the TTL left, and a stale marker once expired.
    CHECK(status_of(dig(c.port, {"ttl1.legacy.example", "A"})) == "NOERROR");
    CmdResult dump = ctl(c.control_socket, {"dump-cache"});
    REQUIRE(dump.code == 0);
    CHECK(dump.out.find("; www.legacy.example. IN A rcode=NOERROR expires-in=") != std::string::npos);
    CHECK(std::regex_search(dump.out, std::regex("\nwww\\.legacy\\.example\\.\t(29[0-9]|300)\tIN\tA\t192\\.0\\.2\\.10\n")));
    std::this_thread::sleep_for(1100ms);
    dump = ctl(c.control_socket, {"dump-cache"});
    CHECK(dump.out.find("; ttl1.legacy.example. IN A rcode=NOERROR stale expired-ago=") != std::string::npos);
    CHECK(dump.out.find("ttl1.legacy.example.\t0\tIN\tA\t192.0.2.13") != std::string::npos);

    // flush NAME (any case): the next query for it goes upstream again; others stay cached.
    CmdResult f = ctl(c.control_socket, {"flush", "WWW.Legacy.Example"});
    CHECK(f.code == 0);
    CHECK(f.out == "flushed 1 answer(s) for www.legacy.example.\n");
    CHECK(ctl(c.control_socket, {"dump-cache"}).out.find("www.legacy.example.") == std::string::npos);
    CHECK(status_of(dig(c.port, {"www.legacy.example", "A"})) == "NOERROR");
    CHECK(field(ctl(c.control_socket, {"upstreams"}).out, ub.addr(), "answers") == 3);  // www, ttl1, www again
    CHECK(ctl(c.control_socket, {"flush", "www.legacy.example."}).out == "flushed 1 answer(s) for www.legacy.example.\n");
    CHECK(ctl(c.control_socket, {"flush", "nothing.legacy.example"}).out == "flushed 0 answer(s) for nothing.legacy.example.\n");

    // flush-all empties it: both names go upstream again.
    CHECK(status_of(dig(c.port, {"www.legacy.example", "AAAA"})) == "NOERROR");
    CmdResult fa = ctl(c.control_socket, {"flush-all"});
    CHECK(fa.code == 0);
    CHECK(fa.out == "flushed 2 answer(s)\n");  // ttl1 A (stale) and www AAAA
    CHECK(metric("\n" + ctl(c.control_socket, {"stats"}).out, "aisidd_cache_entries") == 0);
    CHECK(status_of(dig(c.port, {"www.legacy.example", "AAAA"})) == "NOERROR");
    CHECK(field(ctl(c.control_socket, {"upstreams"}).out, ub.addr(), "answers") == 5);

    // A negative answer shows as such, with the SOA it is cached by; DO shows too.
    CHECK(status_of(dig(c.port, {"nx.legacy.example", "A"})) == "NXDOMAIN");
    CHECK(status_of(dig(c.port, {"+dnssec", "www.legacy.example", "A"})) == "NOERROR");
    dump = ctl(c.control_socket, {"dump-cache"});
    CHECK(dump.out.find("; nx.legacy.example. IN A rcode=NXDOMAIN negative expires-in=") != std::string::npos);
    CHECK(std::regex_search(dump.out, std::regex("\nlegacy\\.example\\.\t[0-9]+\tIN\tSOA\tns\\.legacy\\.example\\. ")));
    CHECK(dump.out.find("; www.legacy.example. IN A rcode=NOERROR +do expires-in=") != std::string::npos);

    // The upstream goes away: after three failures in a row it shows down.
    ub.stop();
    for (const char *n : {"a.legacy.example", "b.legacy.example", "c.legacy.example"})
        CHECK(status_of(dig(c.port, {n, "A"})) == "SERVFAIL");
    CmdResult u2 = ctl(c.control_socket, {"upstreams"});
    CHECK(u2.out.find(ub.addr() + " state=down") != std::string::npos);
    CHECK(field(u2.out, ub.addr(), "failures-in-a-row") >= 3);
    CHECK(field(u2.out, ub.addr(), "answers") == 7);
    CHECK(c.proc.stop() == 0);
    CHECK(lstat(c.control_socket.c_str(), &st) != 0);  // removed on exit
}

TEST_CASE("aisid-control reload picks up a changed zone file and zone-status shows its serial, a broken one changes nothing") {
    TempDir z;
    std::string path = z.file("ai.example.zone");
    std::string good = read_file(example_zone_path());
    write_file(path, good);
    TempDir dir;
    Aisidd c(AisiddOptions().in(dir).control_socket().zone(path).upstream("127.0.0.1:9"));
    CmdResult zs = ctl(c.control_socket, {"zone-status"});
    REQUIRE(zs.code == 0);
    CHECK(std::regex_search(zs.out, std::regex("^ai\\.example\\. serial=2026112501 source=file:" + path +
                                               " loaded=20[0-9-]+T[0-9:]+Z\n$")));
    CHECK(dig(c.port, {"+short", "sam.segmentation.text.ai.example", "AAAA"}).empty());

    std::string next = std::regex_replace(good, std::regex("2026112501"), "2026112502") +
                       "sam.segmentation.text AAAA 2001:db8:abcd:12:2:3:b:0\n";
    write_file(path, next);
    CmdResult r = ctl(c.control_socket, {"reload"});
    CHECK_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == "reloaded: 1 zone(s), 1 upstream(s)\n");
    CHECK(field(ctl(c.control_socket, {"zone-status"}).out, "ai.example.", "serial") == 2026112502);
    CHECK(dig(c.port, {"+short", "sam.segmentation.text.ai.example", "AAAA"}) == "2001:db8:abcd:12:2:3:b:0\n");
    CHECK(metric("\n" + ctl(c.control_socket, {"stats"}).out, "aisidd_reloads_total{result=\"ok\"}") == 1);

    // Broken: exit 2 with FILE:LINE, and the old zone stays (serial and data).
    int lines = int(std::count(next.begin(), next.end(), '\n'));
    write_file(path, next + "broken AAAA not-an-address\n");
    r = ctl(c.control_socket, {"reload"});
    CHECK(r.code == 2);
    CHECK(r.err.find("aisid-control: reload failed, nothing changed: " + path + ":" + std::to_string(lines + 1) + ":") ==
          0);
    CHECK(field(ctl(c.control_socket, {"zone-status"}).out, "ai.example.", "serial") == 2026112502);
    CHECK(dig(c.port, {"+short", "sam.segmentation.text.ai.example", "AAAA"}) == "2001:db8:abcd:12:2:3:b:0\n");
    // SIGHUP runs the same reload: same outcome, counted with it.
    write_file(path, good);
    c.proc.signal(SIGHUP);
    long serial = 0;
    for (int i = 0; i < 50 && serial != 2026112501; ++i) {
        std::this_thread::sleep_for(20ms);
        serial = field(ctl(c.control_socket, {"zone-status"}).out, "ai.example.", "serial");
    }
    CHECK(serial == 2026112501);
    CmdResult st = ctl(c.control_socket, {"stats"});
    CHECK(metric("\n" + st.out, "aisidd_reloads_total{result=\"ok\"}") == 2);
    CHECK(metric("\n" + st.out, "aisidd_reloads_total{result=\"failed\"}") == 1);
}

TEST_CASE("aisid-control zone-status: a journaled primary and a secondary whose primary is away") {
    TempDir state;
    TempDir dir;
    Aisidd c(AisiddOptions()
                 .in(dir)
                 .control_socket()
                 .example_zone()
                 .upstream("127.0.0.1:9")
                 .args({"--key", std::string("k1:") + kSecret, "--update-key", "k1"})
                 .state_dir(state.path)
                 .args({"--secondary", "sec.example=127.0.0.1:9"}));
    std::string out;
    for (int i = 0; i < 100; ++i) {
        out = ctl(c.control_socket, {"zone-status"}).out;
        if (field(out, "sec.example.", "failures") >= 1) break;
        std::this_thread::sleep_for(20ms);
    }
    CHECK(std::regex_search(out, std::regex("(^|\n)ai\\.example\\. serial=2026112501 source=file:" + example_zone_path() +
                                            " loaded=\\S+ journal=" + state.path + "/ai\\.example\\.jnl updated=never "
                                            "unsaved-changes=0\n")));
    CHECK(std::regex_search(out, std::regex("(^|\n)sec\\.example\\. serial=none source=axfr:127\\.0\\.0\\.1:9 "
                                            "refreshed=never next-refresh=\\S+ failures=[1-9][0-9]* last-error=\"")));
}

TEST_CASE("aisid-control: malformed requests get an error and aisidd keeps serving, the socket is not taken twice") {
    TempDir dir;
    Aisidd c(AisiddOptions().in(dir).control_socket().example_zone().upstream("127.0.0.1:9"));
    CHECK(raw_exchange(c.control_socket, std::string("st\x01\xffts\n", 7), false) ==
          "error malformed request: control characters or non-ASCII bytes\n");
    CHECK(raw_exchange(c.control_socket, std::string(600, 'a'), false) == "error request longer than 512 bytes\n");
    CHECK(raw_exchange(c.control_socket, "", true).rfind("error empty request; commands: stats, flush NAME,", 0) == 0);
    CHECK(raw_exchange(c.control_socket, "stats now\n", false) == "error stats takes no arguments\n");
    CHECK(raw_exchange(c.control_socket, "flush\n", false) == "error flush takes 1 argument\n");
    CHECK(raw_exchange(c.control_socket, "flush " + std::string(300, 'a') + "\n", false).rfind("error bad name '", 0) == 0);
    CHECK(raw_exchange(c.control_socket, "frobnicate\n", false).rfind("error unknown command 'frobnicate'", 0) == 0);
    CHECK(raw_exchange(c.control_socket, "stats", true).rfind("ok\naisidd_queries_total", 0) == 0);  // ended by EOF: fine
    CHECK(raw_exchange(c.control_socket, "", false) == "error no request line within 2 s\n");       // silent: dropped
    // The client's own checks: exit 2 with the reason.
    CmdResult u = ctl(c.control_socket, {});
    CHECK(u.code == 2);
    CHECK(u.err.find("aisid-control: no command given") == 0);
    CHECK(ctl(c.control_socket, {"flush", "a", "b"}).code == 2);
    CmdResult bad = ctl(c.control_socket, {"frobnicate"});
    CHECK(bad.code == 2);
    CHECK(bad.err.find("aisid-control: unknown command 'frobnicate'") == 0);
    CHECK(ctl(c.control_socket, {"zone-status"}).code == 0);  // still serving
    CHECK(status_of(dig(c.port, {"yolo.detection.image.ai.example", "AAAA"})) == "NOERROR");
    // Nothing there: exit 3.
    CmdResult gone = ctl(dir.file("nothing"), {"stats"});
    CHECK(gone.code == 3);
    CHECK(gone.err.find("cannot reach aisidd at") != std::string::npos);
    // A second aisidd on the same path is refused, and so is a path that is not a socket.
    CmdResult second = run({aisidd_path(), "--listen", "127.0.0.1:" + std::to_string(free_port()), "--upstream",
                            "127.0.0.1:9", "--control-socket", c.control_socket});
    CHECK(second.code == 3);
    CHECK(second.err.find("--control-socket " + c.control_socket + ": another process serves it") != std::string::npos);
    write_file(dir.file("plain"), "x");
    CmdResult plain = run({aisidd_path(), "--listen", "127.0.0.1:" + std::to_string(free_port()), "--upstream",
                           "127.0.0.1:9", "--control-socket", dir.file("plain")});
    CHECK(plain.code == 3);
    CHECK(plain.err.find("exists and is not a socket") != std::string::npos);
    CHECK(ctl(c.control_socket, {"stats"}).code == 0);
    // A socket file left by a killed aisidd is replaced.
    c.proc.signal(SIGKILL);
    c.proc.wait();
    struct stat st;
    REQUIRE(lstat(c.control_socket.c_str(), &st) == 0);
    Aisidd again(AisiddOptions().example_zone().upstream("127.0.0.1:9").args({"--control-socket", c.control_socket}));
    REQUIRE(control_accepts(c.control_socket));
    CHECK(ctl(c.control_socket, {"stats"}).code == 0);
}

TEST_CASE("aisid-control: a peer that is not root, aisidd's user or in group aisid is refused (exit 4)") {
    skip_unless_root("to run the client as another user");
    skip_unless_program("setpriv", "package util-linux");
    struct passwd *pw = getpwnam("nobody");
    skip_unless(pw != nullptr, "no user nobody");
    TempDir dir;
    Aisidd c(AisiddOptions().in(dir).control_socket().example_zone().upstream("127.0.0.1:9"));
    // The client where nobody can run it (the build tree may not be reachable).
    std::string client = dir.file("aisid-control");
    REQUIRE(run({"cp", aisid_control_path(), client}).code == 0);
    REQUIRE(chmod(dir.path.c_str(), 0711) == 0);
    REQUIRE(chmod(client.c_str(), 0755) == 0);
    auto as_nobody = [&](const std::string &cmd) {
        return run({"setpriv", "--reuid=" + std::to_string(pw->pw_uid), "--regid=" + std::to_string(pw->pw_gid),
                    "--clear-groups", client, "--socket", c.control_socket, cmd});
    };
    // The file's mode keeps nobody out ...
    CmdResult r = as_nobody("stats");
    CHECK(r.code == 4);
    CHECK(r.err.find("Permission denied") != std::string::npos);
    // ... and with the mode opened up by mistake, the peer check still does.
    REQUIRE(chmod(c.control_socket.c_str(), 0666) == 0);
    r = as_nobody("flush-all");
    CHECK(r.code == 4);
    CHECK(r.err.find("aisid-control: only root, aisidd's own user and group aisid may control aisidd") == 0);
    CHECK(r.out.empty());
    CHECK(c.proc.err().find("control: refused uid " + std::to_string(pw->pw_uid)) != std::string::npos);
    CHECK(ctl(c.control_socket, {"stats"}).code == 0);  // root still may
}
