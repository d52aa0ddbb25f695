"""HTTP/1.1 for the client: a small keep-alive connection pool over (TLS) sockets.

Why not ``requests`` by default: a signed call needs one RSA sign and one verify,
about 0.3 ms of CPU; ``requests`` + urllib3 + ``http.client`` added twice that again
on every call (request preparation, header dictionaries, the ``email`` header
parser), which is most of what a worker spends when it claws back thousands of
returns. What this client needs from HTTP is narrow: one origin, requests whose
body is already bytes with a ``Content-Length``, and JSON answers framed by
``Content-Length``, ``chunked`` or the connection's end. That subset fits here, and
owning it also gives exact answers to the questions the app cares about:

* ``maybe_sent`` comes from *where* a call failed, not from an exception's text:
  False only when the failure happened before the connection was open (DNS,
  refused, connect timeout, TLS handshake, a proxy refusing ``CONNECT``).
* Only idle connections are dropped: one idle longer than ``idle_seconds`` (WeChat
  Pay closes them at about 8 s) or one the server has closed is never reused, and
  a request in flight on another thread is never disturbed.
* No redirects are followed and no cookies are kept (neither is part of APIv3).

``RequestsTransport`` (``TRANSPORT = "requests"``) keeps ``requests`` for shops that
need what it offers beyond this (SOCKS proxies, custom adapters).
"""

from __future__ import annotations

import base64
import os
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

from .errors import TransportError
from .http11 import AnswerReader, Headers, RawResponse, read_head, read_response

__all__ = ["HTTP11Transport", "Headers", "RawResponse", "Transport", "environment_proxy"]

#: WeChat Pay closes idle keep-alive connections after about 8 s; drop ours first.
IDLE_SECONDS = 7.0

Timeout = float | tuple[float, float]


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


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Certificate and host checks always on; the CA bundle given, else certifi's."""
    if ca_bundle is None:
        try:
            import certifi

            ca_bundle = certifi.where()
        except ImportError:  # pragma: no cover - requests brings certifi
            ca_bundle = None
    context = ssl.create_default_context(cafile=ca_bundle)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def environment_proxy(base_url: str) -> str | None:
    """The ``https_proxy``/``all_proxy`` for this origin, unless ``no_proxy`` skips it.

    Read once, when the transport is built, not on every call.
    """
    parts = urlsplit(base_url)
    if parts.scheme != "https" or proxy_bypass(parts.hostname or ""):
        return None
    proxies = getproxies()
    return proxies.get("https") or proxies.get("all") or None


_process_generation = 0


def _forked() -> None:
    global _process_generation
    _process_generation += 1


if hasattr(os, "register_at_fork"):  # a child must not reuse its parent's connections
    os.register_at_fork(after_in_child=_forked)


