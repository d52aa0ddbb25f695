"""Reading WeChat Pay's answer through ``http.client``, strictly and within the deadline.

Why: ``http.client`` reads heads, 1xx answers, chunks and trailers through one file;
here that file sets the socket's timeout to the call's time left before every read,
stops at the exchange's byte limit, refuses a head cut off mid-line, and the parser
accepts only a strict status line and strict chunk sizes. At the end of an answer the
connection's idle clock starts, and a connection with unasked-for bytes is not reused.
"""

from __future__ import annotations

import http.client
import io
import re
import socket
import time
from typing import Any

from .exchange import MAX_BODY, Exchange, current_exchange

_MAX_LINE = 65_536
_HEX_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
#: RFC 9112 status-line: three ASCII digits (``int()`` would read ``2_00`` as 200).
_STATUS_LINE = re.compile(rb"(HTTP/1\.[0-9]) ([0-9]{3})(?: ([^\r\n]*))?\r?\n")


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


class Answer(http.client.HTTPResponse):
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
