// aisidd: the local DNS stub resolver (SPEC §4).
#include "aisid/resolver/daemon.hpp"

#include <cstdio>
#include <exception>

int main(int argc, char **argv) {
    try {
        return aisid::resolver::run_daemon(argc, argv);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "aisidd: %s\n", e.what());
        return 3;
    }
}
