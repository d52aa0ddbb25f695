"""Reading one HTTP/1.1 answer off a socket (RFC 9112), for ``transport.py``.

Why its own reader instead of ``sock.makefile()``: a buffered file object over a
socket adds three layers of Python calls to every receive; here one ``recv`` of up
to 64 KiB usually brings the whole answer (a WeChat Pay answer is about 1 KB), and
what follows it stays in the buffer for the next answer on the connection.

Strict where it is cheap: lines end in CRLF, header names are RFC 9110 tokens,
``Content-Length`` is one number, and every size is bounded (head, header count,
body), so a misbehaving server cannot make the client hold unbounded memory. Any
breach raises :class:`IncompleteAnswer`, which the transport reports as a call
whose outcome is unknown.
"""

from __future__ import annotations

import re
import socket
from typing import NamedTuple

MAX_HEAD = 65_536
MAX_HEADERS = 100
MAX_BODY = 8 * 1024 * 1024
RECEIVE_SIZE = 65_536
#: Header names: RFC 9110 tokens, checked all at once joined by colons (a name cannot
#: hold one: each line is split at its first), so that no name may be empty.
_NAMES = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?::[!#$%&'*+.^_`|~0-9A-Za-z-]+)*")


class IncompleteAnswer(ValueError):
    """The server closed, or broke HTTP/1.1 framing, before a whole answer arrived."""


#: Response headers: lower-cased names (RFC 9110: names are case-insensitive), values
#: without surrounding blanks, repeated fields joined with ", ". A plain dict, looked
#: up with lower-case names: the transport's hot path has no method of its own here.
Headers = dict[str, str]


class RawResponse(NamedTuple):
    """A whole answer: the body is read completely before anything looks at it."""

    status: int
    headers: Headers  # lower-case names
    body: bytes


class AnswerReader:
    """The bytes received on one connection and not yet consumed."""

    __slots__ = ("buffer", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _receive(self) -> bool:
        data = self.sock.recv(RECEIVE_SIZE)
        self.buffer += data
        return bool(data)

    def pending(self) -> bool:
        """Received bytes nobody asked for (a well-behaved server sends none)."""
        return bool(self.buffer)

    def until(self, marker: bytes, limit: int) -> bytes:
        """Everything up to ``marker`` (consumed, marker included), at most ``limit``."""
        while (end := self.buffer.find(marker)) < 0:
            if len(self.buffer) > limit:
                raise IncompleteAnswer("answer head too long")
            if not self._receive():
                raise IncompleteAnswer("connection closed before the whole answer")
        end += len(marker)
        taken, self.buffer = self.buffer[:end], self.buffer[end:]
        return taken

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._receive():
                raise IncompleteAnswer("connection closed inside the body")
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    def to_end(self, limit: int) -> bytes:
        while self._receive():
            if len(self.buffer) > limit:
                raise IncompleteAnswer("answer body too large")
        taken, self.buffer = self.buffer, b""
        return taken


def read_head(reader: AnswerReader) -> tuple[int, Headers, str]:
    """Status, headers and HTTP version of one answer (1xx interim answers skipped).

    Split, not matched with a regular expression: a regex walks every byte of the
    head (the 344-character signature included) in Python's matcher, which was most
    of the client's own work per call. The checks stay strict: every line ends in
    CRLF with no stray CR or LF, and every name is a token followed by a colon.
    """
    while True:
        lines = reader.until(b"\r\n\r\n", MAX_HEAD).decode("latin-1").split("\r\n")
        joined = "".join(lines)
        if "\r" in joined or "\n" in joined:  # memchr over a copy: cheaper than counting
            raise IncompleteAnswer("malformed header line")  # a bare CR or LF
        del lines[-2:]  # the blank line's two empty strings
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise IncompleteAnswer("not an HTTP/1.x answer")
        try:
            status = int(rest[:3])
        except ValueError:
            raise IncompleteAnswer("malformed status line") from None
        if len(lines) > MAX_HEADERS + 1:
            raise IncompleteAnswer("too many headers")
        try:
            pairs = [line.split(":", 1) for line in lines[1:]]
            fields = {name.lower(): value.strip(" \t") for name, value in pairs}
        except ValueError:  # a line without a colon
            raise IncompleteAnswer("malformed header line") from None
        if fields and not _NAMES.fullmatch(":".join(fields)):
            raise IncompleteAnswer("malformed header line")
        if len(fields) != len(pairs):  # a repeated field: its values joined in order
            fields = {}
            for name, value in pairs:
                key, value = name.lower(), value.strip(" \t")
                fields[key] = f"{fields[key]}, {value}" if key in fields else value
        if not 100 <= status < 200:
            return status, fields, version


def _read_chunked(reader: AnswerReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = reader.until(b"\r\n", MAX_HEAD)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise IncompleteAnswer("malformed chunk size") from None
        if size == 0:
            while reader.until(b"\r\n", MAX_HEAD) != b"\r\n":  # trailer fields
                pass
            return b"".join(parts)
        total += size
        if total > MAX_BODY:
            raise IncompleteAnswer("answer body too large")
        parts.append(reader.exactly(size))
        if reader.exactly(2) != b"\r\n":
            raise IncompleteAnswer("malformed chunk end")


def read_response(reader: AnswerReader, method: str) -> tuple[RawResponse, bool]:
    """One whole answer, and whether the connection may carry another (RFC 9112 §6.3)."""
    status, headers, version = read_head(reader)
    reusable = version != "HTTP/1.0" and "close" not in headers.get("connection", "").lower()
    encoding = headers.get("transfer-encoding", "").lower()
    length = headers.get("content-length")
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif encoding:
        if encoding.rsplit(",", 1)[-1].strip() != "chunked":
            raise IncompleteAnswer(f"unsupported transfer-encoding {encoding!r}")
        body = _read_chunked(reader)
    elif length is not None:
        if not length.isdigit():
            raise IncompleteAnswer("malformed content-length")
        if int(length) > MAX_BODY:
            raise IncompleteAnswer("answer body too large")
        body = reader.exactly(int(length))
    else:  # framed by the connection's end
        body = reader.to_end(MAX_BODY)
        reusable = False
    return RawResponse(status, headers, body), reusable
