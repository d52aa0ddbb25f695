"""The simulator's APIv3 wire protocol: request signatures, signed answers, routing, headers.

``SignedClient`` below is an independent implementation of the published algorithm
(plain ``cryptography`` + ``requests``; nothing from ``wechatpay.crypto``), so these
tests check the simulator against the documentation, not against itself. The other
``test_simulator_*`` modules reuse it.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from urllib3.util import SKIP_HEADER

from django_wxpay_profitsharing.testing.simulator import SimulatorProcess

SUB = "1900000109"
RECEIVER = "86693852"
# Field orders real SDKs emit (wxpay-apiv3.md section 7): GO/JAVA, PHP/AXIOS, PY.
AUTH_ORDERS = {
    "go": ("mchid", "nonce_str", "timestamp", "serial_no", "signature"),
    "php": ("mchid", "serial_no", "timestamp", "nonce_str", "signature"),
    "py": ("mchid", "nonce_str", "signature", "timestamp", "serial_no"),
}


class SignedClient:
    """A minimal APIv3 client written from the published algorithm, for the tests."""

    def __init__(self, sim: SimulatorProcess) -> None:
        creds = sim.credentials
        self.sim = sim
        self.base_url = sim.base_url
        self.mchid = creds["mchid"]
        self.serial_no = creds["merchant_serial_no"]
        self.apiv3_key = creds["apiv3_key"].encode()
        self.private_key = serialization.load_pem_private_key(
            Path(creds["private_key_path"]).read_bytes(), password=None
        )
        self.public_key_id = creds["wechatpay_public_key_id"]
        self.public_key = serialization.load_pem_public_key(
            Path(creds["wechatpay_public_key_path"]).read_bytes()
        )
        cert = x509.load_pem_x509_certificate(Path(creds["platform_certificate_path"]).read_bytes())
        self.platform_keys: dict[str, Any] = {format(cert.serial_number, "X"): cert.public_key()}
        self.session = requests.Session()
        self.verify = sim.ca_bundle or True  # per request: REQUESTS_CA_BUNDLE beats Session

    # -- signing -------------------------------------------------------------------------
    def authorization(
        self,
        method: str,
        target: str,
        body: bytes,
        *,
        timestamp: int | None = None,
        nonce: str | None = None,
        serial_no: str | None = None,
        mchid: str | None = None,
        order: str = "go",
        key: Any = None,
    ) -> str:
        timestamp = int(time.time()) if timestamp is None else timestamp
        nonce = nonce or secrets.token_hex(16).upper()
        message = f"{method}\n{target}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
        raw = (key or self.private_key).sign(message, padding.PKCS1v15(), hashes.SHA256())
        fields = {
            "mchid": mchid or self.mchid,
            "nonce_str": nonce,
            "timestamp": str(timestamp),
            "serial_no": serial_no or self.serial_no,
            "signature": base64.b64encode(raw).decode(),
        }
        params = ",".join(f'{name}="{fields[name]}"' for name in AUTH_ORDERS[order])
        return f"WECHATPAY2-SHA256-RSA2048 {params}"

    def send(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        *,
        headers: dict[str, str | None] | None = None,
        sign_target: str | None = None,
        sign_body: bytes | None = None,
        timeout: float = 10,
        **auth: Any,
    ) -> requests.Response:
        """Sign (``sign_target``/``sign_body`` to sign something else) and send."""
        base = {
            "Accept": "application/json",
            "User-Agent": "simulator-tests/1.0",
            "Authorization": self.authorization(
                method,
                sign_target or target,
                body if sign_body is None else sign_body,
                **auth,
            ),
        }
        if method == "POST":
            base["Content-Type"] = "application/json"
        base.update(headers or {})
        return self.session.request(
            method,
            self.base_url + target,
            data=body,
            headers=base,
            timeout=timeout,
            verify=self.verify,
        )

    def create(self, _headers: dict[str, str | None] | None = None, **fields: Any):
        body = json.dumps(fields, ensure_ascii=False).encode()
        return self.send("POST", "/v3/profitsharing/return-orders", body, headers=_headers)

    def query(
        self, out_return_no: str, out_order_no: str, sub_mchid: str | None = SUB, **kw: Any
    ) -> requests.Response:
        query = f"out_order_no={quote(out_order_no)}"
        if sub_mchid:
            query = f"sub_mchid={sub_mchid}&{query}"
        target = f"/v3/profitsharing/return-orders/{quote(out_return_no, safe='')}?{query}"
        return self.send("GET", target, **kw)

    def certificates(self, **kw: Any) -> requests.Response:
        return self.send("GET", "/v3/certificates", **kw)

    # -- verification --------------------------------------------------------------------
    def signature_ok(self, response: requests.Response) -> bool:
        """SHA256withRSA over ``TS\\nNONCE\\nBODY\\n`` with the key the serial names."""
        headers = response.headers
        serial = headers["Wechatpay-Serial"]
        key = self.public_key if serial == self.public_key_id else self.platform_keys.get(serial)
        if key is None:
            return False
        message = (
            f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode()
            + response.content
            + b"\n"
        )
        try:
            signature = base64.b64decode(headers["Wechatpay-Signature"], validate=True)
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def assert_signed(self, response: requests.Response, max_skew: int = 300) -> None:
        headers = response.headers
        assert headers["Request-ID"]
        assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
        assert len(headers["Wechatpay-Nonce"]) == 32
        assert abs(time.time() - int(headers["Wechatpay-Timestamp"])) <= max_skew
        assert self.signature_ok(response), response.text
        assert "Content-Length" in headers

    def download_certificates(self) -> dict[str, x509.Certificate]:
        """Fetch and decrypt ``/v3/certificates``; remembers their keys for verifying."""
        response = self.certificates()
        assert response.status_code == 200, response.text
        found = {}
        for item in response.json()["data"]:
            enc = item["encrypt_certificate"]
            assert enc["algorithm"] == "AEAD_AES_256_GCM"
            assert enc["associated_data"] == "certificate" and len(enc["nonce"]) == 12
            pem = AESGCM(self.apiv3_key).decrypt(
                enc["nonce"].encode(), base64.b64decode(enc["ciphertext"]), b"certificate"
            )
            cert = x509.load_pem_x509_certificate(pem)
            assert format(cert.serial_number, "X") == item["serial_no"]
            found[item["serial_no"]] = cert
            self.platform_keys[item["serial_no"]] = cert.public_key()
        self.assert_signed(response)
        return found


def return_fields(order: dict, out_return_no: str, amount: int = 100, **extra: Any) -> dict:
    fields = {
        "out_order_no": order["out_order_no"],
        "out_return_no": out_return_no,
        "return_mchid": RECEIVER,
        "amount": amount,
        "description": "用户退款",
    }
    if order.get("sub_mchid"):
        fields = {"sub_mchid": order["sub_mchid"], **fields}
    fields.update(extra)
    return fields


@pytest.fixture(scope="module")
def simproc(tmp_path_factory):
    with SimulatorProcess(tmp_path_factory.mktemp("sim-wire")) as sim:
        yield sim


@pytest.fixture
def client(simproc):
    simproc.reset()
    simproc.configure(mode="public-key", processing_seconds=0, latency_ms=0, qps_limit=0)
    yield SignedClient(simproc)
    simproc.clear_faults()


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
