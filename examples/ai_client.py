#!/usr/bin/env python3
"""ai_client.py — reach an AI service by its AISID name from Python.

Resolves the name (in process, no DNS packet for AISID names), then calls the
service over HTTPS with httpx through aisid's transport: the AISID first, the
service's legacy endpoint (SVCB) when this network does not route AISIDs. TLS
is verified against the service name whichever way the connection went.

    python3 ai_client.py [--zone FILE]... [--upstream ADDR[:PORT]]... [--cafile PEM] [--async] NAME [URL_PATH]

Needs python3-aisid (or PYTHONPATH=sdk/python and AISID_LIBRARY=build/sdk/libaisid.so
in a source tree) and python3-httpx. Any client library that takes an
httpx client works the same way, e.g. openai.OpenAI(http_client=httpx.Client(transport=...)).
"""

import argparse
import asyncio
import sys

import httpx

import aisid
import aisid.httpx


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zone", action="append", help="AISID zone file (default: the host's)")
    ap.add_argument("--upstream", action="append", help="legacy DNS server (default: resolv.conf)")
    ap.add_argument("--cafile", help="CA certificates to verify the service with (default: the system's)")
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--async", dest="use_async", action="store_true", help="use asyncio and AsyncHTTPTransport")
    ap.add_argument("name")
    ap.add_argument("path", nargs="?", default="/")
    a = ap.parse_args()

    try:
        client = aisid.Client(zones=a.zone, upstreams=a.upstream)
        r = client.resolve(a.name)
    except aisid.AisidError as e:  # carries the status and aisid_last_error()'s text
        print(f"ai_client: {e} (status {e.status})", file=sys.stderr)
        return 1
    print(r)  # address, source, decoded fields with their codebook terms, fallbacks

    url = f"https://{a.name}:{a.port}{a.path}"
    verify = a.cafile or True
    try:
        if a.use_async:
            async def call():
                t = aisid.httpx.AsyncHTTPTransport(client=client, verify=verify)
                async with httpx.AsyncClient(transport=t, timeout=10) as h:
                    return t, await h.get(url)

            transport, resp = asyncio.run(call())
        else:
            transport = aisid.httpx.HTTPTransport(client=client, verify=verify)
            with httpx.Client(transport=transport, timeout=10) as h:
                resp = h.get(url)
    except httpx.HTTPError as e:
        print(f"ai_client: {url}: {e}", file=sys.stderr)
        return 3
    info = transport.last_connect
    print(f"GET {url}: {resp.status_code} via {info.path} ({info.peer[0]}, fallback reason: {info.reason})")
    print(resp.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
