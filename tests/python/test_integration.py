"""Integration tests of the aisid Python package: legacy names through a real
Unbound on a loopback port; the asyncio integration (c-ares' sockets on the
loop, no thread); connects, open_connection and the httpx transports to
loopback listeners, TLS verified against the name. Traffic goes to 127.0.0.1
and ::1 only (AISID addresses are never connected to here: that is e2e)."""

import asyncio
import http.server
import socket
import ssl
import threading
import time

import httpx
import pytest

import aisid
import aisid.httpx
from conftest import ZONE, Listener, Unbound, make_cert

LEGACY = [
    "www.legacy.example. 300 IN A 192.0.2.10",
    "www.legacy.example. 300 IN AAAA 2001:db8:1::10",
    "svc.legacy.example. 300 IN A 127.0.0.1",
    "dual.legacy.example. 300 IN AAAA ::1",
    "dual.legacy.example. 300 IN A 127.0.0.1",
] + [f"n{i}.legacy.example. 300 IN A 192.0.2.{i}" for i in range(1, 21)]


@pytest.fixture(scope="module")
def unbound():
    u = Unbound(LEGACY, ["legacy.example."])
    yield u
    u.stop()


@pytest.fixture
def client(unbound):
    c = aisid.Client(zones=[str(ZONE)], upstreams=[unbound.address], watch=False, legacy_timeout=3)
    yield c
    c.close()


@pytest.fixture
def listener():
    lst = Listener("127.0.0.1")
    yield lst
    lst.close()


def test_legacy_resolve(client):
    r = client.resolve("www.legacy.example")
    assert r.source == "legacy" and not r.is_aisid
    assert sorted(r.addresses) == ["2001:db8:1::10", "::ffff:192.0.2.10"]
    assert r.fields is None and r.zone is None and r.fallbacks == []
    assert 0 < r.ttl <= 300
    k = client.counters()
    assert k["resolve_legacy"] == 1 and k["legacy_queries"] >= 1
    client.resolve("www.legacy.example")
    assert client.counters()["legacy_cache_hits"] == 1


def test_legacy_not_found(client):
    with pytest.raises(aisid.NotFoundError) as ei:
        client.resolve("nosuch.legacy.example")
    assert ei.value.status == 1 and "nosuch.legacy.example" in str(ei.value)


def test_resolve_async_on_the_loop_without_threads(client):
    names = [f"n{i}.legacy.example" for i in range(1, 21)]

    async def main():
        threads = threading.active_count()
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.get_running_loop().create_task(ticker())
        results = await asyncio.gather(*(client.resolve_async(n) for n in names))
        aisid_r = await client.resolve_async("p5000.yolo.detection.image.ai.example")  # answered at once
        t.cancel()
        assert threading.active_count() == threads  # no helper thread
        assert ticks > 0  # the loop kept running while queries were out
        return results, aisid_r

    results, aisid_r = asyncio.run(main())
    assert [r.addresses for r in results] == [[f"::ffff:192.0.2.{i}"] for i in range(1, 21)]
    assert aisid_r.address == "2001:db8:abcd:12:1:2:1:1388" and aisid_r.fields.method_term == "yolo"
    assert client.counters()["legacy_queries"] >= 20
    assert not client._watched and client._timer is None  # nothing left registered with the loop


def test_resolve_async_errors(client):
    async def main():
        with pytest.raises(aisid.NotFoundError):
            await client.resolve_async("nosuch.legacy.example")
        with pytest.raises(aisid.InvalidArgumentError):
            await client.resolve_async("bad..name")

    asyncio.run(main())


