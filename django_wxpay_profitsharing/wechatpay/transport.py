"""HTTP for the client: urllib3's keep-alive pools, held to a deadline and a size cap.

Why urllib3 and not a stack of our own: a review of the hand-written HTTP/1.1 reader
found four real defects in 450 lines (signed chunk sizes lifting the body cap, a
per-``recv`` timeout a trickling server could stretch without end, an unbracketed
IPv6 ``CONNECT``, status ``2000`` read as 200). urllib3 is maintained, comes with
``requests`` and costs about 0.5 ms more CPU per call. What it does not decide for
us is decided here, once, for both transports (``requests_transport.py`` mounts the
same connection classes):

* **Deadline.** ``TIMEOUT = (connect, read)``: ``connect`` bounds opening the
  connection (TCP, proxy tunnel, TLS handshake) as a whole, and ``read`` bounds
  everything after it (sending, the head, 1xx answers, the body, chunk trailers) as
  a whole, not each ``recv``. So no call outlives :func:`call_deadline` seconds,
  whatever the server trickles. Each read sets the socket's timeout to the time
  left; the connect step is cut by a timer that shuts the half-open socket down.
* **Where it failed.** ``maybe_sent`` is False only when the call failed before
  the connection was ready (DNS, refused, connect timeout, TLS handshake, a proxy
  refusing the tunnel): the connection is opened as its own step, before the first
  byte of the request, and the step reached is recorded, never guessed from an
  exception's text.
* **Strict framing.** Chunk sizes are hex digits only (``http.client`` takes ``-``,
  ``+``, ``0x`` and ``_``), ``Content-Length`` is digits only and never beside
  ``Transfer-Encoding``, and a transfer or content coding that was not asked for
  (``gzip, chunked``) is refused rather than handed to the JSON decoder. Status
  outside 200..599 (a 1xx as a final answer, ``2000``) is no answer.
* **Pool hygiene.** A connection idle longer than ``idle_seconds`` (WeChat Pay
  closes them at about 8 s), closed by the server, holding bytes nobody asked for,
  or inherited through ``fork()`` is never reused; a request in flight on another
  thread is never touched. No redirects are followed and no cookies kept.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError

from .errors import TransportError

__all__ = [
    "IDLE_SECONDS",
    "MAX_BODY",
    "Headers",
    "RawResponse",
    "Transport",
    "Urllib3Transport",
    "call_deadline",
    "environment_proxy",
]

#: WeChat Pay closes idle keep-alive connections after about 8 s; drop ours first.
IDLE_SECONDS = 7.0
#: A WeChat Pay answer is about 1 KB; a bigger body than this is refused.
MAX_BODY = 8 * 1024 * 1024
#: Bytes an exchange may receive beyond its body: heads, 1xx answers, chunk framing.
HEAD_ALLOWANCE = 1024 * 1024
_MAX_LINE = 65_536
_HEX_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")

Timeout = float | tuple[float, float]
#: Response headers: lower-cased names, repeated fields joined with ", ".
Headers = dict[str, str]


class RawResponse(NamedTuple):
    """A whole answer: the body is read completely before anything looks at it."""

    status: int
    headers: Headers  # lower-case names
    body: bytes


class Transport(Protocol):
    """What the client needs from HTTP: one exchange, and closing idle connections."""

    base_url: str

    def send(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> RawResponse:
        """Send ``method target`` (target exactly as signed); raise ``TransportError``."""

    def close(self) -> None:
        """Close idle connections; the transport stays usable."""


def split_timeout(timeout: Timeout) -> tuple[float, float]:
    if isinstance(timeout, tuple | list):
        connect, read = timeout
        return float(connect), float(read)
    return float(timeout), float(timeout)


def call_deadline(timeout: Timeout) -> float:
    """The longest a call can take with this ``TIMEOUT``: connecting plus the exchange."""
    connect, read = split_timeout(timeout)
    return connect + read


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Certificate and host checks always on, TLS 1.2 or newer, no common-name match.

    The CA bundle given, else certifi's (which ``requests`` brings).
    """
    if ca_bundle is None:
        try:
            import certifi

            ca_bundle = certifi.where()
        except ImportError:  # pragma: no cover - requests brings certifi
            ca_bundle = None
    context = ssl.create_default_context(cafile=ca_bundle)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.hostname_checks_common_name = False
    return context


