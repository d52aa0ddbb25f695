"""HTTP for the client: urllib3's keep-alive pools, held to a deadline and a size cap.

Why urllib3 and not a stack of our own: a review of the hand-written HTTP/1.1 reader
found four real defects in 450 lines (signed chunk sizes lifting the body cap, a
per-``recv`` timeout a trickling server could stretch without end, an unbracketed
IPv6 ``CONNECT``, status ``2000`` read as 200). urllib3 is maintained, comes with
``requests`` and costs about 0.5 ms more CPU per call. What it does not decide for
us is decided once, for both transports (``connections.py`` holds the connection
classes both mount; ``proxies.py`` picks the proxy):

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
* **Files.** A bill is far larger than an answer: :meth:`Urllib3Transport.stream`
  writes a 2xx answer's body to a :class:`Download`'s sink as it arrives, under that
  download's own cap and read deadline (an error answer is still read into memory
  under the body cap, for its code). :func:`exchange` falls back to ``send`` for a
  transport without ``stream`` (a test double): its body is in memory already.
* **Pool hygiene.** A connection idle longer than ``idle_seconds`` (WeChat Pay
  closes them at about 8 s), closed by the server, holding bytes nobody asked for,
  or inherited through ``fork()`` is never reused; a request in flight on another
  thread is never touched. No redirects are followed and no cookies kept.
"""

from __future__ import annotations

import abc
import ssl
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

import urllib3
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import ConnectTimeoutError

from .answer_reading import Refused
from .connections import process_generation
from .errors import TransportError
from .exchange import IDLE_SECONDS, MAX_BODY, Exchange, ExchangeScope, Timeout, split_timeout
from .proxies import environment_proxy, pool_manager

__all__ = [
    "IDLE_SECONDS",
    "MAX_BODY",
    "Download",
    "Headers",
    "RawResponse",
    "Transport",
    "Urllib3Transport",
    "call_deadline",
    "environment_proxy",
    "exchange",
    "split_timeout",
    "tls_context",
]

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


class Sink(Protocol):
    """Where a streamed body goes (a file, or a bill's checking writer)."""

    def write(self, data: bytes, /) -> int: ...


class Download(NamedTuple):
    """A 2xx body written to ``sink`` instead of memory: at most ``body_cap`` bytes,
    the exchange after connecting bounded by ``read_seconds`` as a whole."""

    sink: Sink
    body_cap: int
    read_seconds: float


class StreamingTransport(abc.ABC):
    """A socket transport: ``send`` is ``stream`` with no download (one code path)."""

    def send(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> RawResponse:
        return self.stream(method, target, headers, body, None)

    @abc.abstractmethod
    def stream(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        download: Download | None,
    ) -> RawResponse:
        """``send``, with a 2xx body written to ``download``'s sink (see :class:`Download`)."""


def exchange_limits(
    timeout: Timeout, body_cap: int, download: Download | None
) -> tuple[tuple[float, float], int]:
    """``(connect, read)`` seconds and the body cap of one exchange: a download's own."""
    connect, read = split_timeout(timeout)
    if download is None:
        return (connect, read), body_cap
    return (connect, download.read_seconds), max(body_cap, download.body_cap)


def exchange(
    transport: Transport,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    download: Download | None = None,
) -> RawResponse:
    """One exchange; with ``download``, a 2xx body goes to its sink (returned empty).

    A transport with a ``stream`` method streams; another (a test double, a shop's
    own) answers with the body in memory, which is written to the sink under the cap.
    """
    if download is None:
        return transport.send(method, target, headers, body)
    stream = getattr(transport, "stream", None)
    if stream is not None:
        response: RawResponse = stream(method, target, headers, body, download)
        return response
    response = transport.send(method, target, headers, body)
    if 200 <= response.status < 300:
        if len(response.body) > download.body_cap:
            what = label(method, target)
            raise TransportError(
                f"{what} failed: Refused (answer larger than the body cap)", maybe_sent=True
            )
        download.sink.write(response.body)
        response = response._replace(body=b"")
    return response


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


# ---------------------------------------------------------------- the answer
def read_answer(response: Any, body_cap: int, download: Download | None = None) -> RawResponse:
    """Check the head and read the whole body of a urllib3 response.

    With ``download``, a 2xx body goes to its sink under its cap (returned empty).
    urllib3 puts the connection back in the pool once ``http.client`` has read the
    answer whole; on any refusal or error here the connection is closed instead.
    """
    try:
        status = response.status
        if not 200 <= status <= 599:
            raise Refused(f"status {status}")
        sink = download.sink if download is not None and 200 <= status < 300 else None
        if sink is not None and download is not None:
            body_cap = download.body_cap
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
            if sink is None:
                parts.append(chunk)
            else:
                sink.write(chunk)
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
class Urllib3Transport(StreamingTransport):
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
        split_timeout(timeout)  # a malformed TIMEOUT fails here, not on the first call
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

    def stream(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        download: Download | None,
    ) -> RawResponse:
        check_request(method, target, headers)
        pool = self._current_pool()
        (connect, read), cap = exchange_limits(self.timeout, self.body_cap, download)
        exchange = Exchange((connect, read), idle_seconds=self.idle_seconds, body_cap=cap)
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
                    timeout=urllib3.Timeout(connect=connect, read=read),
                    preload_content=False,
                    decode_content=False,
                    release_conn=False,
                )
                return read_answer(response, self.body_cap, download)
            except Exception as exc:
                # Anything, urllib3's errors, http.client's, a parser's ValueError or
                # OverflowError: the outcome of the call is unknown unless it failed
                # before the request's first byte, and the caller must be told so.
                raise failure(exc, exchange, label(method, target)) from None
            finally:
                if exchange.connected:
                    self.connections_opened += 1
