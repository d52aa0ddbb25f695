"""One call in progress on a thread: its deadline, how far it got, what it may receive.

Why a module of its own: the transports open an :class:`Exchange` for each call
(:class:`ExchangeScope`), and the connection classes (``connections.py``) and the answer
reader (``answer_reading.py``) ask it, on the same thread, how much time is left and how
many bytes may still arrive; neither needs the other to know the call.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connections import ExchangeConnection

#: WeChat Pay closes idle keep-alive connections after about 8 s; drop ours first.
IDLE_SECONDS = 7.0
#: A WeChat Pay answer is about 1 KB; a bigger body than this is refused.
MAX_BODY = 8 * 1024 * 1024
#: Bytes an exchange may receive beyond its body: heads, 1xx answers, chunk framing.
HEAD_ALLOWANCE = 1024 * 1024

Timeout = float | tuple[float, float]


def split_timeout(timeout: Timeout) -> tuple[float, float]:
    if isinstance(timeout, tuple | list):
        connect, read = timeout
        return float(connect), float(read)
    return float(timeout), float(timeout)


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
