// What a change to a big zone costs, at 1k, 100k and 1M registered services
// (bench/core's generated zone): acknowledged UPDATEs per second through the
// Authority (signed, checked, journaled with fdatasync before the answer),
// one at a time and in batches (group commit: one sync per batch); an IXFR of
// one change applied by a secondary, published and answered; the process's
// RSS during the updates against the zone's own single copy. The disk's own
// fdatasync rate is printed as the ceiling for one-at-a-time updates.
//   bench_zone_update [SIZES...]   (default: 1000 100000 1000000)
//   AISID_BENCH_DIR (default /var/tmp: a real disk, not tmpfs),
//   AISID_BENCH_SECONDS (per measurement, default 3), AISID_BENCH_BATCH (default 32).
#include "aisid/authority/authority.hpp"
#include "gen_zone.hpp"
#include "aisid/proto/update.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using namespace aisid;
using namespace aisid::resolver;
using namespace aisid::proto;

namespace {

const char *kKey = "bench:YmVuY2gta2V5LWZvci16b25lLXVwZGF0ZS1jb3N0cyEhIQ==";

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double env_num(const char *name, double def) {
    const char *v = std::getenv(name);
    return v && *v ? std::atof(v) : def;
}

// Resident set size in MiB, after giving freed memory back.
double rss_mib() {
    malloc_trim(0);
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
    return 0;
}
// The peak RSS since reset_peak() (VmHWM; writing 5 to clear_refs resets it):
// it sees the short peaks inside an update that sampling would miss.
void reset_peak() {
    std::ofstream("/proc/self/clear_refs") << "5";
}
double peak_mib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
    return 0;
}

// The disk's own rate of small appends each followed by fdatasync.
double fdatasync_rate(const std::string &dir, double seconds) {
    std::string path = dir + "/fdatasync-probe";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return 0;
    char buf[200];
    std::memset(buf, 'x', sizeof buf);
    int n = 0;
    double t0 = now_s();
    while (now_s() - t0 < seconds) {
        if (::write(fd, buf, sizeof buf) != static_cast<ssize_t>(sizeof buf) || ::fdatasync(fd) != 0) break;
        ++n;
    }
    double r = n / (now_s() - t0);
    ::close(fd);
    ::unlink(path.c_str());
    return r;
}

std::string wire_of(const std::string &text) {
    std::string w;
    if (!wire_from_text(text, w)) std::abort();
    return w;
}

// A signed "migrate": the service's SVCB replaced by a new endpoint.
std::string migrate_msg(size_t n, size_t i, unsigned serial) {
    std::string owner = wire_of(bench::service_name(n, i) + ".bench.example.");
    Record del{owner, kTypeSVCB, kClassANY, 0, {}};
    std::string rd("\x00\x01", 2);
    rd += wire_of("m" + std::to_string(serial) + ".legacy.example.");
    rd += std::string("\x00\x03\x00\x02\x01\xbb", 6);  // port=443
    Record add{owner, kTypeSVCB, kClassIN, 300, rd};
    std::string zw = wire_of("bench.example.");
    LdnsRrListPtr pre(ldns_rr_list_new()), up = ldns_list_of({del, add});
    LdnsPktPtr u(ldns_update_pkt_new(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, zw.size(), zw.data()), LDNS_RR_CLASS_IN,
                                 pre.get(), up.get(), nullptr));
    ldns_pkt_set_id(u.get(), static_cast<uint16_t>(serial));
    uint8_t *buf = nullptr;
    size_t len = 0;
    if (ldns_pkt2wire(&buf, u.get(), &len) != LDNS_STATUS_OK) std::abort();
    std::string w(reinterpret_cast<char *>(buf), len);
    free(buf);
    static auto key = parse_tsig_key(kKey);
    tsig_append(w, &*key, {}, static_cast<uint64_t>(::time(nullptr)), kTsigFudge, 0, {}, {});
    return w;
}

