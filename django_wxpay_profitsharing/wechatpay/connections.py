"""urllib3's connections, held to one call's deadline: the rules both transports share.

Why a module of its own: the deadline, the step a call reached, strict chunk sizes
and the pool's hygiene live in the connection classes urllib3 builds, so that
``transport.py`` (urllib3 directly) and ``requests_transport.py`` (urllib3 under
``requests``) mount the same classes and obey the same rules.

How a deadline reaches a connection: the transport makes an :class:`Exchange`
(``exchange.py``) the current one on its thread (:class:`ExchangeScope`) for the length
of the call; urllib3 connects, sends and reads on that same thread, and every step asks
the exchange how much time is left. ``connect`` (TCP, proxy tunnel, TLS handshake) is
cut by a timer at the connect deadline; ``request`` marks the first byte as possibly
sent and starts the read deadline; the answer is read through ``answer_reading.py``,
every read bounded by the time left and the exchange's byte limit.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import time
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError

from .answer_reading import Answer
from .exchange import IDLE_SECONDS, current_exchange

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

    response_class: type[http.client.HTTPResponse] = Answer
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
