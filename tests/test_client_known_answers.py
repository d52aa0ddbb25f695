"""Known-answer and interop tests of the APIv3 client.

The vectors come from the official SDKs' own suites (wechatpay-go, wechatpay-java)
and from the published algorithm; the interop half checks this client against an
independent signer/verifier written here with plain ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from django_wxpay_profitsharing.wechatpay import WeChatPayClient, crypto, errors
from django_wxpay_profitsharing.wechatpay.models import ReturnRequest
from django_wxpay_profitsharing.wechatpay.verifier import ResponseVerifier

# wechatpay-go core/auth/signers/sha256withrsa_signer_test.go (label TESTING -> PRIVATE).
GO_TEST_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDZUJN33V+dSfvd
fL0Mu+39XrZNXFFMQSy1V15FpncHeV47SmV0TzTqZc7hHB0ddqAdDi8Z5k3TKqb7
6sOwYr5TcAfuR6PIPaleyE0/0KrljBum2Isa2Nyq7Dgc3ElBQ6YN4l/a+DpvKaz1
FSKmKrhLNskqokWVSlu4g8OlKlbPXQ9ibII14MZRQrrkTmHYHzfi7GXXM0thAKuR
0HNvyhTHBh4/lrYM3GaMvmWwkwvsMavnOex6+eioZHBOb1/EIZ/LzC6zuHArPpyW
3daGaZ1rtQB1vVzTyERAVVFsXXgBHvfFud3w3ShsJYk8JvMwK2RpJ5/gV0QSARcm
LDRUAlPzAgMBAAECggEBAMc7rDeUaXiWv6bMGbZ3BTXpg1FhdddnWUnYE8HfX/km
OFI7XtBHXcgYFpcjYz4D5787pcsk7ezPidAj58zqenuclmjKnUmT3pfbI5eCA2v4
C9HnbYDrmUPK1ZcADtka4D6ScDccpNYNa1g2TFHzkIrEa6H+q7S3O2fqxY/DRVtN
0JIXalBb8daaqL5QVzSmM2BMVnHy+YITJWIkP2a3pKs9C0W65JGDsnG0wVrHinHF
+cnhFZIbaPEI//DAFMc9NkrWOKVRTEgcCUxCFaHOZVNxDWZD7A2ZfJB2rK6eg//y
gEiFDR2h6mTaDowMB4YF2n2dsIO4/dCG8vPHI20jn4ECgYEA/ZGu6lEMlO0XZnam
AZGtiNgLcCfM/C2ZERZE7QTRPZH1WdK92Al9ndldsswFw4baJrJLCmghjF/iG4zi
hhBvLnOLksnZUfjdumxoHDWXo2QBWbI5QsWIE7AuTiWgWj1I7X4fCXSQf6i+M/y2
6TogQ7d0ANpZFyOkTNMn/tiJvLECgYEA22XqlamG/yfAGWery5KNH2DGlTIyd6xJ
WtJ9j3jU99lZ0bCQ5xhiBbU9ImxCi3zgTsoqLWgA/p00HhNFNoUcTl9ofc0G3zwT
D1y0ZzcnVKxGJdZ6ohW52V0hJStAigtjYAsUgjm7//FH7PiQDBDP1Wa6xSRkDQU/
aSbQxvEE8+MCgYEA3bb8krW7opyM0XL9RHH0oqsFlVO30Oit5lrqebS0oHl3Zsr2
ZGgoBlWBsEzk3UqUhTFwm/DhJLTSJ/TQPRkxnhQ5/mewNhS9C7yua7wQkzVmWN+V
YeUGTvDGDF6qDz12/vJAgSwDDRym8x4NcXD5tTw7mmNRcwIfL22SkysThIECgYAV
BgccoEoXWS/HP2/u6fQr9ZIR6eV8Ij5FPbZacTG3LlS1Cz5XZra95UgebFFUHHtC
EY1JHJY7z8SWvTH8r3Su7eWNaIAoFBGffzqqSVazfm6aYZsOvRY6BfqPHT3p/H1h
Tq6AbBffxrcltgvXnCTORjHPglU0CjSxVs7awW3AEQKBgB5WtaC8VLROM7rkfVIq
+RXqE5vtJfa3e3N7W3RqxKp4zHFAPfr82FK5CX2bppEaxY7SEZVvVInKDc5gKdG/
jWNRBmvvftZhY59PILHO2X5vO4FXh7suEjy6VIh0gsnK36mmRboYIBGsNuDHjXLe
BDa+8mDLkWu5nHEhOxy2JJZl
-----END PRIVATE KEY-----
"""
V1_SIGNATURE = (
    "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hAm6"
    "pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZ"
    "UguLli/K8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJb"
    "knXG23bSlObuTCN7Ndj1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg=="
)
V5_BODY = (
    '{"sub_mchid":"1900000109","out_order_no":"P20150806125346","out_return_no":"R20190516001",'
    '"return_mchid":"86693852","amount":10,"description":"用户退款"}'
)
V5_TS, V5_NONCE = 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242"
V5_CREATE_SIG = (
    "d8FnZdl5Dhucarx4Mt/DfPvknC8juQ2RlnTF8ZaELPbs+wz4NHSRk+l66rFz74YESM/F4TvEKWSv823iwTSb/xqDdRq"
    "NBlxSfM7E/Qjpjv46dyyly1BIMs/XpbZ0wwfIn/gAVYaBb9KtQrK9/RY2HokZrftrgQvsqrm5kdELqg27OwXqH0LHi5G"
    "2wAC1ctD2wJW71ofiKPSWOzgzBil4SBrNVxgt6a0GzR3kEbdFGEFYZDWo/6dlZTB7YV1kQoPrZxNA+/1TpWW/IrNf+xO9"
    "zdo3bG72cFRBbcng3fkQ9QGKHgcn21O3lkWP5ggFrNujmYdoWnq2/msIaxtI9OMHwA=="
)
V5_QUERY_TARGET = (
    "/v3/profitsharing/return-orders/R20190516001?sub_mchid=1900000109&out_order_no=P20150806125346"
)
V5_QUERY_SIG = (
    "XEd54oob1PDPoai2PHs/YpMbO3tNuinF3f6cfukK8pk7yFXt/OzBqewCUBe/81RNAOlMYHWo6jQ6Ivpbn17eurRlRFrc"
    "alB4ph7cl33y76VNEtdT3yZhtdWswQS0rgfQmbCiuOyl/y7+90WbEBv/AvI69tT3NPm816ka6f5jKjwkIBAOQAIQvLOR"
    "1NQdd/1QGJimMs1JMil0JlQocTxfQGUvRGJsVaGDZCSaGD/0q/UnmO1ZHLgkJpSmqzgmvC7xCyp3+N1R27NHzyxYLyTV"
    "pcnswdbf0XO8yMpprA1CibCJYs7OeBANrkr/cuS1+xXDRi+S1AUXoEII8MdpcOKTdA=="
)
V5_RESPONSE = (
    '{"sub_mchid":"1900000109","order_id":"3008450740201411110007820472",'
    '"out_order_no":"P20150806125346","out_return_no":"R20190516001",'
    '"return_id":"3008450740201411110007820472","return_mchid":"86693852","amount":10,'
    '"description":"用户退款","result":"SUCCESS","create_time":"2015-05-20T13:29:35+08:00",'
    '"finish_time":"2015-05-20T13:29:35+08:00"}'
)
V5_RESP_TS, V5_RESP_NONCE = 1554209980, "c5ac7061fccab6bf3e254dcf98995b8c"
V5_RESPONSE_SIG = (
    "JiRENq66aRH/SAokdK7bGcgn8fMm4Dr1H5WU+k6mWPsxAdHLEqpwX+eXGYBb37W1Y+QiIVilqBrbaJITMtGSFndBzA6k"
    "ry18a+u0geH0d5n4RZ+z5dznn4z6V/c9VVYPmsTDBJN5pHMKWae2ujqcOJKji2a4kIjyBMCVhMk/ijap8c/OT9r115Hi"
    "tvKCR7/cgZlboHxY7OJ99M0eyMgLTYurcZ5k7NqiVpr6NZD/0BzVK8434i3/FzzeWjFubx3FRaC7+6W2EeLtJsctNX7w"
    "TNgJAC9Bq/yrwHc7bJPRpfFPGJfFk3ekBTI+wJoEDTkaJae5ZFDrWJiWykdsGTbknA=="
)
KEY_ID = "PUB_KEY_ID_0000000000000024101100397200000006"


