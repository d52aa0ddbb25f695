"""WeChat Pay's answers to 查询分账结果, as the API's caller should read them.

Why a table: syncing a sharing order (alone, or before a clawback) asks WeChat Pay
in the middle of the caller's request. An unknown or refused order is the caller's
input (400 naming ``out_order_no``); anything else (a timeout, a 5xx, a rate limit,
a signature or our credentials refused) is not the caller's fault and says nothing
about the order: 503, try again. Never a 500, and never a secret in the body.
"""

from __future__ import annotations

from typing import NoReturn

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError

from ..validation_messages import translated
from ..wechatpay import errors
from ..wechatpay.errors import Meaning

UNKNOWN_ORDER = _("WeChat Pay knows no sharing order with this out_order_no and transaction_id")
REFUSED_ORDER = _("WeChat Pay refused to show this sharing order ({code}): {message}")
UNAVAILABLE = _(
    "WeChat Pay could not be asked about the sharing order just now; nothing was "
    "created. Try again later."
)
#: Meanings of an order query's error that are the caller's input, field by field.
CALLER_MEANINGS = {Meaning.NOT_FOUND: UNKNOWN_ORDER, Meaning.REFUSED: REFUSED_ORDER}


class WeChatPayUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = UNAVAILABLE
    default_code = "wechat_pay_unavailable"


def raise_for_order_query(exc: errors.WeChatPayError) -> NoReturn:
    """The API error for a failed 查询分账结果: 400 naming the field, or 503."""
    if isinstance(exc, errors.InvalidRequest):
        raise ValidationError({exc.field: [str(translated(exc.message))]}) from None
    if isinstance(exc, errors.APIError) and exc.meaning in CALLER_MEANINGS:
        message = format_lazy(
            CALLER_MEANINGS[exc.meaning], code=exc.code or exc.status, message=exc.message
        )
        raise ValidationError({"out_order_no": [message]}) from None
    raise WeChatPayUnavailable() from None
