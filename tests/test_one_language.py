"""One language, one currency (issue 24, item 8): what reaches a person is translated,
its amounts in yuan (and in fen where the API's unit is named).

Each test reads a text in Chinese and in English; the English f-strings these texts
were could not be translated.
"""

from __future__ import annotations

import pytest
from django.utils import translation

from django_wxpay_profitsharing import allocation
from django_wxpay_profitsharing.refund_jobs import RefundConflict
from django_wxpay_profitsharing.refund_models import RefundJob


def words(message, language):
    with translation.override(language):
        return str(message)


def test_asking_more_than_returnable_says_it_in_yuan_and_fen_in_either_language():
    with pytest.raises(allocation.AllocationError) as info:
        allocation.proportional(5000, {"A": 1234, "B": 0})
    assert info.value.field == "amount"
    assert words(info.value.message, "zh-hans") == (
        "超出这些分账接收方的可回退金额（¥12.34，即 1234 分）"
    )
    assert words(info.value.message, "en") == (
        "exceeds what is returnable from these receivers (¥12.34: 1234 fen)"
    )


def test_in_order_errors_are_translated():
    with pytest.raises(allocation.AllocationError) as unknown:
        allocation.in_order(1, {"A": 5}, ["A", "X"])
    assert words(unknown.value.message, "zh-hans") == "不是可回退的分账接收方：X"
    with pytest.raises(allocation.AllocationError) as twice:
        allocation.in_order(1, {"A": 5}, ["A", "A"])
    assert words(twice.value.message, "zh-hans") == "有账户重复列出"
    with pytest.raises(allocation.AllocationError) as nothing:
        allocation.in_order(0, {"A": 5}, ["A"])
    assert words(nothing.value.message, "zh-hans") == "至少为 1 分"


def test_a_refund_number_taken_with_other_fields_is_said_in_chinese():
    conflict = RefundConflict(RefundJob(out_refund_no="RF1"), ["amount", "reason"])
    with translation.override("zh-hans"):
        [chinese] = conflict.message_dict["out_refund_no"]
    with translation.override("en"):
        [english] = conflict.message_dict["out_refund_no"]
    assert chinese == "RF1 已存在，但 amount, reason 不同；新的退款请使用新的 out_refund_no。"
    assert english.startswith("RF1 already exists with a different amount, reason")
