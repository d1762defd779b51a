"""aisid.Client: libaisid's client, its results, connects, and the asyncio glue."""

import asyncio
import errno
import select
import socket
import sys
import threading
from typing import NamedTuple, Optional

from ._errors import AisidTimeoutError, ClientClosedError, ConnectError, error_for
from ._ffi import ffi, lib

_OK = lib.AISID_OK
_SOURCE_AISID = lib.AISID_SOURCE_AISID
_ntop = socket.inet_ntop
_AF_INET6 = socket.AF_INET6
_buffer = ffi.buffer
_string = ffi.string
_free_result = lib.aisid_result_free
_new = ffi.new
_resolve = lib.aisid_resolve
_result_address = lib.aisid_result_address
_tls = threading.local()  # per-thread scratch buffers (cffi calls release the GIL)


def _text(p):
    """A C string the library owns, copied into a Python str (None for NULL)."""
    return None if p == ffi.NULL else _string(p).decode("utf-8", "replace")


def _name_bytes(name):
    if isinstance(name, str):
        return name.encode("utf-8")
    if isinstance(name, (bytes, bytearray)):
        return bytes(name)
    raise TypeError(f"a name is str or bytes, not {type(name).__name__}")


class Fields(NamedTuple):
    """The decoded fields of an AISID (SPEC §1), with their codebook terms."""

    prefix: str  # "2001:db8:abcd:12::/64"
    object: int
    function: int
    method: int
    performance: int  # latency budget in ms; 0 = best effort
    object_term: Optional[str]  # None: 0 (any) or a code the codebook lacks
    function_term: Optional[str]
    method_term: Optional[str]


class Fallback(NamedTuple):
    """A legacy endpoint of the service (SVCB, RFC 9460)."""

    target: str  # "yolo-detection-image.legacy.provider.example."
    port: int  # 0: the SVCB has none (use the application's port)


class ConnectInfo(NamedTuple):
    """What a connect did (aisid_connect_info_t)."""

    path: str  # "aisid", "fallback", "legacy" or "none"
    reason: str  # why the fallback was started: "none", "unreachable", "refused", "delay", "remembered", "error"
    peer: tuple  # (address, port) connected to; IPv4 as "::ffff:a.b.c.d"
    elapsed: float  # seconds from the call to the connected socket
    attempts: int  # TCP connection attempts started


_PATHS = {0: "none", 1: "aisid", 2: "fallback", 3: "legacy"}
_REASONS = {0: "none", 1: "unreachable", 2: "refused", 3: "delay", 4: "remembered", 5: "error"}


