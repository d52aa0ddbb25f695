"""Typed errors of the WeChat Pay client, and the one table of WeChat's error codes.

Why a table: money moves on these calls, so "what does this refusal mean, and may I
send the same request again?" must be answered in one place, closed by default. Each
code WeChat Pay documents for the return endpoints has one :class:`Meaning`:

============================  ======  ============  ===================================
code                          status  meaning       why
============================  ======  ============  ===================================
SYSTEM_ERROR                  500     retry_same    "请使用相同参数稍后重新调用"
SERVICE_UNAVAILABLE           502/3   retry_same    outcome unknown
FREQUENCY_LIMITED             429     rate_limited  not accepted; back off
RATELIMIT_EXCEED(ED)          429     rate_limited  older spellings of the same
SIGN_ERROR                    401     credentials   our signature or key was refused
PARAM_ERROR                   400     refused       fix the parameters
INVALID_REQUEST               400     refused       business rule (e.g. 剩余可回退的金额不足)
NO_AUTH                       403     refused       receiver has not enabled returns
NOT_ENOUGH                    403     refused       amount exceeds what is left
RESOURCE_NOT_EXISTS           404     not_found     no such return (query)
ORDER_NOT_EXIST               404     not_found     no such sharing order
============================  ======  ============  ===================================

One answer is told apart by its message, not its code: "可用余额不足，请充值后重新发起"
(the receiver's available balance is short) means WeChat keeps the return PROCESSING,
holding its amount, and the *identical* request succeeds after the receiver tops up
("原单重试"): :data:`MESSAGE_MEANINGS` reads it as ``balance_short``, whatever code
carries it.

A code not in the table is read from its status: 429 rate_limited, 5xx retry_same,
401 credentials, 404 not_found, any other 4xx refused. ``retryable`` (may the same
request go again?) follows from the meaning. A 2xx whose signature does not verify
raises :class:`SignatureError`, retryable too: WeChat may have acted, so the caller
queries or re-sends the same request. To add a code: one row in :data:`CODE_MEANINGS`
and one test. No other module lists codes.

Messages never contain key material or the Authorization header.
"""

from __future__ import annotations

import enum
from typing import Any


class Meaning(enum.StrEnum):
    """What an error answer means for the request that got it."""

    #: Not executed, or the outcome is unknown: the identical request may go again.
    RETRY_SAME = "retry_same"
    #: Not accepted because we called too often: back off, then the identical request.
    RATE_LIMITED = "rate_limited"
    #: Our credentials (signature, serial, key) were refused: not the request's fault.
    CREDENTIALS = "credentials"
    #: A final refusal of this request: sending it again gives the same answer.
    REFUSED = "refused"
    #: WeChat Pay has no such resource (a return never received, an unknown order).
    NOT_FOUND = "not_found"
    #: The receiver's balance is short: WeChat holds the return; re-send it identically.
    BALANCE_SHORT = "balance_short"


#: The one table of WeChat Pay's error codes for these endpoints.
CODE_MEANINGS: dict[str, Meaning] = {
    "SYSTEM_ERROR": Meaning.RETRY_SAME,
    "SERVICE_UNAVAILABLE": Meaning.RETRY_SAME,
    "FREQUENCY_LIMITED": Meaning.RATE_LIMITED,
    "RATELIMIT_EXCEED": Meaning.RATE_LIMITED,
    "RATELIMIT_EXCEEDED": Meaning.RATE_LIMITED,
    "SIGN_ERROR": Meaning.CREDENTIALS,
    "PARAM_ERROR": Meaning.REFUSED,
    "INVALID_REQUEST": Meaning.REFUSED,
    "NO_AUTH": Meaning.REFUSED,
    "NOT_ENOUGH": Meaning.REFUSED,
    "RESOURCE_NOT_EXISTS": Meaning.NOT_FOUND,
    "ORDER_NOT_EXIST": Meaning.NOT_FOUND,
}
#: Messages that mean more than their code: a substring of WeChat's message -> meaning.
MESSAGE_MEANINGS: dict[str, Meaning] = {
    "可用余额不足": Meaning.BALANCE_SHORT,
}
#: Meanings under which the identical request may be sent again.
RETRYABLE_MEANINGS = frozenset({Meaning.RETRY_SAME, Meaning.RATE_LIMITED, Meaning.BALANCE_SHORT})


def meaning_of(status: int, code: str, message: str = "") -> Meaning:
    """The meaning of an error answer: the message table, the code table, the status."""
    for fragment, meaning in MESSAGE_MEANINGS.items():
        if fragment in message and not 200 <= status < 300 and status < 500:
            return meaning
    if code in CODE_MEANINGS:
        return CODE_MEANINGS[code]
    if status == 429:
        return Meaning.RATE_LIMITED
    if status >= 500:
        return Meaning.RETRY_SAME
    if status == 401:
        return Meaning.CREDENTIALS
    if status == 404:
        return Meaning.NOT_FOUND
    return Meaning.REFUSED


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
    def meaning(self) -> Meaning:
        """What this answer means (:data:`CODE_MEANINGS`, else the status)."""
        return meaning_of(self.status, self.code, self.message)

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
