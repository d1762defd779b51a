"""Exceptions: one class per aisid_status_t, each carrying the status code, the
library's text for it (aisid_strerror) and the details of aisid_last_error()."""

from ._ffi import ffi, lib


class AisidError(OSError):
    """An error from libaisid.

    status   the aisid_status_t value (an int; AISID_OK never raises)
    reason   aisid_strerror(status), e.g. "name not found"
    detail   aisid_last_error() at the time of the failing call ("" when none)
    name     the name (or address) the call was about, when there was one

    It is an OSError, as socket.create_connection's errors are, so code that
    catches OSError around a connect keeps working.
    """

    status = -1

    def __init__(self, status, reason, detail="", name=None):
        self.status = status
        self.reason = reason
        self.detail = detail
        self.name = name
        text = detail or reason
        if name and str(name) not in text:
            text = f"{name}: {text}"
        if reason not in text:
            text = f"{text} ({reason})"
        super().__init__(text)

    def __str__(self):
        return self.args[0]

    def __reduce__(self):
        return (type(self), (self.status, self.reason, self.detail, self.name))


class NotFoundError(AisidError):
    """AISID_ENOTFOUND: the name does not exist (NXDOMAIN, local or legacy)."""


class NoDataError(AisidError):
    """AISID_ENODATA: the name exists but has no address."""


class InvalidArgumentError(AisidError):
    """AISID_EINVAL: a malformed name, address list or argument."""


class OutOfMemoryError(AisidError):
    """AISID_ENOMEM."""


class ZoneError(AisidError):
    """AISID_EZONE: a zone file could not be read or broke SPEC §3 ("FILE:LINE: why" in detail)."""


class AisidTimeoutError(AisidError, TimeoutError):
    """AISID_ETIMEOUT: no answer or no connection before the deadline."""


class ServFailError(AisidError):
    """AISID_ESERVFAIL: the legacy upstream failed (SERVFAIL, REFUSED, bad answer)."""


class NetworkError(AisidError):
    """AISID_ENETWORK: no legacy upstream could be reached."""


class ConnectError(AisidError, ConnectionError):
    """AISID_ECONNECT: every address was tried and none accepted the connection."""


class AgainError(AisidError):
    """AISID_EAGAIN: an asynchronous query is still pending."""


class CancelledError(AisidError):
    """AISID_ECANCELLED: the query was cancelled (client closed or cancel_async())."""


class SystemCallError(AisidError):
    """AISID_ESYSTEM: a system call failed (errno in detail)."""


class ClientClosedError(AisidError):
    """The Client was closed: its C handle is gone and cannot be used."""

    def __init__(self, status=-1, reason="client is closed", detail="", name=None):
        super().__init__(status, reason, detail, name)


_BY_STATUS = {
    lib.AISID_ENOTFOUND: NotFoundError,
    lib.AISID_ENODATA: NoDataError,
    lib.AISID_EINVAL: InvalidArgumentError,
    lib.AISID_ENOMEM: OutOfMemoryError,
    lib.AISID_EZONE: ZoneError,
    lib.AISID_ETIMEOUT: AisidTimeoutError,
    lib.AISID_ESERVFAIL: ServFailError,
    lib.AISID_ENETWORK: NetworkError,
    lib.AISID_ECONNECT: ConnectError,
    lib.AISID_EAGAIN: AgainError,
    lib.AISID_ECANCELLED: CancelledError,
    lib.AISID_ESYSTEM: SystemCallError,
}


def error_for(status, name=None, detail=None):
    """The exception for a status; detail defaults to this thread's aisid_last_error().

    Call it right after the failing call, on the same thread: the text is
    thread-local and valid until the thread's next aisid call."""
    if detail is None:
        detail = ffi.string(lib.aisid_last_error()).decode("utf-8", "replace")
    reason = ffi.string(lib.aisid_strerror(status)).decode("utf-8", "replace")
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return _BY_STATUS.get(status, AisidError)(int(status), reason, detail, name)
