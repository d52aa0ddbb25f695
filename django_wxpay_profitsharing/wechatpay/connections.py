"""urllib3's connections, held to one call's deadline: the rules both transports share.

Why a module of its own: the deadline, the step a call reached, strict chunk sizes
and the pool's hygiene live in the connection classes urllib3 builds, so that
``transport.py`` (urllib3 directly) and ``requests_transport.py`` (urllib3 under
``requests``) mount the same classes and obey the same rules.

How a deadline reaches a connection: the transport makes an :class:`Exchange` the
current one on its thread (:class:`ExchangeScope`) for the length of the call;
urllib3 connects, sends and reads on that same thread, and every step asks the
exchange how much time is left. ``connect`` (TCP, proxy tunnel, TLS handshake) is
cut by a timer at the connect deadline; ``request`` marks the first byte as
possibly sent and starts the read deadline; every read sets the socket's timeout to
the time left (``http.client`` reads heads, 1xx answers, chunks and trailers through
it), and an exchange may receive at most its body cap plus ``HEAD_ALLOWANCE`` bytes.
"""

from __future__ import annotations

import http.client
import io
import os
import re
import socket
import ssl
import threading
import time
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError

#: WeChat Pay closes idle keep-alive connections after about 8 s; drop ours first.
IDLE_SECONDS = 7.0
#: A WeChat Pay answer is about 1 KB; a bigger body than this is refused.
MAX_BODY = 8 * 1024 * 1024
#: Bytes an exchange may receive beyond its body: heads, 1xx answers, chunk framing.
HEAD_ALLOWANCE = 1024 * 1024
_MAX_LINE = 65_536
_HEX_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
#: RFC 9112 status-line: three ASCII digits (``int()`` would read ``2_00`` as 200).
_STATUS_LINE = re.compile(rb"(HTTP/1\.[0-9]) ([0-9]{3})(?: ([^\r\n]*))?\r?\n")

Timeout = float | tuple[float, float]


def split_timeout(timeout: Timeout) -> tuple[float, float]:
    if isinstance(timeout, tuple | list):
        connect, read = timeout
        return float(connect), float(read)
    return float(timeout), float(timeout)


# -------------------------------------------------------------------------- fork
_generation = 0


def _forked() -> None:
    global _generation
    _generation += 1


def process_generation() -> int:
    """Changes in a child after ``fork()``: pools made before it belong to the parent."""
    return _generation


if hasattr(os, "register_at_fork"):  # a child must not reuse its parent's connections
    os.register_at_fork(after_in_child=_forked)


# ---------------------------------------------------------------------- exchange
class Exchange:
    """One call in progress on this thread: its deadline and how far it got."""

    __slots__ = (
        "connected",
        "connection",
        "deadline",
        "expired",
        "idle_seconds",
        "limit",
        "read_seconds",
        "received",
        "sending",
    )

    def __init__(
        self, timeout: Timeout, *, idle_seconds: float = IDLE_SECONDS, body_cap: int = MAX_BODY
    ) -> None:
        connect, self.read_seconds = split_timeout(timeout)
        self.deadline = time.monotonic() + connect  # until the connection is ready
        self.idle_seconds = idle_seconds
        self.limit = body_cap + HEAD_ALLOWANCE
        self.received = 0
        self.sending = False  # the first byte of the request may have left
        self.connected = False  # a new connection was opened for this call
        self.expired = False
        self.connection: ExchangeConnection | None = None  # the one sending this call

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError("the call's deadline passed")
        return left


_local = threading.local()


def current_exchange() -> Exchange | None:
    exchange: Exchange | None = getattr(_local, "exchange", None)
    return exchange


class ExchangeScope:
    """Makes ``exchange`` the one this thread's connection reads and writes obey."""

    __slots__ = ("exchange",)

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    def __enter__(self) -> Exchange:
        _local.exchange = self.exchange
        return self.exchange

    def __exit__(self, *exc: object) -> None:
        _local.exchange = None


class Refused(http.client.HTTPException):
    """An answer this client will not read: its framing or status is not HTTP we accept."""