class Result:
    """The answer of a resolution.

    It owns its aisid_result_t (freed with the object or by close()); every
    string it hands out is a Python copy, so nothing it returns points into C
    memory. It does not depend on the Client: it stays valid after the client
    is closed (the C result keeps its zone snapshot alive).
    """

    __slots__ = ("_r", "_addresses", "_name", "_source", "_ttl", "_fields", "_zone", "_fallbacks")

    def __init__(self, r):
        # r: a non-NULL aisid_result_t * this object now owns (freed by
        # __del__ or close(); cheaper than ffi.gc on the resolve path). The
        # other slots stay unset until first read: nothing is decoded that
        # nobody asks for.
        self._r = r

    def _c(self):
        r = self._r
        if r is None:  # close() ran: everything was copied before
            raise AssertionError("aisid.Result: C result used after close")
        return r

    def _decode_addresses(self):
        r = self._c()
        try:
            buf = _tls.in6
        except AttributeError:
            buf = _tls.in6 = _new("struct in6_addr *")
        a = []
        for i in range(lib.aisid_result_count(r)):
            _result_address(r, i, buf)
            a.append(_ntop(_AF_INET6, _buffer(buf)[:]))
        self._addresses = a
        return a

    @property
    def addresses(self):
        """The addresses, as IPv6 text (IPv4 answers as "::ffff:a.b.c.d")."""
        try:
            a = self._addresses
        except AttributeError:
            a = self._decode_addresses()
        return list(a)

    @property
    def address(self):
        """The first address (None when there is none)."""
        try:
            a = self._addresses
        except AttributeError:
            a = self._decode_addresses()
        return a[0] if a else None

    @property
    def name(self):
        """The resolved name in canonical form ("yolo.detection.image.ai.example.")."""
        if not hasattr(self, "_name"):
            self._name = _text(lib.aisid_result_name(self._c()))
        return self._name

    @property
    def source(self):
        """"aisid" (local AISID zone data, no packet) or "legacy" (legacy DNS)."""
        if not hasattr(self, "_source"):
            self._source = "aisid" if lib.aisid_result_source(self._c()) == _SOURCE_AISID else "legacy"
        return self._source

    @property
    def is_aisid(self):
        return self.source == "aisid"

    @property
    def ttl(self):
        """TTL in seconds (the time left, for cached legacy answers)."""
        if not hasattr(self, "_ttl"):
            self._ttl = int(lib.aisid_result_ttl(self._c()))
        return self._ttl

    @property
    def fields(self):
        """The decoded Fields of the AISID, or None when the result holds none."""
        if not hasattr(self, "_fields"):
            r = self._c()
            f = _new("aisid_fields_t *")
            if lib.aisid_result_fields(r, f) != 0:
                self._fields = None
            else:
                prefix = _ntop(_AF_INET6, f.prefix.to_bytes(8, "big") + bytes(8)) + "/64"
                self._fields = Fields(
                    prefix, f.object, f.function, f.method, f.performance,
                    _text(lib.aisid_result_term(r, lib.AISID_DIM_OBJECT)),
                    _text(lib.aisid_result_term(r, lib.AISID_DIM_FUNCTION)),
                    _text(lib.aisid_result_term(r, lib.AISID_DIM_METHOD)),
                )
        return self._fields

    @property
    def zone(self):
        """The AISID domain that answered ("ai.example."), None for legacy answers."""
        if not hasattr(self, "_zone"):
            self._zone = _text(lib.aisid_result_zone(self._c()))
        return self._zone

    @property
    def fallbacks(self):
        """The service's legacy endpoints (SVCB) in priority order, as Fallback tuples."""
        if not hasattr(self, "_fallbacks"):
            r = self._c()
            target = _new("const char **")
            port = _new("uint16_t *")
            fb = []
            for i in range(lib.aisid_result_fallback_count(r)):
                if lib.aisid_result_fallback(r, i, target, port) == 0:
                    fb.append(Fallback(_text(target[0]), int(port[0])))
            self._fallbacks = fb
        return list(self._fallbacks)

    def close(self):
        """Copies what is left and frees the C result now (instead of at collection)."""
        if self._r is None:
            return
        for attr in ("addresses", "name", "source", "ttl", "fields", "zone", "fallbacks"):
            getattr(self, attr)
        r, self._r = self._r, None
        _free_result(r)

    def __del__(self):
        r = self._r
        if r is not None:
            self._r = None
            _free_result(r)

    def as_dict(self):
        f = self.fields
        return {
            "name": self.name,
            "source": self.source,
            "addresses": self.addresses,
            "ttl": self.ttl,
            "fields": f._asdict() if f else None,
            "zone": self.zone,
            "fallbacks": [fb._asdict() for fb in self.fallbacks],
        }

    def __repr__(self):
        return (f"aisid.Result(name={self.name!r}, source={self.source!r}, addresses={self.addresses!r}, "
                f"fields={self.fields!r}, fallbacks={self.fallbacks!r}, zone={self.zone!r}, ttl={self.ttl})")

    def __str__(self):
        """What aisid-lookup prints for the name."""
        lines = [self.name, f"  source:      {self.source}"]
        for a in self.addresses:
            lines.append(f"  address:     {a}")
        f = self.fields
        if f:
            def term(code, t):
                return f"{code} ({t if t else 'any' if code == 0 else 'not in the codebook'})"
            perf = f"{f.performance} (latency budget {f.performance} ms)" if f.performance else "0 (best effort)"
            lines += [
                f"  prefix:      {f.prefix}",
                f"  object:      {term(f.object, f.object_term)}",
                f"  function:    {term(f.function, f.function_term)}",
                f"  method:      {term(f.method, f.method_term)}",
                f"  performance: {perf}",
            ]
        for fb in self.fallbacks:
            lines.append(f"  fallback:    {fb.target}:{fb.port} (legacy endpoint, SVCB)")
        if self.zone:
            lines.append(f"  zone:        {self.zone}")
        lines.append(f"  ttl:         {self.ttl}")
        return "\n".join(lines)


