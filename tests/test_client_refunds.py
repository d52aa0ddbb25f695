"""The client's payment and refund calls against an independent stub of WeChat Pay.

The stub (``test_client_known_answers.StubHandler``) signs with plain ``cryptography``
and records what arrived, so each call's exact target and body are asserted, the
answers' typing is checked, and the card of 发起异常退款 is decrypted here with the
stub's private key (RSA-OAEP, SHA-1, straight from ``cryptography``): proof that it
was encrypted with the key ``Wechatpay-Serial`` names. Each call's error answers are
read with its endpoint's rows of the error table.
"""

from __future__ import annotations

import base64
import json
import logging

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from django_wxpay_profitsharing.wechatpay import (
    AbnormalRefundRequest,
    AbnormalRefundType,
    BankCard,
    FundsFrom,
    Meaning,
    Payment,
    Refund,
    RefundChannel,
    RefundRequest,
    RefundStatus,
    ReturnRequest,
    SharingOrderState,
    TradeState,
    UnfreezeRequest,
    WeChatPayClient,
    errors,
)
from django_wxpay_profitsharing.wechatpay.words import FromAccount, FundsAccount

from .test_client_known_answers import KEY_ID, StubHandler, serve

MCHID, SUB = "1900000100", "1900000109"
TX = "4208450740201411110007820472"
CARD_NUMBER, CARD_HOLDER = "6214830000001234", "张三"
REFUND = {
    "refund_id": "50000000382019052709732678859",
    "out_refund_no": "R7F3K9Q2-1",
    "transaction_id": TX,
    "out_trade_no": "T20150806125346",
    "channel": "ORIGINAL",
    "user_received_account": "招商银行信用卡0403",
    "create_time": "2026-01-01T10:00:00+08:00",
    "status": "PROCESSING",
    "funds_account": "UNAVAILABLE",
    "amount": {
        "total": 1000,
        "refund": 300,
        "from": [{"account": "UNAVAILABLE", "amount": 300}],
        "payer_total": 1000,
        "payer_refund": 300,
        "settlement_refund": 300,
        "settlement_total": 1000,
        "discount_refund": 0,
        "currency": "CNY",
    },
}
PAYMENT = {
    "sp_appid": "wx8888888888888888",
    "sp_mchid": MCHID,
    "sub_mchid": SUB,
    "out_trade_no": "T20150806125346",
    "transaction_id": TX,
    "trade_type": "JSAPI",
    "trade_state": "SUCCESS",
    "trade_state_desc": "支付成功",
    "bank_type": "CMC",
    "success_time": "2026-01-01T10:00:00+08:00",
    "payer": {"sp_openid": "o1"},
    "amount": {"total": 1000, "payer_total": 1000, "currency": "CNY", "payer_currency": "CNY"},
}
ORDER = {
    "sub_mchid": SUB,
    "transaction_id": TX,
    "out_order_no": "U1",
    "order_id": "3008450740201411110007820472",
    "state": "PROCESSING",
    "receivers": [],
}


@pytest.fixture(scope="module")
def server():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    httpd, handler = serve(StubHandler, key)
    yield httpd, handler, key
    httpd.shutdown()


@pytest.fixture
def stub(server):
    httpd, handler, key = server
    handler.seen.clear()
    handler.reply.update(status=200, body=REFUND, sign=True, skew=0)
    client = WeChatPayClient(
        MCHID,
        "ABCDEF1234",
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        wechatpay_public_key=key.public_key(),
        wechatpay_public_key_id=KEY_ID,
        base_url=f"http://127.0.0.1:{httpd.server_address[1]}",
        max_get_retries=1,
        get_retry_backoff=(0.0, 0.0),
    )
    yield client, handler, key
    client.close()


def sent(handler):
    (request,) = handler.seen
    return request["target"], json.loads(request["body"]) if request["body"] else None


