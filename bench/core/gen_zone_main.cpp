// aisid-gen-zone N > FILE: an AISID zone with N registered services (bench.example.).
#include "gen_zone.hpp"

#include <cstdio>
#include <cstdlib>

int main(int argc, char **argv) {
    if (argc != 2 || std::atoll(argv[1]) <= 0) {
        std::fprintf(stderr, "usage: aisid-gen-zone N > FILE\n");
        return 2;
    }
    std::string z = aisid::bench::generate_zone(static_cast<size_t>(std::atoll(argv[1])));
    std::fwrite(z.data(), 1, z.size(), stdout);
    return 0;
}
