"""``ReturnOrder.from_dict``: WeChat Pay's JSON becomes the same frozen dataclass.

Why a test of its own: ``from_dict`` fills the instance without the generated
``__init__`` (for speed), so it must be checked to make exactly what ``__init__``
makes: every field, equal, hashable, frozen, and refusing malformed entities.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from django_wxpay_profitsharing.wechatpay import ReturnOrder

#: The answer of the official example (请求分账回退, 应答参数).
OFFICIAL = {
    "sub_mchid": "1900000109",
    "order_id": "3008450740201411110007820472",
    "out_order_no": "P20150806125346",
    "out_return_no": "R20190516001",
    "return_id": "3008450740201411110007820472",
    "return_mchid": "86693852",
    "amount": 10,
    "description": "用户退款",
    "result": "SUCCESS",
    "fail_reason": "",
    "create_time": "2015-05-20T13:29:35.120+08:00",
    "finish_time": "2015-05-20T13:29:35Z",
}


def test_from_dict_makes_what_init_makes():
    order = ReturnOrder.from_dict(dict(OFFICIAL))
    by_init = ReturnOrder(**{f.name: getattr(order, f.name) for f in dataclasses.fields(order)})
    assert order == by_init and hash(order) == hash(by_init)
    assert vars(order) == vars(by_init)
    assert order.amount == 10 and order.sub_mchid == "1900000109"
    assert order.fail_reason is None  # "" means none
    assert order.create_time == datetime(
        2015, 5, 20, 13, 29, 35, 120000, timezone(timedelta(hours=8))
    )
    assert order.finish_time == datetime(2015, 5, 20, 13, 29, 35, tzinfo=UTC)
    assert order.is_final and order.raw == OFFICIAL
    assert "R20190516001" in repr(order) and "raw" not in repr(order)
    with pytest.raises(dataclasses.FrozenInstanceError):
        order.amount = 11


@pytest.mark.parametrize(
    "change",
    [
        {"amount": "10"},
        {"amount": True},
        {"amount": None},
        {"drop": "result"},
        {"drop": "out_return_no"},
        {"create_time": "2015-05-20T13:29:35"},  # no offset
        {"finish_time": "yesterday"},
    ],
)
def test_a_malformed_entity_is_a_value_error(change):
    data = dict(OFFICIAL)
    drop = change.pop("drop", None)
    data.update(change)
    if drop:
        del data[drop]
    with pytest.raises(ValueError):
        ReturnOrder.from_dict(data)