# -- 查询订单, 查询剩余待分金额, 解冻剩余资金 ---------------------------------------------------
def test_query_payment_in_both_modes(stub):
    client, handler, _ = stub
    handler.reply.update(body=PAYMENT)
    payment = client.query_payment(TX, SUB)
    assert sent(handler) == (
        f"/v3/pay/partner/transactions/id/{TX}?sp_mchid={MCHID}&sub_mchid={SUB}",
        None,
    )
    assert isinstance(payment, Payment) and payment.partner
    assert (payment.mchid, payment.sub_mchid, payment.total, payment.payer_total) == (
        MCHID,
        SUB,
        1000,
        1000,
    )
    assert payment.trade_state is TradeState.SUCCESS and payment.success_time.hour == 10
    handler.seen.clear()
    direct = {k: v for k, v in PAYMENT.items() if not k.startswith(("sp_", "sub_"))}
    handler.reply.update(body={**direct, "mchid": MCHID, "appid": "wx1", "trade_state": "REFUND"})
    payment = client.query_payment(TX)
    assert sent(handler) == (f"/v3/pay/transactions/id/{TX}?mchid={MCHID}", None)
    assert not payment.partner and payment.trade_state is TradeState.REFUND


def test_query_unsplit_amount(stub):
    client, handler, _ = stub
    handler.reply.update(body={"transaction_id": TX, "unsplit_amount": 700})
    amount = client.query_unsplit_amount(TX)
    assert sent(handler) == (f"/v3/profitsharing/transactions/{TX}/amounts", None)
    assert (amount.transaction_id, amount.unsplit_amount) == (TX, 700)


def test_unfreeze_sends_its_body_in_both_modes(stub):
    client, handler, _ = stub
    handler.reply.update(body=ORDER)
    order = client.unfreeze(UnfreezeRequest(TX, "U1", "解冻全部剩余资金", sub_mchid=SUB))
    assert sent(handler)[0] == "/v3/profitsharing/orders/unfreeze"
    assert (
        handler.seen[0]["body"]
        == (
            f'{{"sub_mchid":"{SUB}","transaction_id":"{TX}","out_order_no":"U1",'
            '"description":"解冻全部剩余资金"}'
        ).encode()
    )
    assert order.state is SharingOrderState.PROCESSING
    handler.seen.clear()
    client.unfreeze(UnfreezeRequest(TX, "U2", "解冻"))
    assert "sub_mchid" not in sent(handler)[1]


# -- 申请退款, 查询单笔退款 --------------------------------------------------------------------
def test_create_refund_sends_exactly_the_request(stub):
    client, handler, _ = stub
    request = RefundRequest(
        out_refund_no="R7F3K9Q2-1",
        refund=300,
        total=1000,
        transaction_id=TX,
        sub_mchid=SUB,
        reason="商品已售完",
        notify_url="https://shop.example.com/wxpay/notify/1900000100/refund/",
        funds_from=(FundsFrom(FromAccount.UNAVAILABLE, 300),),
    )
    refund = client.create_refund(request)
    assert handler.seen[0]["target"] == "/v3/refund/domestic/refunds"
    assert (
        handler.seen[0]["body"]
        == (
            f'{{"sub_mchid":"{SUB}","transaction_id":"{TX}","out_refund_no":"R7F3K9Q2-1",'
            '"reason":"商品已售完","notify_url":"https://shop.example.com/wxpay/notify/1900000100/refund/",'
            '"amount":{"refund":300,"from":[{"account":"UNAVAILABLE","amount":300}],"total":1000,'
            '"currency":"CNY"}}'
        ).encode()
    )
    assert isinstance(refund, Refund) and refund.status is RefundStatus.PROCESSING
    assert (
        refund.channel is RefundChannel.ORIGINAL
        and refund.funds_account is FundsAccount.UNAVAILABLE
    )
    assert refund.amount.funds_from == (FundsFrom(FromAccount.UNAVAILABLE, 300),)
    assert (refund.amount.total, refund.amount.refund, refund.amount.payer_refund) == (
        1000,
        300,
        300,
    )
    assert not refund.is_final and refund.raw == REFUND


def test_direct_mode_sends_no_sub_mchid_and_out_trade_no_when_given(stub):
    client, handler, _ = stub
    client.create_refund(RefundRequest("R1", 1, 1000, out_trade_no="T1"))
    _, body = sent(handler)
    assert body == {"out_trade_no": "T1", "out_refund_no": "R1",
                    "amount": {"refund": 1, "total": 1000, "currency": "CNY"}}  # fmt: skip


