// aisid-udp-flood: sends small UDP datagrams as fast as one thread can
// (sendmmsg, batches of 64) for a fixed time, spread over F flows (source
// ports), and prints how many it sent. The SRv6 data plane bench
// (bench/gateway/srv6) counts what arrives on the far side.
//   aisid-udp-flood --to [ADDR]:PORT [--seconds S] [--size BYTES] [--flows F]
#include "aisid/egress/net_util.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace aisid::gw;

int main(int argc, char **argv) {
    std::optional<NetEndpoint> to;
    double seconds = 2;
    size_t size = 64;
    int flows = 16;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "aisid-udp-flood: %s needs a value\n", a.c_str());
            return 2;
        }
        std::string v = argv[++i];
        if (a == "--to") to = parse_endpoint(v);
        else if (a == "--seconds") seconds = std::atof(v.c_str());
        else if (a == "--size") size = static_cast<size_t>(std::atoi(v.c_str()));
        else if (a == "--flows") flows = std::atoi(v.c_str());
        else {
            std::fprintf(stderr, "aisid-udp-flood: unknown argument '%s'\n", a.c_str());
            return 2;
        }
    }
    if (!to || seconds <= 0 || seconds > 600 || size < 1 || size > 8192 || flows < 1 || flows > 1024) {
        std::fprintf(stderr, "usage: aisid-udp-flood --to [ADDR]:PORT [--seconds S<=600] [--size 1..8192] "
                             "[--flows 1..1024]\n");
        return 2;
    }
    std::vector<int> fds;
    for (int f = 0; f < flows; ++f) {
        int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr *>(&to->sa), sizeof to->sa) != 0) {
            std::perror("aisid-udp-flood: socket/connect");
            return 3;
        }
        fds.push_back(fd);
    }
    std::vector<char> payload(size, 'x');
    constexpr int kBatch = 64;
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    for (int i = 0; i < kBatch; ++i) {
        iov[i] = {payload.data(), size};
        std::memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    using Clock = std::chrono::steady_clock;
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    unsigned long long sent = 0, refused = 0;
    for (size_t round = 0; Clock::now() < end; ++round) {
        int fd = fds[round % fds.size()];
        int n = sendmmsg(fd, msgs, kBatch, MSG_DONTWAIT);
        if (n > 0) sent += static_cast<unsigned>(n);
        else ++refused; // ENOBUFS/EAGAIN/ICMP errors: the path is full
    }
    std::printf("sent %llu datagrams of %zu bytes in %.1f s (%llu refused batches)\n", sent, size, seconds, refused);
    for (int fd : fds) close(fd);
    return 0;
}
