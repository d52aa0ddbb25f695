"""What a person reads for WeChat Pay's own words (its enums' values), in either language.

Why apart from the wire's enums (``wechatpay/words.py``): those are WeChat Pay's values,
without Django; the admin, the API's ``*_display`` fields and the docs show them in
words, translated. A value WeChat Pay adds later is shown as it came.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .wechatpay.words import (
    ReceiverResult,
    ReceiverType,
    RefundStatus,
    ReturnResult,
    SharingOrderState,
)

#: A sharing order's ``state`` (查询分账结果).
SHARING_ORDER_STATES: dict[str, Promise] = {
    SharingOrderState.PROCESSING: _("Processing"),
    SharingOrderState.FINISHED: _("Finished"),
}
#: A return's ``result`` at WeChat Pay, as its answers and the daily bill give it.
RETURN_RESULTS: dict[str, Promise] = {
    ReturnResult.PROCESSING: _("Processing"),
    ReturnResult.SUCCESS: _("Succeeded"),
    ReturnResult.FAILED: _("Failed"),
}
#: A receiver line's ``type``.
RECEIVER_TYPES: dict[str, Promise] = {
    ReceiverType.MERCHANT_ID: _("merchant"),
    ReceiverType.PERSONAL_OPENID: _("person (openid)"),
    ReceiverType.PERSONAL_SUB_OPENID: _("person (sub_openid)"),
}
#: A receiver line's ``result`` in its sharing order.
RECEIVER_RESULTS: dict[str, Promise] = {
    ReceiverResult.PENDING: pgettext_lazy("receiver line", "Pending"),
    ReceiverResult.SUCCESS: pgettext_lazy("receiver line", "Succeeded"),
    ReceiverResult.CLOSED: pgettext_lazy("receiver line", "Closed"),
}

#: A refund's ``status`` at WeChat Pay.
REFUND_STATUSES: dict[str, Promise] = {
    RefundStatus.PROCESSING: pgettext_lazy("refund status", "Processing"),
    RefundStatus.SUCCESS: pgettext_lazy("refund status", "Succeeded"),
    RefundStatus.CLOSED: pgettext_lazy("refund status", "Closed"),
    RefundStatus.ABNORMAL: pgettext_lazy("refund status", "Abnormal"),
}


def label(table: dict[str, Promise], value: str) -> str:
    """The words for ``value``, or the value itself when it has none (a newer one)."""
    words = table.get(value)
    return str(words) if words is not None else value
