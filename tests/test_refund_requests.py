"""Refund-side requests are valid by construction, and the error table keeps its rules.

No HTTP here: a request that WeChat Pay would refuse for its form cannot be made
(``InvalidRequest`` naming the field), ``check`` lists every problem for forms, and the
error table's invariants hold (one row per code per endpoint, refinements refine).
"""

from __future__ import annotations

import pytest

from django_wxpay_profitsharing.wechatpay import (
    AbnormalRefundRequest,
    BankCard,
    FundsFrom,
    RefundRequest,
    UnfreezeRequest,
    error_table,
    errors,
    validation,
)
from django_wxpay_profitsharing.wechatpay.error_table import Endpoint, Meaning
from django_wxpay_profitsharing.wechatpay.words import AbnormalRefundType, FromAccount

TX = "4208450740201411110007820472"


def refund(**changes):
    values = {"out_refund_no": "R1", "refund": 100, "total": 1000, "transaction_id": TX}
    values.update(changes)
    return RefundRequest(**values)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"out_refund_no": "R 1"}, "out_refund_no", validation.BAD_OUT_NO),
        ({"out_refund_no": "R" * 65}, "out_refund_no", validation.BAD_OUT_NO),
        ({"refund": 0}, "refund", validation.TOO_LITTLE),
        ({"refund": 1.5}, "refund", validation.NOT_FEN),
        ({"refund": True}, "refund", validation.NOT_FEN),
        ({"refund": 1001}, "refund", validation.OVER_TOTAL),
        ({"total": "1000"}, "total", validation.NOT_FEN),
        ({"transaction_id": None}, "transaction_id", validation.ONE_PAYMENT_REFERENCE),
        ({"out_trade_no": "T1"}, "transaction_id", validation.ONE_PAYMENT_REFERENCE),
        ({"transaction_id": None, "out_trade_no": "T" * 33}, "out_trade_no",
         validation.BAD_OUT_TRADE_NO),
        ({"sub_mchid": "abc"}, "sub_mchid", validation.BAD_MCHID),
        ({"currency": "USD"}, "currency", validation.NOT_CNY),
        ({"reason": " "}, "reason", validation.BLANK),
        ({"reason": "退款\u202e"}, "reason", validation.INVISIBLE_CHARACTERS),
        ({"reason": "退款🙂"}, "reason", validation.NO_EMOJI),
        ({"notify_url": "http://shop.example.com/notify"}, "notify_url", validation.BAD_NOTIFY_URL),
        ({"notify_url": "https://shop.example.com/n?mchid=1"}, "notify_url",
         validation.BAD_NOTIFY_URL),
        ({"notify_url": "https://shop.example.com/" + "a" * 240}, "notify_url",
         validation.BAD_NOTIFY_URL),
        ({"notify_url": "https://user:pw@shop.example.com/n"}, "notify_url",
         validation.BAD_NOTIFY_URL),
        ({"funds_from": (FundsFrom(FromAccount.AVAILABLE, 50),)}, "from",
         validation.FROM_NOT_REFUND),
        ({"funds_from": (FundsFrom(FromAccount.AVAILABLE, 50),) * 2}, "from",
         validation.FROM_REPEATED),
        ({"funds_from": (FundsFrom("BASIC", 100),)}, "from", validation.BAD_FROM_ACCOUNT),  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_a_refund_request_wechat_pay_would_refuse_cannot_be_made(changes, field, message):
    with pytest.raises(errors.InvalidRequest) as info:
        refund(**changes)
    assert (info.value.field, info.value.message) == (field, message)


def test_the_reason_is_cut_to_80_bytes_at_a_whole_character():
    long = "退" * 30  # 90 bytes of UTF-8
    request = refund(reason=long)
    assert request.reason == "退" * 26  # 78 bytes: a 27th would make 81
    assert len(request.reason.encode()) <= 80
    assert refund(reason="a" * 80).reason == "a" * 80
    assert request.body()["reason"] == request.reason


def test_loopback_notify_urls_may_be_plain_http_for_the_simulator():
    assert refund(notify_url="http://127.0.0.1:8000/n/").notify_url == "http://127.0.0.1:8000/n/"
    assert refund(notify_url="http://localhost/n/").notify_url


def test_from_parts_may_come_as_mappings_through_check():
    given = {
        "out_refund_no": "R1",
        "refund": 100,
        "total": 1000,
        "transaction_id": TX,
        "funds_from": [
            {"account": "UNAVAILABLE", "amount": 60},
            {"account": "AVAILABLE", "amount": 40},
        ],
    }
    request, problems = RefundRequest.check(given)
    assert problems == {} and request is not None
    assert request.body()["amount"]["from"] == [
        {"account": "UNAVAILABLE", "amount": 60},
        {"account": "AVAILABLE", "amount": 40},
    ]


