#!/usr/bin/env python3
"""The client side of test_e2e.py, run inside a testbed namespace (cl: the
AISID-capable network, lc: the legacy-only one). It reaches the HTTPS stand-in
service by its AISID name every way the package offers and prints one JSON
object: for each case the path taken, why, and what the service answered.

    e2e_client.py --zone ZONE --upstream ADDR --ca CERT --name NAME
"""

import argparse
import asyncio
import json
import ssl
import sys
import traceback

import httpx

import aisid
import aisid.httpx


def get_over(sock_or_streams, name, path):
    return f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode()


def body_of(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    return body.decode().strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zone", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--mismatch", help="a name the certificate does not cover")
    ap.add_argument("--port", type=int, default=80, help="the application's port (the SVCB names the fallback's)")
    a = ap.parse_args()
    ctx = ssl.create_default_context(cafile=a.ca)
    out = {}

    def new_client():
        return aisid.Client(zones=[a.zone], upstreams=[a.upstream], watch=False, legacy_timeout=2)

    def case(key, fn):
        try:
            out[key] = fn()
        except Exception as e:  # noqa: BLE001 - reported to the test
            out[key] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}

    # 1. create_connection / connect (aisid_connect_ex), then TLS against the name; twice
    #    on one client: the second shows the per-network memory.
    sync_client = new_client()

    def sync_get(path):
        sock, info = sync_client.connect(a.name, a.port, timeout=5)
        with ctx.wrap_socket(sock, server_hostname=a.name) as tls:
            tls.settimeout(5)
            tls.sendall(get_over(tls, a.name, path))
            raw = b""
            while True:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                raw += chunk
        return {"path": info.path, "reason": info.reason, "peer": info.peer[0], "body": body_of(raw)}

    case("sync", lambda: sync_get("/sync1"))
    case("sync_again", lambda: sync_get("/sync2"))
    out["sync_counters"] = sync_client.counters()

    # 2. asyncio: open_connection with ssl, twice on one client.
    async_client = new_client()

    async def async_get(path):
        sock, info = await async_client.connect_async(a.name, a.port, timeout=5)
        reader, writer = await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname=a.name)
        writer.write(get_over(None, a.name, path))
        raw = await reader.read()
        writer.close()
        return {"path": info.path, "reason": info.reason, "peer": info.peer[0], "body": body_of(raw)}

    async def open_conn(path):
        reader, writer = await aisid.open_connection(a.name, a.port, client=async_client, ssl=ctx, timeout=5)
        writer.write(get_over(None, a.name, path))
        raw = await reader.read()
        writer.close()
        return {"body": body_of(raw)}

    case("async", lambda: asyncio.run(async_get("/async1")))
    case("async_again", lambda: asyncio.run(async_get("/async2")))
    case("open_connection", lambda: asyncio.run(open_conn("/open")))
    out["async_counters"] = async_client.counters()

    # 3. httpx, both transports, TLS verified by httpx against the URL's host.
    def httpx_sync():
        t = aisid.httpx.HTTPTransport(client=new_client(), verify=a.ca)
        with httpx.Client(transport=t, timeout=5) as h:
            r = h.get(f"https://{a.name}:{a.port}/v1/httpx")
        return {"path": t.last_connect.path, "reason": t.last_connect.reason, "status": r.status_code,
                "node": r.headers.get("x-aisid-node"), "body": r.text.strip()}

    async def httpx_async():
        t = aisid.httpx.AsyncHTTPTransport(client=new_client(), verify=a.ca)
        async with httpx.AsyncClient(transport=t, timeout=5) as h:
            r = await h.get(f"https://{a.name}:{a.port}/v1/httpx-async")
        return {"path": t.last_connect.path, "reason": t.last_connect.reason, "status": r.status_code,
                "node": r.headers.get("x-aisid-node"), "body": r.text.strip()}

    case("httpx", httpx_sync)
    case("httpx_async", lambda: asyncio.run(httpx_async()))

    if a.mismatch:
        def mismatch():
            t = aisid.httpx.HTTPTransport(client=new_client(), verify=a.ca)
            with httpx.Client(transport=t, timeout=5) as h:
                r = h.get(f"https://{a.mismatch}:{a.port}/")
            return {"status": r.status_code}

        case("mismatch", mismatch)

    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