bool noerror(const std::vector<std::string> &replies) {
    return replies.size() == 1 && replies[0].size() >= 4 && (replies[0][3] & 0x0f) == 0;
}

struct Row {
    size_t n = 0;
    double load_s = 0, single_ups = 0, batch_ups = 0, ixfr_ms = 0, ixfr_max_ms = 0;
    double rss_base = 0, rss_zone = 0, rss_peak = 0, rss_after = 0, compact_s = 0, rss_compact = 0;
    size_t copied_kib = 0;
};

Row run(size_t n, const std::string &dir, double seconds, size_t batch) {
    Row row;
    row.n = n;
    row.rss_base = rss_mib();
    ZonePtr zone;
    {
        std::string text = bench::generate_zone(n);
        ZoneLoadLimits lim;
        lim.max_bytes = uint64_t{1} << 30;  // the 1M zone is over the 64 MiB default
        double t0 = now_s();
        auto z = load_zone_text(text, "bench.example.zone", {}, lim);
        row.load_s = now_s() - t0;
        if (!z) {
            std::fprintf(stderr, "load: %s\n", z.error().to_string().c_str());
            std::exit(1);
        }
        zone = *z;
    }
    row.rss_zone = rss_mib();
    std::string state = dir + "/state-" + std::to_string(n);
    std::filesystem::remove_all(state);

    std::shared_ptr<const ZoneSet> set;
    {
        auto s = std::make_shared<ZoneSet>();
        s->add(zone);
        set = s;
    }
    AuthorityOptions o;
    o.keys = {kKey};
    o.update_keys = {"bench"};
    o.state_dir = state;
    o.start_threads = false;
    o.compact_on_stop = false;
    o.log = [](const std::string &) {};
    auto auth = std::make_unique<Authority>(
        o, [&] { return set; },
        [&](ZonePtr z) {
            auto s = std::make_shared<ZoneSet>(*set);
            s->add(std::move(z));
            set = s;
        });
    if (!auth->start()) std::exit(1);
    zone.reset();  // the Authority and the published set hold it now

    std::mt19937_64 rng(7);
    unsigned serial = 0;
    sockaddr_storage peer{};
    reinterpret_cast<sockaddr_in *>(&peer)->sin_family = AF_INET;
    reset_peak();

    // One at a time: each its own fdatasync.
    {
        int done = 0;
        double t0 = now_s();
        while (now_s() - t0 < seconds) {
            std::string m = migrate_msg(n, rng() % n, ++serial);
            std::vector<std::string> out;
            auth->handle(reinterpret_cast<const uint8_t *>(m.data()), m.size(), peer, true, out);
            if (!noerror(out)) std::abort();
            ++done;
        }
        row.single_ups = done / (now_s() - t0);
    }
    // Batches, as the runner hands them over when UPDATEs arrive together.
    {
        int done = 0;
        double t0 = now_s();
        while (now_s() - t0 < seconds) {
            std::vector<std::string> msgs;
            for (size_t i = 0; i < batch; ++i) msgs.push_back(migrate_msg(n, rng() % n, ++serial));
            std::vector<AuthorityHook::Request> reqs(msgs.size());
            for (size_t i = 0; i < msgs.size(); ++i) {
                reqs[i].msg = reinterpret_cast<const uint8_t *>(msgs[i].data());
                reqs[i].len = msgs[i].size();
                reqs[i].peer = peer;
                reqs[i].tcp = true;
            }
            auth->handle_batch(reqs);
            for (auto &r : reqs)
                if (!noerror(r.replies)) std::abort();
            done += static_cast<int>(reqs.size());
        }
        row.batch_ups = done / (now_s() - t0);
    }
    row.rss_peak = peak_mib();
    // Compaction (the writer thread's, every 200 changes or after a quiet
    // second): the zone written out as a file and read back to check it.
    {
        malloc_trim(0);
        reset_peak();
        double t0 = now_s();
        auth->compact_now();
        row.compact_s = now_s() - t0;
        row.rss_compact = peak_mib();
    }

    // A secondary's IXFR of one change: the diff applied to its copy, the new
    // zone published, the changed name answered from it.
    {
        ZonePtr cur;
        for (const ZonePtr &z : set->zones()) cur = z;
        std::vector<double> ms;
        for (int i = 0; i < 50; ++i) {
            size_t k = rng() % n;
            std::string m = migrate_msg(n, k, ++serial);
            ldns_pkt *raw = nullptr;
            ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t *>(m.data()), m.size());
            LdnsPktPtr p(raw);
            UpdateResult u = apply_update(*cur, {}, records_of(ldns_pkt_authority(p.get())));
            if (!u.changed) std::abort();
            double t0 = now_s();
            ZonePtr next;
            std::string why;
            if (!apply_diff(*cur, u.diff, next, why)) std::abort();
            auto s = std::make_shared<ZoneSet>(*set);
            s->add(next);
            WireName q;
            name_from_text(bench::service_name(n, k) + ".bench.example.", q);
            Match hit = s->lookup(q);
            int svcb = 0;
            if (hit.service) next->for_each_svcb(*hit.service, [&](std::string_view) { ++svcb; });
            ms.push_back((now_s() - t0) * 1000);
            if (svcb != 1) std::abort();
            row.copied_kib = next->unshared_bytes(*cur) / 1024;
            set = s;
            cur = next;
        }
        std::sort(ms.begin(), ms.end());
        row.ixfr_ms = ms[ms.size() / 2];
        row.ixfr_max_ms = ms.back();
    }
    auth.reset();
    set.reset();
    row.rss_after = rss_mib();
    std::filesystem::remove_all(state);
    return row;
}

} // namespace

