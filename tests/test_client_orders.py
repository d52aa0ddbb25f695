"""Known answers for ``WeChatPayClient.query_order`` (查询分账结果).

A stub WeChat Pay with its own signing code (plain ``cryptography``) answers; the
merchant key is wechatpay-go's test key and the clock and nonce are fixed, so the
request target, the string signed and the signature itself are exact known values.
"""

from __future__ import annotations

import base64
import json
import os
from http.server import BaseHTTPRequestHandler

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from django_wxpay_profitsharing.wechatpay import (
    ReceiverResult,
    ReceiverType,
    SharingOrder,
    SharingOrderState,
    SharingReceiver,
    WeChatPayClient,
    errors,
)

from .test_client_known_answers import GO_TEST_KEY, KEY_ID, V5_NONCE, V5_TS, serve

MCHID, SERIAL = "1900000100", "F5765756002FDD77"
# The documented example of 查询分账结果 (milliseconds in the times, as WeChat sends).
ORDER = {
    "sub_mchid": "1900000109",
    "transaction_id": "4208450740201411110007820472",
    "out_order_no": "P20150806125346",
    "order_id": "3008450740201411110007820472",
    "state": "FINISHED",
    "receivers": [
        {
            "amount": 100,
            "description": "分给商户1900000109",
            "type": "MERCHANT_ID",
            "account": "1900000109",
            "result": "SUCCESS",
            "detail_id": "36011111111111111111111",
            "create_time": "2015-05-20T13:29:35.120+08:00",
            "finish_time": "2015-05-20T13:29:35.120+08:00",
        },
        {
            "amount": 20,
            "description": "分给用户",
            "type": "PERSONAL_OPENID",
            "account": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "result": "CLOSED",
            "fail_reason": "RECEIVER_HIGH_RISK",
            "detail_id": "36011111111111111111112",
            "create_time": "2015-05-20T13:29:35.120+08:00",
            "finish_time": "2015-05-20T13:29:36+08:00",
        },
    ],
}
TARGET = (
    "/v3/profitsharing/orders/P20150806125346"
    "?sub_mchid=1900000109&transaction_id=4208450740201411110007820472"
)


class Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list
    reply: dict

    def log_message(self, *args):
        return

    def do_GET(self):
        self.seen.append({"target": self.path, "headers": dict(self.headers)})
        status, payload = self.reply["status"], self.reply["body"]
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        ts, nonce = str(V5_TS), os.urandom(16).hex().upper()  # a replayed nonce is refused
        signature = self.reply["key"].sign(
            f"{ts}\n{nonce}\n".encode() + raw + b"\n", padding.PKCS1v15(), hashes.SHA256()
        )
        self.send_response(status)
        for name, value in (
            ("Content-Length", str(len(raw))),
            ("Request-ID", "REQ-ORDERS"),
            ("Wechatpay-Timestamp", ts),
            ("Wechatpay-Nonce", nonce),
            ("Wechatpay-Serial", KEY_ID),
            ("Wechatpay-Signature", base64.b64encode(signature).decode()),
        ):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture(scope="module")
def merchant_key():
    return serialization.load_pem_private_key(GO_TEST_KEY.encode(), password=None)


@pytest.fixture(scope="module")
def server():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    httpd, handler = serve(Stub, key)
    yield httpd, handler, key
    httpd.shutdown()


@pytest.fixture
def stub(server, merchant_key):
    httpd, handler, key = server
    handler.seen.clear()
    handler.reply.update(status=200, body=ORDER)
    client = WeChatPayClient(
        MCHID,
        SERIAL,
        GO_TEST_KEY,
        wechatpay_public_key=key.public_key(),
        wechatpay_public_key_id=KEY_ID,
        base_url=f"http://127.0.0.1:{httpd.server_address[1]}",
        clock=lambda: V5_TS,
        nonce_factory=lambda: V5_NONCE,
        max_get_retries=0,
    )
    yield client, handler
    client.close()


def test_request_target_and_signature_are_known(stub, merchant_key):
    client, handler = stub
    client.query_order("P20150806125346", "4208450740201411110007820472", "1900000109")
    (request,) = handler.seen
    assert request["target"] == TARGET
    message = f"GET\n{TARGET}\n{V5_TS}\n{V5_NONCE}\n\n".encode()
    expected = base64.b64encode(
        merchant_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    ).decode()
    assert request["headers"]["Authorization"] == (
        f'WECHATPAY2-SHA256-RSA2048 mchid="{MCHID}",nonce_str="{V5_NONCE}",'
        f'timestamp="{V5_TS}",serial_no="{SERIAL}",signature="{expected}"'
    )
    assert request["headers"]["Accept"] == "application/json"
    assert request["headers"]["Wechatpay-Serial"] == KEY_ID


def test_direct_form_and_percent_encoding(stub):
    client, handler = stub
    client.query_order("P-1|2*@x", "4208450740201411110007820472")
    assert handler.seen[0]["target"] == (
        "/v3/profitsharing/orders/P-1%7C2%2A%40x?transaction_id=4208450740201411110007820472"
    )