# ----------------------------------------------------------------------- proxies
def bypasses_proxy(host: str, no_proxy: str) -> bool:
    """Whether ``no_proxy`` (comma-separated) names ``host``.

    Entries are ``*``, host names (``example.com`` also covers its subdomains, a
    leading dot or ``*.`` is ignored), IP addresses, and CIDR networks
    (``10.0.0.0/8``, ``fd00::/8``), which ``urllib.request.proxy_bypass`` ignores.
    A ``:port`` after an entry is ignored: this transport speaks to one origin.
    """
    host = host.strip("[]").lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if entry.startswith("[") and "]" in entry:  # [v6] or [v6]:port
            entry = entry[1 : entry.index("]")]
        elif entry.count(":") == 1:  # name:port or v4:port
            entry = entry.split(":", 1)[0]
        if "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if address is not None and address.version == network.version:
                if address in network:
                    return True
            continue
        if address is not None:
            try:
                if ipaddress.ip_address(entry) == address:
                    return True
            except ValueError:
                pass
            continue
        name = entry.removeprefix("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def environment_proxy(base_url: str) -> str | None:
    """The ``https_proxy``/``all_proxy`` for this origin, unless ``no_proxy`` skips it.

    Read once, when the transport is built, not on every call. Plain http (a
    loopback simulator) never goes through a proxy.
    """
    parts = urlsplit(base_url)
    if parts.scheme != "https":
        return None
    proxies = getproxies()
    if bypasses_proxy(parts.hostname or "", proxies.get("no", "")):
        return None
    return proxies.get("https") or proxies.get("all") or None


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
    """At the end of an answer: the connection's idle clock starts, and if bytes
    nobody asked for were left in the buffer, the connection is not reused."""

    raw: _DeadlineReader

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
    """``http.client``'s parser, reading through the deadline, with strict chunk sizes."""

    def __init__(
        self, sock: Any, debuglevel: int = 0, method: str | None = None, url: str | None = None
    ) -> None:
        exchange = current_exchange()
        if exchange is not None:
            sock = _SocketView(sock, exchange)
        super().__init__(sock, debuglevel, method, url)

    def _read_next_chunk_size(self) -> int:
        """RFC 9112: ``1*HEXDIG``; ``int(x, 16)`` would take ``-``, ``+``, ``0x``, ``_``."""
        line = self.fp.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("chunk size")
        size = line.split(b";", 1)[0].strip(b" \t\r\n")
        if not _HEX_SIZE.fullmatch(size) or int(size, 16) > MAX_BODY:
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


def _socks() -> Any:
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
        _socks()
        manager.pool_classes_by_scheme = dict(_socks_pools)
    else:
        manager.pool_classes_by_scheme = dict(_POOLS)
    return manager


def pool_manager(
    proxy: str | None, *, pool_maxsize: int, ssl_context: ssl.SSLContext | None
) -> urllib3.PoolManager:
    """A pool manager for one origin: direct, through an HTTP(S) proxy, or SOCKS."""
    options: dict[str, Any] = {"num_pools": 2, "maxsize": pool_maxsize, "block": False}
    if ssl_context is not None:
        options["ssl_context"] = ssl_context
    if proxy is None:
        return use_exchange_pools(urllib3.PoolManager(**options))
    parts = urlsplit(proxy)
    if not parts.hostname:
        raise ValueError("the proxy must be a URL with a host")
    if parts.scheme.startswith("socks"):
        socks = _socks()
        return use_exchange_pools(socks.SOCKSProxyManager(proxy, **options))
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported proxy scheme {parts.scheme!r}")
    headers = {}
    if parts.username:
        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers = urllib3.make_headers(proxy_basic_auth=login)
    netloc = parts.netloc.rsplit("@", 1)[-1]  # the login goes in a header, not the URL
    return use_exchange_pools(
        urllib3.ProxyManager(f"{parts.scheme}://{netloc}", proxy_headers=headers, **options)
    )


# ---------------------------------------------------------------- the answer
def read_answer(response: Any, body_cap: int) -> RawResponse:
    """Check the head and read the whole body of a urllib3 response.

    urllib3 puts the connection back in the pool once ``http.client`` has read the
    answer whole; on any refusal or error here the connection is closed instead.
    """
    try:
        status = response.status
        if not 200 <= status <= 599:
            raise Refused(f"status {status}")
        headers = {name.lower(): value for name, value in response.headers.itermerged()}
        coding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if coding is not None:
            if coding.strip().lower() != "chunked":
                raise Refused(f"transfer-encoding {coding!r}")
            if length is not None:
                raise Refused("both content-length and transfer-encoding")
        elif length is not None:
            if not (length.isascii() and length.isdigit()):
                raise Refused("malformed content-length")
            if int(length) > body_cap:
                raise Refused("answer larger than the body cap")
        content_coding = headers.get("content-encoding", "identity").strip().lower()
        if content_coding != "identity":
            raise Refused(f"content-encoding {content_coding!r} (none was asked for)")
        parts = []
        total = 0
        while chunk := response.read(65_536, decode_content=False):
            total += len(chunk)
            if total > body_cap:
                raise Refused("answer larger than the body cap")
            parts.append(chunk)
        response.release_conn()
        return RawResponse(status, headers, b"".join(parts))
    except BaseException:
        response.close()  # the connection too: it is never reused
        raise


def failure(exc: BaseException, exchange: Exchange, label: str) -> TransportError:
    """The ``TransportError`` for ``exc``: ``maybe_sent`` from the step the call reached."""
    chain = _chain(exc)
    refused = next((e for e in chain if isinstance(e, Refused)), None)
    if exchange.expired:
        kind = "DeadlineExceeded"
    elif any(_is_timeout(e) for e in chain):
        kind = "ReadTimeout" if exchange.sending else "ConnectTimeout"
    elif refused is not None:
        kind = f"Refused ({refused})"  # our own words, never the server's bytes
    else:
        kind = "/".join(type(e).__name__ for e in chain)
    return TransportError(f"{label} failed: {kind}", maybe_sent=exchange.sending)


def _is_timeout(exc: BaseException) -> bool:
    # urllib3's NewConnectionError subclasses ConnectTimeoutError for old callers' sake.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return False
    return isinstance(exc, TimeoutError | ConnectTimeoutError | urllib3.exceptions.ReadTimeoutError)


def _chain(exc: BaseException) -> list[BaseException]:
    chain = [exc]
    while len(chain) < 4:
        cause = chain[-1].__cause__ or chain[-1].__context__
        if cause is None:
            reason = getattr(chain[-1], "reason", None)  # urllib3's MaxRetryError
            cause = reason if isinstance(reason, BaseException) else None
        if cause is None or cause in chain:
            break
        chain.append(cause)
    return chain


def check_request(method: str, target: str, headers: Mapping[str, str]) -> None:
    """Refuse, before anything is sent, what would not go on the wire as signed."""
    given = f"{method}{target}{''.join(headers)}{''.join(headers.values())}"
    if "\r" in given or "\n" in given or "\0" in given:
        raise ValueError("a request line or header holds a line break")
    if not target.startswith("/") or not target.isascii() or " " in target:
        raise ValueError("the request target must be an encoded path")


def label(method: str, target: str) -> str:
    """``METHOD /path`` for messages: never the query string."""
    return f"{method} {target.split('?', 1)[0]}"


# ------------------------------------------------------------------ transport
class Urllib3Transport:
    """Keep-alive HTTP/1.1 to one origin over urllib3, shared by every thread."""

    def __init__(
        self,
        base_url: str,
        *,
        proxy: str | None = None,
        timeout: Timeout = (3.05, 10),
        ca_bundle: str | None = None,
        pool_maxsize: int = 32,
        idle_seconds: float = IDLE_SECONDS,
        body_cap: int = MAX_BODY,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("base_url must be an https:// URL")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        connect, read = split_timeout(timeout)
        self._urllib3_timeout = urllib3.Timeout(connect=connect, read=read)
        self.idle_seconds = idle_seconds
        self.body_cap = body_cap
        self.proxy = proxy
        self.pool_maxsize = max(1, int(pool_maxsize))
        self._context = tls_context(ca_bundle) if parts.scheme == "https" else None
        self.connections_opened = 0
        self._lock = threading.Lock()
        self._pool, self._generation = self._new_pool(), process_generation()

    def __repr__(self) -> str:
        return f"<Urllib3Transport {self.base_url}>"

    def _new_pool(self) -> HTTPConnectionPool:
        manager = pool_manager(
            self.proxy, pool_maxsize=self.pool_maxsize, ssl_context=self._context
        )
        return manager.connection_from_url(self.base_url)

    def _current_pool(self) -> HTTPConnectionPool:
        if self._generation != process_generation():
            # A child after fork(): the parent's connections (and perhaps a lock some
            # other thread held) are left alone; this process opens its own.
            with self._lock:
                if self._generation != process_generation():
                    self._pool, self._generation = self._new_pool(), process_generation()
        return self._pool

    def close(self) -> None:
        with self._lock:
            old, self._pool = self._pool, self._new_pool()
        old.close()  # idle ones now; those in flight when they come back

    def send(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> RawResponse:
        check_request(method, target, headers)
        pool = self._current_pool()
        exchange = Exchange(self.timeout, idle_seconds=self.idle_seconds, body_cap=self.body_cap)
        with ExchangeScope(exchange):
            try:
                response = pool.urlopen(
                    method,
                    target,
                    body=body if body or method in ("POST", "PUT", "PATCH") else None,
                    headers=dict(headers),
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    timeout=self._urllib3_timeout,
                    preload_content=False,
                    decode_content=False,
                    release_conn=False,
                )
                return read_answer(response, self.body_cap)
            except Exception as exc:
                # Anything, urllib3's errors, http.client's, a parser's ValueError or
                # OverflowError: the outcome of the call is unknown unless it failed
                # before the request's first byte, and the caller must be told so.
                raise failure(exc, exchange, label(method, target)) from None
            finally:
                if exchange.connected:
                    self.connections_opened += 1
