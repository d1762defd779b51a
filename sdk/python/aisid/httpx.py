"""httpx transports that connect through libaisid.

    import httpx, aisid.httpx
    client = httpx.Client(transport=aisid.httpx.HTTPTransport())
    client.get("https://yolo.detection.image.ai.example/v1/infer")

    async with httpx.AsyncClient(transport=aisid.httpx.AsyncHTTPTransport()) as client:
        await client.get("https://yolo.detection.image.ai.example/v1/infer")

Each new connection goes through Client.create_connection (sync) or
Client.connect_async (asyncio): the AISID first, the service's SVCB legacy
endpoint as fallback, a network remembered when it does not route AISIDs.
Everything else is httpx's own: connection pooling, HTTP/1.1 (and HTTP/2 with
h2), and TLS. TLS is verified as httpx always does it, against the host of
the URL (the service name): which address the connection took, AISID or the
legacy endpoint, does not change what the certificate must name.

Any library that accepts an httpx client (OpenAI's and Anthropic's clients
take http_client=...) can use these. Proxies are not supported (the point is
to reach the service directly).
"""

import asyncio
import socket
import ssl
import typing

import httpcore
import httpx

from . import _errors
from ._client import Client

__all__ = ["HTTPTransport", "AsyncHTTPTransport"]


def _client_for(client, zones, upstreams):
    if client is not None:
        return client
    if zones is None and upstreams is None:
        from . import default_client

        return default_client()
    return Client(zones=zones, upstreams=upstreams)


def _map_connect_error(exc):
    if isinstance(exc, (_errors.AisidTimeoutError, socket.timeout, asyncio.TimeoutError)):
        return httpcore.ConnectTimeout(str(exc))
    return httpcore.ConnectError(str(exc))


# ---- sync -------------------------------------------------------------------


class _SyncStream:
    """httpcore's NetworkStream over a connected socket (TLS by ssl.SSLContext.wrap_socket)."""

    def __init__(self, sock):
        self._sock = sock

    def read(self, max_bytes, timeout=None):
        try:
            self._sock.settimeout(timeout)
            return self._sock.recv(max_bytes)
        except socket.timeout as e:
            raise httpcore.ReadTimeout(str(e)) from e
        except OSError as e:
            raise httpcore.ReadError(str(e)) from e

    def write(self, buffer, timeout=None):
        try:
            self._sock.settimeout(timeout)
            self._sock.sendall(buffer)
        except socket.timeout as e:
            raise httpcore.WriteTimeout(str(e)) from e
        except OSError as e:
            raise httpcore.WriteError(str(e)) from e

    def close(self):
        self._sock.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        try:
            self._sock.settimeout(timeout)
            tls = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname)
        except socket.timeout as e:
            self.close()
            raise httpcore.ConnectTimeout(str(e)) from e
        except OSError as e:  # ssl.SSLError (certificate, handshake) is an OSError
            self.close()
            raise httpcore.ConnectError(str(e)) from e
        return _SyncStream(tls)

    def get_extra_info(self, info):
        if info == "ssl_object" and isinstance(self._sock, ssl.SSLSocket):
            return self._sock._sslobj
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "socket":
            return self._sock
        if info == "is_readable":
            import select

            r, _, _ = select.select([self._sock], [], [], 0)
            return bool(r)
        return None


class _SyncBackend:
    """httpcore's NetworkBackend: connect_tcp through aisid_connect."""

    def __init__(self, client):
        self.client = client
        self.last_connect = None  # the ConnectInfo of the newest connection

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if local_address is not None:
            raise httpcore.ConnectError("aisid.httpx: local_address is not supported")
        try:
            sock, info = self.client.connect(host, port, timeout)
        except OSError as e:
            raise _map_connect_error(e) from e
        self.last_connect = info
        for opt in socket_options or ():
            sock.setsockopt(*opt)
        return _SyncStream(sock)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("aisid.httpx: unix sockets are not supported")

    def sleep(self, seconds):
        import time

        time.sleep(seconds)


def _install_backend(transport, backend):
    pool = transport._pool
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        raise TypeError("aisid.httpx: this httpx/httpcore has no pluggable network backend")
    pool._network_backend = backend