def test_query_refund_in_both_modes_and_percent_encoded(stub):
    client, handler, _ = stub
    handler.reply.update(
        body={**REFUND, "status": "SUCCESS", "success_time": "2026-01-01T10:01:00+08:00"}
    )
    refund = client.query_refund("R7F3K9Q2-1", SUB)
    assert sent(handler) == (f"/v3/refund/domestic/refunds/R7F3K9Q2-1?sub_mchid={SUB}", None)
    assert refund.is_final and refund.success_time.minute == 1
    handler.seen.clear()
    client.query_refund("R|1*@x")
    assert sent(handler)[0] == "/v3/refund/domestic/refunds/R%7C1%2A%40x"


def test_values_this_version_does_not_know_are_kept_as_text(stub):
    client, handler, _ = stub
    handler.reply.update(body={**REFUND, "status": "PENDING_REVIEW", "channel": "OTHER_WALLET",
                               "funds_account": "NEW_ACCOUNT"})  # fmt: skip
    refund = client.query_refund("R7F3K9Q2-1")
    assert (refund.status, refund.channel, refund.funds_account) == (
        "PENDING_REVIEW",
        "OTHER_WALLET",
        "NEW_ACCOUNT",
    )
    assert not refund.is_final


def test_a_verified_answer_that_is_no_refund_is_never_used(stub):
    client, handler, _ = stub
    handler.reply.update(body={**REFUND, "amount": {"refund": "300"}})
    with pytest.raises(errors.SignatureError, match="not a refund"):
        client.query_refund("R7F3K9Q2-1")


# -- 发起异常退款 -----------------------------------------------------------------------------
def test_abnormal_refund_to_the_merchant_account(stub):
    client, handler, _ = stub
    handler.reply.update(body={**REFUND, "status": "PROCESSING"})
    request = AbnormalRefundRequest(REFUND["refund_id"], "R7F3K9Q2-1", "MERCHANT_BANK_CARD", SUB)
    client.apply_abnormal_refund(request)
    target, body = sent(handler)
    assert target == f"/v3/refund/domestic/refunds/{REFUND['refund_id']}/apply-abnormal-refund"
    assert body == {"sub_mchid": SUB, "out_refund_no": "R7F3K9Q2-1", "type": "MERCHANT_BANK_CARD"}


def test_abnormal_refund_to_the_users_card_goes_encrypted_and_nowhere_else(stub, caplog):
    client, handler, key = stub
    handler.reply.update(body={**REFUND, "channel": "OTHER_BANKCARD"})
    card = BankCard("ICBC_DEBIT", CARD_NUMBER, CARD_HOLDER)
    request = AbnormalRefundRequest(
        REFUND["refund_id"], "R7F3K9Q2-1", AbnormalRefundType.USER_BANK_CARD, card=card
    )
    calls = []
    with caplog.at_level(logging.DEBUG):
        refund = client.apply_abnormal_refund(request, on_call=calls.append)
    assert refund.channel is RefundChannel.OTHER_BANKCARD
    (seen,) = handler.seen
    assert seen["headers"]["Wechatpay-Serial"] == KEY_ID
    body = json.loads(seen["body"])
    assert body["bank_type"] == "ICBC_DEBIT" and body["type"] == "USER_BANK_CARD"
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    assert key.decrypt(base64.b64decode(body["bank_account"]), oaep).decode() == CARD_NUMBER
    assert key.decrypt(base64.b64decode(body["real_name"]), oaep).decode() == CARD_HOLDER
    shown = caplog.text + repr(calls) + repr(request) + repr(card)
    assert CARD_NUMBER not in shown and CARD_HOLDER not in shown