class _DeadlineReader(io.RawIOBase):
    """The socket as ``http.client`` reads it: every read bounded by the call's deadline.

    Wraps the socket's own ``makefile`` (whose reference count keeps the socket open
    until the answer is read, even once ``http.client`` has closed the connection).
    """

    def __init__(self, sock: socket.socket, exchange: Exchange) -> None:
        super().__init__()
        self.sock = sock
        self.inner = sock.makefile("rb", buffering=0)
        self.exchange = exchange
        self.probing = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        if self.probing:  # asked only what is buffered already
            return None
        exchange = self.exchange
        if exchange.received > exchange.limit:
            raise Refused("answer larger than the body cap")
        self.sock.settimeout(exchange.remaining())
        try:
            count: int | None = self.inner.readinto(buffer)
        except TimeoutError:
            exchange.expired = True
            raise
        exchange.received += count or 0
        return count

    def close(self) -> None:
        if not self.closed:
            self.inner.close()
        super().close()


class _AnswerFile(io.BufferedReader):
    """The answer's bytes as ``http.client`` reads them.

    Inside a head (from its status line to the blank line that ends it), a line the
    peer cut off (end of stream before its line feed, or no line at all) is refused:
    ``http.client`` would take the end of the stream for the end of the head, and
    ``HTTP/1.1 200 OK\\r\\nContent-Le`` then close for a complete, empty answer.

    At the end of an answer: the connection's idle clock starts, and if bytes
    nobody asked for were left in the buffer, the connection is not reused."""

    raw: _DeadlineReader
    #: Set by the status line, cleared by the blank line that ends the head.
    head_open = False

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        if self.head_open:
            if line in (b"\r\n", b"\n"):
                self.head_open = False
            elif not line.endswith(b"\n") and (size is None or size < 0 or len(line) < size):
                raise Refused("the answer was cut off inside its head")
        return line

    def close(self) -> None:
        if not self.closed:
            exchange = self.raw.exchange
            connection = exchange.connection
            self.raw.probing = True
            try:
                leftover = bool(self.peek(1))
            except (OSError, ValueError):  # pragma: no cover - already broken
                leftover = True
            if connection is not None:
                connection.idle_since = time.monotonic()
                connection.poisoned = connection.poisoned or leftover
        super().close()


class _SocketView:
    """What ``http.client.HTTPResponse`` asks of a socket: ``makefile``."""

    __slots__ = ("exchange", "sock")

    def __init__(self, sock: socket.socket, exchange: Exchange) -> None:
        self.sock = sock
        self.exchange = exchange

    def makefile(self, mode: str) -> _AnswerFile:
        return _AnswerFile(_DeadlineReader(self.sock, self.exchange), 65_536)


class _Answer(http.client.HTTPResponse):
    """``http.client``'s parser reading through the deadline; strict status and chunks."""

    def __init__(
        self, sock: Any, debuglevel: int = 0, method: str | None = None, url: str | None = None
    ) -> None:
        exchange = current_exchange()
        if exchange is not None:
            sock = _SocketView(sock, exchange)
        # A chunk may be as large as the exchange may receive (a streamed bill's is).
        self._chunk_cap = MAX_BODY if exchange is None else max(MAX_BODY, exchange.limit)
        super().__init__(sock, debuglevel, method, url)

    def _read_status(self) -> tuple[str, int, str]:
        """``HTTP/1.x NNN reason``, nothing looser (``http.client`` also reads the
        answer to a proxy's CONNECT with it)."""
        line = self.fp.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("status line")
        if not line:
            raise http.client.RemoteDisconnected("closed without an answer")
        match = _STATUS_LINE.fullmatch(line)
        if match is None:
            self._close_conn()  # type: ignore[attr-defined]
            raise http.client.BadStatusLine(line.decode("latin-1")[:80])
        version, status, reason = match.groups()
        if isinstance(self.fp, _AnswerFile):
            self.fp.head_open = True  # its header lines follow, up to a blank line
        return version.decode(), int(status), (reason or b"").decode("latin-1")

    def _read_next_chunk_size(self) -> int:
        """RFC 9112: ``1*HEXDIG``; ``int(x, 16)`` would take ``-``, ``+``, ``0x``, ``_``."""
        line = self.fp.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("chunk size")
        size = line.split(b";", 1)[0].strip(b" \t\r\n")
        if not _HEX_SIZE.fullmatch(size) or int(size, 16) > self._chunk_cap:
            self._close_conn()  # type: ignore[attr-defined]
            raise ValueError("malformed chunk size")  # http.client: IncompleteRead
        return int(size, 16)


