// Host zone data by default (SPEC §5): aisid_client_new reads
// /etc/aisid/zones and /var/lib/aisid/zones and follows them on disk, even when
// the directory appears after the client started. Runs in a child with a
// private mount namespace (root) and a tmpfs over /var/lib, so the host's
// directories are never touched.
#include "skip.hpp"
#include "aisid/aisid.h"
#include "paths.hpp"
#include "proc.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <sys/mount.h>
#include <sys/stat.h>

using namespace aisid::test;

namespace {

std::string zone(const std::string &prefix3) {
    return "$ORIGIN host.example.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\n"
           "_aisid TXT \"v=aisid1\" \"prefix=" + prefix3 + "::/64\"\n"
           "image._object TXT \"code=1\"\ndetection._function TXT \"code=2\"\nyolo._method TXT \"code=1\"\n"
           "yolo.detection.image AAAA " + prefix3 + "::1:2:1:0\n";
}

std::string first_address(aisid_client_t *c, const char *name, aisid_status_t &st) {
    aisid_result_t *r = nullptr;
    st = aisid_resolve(c, name, &r);
    if (st != AISID_OK) return "";
    in6_addr a;
    aisid_result_address(r, 0, &a);
    char b[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a, b, sizeof b);
    aisid_result_free(r);
    return b;
}

template <class F> bool eventually(F f) {
    for (int i = 0; i < 300; ++i) {
        if (f()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

// The child's steps; returns "" or what went wrong.
std::string host_zone_steps() {
    if (::unshare(CLONE_NEWNS) != 0) return "unshare(CLONE_NEWNS) failed";
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return "make-rprivate failed";
    if (::mount("tmpfs", "/var/lib", "tmpfs", 0, "size=4m") != 0) return "tmpfs on /var/lib failed";
    struct stat st;
    if (::stat("/etc/aisid/zones", &st) == 0) return "";  // a host with zones of its own: nothing to prove here

    aisid_client_t *c = nullptr;
    if (aisid_client_new(&c) != AISID_OK) return "aisid_client_new failed";
    aisid_client_set_upstreams(c, "127.0.0.1:9");  // legacy DNS that never answers
    aisid_client_set_legacy_timeout(c, 100);
    const char *name = "yolo.detection.image.host.example";
    aisid_status_t s;
    first_address(c, name, s);
    if (s == AISID_OK) return "resolved before any host zone existed";

    // aisidd (or an admin) creates the directory and writes a zone: picked up, no restart.
    ::mkdir("/var/lib/aisid", 0755);
    ::mkdir("/var/lib/aisid/zones", 0755);
    TempDir unused;
    {
        std::FILE *f = std::fopen("/var/lib/aisid/zones/.host.zone.tmp", "w");
        std::fputs(zone("2001:db8:aa").c_str(), f);
        std::fclose(f);
        std::rename("/var/lib/aisid/zones/.host.zone.tmp", "/var/lib/aisid/zones/host.zone");
    }
    if (!eventually([&] { return first_address(c, name, s) == "2001:db8:aa:0:1:2:1:0"; }))
        return "the new host zone was not picked up (status " + std::to_string(s) + ")";

    // An application's file replaces the host zone of the same name.
    std::string mine = unused.write("mine.zone", zone("2001:db8:bb"));
    if (aisid_client_add_zone_file(c, mine.c_str()) != AISID_OK) return "add_zone_file failed";
    if (first_address(c, name, s) != "2001:db8:bb:0:1:2:1:0") return "the application's zone did not replace the host's";
    // ...and stays in front when the host zone changes.
    {
        std::FILE *f = std::fopen("/var/lib/aisid/zones/host.zone", "w");
        std::fputs(zone("2001:db8:cc").c_str(), f);
        std::fclose(f);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (first_address(c, name, s) != "2001:db8:bb:0:1:2:1:0") return "a host zone change displaced the application's";
    aisid_client_free(c);

    // A new client starts with the host zone as it is now.
    if (aisid_client_new(&c) != AISID_OK) return "second aisid_client_new failed";
    std::string got = first_address(c, name, s);
    aisid_client_free(c);
    if (got != "2001:db8:cc:0:1:2:1:0") return "a new client did not read the host zone: " + got;
    return "";
}

} // namespace

TEST_CASE("host zone data by default: read at start and followed on disk") {
    aisid::test::skip_unless_root("for a private mount namespace");
    int p[2];
    REQUIRE(::pipe(p) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(p[0]);
        std::string why = host_zone_steps();
        (void)!::write(p[1], why.data(), why.size());
        _exit(why.empty() ? 0 : 1);
    }
    ::close(p[1]);
    std::string why;
    char b[512];
    ssize_t n;
    while ((n = ::read(p[0], b, sizeof b)) > 0) why.append(b, static_cast<size_t>(n));
    ::close(p[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    CHECK(why == "");
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
}
