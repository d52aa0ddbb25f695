"""Typed errors of the WeChat Pay client, and the one table that decides retries.

Why a table: money moves on these calls, so "may I send the same request again?" must
be answered in one place, closed by default. A code is *retryable* only when WeChat
documents that the request was not executed or its outcome is unknown and the same
``out_return_no`` with the same body is the documented remedy:

============================  ======  =========  =================================
code                          status  retryable  why
============================  ======  =========  =================================
SYSTEM_ERROR                  500     yes        "请使用相同参数稍后重新调用"
SERVICE_UNAVAILABLE           502/3   yes        outcome unknown
FREQUENCY_LIMITED             429     yes        not accepted; back off
RATELIMIT_EXCEED(ED)          429     yes        older spelling of the same
PARAM_ERROR                   400     no         fix the parameters
INVALID_REQUEST               400     no         business rule (e.g. 剩余可回退的金额不足)
SIGN_ERROR                    401     no         fix the signing
NO_AUTH                       403     no         receiver has not enabled returns
NOT_ENOUGH                    403     no         amount exceeds what is left
RESOURCE_NOT_EXISTS           404     no         no such return (query)
============================  ======  =========  =================================

Any other 5xx is retryable, any other 4xx is not. A 2xx whose signature does not
verify raises :class:`SignatureError`, which is retryable too: WeChat may have acted,
so the caller queries or re-sends the same request. To add a case: one row in
``_RETRYABLE_CODES`` or ``_FINAL_CODES`` and one test.

Messages never contain key material or the Authorization header.
"""

from __future__ import annotations

from typing import Any

RATE_LIMIT_CODES = frozenset({"FREQUENCY_LIMITED", "RATELIMIT_EXCEED", "RATELIMIT_EXCEEDED"})
_RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "SERVICE_UNAVAILABLE"}) | RATE_LIMIT_CODES
_FINAL_CODES = frozenset(
    {
        "PARAM_ERROR",
        "INVALID_REQUEST",
        "SIGN_ERROR",
        "NO_AUTH",
        "NOT_ENOUGH",
        "RESOURCE_NOT_EXISTS",
        "ORDER_NOT_EXIST",
    }
)


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
    ) -> None:
        super().__init__(f"HTTP {status} {code or '-'}: {message or '(no message)'}")
        self.status = status
        self.http_status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.request_id = request_id

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        if self.code in _RETRYABLE_CODES:
            return True
        if self.code in _FINAL_CODES:
            return False
        return self.status == 429 or self.status >= 500

    @property
    def rate_limited(self) -> bool:
        return self.code in RATE_LIMIT_CODES or self.status == 429


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
