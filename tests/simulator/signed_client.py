"""A signing client for the simulator tests, independent of the package's own crypto.

``SignedClient`` implements the published APIv3 algorithm with plain ``cryptography``
and ``requests`` (nothing from ``wechatpay.crypto``), so the simulator tests check the
simulator against the documentation, not against itself.
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

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wxpay_simulator.testing import SimulatorProcess

SUB = "1900000109"
RECEIVER = "86693852"
# Field orders real SDKs emit in the Authorization header (wechatpay-go core/auth,
# wechatpay-php, wechatpay-axios-plugin, wechatpayv3): GO/JAVA, PHP/AXIOS, PY.
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

    def query_order(
        self,
        out_order_no: str,
        transaction_id: str | None,
        sub_mchid: str | None = SUB,
        **kw: Any,
    ) -> requests.Response:
        """查询分账结果; ``transaction_id`` None leaves the parameter out."""
        params = []
        if sub_mchid:
            params.append(f"sub_mchid={sub_mchid}")
        if transaction_id is not None:
            params.append(f"transaction_id={quote(transaction_id, safe='')}")
        target = f"/v3/profitsharing/orders/{quote(out_order_no, safe='')}"
        if params:
            target += "?" + "&".join(params)
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
