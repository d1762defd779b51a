#!/usr/bin/env python3
"""A stand-in AI service node for the netns testbed: HTTPS instead of
aisid-testnode's plain HTTP, with the same command line (gateway/testbed/run
starts it through AISID_TESTBED_NODE) and the same load reports, so the
egress gateways schedule it like any node.

    tls_node.py --name NAME --listen [ADDR]:PORT [--report [ADDR]:PORT]...
                [--capacity N] [--report-interval MS]

The certificate and key come from $AISID_TLS_NODE_CERT and $AISID_TLS_NODE_KEY
(a certificate for the service's name). Every HTTPS request is answered with
"node=NAME path=PATH" and an X-Aisid-Node header. Connections that are not TLS
(the gateways' TCP probes) are dropped quietly.
"""

import argparse
import os
import socket
import ssl
import threading
import time


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--listen", required=True, type=endpoint)
    ap.add_argument("--report", action="append", default=[], type=endpoint)
    ap.add_argument("--capacity", type=int, default=1000)
    ap.add_argument("--report-interval", type=int, default=200)
    a = ap.parse_args()

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.environ["AISID_TLS_NODE_CERT"], os.environ["AISID_TLS_NODE_KEY"])
    active = [0]
    lock = threading.Lock()

    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(a.listen)
    ls.listen(128)

    def report():
        us = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        while True:
            with lock:
                n = active[0]
            msg = f"aisid-load node={a.name} active={n} util={min(1.0, n / a.capacity):.3f}".encode()
            for ep in a.report:
                try:
                    us.sendto(msg, ep)
                except OSError:
                    pass
            time.sleep(a.report_interval / 1000)

    def serve(conn):
        with lock:
            active[0] += 1
        try:
            conn.settimeout(5)
            with ctx.wrap_socket(conn, server_side=True) as tls:
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 16384:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                path = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else "/"
                body = f"node={a.name} path={path}\n".encode()
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                            b"X-Aisid-Node: %s\r\nConnection: close\r\n\r\n%s"
                            % (len(body), a.name.encode(), body))
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()
            with lock:
                active[0] -= 1

    threading.Thread(target=report, daemon=True).start()
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
