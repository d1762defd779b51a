// Loads a generated N-service zone from a file and reports time and peak RSS.
//   bench_zone_load [N...]   (default 1000 100000 1000000)
#include "gen_zone.hpp"
#include "aisid/core/zone_set.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace aisid;

static long status_kb(const char *key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
    return -1;
}

int main(int argc, char **argv) {
    std::vector<size_t> sizes;
    for (int i = 1; i < argc; ++i) sizes.push_back(static_cast<size_t>(std::atoll(argv[i])));
    if (sizes.empty()) sizes = {1000, 100000, 1000000};
    std::printf("%10s %12s %12s %12s %12s\n", "services", "file_MB", "load_s", "rss_MB", "zone_heap_MB");
    std::fflush(stdout);
    for (size_t n : sizes) {
        std::string path = "/tmp/aisid-bench-" + std::to_string(n) + ".zone";
        {
            std::string z = bench::generate_zone(n);
            std::ofstream(path) << z;
        }
        // Each size in a fresh process, so RSS is that of the load alone.
        pid_t pid = fork();
        if (pid == 0) {
            long before = status_kb("VmRSS:");
            auto t0 = std::chrono::steady_clock::now();
            auto z = load_zone_file(path);
            double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (!z) {
                std::fprintf(stderr, "%s\n", z.error().to_string().c_str());
                _exit(1);
            }
            long hwm = status_kb("VmHWM:");
            long rss = status_kb("VmRSS:");
            std::ifstream f(path, std::ios::ate);
            std::printf("%10zu %12.1f %12.2f %12.1f %12.1f   (peak %0.1f MB, before load %.1f MB)\n",
                        (*z)->service_count(), static_cast<double>(f.tellg()) / 1e6, secs, rss / 1024.0,
                        (*z)->memory_bytes() / 1e6, hwm / 1024.0, before / 1024.0);
            std::fflush(stdout);
            _exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        std::remove(path.c_str());
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 1;
    }
    return 0;
}