@pytest.fixture
def blackhole():
    """A UDP socket on loopback that never answers: an upstream that times out."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield f"127.0.0.1:{s.getsockname()[1]}"
    s.close()


def test_resolve_async_timeout_uses_the_loop_timer(blackhole):
    c = aisid.Client(zones=[str(ZONE)], upstreams=[blackhole], watch=False, legacy_timeout=0.4)

    async def main():
        t0 = time.monotonic()
        with pytest.raises(aisid.AisidError) as ei:
            await asyncio.wait_for(c.resolve_async("slow.legacy.example"), 10)
        return time.monotonic() - t0, ei.value

    elapsed, e = asyncio.run(main())
    assert isinstance(e, aisid.AisidTimeoutError) and isinstance(e, TimeoutError) and e.status == 6
    assert elapsed < 5
    c.close()


def test_close_cancels_pending_async_queries(blackhole):
    c = aisid.Client(zones=[str(ZONE)], upstreams=[blackhole], watch=False, legacy_timeout=5)

    async def main():
        loop = asyncio.get_running_loop()
        task = loop.create_task(c.resolve_async("slow.legacy.example"))
        await asyncio.sleep(0.05)
        assert c._watched  # c-ares' socket is on the loop
        c.close()
        with pytest.raises(aisid.CancelledError) as ei:
            await task
        assert ei.value.status == 11
        with pytest.raises(aisid.ClientClosedError):
            await c.resolve_async("www.legacy.example")

    asyncio.run(main())
    assert c._p is None and not c._handles


def test_cancelled_await_then_a_new_loop(unbound, blackhole):
    # A task cancelled while its query is out; the answer arriving later (or
    # never) must not hurt, and the client moves on to a new loop.
    c = aisid.Client(zones=[str(ZONE)], upstreams=[blackhole], watch=False, legacy_timeout=5)

    async def first():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.resolve_async("slow.legacy.example"), 0.1)

    asyncio.run(first())
    c.set_upstreams([unbound.address])

    async def second():
        return await c.resolve_async("svc.legacy.example")

    assert asyncio.run(second()).address == "::ffff:127.0.0.1"
    c.close()


def test_create_connection_legacy(client, listener):
    s = client.create_connection(("svc.legacy.example", listener.port), timeout=5)
    with s:
        assert s.recv(16) == b"hello\n"
        assert s.gettimeout() == 5
    sock, info = client.connect("svc.legacy.example", listener.port, timeout=5)
    sock.close()
    assert info.path == "legacy" and info.reason == "none"
    assert info.peer == ("::ffff:127.0.0.1", listener.port)
    assert client.counters()["connect_legacy"] == 2
    # The module-level drop-in, on an explicit client.
    with aisid.create_connection(("svc.legacy.example", listener.port), 5, client=client) as s:
        assert s.recv(16) == b"hello\n"


def test_connect_happy_eyeballs_refused_v6_then_v4(client, listener):
    # dual.legacy.example: AAAA ::1 (nothing listens on that port), A 127.0.0.1.
    sock, info = client.connect("dual.legacy.example", listener.port, timeout=5)
    sock.close()
    assert info.path == "legacy" and info.peer == ("::ffff:127.0.0.1", listener.port) and info.attempts == 2

    async def main():
        return await client.connect_async("dual.legacy.example", listener.port, timeout=5)

    sock, info = asyncio.run(main())
    sock.close()
    assert info.path == "legacy" and info.peer == ("::ffff:127.0.0.1", listener.port) and info.attempts == 2


def test_connect_errors(client):
    port = Listener("127.0.0.1")
    p = port.port
    port.close()  # nothing listens there now
    with pytest.raises(aisid.ConnectError) as ei:
        client.create_connection(("svc.legacy.example", p), timeout=3)
    assert ei.value.status == 9 and isinstance(ei.value, ConnectionError)
    with pytest.raises(aisid.NotFoundError):
        client.create_connection(("nosuch.legacy.example", p), timeout=3)

    async def main():
        with pytest.raises(aisid.ConnectError):
            await aisid.open_connection("svc.legacy.example", p, client=client, timeout=3)

    asyncio.run(main())
    assert client.counters()["connect_failed"] >= 3


def test_open_connection_legacy(client, listener):
    async def main():
        reader, writer = await aisid.open_connection("svc.legacy.example", listener.port, client=client, timeout=5)
        data = await reader.readline()
        writer.close()
        await writer.wait_closed()
        return data

    assert asyncio.run(main()) == b"hello\n"
    assert client.counters()["connect_legacy"] == 1


# ---- TLS and httpx against a loopback HTTPS server ------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"path={self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class HTTPSServer:
    def __init__(self, cert, key):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def https(tmpdir_path):
    cert, key = make_cert(str(tmpdir_path), ["svc.legacy.example"])
    srv = HTTPSServer(cert, key)
    srv.ca = cert
    yield srv
    srv.close()


def test_open_connection_tls_verifies_the_name(client, https):
    async def main():
        ctx = ssl.create_default_context(cafile=https.ca)
        reader, writer = await aisid.open_connection("svc.legacy.example", https.port, client=client, ssl=ctx)
        writer.write(b"GET /tls HTTP/1.1\r\nHost: svc.legacy.example\r\nConnection: close\r\n\r\n")
        data = await reader.read()
        writer.close()
        return data

    assert b"path=/tls" in asyncio.run(main())


def test_httpx_sync_transport(client, https):
    t = aisid.httpx.HTTPTransport(client=client, verify=https.ca)
    with httpx.Client(transport=t) as h:
        r = h.get(f"https://svc.legacy.example:{https.port}/v1/infer")
        assert r.status_code == 200 and r.text == "path=/v1/infer\n"
        r = h.get(f"https://svc.legacy.example:{https.port}/again")  # the pooled connection
        assert r.text == "path=/again\n"
    assert t.last_connect.path == "legacy"
    assert client.counters()["connect_legacy"] == 1


def test_httpx_async_transport(client, https):
    async def main():
        t = aisid.httpx.AsyncHTTPTransport(client=client, verify=https.ca)
        async with httpx.AsyncClient(transport=t) as h:
            rs = await asyncio.gather(*(h.get(f"https://svc.legacy.example:{https.port}/a{i}") for i in range(5)))
        return t, rs

    t, rs = asyncio.run(main())
    assert [r.text for r in rs] == [f"path=/a{i}\n" for i in range(5)]
    assert t.last_connect.path == "legacy"


def test_httpx_tls_is_checked_against_the_name(client, https, tmpdir_path, unbound):
    # The certificate names svc.legacy.example: another name that leads to the
    # same address fails verification, with either transport.
    c = aisid.Client(zones=[str(ZONE)], upstreams=[unbound.address], watch=False)
    url = f"https://dual.legacy.example:{https.port}/"
    with httpx.Client(transport=aisid.httpx.HTTPTransport(client=c, verify=https.ca)) as h:
        with pytest.raises(httpx.ConnectError) as ei:
            h.get(url)
        assert "CERTIFICATE_VERIFY_FAILED" in str(ei.value) or "match" in str(ei.value)

    async def main():
        async with httpx.AsyncClient(transport=aisid.httpx.AsyncHTTPTransport(client=c, verify=https.ca)) as h:
            with pytest.raises(httpx.ConnectError):
                await h.get(url)

    asyncio.run(main())
    # And a name that does not resolve is a connect error, as with plain httpx.
    with httpx.Client(transport=aisid.httpx.HTTPTransport(client=c, verify=https.ca)) as h:
        with pytest.raises(httpx.ConnectError):
            h.get(f"https://nosuch.legacy.example:{https.port}/")
    c.close()


def test_close_waits_for_a_call_in_c(blackhole):
    # A thread is blocked inside aisid_resolve (a legacy query to an upstream
    # that never answers) when another thread closes the client: the C client
    # must outlive that call. close() returns at once, later calls fail with
    # ClientClosedError, and the free happens when the blocked call returns.
    c = aisid.Client(zones=[str(ZONE)], upstreams=[blackhole], watch=False, legacy_timeout=0.8)
    got = []

    def blocked():
        try:
            c.resolve("slow.legacy.example")
        except aisid.AisidError as e:
            got.append(e)

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.2)  # the thread is in C now (the GIL is released there)
    assert c._inflight
    c.close()
    assert c._p is not None, "freed while a call was in progress"
    with pytest.raises(aisid.ClientClosedError):
        c.resolve("p5000.yolo.detection.image.ai.example")
    t.join(10)
    assert len(got) == 1 and isinstance(got[0], aisid.AisidTimeoutError), got
    assert c._p is None  # freed by the last call out
