"""Typed errors of the WeChat Pay client.

What an error *answer* means (retry the same request, a final refusal, our
credentials, not found, a short balance, the refund spacing...) is decided by one
table, per endpoint: ``error_table.py`` (its rows are also the documentation,
``docs/errors.md``). :class:`APIError` carries the endpoint it came from, so
:attr:`APIError.meaning` reads ``NOT_ENOUGH`` on a refund differently from
``NOT_ENOUGH`` on a return. ``retryable`` (may the same request go again?) follows
from the meaning. A 2xx whose signature does not verify raises
:class:`SignatureError`, retryable too: WeChat may have acted, so the caller queries
or re-sends the same request. No other module lists error codes.

Messages never contain key material or the Authorization header.
"""

from __future__ import annotations

import json
from typing import Any

from .error_table import (
    RETRYABLE_MEANINGS,
    Endpoint,
    ErrorRow,
    Meaning,
    MessageRow,
    meaning_of,
    refinement_for,
    row_for,
)

__all__ = [
    "RETRYABLE_MEANINGS",
    "APIError",
    "BillError",
    "BillFormatError",
    "BillHashMismatch",
    "BillURLRefused",
    "Endpoint",
    "InvalidRequest",
    "Meaning",
    "SignatureError",
    "TransportError",
    "WeChatPayError",
    "meaning_of",
]


class WeChatPayError(Exception):
    """Base class of every error this client raises."""

    retryable: bool = False


class InvalidRequest(WeChatPayError, ValueError):
    """Refused locally, before anything was sent. ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class APIError(WeChatPayError):
    """WeChat Pay answered with a non-2xx status and (usually) a JSON error body."""

    def __init__(
        self,
        status: int,
        code: str = "",
        message: str = "",
        detail: Any = None,
        request_id: str = "",
        endpoint: Endpoint | None = None,
    ) -> None:
        super().__init__(f"HTTP {status} {code or '-'}: {message or '(no message)'}")
        self.status = status
        self.http_status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.request_id = request_id
        #: The call that got this answer (None: read with the common rows only).
        self.endpoint = endpoint

    @classmethod
    def from_answer(
        cls, status: int, raw: bytes, request_id: str, endpoint: Endpoint | None = None
    ) -> APIError:
        """The error of a non-2xx answer: its JSON ``code``/``message``/``detail`` if any."""
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return cls(
            status,
            code=str(data.get("code", "")),
            message=str(data.get("message", "")),
            detail=data.get("detail"),
            request_id=request_id,
            endpoint=endpoint,
        )

    @property
    def meaning(self) -> Meaning:
        """What this answer means on its endpoint (``error_table.py``, else the status)."""
        return meaning_of(self.status, self.code, self.message, self.endpoint)

    @property
    def row(self) -> ErrorRow | MessageRow | None:
        """The table row that gave :attr:`meaning` (None: read from the status)."""
        refinement = refinement_for(self.endpoint, self.code, self.message)
        return refinement or row_for(self.endpoint, self.code)

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.meaning in RETRYABLE_MEANINGS

    @property
    def rate_limited(self) -> bool:
        return self.meaning is Meaning.RATE_LIMITED


class TransportError(WeChatPayError):
    """No usable answer: timeout, reset, refused connection, DNS, TLS.

    ``maybe_sent`` is False only when it is certain WeChat Pay never received the
    request (connect failed); otherwise the outcome is unknown and the caller must
    query, or re-send the identical request, before giving up.
    """

    retryable = True

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class SignatureError(WeChatPayError):
    """A 2xx response that failed verification; its content was not used."""

    retryable = True

    def __init__(self, message: str, *, request_id: str = "") -> None:
        super().__init__(message)
        self.request_id = request_id


# ----------------------------------------------------------------- the daily bill
class BillError(WeChatPayError):
    """The profit-sharing bill could not be had or trusted; nothing of it was used."""


class BillHashMismatch(BillError):
    """The downloaded bill's SHA1 is not the ``hash_value`` WeChat Pay announced.

    Retryable: apply for the bill again (a new download URL) and download it again.
    """

    retryable = True

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"bill SHA1 {actual} is not the announced {expected}")
        self.expected = expected
        self.actual = actual


class BillFormatError(BillError):
    """The bill is not in the layout the parser knows: ``missing`` names absent headers."""

    def __init__(self, message: str, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing


class BillURLRefused(InvalidRequest):
    """A download URL that is not on the configured base URL's host: nothing was sent."""
