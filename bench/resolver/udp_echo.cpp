// The floor for aisidd's benchmark: a UDP server that does no work at all.
// It receives datagrams in batches (recvmmsg), sets the QR bit so dnsperf
// counts each as an answer, and sends them back in batches (sendmmsg). What it
// costs per query is the kernel's loopback path, which every server pays.
//   aisid_udp_echo PORT
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

static volatile sig_atomic_t g_stop = 0;
static void on_term(int) { g_stop = 1; }

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: aisid_udp_echo PORT\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(std::atoi(argv[1])));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        std::fprintf(stderr, "aisid_udp_echo: bind: %s\n", std::strerror(errno));
        return 3;
    }
    struct sigaction sa{};
    sa.sa_handler = on_term;  // no SA_RESTART: recvmmsg returns EINTR
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    constexpr int B = 64;
    static mmsghdr h[B];
    static iovec iov[B];
    static sockaddr_storage peer[B];
    static char data[B][2048];
    while (!g_stop) {
        for (int i = 0; i < B; ++i) {
            iov[i] = {data[i], sizeof data[i]};
            h[i].msg_hdr = msghdr{};
            h[i].msg_hdr.msg_name = &peer[i];
            h[i].msg_hdr.msg_namelen = sizeof peer[i];
            h[i].msg_hdr.msg_iov = &iov[i];
            h[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, h, B, MSG_WAITFORONE, nullptr);
        if (n <= 0) continue;
        for (int i = 0; i < n; ++i) {
            iov[i].iov_len = h[i].msg_len;
            if (h[i].msg_len > 2) data[i][2] |= char(0x80);
        }
        int sent = 0;
        while (sent < n) {
            int k = sendmmsg(fd, h + sent, unsigned(n - sent), 0);
            if (k <= 0) break;
            sent += k;
        }
    }
    return 0;
}