# ---- asynchronous resolution ------------------------------------------------


class _Pending:
    __slots__ = ("client", "fut", "name", "handle", "__weakref__")


@ffi.callback("void(void *, aisid_status_t, aisid_result_t *)")
def _on_resolved(arg, status, result):
    # Runs on the thread that called aisid_resolve_async or aisid_async_process*
    # (the event loop's), or in aisid_client_free (ECANCELLED). Exceptions
    # cannot cross into C: they are reported and dropped.
    try:
        p = ffi.from_handle(arg)
        p.client._handles.discard(p)
        if status == _OK:
            res = Result(result)  # owns the result now, whatever happens to the future
            if not p.fut.done():
                p.fut.set_result(res)
        elif not p.fut.done():
            p.fut.set_exception(error_for(status, p.name, detail=""))
    except RuntimeError:
        pass  # the future's loop is closed: nobody is waiting any more
    except BaseException:  # pragma: no cover - reported, never raised into C
        import traceback

        traceback.print_exc()


_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_MAX_FDS = 64

# ---- the client ---------------------------------------------------------------


class Client:
    """A libaisid client (aisid_client_t).

    zones       zone files to load (list of paths). When given, the host's zone
                directories (/etc/aisid/zones, /var/lib/aisid/zones) are not read
                unless host_zones=True; without zones they are.
    upstreams   legacy DNS upstreams, "ADDR[:PORT]" strings (or one comma
                separated string); default: /etc/resolv.conf.
    watch       watch the zone files and use new versions as they change.
    attempt_delay   connect's attempt delay in seconds (RFC 8305 §5; default 0.25).
    legacy_timeout  how long legacy DNS may take per query, in seconds (default 5).

    A Client may be shared by threads; close() waits for no one: the C client
    is freed when the last call in progress returns. The asyncio calls bind it
    to the running loop while queries are pending.
    """

    def __init__(self, zones=None, upstreams=None, *, host_zones=None, watch=True,
                 attempt_delay=None, legacy_timeout=None):
        if isinstance(zones, (str, bytes)):
            zones = [zones]
        if host_zones is None:
            host_zones = zones is None
        flags = (0 if host_zones else lib.AISID_CLIENT_NO_HOST_ZONES) | (0 if watch else lib.AISID_CLIENT_NO_WATCH)
        self._p = None
        self._closed = True
        self._inflight = []  # one entry per call in progress (list ops are atomic under the GIL)
        self._lock = threading.Lock()
        self._tls = threading.local()  # per-thread out parameters
        self._handles = set()  # pending asynchronous queries (their cffi handles stay alive here)
        self._loop = None
        self._watched = {}  # fd -> poll events registered with self._loop
        self._timer = None
        self._pfds = ffi.new("struct pollfd[]", _MAX_FDS)
        self._attempt_delay = 0.25
        self._netmem = {}  # asyncio connects: network key -> True (AISIDs reachable) / False (legacy only)
        self._acount = dict.fromkeys(_ASYNC_COUNTERS, 0)
        out = ffi.new("aisid_client_t **")
        st = lib.aisid_client_new_flags(out, flags)
        if st != _OK:
            raise error_for(st)
        self._p = out[0]
        self._closed = False
        try:
            for z in zones or ():
                st = lib.aisid_client_add_zone_file(self._p, _name_bytes(str(z) if not isinstance(z, bytes) else z))
                if st != _OK:
                    raise error_for(st, z)
            if upstreams is not None:
                csv = upstreams if isinstance(upstreams, str) else ",".join(upstreams)
                st = lib.aisid_client_set_upstreams(self._p, csv.encode())
                if st != _OK:
                    raise error_for(st, csv)
            if attempt_delay is not None:
                self.attempt_delay = attempt_delay
            if legacy_timeout is not None:
                st = lib.aisid_client_set_legacy_timeout(self._p, max(1, int(round(legacy_timeout * 1000))))
                if st != _OK:
                    raise error_for(st)
        except BaseException:
            self.close()
            raise

    # -- lifetime --------------------------------------------------------------

    def _enter(self, name=None):
        self._inflight.append(None)
        if self._closed:
            self._exit()
            raise ClientClosedError(name=name)
        return self._p

    def _exit(self):
        infl = self._inflight
        infl.pop()
        if self._closed and not infl:
            self._release()

    def _release(self):
        with self._lock:
            p, self._p = self._p, None
        if p is not None:
            # Pending asynchronous queries end here: their callbacks run with
            # AISID_ECANCELLED (their futures get aisid.CancelledError).
            lib.aisid_client_free(p)
            self._handles.clear()

    def close(self):
        """Frees the C client (at once, or when the calls in progress return).

        Pending asynchronous queries fail with aisid.CancelledError. Every
        later call raises aisid.ClientClosedError. Results stay usable."""
        if self._closed:
            return
        self._closed = True
        self._unwatch()
        if not self._inflight:
            self._release()

    @property
    def closed(self):
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- configuration ---------------------------------------------------------

    def add_zone_file(self, path):
        p = self._enter(path)
        try:
            st = lib.aisid_client_add_zone_file(p, _name_bytes(str(path)))
            if st != _OK:
                raise error_for(st, path)
        finally:
            self._exit()

    def set_upstreams(self, upstreams):
        csv = upstreams if isinstance(upstreams, str) else ",".join(upstreams)
        p = self._enter()
        try:
            st = lib.aisid_client_set_upstreams(p, csv.encode())
            if st != _OK:
                raise error_for(st, csv)
        finally:
            self._exit()

    @property
    def attempt_delay(self):
        return self._attempt_delay

    @attempt_delay.setter
    def attempt_delay(self, seconds):
        ms = int(round(seconds * 1000))
        p = self._enter()
        try:
            st = lib.aisid_client_set_attempt_delay(p, ms)
            if st != _OK:
                raise error_for(st)
            self._attempt_delay = ms / 1000
        finally:
            self._exit()

    def reload(self):
        """Re-reads the zone files now."""
        p = self._enter()
        try:
            st = lib.aisid_client_reload(p)
            if st != _OK:
                raise error_for(st)
        finally:
            self._exit()

    @property
    def zone_generation(self):
        p = self._enter()
        try:
            return int(lib.aisid_client_zone_generation(p))
        finally:
            self._exit()

    def forget(self):
        """Forgets which networks reach AISIDs, and the legacy DNS cache."""
        p = self._enter()
        try:
            lib.aisid_client_forget(p)
            self._netmem.clear()
        finally:
            self._exit()

    def counters(self):
        """The client's counters (aisid_counters_t) as a dict.

        Connects made by connect_async()/open_connection() are counted by the
        binding into the same connect_* and fallback_* keys."""
        out = ffi.new("aisid_counters_t *")
        p = self._enter()
        try:
            lib.aisid_client_counters(p, out, ffi.sizeof("aisid_counters_t"))
        finally:
            self._exit()
        d = {k: int(getattr(out, k)) for k, _ in ffi.typeof("aisid_counters_t").fields}
        for k, v in self._acount.items():
            d[k] += v
        return d

    # -- resolution ------------------------------------------------------------

    def resolve(self, name):
        """Resolves a name: AISID names from the zone data in process, others via legacy DNS.

        Returns a Result; raises NotFoundError, NoDataError, InvalidArgumentError,
        AisidTimeoutError, ServFailError, NetworkError (all AisidError)."""
        b = name.encode() if type(name) is str else _name_bytes(name)
        infl = self._inflight
        infl.append(None)
        try:
            if self._closed:
                raise ClientClosedError(name=name)
            try:
                out = self._tls.out
            except AttributeError:
                out = self._tls.out = _new("aisid_result_t **")
            st = _resolve(self._p, b, out)
            if st != _OK:
                raise error_for(st, name)
            return Result(out[0])
        finally:
            infl.pop()
            if self._closed and not infl:
                self._release()

    # -- connect -----------------------------------------------------------------

    def connect(self, name, port, timeout=None):
        """aisid_connect_ex: a connected TCP socket.socket and a ConnectInfo.

        Under an AISID domain the AISID first, the service's SVCB legacy endpoint
        when it fails at once or has not connected within the attempt delay;
        legacy names with Happy Eyeballs. timeout: the overall deadline in
        seconds (None: 30 s). The socket is blocking."""
        b = _name_bytes(name)
        port = int(port)
        if not 0 <= port <= 65535:
            raise ValueError(f"port out of range: {port}")
        ms = 0 if timeout is None else max(1, int(timeout * 1000))
        err = _new("aisid_status_t *")
        info = _new("aisid_connect_info_t *")
        p = self._enter(name)
        try:
            fd = lib.aisid_connect_ex(p, b, port, ms, err, info)
            if fd < 0:
                raise error_for(err[0], name)
        finally:
            self._exit()
        try:
            sock = socket.socket(fileno=fd)
        except BaseException:
            import os

            os.close(fd)
            raise
        return sock, _connect_info(info)

    def create_connection(self, address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
        """A drop-in for socket.create_connection((name, port), timeout) over aisid_connect.

        The timeout is the connect deadline and then the socket's timeout, as
        with socket.create_connection; source_address is not supported."""
        if source_address is not None:
            raise ValueError("aisid: source_address is not supported")
        host, port = address[0], address[1]
        deadline = socket.getdefaulttimeout() if timeout is socket._GLOBAL_DEFAULT_TIMEOUT else timeout
        sock, _ = self.connect(host, port, deadline)
        if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        elif socket.getdefaulttimeout() is not None:
            sock.settimeout(socket.getdefaulttimeout())
        return sock

    # -- asyncio -----------------------------------------------------------------

    async def resolve_async(self, name):
        """Like resolve(), without blocking the event loop: legacy queries go
        through c-ares, whose sockets are watched with the running loop's
        add_reader/add_writer and its timer (no thread)."""
        loop = asyncio.get_running_loop()
        b = _name_bytes(name)
        p = self._enter(name)
        try:
            if self._loop is not loop:
                self._bind(loop)
            fut = loop.create_future()
            pend = _Pending()
            pend.client, pend.fut, pend.name = self, fut, name
            pend.handle = ffi.new_handle(pend)
            self._handles.add(pend)
            st = lib.aisid_resolve_async(p, b, _on_resolved, pend.handle)
            if st != _OK:
                self._handles.discard(pend)
                raise error_for(st, name)
            if not fut.done():
                self._sync()
        finally:
            self._exit()
        return await fut

    def cancel_async(self):
        """Cancels the pending asynchronous queries (they raise aisid.CancelledError)."""
        p = self._enter()
        try:
            lib.aisid_async_cancel(p)
            self._sync()
        finally:
            self._exit()

    def _bind(self, loop):
        if self._handles:
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError("aisid.Client: asynchronous queries are pending on another event loop")
            lib.aisid_async_cancel(self._p)  # left over from a loop that is gone: nobody waits for them
        self._unwatch()
        self._loop = loop

    def _unwatch(self):
        loop = self._loop
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if loop is not None and not loop.is_closed():
            for fd, ev in self._watched.items():
                if ev & _POLLIN:
                    loop.remove_reader(fd)
                if ev & _POLLOUT:
                    loop.remove_writer(fd)
        self._watched = {}

    def _sync(self):
        """Makes the loop watch exactly what aisid_async_fds() asks for, and
        arms the timer with aisid_async_timeout(). Called with the client held."""
        loop, p = self._loop, self._p
        if loop is None or p is None:
            return
        n = lib.aisid_async_fds(p, self._pfds, _MAX_FDS)
        want = {}
        for i in range(n):
            e = self._pfds[i]
            want[e.fd] = want.get(e.fd, 0) | (e.events & (_POLLIN | _POLLOUT))
        watched = self._watched
        for fd in list(watched):
            old, new = watched[fd], want.get(fd, 0)
            if old & _POLLIN and not new & _POLLIN:
                loop.remove_reader(fd)
            if old & _POLLOUT and not new & _POLLOUT:
                loop.remove_writer(fd)
            if not new:
                del watched[fd]
        for fd, new in want.items():
            old = watched.get(fd, 0)
            if new & _POLLIN and not old & _POLLIN:
                loop.add_reader(fd, self._on_io, fd, True)
            if new & _POLLOUT and not old & _POLLOUT:
                loop.add_writer(fd, self._on_io, fd, False)
            watched[fd] = new
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ms = lib.aisid_async_timeout(p)
        if ms >= 0:
            self._timer = loop.call_later(ms / 1000, self._on_timer)

    def _on_io(self, fd, readable):
        try:
            p = self._enter()
        except ClientClosedError:
            return
        try:
            if readable:
                lib.aisid_async_process_fd(p, fd, -1)
            else:
                lib.aisid_async_process_fd(p, -1, fd)
            self._sync()
        finally:
            self._exit()

    def _on_timer(self):
        self._timer = None
        try:
            p = self._enter()
        except ClientClosedError:
            return
        try:
            lib.aisid_async_process(p, ffi.NULL, 0)
            self._sync()
        finally:
            self._exit()

    async def connect_async(self, name, port, timeout=None):
        """The asyncio analogue of connect(): a connected non-blocking socket and a ConnectInfo.

        The same policy as aisid_connect, run on the event loop: resolution
        with resolve_async(); under an AISID domain the AISID first, the SVCB
        legacy endpoint when the AISID fails at once (unreachable, refused) or
        has not connected within attempt_delay, both racing; a network seen not
        to reach AISIDs is remembered (per client). Legacy names: Happy
        Eyeballs across their addresses."""
        loop = asyncio.get_running_loop()
        port = int(port)
        if not 0 <= port <= 65535:
            raise ValueError(f"port out of range: {port}")
        t0 = loop.time()
        state = {"attempts": 0, "reason": "none"}
        try:
            sock, path = await asyncio.wait_for(self._connect_async(loop, name, port, state),
                                                30.0 if timeout is None else timeout)
        except asyncio.TimeoutError:
            self._acount["connect_failed"] += 1
            raise AisidTimeoutError(lib.AISID_ETIMEOUT, _text(lib.aisid_strerror(lib.AISID_ETIMEOUT)),
                                    "", name) from None
        except BaseException:
            self._acount["connect_failed"] += 1
            raise
        self._acount[{"aisid": "connect_aisid_won", "fallback": "connect_fallback_won",
                      "legacy": "connect_legacy"}[path]] += 1
        peer = sock.getpeername()
        if sock.family == socket.AF_INET:
            peer = ("::ffff:" + peer[0], peer[1])
        info = ConnectInfo(path, state["reason"], peer[:2], loop.time() - t0, state["attempts"])
        return sock, info

    async def _connect_async(self, loop, name, port, state):
        res = await self.resolve_async(name)
        addrs = res.addresses
        if not addrs:
            raise error_for(lib.AISID_ENODATA, name, detail="")
        if not res.is_aisid:
            return await self._happy_eyeballs(loop, addrs, port, state, name), "legacy"
        fallbacks = res.fallbacks
        key = _network_key(addrs[0])
        if fallbacks and self._netmem.get(key) is False:
            self._note_fallback(state, "remembered")
            return await self._fallback(loop, fallbacks, port, state), "fallback"
        a_task = loop.create_task(self._attempt(loop, addrs[0], port, state))
        tasks = [a_task]
        winner = None
        try:
            done, _ = await asyncio.wait(tasks, timeout=self._attempt_delay)
            if done:
                exc = a_task.exception()
                if exc is None:
                    winner = a_task
                    self._netmem[key] = True
                    return a_task.result(), "aisid"
                if not fallbacks:
                    raise _connect_error(name, exc)
                reason = _fallback_reason(exc)
                if reason == "unreachable":
                    self._netmem[key] = False
            else:
                if not fallbacks:
                    winner = a_task
                    return await a_task, "aisid"
                reason = "delay"
            self._note_fallback(state, reason)
            f_task = loop.create_task(self._fallback(loop, fallbacks, port, state))
            tasks.append(f_task)
            errors = []
            pending = {t for t in tasks if not t.done()}
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if t.exception() is None and winner is None:
                        winner = t
                    elif t.exception() is not None:
                        errors.append(t.exception())
                if winner is not None:
                    break
            if winner is None:
                raise _connect_error(name, errors[-1] if errors else None)
            if winner is a_task:
                self._netmem[key] = True
                return winner.result(), "aisid"
            if reason != "refused":
                self._netmem[key] = False
            return winner.result(), "fallback"
        finally:
            _close_losers(tasks, winner)

    def _note_fallback(self, state, reason):
        state["reason"] = reason
        self._acount["fallback_" + reason] += 1

    async def _fallback(self, loop, fallbacks, port, state):
        errors = []
        for fb in fallbacks:
            try:
                res = await self.resolve_async(fb.target)
                return await self._happy_eyeballs(loop, res.addresses, fb.port or port, state, fb.target)
            except OSError as e:
                errors.append(e)
        raise _connect_error(fallbacks[0].target, errors[-1] if errors else None)

    async def _attempt(self, loop, addr, port, state):
        state["attempts"] += 1
        if addr.startswith("::ffff:") and "." in addr:
            fam, addr = socket.AF_INET, addr[7:]
        else:
            fam = socket.AF_INET6
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.setblocking(False)
            await loop.sock_connect(s, (addr, port))
            return s
        except BaseException:
            s.close()
            raise

    async def _happy_eyeballs(self, loop, addrs, port, state, name):
        """RFC 8305 §4-5: IPv6 and IPv4 interleaved, one new attempt per attempt
        delay or as soon as one fails; the first connected wins."""
        v6 = [a for a in addrs if not (a.startswith("::ffff:") and "." in a)]
        v4 = [a for a in addrs if a not in v6]
        order = []
        for i in range(max(len(v6), len(v4))):
            order += v6[i:i + 1] + v4[i:i + 1]
        if not order:
            raise error_for(lib.AISID_ENODATA, None, detail="")
        tasks, errors, winner, i = [], [], None, 0
        try:
            while True:
                if i < len(order):
                    tasks.append(loop.create_task(self._attempt(loop, order[i], port, state)))
                    i += 1
                running = [t for t in tasks if not t.done()]
                if not running:
                    if i >= len(order):
                        break
                    continue
                done, _ = await asyncio.wait(running, timeout=self._attempt_delay if i < len(order) else None,
                                             return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if t.exception() is None:
                        winner = t
                        return t.result()
                    errors.append(t.exception())
            raise _connect_error(name, errors[-1] if errors else None)
        finally:
            _close_losers(tasks, winner)


_ASYNC_COUNTERS = ("connect_aisid_won", "connect_fallback_won", "connect_legacy", "connect_failed",
                   "fallback_unreachable", "fallback_refused", "fallback_delay", "fallback_remembered",
                   "fallback_error")


def _close_losers(tasks, winner):
    for t in tasks:
        if t is winner:
            continue
        if not t.done():
            t.cancel()  # _attempt closes its socket when cancelled
        elif not t.cancelled() and t.exception() is None:
            r = t.result()
            if isinstance(r, socket.socket):
                r.close()


def _fallback_reason(exc):
    e = getattr(exc, "errno", None)
    if e in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN):
        return "unreachable"
    if e == errno.ECONNREFUSED:
        return "refused"
    if e == errno.ETIMEDOUT:
        return "delay"
    return "error"


def _connect_error(name, exc):
    reason = _text(lib.aisid_strerror(lib.AISID_ECONNECT))
    err = ConnectError(lib.AISID_ECONNECT, reason, str(exc) if exc else "", name)
    err.__cause__ = exc
    return err


def _network_key(aisid):
    """Which network this host uses toward an AISID prefix (as the SDK's
    connect does): a connected UDP socket makes the kernel pick the route and
    the source address; no packet is sent."""
    prefix = socket.inet_pton(socket.AF_INET6, aisid)[:8]
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.connect((aisid, 9))
            src = s.getsockname()
            return (prefix, src[0], src[3])
    except OSError as e:
        return (prefix, "noroute", e.errno)


def _connect_info(info):
    peer = info.peer
    addr = _ntop(socket.AF_INET6, bytes(ffi.buffer(ffi.addressof(peer, "sin6_addr"))))
    port = socket.ntohs(peer.sin6_port)
    return ConnectInfo(_PATHS.get(info.path, "none"), _REASONS.get(info.reason, "error"), (addr, port),
                       info.elapsed_us / 1e6, int(info.attempts))


if sys.version_info < (3, 8):  # pragma: no cover
    raise ImportError("aisid needs Python 3.8 or later")
