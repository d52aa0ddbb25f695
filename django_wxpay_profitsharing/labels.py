"""What a person reads for WeChat Pay's own words (its enums' values), in either language.

Why apart from the wire's enums (``wechatpay/words.py``): those are WeChat Pay's values,
without Django; the admin, the API's ``*_display`` fields and the docs show them in
words, translated. A value WeChat Pay adds later is shown as it came.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .wechatpay.words import SharingOrderState

#: A sharing order's ``state`` (查询分账结果).
SHARING_ORDER_STATES: dict[str, Promise] = {
    SharingOrderState.PROCESSING: _("Processing"),
    SharingOrderState.FINISHED: _("Finished"),
}


def label(table: dict[str, Promise], value: str) -> str:
    """The words for ``value``, or the value itself when it has none (a newer one)."""
    words = table.get(value)
    return str(words) if words is not None else value
