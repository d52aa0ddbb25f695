"""HTTP-neutral request/answer types passed between the server and the two surfaces.

Why: the WeChat Pay API and the control surface decide *what* to answer (including
"answer nothing" and "reset the connection"); only the server knows *how* to do that
on a socket. These two types are the boundary, which keeps both sides testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

REPLY, DROP, RESET = "reply", "drop", "reset"


class Headers(Protocol):
    """Request headers as the surfaces read them: by name, one value, None when absent.

    Why not ``Mapping``: http.server hands over an ``email.message.Message``, whose lookup
    ignores the name's case as HTTP requires, but which is not a ``Mapping``; a plain
    dict fits too.
    """

    def get(self, name: str, /) -> str | None: ...


@dataclass(frozen=True)
class Incoming:
    """A request as received: ``target`` is the raw path?query of the request line."""

    method: str
    target: str
    headers: Headers
    body: bytes
    client: str
    scheme: str = "http"  # how it arrived: "https" when the server speaks TLS


@dataclass
class Outgoing:
    """What to do with the connection: reply (status, headers, body), drop, or reset."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str = REPLY