int main(int argc, char **argv) {
    std::vector<size_t> sizes;
    for (int i = 1; i < argc; ++i) sizes.push_back(static_cast<size_t>(std::atoll(argv[i])));
    if (sizes.empty()) sizes = {1000, 100000, 1000000};
    const char *d = std::getenv("AISID_BENCH_DIR");
    std::string dir = std::string(d && *d ? d : "/var/tmp") + "/aisid-bench-zone-update-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    double seconds = env_num("AISID_BENCH_SECONDS", 3);
    size_t batch = static_cast<size_t>(env_num("AISID_BENCH_BATCH", 32));
    double ceiling = fdatasync_rate(dir, seconds);
    std::printf("batches of %zu UPDATEs (migrate: SVCB replaced), %.0f s each; RSS above the process's own before the "
                "zone; copy KiB: what one IXFR'd change did not share with the zone before it\n",
                batch, seconds);
    std::printf("disk: %.0f fdatasync/s (small appends, %s) - the ceiling for one-at-a-time updates\n", ceiling,
                dir.c_str());
    std::printf("%9s %7s %9s %11s %8s %8s %9s %9s %9s %8s %10s %10s\n", "services", "load s", "upd/s 1",
                "upd/s batch", "ixfr ms", "ixfr max", "copy KiB", "zone MiB", "peak MiB", "peak/zone", "compact s",
                "compact/zone");
    for (size_t n : sizes) {
        Row r = run(n, dir, seconds, batch);
        double zone = r.rss_zone - r.rss_base;
        double peak = r.rss_peak - r.rss_base;
        double cpk = r.rss_compact - r.rss_base;
        std::printf("%9zu %7.2f %9.0f %11.0f %8.3f %8.3f %9zu %9.1f %9.1f %9.2f %8.2f %10.2f\n", r.n, r.load_s,
                    r.single_ups, r.batch_ups, r.ixfr_ms, r.ixfr_max_ms, r.copied_kib, zone, peak,
                    zone > 0 ? peak / zone : 0, r.compact_s, zone > 0 ? cpk / zone : 0);
        std::fflush(stdout);
    }
    std::filesystem::remove_all(dir);
    return 0;
}