def test_documented_answer_is_typed(stub):
    client, _ = stub
    calls = []
    order = client.query_order(
        "P20150806125346", "4208450740201411110007820472", "1900000109", on_call=calls.append
    )
    assert isinstance(order, SharingOrder)
    assert (order.sub_mchid, order.transaction_id, order.out_order_no, order.order_id) == (
        "1900000109",
        "4208450740201411110007820472",
        "P20150806125346",
        "3008450740201411110007820472",
    )
    assert order.state is SharingOrderState.FINISHED and order.raw == ORDER
    merchant, personal = order.receivers
    assert isinstance(merchant, SharingReceiver)
    assert merchant.type is ReceiverType.MERCHANT_ID and merchant.result is ReceiverResult.SUCCESS
    assert (merchant.account, merchant.amount, merchant.description) == (
        "1900000109",
        100,
        "分给商户1900000109",
    )
    assert merchant.detail_id == "36011111111111111111111" and merchant.fail_reason is None
    assert merchant.create_time.microsecond == 120000
    assert merchant.create_time.utcoffset().total_seconds() == 8 * 3600
    assert personal.type is ReceiverType.PERSONAL_OPENID
    assert personal.result is ReceiverResult.CLOSED
    assert personal.fail_reason == "RECEIVER_HIGH_RISK"
    assert personal.finish_time.second == 36
    assert [(c.method, c.path, c.status, c.outcome) for c in calls] == [
        ("GET", "/v3/profitsharing/orders/P20150806125346", 200, "ok")
    ]
    with pytest.raises(AttributeError):
        order.state = "PROCESSING"  # type: ignore[misc]


def test_unknown_enum_values_are_kept_as_text(stub):
    client, handler = stub
    line = {**ORDER["receivers"][0], "type": "BANK_CARD", "result": "FROZEN"}
    handler.reply.update(body={**ORDER, "state": "REVOKED", "receivers": [line]})
    order = client.query_order("P20150806125346", "4208450740201411110007820472")
    assert order.state == "REVOKED" and not isinstance(order.state, SharingOrderState)
    (receiver,) = order.receivers
    assert (receiver.type, receiver.result) == ("BANK_CARD", "FROZEN")
    assert not isinstance(receiver.type, ReceiverType)
    assert not isinstance(receiver.result, ReceiverResult)


def test_order_without_receivers_or_optional_fields(stub):
    client, handler = stub
    bare = {k: ORDER[k] for k in ("transaction_id", "out_order_no", "order_id", "state")}
    handler.reply.update(body=bare)
    order = client.query_order("P20150806125346", "4208450740201411110007820472")
    assert order.receivers == () and order.sub_mchid is None
    line = {k: ORDER["receivers"][0][k] for k in ("amount", "type", "account", "result")}
    handler.reply.update(body={**bare, "state": "PROCESSING", "receivers": [line]})
    (receiver,) = client.query_order("P20150806125346", "4208450740201411110007820472").receivers
    assert (receiver.detail_id, receiver.description, receiver.create_time) == ("", "", None)


def _without(data: dict, name: str) -> dict:
    return {k: v for k, v in data.items() if k != name}


LINE = ORDER["receivers"][0]
MALFORMED = {
    "not_an_object": [ORDER],
    "no_state": _without(ORDER, "state"),
    "no_order_id": _without(ORDER, "order_id"),
    "state_not_text": {**ORDER, "state": 1},
    "receivers_not_a_list": {**ORDER, "receivers": "x"},
    "receiver_not_an_object": {**ORDER, "receivers": ["x"]},
    "receiver_without_amount": {**ORDER, "receivers": [_without(LINE, "amount")]},
    "amount_as_text": {**ORDER, "receivers": [{**LINE, "amount": "100"}]},
    "amount_as_bool": {**ORDER, "receivers": [{**LINE, "amount": True}]},
    "receiver_without_result": {**ORDER, "receivers": [_without(LINE, "result")]},
    "bad_time": {**ORDER, "receivers": [{**LINE, "create_time": "yesterday"}]},
    "time_without_offset": {**ORDER, "receivers": [{**LINE, "finish_time": "2015-05-20T13:29"}]},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_entity_is_a_signature_error(stub, case):
    client, handler = stub
    handler.reply.update(body=MALFORMED[case])
    with pytest.raises(errors.SignatureError, match="verified response is not a sharing order"):
        client.query_order("P20150806125346", "4208450740201411110007820472")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("P1", ""), "transaction_id"),
        (("P1", "4" * 33), "transaction_id"),
        (("P1", "4200-1"), "transaction_id"),
        (("P1", 4200), "transaction_id"),
        (("P 1", "4200"), "out_order_no"),
        (("P1", "4200", "19000x"), "sub_mchid"),
    ],
)
def test_invalid_parameters_are_refused_before_sending(stub, args, field):
    client, handler = stub
    with pytest.raises(errors.InvalidRequest) as info:
        client.query_order(*args)
    assert info.value.field == field and handler.seen == []


def test_errors_are_typed_and_gets_are_retried(server, stub):
    client, handler = stub
    handler.reply.update(status=404, body={"code": "RESOURCE_NOT_EXISTS", "message": "记录不存在"})
    with pytest.raises(errors.APIError) as info:
        client.query_order("P1", "4200")
    assert (info.value.status, info.value.code, info.value.retryable) == (
        404,
        "RESOURCE_NOT_EXISTS",
        False,
    )
    handler.seen.clear()
    handler.reply.update(status=500, body={"code": "SYSTEM_ERROR", "message": "系统错误"})
    client.max_get_retries = 2
    with pytest.raises(errors.APIError):
        client.query_order("P1", "4200")
    assert len(handler.seen) == 3