class _ConnectGuard:
    """Cuts the connect step at the deadline: shuts the half-open socket down.

    Holds a duplicate of the socket's descriptor, so that shutting it down can never
    reach another socket that reused a closed descriptor's number.
    """

    def __init__(self, seconds: float) -> None:
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.fired = self.done = False
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self.lock:
            self.sock = sock.dup()
            fired = self.fired
        if fired:
            self._fire()

    def _fire(self) -> None:
        with self.lock:
            self.fired = True
            if self.sock is not None and not self.done:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cancel(self) -> None:
        self.timer.cancel()
        with self.lock:
            self.done = True
            if self.sock is not None:
                self.sock.close()


class ExchangeConnection:
    """Mixed into urllib3's connection classes: deadline, where it failed, hygiene."""

    response_class: type[http.client.HTTPResponse] = _Answer
    idle_since = 0.0
    poisoned = False  # the server sent more than it was asked for
    _guard: _ConnectGuard | None = None

    sock: Any
    _tunnel_host: str | None

    def connect(self) -> None:
        exchange = current_exchange()
        if exchange is None:
            super().connect()  # type: ignore[misc]
            self.idle_since = time.monotonic()
            self.poisoned = False
            return
        try:
            seconds = exchange.remaining()
        except TimeoutError:
            raise ConnectTimeoutError(self, "the call's deadline passed") from None
        self._guard = guard = _ConnectGuard(seconds)
        try:
            super().connect()  # type: ignore[misc]
        except BaseException:
            if guard.fired:
                exchange.expired = True
            raise
        finally:
            guard.cancel()
            self._guard = None
        if guard.fired:  # the timer won the race against a handshake that just ended
            exchange.expired = True
            raise ConnectTimeoutError(self, "the call's deadline passed")
        exchange.connected = True
        self.idle_since = time.monotonic()
        self.poisoned = False

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        if self._guard is not None:
            self._guard.watch(sock)
        return sock

    def request(
        self, method: str, url: str, body: Any = None, headers: Any = None, **kw: Any
    ) -> None:
        exchange = current_exchange()
        if exchange is not None:
            if self.sock is None:  # plain http connects lazily: make it its own step
                self.connect()
            exchange.sending = True
            exchange.connection = self
            exchange.deadline = time.monotonic() + exchange.read_seconds
            self.sock.settimeout(exchange.remaining())
        super().request(method, url, body=body, headers=headers, **kw)  # type: ignore[misc]

    @property
    def is_connected(self) -> bool:
        """Usable for another request: not idle too long, nothing unasked-for waiting."""
        sock = self.sock
        if sock is None or self.poisoned:
            return False
        exchange = current_exchange()
        idle_seconds = exchange.idle_seconds if exchange is not None else IDLE_SECONDS
        if time.monotonic() - self.idle_since > idle_seconds:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        connected: bool = super().is_connected  # type: ignore[misc]
        return connected


class _HTTPConnection(ExchangeConnection, HTTPConnection):
    pass


class _HTTPSConnection(ExchangeConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}
_socks_pools: dict[str, type[HTTPConnectionPool]] = {}


def socks_module() -> Any:
    """``urllib3.contrib.socks``, or a clear error naming what to install."""
    try:
        from urllib3.contrib import socks
    except ImportError:  # urllib3 raises it when PySocks is missing
        raise ValueError("a SOCKS proxy needs PySocks: pip install 'urllib3[socks]'") from None
    if not _socks_pools:

        class _SOCKSHTTPConnection(ExchangeConnection, socks.SOCKSConnection):
            pass

        class _SOCKSHTTPSConnection(ExchangeConnection, socks.SOCKSHTTPSConnection):
            pass

        class _SOCKSHTTPPool(socks.SOCKSHTTPConnectionPool):
            ConnectionCls = _SOCKSHTTPConnection

        class _SOCKSHTTPSPool(socks.SOCKSHTTPSConnectionPool):
            ConnectionCls = _SOCKSHTTPSConnection

        _socks_pools.update(http=_SOCKSHTTPPool, https=_SOCKSHTTPSPool)
    return socks


def use_exchange_pools(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    """Make ``manager``'s pools use the deadline-aware connections (SOCKS included)."""
    if type(manager).__name__ == "SOCKSProxyManager":
        socks_module()
        manager.pool_classes_by_scheme = dict(_socks_pools)
    else:
        manager.pool_classes_by_scheme = dict(_POOLS)
    return manager
