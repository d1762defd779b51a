#!/usr/bin/env python3
"""A packet delayer for a network namespace without netem.

Run inside a namespace whose outgoing IPv6 traffic is routed into the TUN
device DEV; every packet read from DEV is written back to DEV after a delay
that depends on its destination, and the namespace forwards it on (policy
routing sends packets that come in on DEV out of the real interface). Only the
outgoing direction is delayed, so a rule's delay is the whole round trip of the
path it stands for.

    delayer.py DEV PREFIX=MS [PREFIX=MS ...]      e.g. 2001:db8:53::/48=10

The longest matching prefix wins; unmatched packets pass without delay. Stops
on SIGTERM. Prints "ready" on stdout once the device is open.
"""
import fcntl
import heapq
import ipaddress
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    dev = sys.argv[1]
    rules = []
    for arg in sys.argv[2:]:
        pfx, ms = arg.split("=")
        rules.append((ipaddress.ip_network(pfx), float(ms) / 1000.0))
    rules.sort(key=lambda r: -r[0].prefixlen)
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", dev.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    print("ready", flush=True)
    cache = {}
    pending = []  # (due, seq, packet)
    seq = 0
    while not stop[0]:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, pkt = heapq.heappop(pending)
            try:
                os.write(fd, pkt)
            except OSError:
                pass
        timeout = max(0.0, pending[0][0] - now) if pending else 0.2
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            continue
        while True:
            try:
                pkt = os.read(fd, 65536)
            except BlockingIOError:
                break
            if len(pkt) < 40 or pkt[0] >> 4 != 6:
                continue
            dst = pkt[24:40]
            d = cache.get(dst)
            if d is None:
                a = ipaddress.IPv6Address(dst)
                d = next((ms for net, ms in rules if a in net), 0.0)
                cache[dst] = d
            seq += 1
            heapq.heappush(pending, (time.monotonic() + d, seq, pkt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