class _Connection:
    __slots__ = ("generation", "idle_since", "poller", "reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = AnswerReader(sock)
        self.idle_since = time.monotonic()
        self.generation = _process_generation
        self.poller = None
        if hasattr(select, "poll"):  # no descriptor limit, unlike select()
            self.poller = select.poll()
            self.poller.register(sock, select.POLLIN)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:  # pragma: no cover - already gone
            pass

    def closed_by_peer(self) -> bool:
        """Readable while idle means the server closed it (or sent what we never asked)."""
        if self.reader.pending() or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return True
        if self.poller is not None:
            return bool(self.poller.poll(0))
        return bool(select.select([self.sock], [], [], 0)[0])  # pragma: no cover - Windows


class HTTP11Transport:
    """Keep-alive HTTP/1.1 to one origin, shared by every thread of a process."""

    def __init__(
        self,
        base_url: str,
        *,
        proxy: str | None = None,
        timeout: Timeout = (3.05, 10),
        ca_bundle: str | None = None,
        pool_maxsize: int = 32,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("base_url must be an https:// URL")
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = parts.scheme == "https"
        default_port = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if self.port == default_port else f"{host}:{self.port}"
        self.connect_timeout, self.read_timeout = split_timeout(timeout)
        self.context = tls_context(ca_bundle) if self.tls else None
        self.pool_maxsize = max(1, int(pool_maxsize))
        self.idle_seconds = idle_seconds
        self.proxy = urlsplit(proxy) if proxy else None
        if self.proxy is not None and not (self.proxy.scheme == "http" and self.proxy.hostname):
            raise ValueError(
                "the proxy must be an http:// URL (HTTPS goes through CONNECT); "
                "for other proxies use the requests transport"
            )
        self.connections_opened = 0
        self._idle: deque[_Connection] = deque()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<HTTP11Transport {self.base_url}>"

    # ------------------------------------------------------------------ the pool
    def _checkout(self) -> _Connection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()  # the most recently used one
            if conn.generation != _process_generation:
                # Inherited through fork: the parent still owns the TLS session.
                continue
            if time.monotonic() - conn.idle_since > self.idle_seconds or conn.closed_by_peer():
                conn.close()
                continue
            return conn

    def _checkin(self, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        with self._lock:
            if len(self._idle) < self.pool_maxsize:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, deque()
        for conn in idle:
            conn.close()

    # ---------------------------------------------------------------- connecting
    def _connect(self, label: str) -> _Connection:
        """Open (and for https, handshake) a connection; nothing has been sent yet."""
        try:
            if self.proxy is not None and self.tls:
                sock = self._tunnel(label)
            else:
                sock = socket.create_connection((self.host, self.port), self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock.settimeout(self.connect_timeout)
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.read_timeout)  # from here on, every wait is a read
        except TransportError:
            raise
        except (OSError, ValueError) as exc:
            kind = "ConnectTimeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise TransportError(f"{label} failed: {kind}", maybe_sent=False) from None
        self.connections_opened += 1
        return _Connection(sock)

    def _tunnel(self, label: str) -> socket.socket:
        proxy = self.proxy
        assert proxy is not None and proxy.hostname
        sock = socket.create_connection((proxy.hostname, proxy.port or 80), self.connect_timeout)
        lines = [f"CONNECT {self.host}:{self.port} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if proxy.username:
            secret = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
            lines.append(f"Proxy-Authorization: Basic {base64.b64encode(secret.encode()).decode()}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        reader = AnswerReader(sock)
        status, _headers, _version = read_head(reader)
        if not 200 <= status < 300 or reader.pending():
            sock.close()
            raise TransportError(f"{label} failed: proxy answered {status}", maybe_sent=False)
        return sock

    # ------------------------------------------------------------------ exchange
    def send(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> RawResponse:
        given = f"{method}{target}{''.join(headers)}{''.join(headers.values())}"
        if "\r" in given or "\n" in given or "\0" in given:  # memchr: no regex walk
            raise ValueError("a request line or header holds a line break")
        fields = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        if body or method in ("POST", "PUT", "PATCH"):
            fields += f"Content-Length: {len(body)}\r\n"
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host_header}\r\n{fields}\r\n"
        request = head.encode("utf-8") + body
        conn = self._checkout() or self._connect(_label(method, target))
        try:
            sent = conn.sock.send(request)  # TLS writes it whole; plain TCP may not
            if sent < len(request):
                conn.sock.sendall(request[sent:])
            response, reusable = read_response(conn.reader, method)
        except (OSError, ValueError) as exc:
            conn.close()
            kind = "ReadTimeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise TransportError(
                f"{_label(method, target)} failed: {kind}", maybe_sent=True
            ) from None
        except BaseException:
            conn.close()
            raise
        if reusable:
            self._checkin(conn)
        else:
            conn.close()
        return response


def _label(method: str, target: str) -> str:
    """``METHOD /path`` for messages: never the query string."""
    return f"{method} {target.split('?', 1)[0]}"