@pytest.fixture(scope="module")
def go_key():
    return crypto.load_private_key(GO_TEST_KEY)


def client_for(key, public_key, **kwargs):
    defaults = {
        "wechatpay_public_key": public_key,
        "wechatpay_public_key_id": KEY_ID,
        "base_url": "http://127.0.0.1:9",
        "clock": lambda: V5_TS,
        "nonce_factory": lambda: V5_NONCE,
    }
    return WeChatPayClient("1900000100", "F5765756002FDD77", key, **{**defaults, **kwargs})


def test_v1_signature_of_the_go_sdk(go_key):
    assert crypto.sign(go_key, b"source") == V1_SIGNATURE


def test_v5_create_string_to_sign_and_authorization(go_key):
    message = crypto.request_message(
        "POST", "/v3/profitsharing/return-orders", V5_TS, V5_NONCE, V5_BODY.encode()
    )
    assert len(message) == 239
    assert hashlib.sha256(message).hexdigest() == (
        "20fcce356a33f9873b2568f24867d2ff3c3c2d06d5875de2b5a2445b29ea0f52"
    )
    client = client_for(go_key, go_key.public_key())
    header = client._authorization("POST", "/v3/profitsharing/return-orders", V5_BODY.encode())
    assert header == (
        'WECHATPAY2-SHA256-RSA2048 mchid="1900000100",'
        f'nonce_str="{V5_NONCE}",timestamp="{V5_TS}",serial_no="F5765756002FDD77",'
        f'signature="{V5_CREATE_SIG}"'
    )


