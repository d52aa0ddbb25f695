"""The simulator's APIv3 wire protocol: request signatures, signed answers, routing, headers."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from urllib3.util import SKIP_HEADER

from .signed_client import AUTH_ORDERS, SUB, return_fields


@pytest.fixture
def order(simproc, client):
    return simproc.seed_order("P-WIRE-1", sub_mchid=SUB, amount=1000)


# -- signatures that verify ----------------------------------------------------------------


@pytest.mark.parametrize("order_name", sorted(AUTH_ORDERS))
def test_create_verifies_with_any_authorization_field_order(client, order, order_name):
    body = json.dumps(return_fields(order, f"R-{order_name}")).encode()
    response = client.send("POST", "/v3/profitsharing/return-orders", body, order=order_name)
    assert response.status_code == 200, response.text
    client.assert_signed(response)
    assert response.headers["Wechatpay-Serial"] == client.public_key_id
    assert response.json()["result"] == "SUCCESS"


@pytest.mark.parametrize(
    "query",
    [
        "sub_mchid={sub}&out_order_no={no}",
        "out_order_no={no}&sub_mchid={sub}",
        "&out_order_no={no}&sub_mchid={sub}",  # wechatpayv3's stray '&'
    ],
)
def test_query_verifies_over_the_raw_target_as_sent(simproc, client, order, query):
    assert client.create(**return_fields(order, "R-Q1")).status_code == 200
    target = "/v3/profitsharing/return-orders/R-Q1?" + query.format(sub=SUB, no="P-WIRE-1")
    response = client.send("GET", target)
    assert response.status_code == 200, response.text
    client.assert_signed(response)
    assert response.json()["out_return_no"] == "R-Q1"
    assert simproc.calls()[-1]["target"] == target


def test_percent_encoded_target_is_verified_as_sent(simproc, client, order):
    assert client.create(**return_fields(order, "R|pipe")).status_code == 200
    target = "/v3/profitsharing/return-orders/R%7Cpipe?sub_mchid=1900000109&out_order_no=P-WIRE-1"
    response = client.send("GET", target)
    assert response.status_code == 200, response.text
    assert response.json()["out_return_no"] == "R|pipe"
    # Signing the decoded form while sending the encoded one is what WeChat refuses.
    wrong = client.send("GET", target, sign_target=target.replace("%7C", "|"))
    assert wrong.status_code == 401


def test_merchant_serial_matches_case_insensitively(client, order):
    body = json.dumps(return_fields(order, "R-case")).encode()
    response = client.send(
        "POST", "/v3/profitsharing/return-orders", body, serial_no=client.serial_no.lower()
    )
    assert response.status_code == 200, response.text


# -- signatures that do not --------------------------------------------------------------


def _other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGN_FAILURES = {
    "tampered_body": {"sign_body": b'{"amount":1}'},
    "other_target": {"sign_target": "/v3/profitsharing/return-orders?x=1"},
    # Offsets from the moment of sending (resolved in the test, not at import).
    "stale_timestamp": {"timestamp_offset": -301},
    "future_timestamp": {"timestamp_offset": 400},
    "unknown_serial": {"serial_no": "0123456789ABCDEF0123456789ABCDEF01234567"},
    "unknown_mchid": {"mchid": "1900000999"},
    "bad_nonce_chars": {"nonce": "not-a-valid-nonce!"},
    "wrong_key": {"key": "other"},
}


@pytest.mark.parametrize("case", sorted(SIGN_FAILURES))
def test_bad_signatures_get_signed_401_and_nothing_executes(simproc, client, order, case):
    auth = dict(SIGN_FAILURES[case])
    if "timestamp_offset" in auth:
        auth["timestamp"] = int(time.time()) + auth.pop("timestamp_offset")
    if auth.get("key") == "other":
        auth["key"] = _other_key()
    body = json.dumps(return_fields(order, f"R-{case}")).encode()
    response = client.send("POST", "/v3/profitsharing/return-orders", body, **auth)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "SIGN_ERROR"
    client.assert_signed(response)
    assert simproc.returns() == []
    call = simproc.calls()[-1]
    assert (call["status"], call["code"], call["executed"]) == (401, "SIGN_ERROR", False)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        'WECHATPAY2-SHA256-RSA2048 mchid="1900000100"',
        'Bearer mchid="1",nonce_str="a",timestamp="1",serial_no="1",signature="a"',
        'WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="1",nonce_str="a",timestamp="1",'
        'serial_no="1",signature="a"',
    ],
)
def test_missing_or_malformed_authorization_is_401(client, order, authorization):
    body = json.dumps(return_fields(order, "R-auth")).encode()
    response = client.send(
        "POST", "/v3/profitsharing/return-orders", body, headers={"Authorization": authorization}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "SIGN_ERROR"
    client.assert_signed(response)


def test_replayed_nonce_is_refused(simproc, client, order):
    body = json.dumps(return_fields(order, "R-replay")).encode()
    stamp = int(time.time())
    first = client.send(
        "POST", "/v3/profitsharing/return-orders", body, nonce="SAMENONCE1", timestamp=stamp
    )
    assert first.status_code == 200
    again = client.send(
        "POST", "/v3/profitsharing/return-orders", body, nonce="SAMENONCE1", timestamp=stamp
    )
    assert again.status_code == 401 and again.json()["code"] == "SIGN_ERROR"
    client.assert_signed(again)
    # A nonce whose signature failed was not remembered: it can still be used.
    bad = client.send(
        "POST", "/v3/profitsharing/return-orders", body, nonce="FRESHNONCE", sign_body=b"x"
    )
    assert bad.status_code == 401
    ok = client.send("POST", "/v3/profitsharing/return-orders", body, nonce="FRESHNONCE")
    assert ok.status_code == 200


# -- headers, routing -----------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["Accept", "User-Agent"])
def test_missing_accept_or_user_agent_is_invalid_request(client, order, missing):
    # urllib3 adds its own User-Agent unless told to skip it.
    value = SKIP_HEADER if missing == "User-Agent" else None
    response = client.create(_headers={missing: value}, **return_fields(order, "R-hdr"))
    assert response.status_code == 400
    assert response.json() == {
        "code": "INVALID_REQUEST",
        "message": "Http头缺少Accept或User-Agent",
    }
    client.assert_signed(response)


def test_post_without_json_content_type_is_invalid_request(client, order):
    response = client.create(_headers={"Content-Type": "text/plain"}, **return_fields(order, "R"))
    assert response.status_code == 400 and response.json()["code"] == "INVALID_REQUEST"


def test_get_on_the_collection_is_405(client):
    response = client.send("GET", "/v3/profitsharing/return-orders")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    client.assert_signed(response)


def test_post_on_a_return_is_405(client):
    response = client.send("POST", "/v3/profitsharing/return-orders/R1", b"{}")
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


@pytest.mark.parametrize(
    "target", ["/v3/nope", "/v3/profitsharing/return-orders/a/b", "/", "/v3/certificates/x"]
)
def test_unknown_paths_are_404(simproc, client, target):
    response = client.send("GET", target)
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    client.assert_signed(response)
    assert simproc.calls()[-1]["target"] == target


def test_answers_use_keep_alive_and_content_length(simproc, client, order):
    import http.client

    host, port = simproc.base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        for n in range(5):
            body = json.dumps(return_fields(order, f"R-ka{n}", amount=1)).encode()
            headers = {
                "Accept": "application/json",
                "User-Agent": "t",
                "Content-Type": "application/json",
                "Authorization": client.authorization(
                    "POST", "/v3/profitsharing/return-orders", body
                ),
            }
            conn.request("POST", "/v3/profitsharing/return-orders", body, headers)
            answer = conn.getresponse()
            assert answer.status == 200
            assert int(answer.getheader("Content-Length")) == len(answer.read())
            assert answer.getheader("Connection") != "close"
        sock = conn.sock
        assert sock is not None  # the same connection served all five
    finally:
        conn.close()