class HTTPTransport(httpx.HTTPTransport):
    """httpx.HTTPTransport whose connections are made by libaisid.

    client: an aisid.Client (default: aisid.default_client(), or a new one with
    zones/upstreams when those are given). Other keywords are httpx's (verify,
    cert, http1, http2, limits, retries, trust_env); proxies are refused."""

    def __init__(self, *, client: typing.Optional[Client] = None, zones=None, upstreams=None, **kwargs):
        if kwargs.get("proxy") is not None or kwargs.get("uds") is not None:
            raise ValueError("aisid.httpx: proxy and uds are not supported")
        super().__init__(**kwargs)
        self.aisid_client = _client_for(client, zones, upstreams)
        self._aisid_backend = _SyncBackend(self.aisid_client)
        _install_backend(self, self._aisid_backend)

    @property
    def last_connect(self):
        """The aisid.ConnectInfo of the newest connection (path, reason, peer ...)."""
        return self._aisid_backend.last_connect


# ---- asyncio ------------------------------------------------------------------


class _AsyncStream:
    """httpcore's AsyncNetworkStream over asyncio streams (TLS by StreamWriter.start_tls)."""

    def __init__(self, reader, writer):
        self._reader, self._writer = reader, writer

    async def read(self, max_bytes, timeout=None):
        try:
            return await asyncio.wait_for(self._reader.read(max_bytes), timeout)
        except asyncio.TimeoutError as e:
            raise httpcore.ReadTimeout("read timed out") from e
        except OSError as e:
            raise httpcore.ReadError(str(e)) from e

    async def write(self, buffer, timeout=None):
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            await asyncio.wait_for(self._writer.drain(), timeout)
        except asyncio.TimeoutError as e:
            raise httpcore.WriteTimeout("write timed out") from e
        except OSError as e:
            raise httpcore.WriteError(str(e)) from e

    async def aclose(self):
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        try:
            await asyncio.wait_for(self._writer.start_tls(ssl_context, server_hostname=server_hostname), timeout)
        except asyncio.TimeoutError as e:
            await self.aclose()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from e
        except OSError as e:
            await self.aclose()
            raise httpcore.ConnectError(str(e)) from e
        return self

    def get_extra_info(self, info):
        w = self._writer
        if info == "ssl_object":
            return w.get_extra_info("ssl_object")
        if info == "client_addr":
            return w.get_extra_info("sockname")
        if info == "server_addr":
            return w.get_extra_info("peername")
        if info == "socket":
            return w.get_extra_info("socket")
        if info == "is_readable":
            return self._reader.at_eof() or bool(getattr(self._reader, "_buffer", b""))
        return None


class _AsyncBackend:
    def __init__(self, client):
        self.client = client
        self.last_connect = None

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if local_address is not None:
            raise httpcore.ConnectError("aisid.httpx: local_address is not supported")
        try:
            sock, info = await self.client.connect_async(host, port, timeout=timeout)
        except OSError as e:
            raise _map_connect_error(e) from e
        self.last_connect = info
        try:
            for opt in socket_options or ():
                sock.setsockopt(*opt)
            reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
        return _AsyncStream(reader, writer)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("aisid.httpx: unix sockets are not supported")

    async def sleep(self, seconds):
        await asyncio.sleep(seconds)


class AsyncHTTPTransport(httpx.AsyncHTTPTransport):
    """httpx.AsyncHTTPTransport whose connections are made on the running
    asyncio loop by Client.connect_async (resolution through the SDK's
    asynchronous interface, no thread). Keywords as HTTPTransport."""

    def __init__(self, *, client: typing.Optional[Client] = None, zones=None, upstreams=None, **kwargs):
        if kwargs.get("proxy") is not None or kwargs.get("uds") is not None:
            raise ValueError("aisid.httpx: proxy and uds are not supported")
        super().__init__(**kwargs)
        self.aisid_client = _client_for(client, zones, upstreams)
        self._aisid_backend = _AsyncBackend(self.aisid_client)
        pool = self._pool
        if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
            raise TypeError("aisid.httpx: this httpx/httpcore has no pluggable network backend")
        pool._network_backend = self._aisid_backend

    @property
    def last_connect(self):
        return self._aisid_backend.last_connect