def test_v5_body_is_serialised_exactly(go_key):
    body = ReturnRequest(
        sub_mchid="1900000109",
        out_order_no="P20150806125346",
        out_return_no="R20190516001",
        return_mchid="86693852",
        amount=10,
        description="用户退款",
    ).body()
    assert json.dumps(body, separators=(",", ":"), ensure_ascii=False) == V5_BODY


def test_v5_query_string_to_sign(go_key):
    message = crypto.request_message("GET", V5_QUERY_TARGET, V5_TS, V5_NONCE, b"")
    assert len(message) == 144 and message.endswith(b"\n\n")
    assert hashlib.sha256(message).hexdigest() == (
        "ec49c7525e0d56f93aa376cf7a48b1597e05c3e99f8df02ec9c49f86ad6c77c1"
    )
    assert crypto.sign(go_key, message) == V5_QUERY_SIG


def headers_for(signature=V5_RESPONSE_SIG, ts=V5_RESP_TS, nonce=V5_RESP_NONCE, serial=KEY_ID):
    return {
        "Wechatpay-Timestamp": str(ts),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


@pytest.fixture
def verifier(go_key):
    return ResponseVerifier(
        public_key=go_key.public_key(), public_key_id=KEY_ID, clock=lambda: V5_RESP_TS + 10
    )


def test_v5_response_verifies(verifier):
    message = crypto.response_message(V5_RESP_TS, V5_RESP_NONCE, V5_RESPONSE.encode())
    assert len(message) == 390
    assert verifier.verify(headers_for(), V5_RESPONSE.encode()) == KEY_ID


@pytest.mark.parametrize(
    ("change", "body"),
    [
        ({}, V5_RESPONSE.replace('"amount":10', '"amount":11')),  # tampered body
        ({"serial": "PUB_KEY_ID_OTHER"}, V5_RESPONSE),  # wrong serial
        ({"ts": V5_RESP_TS - 300}, V5_RESPONSE),  # stale (>= 5 minutes)
        ({"ts": V5_RESP_TS + 400}, V5_RESPONSE),  # from the future
        ({"signature": "not base64!!"}, V5_RESPONSE),  # bad base64
        ({"signature": "WECHATPAY/SIGNTEST/" + V5_RESPONSE_SIG[19:]}, V5_RESPONSE),  # probe
        ({"nonce": "other"}, V5_RESPONSE),
    ],
)
def test_bad_responses_raise_signature_error(verifier, change, body):
    with pytest.raises(errors.SignatureError):
        verifier.verify(headers_for(**change), body.encode())


@pytest.mark.parametrize(
    "ts", ["9" * 401, "+" + str(V5_RESP_TS), "1_700_000_000", "１７", "0x10", "-1"]
)
def test_a_malformed_timestamp_is_a_signature_error(verifier, ts):
    # 401 digits once escaped as a bare OverflowError (comparing with the float clock).
    with pytest.raises(errors.SignatureError, match="malformed Wechatpay-Timestamp"):
        verifier.verify(headers_for(ts=ts), V5_RESPONSE.encode())


@pytest.mark.parametrize(
    "missing",
    ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial", "Wechatpay-Signature"],
)
def test_each_missing_header_raises(verifier, missing):
    headers = headers_for()
    del headers[missing]
    with pytest.raises(errors.SignatureError, match=missing):
        verifier.verify(headers, V5_RESPONSE.encode())


def test_aes_gcm_vectors():
    # wechatpay-go utils/aes_test.go (a 16-byte key: AES-128-GCM).
    assert (
        crypto.aes_gcm_decrypt(
            "testAPIv3Key0000",
            "wCq51qZv4Yfg",
            "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8",
            "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC",
        )
        == b"Hello World"
    )
    # wechatpay-java AeadAesCipherTest: AEAD_AES_256_GCM with a 32-byte key.
    key, nonce = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb", "uluk4a9R25RW"
    assert crypto.aes_gcm_encrypt(key, nonce, "associatedData", b"message") == (
        "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI="
    )
    assert crypto.aes_gcm_decrypt(key, nonce, "associatedData", "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=")
    with pytest.raises(crypto.CryptoError):
        crypto.aes_gcm_decrypt(key, nonce, "other-aad", "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=")


# ----------------------------------------------------------------- error table
ERROR_CASES = [
    (500, "SYSTEM_ERROR", True),
    (400, "PARAM_ERROR", False),
    (400, "INVALID_REQUEST", False),
    (429, "FREQUENCY_LIMITED", True),
    (429, "RATELIMIT_EXCEED", True),
    (429, "RATELIMIT_EXCEEDED", True),
    (403, "NO_AUTH", False),
    (403, "NOT_ENOUGH", False),
    (401, "SIGN_ERROR", False),
    (404, "RESOURCE_NOT_EXISTS", False),
    (502, "", True),
    (503, "SERVICE_UNAVAILABLE", True),
]


class StubHandler(BaseHTTPRequestHandler):
    """An independent WeChat Pay stand-in: its own signing code, plain cryptography."""

    protocol_version = "HTTP/1.1"
    seen: list
    reply: dict

    def log_message(self, *args):
        return

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append(
            {
                "line": self.requestline,
                "target": self.path,
                "body": body,
                "headers": dict(self.headers),
                "port": self.client_address[1],
            }
        )
        status, payload = self.reply["status"], self.reply["body"]
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Request-ID", "REQ-1")
        if self.reply.get("sign", True):
            ts = str(int(time.time()) + self.reply.get("skew", 0))
            nonce = base64.b16encode(os.urandom(16)).decode()
            message = f"{ts}\n{nonce}\n".encode() + raw + b"\n"
            sig = self.reply["key"].sign(message, padding.PKCS1v15(), hashes.SHA256())
            self.send_header("Wechatpay-Timestamp", ts)
            self.send_header("Wechatpay-Nonce", nonce)
            self.send_header("Wechatpay-Serial", KEY_ID)
            self.send_header("Wechatpay-Signature", base64.b64encode(sig).decode())
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _handle


def serve(base, key):
    """A stub server on a free loopback port: (server, its handler class), signing with key."""
    handler = type("Handler", (base,), {"seen": [], "reply": {"key": key}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture(scope="module")
def stub():
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server, handler = serve(StubHandler, server_key)
    client = WeChatPayClient(
        "1900000100",
        "ABCDEF1234",
        merchant_key,
        wechatpay_public_key=server_key.public_key(),
        wechatpay_public_key_id=KEY_ID,
        base_url=f"http://127.0.0.1:{server.server_address[1]}",
        max_get_retries=0,
    )
    yield client, handler, merchant_key
    client.close()
    server.shutdown()


def entity(**extra):
    data = json.loads(V5_RESPONSE)
    data.update(extra)
    return data


@pytest.mark.parametrize(("status", "code", "retryable"), ERROR_CASES)
def test_documented_error_codes_parse(stub, status, code, retryable):
    client, handler, _ = stub
    body = {"code": code, "message": "消息", "detail": {"field": "/amount"}} if code else b""
    handler.reply.update(status=status, body=body, sign=False)
    with pytest.raises(errors.APIError) as info:
        client.query_return(out_return_no="R1", out_order_no="P1", sub_mchid="1900000109")
    exc = info.value
    assert (exc.status, exc.code, exc.retryable) == (status, code, retryable)
    assert exc.request_id == "REQ-1"
    if code:
        assert exc.message == "消息" and exc.detail == {"field": "/amount"}


def independent_verify(public_key, method, target, headers, body) -> bool:
    """Check an Authorization header from the published algorithm alone."""
    scheme, _, params = headers["Authorization"].partition(" ")
    fields = dict(p.split("=", 1) for p in params.split(","))
    fields = {k: v.strip('"') for k, v in fields.items()}
    message = "\n".join([method, target, fields["timestamp"], fields["nonce_str"], ""]).encode()
    message += body + b"\n"
    try:
        public_key.verify(
            base64.b64decode(fields["signature"]), message, padding.PKCS1v15(), hashes.SHA256()
        )
    except Exception:
        return False
    return scheme == "WECHATPAY2-SHA256-RSA2048" and fields["mchid"] == "1900000100"


def test_interop_both_ways(stub):
    client, handler, merchant_key = stub
    handler.seen.clear()
    handler.reply.update(status=200, body=entity(out_return_no="R|1*@x"), sign=True, skew=0)
    order = client.create_return(
        ReturnRequest(
            out_return_no="R|1*@x",
            return_mchid="86693852",
            amount=10,
            description="用户退款",
            out_order_no="P20150806125346",
            sub_mchid="1900000109",
        )
    )
    assert order.result == "SUCCESS" and order.create_time.utcoffset().total_seconds() == 8 * 3600
    handler.reply.update(body=entity())
    client.query_return(out_return_no="R|1*@x", out_order_no="P-1|2", sub_mchid="1900000109")
    post, get = handler.seen
    public = merchant_key.public_key()
    assert independent_verify(public, "POST", post["target"], post["headers"], post["body"])
    assert json.loads(post["body"])["out_return_no"] == "R|1*@x"
    # The target is signed exactly as sent, percent-encoding included.
    assert get["target"] == (
        "/v3/profitsharing/return-orders/R%7C1%2A%40x?sub_mchid=1900000109&out_order_no=P-1%7C2"
    )
    assert independent_verify(public, "GET", get["target"], get["headers"], b"")
    assert get["headers"]["Wechatpay-Serial"] == KEY_ID
    assert get["headers"]["Accept"] == "application/json"
    assert get["headers"]["User-Agent"].startswith("django-wxpay-profitsharing/")
    assert post["headers"]["Content-Type"] == "application/json"
    assert post["port"] == get["port"]  # one keep-alive connection


def test_unverifiable_2xx_is_never_used(stub):
    client, handler, _ = stub
    handler.reply.update(status=200, body=entity(), sign=True, skew=-301)
    with pytest.raises(errors.SignatureError):
        client.query_return(out_return_no="R1", out_order_no="P1", sub_mchid="1900000109")
    handler.reply.update(sign=False, skew=0)
    with pytest.raises(errors.SignatureError):
        client.query_return(out_return_no="R1", out_order_no="P1", sub_mchid="1900000109")


def test_get_is_retried_but_post_is_not(stub):
    client, handler, _ = stub
    retrying = WeChatPayClient(
        "1900000100",
        "ABCDEF1234",
        stub[2],
        wechatpay_public_key=handler.reply["key"].public_key(),
        wechatpay_public_key_id=KEY_ID,
        base_url=client.base_url,
        max_get_retries=2,
    )
    handler.seen.clear()
    handler.reply.update(status=500, body={"code": "SYSTEM_ERROR", "message": "x"}, sign=False)
    with pytest.raises(errors.APIError):
        retrying.query_return(out_return_no="R1", out_order_no="P1")
    assert len(handler.seen) == 3
    handler.seen.clear()
    with pytest.raises(errors.APIError):
        retrying.create_return(
            ReturnRequest(
                out_return_no="R1",
                return_mchid="1",
                amount=1,
                description="d",
                out_order_no="P1",
            )
        )
    assert len(handler.seen) == 1
    retrying.close()


def test_transport_errors_say_whether_the_request_may_have_been_sent(go_key):
    refused = client_for(go_key, go_key.public_key(), base_url="http://127.0.0.1:9")
    with pytest.raises(errors.TransportError) as info:
        refused.create_return(
            ReturnRequest(
                out_return_no="R1",
                return_mchid="1",
                amount=1,
                description="d",
                out_order_no="P1",
            )
        )
    assert info.value.maybe_sent is False


def test_read_timeout_may_have_been_sent(stub, go_key):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts, never answers
    slow = client_for(
        go_key,
        go_key.public_key(),
        base_url=f"http://127.0.0.1:{listener.getsockname()[1]}",
        timeout=(1, 0.3),
        clock=time.time,
    )
    with pytest.raises(errors.TransportError) as info:
        slow.create_return(
            ReturnRequest(
                out_return_no="R1",
                return_mchid="1",
                amount=1,
                description="d",
                out_order_no="P1",
            )
        )
    assert info.value.maybe_sent is True
    listener.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": True}, "amount"),
        ({"description": ""}, "description"),
        ({"return_mchid": "x1"}, "return_mchid"),
        ({"out_return_no": "中文"}, "out_return_no"),
        ({"order_id": "3008"}, "out_order_no"),
        ({"out_order_no": None}, "out_order_no"),
    ],
)
def test_invalid_requests_are_refused_before_sending(stub, kwargs, field):
    client, handler, _ = stub
    handler.seen.clear()
    fields = {
        "out_return_no": "R1",
        "return_mchid": "86693852",
        "amount": 1,
        "description": "d",
        "out_order_no": "P1",
    }
    fields.update(kwargs)
    with pytest.raises(errors.InvalidRequest) as info:
        client.create_return(ReturnRequest(**fields))
    assert info.value.field == field and handler.seen == []


def test_plain_http_only_to_loopback(go_key):
    with pytest.raises(ValueError, match="https"):
        client_for(go_key, go_key.public_key(), base_url="http://api.mch.weixin.qq.com")
    assert client_for(
        go_key, go_key.public_key(), base_url="http://example.test", allow_insecure_http=True
    )


def test_secrets_stay_out_of_logs_and_errors(stub, caplog):
    import logging

    client, handler, merchant_key = stub
    pem = merchant_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    handler.reply.update(status=200, body=entity(), sign=True, skew=0)
    with caplog.at_level(logging.DEBUG):
        client.query_return(out_return_no="R1", out_order_no="P1")
    handler.reply.update(status=401, body={"code": "SIGN_ERROR", "message": "x"}, sign=False)
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.APIError) as info:
        client.query_return(out_return_no="R1", out_order_no="P1")
    text = caplog.text + str(info.value) + repr(client)
    assert "GET /v3/profitsharing/return-orders/R1 -> 200" in caplog.text
    for secret in (pem.splitlines()[1], "Authorization", "WECHATPAY2-SHA256", "signature="):
        assert secret not in text
