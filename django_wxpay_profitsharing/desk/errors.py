"""The desk's typed refusals: what a door turns into a 4xx, a form error or a message.

Why typed: an operation refused for a reason the caller must act on is an exception
with what the caller needs (the field, the words, the row), not a status code chosen
at each door. A door maps each class once: the API to a status (``api/desk_errors.py``),
the admin to a form error or a message. Field errors are Django's
``ValidationError`` (with ``ReturnConflict``/``ClawbackConflict`` for a number used with
other fields); the classes here are the rest.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from ..answers import AnswerMismatch
from ..models.returns import ProfitSharingReturn
from ..refund_jobs import UNKNOWN_PAYMENT
from ..refund_models import RefundJob
from ..validation_messages import translated
from ..wechatpay import errors
from ..wechatpay.errors import Meaning

NOT_WAITING = _("this return is not waiting for its receiver to top up")
UNKNOWN_ORDER = _("WeChat Pay knows no sharing order with this out_order_no and transaction_id")
REFUSED_ORDER = _("WeChat Pay refused to show this sharing order ({code}): {message}")
ANSWER_MISMATCH = _(
    "WeChat Pay's answer about the sharing order does not match what was asked ({fields}); "
    "nothing was written. Try again later."
)
UNAVAILABLE = _(
    "WeChat Pay could not be asked about the sharing order just now; nothing was "
    "created. Try again later."
)


class Forbidden(PermissionDenied):
    """The acting user may not do this (a permission, the four-eyes rule)."""


class WrongState(Exception):
    """The row is not in a state for this operation (a retry of one not waiting, ...)."""

    def __init__(
        self, row: ProfitSharingReturn | RefundJob, code: str, message: str | Promise
    ) -> None:
        super().__init__(str(message))
        self.row = row
        self.code = code
        self.message = message


class SyncFailed(Exception):
    """WeChat Pay could not tell the sharing order: ``field`` names the caller's input at
    fault (``None``: nobody's fault, try again later); nothing was written."""

    def __init__(self, field: str | None, message: str | Promise) -> None:
        super().__init__(str(message))
        self.field = field
        self.message = message


PAYMENT_UNAVAILABLE = _(
    "WeChat Pay could not be asked about the payment just now; nothing was changed. "
    "Try again later."
)


def payment_failed(exc: errors.WeChatPayError) -> SyncFailed:
    """What a failed question about a payment (or a refund) means to its caller."""
    if isinstance(exc, errors.InvalidRequest):
        return SyncFailed(exc.field, translated(exc.message))
    if isinstance(exc, errors.APIError) and exc.meaning is Meaning.NOT_FOUND:
        return SyncFailed("transaction_id", UNKNOWN_PAYMENT)
    return SyncFailed(None, PAYMENT_UNAVAILABLE)


def sync_failed(exc: errors.WeChatPayError | AnswerMismatch) -> SyncFailed:
    """What a failed 查询分账结果 means to its caller (never a secret, never a traceback).

    A malformed number is the caller's (its field); an unknown or refused order is the
    caller's input (``out_order_no``); a timeout, a 5xx, a rate limit, a signature or
    our credentials refused say nothing about the order.
    """
    if isinstance(exc, AnswerMismatch):
        return SyncFailed(None, format_lazy(ANSWER_MISMATCH, fields=", ".join(exc.fields)))
    if isinstance(exc, errors.InvalidRequest):
        return SyncFailed(exc.field, translated(exc.message))
    if isinstance(exc, errors.APIError) and exc.meaning is Meaning.NOT_FOUND:
        return SyncFailed("out_order_no", UNKNOWN_ORDER)
    if isinstance(exc, errors.APIError) and exc.meaning is Meaning.REFUSED:
        return SyncFailed(
            "out_order_no",
            format_lazy(REFUSED_ORDER, code=exc.code or exc.status, message=exc.message),
        )
    return SyncFailed(None, UNAVAILABLE)