def test_check_lists_every_problem_and_unknown_fields():
    request, problems = RefundRequest.check(
        {"out_refund_no": "", "refund": 0, "total": 1000, "reason": "🙂", "amount": 5}
    )
    assert request is None
    assert problems == {
        "amount": [validation.UNKNOWN_REFUND_FIELD],
        "out_refund_no": [validation.BAD_OUT_NO],
        "refund": [validation.TOO_LITTLE],
        "transaction_id": [validation.ONE_PAYMENT_REFERENCE],
        "reason": [validation.NO_EMOJI],
    }


def test_a_request_cannot_be_changed_once_made():
    with pytest.raises(AttributeError):
        refund().refund = 1  # type: ignore[misc]


def test_unfreeze_requests_are_valid_by_construction():
    assert UnfreezeRequest(TX, "U1", "解冻").body() == {
        "transaction_id": TX,
        "out_order_no": "U1",
        "description": "解冻",
    }
    with pytest.raises(errors.InvalidRequest, match="description"):
        UnfreezeRequest(TX, "U1", "x" * 81)
    with pytest.raises(errors.InvalidRequest, match="transaction_id"):
        UnfreezeRequest("42-08", "U1", "解冻")


def test_abnormal_refund_requests_take_a_card_only_to_the_users_card():
    card = BankCard("CMB_DEBIT", "6214830000001234", "张三")
    with pytest.raises(errors.InvalidRequest, match="card") as info:
        AbnormalRefundRequest("5000", "R1", AbnormalRefundType.USER_BANK_CARD)
    assert info.value.message == validation.CARD_NEEDED
    with pytest.raises(errors.InvalidRequest) as info:
        AbnormalRefundRequest("5000", "R1", AbnormalRefundType.MERCHANT_BANK_CARD, card=card)
    assert info.value.message == validation.CARD_REFUSED
    with pytest.raises(errors.InvalidRequest, match="type"):
        AbnormalRefundRequest("5000", "R1", "TO_THE_MOON")  # type: ignore[arg-type]
    request = AbnormalRefundRequest("5000", "R1", "USER_BANK_CARD", card=card)  # type: ignore[arg-type]
    assert request.type is AbnormalRefundType.USER_BANK_CARD
    assert "6214830000001234" not in repr(request) and "张三" not in repr(card)
    with pytest.raises(ValueError, match="encrypted"):
        request.body()  # the card never goes in plain text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("cmb_debit", "6214830000001234", "张三"), validation.BAD_BANK_TYPE),
        (("CMB_DEBIT", "6214 8300 0000 1234", "张三"), validation.BAD_BANK_ACCOUNT),
        (("CMB_DEBIT", "6214830000001234", " "), validation.BLANK),
    ],
)
def test_a_card_is_checked_before_it_is_encrypted(fields, message):
    with pytest.raises(errors.InvalidRequest) as info:
        BankCard(*fields)
    assert info.value.message == message


# -- the error table --------------------------------------------------------------------
def test_each_code_has_one_row_per_endpoint_and_every_endpoint_is_described():
    keys = [(row.endpoint, row.code) for row in error_table.ERROR_ROWS]
    assert len(keys) == len(set(keys))
    assert set(error_table.ENDPOINTS) == set(Endpoint)
    for row in error_table.ERROR_ROWS:
        assert row.wechat and row.en and row.zh, row


def test_a_message_only_refines_a_code_on_its_endpoint():
    for message in error_table.MESSAGE_ROWS:
        base = error_table.row_for(message.endpoint, message.code)
        assert base is not None and base.meaning is not message.meaning
        text = f"xx{message.fragment}yy"
        assert error_table.meaning_of(400, message.code, text, message.endpoint) is message.meaning
        refined = {m.endpoint for m in error_table.MESSAGE_ROWS if m.code == message.code}
        others = [e for e in Endpoint if e not in refined]
        for endpoint in others:  # the same words elsewhere change nothing
            plain = error_table.meaning_of(400, message.code, "", endpoint)
            assert error_table.meaning_of(400, message.code, text, endpoint) is plain
        assert error_table.meaning_of(400, "OTHER_CODE", text, message.endpoint) is Meaning.REFUSED


def test_codes_outside_the_table_are_read_from_their_status():
    read = error_table.meaning_of
    assert read(429, "NEW", "", Endpoint.CREATE_REFUND) is Meaning.RATE_LIMITED
    assert read(503, "", "", Endpoint.CREATE_REFUND) is Meaning.RETRY_SAME
    assert read(401, "NEW", "") is Meaning.CREDENTIALS
    assert read(404, "NEW", "") is Meaning.NOT_FOUND
    assert read(418, "NEW", "") is Meaning.REFUSED


def test_an_error_names_the_row_it_was_read_with():
    error = errors.APIError(403, "NOT_ENOUGH", "分账金额为0", endpoint=Endpoint.UNFREEZE)
    assert error.row is not None and error.row.zh.startswith("没有可解冻")
    assert errors.APIError(418, "NEW").row is None
