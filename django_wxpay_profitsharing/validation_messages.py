"""The client's validation messages, translated for forms, serializers and the admin.

Why here: ``wechatpay/`` has no Django import, so it cannot mark strings for
``gettext``; it names its messages as constants (``validation.MESSAGES``) and this
table gives each one its lazily translated form. A test keeps the two in step.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .wechatpay import validation as v

TRANSLATED: dict[str, Promise] = {
    v.NOT_TEXT: _("must be a string"),
    v.NOT_UTF8: _("must be valid UTF-8 text"),
    v.BAD_OUT_NO: _("must be 1-64 characters of digits, letters and _ - | * @ only"),
    v.BAD_ORDER_ID: _("must be 1-64 digits or letters"),
    v.BAD_MCHID: _("must be a merchant id of 1-32 digits"),
    v.BAD_TRANSACTION_ID: _("must be 1-32 digits or letters"),
    v.NOT_FEN: _("must be an integer number of fen"),
    v.TOO_LITTLE: _("must be at least 1 fen"),
    v.TOO_MUCH: _("must be at most 9223372036854775807 fen"),
    v.BLANK: _("must not be blank"),
    v.TOO_LONG: _("must be at most 80 characters"),
    v.CONTROL_CHARACTERS: _("must not contain control characters"),
    v.INVISIBLE_CHARACTERS: _("must not contain invisible format or line separator characters"),
    v.ONE_ORDER_REFERENCE: _("give exactly one of order_id and out_order_no"),
    v.UNKNOWN_FIELD: _("is not a field of a return request"),
}


def translated(message: str) -> str | Promise:
    """The message in the active language (unknown messages pass through unchanged)."""
    return TRANSLATED.get(message, message)
