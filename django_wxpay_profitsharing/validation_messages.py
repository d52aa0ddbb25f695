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
    v.BAD_OUT_TRADE_NO: _("must be 1-32 characters of digits, letters and _ - | * @ only"),
    v.ONE_PAYMENT_REFERENCE: _("give exactly one of transaction_id and out_trade_no"),
    v.OVER_TOTAL: _("must not exceed the order total"),
    v.NOT_CNY: _("must be CNY"),
    v.NO_EMOJI: _("must not contain emoji or other characters beyond the Basic Multilingual Plane"),
    v.BAD_NOTIFY_URL: _(
        "must be an https:// URL of at most 256 characters without a query string "
        "(plain http only to a loopback address)"
    ),
    v.BAD_FROM_ACCOUNT: _("must be AVAILABLE or UNAVAILABLE"),
    v.FROM_REPEATED: _("must not name an account twice"),
    v.FROM_NOT_REFUND: _("must add up to the refund amount"),
    v.BAD_ABNORMAL_TYPE: _("must be USER_BANK_CARD or MERCHANT_BANK_CARD"),
    v.CARD_NEEDED: _(
        "a refund to the user's bank card needs bank_type, bank_account and real_name"
    ),
    v.CARD_REFUSED: _("only a refund to the user's bank card takes card details"),
    v.BAD_BANK_TYPE: _("must be a bank type such as CMB_DEBIT"),
    v.BAD_BANK_ACCOUNT: _("must be a card number of 8-32 digits"),
    v.UNKNOWN_REFUND_FIELD: _("is not a field of this request"),
}


def translated(message: str) -> str | Promise:
    """The message in the active language (unknown messages pass through unchanged)."""
    return TRANSLATED.get(message, message)
