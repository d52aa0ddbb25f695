"""The least a Python client of WeChat Pay can do per call: the floor of benchmark 1.

Why: the CPU target of benchmark 1 compares a whole client with one RSA-2048 sign
plus one verify. How close any Python client can get depends on the machine (on a CPU
whose OpenSSL signs with AVX-512 IFMA, RSA is cheap and the rest weighs more), so the
benchmark runs this loop too and prints where the floor lies in the same run.

Per call it signs the request (``crypto``), writes it on one kept-alive TLS socket,
reads the answer with ``Content-Length`` framing, verifies the signature and parses
the JSON. Nothing else: no pool, no validation of input, no timestamp or nonce check,
no error handling, no typed result. Not a client to use: a measuring stick.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from common import RECEIVER, SUB_MCHID

from django_wxpay_profitsharing.wechatpay import crypto

RETURN_ORDERS = "/v3/profitsharing/return-orders"


class BareClient:
    """One TLS connection; ``call`` signs, sends, reads, verifies and parses."""

    def __init__(self, base_url: str, creds: dict[str, Any], ca_bundle: str) -> None:
        parts = urlsplit(base_url)
        context = ssl.create_default_context(cafile=ca_bundle)
        raw = socket.create_connection((parts.hostname, parts.port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = context.wrap_socket(raw, server_hostname=parts.hostname)
        self.sock.settimeout(10)
        self.host = parts.netloc
        self.mchid = creds["mchid"]
        self.serial_no = creds["merchant_serial_no"]
        self.key = crypto.load_private_key(creds["private_key_path"])
        self.public_key = crypto.load_public_key(creds["wechatpay_public_key_path"])
        self.public_key_id = creds["wechatpay_public_key_id"]
        self.buffer = b""

    def call(self, method: str, target: str, body: bytes = b"") -> dict[str, Any]:
        timestamp, nonce = str(int(time.time())), crypto.make_nonce()
        message = crypto.request_message(method, target, timestamp, nonce, body)
        authorization = crypto.authorization_header(
            mchid=self.mchid,
            serial_no=self.serial_no,
            nonce=nonce,
            timestamp=timestamp,
            signature=crypto.sign(self.key, message),
        )
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: {authorization}\r\nWechatpay-Serial: {self.public_key_id}\r\n"
            "Accept: application/json\r\nUser-Agent: bare/1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head_bytes, _, rest = self.buffer.partition(b"\r\n\r\n")
        headers = {}
        for line in head_bytes.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        length = int(headers["content-length"])
        while len(rest) < length:
            rest += self.sock.recv(65536)
        answer, self.buffer = rest[:length], rest[length:]
        signed = crypto.response_message(
            headers["wechatpay-timestamp"], headers["wechatpay-nonce"], answer
        )
        if not crypto.verify(self.public_key, signed, headers["wechatpay-signature"]):
            raise AssertionError("the answer's signature does not verify")
        return json.loads(answer)

    def create_and_query(self, order: str, number: str) -> tuple[dict, dict]:
        """Return 1 fen of sharing order ``order`` as ``number``, then query it."""
        body = {
            "sub_mchid": SUB_MCHID,
            "out_order_no": order,
            "out_return_no": number,
            "return_mchid": RECEIVER,
            "amount": 1,
            "description": "bench",
        }
        made = self.call("POST", RETURN_ORDERS, json.dumps(body).encode())
        query = f"{RETURN_ORDERS}/{number}?sub_mchid={SUB_MCHID}&out_order_no={order}"
        return made, self.call("GET", query)
