"""aisid: libaisid for Python.

    import aisid
    c = aisid.Client(zones=["zones/ai.example.zone"])
    print(c.resolve("p5000.yolo.detection.image.ai.example"))
    sock = c.create_connection(("yolo.detection.image.ai.example", 443), timeout=5)

    # asyncio (c-ares' sockets on the running loop, no thread)
    r = await c.resolve_async("yolo.detection.image.ai.example")
    reader, writer = await aisid.open_connection("yolo.detection.image.ai.example", 443, ssl=True)

    # httpx: AISID first, SVCB fallback, TLS verified against the service name
    import aisid.httpx, httpx
    httpx.Client(transport=aisid.httpx.HTTPTransport())

The module-level resolve(), create_connection() and open_connection() use a
client with the host's defaults (default_client()). libaisid.so.0 is loaded
by its SONAME, or from $AISID_LIBRARY.
"""

import asyncio
import socket
import threading

from ._client import Client, ConnectInfo, Fallback, Fields, Result
from ._errors import (
    AgainError,
    AisidError,
    AisidTimeoutError,
    CancelledError,
    ClientClosedError,
    ConnectError,
    InvalidArgumentError,
    NetworkError,
    NoDataError,
    NotFoundError,
    OutOfMemoryError,
    ServFailError,
    SystemCallError,
    ZoneError,
)
from ._ffi import LIBRARY, ffi, lib

__all__ = [
    "Client", "Result", "Fields", "Fallback", "ConnectInfo", "LIBRARY",
    "resolve", "create_connection", "open_connection", "default_client", "version",
    "AisidError", "NotFoundError", "NoDataError", "InvalidArgumentError", "OutOfMemoryError",
    "ZoneError", "AisidTimeoutError", "ServFailError", "NetworkError", "ConnectError",
    "AgainError", "CancelledError", "SystemCallError", "ClientClosedError",
]

__version__ = "0.1.0"

_default = None
_default_lock = threading.Lock()


def version():
    """The version of the loaded libaisid ("0.1.0")."""
    return ffi.string(lib.aisid_version()).decode()


def default_client():
    """A process-wide Client with the host's defaults (zone directories, resolv.conf)."""
    global _default
    c = _default
    if c is None or c.closed:
        with _default_lock:
            if _default is None or _default.closed:
                _default = Client()
            c = _default
    return c


def resolve(name, *, client=None):
    """Client.resolve on the default client (or `client`)."""
    return (client or default_client()).resolve(name)


def create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, *, client=None):
    """A drop-in for socket.create_connection: aisid_connect (AISID first,
    SVCB fallback, per-network memory) on the default client (or `client`)."""
    return (client or default_client()).create_connection(address, timeout, source_address)


async def open_connection(host, port, *, client=None, timeout=None, ssl=None, server_hostname=None, **kwds):
    """The analogue of asyncio.open_connection over Client.connect_async.

    With ssl (True or an SSLContext), the certificate is verified against the
    service name `host` (or server_hostname), never against the address the
    connection took. Other keywords go to asyncio.open_connection (limit, ...)."""
    c = client or default_client()
    sock, _ = await c.connect_async(host, port, timeout=timeout)
    try:
        if ssl:
            if server_hostname is None:
                server_hostname = host.rstrip(".") if isinstance(host, str) else host.decode().rstrip(".")
            return await asyncio.open_connection(sock=sock, ssl=ssl, server_hostname=server_hostname, **kwds)
        return await asyncio.open_connection(sock=sock, **kwds)
    except BaseException:
        sock.close()
        raise