def test_abnormal_refund_card_failures_never_echo_the_card(stub):
    client, handler, _ = stub
    answer = {"code": "INVALID_REQUEST", "message": "退款单状态不是退款异常"}
    handler.reply.update(status=400, body=answer, sign=False)
    card = BankCard("ICBC_DEBIT", CARD_NUMBER, CARD_HOLDER)
    request = AbnormalRefundRequest("5000", "R1", "USER_BANK_CARD", card=card)
    with pytest.raises(errors.APIError) as info:
        client.apply_abnormal_refund(request)
    assert info.value.meaning is Meaning.REFUSED
    assert CARD_NUMBER not in str(info.value) and CARD_HOLDER not in repr(info.value)
    with pytest.raises(errors.InvalidRequest) as bad:
        BankCard("ICBC_DEBIT", "6214-8300", CARD_HOLDER)
    assert "6214" not in str(bad.value)


# -- an answer's meaning depends on the call ----------------------------------------------
def refund_request():
    return RefundRequest("R1", 100, 1000, transaction_id=TX)


CALLS = {
    "create_refund": lambda c: c.create_refund(refund_request()),
    "query_refund": lambda c: c.query_refund("R1"),
    "unfreeze": lambda c: c.unfreeze(UnfreezeRequest(TX, "U1", "解冻")),
    "query_unsplit_amount": lambda c: c.query_unsplit_amount(TX),
    "create_return": lambda c: c.create_return(
        ReturnRequest(
            out_return_no="B1",
            return_mchid="86693852",
            amount=1,
            description="d",
            out_order_no="P1",
        )
    ),
    "query_payment": lambda c: c.query_payment(TX),
}


M = Meaning


@pytest.mark.parametrize(
    ("call", "status", "code", "message", "meaning"),
    [
        ("create_refund", 403, "NOT_ENOUGH", "商户可用退款余额不足", M.BALANCE_SHORT),
        ("unfreeze", 403, "NOT_ENOUGH", "分账金额为0", M.NOTHING_LEFT),
        ("create_return", 403, "NOT_ENOUGH", "剩余可回退的金额不足", M.REFUSED),
        ("create_return", 403, "NOT_ENOUGH", "可用余额不足，请充值后重新发起", M.BALANCE_SHORT),
        ("create_return", 400, "INVALID_REQUEST", "可用余额不足", M.REFUSED),
        ("create_refund", 400, "INVALID_REQUEST", "可用余额不足", M.REFUSED),
        ("create_refund", 403, "RULE_LIMIT", "申请退款金额大于剩余未分账金额", M.SPLIT_PENDING),
        ("create_refund", 429, "FREQUENCY_LIMITED", "频率限制", M.TOO_SOON),
        ("create_return", 429, "FREQUENCY_LIMITED", "频率限制", M.RATE_LIMITED),
        ("query_refund", 404, "RESOURCE_NOT_EXISTS", "退款单不存在", M.NOT_FOUND),
        ("query_unsplit_amount", 400, "INVALID_REQUEST", "非分账订单不支持此查询",
         M.NOT_SHARING_ORDER),
        ("unfreeze", 400, "INVALID_REQUEST", "非分账订单不支持解冻剩余资金", M.NOT_SHARING_ORDER),
        ("create_refund", 400, "INVALID_REQUEST", "非分账订单", M.REFUSED),
        ("create_refund", 403, "USER_ACCOUNT_ABNORMAL", "用户账号已注销", M.REFUSED),
        ("query_payment", 404, "ORDER_NOT_EXIST", "订单不存在", M.NOT_FOUND),
    ],
)  # fmt: skip
def test_an_answer_is_read_with_its_calls_rows(stub, call, status, code, message, meaning):
    client, handler, _ = stub
    handler.reply.update(status=status, body={"code": code, "message": message}, sign=False)
    with pytest.raises(errors.APIError) as info:
        CALLS[call](client)
    assert info.value.endpoint.value == call
    assert info.value.meaning is meaning
    assert info.value.retryable == (meaning in errors.RETRYABLE_MEANINGS)


def test_refund_posts_are_never_retried_gets_are(stub):
    client, handler, _ = stub
    handler.reply.update(
        status=500, body={"code": "SYSTEM_ERROR", "message": "系统错误"}, sign=False
    )
    with pytest.raises(errors.APIError):
        client.create_refund(refund_request())
    assert len(handler.seen) == 1
    handler.seen.clear()
    with pytest.raises(errors.APIError):
        client.query_refund("R1")
    assert len(handler.seen) == 2
